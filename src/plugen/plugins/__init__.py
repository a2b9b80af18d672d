"""The two plugin estimators behind one interface."""

from plugen.plugins.fpn import FPN
from plugen.plugins.plugen import PluGeN

__all__ = ["FPN", "PluGeN"]
