"""Shipped backbones, loaded by name: ``plugen.backbones.load("mnist-vae")``.

Each shipped backbone is two files in ``plugen/backbones/weights/``: ``<name>.safetensors`` (the
weights) and ``<name>.json``: its kind (``"autoencoder"`` or ``"gan"``), the architecture class
and keyword arguments, the latent size, the sample shape, the data it was trained on, its training
summary, and the command that reproduces it. Architecture classes register themselves with
:func:`architecture`; an autoencoder class has ``encode(x) -> z`` (a VAE returns its mean) and
``decode(z) -> x``, a GAN generator has ``forward(z) -> x``.
"""

from __future__ import annotations

import hashlib
import json
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from plugen.backbones.base import AutoencoderBackbone, Backbone, GANBackbone
from plugen.errors import CheckpointError, InputError

WEIGHTS = Path(__file__).parent / "weights"
ARCHITECTURES: dict[str, type[nn.Module]] = {}


def architecture(cls: type[nn.Module]) -> type[nn.Module]:
    """Class decorator: make an architecture loadable from a backbone's JSON description."""
    ARCHITECTURES[cls.__name__] = cls
    return cls


def available(directory: Path = WEIGHTS) -> list[str]:
    """Names of the shipped backbones."""
    return sorted(p.stem for p in Path(directory).glob("*.json"))


#: other names of shipped backbones: ``smiles-vae`` reads and writes SMILES through SELFIES tokens
ALIASES = {"smiles-vae": "selfies-vae"}


def describe(name: str, directory: Path = WEIGHTS) -> dict:
    """The JSON description of a shipped backbone."""
    name = ALIASES.get(name, name) if not (Path(directory) / f"{name}.json").is_file() else name
    path = Path(directory) / f"{name}.json"
    if not path.is_file():
        raise InputError(f"unknown backbone {name!r}; shipped backbones: {available(directory)}")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"corrupted backbone description {path}: {exc}") from None


def load_model(name: str, device: str = "cpu", directory: Path = WEIGHTS) -> tuple[nn.Module, dict]:
    """The frozen ``nn.Module`` stored as ``name`` in ``directory`` and its JSON description."""
    meta = describe(name, directory)
    name = meta.get("name", name)
    weights = Path(directory) / f"{name}.safetensors"
    if not weights.is_file():
        raise CheckpointError(
            f"weights of {name!r} are missing ({weights}); reproduce them with: {meta.get('reproduce')}"
        )
    if meta.get("weights_sha256") and _sha256(weights) != meta["weights_sha256"]:
        raise CheckpointError(f"corrupted weights {weights}: checksum mismatch")
    cls = architecture_class(meta["architecture"]["class"])
    if cls is None:
        raise CheckpointError(f"{name!r} needs unknown architecture {meta['architecture']['class']!r}")
    model = cls(**meta["architecture"].get("kwargs", {}))
    try:
        model.load_state_dict(load_file(str(weights)))
    except Exception as exc:
        raise CheckpointError(f"{name!r}: weights do not fit its architecture ({exc})") from None
    model = model.to(device).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model, meta


def load(name: str, device: str = "cpu", directory: Path = WEIGHTS) -> Backbone:
    """A shipped backbone by name, frozen, on ``device``."""
    model, meta = load_model(name, device, directory)
    name = meta.get("name", name)  # an alias loads under the shipped name
    if hasattr(model, "as_backbone"):  # an architecture with a backbone class of its own (molecules)
        backbone: Backbone = model.as_backbone(name=name, device=device)
    elif meta["kind"] == "gan":
        backbone = GANBackbone(model, meta["latent_dim"], name=name)
    elif meta["kind"] == "autoencoder":
        backbone = AutoencoderBackbone(model.encode, model.decode, meta["latent_dim"], name=name)
        backbone._device = torch.device(device)
    else:
        raise InputError(f"{name!r} is a {meta['kind']}, not a backbone")
    backbone.model = model
    backbone.meta = meta
    return backbone


def save(
    model: nn.Module,
    name: str,
    kind: str,
    latent_dim: int | None,
    sample_shape: list[int],
    kwargs: dict[str, Any],
    info: dict[str, Any],
    directory: Path = WEIGHTS,
) -> Path:
    """Write a trained model (a backbone, or an evaluator with ``kind="classifier"``) as
    ``<name>.safetensors`` + ``<name>.json`` in ``directory``."""
    if kind not in ("autoencoder", "gan", "classifier", "molecules"):
        raise ValueError(f"kind must be 'autoencoder', 'gan', 'classifier' or 'molecules', got {kind!r}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    weights = directory / f"{name}.safetensors"
    tmp = weights.with_suffix(".tmp")
    save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, str(tmp))
    tmp.chmod(0o644)
    tmp.replace(weights)
    meta = {
        "name": name,
        "kind": kind,
        "latent_dim": latent_dim,
        "sample_shape": sample_shape,
        "architecture": {"class": type(model).__name__, "kwargs": kwargs},
        "weights_sha256": _sha256(weights),
        **info,
    }
    (directory / f"{name}.json").write_text(json.dumps(meta, indent=2) + "\n")
    return weights


def architecture_class(name: str) -> type[nn.Module] | None:
    """The architecture class called ``name``: registered in this process with :func:`architecture`,
    or announced by an installed package in the ``plugen.architectures`` entry-point group."""
    if name not in ARCHITECTURES:
        found = [ep for ep in entry_points(group="plugen.architectures") if ep.name == name]
        if found:
            ARCHITECTURES[name] = found[0].load()
    return ARCHITECTURES.get(name)


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
