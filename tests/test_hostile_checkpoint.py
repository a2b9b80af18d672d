"""Hostile checkpoints: crafted plugin.json and safetensors headers are refused before anything is
built, saving survives kills at any moment, and checkpoint files respect the umask."""

import json
import os
import random
import shutil
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import quick

import plugen
from plugen import FPN, CheckpointError, PluGeN
from plugen.checkpoint import META, WEIGHTS
from plugen.replace import leftovers

SRC = Path(__file__).resolve().parents[1] / "src"


@pytest.fixture(scope="module")
def saved(tmp_path_factory, small):
    Z, Y, labels = small
    root = tmp_path_factory.mktemp("hostile-ck")
    models = {
        "plugen": quick(PluGeN, labels, hidden_features=16),
        "fpn": quick(FPN, labels, flow="maf", hidden_features=16),
    }
    for name, model in models.items():
        model.fit(Z, Y).save(root / name)
    return root, models


def crafted(saved, name, tmp_path, mutate) -> Path:
    """A copy of a saved checkpoint whose plugin.json ``mutate(meta)`` changed."""
    root, _ = saved
    path = Path(shutil.copytree(root / name, tmp_path / name))
    meta = json.loads((path / META).read_text())
    mutate(meta)
    (path / META).write_text(json.dumps(meta))
    return path


def setter(*keys_and_value):
    *keys, value = keys_and_value

    def mutate(meta):
        target = meta
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value

    return mutate


def label(index, field, value):
    return setter("labels", index, field, value)


#: (what, checkpoint, mutation, message the refusal must contain)
CRAFTED = [
    (
        "a million transforms",
        "plugen",
        setter("params", "transforms", 10**6),
        "params.transforms must be a whole number",
    ),
    ("a million hidden features", "fpn", setter("params", "hidden_features", 10**6), "params.hidden_features"),
    ("a million layers", "plugen", setter("params", "depth", 10**6), "params.depth"),
    ("transforms as text", "plugen", setter("params", "transforms", "4"), "params.transforms"),
    ("transforms as a float", "plugen", setter("params", "transforms", 4.5), "params.transforms"),
    ("transforms as a boolean", "plugen", setter("params", "transforms", True), "params.transforms"),
    ("unknown flow", "fpn", setter("params", "flow", "glow"), "params.flow must be one of"),
    ("params not an object", "plugen", setter("params", [1, 2]), "params must be an object"),
    ("unknown parameter", "plugen", setter("params", "bogus", 1), "does not match its own description"),
    ("bad hyperparameter", "plugen", setter("params", "sigma", -1.0), "does not match its own description"),
    ("huge latent size", "plugen", setter("latent_dim", 10**9), "latent_dim must be a whole number"),
    ("latent size as text", "plugen", setter("latent_dim", "8"), "latent_dim must be a whole number"),
    ("other latent size", "fpn", setter("latent_dim", 9), "does not match its own description"),
    ("no labels", "plugen", setter("labels", []), "labels must be a list"),
    ("labels not a list", "plugen", setter("labels", {"a": 1}), "labels must be a list"),
    ("label std 0", "plugen", label(2, "std", 0), "standard deviation > 0"),
    ("label std negative", "fpn", label(2, "std", -2.0), "standard deviation > 0"),
    ("label mean text", "plugen", label(2, "mean", "x"), "finite mean"),
    ("label unknown kind", "plugen", label(0, "kind", "ordinal"), "unknown kind"),
    ("label empty name", "plugen", label(0, "name", ""), "non-empty name"),
    ("label repeated name", "plugen", label(1, "name", "a"), "non-empty name of its own"),
    ("binary frequency 2", "plugen", label(0, "frequencies", [2.0]), "strictly between 0 and 1"),
    ("binary frequency 0", "fpn", label(0, "frequencies", [0.0]), "strictly between 0 and 1"),
    ("two binary frequencies", "plugen", label(0, "frequencies", [0.5, 0.5]), "one frequency"),
    ("classes as text", "fpn", label(3, "classes", ["x", "y", "z"]), "integer classes"),
    ("unsorted classes", "plugen", label(3, "classes", [2, 1, 0]), "sorted and distinct"),
    ("too many classes", "fpn", label(3, "classes", list(range(70000))), "integer classes"),
    ("frequencies not per class", "plugen", label(3, "frequencies", [0.5, 0.5]), "one frequency per class"),
    ("too few quantiles", "plugen", label(2, "quantiles", [0.0, 1.0]), "must hold 32 numbers"),
    ("decreasing quantiles", "fpn", label(2, "quantiles", list(range(32, 0, -1))), "increasing order"),
    ("range low > high", "plugen", label(2, "low", 99.0), "low <= high"),
    ("unknown label field", "plugen", label(0, "weights", [1]), "unknown fields"),
    ("negative observed", "plugen", label(0, "observed", -3), "observed"),
    ("format_version as text", "plugen", setter("format_version", "2"), "format_version must be a whole number"),
    ("format_version as boolean", "plugen", setter("format_version", True), "format_version must be a whole number"),
    ("format_version from the future", "plugen", setter("format_version", 99), "newer plugen"),
    ("training a list", "plugen", setter("training", [1, 2]), "training must be an object"),
    ("training text", "fpn", setter("training", "fast"), "training must be an object"),
    ("estimator a number", "plugen", setter("estimator", 5), "estimator must be a class name"),
    ("unknown estimator", "plugen", setter("estimator", "Glow"), "unknown estimator"),
    ("checksum not hex", "plugen", setter("weights_sha256", "z" * 64), "weights_sha256"),
    ("checksum of other weights", "plugen", setter("weights_sha256", "0" * 64), "does not match its recorded checksum"),
    ("backbone a list", "plugen", setter("backbone", ["x"]), "backbone must be a string"),
    ("not a plugen checkpoint", "plugen", setter("format", "other"), "is not a plugen checkpoint"),
    (
        "plausible but far larger flow",
        "fpn",
        lambda m: m["params"].update(transforms=256, hidden_features=65536),
        "does not match its own description",
    ),
    ("more layers than the weights hold", "plugen", setter("params", "depth", 3), "does not match its own description"),
]


@pytest.mark.parametrize("what, name, mutate, message", CRAFTED, ids=[c[0] for c in CRAFTED])
def test_crafted_metadata_is_refused_before_building(saved, tmp_path, what, name, mutate, message):
    path = crafted(saved, name, tmp_path, mutate)
    with pytest.raises(CheckpointError, match=message):
        plugen.load(path)


@pytest.mark.parametrize(
    "what, name, mutate, message",
    [c for c in CRAFTED if "format" in c[0] or "training" in c[0] or "std" in c[0]],
    ids=lambda c: c if isinstance(c, str) else "",
)
def test_plugen_info_refuses_crafted_metadata_with_a_message(saved, tmp_path, capsys, what, name, mutate, message):
    from plugen.cli import main

    path = crafted(saved, name, tmp_path, mutate)
    assert main(["info", str(path)]) == 2
    assert message.split(" must")[0] in capsys.readouterr().err


def test_metadata_that_is_not_json_too_large_or_nested_without_end_is_refused(saved, tmp_path):
    root, _ = saved
    cases = {
        "binary": os.urandom(4000),
        "nested": b"[" * 100_000 + b"]" * 100_000,
        "huge": b"{" + b" " * (17 << 20) + b"}",
        "nan": b'{"format": NaN}',
    }
    for case, content in cases.items():
        path = Path(shutil.copytree(root / "plugen", tmp_path / case))
        (path / META).write_bytes(content)
        with pytest.raises(CheckpointError, match="not valid JSON|more than the|not a plugen checkpoint"):
            plugen.load(path)


def reseal(path: Path) -> None:
    """Record the checksum of the (changed) weights in plugin.json, as a crafted checkpoint would."""
    import hashlib

    meta = json.loads((path / META).read_text())
    meta["weights_sha256"] = hashlib.sha256((path / WEIGHTS).read_bytes()).hexdigest()
    (path / META).write_text(json.dumps(meta))


def write_safetensors(path: Path, header: dict, data: bytes, declared: int | None = None) -> None:
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw) if declared is None else declared) + raw + data)


def test_crafted_safetensors_headers_are_refused(saved, tmp_path):
    root, _ = saved
    entry = {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}
    cases = {
        "huge declared header": ({"x": entry}, bytes(16), 2**60, "declares a header"),
        "header not JSON": (None, b"\xff" * 64, 40, "malformed header"),
        "tensor larger than the file": ({"x": dict(entry, shape=[10**6, 10**6])}, bytes(16), None, "does not fit"),
        "unknown dtype": ({"x": dict(entry, dtype="F128")}, bytes(16), None, "unknown dtype"),
        "negative shape": ({"x": dict(entry, shape=[-2, -2])}, bytes(16), None, "malformed shape"),
        "data beyond the tensors": ({"x": entry}, bytes(64), None, "tensors end at byte"),
        "other tensor names": ({"x": entry}, bytes(16), None, "(?s)does not match its own description.*Missing key"),
        "short file": (None, b"\x01\x02", None, "shorter than a safetensors header"),
    }
    for case, (header, data, declared, message) in cases.items():
        path = Path(shutil.copytree(root / "plugen", tmp_path / case.replace(" ", "-")))
        if header is None and declared is None:
            (path / WEIGHTS).write_bytes(data)
        elif header is None:
            (path / WEIGHTS).write_bytes(struct.pack("<Q", declared) + data)
        else:
            write_safetensors(path / WEIGHTS, header, data, declared)
        reseal(path)
        with pytest.raises(CheckpointError, match=message):
            plugen.load(path)


def test_weights_of_another_shape_or_dtype_are_refused_before_reading(saved, tmp_path):
    from safetensors.torch import load_file, save_file

    root, _ = saved
    for case in ("shape", "dtype"):
        path = Path(shutil.copytree(root / "fpn", tmp_path / case))
        state = load_file(str(path / WEIGHTS))
        if case == "shape":
            name = next(k for k, v in state.items() if v.ndim and v.shape[-1] > 1)
            state[name] = state[name][..., :1].contiguous()
        else:
            name = next(k for k, v in state.items() if not v.is_floating_point())
            state[name] = state[name].double()
        save_file(state, str(path / WEIGHTS))
        reseal(path)
        with pytest.raises(CheckpointError, match="does not match its own description"):
            plugen.load(path)


REFUSAL_PROBE = """
import json, resource, sys, time
import plugen
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
try:
    plugen.load(sys.argv[1])
    outcome = "loaded"
except plugen.CheckpointError as exc:
    outcome = str(exc)
seconds = time.perf_counter() - start
grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
print(json.dumps({"outcome": outcome, "seconds": seconds, "grown_kb": grown}))
"""


@pytest.mark.slow
@pytest.mark.parametrize(
    "mutate",
    [
        setter("params", "transforms", 10**6),
        lambda m: m["params"].update(transforms=256, hidden_features=65536, depth=32),
        lambda m: m.update(latent_dim=2**20),
    ],
    ids=["transforms-1e6", "largest-within-bounds", "latent-dim-2^20"],
)
def test_crafted_checkpoint_is_refused_within_a_second_and_200_mb(saved, tmp_path, mutate):
    path = crafted(saved, "fpn", tmp_path, mutate)
    env = dict(os.environ, PYTHONPATH=str(SRC), OMP_NUM_THREADS="1")
    probe = subprocess.run(
        [sys.executable, "-c", REFUSAL_PROBE, str(path)], capture_output=True, text=True, env=env, timeout=120
    )
    result = json.loads(probe.stdout.strip().splitlines()[-1])
    assert result["outcome"] != "loaded" and "checkpoint" in result["outcome"]
    assert result["seconds"] < 1.0, result
    assert result["grown_kb"] < 200 * 1024, result


# ---------------------------------------------------------------- atomic save


SAVER = """
import os, signal, sys
import torch
signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # killed children are reaped at once
torch.set_num_threads(1)
import plugen
from plugen import replace
if sys.argv[3] == "no-exchange":
    replace._exchange = lambda a, b: False
models = [plugen.load(sys.argv[1] + "/a"), plugen.load(sys.argv[1] + "/b")]
for line in sys.stdin:  # one child per line: it saves the two plugins in turn until killed
    pid = os.fork()
    if pid == 0:
        i = 0
        while True:
            models[i % 2].save(sys.argv[2])
            i += 1
    print(pid, flush=True)
"""


class Savers:
    """A process that loads two plugins once, then forks, on request, children that save them in
    turn to one path until killed (forking spares each kill a Python and torch start-up)."""

    def __init__(self, root: Path, target: Path, mode: str):
        env = dict(os.environ, PYTHONPATH=str(SRC), OMP_NUM_THREADS="1")
        self.server = subprocess.Popen(
            [sys.executable, "-c", SAVER, str(root), str(target), mode],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            text=True,
        )

    def start(self) -> int:
        self.server.stdin.write("go\n")
        self.server.stdin.flush()
        return int(self.server.stdout.readline())

    def close(self):
        self.server.stdin.close()
        self.server.wait(timeout=60)


def kill(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)
    while True:  # the child is the server's: wait until it is gone
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.002)


def two_plugins(tmp_path, small):
    models = {}
    for name, seed in (("a", 0), ("b", 1)):
        models[name] = quick(PluGeN, small[2], hidden_features=16, seed=seed).fit(small[0], small[1])
        models[name].save(tmp_path / name)
    return models


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["exchange", "no-exchange"])
def test_a_save_killed_at_any_moment_leaves_the_old_or_the_new_checkpoint(tmp_path, small, mode):
    """SIGKILL processes that save two plugins in turn to one path, at random moments: the path
    always holds one of the two, loadable; the next save or load leaves no temporary directories."""
    Z = small[0][:20]
    models = two_plugins(tmp_path, small)
    target = tmp_path / "out" / "ck.plugin"
    models["a"].save(target)
    expected = [models["a"].predict(Z), models["b"].predict(Z)]
    rng = random.Random(0)
    savers = Savers(tmp_path, target, mode)
    kills, seen = 40, set()
    try:
        for _ in range(kills):
            pid = savers.start()
            time.sleep(rng.uniform(0.0, 0.25))
            kill(pid)
            if mode == "exchange":
                assert (target / META).is_file()  # never missing, not even before the next load
            got = plugen.load(target).predict(Z)  # also removes what the killed save left
            seen.add(next(i for i, e in enumerate(expected) if np.array_equal(got, e)))
            assert leftovers(target) == []
    finally:
        savers.close()
    models["b"].save(target)
    assert sorted(p.name for p in target.parent.iterdir()) == ["ck.plugin"]
    assert seen == {0, 1}  # the kills fell at different moments: both versions were found at the path


def test_a_save_killed_between_its_two_renames_is_recovered(saved, tmp_path):
    """Without an atomic exchange a kill can fall between 'old aside' and 'new in': the next load
    puts the complete new version (or else the old one) back at the path."""
    root, _ = saved
    target = tmp_path / "ck.plugin"
    dead = 2**22 + 12345  # above the default pid_max: no such process
    shutil.copytree(root / "plugen", tmp_path / f".ck.plugin.old-{dead}-aaaa")
    shutil.copytree(root / "fpn", tmp_path / f".ck.plugin.tmp-{dead}-bbbb")
    assert type(plugen.load(target)) is FPN  # the new version, complete
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.plugin"]
    shutil.rmtree(target)
    shutil.copytree(root / "plugen", tmp_path / f".ck.plugin.old-{dead}-cccc")
    half = Path(shutil.copytree(root / "fpn", tmp_path / f".ck.plugin.tmp-{dead}-dddd"))
    (half / WEIGHTS).write_bytes(b"half-written")
    assert type(plugen.load(target)) is PluGeN  # the new one was incomplete: the old one comes back
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.plugin"]


def test_leftovers_of_live_processes_are_kept(saved, tmp_path):
    root, models = saved
    mine = tmp_path / f".ck.plugin.tmp-{os.getpid()}-eeee"
    mine.mkdir()
    old_style = tmp_path / ".ck.plugin.tmp-k2j3h4"  # written by an earlier plugen: no process id
    old_style.mkdir()
    models["plugen"].save(tmp_path / "ck.plugin")
    assert mine.is_dir() and not old_style.exists()


@pytest.mark.parametrize(
    "umask, directory, file", [(0o022, 0o755, 0o644), (0o077, 0o700, 0o600), (0o002, 0o775, 0o664)]
)
def test_checkpoint_files_respect_the_umask(saved, tmp_path, umask, directory, file):
    _, models = saved
    previous = os.umask(umask)
    try:
        path = models["plugen"].save(tmp_path / "ck")
        from plugen.io import write_array

        out = write_array(tmp_path / "z.npy", np.zeros((2, 2)))
    finally:
        os.umask(previous)
    assert path.stat().st_mode & 0o777 == directory
    assert {(p.stat().st_mode & 0o777) for p in path.iterdir()} == {file}
    assert out.stat().st_mode & 0o777 == file


@pytest.mark.slow
def test_a_running_save_never_leaves_the_path_empty(tmp_path, small):
    models = two_plugins(tmp_path, small)
    target = tmp_path / "ck.plugin"
    models["a"].save(target)
    savers = Savers(tmp_path, target, "exchange")
    try:
        pid = savers.start()
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            assert (target / META).is_file() and (target / WEIGHTS).is_file()
        kill(pid)
    finally:
        savers.close()
    plugen.load(target)
    assert leftovers(target) == []


def test_training_state_file_respects_the_umask(tmp_path):
    from plugen.resume import save_state

    previous = os.umask(0o027)
    try:
        save_state(tmp_path / "s.pt", {"epoch": 1})
    finally:
        os.umask(previous)
    assert (tmp_path / "s.pt").stat().st_mode & 0o777 == 0o640
