"""What a checkpoint may contain, checked before anything is built from it.

A checkpoint is a file that people send each other, so its ``plugin.json`` and the header of its
``weights.safetensors`` are validated first: every field's type and range (a schema with bounds),
then the size of the flow the parameters describe against the tensors the weights file really
holds, so that a crafted description (``transforms: 1000000``) is refused before any allocation.
Only after that is the plugin built and its state dict compared, name by name, shape by shape
and dtype by dtype, with the file's header; the weights themselves are read last.
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path

from plugen.errors import CheckpointError
from plugen.labels import KINDS, QUANTILES

#: ``plugin.json`` larger than this is refused unread (a real one is a few hundred kilobytes)
MAX_META_BYTES = 16 << 20
#: a ``weights.safetensors`` header larger than this is refused unread
MAX_HEADER_BYTES = 16 << 20
#: bounds of the sizes a checkpoint may describe
MAX_LATENT_DIM = 1 << 20
MAX_LABELS = 4096
MAX_CLASSES = 1 << 16
MAX_TRANSFORMS = 256
MAX_DEPTH = 32
MAX_HIDDEN = 1 << 16
MAX_TENSORS = 100_000
#: a flow may be built when the parameters imply at most this many times the elements the weights
#: file holds (the estimate is an upper bound), plus this many elements of slack
BUILD_FACTOR = 16
BUILD_SLACK = 1 << 22
#: safetensors dtype names and their sizes in bytes
DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}
#: output numbers per latent coordinate of each flow's conditioner (an upper bound)
FLOW_OUTPUTS = {"nice": 1, "realnvp": 2, "maf": 2, "nsf": 24}


def _fail(path: Path, message: str):
    raise CheckpointError(f"corrupted or crafted checkpoint {path}: {message}")


def _mismatch(path: Path, message: str):
    raise CheckpointError(f"checkpoint {path} does not match its own description in plugin.json: {message}")


def load_json(path: Path, file: Path) -> dict:
    """The JSON object in ``file``, refused when too large, not JSON or nested without end."""
    size = file.stat().st_size
    if size > MAX_META_BYTES:
        _fail(path, f"{file.name} is {size} bytes, more than the {MAX_META_BYTES} a checkpoint's metadata may have")
    try:
        return json.loads(file.read_bytes().decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise CheckpointError(f"corrupted checkpoint {path}: {file.name} is not valid JSON ({exc})") from None


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _int_in(path: Path, where: str, value, low: int, high: int) -> int:
    if not _is_int(value) or not low <= value <= high:
        _fail(path, f"{where} must be a whole number from {low} to {high}, got {value!r}")
    return value


def _numbers(path: Path, where: str, value, length: int | None = None) -> list:
    if not isinstance(value, list) or not all(_is_number(v) for v in value):
        _fail(path, f"{where} must be a list of finite numbers")
    if length is not None and len(value) != length:
        _fail(path, f"{where} must hold {length} numbers, got {len(value)}")
    return value


def validate_metadata(meta, path: Path, format_name: str, format_version: int) -> dict:
    """Check the types and bounds of every field of ``plugin.json`` a plugin is built from."""
    if not isinstance(meta, dict) or meta.get("format") != format_name:
        raise CheckpointError(f"{path} is not a plugen checkpoint (plugin.json has no format {format_name!r})")
    version = meta.get("format_version", 1)
    if not _is_int(version) or version < 1:
        _fail(path, f"format_version must be a whole number >= 1, got {version!r}")
    if version > format_version:
        raise CheckpointError(f"{path} was written by a newer plugen (checkpoint format {version}); upgrade plugen")
    missing = [k for k in ("estimator", "latent_dim", "labels", "params", "weights_sha256") if k not in meta]
    if missing:
        _fail(path, f"plugin.json lacks {missing}")
    if not isinstance(meta["estimator"], str) or not meta["estimator"]:
        _fail(path, f"estimator must be a class name, got {meta['estimator']!r}")
    _int_in(path, "latent_dim", meta["latent_dim"], 2, MAX_LATENT_DIM)
    sha = meta["weights_sha256"]
    if not isinstance(sha, str) or len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
        _fail(path, "weights_sha256 must be 64 lower-case hexadecimal digits")
    for key in ("backbone", "backbone_weights_sha256", "plugen_version", "torch_version", "created"):
        if meta.get(key) is not None and not isinstance(meta[key], str):
            _fail(path, f"{key} must be a string or null, got {type(meta[key]).__name__}")
    if meta.get("training") is not None and not isinstance(meta["training"], dict):
        _fail(path, f"training must be an object, got {type(meta['training']).__name__}")
    _validate_labels(meta["labels"], path)
    _validate_params(meta["params"], path)
    return meta


_LABEL_FIELDS = {
    "name",
    "kind",
    "observed",
    "frequencies",
    "classes",
    "names",
    "mean",
    "std",
    "quantiles",
    "low",
    "high",
}
#: a class name longer than this is refused
MAX_NAME_CHARS = 1000


def _validate_labels(labels, path: Path) -> None:
    if not isinstance(labels, list) or not 1 <= len(labels) <= MAX_LABELS:
        _fail(path, f"labels must be a list of 1 to {MAX_LABELS} labels")
    names = set()
    for i, label in enumerate(labels):
        where = f"label {i + 1}"
        if not isinstance(label, dict):
            _fail(path, f"{where} must be an object")
        unknown = sorted(set(label) - _LABEL_FIELDS)
        if unknown or not {"name", "kind"} <= set(label):
            _fail(path, f"{where} has unknown fields {unknown} or lacks name/kind")
        name, kind = label["name"], label["kind"]
        if not isinstance(name, str) or not name or name in names:
            _fail(path, f"{where} needs a non-empty name of its own, got {name!r}")
        names.add(name)
        if kind not in KINDS:
            _fail(path, f"label {name!r} has unknown kind {kind!r}")
        _int_in(path, f"label {name!r} observed", label.get("observed", 0), 0, 1 << 62)
        _validate_label_statistics(label, f"label {name!r}", path)


def _validate_label_statistics(label: dict, where: str, path: Path) -> None:
    kind = label["kind"]
    frequencies = _numbers(path, f"{where} frequencies", label.get("frequencies", []))
    if any(not 0 < f < 1 for f in frequencies):
        _fail(path, f"{where} frequencies must lie strictly between 0 and 1")
    classes = label.get("classes", [])
    if kind == "binary" and len(frequencies) != 1:
        _fail(path, f"{where} is binary: it needs one frequency, got {len(frequencies)}")
    if kind == "categorical":
        if not isinstance(classes, list) or not 2 <= len(classes) <= MAX_CLASSES or not all(map(_is_int, classes)):
            _fail(path, f"{where} needs 2 to {MAX_CLASSES} integer classes")
        if any(a >= b for a, b in zip(classes, classes[1:])):
            _fail(path, f"{where} classes must be sorted and distinct")
        if len(frequencies) != len(classes) or abs(sum(frequencies) - 1) > 1e-6:
            _fail(path, f"{where} needs one frequency per class, summing to 1")
        names = label.get("names")
        if names is not None and not (_class_names(names) and len(names) == len(classes)):
            _fail(path, f"{where} names must be one distinct non-empty string per class, or null")
    elif classes not in ([], None) or label.get("names") is not None:
        _fail(path, f"{where} is {kind}: it has no classes or class names")
    mean, std = label.get("mean", 0.0), label.get("std", 1.0)
    if not _is_number(mean) or not _is_number(std) or not std > 0:
        _fail(path, f"{where} needs a finite mean and a finite standard deviation > 0, got {mean!r}, {std!r}")
    if kind == "continuous":
        quantiles = _numbers(path, f"{where} quantiles", label.get("quantiles", []), QUANTILES)
        if any(a > b for a, b in zip(quantiles, quantiles[1:])):
            _fail(path, f"{where} quantiles must be in increasing order")
        low, high = label.get("low"), label.get("high")
        if (low is None) != (high is None) or (
            low is not None and not (_is_number(low) and _is_number(high) and low <= high)
        ):
            _fail(path, f"{where} range must be two finite numbers low <= high (or both null)")


def _validate_params(params, path: Path) -> None:
    if not isinstance(params, dict):
        _fail(path, f"params must be an object, got {type(params).__name__}")
    bounds = {"transforms": MAX_TRANSFORMS, "depth": MAX_DEPTH, "hidden_features": MAX_HIDDEN}
    for key, high in bounds.items():
        if key in params:
            _int_in(path, f"params.{key}", params[key], 1, high)
    if "flow" in params and params["flow"] not in FLOW_OUTPUTS:
        _fail(path, f"params.flow must be one of {sorted(FLOW_OUTPUTS)}, got {params['flow']!r}")
    labels = params.get("labels")
    if not isinstance(labels, dict) or not all(
        isinstance(k, str) and (v in KINDS if isinstance(v, str) else _class_names(v)) for k, v in labels.items()
    ):
        _fail(path, "params.labels must map label names to kinds or to lists of class names")


def _class_names(names) -> bool:
    """Whether ``names`` is a list of at least two distinct, non-empty, not too long strings."""
    return (
        isinstance(names, list)
        and 2 <= len(names) <= MAX_CLASSES
        and len(set(map(str, names))) == len(names)
        and all(isinstance(v, str) and 0 < len(v) <= MAX_NAME_CHARS for v in names)
    )


def read_safetensors_header(path: Path, weights: Path) -> dict[str, tuple[str, tuple[int, ...]]]:
    """``{name: (dtype, shape)}`` of the tensors in ``weights``, from its header alone; refuses a
    header that is too large, malformed, or whose tensors do not exactly fill the file."""
    size = weights.stat().st_size
    with open(weights, "rb") as f:
        prefix = f.read(8)
        if len(prefix) != 8:
            _fail(path, f"{weights.name} is shorter than a safetensors header")
        (length,) = struct.unpack("<Q", prefix)
        if length > min(MAX_HEADER_BYTES, size - 8):
            _fail(path, f"{weights.name} declares a header of {length} bytes (file: {size} bytes)")
        try:
            header = json.loads(f.read(length).decode("utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
            _fail(path, f"{weights.name} has a malformed header")
    if not isinstance(header, dict) or len(header) > MAX_TENSORS:
        _fail(path, f"{weights.name} has a malformed header")
    header.pop("__metadata__", None)
    out, end = {}, 0
    for name, entry in header.items():
        dtype, shape, offsets = _header_entry(path, weights.name, name, entry)
        if offsets[1] - offsets[0] != math.prod(shape) * DTYPE_BYTES[dtype]:
            _fail(path, f"{weights.name}: tensor {name!r} of shape {shape} does not fit its byte range")
        out[name], end = (dtype, tuple(shape)), max(end, offsets[1])
    if end != size - 8 - length:
        _fail(path, f"{weights.name}: its tensors end at byte {end} of the data, but the data has {size - 8 - length}")
    return out


def _header_entry(path: Path, file: str, name: str, entry) -> tuple[str, list[int], list[int]]:
    if not isinstance(entry, dict):
        _fail(path, f"{file}: the header entry of {name!r} is not an object")
    dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
    if dtype not in DTYPE_BYTES:
        _fail(path, f"{file}: tensor {name!r} has unknown dtype {dtype!r}")
    if not isinstance(shape, list) or len(shape) > 8 or not all(_is_int(s) and 0 <= s < 1 << 40 for s in shape):
        _fail(path, f"{file}: tensor {name!r} has a malformed shape {shape!r}")
    if not (
        isinstance(offsets, list)
        and len(offsets) == 2
        and all(_is_int(o) and o >= 0 for o in offsets)
        and offsets[0] <= offsets[1]
    ):
        _fail(path, f"{file}: tensor {name!r} has malformed data offsets {offsets!r}")
    return dtype, shape, offsets


def estimated_elements(meta: dict) -> int:
    """An upper bound of the number of elements of the state the parameters describe (flow,
    linear layers and priors), computed without building anything."""
    params, N = meta["params"], meta["latent_dim"]
    labels = meta["labels"]
    width = sum(len(lab.get("classes") or []) if lab["kind"] == "categorical" else 1 for lab in labels)
    classes = sum(len(lab.get("classes") or []) for lab in labels if lab["kind"] == "categorical")
    conditional = "covariance" in params  # an FPN: its flow takes the labels as context
    C = width + len(labels) if conditional else 0
    T, H, D = params.get("transforms", 8), params.get("hidden_features", 256), params.get("depth", 2)
    flow = params.get("flow", "nsf")
    mlp = (N + C + 1) * H + (D - 1) * (H + 1) * H + (H + 1) * N * FLOW_OUTPUTS.get(flow, 24)
    total = T * mlp * (2 if flow in ("maf", "nsf") else 1) + 8 * N * N + 16 * N + 64 * width
    if conditional:
        total += (2 + classes) * N * N + 2 * (C + 1) * N + len(labels) * C
    return total


def check_described_size(meta: dict, header: dict, path: Path) -> None:
    """Refuse a description whose flow would be far larger than the weights file holds."""
    held = sum(math.prod(shape) for _, shape in header.values())
    implied = estimated_elements(meta)
    if implied > BUILD_FACTOR * held + BUILD_SLACK:
        _mismatch(path, f"it describes a plugin of up to {implied} numbers, but weights.safetensors holds {held}")


#: torch dtype names (str(dtype)) as safetensors names them
TORCH_TO_SAFETENSORS = {
    "torch.float64": "F64",
    "torch.float32": "F32",
    "torch.float16": "F16",
    "torch.bfloat16": "BF16",
    "torch.int64": "I64",
    "torch.int32": "I32",
    "torch.int16": "I16",
    "torch.int8": "I8",
    "torch.uint8": "U8",
    "torch.bool": "BOOL",
}


def check_state_matches(state: dict, header: dict, path: Path) -> None:
    """Refuse weights whose tensor names, shapes or dtypes differ from the built plugin's state."""
    expected = {k: (TORCH_TO_SAFETENSORS.get(str(v.dtype), str(v.dtype)), tuple(v.shape)) for k, v in state.items()}
    missing, unexpected = sorted(set(expected) - set(header)), sorted(set(header) - set(expected))
    if missing or unexpected:
        _mismatch(
            path,
            f"weights.safetensors does not hold the tensors plugin.json describes "
            f"(missing {missing[:5]}, unexpected {unexpected[:5]})",
        )
    for name, (dtype, shape) in expected.items():
        if header[name][1] != shape:
            _mismatch(
                path, f"weights.safetensors: tensor {name!r} has shape {header[name][1]}, the plugin needs {shape}"
            )
        if header[name][0] != dtype and not (dtype.startswith("F") and header[name][0].startswith(("F", "BF"))):
            _mismatch(path, f"weights.safetensors: tensor {name!r} is {header[name][0]}, the plugin needs {dtype}")
