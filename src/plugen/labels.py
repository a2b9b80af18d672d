"""Label schema: names and kinds of the labels, the statistics fitted on them, and validation.

Three kinds of label, one column each in ``Y`` (NaN = missing):

- ``"binary"``: 0/1 at fit time; requests may use values between or beyond (gradual intensity);
- ``"categorical"``: integer class codes (a digit 0-9, an object class); declared with class names,
  ``{"shape": ["circle", "square", "triangle"]}``, code ``i`` is the ``i``-th name, and requests,
  label columns and predictions may use the names (:meth:`Label.encode`, :meth:`Label.decode`);
- ``"continuous"``: any real value, in its own units (age, logP); requests outside the training
  range issue an :class:`~plugen.errors.ExtrapolationWarning`.

The schema is plain data (JSON in checkpoints); the two plugins turn it into priors or contexts.
"""

from __future__ import annotations

import contextlib
import contextvars
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from plugen.errors import ExtrapolationWarning, InputError

KINDS = ("binary", "categorical", "continuous")
#: number of equiprobable quantiles kept to represent a continuous label's distribution
QUANTILES = 32
#: set by :func:`targets_checked`: this thread's (or task's) requests do not warn of extrapolation
_TARGETS_CHECKED = contextvars.ContextVar("plugen_targets_checked", default=False)


@contextlib.contextmanager
def targets_checked():
    """Within it, requests beyond a label's training range do not issue
    :class:`~plugen.errors.ExtrapolationWarning`: for loops whose caller's targets were checked once
    (re-encoding rounds, lead-optimisation steps). A context variable, so it holds for this thread
    or asyncio task only; ``warnings.catch_warnings`` would change the filters of the whole process,
    and overlapping uses from two threads can leave them changed."""
    token = _TARGETS_CHECKED.set(True)
    try:
        yield
    finally:
        _TARGETS_CHECKED.reset(token)


@dataclass
class Label:
    """One label and its statistics on the training set."""

    name: str
    kind: str
    observed: int = 0
    #: binary: P(y = 1); categorical: P(class) per class (Laplace-smoothed)
    frequencies: list[float] = field(default_factory=list)
    #: categorical: the integer codes, sorted
    classes: list[int] = field(default_factory=list)
    #: continuous: standardisation and distribution
    mean: float = 0.0
    std: float = 1.0
    quantiles: list[float] = field(default_factory=list)
    #: continuous: the smallest and largest training value (None in format-1 checkpoints)
    low: float | None = None
    high: float | None = None
    #: categorical: class names, the i-th naming code i (None: codes only, as in format 1-2 checkpoints)
    names: list[str] | None = None

    @property
    def class_names(self) -> list[str]:
        """Names of the classes of a categorical label, for people (figures, the editor): the
        declared names, else the codes as text."""
        return list(self.names) if self.names is not None else [f"{c}" for c in self.classes]

    @property
    def width(self) -> int:
        """Coordinates this label takes: one per class for categorical, otherwise one."""
        return len(self.classes) if self.kind == "categorical" else 1

    def fit(self, column: np.ndarray) -> None:
        values = column[~np.isnan(column)]
        self.observed = int(values.size)
        if self.observed == 0:
            raise InputError(f"label {self.name!r} has no observed (non-NaN) value")
        if self.kind == "binary":
            bad = np.unique(values[(values != 0) & (values != 1)])
            if bad.size:
                raise InputError(f"label {self.name!r} is binary but has values other than 0/1: {_few(bad)}")
            self.frequencies = [float((values.sum() + 1) / (values.size + 2))]
        elif self.kind == "categorical":
            bad = np.unique(values[values != np.round(values)])
            if bad.size:
                raise InputError(f"label {self.name!r} is categorical (integer codes) but has values {_few(bad)}")
            if self.names is not None:
                self._fit_named(values)
                return
            classes, counts = np.unique(values.astype(np.int64), return_counts=True)
            if classes.size < 2:
                raise InputError(f"categorical label {self.name!r} has a single class {classes}")
            self.classes = classes.tolist()
            self.frequencies = ((counts + 1) / (counts.sum() + classes.size)).tolist()
        else:
            std = float(values.std())
            if not std > 0:
                raise InputError(f"continuous label {self.name!r} is constant ({values[0]})")
            self.mean, self.std = float(values.mean()), std
            levels = (np.arange(QUANTILES) + 0.5) / QUANTILES
            self.quantiles = np.quantile(values, levels).tolist()
            self.low, self.high = float(values.min()), float(values.max())

    def _fit_named(self, codes: np.ndarray) -> None:
        """Categorical statistics over the declared classes ``0..len(names)-1``, observed or not."""
        size = len(self.names)
        if size < 2:
            raise InputError(f"categorical label {self.name!r} has a single class {self.names}")
        bad = np.unique(codes[(codes < 0) | (codes >= size)])
        if bad.size:
            raise InputError(
                f"label {self.name!r} has {size} named classes (codes 0 to {size - 1}) but values {_few(bad)}"
            )
        counts = np.bincount(codes.astype(np.int64), minlength=size)
        unseen = [self.names[i] for i in np.flatnonzero(counts == 0)]
        if unseen:
            warnings.warn(
                f"label {self.name!r}: classes {unseen} have no training row; requests for them extrapolate",
                UserWarning,
                stacklevel=4,
            )
        self.classes = list(range(size))
        self.frequencies = ((counts + 1) / (counts.sum() + size)).tolist()

    def encode(self, values, infer_names: bool = False) -> np.ndarray:
        """Values of this label as float codes (1-D); None and NaN mean missing (NaN).

        A categorical label with class names takes names (``"square"``) or codes (``1``); one
        without takes codes. ``infer_names=True`` (fitting): a categorical label without names
        given text values takes their sorted distinct values as its class names.
        """
        flat = _flat_values(values)
        if flat.dtype.kind in "biuf":
            return flat.astype(np.float64)
        if flat.dtype.kind not in "OUS":
            raise InputError(f"values of label {self.name!r} must be numbers or class names, got dtype {flat.dtype}")
        flat = flat.astype(str) if flat.dtype.kind == "S" else flat
        texts = {v for v in flat.tolist() if isinstance(v, str)}
        if texts and self.kind == "categorical" and self.names is None and infer_names:
            if any(not isinstance(v, str) and not _is_missing(v) for v in flat.tolist()):
                raise InputError(f"label {self.name!r} mixes class names and numbers; give one or the other")
            self.names = sorted(texts)
        lookup = {name: float(i) for i, name in enumerate(self.names)} if self.names is not None else {}
        unknown = sorted(t for t in texts if t not in lookup)
        if unknown and self.names is not None:
            raise InputError(f"unknown class {_few_names(unknown)} for label {self.name!r}; its classes: {self.names}")
        return np.array(
            [np.nan if _is_missing(v) else lookup[v] if v in lookup else self._number(v) for v in flat.tolist()],
            dtype=np.float64,
        )

    def _number(self, value) -> float:
        try:
            return float(value)
        except (TypeError, ValueError):
            if self.kind == "categorical":
                known = f" ({self.classes})" if self.classes else ""
                raise InputError(
                    f"label {self.name!r} has no class names, so its values are integer codes{known}; "
                    f"got {value!r} (declare names with labels={{{self.name!r}: [name, ...]}})"
                ) from None
            raise InputError(
                f"value for label {self.name!r} must be numeric (it is a {self.kind} label; class "
                f"names go with categorical labels), got {value!r}"
            ) from None

    def decode(self, codes) -> np.ndarray:
        """Class names (an object array, None where missing) of the codes of a categorical label with
        names; any other label's values as floats."""
        codes = np.asarray(codes, dtype=np.float64)
        if self.names is None:
            return codes
        out = np.full(codes.shape, None, dtype=object)
        present = ~np.isnan(codes)
        out[present] = np.asarray(self.names, dtype=object)[self.class_index(codes[present])]
        return out

    def beyond_range(self, values) -> bool:
        """Whether a continuous label's ``values`` leave its training range (False where unknown)."""
        v = np.asarray(values, dtype=np.float64)
        return self.kind == "continuous" and self.low is not None and bool(((v < self.low) | (v > self.high)).any())

    def class_index(self, codes: np.ndarray) -> np.ndarray:
        """Position of each (non-NaN) categorical code among ``classes``; unknown codes raise."""
        known = np.asarray(self.classes)
        index = np.searchsorted(known, codes)
        index = np.clip(index, 0, known.size - 1)
        unknown = known[index] != codes
        if unknown.any():
            known = (
                self.classes
                if self.names is None
                else ", ".join(f"{c} ({n})" for c, n in zip(self.classes, self.names))
            )
            raise InputError(
                f"unknown class {_few(np.unique(codes[unknown]))} for label {self.name!r}; known classes: {known}"
            )
        return index


class LabelSchema:
    """The ordered labels of a plugin: ``LabelSchema({"smile": "binary", "age": "continuous"})``;
    a list of class names declares a categorical label, ``{"shape": ["circle", "square"]}``."""

    def __init__(self, labels: Mapping[str, str] | list[Label]):
        if isinstance(labels, Mapping):
            if not labels:
                raise InputError("labels must name at least one label, e.g. {'smile': 'binary'}")
            items = []
            for name, kind in labels.items():
                if not isinstance(name, str) or not name:
                    raise InputError(f"label names must be non-empty strings, got {name!r}")
                if isinstance(kind, (list, tuple)):
                    items.append(Label(name, "categorical", names=_class_names(name, kind)))
                    continue
                if kind not in KINDS:
                    raise InputError(
                        f"label {name!r} has unknown kind {kind!r}; use one of {KINDS} or a list of class names"
                    )
                items.append(Label(name, kind))
            labels = items
        self.labels: list[Label] = list(labels)
        self.names = [label.name for label in self.labels]
        self.index = {name: i for i, name in enumerate(self.names)}

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def width(self) -> int:
        return sum(label.width for label in self.labels)

    @property
    def kinds(self) -> dict[str, str]:
        return {label.name: label.kind for label in self.labels}

    def label(self, name: str) -> Label:
        """The label called ``name``; an unknown name raises :class:`~plugen.errors.InputError`."""
        if name not in self.index:
            raise InputError(f"unknown label {name!r}; this plugin knows {self.names}")
        return self.labels[self.index[name]]

    def encode(self, Y, n: int, infer_names: bool = False) -> np.ndarray:
        """Label values as a float (n, K) array of codes in the schema's order, from an array (numbers,
        or an object / text array holding class names), a dict of columns or a pandas DataFrame with
        the label names as columns. ``infer_names``: see :meth:`Label.encode`."""
        if isinstance(Y, Mapping) or hasattr(Y, "columns"):
            missing = [name for name in self.names if name not in Y]
            if missing:
                raise InputError(f"labels {missing} are missing from the given label columns")
            columns = [_flat_values(Y[name]) for name in self.names]
            lengths = {name: column.size for name, column in zip(self.names, columns)}
            if len(set(lengths.values())) > 1:
                raise InputError(f"label columns must have one value per row, got lengths {lengths}")
            array = np.empty((columns[0].size, len(self)), dtype=object)
            for i, column in enumerate(columns):
                array[:, i] = column.reshape(-1)
        else:
            try:
                array = np.asarray(Y, dtype=object if _holds_text(Y) else None)
            except (TypeError, ValueError):
                raise InputError("labels must be numbers or class names (NaN or None for missing)") from None
        if array.ndim == 1 and len(self) == 1:
            array = array.reshape(-1, 1)
        if array.ndim != 2 or array.shape[1] != len(self):
            raise InputError(f"labels must have shape (n, {len(self)}) for {self.names}, got {array.shape}")
        if array.shape[0] != n:
            raise InputError(f"latents have {n} rows but labels have {array.shape[0]}")
        if array.dtype.kind in "biuf":
            return array.astype(np.float64)
        return np.column_stack([label.encode(array[:, i], infer_names) for i, label in enumerate(self.labels)]).reshape(
            n, len(self)
        )

    def decode(self, Y) -> np.ndarray:
        """Label values (n, K) as people read them: an object array whose named categorical columns
        hold class names (None where missing) and whose other columns hold the numbers."""
        Y = np.asarray(Y, dtype=np.float64)
        out = Y.astype(object)
        for i, label in enumerate(self.labels):
            if label.names is not None:
                out[:, i] = label.decode(Y[:, i])
        return out

    def fit(self, Y: np.ndarray) -> LabelSchema:
        self.check(Y, fitting=True)
        for i, label in enumerate(self.labels):
            label.fit(Y[:, i])
        return self

    def check(self, Y: np.ndarray, fitting: bool = False) -> None:
        """Validate a label matrix already shaped (n, K); NaN means missing."""
        if Y.ndim != 2 or Y.shape[1] != len(self):
            raise InputError(f"labels must have shape (n, {len(self)}) for {self.names}, got {Y.shape}")
        if np.isinf(Y).any():
            row, col = np.argwhere(np.isinf(Y))[0]
            raise InputError(f"label {self.names[col]!r} is infinite in row {row}")
        if fitting:
            return
        for i, label in enumerate(self.labels):
            column = Y[:, i]
            present = column[~np.isnan(column)]
            if label.kind == "categorical":
                label.class_index(present)
            elif label.kind == "binary" and ((present != 0) & (present != 1)).any():
                raise InputError(f"label {label.name!r} is binary: observed values must be 0 or 1")

    def requests(self, values: Mapping[str, Any], n: int) -> dict[int, np.ndarray]:
        """Turn ``{"smile": 1, "age": [30, 60], "shape": "square"}`` into ``{label index: (n,) values}``
        (class names as their codes), validated."""
        if not isinstance(values, Mapping):
            raise InputError(f"label requests must be a dict name -> value, got {type(values).__name__}")
        out: dict[int, np.ndarray] = {}
        for name, value in values.items():
            label = self.label(name)
            array = label.encode(value)
            if array.size == 1:
                array = np.full(n, array[0])
            if array.size != n:
                raise InputError(f"label {name!r}: got {array.size} values for {n} rows")
            if not np.isfinite(array).all():
                raise InputError(f"label {name!r}: requested values must be finite")
            if label.kind == "categorical":
                label.class_index(array)
            elif (
                label.beyond_range(array) and not _TARGETS_CHECKED.get()
            ):  # one message per label: shown once per call site
                warnings.warn(
                    f"label {name!r}: requested values outside its training range [{label.low:.4g}, "
                    f"{label.high:.4g}]; the plugin extrapolates there, and the results may fall well "
                    "short of the request",
                    ExtrapolationWarning,
                    stacklevel=3,
                )
            out[self.index[name]] = array
        return out

    def draw(self, n: int, requests: dict[int, np.ndarray], rng: np.random.Generator) -> np.ndarray:
        """Label values (n, K): requested ones as given, the others drawn independently from their
        training distribution (the factorised prior of PluGeN eq. 1)."""
        Y = np.empty((n, len(self)))
        for i, label in enumerate(self.labels):
            if i in requests:
                Y[:, i] = requests[i]
            elif label.kind == "binary":
                Y[:, i] = rng.random(n) < label.frequencies[0]
            elif label.kind == "categorical":
                Y[:, i] = rng.choice(label.classes, size=n, p=np.asarray(label.frequencies))
            else:
                Y[:, i] = np.interp(rng.random(n) * QUANTILES - 0.5, np.arange(QUANTILES), label.quantiles)
        return Y

    def to_list(self) -> list[dict]:
        return [asdict(label) for label in self.labels]

    @classmethod
    def from_list(cls, items: list[dict]) -> LabelSchema:
        return cls([Label(**item) for item in items])


def _class_names(label: str, names) -> list[str]:
    """Validated class names of a categorical label: two or more distinct non-empty strings."""
    if not all(isinstance(v, str) and v for v in names):
        raise InputError(f"class names of label {label!r} must be non-empty strings, got {list(names)!r}")
    if len(set(names)) != len(names) or len(names) < 2:
        raise InputError(f"label {label!r} needs two or more distinct class names, got {list(names)!r}")
    return list(names)


def _holds_text(values) -> bool:
    """Whether a (nested) list or tuple holds a string: numpy would turn its numbers into text."""
    if isinstance(values, str):
        return True
    return isinstance(values, (list, tuple)) and any(_holds_text(v) for v in values)


def _flat_values(values) -> np.ndarray:
    """Values as a 1-D array; lists holding text keep their numbers as numbers (an object array)."""
    try:
        return np.asarray(values, dtype=object if _holds_text(values) else None).reshape(-1)
    except (TypeError, ValueError):
        raise InputError(f"label values must be numbers or class names, got {values!r}") from None


def _is_missing(value) -> bool:
    """None, NaN and pandas' NA mark a missing label value."""
    if value is None or type(value).__name__ in ("NAType", "NaTType"):
        return True
    return isinstance(value, (float, np.floating)) and bool(np.isnan(value))


def _few_names(names: list[str], k: int = 5) -> str:
    return ", ".join(repr(v) for v in names[:k]) + (", ..." if len(names) > k else "")


def _few(values: np.ndarray, k: int = 5) -> str:
    shown = ", ".join(f"{v:g}" for v in values[:k])
    return shown + (", ..." if values.size > k else "")


def check_sample_args(n, temperature: float) -> None:
    """Refuse a sample count that is not a positive integer and a temperature that is not a finite
    number >= 0 (shared by every ``sample`` method)."""
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise InputError(f"n must be a positive integer, got {n!r}")
    if not (np.isfinite(temperature) and temperature >= 0):
        raise InputError(f"temperature must be a finite number >= 0, got {temperature!r}")
