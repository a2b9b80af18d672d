"""Independent point-cloud evaluator: a small PointNet trained on raw Shapes3D clouds, never on latents.

It plays, for point clouds, the role the image evaluators (:mod:`plugen.lab.evaluation.evaluators`)
play for images and that the PluGeN paper's attribute classifiers play for faces: a generated or
edited latent counts as a success when this classifier reads the requested class from the *decoded*
cloud. It never sees the autoencoder, its latents or its reconstructions; training uses augmentation
(random point subsets, extra yaw, k-nearest-neighbour smoothing, Gaussian jitter) so that the
rounder, rougher clouds a decoder produces are judged fairly. The 128-d layer before the head gives
the features of the Fréchet distance.

Shipped evaluator (``python -m plugen.lab.evaluation.pointcloud_classifier`` reproduces it):

- ``shapes3d-shape``: the class of a Shapes3D cloud (:data:`plugen.data.shapes3d.CLASSES`), trained on
  ``make_shapes3d(6000, seed=202)`` and tested on ``make_shapes3d(1000, seed=303)``, seeds disjoint
  from the autoencoder's data. Its JSON records the test accuracy.

>>> evaluator = load_pointcloud_evaluator()          # doctest: +SKIP
>>> evaluator.predict(make_shapes3d(4).points)       # doctest: +SKIP
array([...])
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from plugen.backbones import registry
from plugen.backbones.registry import architecture
from plugen.lab.evaluation.evaluators import WEIGHTS, Evaluator, fit_classifier

NAME = "shapes3d-shape"
TRAIN = {"n": 6000, "seed": 202}
TEST = {"n": 1000, "seed": 303}


@architecture
class PointNetClassifier(nn.Module):
    """PointNet (Qi et al. 2017): shared per-point MLP 3 -> 64 -> 128 -> 256, max-pool over points,
    a 128-d feature layer and a linear head. Any number of points, any order."""

    def __init__(self, classes: int = 8, width: int = 256):
        super().__init__()
        self.point_mlp = nn.Sequential(
            nn.Linear(3, 64),
            nn.ReLU(),
            nn.Linear(64, 128),
            nn.ReLU(),
            nn.Linear(128, width),
            nn.ReLU(),
        )
        self.feature = nn.Sequential(nn.Linear(width, 128), nn.ReLU())
        self.head = nn.Linear(128, classes)

    def features(self, x: Tensor) -> Tensor:
        """Clouds (n, P, 3) -> (n, 128)."""
        return self.feature(self.point_mlp(x).max(dim=1).values)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


def load_pointcloud_evaluator(name: str = NAME, directory: Path = WEIGHTS) -> Evaluator:
    """The shipped point-cloud evaluator: ``predict``, ``predict_proba``, ``features`` on (n, P, 3) clouds."""
    model, meta = registry.load_model(name, directory=directory)
    return Evaluator(model, meta["classes"], name)


def _augment(x: Tensor, points: int, generator: torch.Generator) -> Tensor:
    """A random subset of ``points`` points, a yaw of up to 30 degrees, for half the clouds a
    k-nearest-neighbour smoothing (each point replaced by the mean of its k nearest, k from 2 to 24:
    rounds corners and edges the way a decoder of limited capacity does), and Gaussian jitter of
    random scale (0 to 0.04)."""
    n = x.shape[0]
    x = x[:, torch.randperm(x.shape[1], generator=generator)[:points]]
    angle = (torch.rand(n, generator=generator) - 0.5) * (torch.pi / 3)  # +-30 degrees, twice the data's yaw
    c, s = torch.cos(angle), torch.sin(angle)
    zero, one = torch.zeros(n), torch.ones(n)
    rot = torch.stack(
        [torch.stack([c, -s, zero], 1), torch.stack([s, c, zero], 1), torch.stack([zero, zero, one], 1)], 1
    )
    x = x @ rot.transpose(1, 2)
    k = int(torch.randint(2, 25, (1,), generator=generator))
    neighbours = torch.cdist(x, x).topk(k, dim=2, largest=False).indices  # (n, points, k)
    smoothed = torch.gather(x, 1, neighbours.reshape(n, -1, 1).expand(-1, -1, 3)).reshape(n, points, k, 3).mean(2)
    x = torch.where((torch.rand(n, generator=generator) < 0.5)[:, None, None], smoothed, x)
    scale = torch.rand(n, 1, 1, generator=generator) * 0.04
    return x + scale * torch.randn(x.shape, generator=generator)


def train_pointcloud_classifier(
    points: np.ndarray,
    labels: np.ndarray,
    epochs: int = 10,
    seed: int = 0,
    batch_size: int = 64,
    lr: float = 2e-3,
    train_points: int = 256,
    progress: bool = True,
) -> tuple[Evaluator, dict]:
    """Train a :class:`PointNetClassifier` on (clouds, integer labels) with Adam and a one-cycle rate."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    classes = np.unique(labels.astype(int))
    y = torch.as_tensor(np.searchsorted(classes, labels.astype(int)))
    x = torch.as_tensor(np.asarray(points, np.float32))
    model = PointNetClassifier(classes=len(classes))
    start = time.perf_counter()
    fit_classifier(
        model,
        x,
        y,
        torch.arange(len(x)),
        lambda batch, g: _augment(batch, train_points, g),
        gen,
        epochs,
        batch_size,
        lr,
        progress,
        "pointcloud evaluator",
    )
    evaluator = Evaluator(model.eval(), classes.tolist())
    report = {
        "epochs": epochs,
        "seed": seed,
        "batch_size": batch_size,
        "lr": lr,
        "train_points": train_points,
        "train_accuracy": float(np.mean(evaluator.predict(points) == labels.astype(int))),
        "seconds": round(time.perf_counter() - start, 1),
        "threads": torch.get_num_threads(),
        "n_train": len(x),
    }
    return evaluator, report


def train_evaluator(directory: Path = WEIGHTS, seed: int = 0, epochs: int = 10, progress: bool = True) -> dict:
    """Train, test and save ``shapes3d-shape``; returns its training report (with the test accuracy)."""
    from plugen.data.shapes3d import CLASSES, make_shapes3d

    train, test = make_shapes3d(TRAIN["n"], seed=TRAIN["seed"]), make_shapes3d(TEST["n"], seed=TEST["seed"])
    evaluator, report = train_pointcloud_classifier(
        train.points, train.column("shape"), epochs=epochs, seed=seed, progress=progress
    )
    truth = test.column("shape").astype(int)
    predicted = evaluator.predict(test.points)
    report["test_accuracy"] = float(np.mean(predicted == truth))
    report["test_accuracy_per_class"] = {
        CLASSES[c]: float(np.mean(predicted[truth == c] == c)) for c in range(len(CLASSES))
    }
    report["n_test"] = len(test)
    info = {
        "classes": evaluator.classes.tolist(),
        "class_names": list(CLASSES),
        "data": f"Shapes3D procedural point clouds: train make_shapes3d({TRAIN['n']}, seed={TRAIN['seed']}), "
        f"test make_shapes3d({TEST['n']}, seed={TEST['seed']})",
        "training": report,
        "torch_version": torch.__version__,
        "reproduce": "python -m plugen.lab.evaluation.pointcloud_classifier"
        + (f" --seed {seed}" if seed else "")
        + (f" --epochs {epochs}" if epochs != 10 else ""),
    }
    registry.save(
        evaluator.model,
        NAME,
        "classifier",
        None,
        list(train.points.shape[1:]),
        {"classes": len(evaluator.classes)},
        info,
        Path(directory),
    )
    return report


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Train and ship the independent point-cloud evaluator (shapes3d-shape)."
    )
    parser.add_argument("--output", default=str(WEIGHTS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (use 1 on a shared machine)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(train_evaluator(Path(args.output), seed=args.seed, epochs=args.epochs))


if __name__ == "__main__":
    main()
