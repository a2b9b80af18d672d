"""``plugen ui``: the interactive editor in a web browser (argparse only here; Gradio loads when it runs)."""

from __future__ import annotations

from pathlib import Path


def add_parser(sub) -> None:
    """Add the ``ui`` subcommand to the ``plugen`` parser."""
    ui = sub.add_parser("ui", help="the interactive editor in a web browser (needs plugen[ui])")
    ui.add_argument("--demo", action="append", choices=["mnist", "shapes", "molecules"],
                    help="shipped demo to offer; repeat (default: all installed). The first is fitted at start, "
                    "or loaded from the cache")
    ui.add_argument("--plugin", help="a saved plugin directory to open first (needs --backbone)")
    ui.add_argument("--backbone", help="the shipped backbone the plugin was fitted on, e.g. mnist-vae")
    ui.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)")
    ui.add_argument("--port", type=int, default=7860, help="port (default: 7860)")
    ui.add_argument("--cache", help="cache directory for the demos' fitted plugins (default: ~/.cache/plugen)")
    ui.add_argument("--threads", type=int, default=1,
                    help="torch threads (default: 1, the fastest for single-sample edits, and robust on a busy CPU)")
    ui.set_defaults(run=_ui)


def _ui(args) -> int:
    try:
        from plugen.ui.server import make_editor, serve
    except ImportError as exc:
        from plugen.errors import PlugenError

        raise PlugenError(f'plugen ui needs the ui extra ({exc}): pip install "plugen[ui]"') from None
    import torch

    torch.set_num_threads(max(1, args.threads))
    editor = make_editor(args.demo, plugin=args.plugin, backbone=args.backbone,
                         cache=Path(args.cache) if args.cache else None)
    serve(editor, host=args.host, port=args.port)
    return 0
