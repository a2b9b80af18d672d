"""Reading latents and labels from files, and writing results, for the CLI and for users.

Latents: ``.npy``, ``.pt``/``.pth`` (a tensor, or a dict holding exactly one tensor) or ``.csv``
(numbers, with or without a header row). Labels: a ``.csv`` with a header naming the labels;
empty cells and ``NaN``/``NA`` mean missing; a column may hold class names (text) instead of
numbers (:func:`read_label_columns`). Results are written atomically to ``.npy`` or ``.csv``.
"""

from __future__ import annotations

import csv
import os
import tempfile
from pathlib import Path

import numpy as np

from plugen.errors import InputError
from plugen.replace import apply_umask

MISSING = {"", "nan", "na", "n/a", "null", "none"}
LATENT_SUFFIXES = (".npy", ".pt", ".pth", ".csv")


def read_latents(path: str | Path, mmap: bool = False) -> np.ndarray:
    """Latents (n, N) from ``.npy``, ``.pt``/``.pth`` or ``.csv``. ``mmap=True`` maps an ``.npy``
    read-only instead of reading it (a plugin's ``fit`` then streams it from disk)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"latents file not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        try:
            array = np.load(path, allow_pickle=False, mmap_mode="r" if mmap else None)
        except (ValueError, EOFError, OSError) as exc:
            raise InputError(f"cannot read {path} as a numeric .npy array ({exc})") from None
        if not isinstance(array, np.ndarray):
            raise InputError(f"{path} holds several arrays (an .npz archive?); give one array as .npy")
    elif suffix in (".pt", ".pth"):
        import torch

        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise InputError(f"cannot read {path} as a torch tensor file ({exc})") from None
        if isinstance(obj, dict):
            tensors = [v for v in obj.values() if isinstance(v, torch.Tensor)]
            if len(tensors) != 1:
                raise InputError(f"{path} holds a dict; it must hold exactly one tensor, found {len(tensors)}")
            obj = tensors[0]
        if not isinstance(obj, torch.Tensor):
            raise InputError(f"{path} does not hold a tensor (found {type(obj).__name__})")
        array = _tensor_to_numpy(obj, path)
    elif suffix == ".csv":
        header, rows = _read_csv(path)
        if not rows:
            raise InputError(f"{path} has a header row but no latents")
        array = _parse_numbers(rows, path, allow_missing=False)
    else:
        raise InputError(f"unsupported latents file {path.name}; use one of {LATENT_SUFFIXES}")
    if mmap and not isinstance(array, np.memmap):
        raise InputError(f"only .npy latents can be streamed from disk, not {path.name}")
    if array.ndim != 2:
        raise InputError(f"latents in {path} must be a 2-D array (n, latent_dim), got shape {array.shape}")
    return array


def read_labels(path: str | Path) -> tuple[list[str], np.ndarray]:
    """Header names and values (n, K) of a labels CSV; missing cells become NaN."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"labels file not found: {path}")
    header, rows = _read_csv(path)
    if header is None:
        raise InputError(f"{path} needs a header row naming the label columns")
    _check_header(header, path)
    if not rows:
        raise InputError(f"{path} has a header row but no labels")
    return header, _parse_numbers(rows, path, allow_missing=True, width=len(header))


def read_label_columns(path: str | Path) -> tuple[list[str], dict[str, np.ndarray]]:
    """Header names and columns of a labels CSV: a float column (NaN = missing) where every cell is
    a number or missing, else an object column of the cells' text (None = missing), e.g. class names."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"labels file not found: {path}")
    header, rows = _read_csv(path)
    if header is None:
        raise InputError(f"{path} needs a header row naming the label columns")
    _check_header(header, path)
    if not rows:
        raise InputError(f"{path} has a header row but no labels")
    for i, row in enumerate(rows):
        if len(row) != len(header):
            raise InputError(f"{path}: row {i + 1} has {len(row)} values, expected {len(header)}")
    return header, {name: _label_column([row[j] for row in rows]) for j, name in enumerate(header)}


def _label_column(cells: list[str]) -> np.ndarray:
    """Numbers (NaN = missing) if every cell is one, else the cells' text (None = missing)."""
    cells = [cell.strip() for cell in cells]
    missing = [cell.lower() in MISSING for cell in cells]
    try:
        return np.array([np.nan if gone else float(cell) for cell, gone in zip(cells, missing)], dtype=np.float64)
    except ValueError:
        return np.array([None if gone else cell for cell, gone in zip(cells, missing)], dtype=object)


def write_array(path: str | Path, array: np.ndarray, header: list[str] | None = None, finite: bool = False) -> Path:
    """Write ``array`` to ``.npy`` or ``.csv`` (with ``header`` if given), atomically; NaN is
    written to a CSV as an empty cell (missing). ``finite=True`` (results: latents, predictions)
    refuses NaN and Inf instead, which would otherwise be written without a word. An object array
    (numbers and text, e.g. class names from ``predict(Z, names=True)``) goes to ``.csv`` only."""
    path = Path(path)
    array = np.asarray(array)
    if finite and np.issubdtype(array.dtype, np.inexact) and not np.isfinite(array).all():
        bad = int((~np.isfinite(array.reshape(array.shape[0], -1) if array.ndim else array)).any(axis=-1).sum())
        raise InputError(f"refusing to write {path}: {bad} rows of the result hold NaN or Inf")
    suffix = path.suffix.lower()
    if suffix not in (".npy", ".csv"):
        raise InputError(f"unsupported output file {path.name}; use .npy or .csv")
    if suffix == ".npy" and np.asarray(array).dtype == object:
        raise InputError(f"{path.name}: text values (class names) can be written to .csv only; use codes for .npy")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            if suffix == ".npy":
                np.save(f, array)
            else:
                array = array.reshape(array.shape[0], -1)
                text = "" if header is None else ",".join(header) + "\n"
                text += "\n".join(",".join(_fmt(v) for v in row) for row in array)
                f.write((text + "\n").encode())
        apply_umask(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _fmt(v) -> str:
    if v is None:
        return ""
    if isinstance(v, str):
        return f'"{v.replace(chr(34), chr(34) * 2)}"' if any(c in v for c in ',"\n\r') else v
    v = float(v)
    if np.isnan(v):
        return ""
    return f"{int(v)}" if v.is_integer() and abs(v) < 2**53 else repr(v)


def _tensor_to_numpy(obj, path: Path) -> np.ndarray:
    """A tensor of a ``.pt`` file as numpy (bfloat16 as float32, which numpy lacks)."""
    import torch

    try:
        tensor = obj.detach().cpu()
        return (tensor.float() if tensor.dtype == torch.bfloat16 else tensor).numpy()
    except (TypeError, RuntimeError) as exc:
        raise InputError(f"{path} holds a tensor that is not a plain numeric array ({exc})") from None


def _check_header(header: list[str], path: Path) -> None:
    """Refuse empty or repeated column names (a repeated one would silently pick one column)."""
    empty = [i + 1 for i, name in enumerate(header) if not name]
    if empty:
        raise InputError(f"{path}: column {empty[0]} of the header has no name; every column needs one")
    seen = set()
    for name in header:
        if name in seen:
            raise InputError(f"{path}: the header names column {name!r} more than once; column names must be unique")
        seen.add(name)


def _read_csv(path: Path) -> tuple[list[str] | None, list[list[str]]]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f))
    except UnicodeDecodeError:
        raise InputError(f"{path} is not a text CSV file (it is not UTF-8 text; binary data?)") from None
    except csv.Error as exc:
        raise InputError(f"{path} is not a readable CSV file ({exc})") from None
    while rows and not rows[-1]:  # blank lines at the end
        rows.pop()
    if not rows:
        raise InputError(f"{path} is empty")
    if any("\x00" in cell for row in rows for cell in row):
        raise InputError(f"{path} is not a text CSV file (it holds NUL bytes)")
    if len(rows[0]) == 1:  # one column: a blank line is an empty cell (a missing value), not nothing
        rows = [row or [""] for row in rows]
    first = rows[0]
    if all(_is_number(c) for c in first):
        return None, rows
    return [c.strip() for c in first], rows[1:]


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return text.strip().lower() in MISSING - {""}


def _parse_numbers(rows, path: Path, allow_missing: bool, width: int | None = None) -> np.ndarray:
    width = width or len(rows[0])
    out = np.empty((len(rows), width))
    for i, row in enumerate(rows):
        if len(row) != width:
            raise InputError(f"{path}: row {i + 1} has {len(row)} values, expected {width}")
        for j, cell in enumerate(row):
            cell = cell.strip()
            if cell.lower() in MISSING:
                if not allow_missing:
                    raise InputError(f"{path}: missing value in row {i + 1}, column {j + 1}")
                out[i, j] = np.nan
                continue
            try:
                out[i, j] = float(cell)
            except ValueError:
                raise InputError(f"{path}: row {i + 1}, column {j + 1} is not a number: {cell!r}") from None
    return out
