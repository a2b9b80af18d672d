"""Hostile and careless input to the editor (``plugen ui``, issue 28): the Load box, uploads, its
temporary files, its command line and its start-up.

The Load box opens only plugins of the folder given at start (``--plugins DIR``), by name, and
answers every other name with one message that says nothing about the server's files; loading
the same content again reuses its workspace. Most cases call the editor's callbacks directly; one
test serves the page (upload limit, warm-up), one drives it in Chromium.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import shutil
import socket
import struct
import time
import urllib.error
import urllib.request
import uuid
import zlib
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before Gradio is imported: no telemetry
pytest.importorskip("gradio")
pytest.importorskip("PIL")

from plugen import PluGeN
from plugen.errors import CheckpointError, InputError, PlugenError
from plugen.ui import app as ui_app
from plugen.ui.app import Editor
from plugen.ui.cli import upload_size
from plugen.ui.domains import MAX_PIXELS

pytestmark = [
    pytest.mark.usefixtures("one_torch_thread"),
    pytest.mark.filterwarnings("ignore:'future.no_silent_downcasting' is deprecated"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
]
CHROMIUM = "/usr/bin/chromium"
LATENT_DIM = 40  # mnist-vae's


def fit_tiny(seed: int) -> PluGeN:
    """A real (if barely trained) PluGeN on random 40-dim latents, recorded as fitted on mnist-vae."""
    rng = np.random.default_rng(seed)
    Z = rng.normal(size=(300, LATENT_DIM)).astype(np.float32)
    Y = np.c_[Z[:, 0] > 0, 2 * Z[:, 1] + 3].astype(np.float64)
    return PluGeN(
        {"thickness": "binary", "slant": "continuous"}, max_epochs=2, progress=False, seed=seed, backbone="mnist-vae"
    ).fit(Z, Y)


@pytest.fixture(scope="module")
def plugins(tmp_path_factory):
    """A plugins folder with one good plugin, one corrupted one and a few things that must not
    count as plugins; beside it, a plugin outside the folder."""
    base = tmp_path_factory.mktemp("editor")
    folder, outside = base / "plugins", base / "outside"
    fit_tiny(0).save(folder / "tiny.plugin")
    fit_tiny(1).save(outside / "other.plugin")
    broken = shutil.copytree(folder / "tiny.plugin", folder / "broken.plugin")
    (broken / "plugin.json").write_text('{"format": "plugen-checkpoint", "estimator": ')
    shutil.copytree(folder / "tiny.plugin", folder / ".hidden.plugin")
    (folder / "escape").symlink_to(outside / "other.plugin", target_is_directory=True)
    leaky = folder / "weights-out.plugin"
    leaky.mkdir()
    shutil.copy(folder / "tiny.plugin" / "plugin.json", leaky / "plugin.json")
    (leaky / "weights.safetensors").symlink_to(outside / "other.plugin" / "weights.safetensors")
    (folder / "notes.txt").write_text("not a plugin")
    (folder / "empty").mkdir()
    return folder


@pytest.fixture(scope="module")
def editor(plugins):
    return Editor({}, plugins=plugins)


# ---------------------------------------------------------------------- the Load box: names, never paths
def test_the_folder_lists_its_plugins_only(editor):
    assert editor.plugin_names() == ["broken.plugin", "tiny.plugin"]


HOSTILE_NAMES = [
    "../../etc/passwd",
    "/etc/passwd",
    "/etc",
    "..",
    ".",
    "escape",
    "weights-out.plugin",
    ".hidden.plugin",
    "notes.txt",
    "empty",
    "missing.plugin",
    "tiny.plugin/../tiny.plugin",
    "../outside/other.plugin",
    "~",
    "~/.ssh",
    "tiny.plugin\x00",
    "x" * 10_000,
    "%2e%2e%2fetc",
    "..\\..\\windows",
    12345,
]


def test_any_other_name_gets_one_message_that_reveals_nothing(editor, plugins):
    """Was: the Load box took any server path and said whether it existed."""
    names = [*HOSTILE_NAMES, str(plugins / "tiny.plugin"), str(plugins.parent / "outside" / "other.plugin")]
    templates = set()
    for name in names:
        with pytest.raises(InputError) as info:
            editor.load_plugin(name, "mnist-vae")
        message = str(info.value)
        shown = str(name) if len(str(name)) <= 80 else str(name)[:80] + "..."
        assert message.startswith(f"no plugin named {shown!r} in the plugins folder"), message
        templates.add(message.replace(repr(shown), "NAME"))
        assert str(plugins) not in message.replace(repr(shown), "")
    assert templates == {"no plugin named NAME in the plugins folder; available: broken.plugin, tiny.plugin"}
    assert editor.names == []


@pytest.mark.parametrize("name", ["", "   ", None])
def test_no_name_asks_for_one(editor, name):
    with pytest.raises(InputError, match="choose a plugin from the list"):
        editor.load_plugin(name, "mnist-vae")


@pytest.mark.parametrize(
    "backbone, error, words",
    [
        ("shapes-vae", CheckpointError, ["mnist-vae", "shapes-vae", "fitted on"]),
        ("../../etc/passwd", InputError, ["unknown backbone"]),
        ("", PlugenError, ["choose the backbone"]),
        (None, PlugenError, ["choose the backbone"]),
    ],
)
def test_a_wrong_backbone_is_refused_without_the_servers_path(editor, plugins, backbone, error, words):
    with pytest.raises(error) as info:
        editor.load_plugin("tiny.plugin", backbone)
    for word in words:
        assert word in str(info.value)
    assert str(plugins) not in str(info.value) and editor.names == []


def test_a_corrupted_plugin_in_the_folder_is_refused_by_its_name(editor, plugins):
    with pytest.raises(CheckpointError) as info:
        editor.load_plugin("broken.plugin", "mnist-vae")
    message = str(info.value)
    assert "broken.plugin" in message and "not valid JSON" in message and str(plugins) not in message
    assert editor.names == []


def test_without_a_folder_the_page_loads_nothing(plugins):
    editor = Editor({})
    assert editor.plugin_names() == []
    with pytest.raises(PlugenError, match="start it with --plugins DIR"):
        editor.load_plugin("tiny.plugin", "mnist-vae")
    with pytest.raises(PlugenError, match="not a directory"):
        Editor({}, plugins=plugins / "notes.txt")


def test_thirty_loads_keep_one_workspace_and_copies_share_it(plugins, tmp_path):
    """Was: 30 loads of one plugin, 30 workspaces (+165 MB); now one per content and backbone."""
    folder = tmp_path / "plugins"
    shutil.copytree(plugins / "tiny.plugin", folder / "tiny.plugin")
    editor = Editor({}, plugins=folder)
    names = {editor.load_plugin("tiny.plugin", "mnist-vae") for _ in range(30)}
    assert names == {"tiny.plugin on mnist-vae"} and editor.names == ["tiny.plugin on mnist-vae"]
    ws = editor.workspace("tiny.plugin on mnist-vae")
    assert "loaded from `tiny.plugin`" in ws.description and str(folder) not in ws.description
    shutil.copytree(folder / "tiny.plugin", folder / "copy.plugin")  # the same content under another name
    assert editor.load_plugin("copy.plugin", "mnist-vae") == "tiny.plugin on mnist-vae"
    assert len(editor.names) == 1
    shutil.rmtree(folder / "copy.plugin")
    shutil.copytree(plugins.parent / "outside" / "other.plugin", folder / "copy.plugin")  # other content
    assert editor.load_plugin("copy.plugin", "mnist-vae") == "copy.plugin on mnist-vae"
    assert len(editor.names) == 2 and editor.workspace("copy.plugin on mnist-vae") is not ws


def test_a_plugin_changed_in_place_is_loaded_afresh(plugins, tmp_path):
    folder = tmp_path / "plugins"
    shutil.copytree(plugins / "tiny.plugin", folder / "tiny.plugin")
    editor = Editor({}, plugins=folder)
    first = editor.workspace(editor.load_plugin("tiny.plugin", "mnist-vae"))
    fit_tiny(2).save(folder / "tiny.plugin")
    second = editor.workspace(editor.load_plugin("tiny.plugin", "mnist-vae"))
    assert second is not first and editor.load_plugin("tiny.plugin", "mnist-vae") == "tiny.plugin on mnist-vae (2)"


# ---------------------------------------------------------------------- callbacks fed what an API caller may send
@pytest.fixture(scope="module")
def picked(editor):
    name = editor.load_plugin("tiny.plugin", "mnist-vae")
    return editor.choose(name)[0]


GOOD = [0.5, 3.0]  # thickness (binary), slant (continuous)
BAD_CALLS = {
    "slider value a string": lambda e, st: e.slide(st, 1, [0.5, "abc"]),
    "slider value None": lambda e, st: e.slide(st, 1, [0.5, None]),
    "slider value NaN": lambda e, st: e.slide(st, 0, [math.nan, 3.0]),
    "slider value inf": lambda e, st: e.slide(st, 1, [0.5, math.inf]),
    "fewer values than sliders": lambda e, st: e.slide(st, 1, [0.5]),
    "state a string": lambda e, st: e.slide("x", 0, GOOD),
    "state names no workspace": lambda e, st: e.slide({**st, "workspace": "../../etc"}, 0, GOOD),
    "latent of strings": lambda e, st: e.slide({**st, "z": ["a"] * LATENT_DIM}, 0, GOOD),
    "latent a dict": lambda e, st: e.slide({**st, "z": {"a": 1}}, 0, GOOD),
    "latent too short": lambda e, st: e.slide({**st, "z": [0.0] * 3}, 0, GOOD),
    "latent NaN": lambda e, st: e.slide({**st, "z": [math.nan] * LATENT_DIM}, 0, GOOD),
    "latent 1e300": lambda e, st: e.reset({**st, "z": [1e300] * LATENT_DIM}),
    "moved label unknown": lambda e, st: e.slide({**st, "touched": {"nope": 1.0}}, 0, GOOD),
    "sample number a string": lambda e, st: e.pick(st, "abc"),
    "sample number NaN": lambda e, st: e.pick(st, math.nan),
    "sample number inf": lambda e, st: e.pick(st, math.inf),
    "sample number -1": lambda e, st: e.pick(st, -1),
    "sample number 10**300": lambda e, st: e.pick(st, 10**300),
    "typed text on images": lambda e, st: e.from_text(st, "CCO"),
    "temperature NaN": lambda e, st: e.generate(st, [], GOOD, math.nan, 0),
    "temperature a string": lambda e, st: e.generate(st, [], GOOD, "hot", 0),
    "seed a string": lambda e, st: e.generate(st, [], GOOD, 0.8, "abc"),
    "seed -1": lambda e, st: e.generate(st, [], GOOD, 0.8, -1),
    "seed 1.5": lambda e, st: e.generate(st, [], GOOD, 0.8, 1.5),
    "fixed value NaN": lambda e, st: e.generate(st, ["slant"], [0.5, math.nan], 0.8, 0),
}


@pytest.mark.parametrize("call", BAD_CALLS.values(), ids=BAD_CALLS.keys())
def test_bad_callback_input_is_a_plugen_error(editor, picked, call):
    """Was (some of them): TypeError, ValueError, OverflowError or IndexError on the page."""
    with pytest.raises(PlugenError):
        call(editor, picked)


# ---------------------------------------------------------------------- uploads and temporary files
@pytest.fixture(scope="module")
def loaded(editor):
    name = editor.load_plugin("tiny.plugin", "mnist-vae")
    return editor, editor.state(name), editor.workspace(name)


def _file(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _png_header(path: Path, width: int, height: int) -> Path:
    """A PNG that announces a ``width`` x ``height`` greyscale image in a few dozen bytes (its pixel
    data would be megabytes: only the header is there)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return _file(
        path,
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""),
    )


def _png(path: Path, size: tuple[int, int]) -> Path:
    from PIL import Image

    Image.new("L", size, 255).save(path)
    return path


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda d: None, "no file was uploaded"),
        (lambda d: d, "could not read"),  # a directory
        (lambda d: d / "absent.png", "could not read"),
        (lambda d: _file(d / "empty.png", b""), "could not read"),
        (lambda d: _file(d / "text.png", b"<svg/>"), "could not read"),
        (lambda d: _file(d / "cut.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40), "could not read"),
        (lambda d: _png_header(d / "wide.png", 5000, 5000), "5000 x 5000 pixels; upload a picture of at most 16 "),
        (lambda d: _png_header(d / "bomb.png", 20000, 20000), "DecompressionBombError"),  # PIL's own guard
    ],
)
def test_bad_uploads_are_clear_errors(loaded, tmp_path, make, words):
    editor, state, _ = loaded
    with pytest.raises(PlugenError, match=words):
        editor.upload(state, make(tmp_path))


def test_a_big_but_allowed_picture_is_read(loaded, tmp_path):
    editor, state, _ = loaded
    side = int(MAX_PIXELS**0.5)
    _, view = editor.upload(state, str(_png(tmp_path / "ok.png", (side, side))))
    assert view.z.shape == (LATENT_DIM,) and np.isfinite(view.z).all()


def test_uploads_are_deleted_once_read_but_only_gradios(tmp_path, monkeypatch):
    uploads = tmp_path / "gradio"
    (uploads / "abc").mkdir(parents=True)
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(uploads))
    theirs, mine = uploads / "abc" / "x.png", tmp_path / "mine.png"
    theirs.write_bytes(b"x")
    mine.write_bytes(b"x")
    ui_app._forget_upload(str(theirs))
    ui_app._forget_upload(str(mine))
    ui_app._forget_upload(None)
    assert not theirs.exists() and mine.exists()


def test_download_files_are_bounded_and_removed_on_close(plugins, monkeypatch):
    editor = Editor({}, plugins=plugins)
    ws = editor.workspace(editor.load_plugin("tiny.plugin", "mnist-vae"))
    monkeypatch.setattr(ui_app, "DOWNLOAD_FILES", 3)
    files = [editor.download_file(ws, ws.pick(i)) for i in range(6)]
    kept = sorted(editor._files.iterdir())
    assert len(kept) == 3 and Path(files[-1]).is_file() and not Path(files[0]).exists()
    editor.close()
    assert not editor._files.exists()


# ---------------------------------------------------------------------- the command line
@pytest.mark.parametrize(
    "text, size",
    [
        ("50MB", 50 * 1024**2),
        ("10mb", 10 * 1024**2),
        ("500KB", 500 * 1024),
        ("1048576", 1048576),
        ("1.5M", 1572864),
        (" 2 GB ", 2 * 1024**3),
    ],
)
def test_upload_sizes_parse(text, size):
    assert upload_size(text) == size


@pytest.mark.parametrize(
    "argv, words",
    [
        (["--max-upload", "0"], "at least 1 byte"),
        (["--max-upload", "-1"], "is not a size"),
        (["--max-upload", "2x"], "is not a size"),
        (["--max-upload", "MB"], "is not a size"),
        (["--port", "0"], "between 1 and 65535"),
        (["--port", "70000"], "between 1 and 65535"),
        (["--port", "http"], "not a port number"),
    ],
)
def test_bad_options_are_usage_errors(capsys, argv, words):
    from plugen.cli import main

    with pytest.raises(SystemExit) as info:
        main(["ui", *argv])
    err = capsys.readouterr().err
    assert info.value.code == 2 and words in err and "Traceback" not in err


def test_defaults_and_a_missing_plugins_folder(capsys, tmp_path):
    from plugen.cli import build_parser, main
    from plugen.ui.server import MAX_UPLOAD

    args = build_parser().parse_args(["ui"])
    assert args.max_upload == MAX_UPLOAD == 50 * 1024**2 and args.plugins is None
    assert main(["ui", "--demo", "mnist", "--plugins", str(tmp_path / "absent")]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"plugen ui: error: --plugins {tmp_path / 'absent'}: not a directory"


# ---------------------------------------------------------------------- the served page
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post_file(url: str, name: str, data: bytes) -> tuple[int, str]:
    boundary = uuid.uuid4().hex
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    request = urllib.request.Request(
        f"{url.rstrip('/')}/gradio_api/upload",
        data=body,
        method="POST",
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@pytest.fixture(scope="module")
def served(loaded, plugins, tmp_path_factory):
    """The page over the tiny plugin, uploads limited to 64 KB, Gradio's files in a folder of ours."""
    from plugen.ui.server import serve

    uploads = tmp_path_factory.mktemp("gradio")
    previous = os.environ.get("GRADIO_TEMP_DIR")
    os.environ["GRADIO_TEMP_DIR"] = str(uploads)
    ws = loaded[2]
    page_editor = Editor({"tiny": ws}, initial="tiny", plugins=plugins)
    printed = io.StringIO()
    with contextlib.redirect_stderr(printed):  # what the server prints while it starts (and warms up)
        app, url = serve(page_editor, port=_free_port(), block=False, quiet=True, max_upload=64 * 1024)
    app.startup_stderr = printed.getvalue()
    yield app, url, uploads
    app.close()
    page_editor.close()
    if previous is None:
        os.environ.pop("GRADIO_TEMP_DIR", None)
    else:
        os.environ["GRADIO_TEMP_DIR"] = previous


def _files_in(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()]


def test_the_start_up_warm_up_request_succeeds(served):
    """Was: the warm-up request missed the re-encode input ("needed 14, got 13") and the server
    printed a traceback at every start."""
    app = served[0]
    assert app.warmed_up is True
    assert "Traceback" not in app.startup_stderr and "needed" not in app.startup_stderr
    assert len(app.warm_up_data) == 2 + ui_app.SLOTS  # state, re-encode box, the sliders


def _call(url: str, endpoint: str, data: list) -> dict:
    request = urllib.request.Request(
        f"{url.rstrip('/')}/gradio_api/run/{endpoint}",
        method="POST",
        data=json.dumps({"data": data}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def test_an_api_caller_gets_one_reencode_round_at_most(served):
    """Was: the re-encode box's value was used as a number of rounds, so an API caller sending
    10**6 for it kept a worker decoding and encoding for hours."""
    app, url, _ = served
    data = list(app.warm_up_data)
    data[1] = 10**6
    start = time.perf_counter()
    out = _call(url, "slide_0", data)
    assert time.perf_counter() - start < 20
    assert "plugen-error" not in out["data"][-1] and out["data"][1]["url"]
    data[0] = "not a state"  # the server keeps each session's state: what a caller sends for it is not used
    out = _call(url, "slide_0", data)
    assert "plugen-error" not in out["data"][-1] and out["data"][1]["url"]


def test_an_upload_over_the_limit_is_refused_and_leaves_nothing(served):
    """Was: a 2 GB upload was accepted and written to the temporary folder."""
    _, url, uploads = served
    before = set(_files_in(uploads))
    status, text = _post_file(url, "huge.png", b"\0" * (1024 * 1024))
    assert status == 413 and "maximum allowed size" in text
    assert set(_files_in(uploads)) == before
    status, text = _post_file(url, "small.png", b"\0" * 1000)
    assert status == 200 and json.loads(text)[0].startswith(str(uploads))


# ---------------------------------------------------------------------- the page, in headless Chromium
@pytest.mark.slow
@pytest.mark.browser
def test_page_load_box_refuses_a_path_and_loads_a_name(served):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no browser at {CHROMIUM} (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    _, url, _ = served
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(url)
        page.wait_for_selector("#picture img")
        page.click("text=Load a saved plugin")
        box = "#plugin-path input"
        page.fill(box, "../../etc/passwd")
        page.press(box, "Enter")
        page.click("#plugin-backbone input")
        page.get_by_role("option", name="mnist-vae").click()
        page.click("#plugin-load")
        page.wait_for_selector("#status .plugen-error", timeout=15000)
        assert "no plugin named '../../etc/passwd' in the plugins folder" in page.inner_text("#status")
        page.click(box)
        page.get_by_role("option", name="tiny.plugin", exact=True).click()
        page.click("#plugin-load")
        page.wait_for_function(
            "() => document.querySelector('#status').innerText.includes('loaded tiny.plugin')", timeout=15000
        )
        assert page.input_value("#model input") == "tiny.plugin on mnist-vae"
        browser.close()
