"""Editor benchmark (issue: interactive editor): how fast a slider move updates the picture.

    python benchmarks/ui.py            # ~2 min on 2 CPU cores (fits the two demos once)
    python benchmarks/ui.py --quick    # smoke run: short fits, few moves

Measures, for the MNIST, Shapes and (when the SMILES backbone ships) molecule demos as
``plugen ui`` serves them (one torch thread):

- start-up: fitting the demo plugin into an empty cache, then loading it from the cache;
- the callback alone: :meth:`plugen.ui.app.Editor.slide` (edit, decode, re-encode, predict, draw),
  also with one re-encoding round of the edit (the page's "re-encode edits" box);
- the page: in headless Chromium (Playwright driving /usr/bin/chromium), from the slider's input
  event to the new picture decoded on the page, including the HTTP round trip and Gradio.

Writes ``benchmarks/results/ui.{json,md}`` and the README's screenshot ``docs/ui.png``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import socket
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from plugen.ui.browser import MOVE_JS

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
SCREENSHOT = ROOT / "docs" / "ui.png"
CHROMIUM = "/usr/bin/chromium"


def machine() -> dict:
    import gradio
    from core import (
        machine as core_machine,  # benchmarks/core.py: CPU, threads, versions
    )

    return {**core_machine(), "gradio": gradio.__version__}


def summary(ms: list[float]) -> dict:
    a = np.asarray(ms, np.float64)
    return {
        "n": int(a.size),
        "median_ms": round(float(np.median(a)), 1),
        "p90_ms": round(float(np.quantile(a, 0.9)), 1),
        "max_ms": round(float(a.max()), 1),
        "first_ms": round(float(a[0]), 1),
    }


def start_up(name: str, cache: Path, fit: dict | None) -> tuple[object, dict]:
    from plugen.ui import sources

    shipped = False
    if name == "molecules":  # the molecules package may ship its fitted plugin: then nothing is fitted
        from plugen.molecules import design

        shipped = Path(design.DEFAULT_PLUGIN).exists()
    t = time.perf_counter()
    sources.demo(name, cache=cache, fit=fit, log=lambda m: print(m, file=sys.stderr, flush=True))
    cold = time.perf_counter() - t
    t = time.perf_counter()
    ws = sources.demo(name, cache=cache, fit=fit, log=lambda m: None)
    warm = time.perf_counter() - t
    return ws, {
        "fit_into_empty_cache_s": round(cold, 1),
        "load_from_cache_s": round(warm, 2),
        "shipped_plugin": shipped,
        "fit": None if shipped else sources.fit_settings(name, fit),
        "training_epochs": ws.plugin.history_.get("epochs"),
        "training_rows": ws.plugin.schema_.labels[0].observed,
    }


def cli_start(cache: Path) -> float:
    """Seconds from running ``plugen ui --demo mnist`` (its plugin already cached) to the server
    announcing that it serves, warmed up."""
    import subprocess

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "plugen", "ui", "--demo", "mnist", "--port", str(port), "--cache", str(cache)],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    try:
        for line in proc.stderr:
            if "plugen editor on" in line:
                return round(time.perf_counter() - t, 1)
        raise RuntimeError(f"plugen ui exited with {proc.wait()} before serving")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def callback_latency(editor, title: str, slot: int, values: list[float], moves: int, rounds: int = 0) -> dict:
    state, view = editor.choose(title)
    ws = editor.workspace(title)
    from plugen.ui.workspace import slider_values

    current = slider_values(ws.controls(), view.predictions)
    ms = []
    for k in range(moves):
        current[slot] = values[k % len(values)]
        t = time.perf_counter()
        state, _ = editor.slide(state, slot, current, rounds)
        ms.append((time.perf_counter() - t) * 1e3)
    return summary(ms)


def browser_latency(url: str, plan: list[dict], screenshot: Path | None) -> dict:
    from playwright.sync_api import sync_playwright

    out, external = {}, []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})

        def offline(route):
            if route.request.url.startswith(url.rstrip("/")) or route.request.url.startswith(("data:", "blob:")):
                return route.continue_()
            external.append(route.request.url)
            return route.abort()

        page.route("**/*", offline)
        t = time.perf_counter()
        page.goto(url)
        page.wait_for_selector("#picture img")
        out["page_load_s"] = round(time.perf_counter() - t, 2)
        for item in plan:
            if item.get("choose"):
                page.click("#model input")
                page.get_by_role("option", name=item["choose"]).click()
                page.wait_for_function(
                    "t => document.querySelector('#slider-0 label, #slider-0 span') && "
                    "document.querySelector('#slider-0').innerText.includes(t)",
                    arg=item["first_label"],
                )
                page.wait_for_timeout(300)
            ms = [page.evaluate(MOVE_JS, [item["slot"], v]) for v in item["values"]]
            out[item["name"]] = summary(ms)
            if item.get("screenshot") and screenshot is not None:
                # the README's picture: a digit edited to a thick 3, and eight generated 3s
                page.evaluate(MOVE_JS, [0, 3])
                page.click("#fixed label:has-text('digit')")
                page.click("#generate")
                page.wait_for_selector("#gallery img", timeout=20000)
                page.wait_for_timeout(500)
                screenshot.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(screenshot), full_page=True)
        browser.close()
    out["external_requests"] = external
    return out


def render(result: dict) -> str:
    m = result["machine"]
    lines = [
        "# Editor latency (`plugen ui`)",
        "",
        f"Command: `{result['command']}`; {m['cpu']}, torch {m['torch']} ({m['torch_threads']} thread), "
        f"Gradio {m['gradio']}, headless Chromium {result.get('chromium', '?')}.",
        "",
        "A slider move: the callback alone is edit + decode + re-encode + predict + draw; the page figure is "
        "from the range input's `input` event to the new picture decoded in the browser (HTTP round trip, "
        "Gradio, PNG), measured in the page with `performance.now()`. Goal: <= 200 ms. With the page's "
        '"re-encode edits" box ticked the callback also decodes, encodes and edits once more '
        "(`plugen.reencode`).",
        "",
        "| demo | callback median / p90 / max | callback, re-encoded | page median / p90 / max | page, first move "
        "| moves |",
        "|---|---|---|---|---|---|",
    ]
    for name in result["demos"]:
        c, b = result["demos"][name]["callback"], result["browser"].get(name)
        r = result["demos"][name].get("callback_reencoded")
        again = f"{r['median_ms']} / {r['p90_ms']} / {r['max_ms']} ms" if r else "n/a"
        page = f"{b['median_ms']} / {b['p90_ms']} / {b['max_ms']} ms" if b else "n/a"
        first = f"{b['first_ms']} ms" if b else "n/a"
        lines.append(
            f"| {name} | {c['median_ms']} / {c['p90_ms']} / {c['max_ms']} ms | {again} | {page} | {first} | "
            f"{c['n']} / {b['n'] if b else 0} |"
        )
    lines += [
        "",
        "Start-up (first start fits the demo plugin into the cache; later starts load it):",
        "",
        "| demo | fit into an empty cache | load from the cache (in-process) | fit settings | epochs |",
        "|---|---|---|---|---|",
    ]
    for name, d in result["demos"].items():
        s = d["start_up"]
        if s.get("shipped_plugin"):
            lines.append(
                f"| {name} | none: loads the shipped plugin in {s['fit_into_empty_cache_s']} s | "
                f"{s['load_from_cache_s']} s | shipped | {s['training_epochs']} |"
            )
        else:
            lines.append(
                f"| {name} | {s['fit_into_empty_cache_s']} s | {s['load_from_cache_s']} s | "
                f"{', '.join(f'{k} {v}' for k, v in s['fit'].items() if k != 'seed')} | {s['training_epochs']} |"
            )
    if result.get("cli_start_cached_s") is not None:
        lines += [
            "",
            f"`plugen ui --demo mnist` with its plugin cached serves (warmed up) {result['cli_start_cached_s']} s "
            "after the command starts (Python, torch and Gradio imports included).",
            "",
        ]
    lines += [
        "",
        f"Page load: {result['browser'].get('page_load_s')} s. Requests to anything but the local server: "
        f"{len(result['browser'].get('external_requests', []))}.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short fits and few moves (smoke run)")
    parser.add_argument("--no-browser", action="store_true", help="callback timings only")
    parser.add_argument("--output", default=str(RESULTS), help="results folder")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # as plugen ui runs
    from plugen.ui.app import Editor, offline_environment
    from plugen.ui.server import serve

    offline_environment()
    fit = {"max_epochs": 3} if args.quick else None
    moves = 10 if args.quick else 40
    cache = Path(tempfile.mkdtemp(prefix="plugen-ui-bench-"))
    result: dict = {
        "command": "python benchmarks/ui.py" + ("".join(" " + shlex.quote(a) for a in (argv or sys.argv[1:]))),
        "machine": machine(),
        "demos": {},
        "browser": {},
    }
    workspaces = {}
    plan = {
        "mnist": {"slot": 1, "label": "thickness", "values": [1.2, 1.8, 2.4, 3.0, 3.6, 4.2, 4.8]},
        "shapes": {"slot": 2, "label": "size", "values": [3.5, 4.5, 5.5, 6.5, 7.5]},
        # decoded molecules are discrete: alternate between two logP values that give different ones
        "molecules": {"slot": 0, "label": "logP", "values": [-1.0, 5.0], "first": "logP"},
    }
    from plugen.ui import sources

    names = ["mnist", "shapes"] + (["molecules"] if "molecules" in sources.demos() else [])
    for name in names:
        ws, start = start_up(name, cache, fit)
        workspaces[name] = ws
        editor = Editor({ws.title: ws}, initial=ws.title)
        timed = (editor, ws.title, plan[name]["slot"], plan[name]["values"], moves)
        result["demos"][name] = {
            "start_up": start,
            "callback": callback_latency(*timed),
            "callback_reencoded": callback_latency(*timed, rounds=1),
        }
        print(f"[{name}] callback: {result['demos'][name]['callback']}", file=sys.stderr, flush=True)
    # quick mode's short fit is cached under other settings than the command's: it would fit again
    result["cli_start_cached_s"] = None if args.quick else cli_start(cache)
    print(f"plugen ui --demo mnist, plugin cached: serving after {result['cli_start_cached_s']} s", file=sys.stderr)
    if not args.no_browser and Path(CHROMIUM).exists():
        import subprocess

        result["chromium"] = subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True).stdout.strip()
        editor = Editor({workspaces[n].title: workspaces[n] for n in names}, initial=workspaces["mnist"].title)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        app, url = serve(editor, port=port, block=False, quiet=True)
        try:
            steps = []
            for name in names:
                values = [plan[name]["values"][k % len(plan[name]["values"])] for k in range(moves)]
                step = {"name": name, "slot": plan[name]["slot"], "values": values}
                if name == "mnist":
                    step["screenshot"] = True
                    step["values"] = values[:-1] + [3.6]
                else:
                    step["choose"] = workspaces[name].title
                    step["first_label"] = {"shapes": "shape", "molecules": "logP"}[name]
                steps.append(step)
            result["browser"] = browser_latency(url, steps, SCREENSHOT)
        finally:
            app.close()
        print(f"browser: {result['browser']}", file=sys.stderr, flush=True)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    (out / "ui.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "ui.md").write_text(render(result))
    print((out / "ui.md").read_text())
    return result


if __name__ == "__main__":
    main()
