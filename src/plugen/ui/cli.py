"""``plugen ui``: the interactive editor in a web browser (needs the ``ui`` extra).

Examples::

    plugen ui                                           # the shipped demos on http://127.0.0.1:7860
    plugen ui --plugin smile.plugin --backbone mnist-vae
    plugen ui --plugins ~/plugins --max-upload 10MB     # the page may load the plugins in ~/plugins, by name

Only argparse is imported here; Gradio is imported when the command runs.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

#: the largest upload the page accepts unless ``--max-upload`` says otherwise
DEFAULT_MAX_UPLOAD = "50MB"
EXAMPLES = """examples:
  plugen ui                                           # the shipped demos on http://127.0.0.1:7860
  plugen ui --plugin smile.plugin --backbone mnist-vae
  plugen ui --plugins ~/plugins --max-upload 10MB     # the page may load the plugins in ~/plugins, by name
"""
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def add_parser(sub) -> None:
    """Add the ``ui`` command to the ``plugen`` command's subparsers."""
    ui = sub.add_parser(
        "ui",
        help="the interactive editor in a web browser (needs plugen[ui])",
        description="The interactive editor in a web browser: pick a sample, move one slider per "
        "attribute, see the edited sample.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ui.add_argument(
        "--demo",
        action="append",
        choices=["mnist", "shapes", "molecules"],
        help="shipped demo to offer; repeat (default: all installed). The first is fitted at start, "
        "or loaded from the cache",
    )
    ui.add_argument("--plugin", help="a saved plugin directory to open first (needs --backbone)")
    ui.add_argument("--backbone", help="the shipped backbone the plugin was fitted on, e.g. mnist-vae")
    ui.add_argument(
        "--plugins",
        metavar="DIR",
        help="folder of saved plugins that the page's Load box offers, by name (nothing outside it "
        "can be loaded from the page). Default: no Load box",
    )
    ui.add_argument(
        "--max-upload",
        type=upload_size,
        default=upload_size(DEFAULT_MAX_UPLOAD),
        metavar="SIZE",
        help=f"largest file the page accepts, e.g. 10MB or 500KB (default: {DEFAULT_MAX_UPLOAD})",
    )
    ui.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)")
    ui.add_argument("--port", type=_port, default=7860, help="port (default: 7860)")
    ui.add_argument("--cache", help="cache directory for the demos' fitted plugins (default: ~/.cache/plugen)")
    ui.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (default: 1, the fastest for single-sample edits, and robust on a busy CPU)",
    )
    ui.set_defaults(run=_ui)


def upload_size(text: str) -> int:
    """``"50MB"``, ``"500kb"``, ``"1048576"`` -> bytes (binary units); at least one byte."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmg]?)b?\s*", str(text).lower())
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size; write e.g. 50MB, 500KB or 1048576")
    size = int(float(match.group(1)) * _UNITS[match.group(2)])
    if size < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: the upload limit must be at least 1 byte")
    return size


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 < port < 65536:
        raise argparse.ArgumentTypeError(f"port {port} is not between 1 and 65535")
    return port


def _ui(args) -> int:
    try:
        from plugen.ui.server import make_editor, serve
    except ImportError as exc:
        from plugen.errors import PlugenError

        raise PlugenError(f'plugen ui needs the ui extra ({exc}): pip install "plugen[ui]"') from None
    import torch

    torch.set_num_threads(max(1, args.threads))
    editor = make_editor(
        args.demo,
        plugin=args.plugin,
        backbone=args.backbone,
        cache=Path(args.cache) if args.cache else None,
        plugins=args.plugins,
    )
    serve(editor, host=args.host, port=args.port, max_upload=args.max_upload)
    return 0
