"""What the two plugins share: hyperparameters, input checking, fitting, array conversion, I/O.

The estimators follow scikit-learn's conventions: ``__init__`` only stores keyword arguments,
``fit`` returns ``self``, and fitted state ends in ``_``. Numpy in gives numpy out; a torch tensor
in gives a tensor out on the same device.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from plugen.batches import BlockReader, InMemoryRows, StreamedRows, scan
from plugen.checkpoint import load_plugin, save_plugin
from plugen.errors import InputError, NotFittedError
from plugen.flows import FLOWS, Chain, Standardize, build_flow
from plugen.labels import LabelSchema, check_sample_args
from plugen.training import TrainingConfig, resolve_device, train
from plugen.validation import check_edit_options, finite_output, finite_posteriors, representable, traverse_values

DTYPES = {"float32": torch.float32, "float64": torch.float64}
#: at most this many rows (chosen at random) feed the data-dependent initialisation, which works in
#: float64 on a few copies of them: enough for a stable start, and memory that does not grow with n
INIT_ROWS = 50_000


@dataclass
class _TrainingData:
    """What :meth:`Plugin.fit` trains on: the rows, the reader of streamed latents (or None), the
    latents' size, dtype and per-column moments, the rows of the initialisation, the latent noise."""

    rows: InMemoryRows | StreamedRows
    reader: BlockReader | None
    latent_dim: int
    dtype: torch.dtype
    moments: tuple[np.ndarray, np.ndarray]
    Z_init: Tensor
    T_init: Tensor
    noise: Tensor | None

    def close(self) -> None:
        if self.reader:
            self.reader.close()


def _whole(value) -> bool:
    """Whether a setting is a whole number >= 1 (not a bool)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _finite_number(value) -> bool:
    """Whether a setting is a number that is neither NaN nor infinite."""
    return isinstance(value, (int, float)) and math.isfinite(value)


class Plugin:
    """Base class of :class:`~plugen.PluGeN` and :class:`~plugen.FPN`."""

    #: attributes that exist once the plugin is fitted (or loaded)
    _fitted = ("schema_", "latent_dim_", "module_", "device_", "history_")

    # ------------------------------------------------------------------ parameters
    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [p for p in sig.parameters if p != "self"]

    def _store_params(self, params: dict[str, Any]) -> None:
        """Store ``__init__``'s keyword arguments as attributes, unchanged but for a copy of
        ``labels`` (scikit-learn's convention: no validation or derived state here)."""
        for name in self._param_names():
            setattr(self, name, dict(params[name]) if name == "labels" else params[name])

    def get_params(self) -> dict[str, Any]:
        """Hyperparameters as given to ``__init__`` (JSON-friendly)."""
        return {name: getattr(self, name) for name in self._param_names()}

    def __repr__(self) -> str:
        defaults = inspect.signature(type(self).__init__).parameters
        shown = [f"{k}={v!r}" for k, v in self.get_params().items() if k == "labels" or v != defaults[k].default]
        return f"{type(self).__name__}({', '.join(shown)})"

    # ------------------------------------------------------------------ fitting
    def fit(self, Z, Y, on_epoch=None, checkpoint=None, groups=None) -> Plugin:
        """Fit the flow on latents ``Z`` (n, N) and labels ``Y`` (n, K) in the order of ``labels``.

        NaN (or None) in ``Y`` marks a missing label; binary labels are 0/1, categorical ones integer
        codes or class names (a dict of columns, a DataFrame or an object array); a categorical label
        declared without names and given text takes the sorted distinct texts as its class names.
        ``Z`` may be a memory-mapped ``.npy`` (``np.load(path, mmap_mode="r")``): its rows are then
        streamed from disk block by block, so memory does not grow with n (see
        :mod:`plugen.batches`). ``on_epoch(epoch, stats)``, if given, runs after each epoch (the
        plugin is usable inside it) and stops training by returning True. ``checkpoint``: a file
        for the training state, written after every epoch; calling ``fit`` again with the same
        arguments after a crash or kill resumes from it. Under ``torch.distributed`` (e.g.
        ``torchrun``) all processes train one plugin together (:mod:`plugen.distributed`).
        ``groups`` (n,): a group id per row (numbers or strings); the rows held out for early
        stopping are then whole groups, as with scikit-learn's ``GroupShuffleSplit``. Give it when
        rows are not independent (several augmented copies of one image, molecules sharing a
        scaffold): a random split puts near-copies of training rows among the held-out ones, their
        NLL keeps falling as the flow overfits, and early stopping stops late or never.
        The training summary is kept in ``history_``. With ``restarts`` > 1 one flow is trained per
        seed on the same held-out rows and the one with the lowest held-out NLL is kept; ``history_``
        is its summary plus ``restarts`` (seed, NLL, epochs of each) and ``chosen_seed``; an
        ``on_epoch`` that stops training also skips the restarts still to come. Returns ``self``.
        """
        self._check_fit_args(checkpoint)
        schema = LabelSchema(self.labels)
        data = self._training_data(Z, Y, groups, schema)
        previous = {name: getattr(self, name) for name in self._fitted if hasattr(self, name)}
        try:
            self.schema_, self.latent_dim_ = schema, data.latent_dim
            self.history_, self.module_ = self._fit_restarts(data, on_epoch, checkpoint)
        except BaseException:  # a failed fit leaves the plugin as it was
            self._put_back(previous)
            raise
        finally:
            data.close()
        self.module_.eval()
        return self

    def _check_fit_args(self, checkpoint) -> None:
        self._check_params()
        if self.restarts > 1 and checkpoint is not None:
            raise InputError(
                "a checkpoint resumes one fit; use restarts=1 with checkpoint, or fit each seed separately"
            )

    def _training_data(self, Z, Y, groups, schema: LabelSchema) -> _TrainingData:
        """Check the latents, labels and groups, fit ``schema`` to the labels, and wrap the data
        for training: in memory, or streamed from disk when ``Z`` is memory-mapped."""
        reader = BlockReader(_streamed_array(Z)) if isinstance(Z, np.memmap) else None
        try:
            Z_np = None if reader else _latents_array(Z)
            n, latent_dim = (reader.n, reader.features) if reader else Z_np.shape
            Y_np = _labels_array(Y, schema, n, infer_names=True)
            group_codes = None if groups is None else _group_codes(groups, n)
            schema.fit(Y_np)
            self._check_sizes(latent_dim, schema)
            self.device_ = resolve_device(self.device)
            dtype = self._dtype()
            moments = scan(reader) if reader else (Z_np.mean(axis=0), Z_np.std(axis=0))
            rows, Z_init, T_init = self._wrap_rows(reader, Z_np, Y_np, schema, group_codes, dtype)
        except BaseException:
            if reader:
                reader.close()
            raise
        noise = torch.as_tensor(self.latent_noise * moments[1], dtype=dtype) if self.latent_noise else None
        return _TrainingData(rows, reader, latent_dim, dtype, moments, Z_init, T_init, noise)

    def _wrap_rows(self, reader, Z_np, Y_np, schema, group_codes, dtype):
        """The training rows (:mod:`plugen.batches`) and at most ``INIT_ROWS`` of them, drawn at
        random from ``seed``, for the data-dependent initialisation."""
        if reader:
            rows = StreamedRows(
                reader, Y_np, lambda y: self._encode(schema, y), self.device_, dtype, self.seed, group_codes
            )
            return (rows, *rows.sample(INIT_ROWS, self.seed))
        n = Z_np.shape[0]
        Zt = torch.as_tensor(Z_np, dtype=dtype)
        Tt = torch.as_tensor(self._encode(schema, Y_np), dtype=dtype)
        rows = InMemoryRows(Zt, Tt, self.device_, group_codes)
        some = slice(None)
        if n > INIT_ROWS:
            some = np.sort(np.random.default_rng(self.seed).choice(n, INIT_ROWS, replace=False))
        return rows, Zt[some].to(self.device_), Tt[some].to(self.device_)

    def _fit_restarts(self, data: _TrainingData, on_epoch, checkpoint) -> tuple[dict, nn.Module]:
        """Train one flow per seed ``seed, seed + 1, ...`` on the same held-out rows and keep the
        one with the lowest held-out NLL; a callback that stops training skips the rest."""
        best, tried = None, []
        for seed in range(self.seed, self.seed + self.restarts):
            self._start_module(data, seed)
            history = self._train(self.module_, data.rows, on_epoch, checkpoint, data.noise, seed)
            tried.append({"seed": seed, "best_nll": history["best_nll"], "epochs": history["epochs"]})
            if best is None or history["best_nll"] < best[0]["best_nll"]:
                best = (history, self.module_, seed)
            if history["stopped"] == "callback":
                break
        history, module, chosen = best
        if self.restarts > 1:
            history.update(restarts=tried, chosen_seed=chosen)
        return history, module

    def _start_module(self, data: _TrainingData, seed: int) -> None:
        """A new ``module_``, its weights drawn from ``seed`` (the global RNG left as it was),
        then initialised from the data."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            module = self._build(data.latent_dim, self.schema_, _moments(*data.moments))
            self.module_ = module.to(self.device_, data.dtype)
        self._initialize(data.Z_init, data.T_init)

    def _put_back(self, previous: dict) -> None:
        """Fitted attributes as they were before a failed fit (removed when there were none)."""
        for name in self._fitted:
            if name in previous:
                setattr(self, name, previous[name])
            elif hasattr(self, name):
                delattr(self, name)

    def _train(self, module: nn.Module, rows, on_epoch, checkpoint, noise, seed: int) -> dict:
        config = TrainingConfig(
            batch_size=self.batch_size,
            lr=self.lr,
            max_epochs=self.max_epochs,
            patience=self.patience,
            check_rows=self.check_rows,
            min_gain=self.min_gain,
            warmup_steps=self.warmup_steps,
            val_fraction=self.val_fraction,
            weight_decay=self.weight_decay,
            grad_clip=self.grad_clip,
            seed=seed,
            split_seed=self.seed,
            progress=self.progress,
            autocast=self.autocast,
            compile=self.compile,
        )
        return train(
            module,
            self._training_loss,
            rows,
            config,
            augment=self._augment,
            latent_noise=noise,
            on_epoch=on_epoch,
            checkpoint=checkpoint,
            objective_settings=self._objective_settings(),
        )

    #: hyperparameters that must be positive numbers, and those that must lie in [0, 1)
    _positive = (
        "transforms",
        "hidden_features",
        "depth",
        "lr",
        "max_epochs",
        "patience",
        "sigma",
        "continuous_sigma",
    )
    #: settings where None asks :func:`plugen.training.resolve` to choose from the training rows
    _automatic = ("batch_size", "lr", "warmup_steps")
    #: settings that must be whole numbers >= 1 (or None, where automatic)
    _counts = ("restarts", "batch_size", "warmup_steps")
    _fractions = ("val_fraction", "label_dropout", "weight_decay", "latent_noise")
    _nonnegative = ("classifier_weight", "check_rows", "min_gain")
    _choices = {
        "covariance": ("auto", "per-class", "shared"),
        "autocast": (None, "bf16"),
        "compile": (False, True),
        "style_scale": (False, True),
        "flow": tuple(FLOWS),
    }

    def _check_params(self) -> None:
        params = self.get_params()
        given = {name: value for name, value in params.items() if not (value is None and name in self._automatic)}
        for name in self._positive:
            if name in given and not (_finite_number(given[name]) and given[name] > 0):
                raise InputError(f"{name} must be a positive number, got {given[name]!r}")
        for name in self._fractions:
            if name in params and not (_finite_number(params[name]) and 0 <= params[name] < 1):
                raise InputError(f"{name} must be in [0, 1), got {params[name]!r}")
        for name in self._nonnegative:
            if name in params and not (_finite_number(params[name]) and params[name] >= 0):
                raise InputError(f"{name} must be a number >= 0, got {params[name]!r}")
        for name in self._counts:
            if name in given and not _whole(given[name]):
                none = "None or " if name in self._automatic else ""
                raise InputError(f"{name} must be {none}a whole number >= 1, got {given[name]!r}")
        for name, allowed in self._choices.items():
            if name in params and params[name] not in allowed:
                raise InputError(f"{name} must be one of {list(allowed)}, got {params[name]!r}")

    def _dtype(self) -> torch.dtype:
        if self.dtype not in DTYPES:
            raise InputError(f"dtype must be one of {sorted(DTYPES)}, got {self.dtype!r}")
        return DTYPES[self.dtype]

    def _check_sizes(self, latent_dim: int, schema: LabelSchema) -> None:
        if latent_dim < 2:
            raise InputError(f"latents must have at least 2 dimensions, got {latent_dim}")

    def _make_flow(self, latent_dim: int, context: int, moments) -> Chain:
        options = dict(transforms=self.transforms, hidden_features=self.hidden_features, depth=self.depth)
        flow = build_flow(self.flow, latent_dim, context, **options)
        return Chain([Standardize(*moments), flow])

    # hooks for subclasses ---------------------------------------------------
    def _build(self, latent_dim: int, schema: LabelSchema, moments) -> nn.Module:
        raise NotImplementedError

    def _encode(self, schema: LabelSchema, Y: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _nll(self, z: Tensor, t: Tensor) -> Tensor:
        raise NotImplementedError

    def _training_loss(self, z: Tensor, t: Tensor) -> Tensor:
        """Per-row objective that training minimises (and early stopping watches): the NLL."""
        return self._nll(z, t)

    def _objective_settings(self) -> dict:
        """Hyperparameters of :meth:`_training_loss` beyond the NLL (they key resumable states)."""
        return {}

    _augment = None

    def _initialize(self, Z: Tensor, T: Tensor) -> None:
        """Data-dependent initialisation before training (none by default)."""

    # ------------------------------------------------------------------ public helpers
    def log_prob(self, Z, Y):
        """``log p(z | y)`` per row (n,) in the latents' units. NaN labels are marginalised
        (PluGeN) or marked unknown (FPN)."""
        z, restore = self._input(Z)
        Y_np = _labels_array(Y, self.schema_, z.shape[0])
        self.schema_.check(Y_np)
        t = torch.as_tensor(self._encode(self.schema_, Y_np), dtype=z.dtype, device=z.device)
        with torch.inference_mode():
            return restore(-self._nll(z, t))

    @property
    def label_names(self) -> list[str]:
        self._check_fitted()
        return list(self.schema_.names)

    def save(self, path: str | Path) -> Path:
        """Write a checkpoint directory (safetensors weights + JSON metadata), atomically."""
        self._check_fitted()
        return save_plugin(self, Path(path))

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu", backbone: str | None = None, latent_dim: int | None = None):
        """Load a checkpoint written by :meth:`save`; refuses a mismatched or corrupted one.

        ``backbone`` / ``latent_dim``: when given, the checkpoint must have been fitted on them.
        """
        return load_plugin(Path(path), expected=cls, device=device, backbone=backbone, latent_dim=latent_dim)

    @classmethod
    def from_saved(cls, meta: Mapping[str, Any], state: Mapping[str, Tensor], device: str = "cpu"):
        """A fitted plugin from a checkpoint's metadata (``plugin.json``) and weights, as
        :mod:`plugen.checkpoint` reads them; raises TypeError, KeyError, ValueError or RuntimeError
        when they do not fit each other."""
        plugin = cls(**dict(meta["params"], device=device))
        plugin.schema_ = LabelSchema.from_list(meta["labels"])
        plugin.latent_dim_ = int(meta["latent_dim"])
        plugin.device_ = resolve_device(device)
        N = plugin.latent_dim_
        module = plugin._build(
            N, plugin.schema_, (torch.zeros(N, dtype=torch.float64), torch.ones(N, dtype=torch.float64))
        )
        module.load_state_dict(state, strict=True)
        plugin.module_ = module.to(plugin.device_, plugin._dtype()).eval()
        plugin.history_ = meta.get("training", {})
        return plugin

    # ------------------------------------------------------------------ the v1 interface
    def edit(self, Z, changes: Mapping[str, Any], **kwargs):
        """Latents with the labels in ``changes`` set and everything else kept.

        ``changes`` maps label names to a value or to one value per row: binary 0/1 (values
        between or beyond give a gradual intensity), a class code, or a continuous value in the
        label's own units. A categorical label takes a code or a class name: ``{"shape": "square"}``.
        ``edit(Z, {})`` returns ``Z`` up to float rounding.
        """
        z, restore = self._input(Z)
        check_edit_options(self, kwargs)
        requests = self.schema_.requests(changes, z.shape[0])
        with torch.inference_mode():
            return restore(self._edit(z, requests, **kwargs))

    def traverse(self, Z, label: str, values, **kwargs):
        """Gradual edit of one label: ``(n, len(values), N)`` latents, one per requested value (class
        names or codes for a categorical label)."""
        z, restore = self._input(Z)
        check_edit_options(self, kwargs)
        values = traverse_values(self.schema_.label(label).encode(values))
        n, m = z.shape[0], values.size
        requests = self.schema_.requests({label: np.tile(values, n)}, n * m)
        with torch.inference_mode():
            kwargs = self._repeat_edit_kwargs(z, m, **kwargs)
            out = self._edit(z.repeat_interleave(m, dim=0), requests, **kwargs)
        return restore(out.reshape(n, m, -1))

    def sample(
        self,
        n: int,
        conditions: Mapping[str, Any] | None = None,
        temperature: float = 1.0,
        seed: int | None = None,
        return_tensor: bool = False,
    ):
        """``n`` new latents with the requested label values; labels not named are drawn from
        their training distribution. ``temperature`` T scales all base noise: samples come from the
        base density raised to ``1 / T**2`` (Glow's temperature), which for PluGeN narrows the label
        coordinates around their class centres as well as the style."""
        self._check_fitted()
        check_sample_args(n, temperature)
        rng = np.random.default_rng(seed)
        requests = self.schema_.requests(conditions or {}, int(n))
        Y = self.schema_.draw(int(n), requests, rng)
        noise = torch.as_tensor(
            rng.standard_normal((int(n), self.latent_dim_)), dtype=self._module_dtype(), device=self.device_
        )
        with torch.inference_mode():
            z = finite_output(self._sample(Y, noise, float(temperature)), "sample")
        return z.clone() if return_tensor else z.cpu().numpy()

    def predict(self, Z, names: bool = False):
        """Labels of the latents (n, K): 0/1 for binary, class codes, values in label units.

        ``names=True``: a numpy object array (n, K) whose categorical columns hold class names (for
        labels that have names, declared or read from text labels; see :attr:`classes_`) and whose other columns hold the numbers,
        e.g. ``pandas.DataFrame(model.predict(Z, names=True), columns=model.label_names)``.
        """
        z, restore = self._input(Z)
        with torch.inference_mode():
            out = restore(self._decide(finite_posteriors(self._posteriors(z))))
        if not names:
            return out
        codes = out.detach().cpu().numpy() if isinstance(out, Tensor) else out
        return self.schema_.decode(codes.reshape(-1, len(self.schema_))).reshape(codes.shape)

    @property
    def classes_(self) -> dict[str, list]:
        """The classes of each categorical label, as scikit-learn's ``classes_``: its class names,
        or its integer codes where it has none. ``predict_proba(Z, label=name)`` has its columns in
        this order."""
        self._check_fitted()
        return {
            lab.name: list(lab.names) if lab.names is not None else list(lab.classes)
            for lab in self.schema_.labels
            if lab.kind == "categorical"
        }

    def _decide(self, posteriors: list[Tensor]) -> Tensor:
        """Point predictions (n, K) from per-label posteriors (see :meth:`_posteriors`)."""
        columns = []
        for label, post in zip(self.schema_.labels, posteriors):
            if label.kind == "binary":
                columns.append((post > 0.5).to(post.dtype))
            elif label.kind == "categorical":
                classes = torch.as_tensor(label.classes, dtype=post.dtype, device=post.device)
                columns.append(classes[post.argmax(dim=1)])
            else:
                columns.append(post)
        return torch.stack(columns, dim=1)

    def predict_proba(self, Z, label: str | None = None):
        """Probabilities of the binary labels (n, K_binary), P(y = 1) in the order of ``labels``.

        With ``label=``: that label's probabilities alone, (n,) for a binary label and
        (n, classes) for a categorical one (columns in the order of ``classes_[label]``).
        """
        z, restore = self._input(Z)
        if label is not None and label not in self.schema_.index:
            raise InputError(f"unknown label {label!r}; this plugin knows {self.schema_.names}")
        with torch.inference_mode():
            posteriors = finite_posteriors(self._posteriors(z))
        if label is not None:
            kind = self.schema_.labels[self.schema_.index[label]].kind
            if kind == "continuous":
                raise InputError(f"label {label!r} is continuous: it has no probabilities; use predict")
            return restore(posteriors[self.schema_.index[label]])
        binary = [p for lab, p in zip(self.schema_.labels, posteriors) if lab.kind == "binary"]
        return restore(torch.stack(binary, dim=1) if binary else z.new_zeros(z.shape[0], 0))

    # hooks for subclasses ---------------------------------------------------
    def _edit(self, z: Tensor, requests: dict[int, np.ndarray], **kwargs) -> Tensor:
        raise NotImplementedError

    def _repeat_edit_kwargs(self, z: Tensor, m: int, **kwargs) -> dict:
        return kwargs

    def _sample(self, Y: np.ndarray, noise: Tensor, temperature: float) -> Tensor:
        raise NotImplementedError

    def _posteriors(self, z: Tensor) -> list[Tensor]:
        """Per label: P(y=1) (n,) for binary, P(class) (n, M) for categorical, the value (n,) for
        continuous (label units)."""
        raise NotImplementedError

    def _module_dtype(self) -> torch.dtype:
        return self.module_.standardize.mean.dtype

    def _tensor(self, array: np.ndarray) -> Tensor:
        return torch.as_tensor(array, dtype=self._module_dtype(), device=self.device_)

    # ------------------------------------------------------------------ conversion
    def _check_fitted(self) -> None:
        if not hasattr(self, "module_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet: call fit(Z, Y) or load(path)")

    def _input(self, Z, name: str = "Z"):
        """Latents -> tensor on the plugin's device; returns it and a function that converts a
        result back to the caller's type (numpy of the input's dtype, or a tensor on its device)."""
        self._check_fitted()
        dtype = self._module_dtype()
        if isinstance(Z, Tensor):
            single = Z.ndim == 1
            z = Z.reshape(1, -1) if single else Z
            _check_latents(z, self.latent_dim_, self.backbone, name, is_tensor=True)
            device, out_dtype = Z.device, Z.dtype if Z.is_floating_point() else dtype

            def restore(x: Tensor):
                x = finite_output(x.detach().to(device=device, dtype=out_dtype))
                return x[0] if single and x.shape[0] == 1 and x.ndim > 1 else x

            return representable(z.to(self.device_, dtype), name), restore
        array = _latents_array(Z, name, allow_1d=True)
        single = np.ndim(Z) == 1
        out_dtype = array.dtype if np.issubdtype(array.dtype, np.floating) else np.float32
        _check_latents(array, self.latent_dim_, self.backbone, name, is_tensor=False)

        def restore_np(x: Tensor):
            x = finite_output(x.detach().cpu().to(torch.float64 if out_dtype == np.float64 else torch.float32))
            with np.errstate(over="ignore"):
                x = x.numpy().astype(out_dtype, copy=False)
            finite_output(torch.from_numpy(x))  # a narrower dtype (float16) may overflow
            return x[0] if single and x.shape[0] == 1 and x.ndim > 1 else x

        return representable(torch.as_tensor(array, dtype=dtype, device=self.device_), name), restore_np


def _moments(mean: np.ndarray, std: np.ndarray):
    """Per-column mean and spread as float64 tensors, constant columns given a spread of 1."""
    mean, std = torch.as_tensor(mean, dtype=torch.float64), torch.as_tensor(std, dtype=torch.float64)
    return mean, torch.where(std > 1e-8, std, torch.ones_like(std))


def _streamed_array(Z: np.memmap) -> np.memmap:
    """Shape and dtype checks of a memory-mapped latents array (values are checked while streaming)."""
    if Z.ndim != 2:
        raise InputError(f"Z must have shape (n, latent_dim), got {Z.shape}")
    if Z.shape[0] == 0:
        raise InputError("Z is empty (0 rows)")
    if not np.issubdtype(Z.dtype, np.floating):
        raise InputError(f"a memory-mapped Z must hold floats, got dtype {Z.dtype}")
    return Z


def _latents_array(Z, name: str = "Z", allow_1d: bool = False) -> np.ndarray:
    """Latents as a finite 2-D numeric array; ``allow_1d``: one latent vector (N,) as (1, N)."""
    if isinstance(Z, Tensor):
        Z = Z.detach().cpu().numpy()
    try:
        array = np.asarray(Z)
    except Exception as exc:  # ragged lists and the like
        raise InputError(f"{name} must be a numeric array of shape (n, latent_dim): {exc}") from None
    if (
        array.dtype == object
        or not np.issubdtype(array.dtype, np.number)
        or np.issubdtype(array.dtype, np.complexfloating)
    ):
        raise InputError(f"{name} must be a real numeric array, got dtype {array.dtype}")
    if array.ndim == 1 and not allow_1d:
        raise InputError(
            f"{name} must be a 2-D array (n, latent_dim), got a 1-D array of length {array.shape[0]}; "
            f"for one latent vector use {name}.reshape(1, -1), for one latent coordinate per row "
            f"{name}.reshape(-1, 1)"
        )
    if array.ndim == 1:
        array = array.reshape(1, -1)
    if array.ndim != 2:
        raise InputError(f"{name} must have shape (n, latent_dim), got {array.shape}")
    if array.shape[0] == 0:
        raise InputError(f"{name} is empty (0 rows)")
    if not np.isfinite(array).all():
        row = int(np.argwhere(~np.isfinite(array))[0][0])
        kind = "NaN" if np.isnan(array).any() else "Inf"
        raise InputError(f"{name} contains {kind} (first in row {row}); latents must be finite")
    return array


def _check_latents(z, latent_dim: int, backbone: str | None, name: str, is_tensor: bool) -> None:
    if z.ndim != 2:
        raise InputError(f"{name} must have shape (n, {latent_dim}), got {tuple(z.shape)}")
    if z.shape[1] != latent_dim:
        source = f" of backbone {backbone!r}" if backbone else ""
        raise InputError(
            f"latent size mismatch: this plugin was fitted on {latent_dim}-dim latents{source}, "
            f"but {name} has {z.shape[1]} columns (were these latents made by another model?)"
        )
    if is_tensor:
        if z.dtype.is_complex or z.dtype == torch.bool:
            raise InputError(f"{name} must be a real tensor, got {z.dtype}")
        if not torch.isfinite(z).all():
            row = int(torch.nonzero(~torch.isfinite(z))[0, 0])
            raise InputError(f"{name} contains NaN or Inf (first in row {row}); latents must be finite")


def _group_codes(groups, n: int) -> np.ndarray:
    """Group ids (n,) of any numbers or strings as integer codes 0..G-1."""
    if isinstance(groups, Tensor):
        groups = groups.detach().cpu().numpy()
    array = np.asarray(groups)
    if array.ndim != 1 or array.shape[0] != n:
        raise InputError(f"groups must have shape ({n},), one id per row of the latents, got {array.shape}")
    if array.dtype.kind == "f" and np.isnan(array).any():
        raise InputError(f"groups has {int(np.isnan(array).sum())} NaN ids; give every row a group")
    try:
        return np.unique(array, return_inverse=True)[1].reshape(-1).astype(np.int64)
    except TypeError:
        raise InputError("groups must be numbers or strings of one kind, comparable with each other") from None


def _labels_array(Y, schema: LabelSchema, n: int, infer_names: bool = False) -> np.ndarray:
    """Labels as a float (n, K) array of codes in the schema's order. Accepts arrays, tensors, a dict
    of columns, or a pandas DataFrame with the label names as columns; categorical columns may hold
    class names (:meth:`plugen.labels.LabelSchema.encode`)."""
    if isinstance(Y, Tensor):
        Y = Y.detach().cpu().numpy()
    return schema.encode(Y, n, infer_names=infer_names)
