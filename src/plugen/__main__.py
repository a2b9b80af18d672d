"""``python -m plugen``: the same command line as ``plugen``."""

import sys

from plugen.cli import main

sys.exit(main())
