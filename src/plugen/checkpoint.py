"""Checkpoints: a directory with ``weights.safetensors`` and ``plugin.json``.

The JSON records what the plugin was fitted on (latent size, label names, kinds and statistics,
backbone name), its hyperparameters and flow, the library and torch versions, the training
summary, the SHA-256 of the weights and, for a shipped backbone, that of the backbone's weights
(loading warns when the shipped backbone has changed since: its latents are no longer the ones the
plugin learnt). Saving writes a temporary sibling directory and swaps it into place
(:mod:`plugen.replace`), so a kill at any moment leaves the old or the new checkpoint at the path,
and the next save or load removes what killed saves left. Loading validates ``plugin.json`` and the
weights' header before it builds anything (:mod:`plugen.checkpoint_schema`), and refuses a
corrupted, crafted, foreign or mismatched checkpoint with a message that says which.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from plugen import checkpoint_schema, replace
from plugen.errors import CheckpointError

#: plugin classes by the name a checkpoint records (``"estimator"``); filled by :func:`estimator`
ESTIMATORS: dict[str, type] = {}

FORMAT = "plugen-checkpoint"
#: 2: continuous labels record their training range (low, high); 3: categorical labels their class names
#: (``names``, None without); 1 and 2 still load (their labels have no names)
FORMAT_VERSION = 3
META = "plugin.json"
WEIGHTS = "weights.safetensors"
#: settings that files written before they existed lack, with the value that says how those were trained
TRAINED_WITHOUT = {"check_rows": 0, "min_gain": 0.0}
#: settings of earlier versions that no longer exist (the training they steered is over)
RETIRED = ("min_improvement",)


def estimator(cls: type) -> type:
    """Class decorator: make a plugin class loadable from checkpoints that name it."""
    ESTIMATORS[cls.__name__] = cls
    return cls


def save_plugin(plugin, path: Path) -> Path:
    """Write ``plugin`` to the directory ``path`` atomically; returns the path."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise CheckpointError(f"cannot save to {path}: it is a file (a checkpoint is a directory)")
    if path.is_dir() and any(path.iterdir()) and not (path / META).is_file():
        raise CheckpointError(
            f"refusing to overwrite {path}: it is a non-empty directory that is not a plugen checkpoint"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    replace.recover(path, _is_complete)
    tmp = Path(tempfile.mkdtemp(prefix=replace.temporary_prefix(path), dir=path.parent))
    try:
        _write_checkpoint(plugin, tmp)
        replace.replace_directory(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def _write_checkpoint(plugin, directory: Path) -> None:
    """Weights and metadata into ``directory``, synced to disk, with the umask's permissions."""
    from plugen import __version__

    state = {k: v.detach().cpu().contiguous() for k, v in plugin.module_.state_dict().items()}
    save_file(state, str(directory / WEIGHTS))
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "estimator": type(plugin).__name__,
        "plugen_version": __version__,
        "torch_version": torch.__version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "latent_dim": plugin.latent_dim_,
        "backbone": plugin.backbone,
        "backbone_weights_sha256": shipped_backbone_digest(plugin.backbone),
        "labels": plugin.schema_.to_list(),
        "params": plugin.get_params(),
        "training": plugin.history_,
        "weights_sha256": _sha256(directory / WEIGHTS),
    }
    (directory / META).write_text(json.dumps(_json_safe(meta), indent=2, allow_nan=False) + "\n")
    for name in (WEIGHTS, META):
        with open(directory / name, "rb") as f:
            os.fsync(f.fileno())
    replace.apply_umask(directory)


def _is_complete(directory: Path) -> bool:
    """Whether ``directory`` holds a whole checkpoint (left by a save killed between its renames)."""
    try:
        meta = json.loads((directory / META).read_text())
        return _sha256(directory / WEIGHTS) == meta["weights_sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        return False


def read_metadata(path: Path) -> dict:
    """The checkpoint's ``plugin.json``, validated against the checkpoint schema (types and bounds of
    every field, :mod:`plugen.checkpoint_schema`)."""
    path = Path(path)
    replace.recover(path, _is_complete)
    if not path.exists():
        raise CheckpointError(f"no checkpoint at {path}")
    if not path.is_dir():
        raise CheckpointError(f"{path} is a file; a plugen checkpoint is a directory written by save()")
    if not (path / META).is_file():
        raise CheckpointError(f"{path} is not a plugen checkpoint: {META} is missing")
    meta = checkpoint_schema.load_json(path, path / META)
    return checkpoint_schema.validate_metadata(meta, path, FORMAT, FORMAT_VERSION)


def shipped_backbone_digest(name: str | None) -> str | None:
    """SHA-256 of the weights of the installed backbone ``name``; None for other names."""
    from plugen import extensions

    if not name:
        return None
    for zoo in extensions.backbone_zoos():
        try:
            return zoo.describe(name).get("weights_sha256")
        except Exception:  # noqa: BLE001 - not a backbone of this zoo (or an unreadable description)
            continue
    return None


def load_plugin(
    path: Path, expected=None, device: str = "cpu", backbone: str | None = None, latent_dim: int | None = None
):
    """Rebuild a plugin from ``path``. ``expected``: the estimator class the caller wants."""
    path = Path(path)
    meta = read_metadata(path)
    meta["params"] = saved_params(meta["params"])
    name = meta["estimator"]
    cls = ESTIMATORS.get(name)
    if cls is None:
        raise CheckpointError(f"{path} holds an unknown estimator {name!r}")
    if expected is not None and expected in ESTIMATORS.values() and cls is not expected:
        raise CheckpointError(f"{path} holds a {name} plugin; load it with {name}.load() or plugen.load()")
    if backbone is not None and meta.get("backbone") != backbone:
        raise CheckpointError(f"{path} was fitted on latents of backbone {meta.get('backbone')!r}, not {backbone!r}")
    fitted_on, shipped = meta.get("backbone_weights_sha256"), shipped_backbone_digest(meta.get("backbone"))
    if fitted_on and shipped and fitted_on != shipped:
        warnings.warn(
            f"{path} was fitted on latents of other weights of backbone {meta['backbone']!r} than the "
            f"shipped ones (weights SHA-256 {fitted_on[:12]}... vs {shipped[:12]}...): refit it on the "
            "current backbone's latents",
            UserWarning,
            stacklevel=3,
        )
    if latent_dim is not None and meta["latent_dim"] != latent_dim:
        raise CheckpointError(f"{path} was fitted on {meta['latent_dim']}-dim latents, not {latent_dim}-dim")
    weights = path / WEIGHTS
    if not weights.is_file():
        raise CheckpointError(f"corrupted checkpoint {path}: {WEIGHTS} is missing")
    header = checkpoint_schema.read_safetensors_header(path, weights)
    checkpoint_schema.check_described_size(meta, header, path)
    if _sha256(weights) != meta["weights_sha256"]:
        raise CheckpointError(f"corrupted checkpoint {path}: {WEIGHTS} does not match its recorded checksum")
    try:
        cls(**dict(meta["params"], device="cpu"))._check_params()
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"checkpoint {path} does not match its own description in {META}: {exc}") from None
    try:
        state = load_file(str(weights))
    except Exception as exc:  # safetensors raises its own error types
        raise CheckpointError(f"corrupted checkpoint {path}: cannot read {WEIGHTS} ({exc})") from None
    try:
        plugin = cls.from_saved(meta, state, device)
    except (TypeError, KeyError, ValueError, RuntimeError) as exc:
        detail = str(exc) if len(str(exc)) <= 600 else str(exc)[:600] + " ..."
        raise CheckpointError(f"checkpoint {path} does not match its own description in {META}: {detail}") from None
    checkpoint_schema.check_state_matches(plugin.module_.state_dict(), header, path)
    return plugin


def saved_params(params: dict) -> dict:
    """A file's hyperparameters as the current estimators take them: retired settings dropped,
    settings added since filled with the value the file was trained with."""
    params = {**TRAINED_WITHOUT, **{k: v for k, v in params.items() if k not in RETIRED}}
    # before the setting existed, per-epoch fits warmed up for 100 steps (with held-out checks, as the
    # automatic choice, None, still does)
    params.setdefault("warmup_steps", None if params["check_rows"] else 100)
    return params


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _json_safe(value):
    """Replace NaN/Inf by None so the JSON is standard."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value
