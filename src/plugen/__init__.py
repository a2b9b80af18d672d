"""plugen: make a frozen generative model conditional with a small normalising flow on its latents."""

__version__ = "0.1.0"

from plugen.errors import CheckpointError, InputError, NotFittedError, PlugenError, TrainingError
from plugen.plugins import FPN, PluGeN

__all__ = ["FPN", "PluGeN", "CheckpointError", "InputError", "NotFittedError", "PlugenError", "TrainingError", "__version__"]
