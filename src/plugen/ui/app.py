"""The editor's page: a Gradio ``Blocks`` app over :class:`~plugen.ui.workspace.Workspace` objects.

Layout: a model chooser (the shipped demos, saved plugins), then three columns: where the sample
comes from (data set, uploaded image or typed SMILES), the picture with its predicted attributes,
and one slider per attribute. Below: a "generate" panel and, when the editor was given a plugins
folder, a panel that loads one of its saved plugins by name (:mod:`~plugen.ui.library`).

The sliders are a fixed number of slots (:data:`SLOTS`) that a workspace labels and shows, so one
page serves plugins with different labels. Moving a slider edits the current latent with every
attribute the user has moved since the sample was chosen (the others are kept as they are).

Every callback catches errors and shows them in the status line (``#status``); the server keeps
running. :class:`Editor` holds the callbacks and is tested without a browser.
"""

from __future__ import annotations

import functools
import hashlib
import html
import math
import os
import shutil
import tempfile
import threading
import weakref
from collections.abc import Callable
from pathlib import Path

import numpy as np

from plugen.errors import InputError, PlugenError
from plugen.ui.workspace import View, Workspace, slider_values

#: attribute slider slots on the page (a plugin may have at most this many labels)
SLOTS = 12
#: samples drawn by one press of "Generate"
GENERATE_COUNT = 8
#: Gradio's temporary files (uploads not yet read, pictures sent): every 10 minutes, those older than 30 are deleted
CACHE_SWEEP = (600, 1800)
#: result files kept for the download button (the oldest are deleted beyond this)
DOWNLOAD_FILES = 64


class Editor:
    """The page's callbacks over a set of workspaces.

    ``workspaces`` maps a display name to a :class:`Workspace` or to a function that makes one
    (called on first use: a demo that still has to be fitted). ``notice``: a message shown when
    the page opens (e.g. why a requested plugin could not be loaded). ``plugins``: the folder whose
    saved plugins the page may load, by name (:class:`~plugen.ui.library.PluginFolder`; None: none).
    """

    def __init__(
        self,
        workspaces: dict[str, Workspace | Callable[[], Workspace]],
        initial: str | None = None,
        notice: str | None = None,
        plugins: str | Path | None = None,
    ):
        from plugen.ui.library import PluginFolder

        self._items = dict(workspaces)
        self._lock = threading.Lock()
        if initial is not None and initial not in self._items:
            raise PlugenError(f"no workspace named {initial!r}; have {list(self._items)}")
        self.initial = initial
        self.notice = notice
        self.plugins = PluginFolder(plugins) if plugins is not None else None
        self._loaded: dict[tuple[str, str], str] = {}  # (content digest, backbone) -> workspace name
        self._load_lock = threading.Lock()
        self._files = Path(tempfile.mkdtemp(prefix="plugen-ui-"))
        self._cleanup = weakref.finalize(self, shutil.rmtree, self._files, True)
        self._warm: set[int] = set()

    # ------------------------------------------------------------------ workspaces
    @property
    def names(self) -> list[str]:
        return list(self._items)

    def workspace(self, name: str | None) -> Workspace:
        if name is None or name not in self._items:
            raise PlugenError("no model is loaded: choose one above, or load a saved plugin below")
        with self._lock:
            item = self._items[name]
            if not isinstance(item, Workspace):
                item = self._items[name] = item()
            if len(item.controls()) > SLOTS:
                raise PlugenError(f"{name!r} has {len(item.controls())} labels; the page shows at most {SLOTS} sliders")
            if id(item) not in self._warm:
                item.warm_up()
                self._warm.add(id(item))
            return item

    def _of(self, state) -> Workspace:
        """The workspace a page state names (a state sent by an API caller may be anything)."""
        return self.workspace(state.get("workspace") if isinstance(state, dict) else None)

    def add(self, name: str, workspace: Workspace) -> str:
        base, k = name, 2
        while name in self._items and self._items[name] is not workspace:
            name, k = f"{base} ({k})", k + 1
        self._items[name] = workspace
        return name

    # ------------------------------------------------------------------ state
    @staticmethod
    def state(name: str | None, view: View | None = None, touched: dict | None = None) -> dict:
        """The per-browser-session state: the workspace's name, the latent being edited and the
        attributes moved so far."""
        return {"workspace": name, "z": None if view is None else view.z.tolist(), "touched": dict(touched or {})}

    # ------------------------------------------------------------------ callbacks (plain Python)
    def choose(self, name: str) -> tuple[dict, View | None]:
        """Switch to workspace ``name``; shows its first data-set sample (or a generated one)."""
        ws = self.workspace(name)
        view = ws.pick(0) if len(ws) else ws.generate({}, 1, temperature=0.8, seed=0)[0]
        return self.state(name, view), view

    def pick(self, state: dict, index) -> tuple[dict, View]:
        ws = self._of(state)
        if index is None or index == "":
            raise PlugenError("type a sample number")
        view = ws.pick(_whole(index, "the sample number"))
        return self.state(state["workspace"], view), view

    def upload(self, state: dict, path) -> tuple[dict, View]:
        ws = self._of(state)
        if not path:
            raise PlugenError("no file was uploaded")
        view = ws.upload(path)
        return self.state(state["workspace"], view), view

    def from_text(self, state: dict, text: str) -> tuple[dict, View]:
        ws = self._of(state)
        view = ws.from_text(text)
        return self.state(state["workspace"], view), view

    def slide(self, state: dict, slot: int, values: list[float], rounds: int = 0) -> tuple[dict, View]:
        """Slider ``slot`` moved; ``values`` are all slot values. Edits the latent with every
        attribute moved so far (``rounds``: re-encoded edits, :meth:`Workspace.edit`)."""
        ws = self._of(state)
        z = _latent(state)
        controls = ws.controls()
        if not 0 <= slot < min(len(controls), len(values)):
            raise PlugenError(f"slider {slot} is not in use")
        touched = dict(state.get("touched") or {})
        touched[controls[slot].name] = _number(values[slot], controls[slot].name)
        for i, c in enumerate(controls):  # keep the other moved attributes at their sliders' values
            if c.name in touched and i < len(values) and values[i] is not None:
                touched[c.name] = _number(values[i], c.name)
        view = ws.edit(z, touched, rounds)
        return {**state, "touched": touched}, view

    def redo(self, state: dict, rounds: int) -> tuple[dict, View]:
        """The current edit again with ``rounds`` re-encoding rounds (the checkbox changed)."""
        ws = self._of(state)
        return state, ws.edit(_latent(state), dict(state.get("touched") or {}), rounds)

    def reset(self, state: dict) -> tuple[dict, View]:
        """Back to the unedited sample."""
        ws = self._of(state)
        view = ws.view(_latent(state))
        return {**state, "touched": {}}, view

    def conditions(self, state: dict, fixed: list[str], values: list[float]) -> dict[str, float]:
        """The attributes in ``fixed`` at their sliders' values."""
        ws = self._of(state)
        return {
            c.name: _number(values[i] if i < len(values) else None, c.name)
            for i, c in enumerate(ws.controls())
            if c.name in (fixed or [])
        }

    def generate(
        self, state: dict, fixed: list[str], values: list[float], temperature: float, seed, reencode: bool = False
    ) -> list[View]:
        """New samples with the attributes in ``fixed`` at their sliders' values (``reencode``: one
        decode / encode round that sets them again)."""
        ws = self._of(state)
        conditions = self.conditions(state, fixed, values)
        seed = None if seed is None or seed == "" else _whole(seed, "the seed")
        return ws.generate(
            conditions,
            GENERATE_COUNT,
            temperature=_number(temperature, "the temperature"),
            seed=seed,
            rounds=int(bool(reencode) and ws.can_reencode),
        )

    def plugin_names(self) -> list[str]:
        """The saved plugins the page may load (those in the ``plugins`` folder)."""
        return self.plugins.names() if self.plugins is not None else []

    def load_plugin(self, name: str, backbone: str) -> str:
        """Load the plugin ``name`` of the ``plugins`` folder with a shipped backbone as a
        workspace; returns its name. The same content with the same backbone is loaded once."""
        from plugen.ui.sources import from_checkpoint

        if self.plugins is None:
            raise PlugenError("this editor loads no plugins from the page: start it with --plugins DIR")
        path = self.plugins.resolve(name)
        if not backbone or not isinstance(backbone, str):
            raise PlugenError("choose the backbone the plugin was fitted on")
        shown = str(name).strip()
        with self._load_lock:
            key = (self.plugins.digest(path), backbone)
            if key in self._loaded:
                return self._loaded[key]
            try:
                ws = from_checkpoint(path, backbone, title=f"{shown} on {backbone}")
            except PlugenError as exc:  # name the plugin as the page does, never by its path on this server
                raise type(exc)(str(exc).replace(str(path), shown)) from None
            ws.description = ws.description.replace(str(path), shown)
            self._loaded[key] = self.add(ws.title, ws)
            return self._loaded[key]

    def download_file(self, ws: Workspace, view: View) -> str:
        """Write the result (PNG, or SMILES for molecules) to a file for the download button."""
        data = ws.domain.download(view.sample, view.picture)
        folder = self._files / hashlib.sha256(data).hexdigest()[:16]  # one file per content: sessions never clash
        folder.mkdir(exist_ok=True)
        path = folder / f"plugen-result.{ws.domain.extension}"
        path.write_bytes(data)
        os.utime(folder)  # the newest is kept longest
        self._trim_files()
        return str(path)

    def _trim_files(self) -> None:
        def modified(folder: Path) -> float:
            try:
                return folder.stat().st_mtime
            except OSError:  # deleted meanwhile by another session's trim
                return float("inf")

        for old in sorted(self._files.iterdir(), key=modified)[:-DOWNLOAD_FILES]:
            shutil.rmtree(old, ignore_errors=True)

    def close(self) -> None:
        """Delete the editor's temporary files (also done when it is garbage-collected or at exit)."""
        self._cleanup()


def _number(value, what: str) -> float:
    """``value`` (from the page, or from an API caller) as a float, else :class:`InputError`."""
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"{what} must be a number, got {repr(value)[:40]}") from None


def _whole(value, what: str) -> int:
    number = _number(value, what)
    if not math.isfinite(number) or number != int(number) or number < 0:
        raise InputError(f"{what} must be a whole number >= 0, got {repr(value)[:40]}")
    return int(number)


def _latent(state: dict) -> np.ndarray:
    """The latent a page state holds."""
    if state.get("z") is None:
        raise PlugenError("pick a sample first")
    try:
        return np.asarray(state["z"], np.float32)
    except (TypeError, ValueError, OverflowError):
        raise InputError("the page's state holds no latent; pick a sample again") from None


def predictions_html(view: View | None, ws: Workspace | None) -> str:
    """The predicted attributes as a small table; each value cell carries ``data-label`` and
    ``data-value`` (the browser tests read them)."""
    if view is None or ws is None:
        return ""
    rows = []
    names = {c.name: c for c in ws.controls()}
    measured = view.measured or {}
    for name, p in view.predictions.items():
        value = p["value"]
        if p["kind"] == "binary":
            shown = f"P = {value:.2f}"
        elif p["kind"] == "categorical":
            c = names.get(name)
            label = c.class_names[c.classes.index(value)] if c and value in c.classes else str(value)
            shown = f"{html.escape(label)} ({p['confidence']:.0%})"
        else:
            shown = f"{value:.3g}"
        extra = ""
        if measured:
            m = measured.get(name)
            extra = (
                f'<td class="measured" data-label="{html.escape(name)}" data-value="{m:.6g}">{m:.3g}</td>'
                if m is not None
                else "<td></td>"
            )
        rows.append(
            f'<tr><td>{html.escape(name)}</td><td class="pred" data-label="{html.escape(name)}" '
            f'data-value="{value:.6g}">{shown}</td>{extra}</tr>'
        )
    header = "<th>measured (RDKit)</th>" if measured else ""
    return (
        '<table class="plugen-predictions"><thead><tr><th>attribute</th><th>predicted on the picture</th>'
        f"{header}</tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
    )


def status_html(message: str = "", error: bool = False) -> str:
    if not message:
        return '<div class="plugen-status"></div>'
    kind = "error" if error else "info"
    return (
        f'<div class="plugen-status plugen-{kind}" role="{"alert" if error else "status"}">{html.escape(message)}</div>'
    )


CSS = """
.plugen-status.plugen-error { color: #b00020; background: #fdecea; border: 1px solid #f5c2c0; padding: 6px 10px; border-radius: 6px; }
.plugen-status.plugen-info { color: #1b4d89; padding: 6px 10px; }
.plugen-predictions { width: 100%; font-size: 0.95em; }
.plugen-predictions td, .plugen-predictions th { padding: 2px 8px; text-align: left; }
#picture img { image-rendering: pixelated; }
"""


def build_app(editor: Editor):
    """The Gradio ``Blocks`` of the editor page."""
    offline_environment()
    import gradio as gr

    from plugen.backbones import available

    first_state, first_view, first_error = editor.state(None), None, editor.notice or ""
    first_ws = None
    if editor.initial is not None:
        try:
            first_state, first_view = editor.choose(editor.initial)
            first_ws = editor.workspace(editor.initial)
        except Exception as exc:  # shown on the page; the server still starts
            first_error = f"{first_error}\n{_message(exc)}".strip()
    controls = first_ws.controls() if first_ws else []
    start_values = slider_values(controls, first_view.predictions) if first_view else []

    with gr.Blocks(title="plugen editor", analytics_enabled=False, delete_cache=CACHE_SWEEP) as app:
        gr.Markdown("## plugen editor: edit attributes of a frozen generative model's samples")
        with gr.Row():
            chooser = gr.Dropdown(choices=editor.names, value=editor.initial, label="model", elem_id="model", scale=1)
            about = gr.Markdown(first_ws.description if first_ws else "", elem_id="about")
        status = gr.HTML(status_html(first_error, error=bool(first_error)), elem_id="status")
        state = gr.State(first_state)
        with gr.Row():
            with gr.Column(scale=1, min_width=220):
                gr.Markdown("**1. Pick a sample**")
                n = len(first_ws) if first_ws else 0
                index = gr.Number(
                    value=0,
                    precision=0,
                    minimum=0,
                    label=f"data-set sample (0 to {max(n - 1, 0)})",
                    elem_id="index",
                    visible=n > 0,
                )
                caption = gr.Markdown(_caption(first_ws, 0), elem_id="caption")
                with gr.Row():
                    pick_btn = gr.Button("Show", size="sm", elem_id="pick", visible=n > 0)
                    random_btn = gr.Button("Random", size="sm", elem_id="random", visible=n > 0)
                is_text = first_ws is not None and first_ws.domain.input_kind == "text"
                upload = gr.UploadButton(
                    "Upload an image", file_types=["image"], type="filepath", elem_id="upload", visible=not is_text
                )
                smiles_in = gr.Textbox(
                    label="or type a SMILES", placeholder="CCO", elem_id="smiles-in", visible=is_text
                )
                smiles_btn = gr.Button("Use this molecule", size="sm", elem_id="smiles-go", visible=is_text)
            with gr.Column(scale=1, min_width=260):
                picture = gr.Image(
                    value=first_view.picture if first_view else None,
                    type="pil",
                    format="png",
                    label="result",
                    elem_id="picture",
                    interactive=False,
                    buttons=["download"],
                    height=260,
                )
                smiles_out = gr.Textbox(
                    value=(first_view.text or "") if first_view else "",
                    label="SMILES",
                    elem_id="smiles-out",
                    interactive=False,
                    visible=is_text,
                    buttons=["copy"],
                )
                download = gr.DownloadButton("Download SMILES", elem_id="download", visible=is_text)
                predictions = gr.HTML(predictions_html(first_view, first_ws), elem_id="predictions")
            with gr.Column(scale=1, min_width=260):
                gr.Markdown("**2. Edit**: move a slider (binary: intensity; others in the label's units)")
                slots = []
                for i in range(SLOTS):
                    c = controls[i] if i < len(controls) else None
                    slots.append(
                        gr.Slider(
                            minimum=c.minimum if c else 0,
                            maximum=c.maximum if c else 1,
                            step=c.step if c else 0.1,
                            value=start_values[i] if c else 0,
                            label=c.name if c else f"slot {i}",
                            info=c.info if c else None,
                            visible=c is not None,
                            elem_id=f"slider-{i}",
                            elem_classes=["plugen-slider"],
                        )
                    )
                reset_btn = gr.Button("Reset edits", size="sm", elem_id="reset")
                reencode = gr.Checkbox(
                    value=False,
                    label="re-encode edits and samples",
                    elem_id="reencode",
                    info="decode, encode and edit again, holding the other attributes "
                    "(keeps them better; one decode and encode more per move); "
                    "generated samples get their fixed attributes set again",
                    visible=first_ws is not None and first_ws.can_reencode,
                )
        with gr.Accordion("3. Generate new samples", open=True):
            with gr.Row():
                fixed = gr.CheckboxGroup(
                    choices=[c.name for c in controls],
                    label="fix these attributes at their sliders' values (the others follow the training data)",
                    elem_id="fixed",
                )
                temperature = gr.Slider(0.0, 1.5, value=0.8, step=0.05, label="temperature", elem_id="temperature")
                seed = gr.Number(value=0, precision=0, label="seed (empty: random)", elem_id="seed")
                generate_btn = gr.Button("Generate", variant="primary", elem_id="generate")
            gallery = gr.Gallery(
                label="generated (click one to edit it)",
                columns=GENERATE_COUNT,
                height=180,
                elem_id="gallery",
                format="png",
                allow_preview=False,
            )
            generated = gr.State([])
        with gr.Accordion("Load a saved plugin", open=False, visible=editor.plugins is not None) as load_panel:
            with gr.Row():
                plugin_path = gr.Dropdown(
                    choices=editor.plugin_names(),
                    label="plugin (in the editor's plugins folder)",
                    allow_custom_value=True,
                    elem_id="plugin-path",
                )
                backbone = gr.Dropdown(choices=available(), label="its backbone", elem_id="plugin-backbone")
                load_btn = gr.Button("Load", elem_id="plugin-load")

        # every event's outputs end with the status line: an error shows there and skips the rest
        view_outputs = [state, picture, predictions, smiles_out, download]
        new_outputs = [*view_outputs, *slots]

        def show(ws: Workspace, new_state: dict, view: View) -> tuple:
            text = view.text or ""
            text_mode = ws.domain.input_kind == "text"
            file = editor.download_file(ws, view) if text_mode and view.sample is not None else gr.skip()
            return new_state, view.picture, predictions_html(view, ws), text, file

        def with_sliders(ws: Workspace, view: View) -> tuple:
            cs, values = ws.controls(), slider_values(ws.controls(), view.predictions)
            return tuple(gr.update(value=values[i]) if i < len(cs) else gr.skip() for i in range(SLOTS))

        def after_new(ws: Workspace, st: dict, view: View) -> tuple:
            return (*show(ws, st, view), *with_sliders(ws, view))

        def guarded(fn, outputs: list):
            n_out = len(outputs) + 1

            @functools.wraps(fn)  # Gradio reads the signature (e.g. a gr.SelectData argument)
            def run(*args):
                try:
                    return fn(*args)
                except Exception as exc:  # shown on the page; the server keeps running
                    return (*[gr.skip()] * (n_out - 1), status_html(_message(exc), error=True))

            return run

        def on(trigger, fn, inputs, outputs, **kwargs):
            kwargs.setdefault("show_progress", "hidden")
            trigger(guarded(fn, outputs), inputs, [*outputs, status], **kwargs)

        # ---- choose a model
        def on_choose(name):
            st, view = editor.choose(name)
            ws = editor.workspace(name)
            cs, values = ws.controls(), slider_values(ws.controls(), view.predictions)
            text_mode = ws.domain.input_kind == "text"
            slot_updates = [
                gr.update(
                    visible=True,
                    minimum=cs[i].minimum,
                    maximum=cs[i].maximum,
                    step=cs[i].step,
                    value=values[i],
                    label=cs[i].name,
                    info=cs[i].info,
                )
                if i < len(cs)
                else gr.update(visible=False)
                for i in range(SLOTS)
            ]
            n = len(ws)
            return (
                *show(ws, st, view),
                *slot_updates,
                ws.description,
                gr.update(visible=n > 0, value=0, label=f"data-set sample (0 to {max(n - 1, 0)})"),
                _caption(ws, 0),
                gr.update(visible=n > 0),
                gr.update(visible=n > 0),
                gr.update(visible=not text_mode),
                gr.update(visible=text_mode),
                gr.update(visible=text_mode),
                gr.update(visible=text_mode),
                gr.update(visible=text_mode),
                gr.update(choices=[c.name for c in cs], value=[]),
                [],
                [],
                gr.update(visible=ws.can_reencode, value=False),
                status_html(),
            )

        choose_outputs = [
            *new_outputs,
            about,
            index,
            caption,
            pick_btn,
            random_btn,
            upload,
            smiles_in,
            smiles_btn,
            smiles_out,
            download,
            fixed,
            gallery,
            generated,
            reencode,
        ]
        on(chooser.input, on_choose, [chooser], choose_outputs, show_progress="minimal")

        # ---- sources of a sample
        def on_pick(st, i):
            st, view = editor.pick(st, i)
            ws = editor.workspace(st["workspace"])
            return (*after_new(ws, st, view), _caption(ws, int(i)), status_html())

        def on_random(st):
            ws = editor._of(st)
            if not len(ws):
                raise PlugenError("this model has no data-set samples")
            i = int(np.random.default_rng().integers(len(ws)))
            return (i, *on_pick(st, i))

        on(pick_btn.click, on_pick, [state, index], [*new_outputs, caption])
        on(index.submit, on_pick, [state, index], [*new_outputs, caption])
        on(random_btn.click, on_random, [state], [index, *new_outputs, caption])

        def on_upload(st, path):
            try:
                st, view = editor.upload(st, path)
            finally:
                _forget_upload(path)
            ws = editor.workspace(st["workspace"])
            return (*after_new(ws, st, view), "", status_html(f"editing the uploaded {Path(str(path)).name}"))

        on(upload.upload, on_upload, [state, upload], [*new_outputs, caption], show_progress="minimal")

        def on_text(st, text):
            st, view = editor.from_text(st, text)
            ws = editor.workspace(st["workspace"])
            return (*after_new(ws, st, view), "", status_html())

        on(smiles_btn.click, on_text, [state, smiles_in], [*new_outputs, caption], show_progress="minimal")
        on(smiles_in.submit, on_text, [state, smiles_in], [*new_outputs, caption], show_progress="minimal")

        # ---- edit: every slider input edits, the latest request wins while one is running
        slide_inputs = [state, reencode, *slots]
        for i, slider in enumerate(slots):

            def on_slide(st, again, *values, _slot=i):
                st, view = editor.slide(st, _slot, list(values), int(bool(again)))  # the box: 0 or 1 round
                ws = editor.workspace(st["workspace"])
                return (*show(ws, st, view), status_html(ws.extrapolation_note(st["touched"])))

            on(
                slider.input,
                on_slide,
                slide_inputs,
                view_outputs,
                trigger_mode="always_last",
                queue=False,
                api_name=f"slide_{i}",
            )

        def on_reencode(st, again):
            st, view = editor.redo(st, int(bool(again)))
            ws = editor.workspace(st["workspace"])
            return (*show(ws, st, view), status_html(ws.extrapolation_note(st.get("touched") or {})))

        on(reencode.input, on_reencode, [state, reencode], view_outputs)

        def on_reset(st):
            st, view = editor.reset(st)
            return (*after_new(editor.workspace(st["workspace"]), st, view), status_html())

        on(reset_btn.click, on_reset, [state], new_outputs)

        # ---- generate
        def on_generate(st, fixed_names, t, s, again, *values):
            views = editor.generate(st, fixed_names, list(values), t, s, again)
            note = editor.workspace(st["workspace"]).extrapolation_note(
                editor.conditions(st, fixed_names, list(values))
            )
            return [v.picture for v in views], [v.z.tolist() for v in views], status_html(note)

        on(
            generate_btn.click,
            on_generate,
            [state, fixed, temperature, seed, reencode, *slots],
            [gallery, generated],
            show_progress="minimal",
        )

        def on_gallery(st, zs, evt: gr.SelectData):
            ws = editor._of(st)
            view = ws.view(np.asarray(zs[evt.index], np.float32))
            st = editor.state(st["workspace"], view)
            return (*after_new(ws, st, view), "", status_html(f"editing generated sample {evt.index + 1}"))

        on_gallery.__annotations__ = {"evt": gr.SelectData}  # a class, not a string: Gradio must see the type
        on(gallery.select, on_gallery, [state, generated], [*new_outputs, caption])

        # ---- load a saved plugin
        def on_load(path, bb_name):
            name = editor.load_plugin(path, bb_name)
            out = on_choose(name)
            return (gr.update(choices=editor.names, value=name), *out[:-1], status_html(f"loaded {path} as {name!r}"))

        on(load_btn.click, on_load, [plugin_path, backbone], [chooser, *choose_outputs], show_progress="minimal")
        load_panel.expand(lambda: gr.update(choices=editor.plugin_names()), None, plugin_path, show_progress="hidden")
    app.editor = editor
    app.start_values, app.start_state = start_values, first_state
    # one request to slide_0 that the server answers at start (plugen.ui.server): the page's first move, re-done
    app.warm_up_data = [first_state, False, *start_values, *[0.0] * (SLOTS - len(start_values))] if start_values else []
    assert not app.warm_up_data or len(app.warm_up_data) == len(slide_inputs)
    return app


def _forget_upload(path) -> None:
    """Delete an uploaded file once it is read, if it lies in Gradio's upload folder (files of
    this server only; the editor's caller may pass its own files)."""
    from gradio.utils import get_upload_folder, is_in_or_equal

    if path and is_in_or_equal(str(path), get_upload_folder()):
        Path(path).unlink(missing_ok=True)


def _caption(ws: Workspace | None, i: int) -> str:
    if ws is None or not ws.captions or not 0 <= i < len(ws.captions):
        return ""
    return f"sample {i}, its labels in the data set: {ws.captions[i]}"


def _message(exc: BaseException) -> str:
    if isinstance(exc, PlugenError) or isinstance(exc, ValueError):
        return str(exc)
    return f"unexpected error ({type(exc).__name__}): {exc}"


def theme():
    """Gradio's default look with system fonts only (nothing is fetched from a font CDN)."""
    import gradio as gr

    return gr.themes.Default(
        font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "Consolas", "monospace"]
    )


def offline_environment() -> None:
    """Switch off Gradio's analytics and update check (it reads this variable at launch; the page's
    ``Blocks`` also say ``analytics_enabled=False``)."""
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
