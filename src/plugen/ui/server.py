"""Start the editor: gather the workspaces, build the page, serve it (``plugen ui``).

Nothing is fetched at run time: Gradio's analytics and update check are switched off before it
launches, the theme uses system fonts, and no share link is made. The server binds to
127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import sys
from pathlib import Path

from plugen.ui.app import Editor, build_app, offline_environment, theme

#: the largest upload (bytes) unless the caller says otherwise (``plugen ui --max-upload``)
MAX_UPLOAD = 50 * 1024**2


def make_editor(
    demo_names: list[str] | None = None,
    plugin: str | Path | None = None,
    backbone: str | None = None,
    cache: Path | None = None,
    fit: dict | None = None,
    log=None,
    plugins: str | Path | None = None,
) -> Editor:
    """The editor's workspaces: a saved ``plugin`` with its ``backbone`` (opened first), and the
    shipped demos (``demo_names``; default: all; each fitted or loaded from the cache the first
    time it is opened, the first one at start). A plugin that cannot be used is reported on the
    page, not raised. ``plugins``: a folder whose plugins the page's Load box offers by name."""
    from plugen.errors import PlugenError
    from plugen.ui import sources

    log = log or (lambda m: print(m, file=sys.stderr, flush=True))
    names = sources.demos() if demo_names is None else list(demo_names)
    for name in names:
        if name not in ("mnist", "shapes", "molecules"):
            raise PlugenError(f"unknown demo {name!r}; choose from {sources.demos()}")
        if name == "molecules" and sources.molecule_backbone() is None:
            raise PlugenError(
                "the molecule demo needs the shipped SMILES backbone (selfies-vae / smiles-vae), "
                f"which is not installed; available demos: {sources.demos()}"
            )
    items, initial, notice = {}, None, None
    if plugin is not None:
        if not backbone:
            raise PlugenError("--plugin needs --backbone NAME: the shipped backbone the plugin was fitted on")
        try:
            ws = sources.from_checkpoint(plugin, backbone)
            items[ws.title] = ws
            initial = ws.title
        except (PlugenError, OSError, ValueError) as exc:
            notice = str(exc)
            log(f"[ui] {exc}")
    for name in names:
        title = sources.TITLES[name]
        items[title] = lambda n=name: sources.demo(n, cache=cache, fit=fit, log=log)
    if plugin is None and items:  # a plugin that failed opens nothing: the page shows why
        initial = next(iter(items))
    return Editor(items, initial=initial, notice=notice, plugins=plugins)


def serve(
    editor: Editor,
    host: str = "127.0.0.1",
    port: int = 7860,
    block: bool = True,
    quiet: bool = False,
    max_upload: int = MAX_UPLOAD,
):
    """Serve the page; returns Gradio's ``(app, local_url)`` when ``block`` is False. ``max_upload``:
    the largest upload in bytes (a larger one is refused while it arrives, and nothing of it is kept)."""
    offline_environment()
    try:
        import gradio  # noqa: F401
    except ImportError as exc:
        from plugen.errors import PlugenError

        raise PlugenError(f'the editor needs Gradio ({exc}): pip install "plugen[ui]"') from None
    app = build_app(editor)
    app.queue(default_concurrency_limit=4)
    try:
        _, url, _ = app.launch(
            server_name=host,
            server_port=port,
            share=False,
            inbrowser=False,
            prevent_thread_lock=True,
            quiet=True,
            show_error=True,
            theme=theme(),
            css=_css(),
            footer_links=[],
            ssr_mode=False,
            enable_monitoring=False,
            pwa=False,
            mcp_server=False,
            run_history=False,  # the browser would store every slider move, slower each time
            max_file_size=int(max_upload),
        )
    except OSError as exc:
        from plugen.errors import PlugenError

        raise PlugenError(f"cannot serve on {host}:{port} ({exc}); choose another --port") from None
    app.warmed_up = _warm_up(app, url)
    if not quiet:
        print(f"plugen editor on {url}  (Ctrl+C stops it)", file=sys.stderr, flush=True)
    if block:
        try:
            app.block_thread()
        except KeyboardInterrupt:
            pass
        finally:
            app.close()
            editor.close()
        return None
    return app, url


def _warm_up(app, url: str) -> bool:
    """Send one slider move to the running server and fetch its picture, so that the first move
    a user makes does not pay for the server's first-request set-up (otherwise paid by the first request). Best
    effort: returns whether it worked; a failure here changes nothing."""
    import json
    import urllib.request

    data = list(getattr(app, "warm_up_data", []) or [])
    if not data:
        return False
    try:
        request = urllib.request.Request(
            f"{url.rstrip('/')}/gradio_api/run/slide_0",
            method="POST",
            data=json.dumps({"data": data}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            out = json.loads(response.read())
        pictures = [item["url"] for item in out.get("data", []) if isinstance(item, dict) and item.get("url")]
        for picture in pictures:
            with urllib.request.urlopen(picture, timeout=30) as response:
                response.read()
        return bool(pictures)
    except Exception:  # noqa: BLE001 - warming up is optional
        return False


def _css() -> str:
    from plugen.ui.app import CSS

    return CSS
