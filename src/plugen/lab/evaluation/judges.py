"""Judges: read every label of a data set from raw images, independently of any plugin.

A judge maps images to ``{label: values}`` (class codes, or measurements in the label's units),
gives class probabilities of categorical labels (for AUC), features (for the Fréchet distance),
and a tolerance per continuous label (how far a measurement may move and still count as kept).

- MNIST: digit by the shipped ``mnist-digit`` CNN; thickness, slant, width measured with
  Morpho-MNIST-style morphometry (scikit-image).
- Shapes: shape by the shipped ``shapes-shape`` CNN; colour, size and position measured from
  the pixels (:func:`plugen.data.shapes.measure`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from plugen.lab.evaluation.evaluators import Evaluator, load_evaluator


@dataclass
class Judge:
    name: str
    labels: dict[str, str]
    classifiers: dict[str, Evaluator]  # categorical labels read by a CNN
    measure: Callable[[np.ndarray], dict[str, np.ndarray]]  # labels read from pixels
    tolerance: dict[str, float] = field(default_factory=dict)  # continuous labels: allowed drift
    features_from: str = ""  # the classifier whose penultimate layer gives Fréchet features

    # the last reference images' features (:meth:`reference_features`)
    _reference: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __call__(self, images: np.ndarray) -> dict[str, np.ndarray]:
        return self.read(images)[0]

    def read(self, images: np.ndarray) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], np.ndarray | None]:
        """Every label (as ``judge(images)``), each CNN's class probabilities (n, classes) and the
        Fréchet features, from one pass of each CNN."""
        values, probas, features = {}, {}, None
        for name, clf in self.classifiers.items():
            probas[name], f = clf.proba_and_features(images)
            values[name] = clf.classes[probas[name].argmax(axis=1)].astype(np.float64)
            if name == self.features_from:
                features = f
        values.update(self.measure(images))
        return {name: values[name] for name in self.labels}, probas, features

    def features(self, images: np.ndarray) -> np.ndarray:
        return self.classifiers[self.features_from].features(images)

    def reference_features(self, images: np.ndarray) -> np.ndarray:
        """``features(images)``, computed once for the same images (the real images every method's
        samples are compared with)."""
        images = np.ascontiguousarray(images)
        key = (images.shape, images.dtype.str, hashlib.blake2b(images.view(np.uint8)).hexdigest())
        if key not in self._reference:
            self._reference.clear()
            self._reference[key] = self.features(images)
        return self._reference[key]


def mnist_judge() -> Judge:
    from plugen.data.mnist import LABELS, morphometry

    def measure(images):
        return {k: v for k, v in morphometry(images).items() if k in LABELS}

    return Judge(
        "mnist",
        dict(LABELS),
        {"digit": load_evaluator("mnist-digit")},
        measure,
        tolerance={"thickness": 0.5, "slant": 0.15, "width": 2.0},
        features_from="digit",
    )


def shapes_judge() -> Judge:
    from plugen.data.shapes import LABELS, measure

    return Judge(
        "shapes",
        dict(LABELS),
        {"shape": load_evaluator("shapes-shape")},
        measure,
        tolerance={"size": 0.75, "x": 1.5, "y": 1.5},
        features_from="shape",
    )
