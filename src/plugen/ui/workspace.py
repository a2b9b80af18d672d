"""A workspace: one plugin, its backbone, a domain and a pool of samples; the editor's logic.

Everything the page does is a method here, in plain Python, so it is tested without a browser:
pick a sample (:meth:`Workspace.pick`, :meth:`Workspace.upload`, :meth:`Workspace.from_text`),
edit it (:meth:`Workspace.edit`), draw new samples (:meth:`Workspace.generate`). Each returns a
:class:`View`: the latent, the decoded sample, its picture and the attributes predicted for it.

The predicted attributes are those *of the picture shown*: when the backbone has an encoder the
decoded sample is encoded again and the plugin predicts from that latent, so the numbers judge
the edit rather than echo the request.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from plugen.errors import InputError
from plugen.ui.domains import Domain


@dataclass
class Control:
    """One attribute slider: range and step in the label's units (binary: intensity 0..1)."""

    name: str
    kind: str
    minimum: float
    maximum: float
    step: float
    classes: list[int] = field(default_factory=list)
    class_names: list[str] = field(default_factory=list)

    @property
    def info(self) -> str:
        if self.kind == "binary":
            return "binary: intensity, 0 = absent, 1 = present (beyond = exaggerated)"
        if self.kind == "categorical":
            names = self.class_names or [str(c) for c in self.classes]
            if names == [str(c) for c in self.classes]:
                return f"class {self.classes[0]} to {self.classes[-1]}"
            return "class: " + ", ".join(f"{c} {n}" for c, n in zip(self.classes, names))
        return "continuous, in the label's units"


@dataclass
class View:
    """What the page shows for one latent."""

    z: np.ndarray  # (N,) float32
    sample: Any  # decoded sample (image array or SMILES)
    picture: Any  # PIL image
    predictions: dict[str, dict]  # name -> {"kind", "value", "confidence"?}
    text: str | None = None  # the sample as text (SMILES), if any
    measured: dict[str, float] = field(default_factory=dict)  # measured on the sample (RDKit), if any


@dataclass
class Workspace:
    """An editor for one plugin on one backbone.

    ``samples``: data-set samples offered by the picker (a list, or an array of images);
    ``captions``: one short text per sample (e.g. its true labels); ``class_names``: names of
    categorical classes per label, e.g. ``{"shape": ["square", "circle", "triangle"]}``, for labels
    whose plugin declares none (the plugin's own class names come first).
    """

    title: str
    plugin: Any
    backbone: Any
    domain: Domain
    samples: Any = None
    captions: list[str] = field(default_factory=list)
    class_names: dict[str, list[str]] = field(default_factory=dict)
    description: str = ""
    judge_picture: bool = True  # predict attributes from the decoded sample encoded again

    def __post_init__(self):
        if getattr(self.backbone, "latent_dim", None) != self.plugin.latent_dim_:
            raise InputError(
                f"the plugin was fitted on {self.plugin.latent_dim_}-dim latents but backbone "
                f"{getattr(self.backbone, 'name', '?')!r} makes {getattr(self.backbone, 'latent_dim', '?')}-dim ones"
            )
        self._controls = _controls(self.plugin, self.class_names)

    # ------------------------------------------------------------------ description
    @property
    def labels(self) -> list[str]:
        return list(self.plugin.label_names)

    def controls(self) -> list[Control]:
        """One slider per label, in the plugin's label order."""
        return list(self._controls)

    def __len__(self) -> int:
        return 0 if self.samples is None else len(self.samples)

    # ------------------------------------------------------------------ sources of a latent
    def pick(self, index: int) -> View:
        """The data set's sample ``index``, encoded, decoded and described."""
        if not len(self):
            raise InputError("this editor has no data-set samples to pick from")
        index = int(index)
        if not 0 <= index < len(self):
            raise InputError(f"sample index must be between 0 and {len(self) - 1}, got {index}")
        return self.view(self._encode([self.samples[index]])[0])

    def upload(self, path) -> View:
        """An uploaded file (an image) as the sample to edit."""
        return self.view(self._encode([self.domain.parse_file(path)])[0])

    def from_text(self, text: str) -> View:
        """Typed text (a SMILES string) as the sample to edit."""
        return self.view(self._encode([self.domain.parse_text(text)])[0])

    def generate(
        self,
        conditions: Mapping[str, Any],
        n: int = 1,
        temperature: float = 0.8,
        seed: int | None = None,
        rounds: int = 0,
    ) -> list[View]:
        """``n`` new samples with the requested label values (others follow their training
        distribution), at ``temperature``. ``rounds`` > 0 re-encodes them that many times, setting
        only the requested labels again (:func:`plugen.reencode.reencode`)."""
        from plugen.reencode import reencode

        if rounds and not self.can_reencode:
            raise InputError(
                f"backbone {getattr(self.backbone, 'name', '?')!r} has no encoder: samples cannot be re-encoded"
            )
        conditions = dict(conditions)
        Z = self.plugin.sample(int(n), conditions, temperature=float(temperature), seed=seed)
        return self.views(reencode(self.plugin, self.backbone, Z, conditions, int(rounds)) if rounds else Z)

    # ------------------------------------------------------------------ editing
    @property
    def can_reencode(self) -> bool:
        """Whether edits can be closed through the backbone (it has an encoder)."""
        return can_encode(self.backbone)

    def edit(self, z, changes: Mapping[str, Any], rounds: int = 0) -> View:
        """The latent ``z`` with the labels in ``changes`` set (all else kept), shown. ``rounds`` > 0
        re-encodes the edit that many times (:func:`plugen.reencode.reencoded_edit`: decode, encode,
        edit again with the other labels held at what the plugin read on ``z``)."""
        from plugen.reencode import reencoded_edit

        z = np.asarray(z, np.float32).reshape(1, -1)
        changes = {k: float(v) for k, v in changes.items()}
        if rounds and not self.can_reencode:
            raise InputError(
                f"backbone {getattr(self.backbone, 'name', '?')!r} has no encoder: edits cannot be re-encoded"
            )
        edited = reencoded_edit(self.plugin, self.backbone, z, changes, int(rounds)) if changes else z
        return self.view(edited[0])

    def extrapolation_note(self, requests: Mapping[str, Any]) -> str:
        """A status line naming the requested values that leave their label's training range (the
        sliders reach a little beyond it), or '' when none does."""
        far = [
            f"{label.name} (trained on {label.low:.4g} to {label.high:.4g})"
            for label in self.plugin.schema_.labels
            if label.name in requests and label.beyond_range(requests[label.name])
        ]
        return f"extrapolating beyond the training data: {', '.join(far)}; the result may fall short" if far else ""

    def warm_up(self) -> None:
        """Run every step of an edit once (the first call of each pays for imports, allocations
        and PNG encoder set-up), so that the user's first slider move is as fast as the rest."""
        from plugen.ui.domains import png_bytes

        view = self.pick(0) if len(self) else self.generate({}, 1, seed=0)[0]
        c = self._controls[0]
        png_bytes(self.edit(view.z, {c.name: c.minimum}).picture)

    # ------------------------------------------------------------------ showing
    def view(self, z) -> View:
        return self.views(np.asarray(z, np.float32).reshape(1, -1))[0]

    def views(self, Z) -> list[View]:
        Z = np.asarray(Z, np.float32)
        decoded = self.domain.unbatch(self.backbone.decode(Z))
        judged = Z
        if self.judge_picture and can_encode(self.backbone):
            try:
                judged = self._encode(decoded)
            except InputError:  # e.g. a decoded SMILES that is not a molecule: judge the latent
                judged = Z
        predictions = predict_attributes(self.plugin, judged)
        names = self.labels
        return [
            View(
                z=Z[i].copy(),
                sample=decoded[i],
                picture=self.domain.render(decoded[i]),
                predictions=predictions[i],
                text=self.domain.text(decoded[i]),
                measured=self.domain.measure(decoded[i], names),
            )
            for i in range(len(Z))
        ]

    def _encode(self, samples: list) -> np.ndarray:
        if not can_encode(self.backbone):
            raise InputError(
                f"backbone {self.backbone.name!r} has no encoder: it cannot take a given sample "
                "(generate new ones instead)"
            )
        if any(s is None for s in samples):
            raise InputError(f"the {self.domain.kind} could not be decoded into a valid sample")
        Z = np.asarray(self.backbone.encode(self.domain.batch(samples)), np.float32)
        bad = ~np.isfinite(Z).all(axis=1)
        if bad.any():  # a backbone that marks unreadable inputs with NaN rows (the SMILES VAEs)
            reasons = getattr(self.backbone, "last_errors", None) or []
            i = int(np.flatnonzero(bad)[0])
            why = reasons[i] if i < len(reasons) and reasons[i] else "the backbone cannot encode it"
            raise InputError(f"{self.backbone.name!r} cannot encode this {self.domain.kind}: {why}")
        return Z


def can_encode(backbone) -> bool:
    """Whether ``backbone`` maps samples to latents (an autoencoder, a SMILES VAE; not a GAN)."""
    from plugen.backbones.base import Backbone

    if getattr(backbone, "can_encode", False):
        return True
    return isinstance(backbone, Backbone) and type(backbone).encode is not Backbone.encode


def predict_attributes(plugin, Z) -> list[dict[str, dict]]:
    """Per row of ``Z``: for each label ``{"kind", "value"}`` plus ``"confidence"``: P(y=1) for a
    binary label (value is that probability), the predicted class and its probability for a
    categorical one, the value in label units for a continuous one."""
    Z = np.asarray(Z, np.float32)
    point = plugin.predict(Z)
    rows: list[dict[str, dict]] = [{} for _ in range(len(Z))]
    for j, label in enumerate(plugin.schema_.labels):
        if label.kind == "binary":
            p = np.asarray(plugin.predict_proba(Z, label=label.name)).reshape(-1)
            for i in range(len(Z)):
                rows[i][label.name] = {"kind": "binary", "value": float(p[i]), "confidence": float(max(p[i], 1 - p[i]))}
        elif label.kind == "categorical":
            proba = np.asarray(plugin.predict_proba(Z, label=label.name)).reshape(len(Z), -1)
            for i in range(len(Z)):
                rows[i][label.name] = {
                    "kind": "categorical",
                    "value": int(round(float(point[i, j]))),
                    "confidence": float(proba[i].max()),
                }
        else:
            for i in range(len(Z)):
                rows[i][label.name] = {"kind": "continuous", "value": float(point[i, j])}
    return rows


def slider_values(controls: list[Control], predictions: dict[str, dict]) -> list[float]:
    """Slider positions that show a sample's predicted attributes (binary: P(y=1))."""
    out = []
    for c in controls:
        value = float(predictions[c.name]["value"])
        out.append(float(np.clip(np.round(round(value / c.step) * c.step, 10), c.minimum, c.maximum)))
    return out


def _controls(plugin, class_names: Mapping[str, list[str]]) -> list[Control]:
    out = []
    for label in plugin.schema_.labels:
        if label.kind == "binary":
            out.append(Control(label.name, "binary", -0.5, 1.5, 0.05))
        elif label.kind == "categorical":
            names = label.names or list(class_names.get(label.name, []))
            names = names if len(names) == len(label.classes) else label.class_names
            out.append(
                Control(
                    label.name,
                    "categorical",
                    float(min(label.classes)),
                    float(max(label.classes)),
                    1.0,
                    classes=list(label.classes),
                    class_names=names,
                )
            )
        else:
            q = np.asarray(label.quantiles, np.float64)
            lo, hi = float(q[0]), float(q[-1])
            spread = hi - lo if hi > lo else max(abs(label.std), 1e-6)
            step = _nice_step(spread / 100)
            lo, hi = lo - 0.25 * spread, hi + 0.25 * spread
            out.append(
                Control(label.name, "continuous", _round_to(lo, step, np.floor), _round_to(hi, step, np.ceil), step)
            )
    return out


def _nice_step(x: float) -> float:
    """1, 2 or 5 times a power of ten, at most ``x``."""
    exponent = np.floor(np.log10(x))
    for m in (5, 2, 1):
        if m * 10**exponent <= x:
            return float(m * 10**exponent)
    return float(10**exponent)


def _round_to(value: float, step: float, how) -> float:
    return float(np.round(how(value / step) * step, 10))
