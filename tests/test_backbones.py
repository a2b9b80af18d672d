"""The shipped reference backbones: they load, decode, reconstruct real data, and fail loudly."""

import shutil

import numpy as np
import pytest
import torch

from plugen import backbones
from plugen.backbones.train import SHAPES_VALIDATION_SEED, SPECS, mnist_split
from plugen.errors import CheckpointError, InputError

SHIPPED = ["mnist-vae", "mnist-ae", "mnist-gan", "shapes-vae"]
AUTOENCODERS = ["mnist-vae", "mnist-ae", "shapes-vae"]
#: reconstruction MSE per pixel on these 16 validation images, about 2.2x what the shipped weights give
#: (mnist-vae 0.0066, mnist-ae 0.0040, shapes-vae 0.00036)
MAX_MSE = {"mnist-vae": 0.015, "mnist-ae": 0.009, "shapes-vae": 0.0008}


@pytest.fixture(scope="module")
def loaded():
    return {name: backbones.load(name) for name in SHIPPED}


@pytest.fixture(scope="module")
def validation():
    """A few real validation images per data set (never seen in training)."""
    from plugen.data.shapes import make_shapes

    return {"mnist": mnist_split()[1][:16], "shapes": make_shapes(16, "train", SHAPES_VALIDATION_SEED).images}


def _val(validation, name):
    return validation[name.split("-")[0]]


def test_every_backbone_is_shipped():
    assert set(SHIPPED) <= set(backbones.available())


@pytest.mark.parametrize("name", SHIPPED)
def test_loads_with_its_latent_size_and_provenance(loaded, name):
    bb, meta = loaded[name], backbones.describe(name)
    assert bb.latent_dim == meta["latent_dim"] == SPECS[name].kwargs["latent_dim"]
    assert meta["reproduce"] == f"python -m plugen.backbones.train {name}" + (
        f" --device {meta['training']['device']}" if meta["training"]["device"] != "cpu" else ""
    )
    assert meta["data"]["train_size"] > 0 and meta["training"]["seconds"] > 0


@pytest.mark.parametrize("name", SHIPPED)
def test_decode_random_latents(loaded, name):
    bb = loaded[name]
    z = np.random.default_rng(0).standard_normal((5, bb.latent_dim)).astype(np.float32)
    x = bb.decode(z)
    assert isinstance(x, np.ndarray) and x.shape == (5, *bb.meta["sample_shape"])
    assert x.min() >= 0 and x.max() <= 1
    xt = bb.decode(torch.from_numpy(z))
    assert isinstance(xt, torch.Tensor) and np.allclose(xt.numpy(), x, atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("name", AUTOENCODERS)
def test_autoencoders_reconstruct_real_validation_images(loaded, validation, name):
    bb, x = loaded[name], _val(validation, name)
    z = bb.encode(x)
    assert isinstance(z, np.ndarray) and z.shape == (len(x), bb.latent_dim)
    mse = ((bb.decode(z) - x) ** 2).mean()
    blank = (x**2).mean()
    assert mse < MAX_MSE[name] and mse < 0.3 * blank
    zt = bb.encode(torch.from_numpy(x))
    assert isinstance(zt, torch.Tensor) and np.allclose(zt.numpy(), z, atol=1e-5)


@pytest.mark.parametrize("name", SHIPPED)
def test_wrong_latent_size_is_refused(loaded, name):
    bb = loaded[name]
    with pytest.raises(InputError, match=f"\\(n, {bb.latent_dim}\\)"):
        bb.decode(np.zeros((2, bb.latent_dim + 1), np.float32))


def test_corrupted_weights_are_refused(tmp_path):
    copy = tmp_path / "weights"
    shutil.copytree(backbones.registry.WEIGHTS, copy)
    path = copy / "mnist-ae.safetensors"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="corrupted"):
        backbones.load("mnist-ae", directory=copy)
    assert backbones.load("mnist-vae", directory=copy).latent_dim == 40  # the others still load


def test_gan_has_no_encoder_and_says_invert(loaded):
    with pytest.raises(InputError, match="invert"):
        loaded["mnist-gan"].encode(np.zeros((2, 1, 28, 28), np.float32))


@pytest.mark.slow
def test_gan_inversion_reduces_error_from_its_random_start(loaded):
    gan = loaded["mnist-gan"]
    target = gan.decode(np.random.default_rng(1).standard_normal((4, gan.latent_dim)).astype(np.float32))
    _, start = gan.invert(target, steps=0, restarts=1, seed=3)
    z, err = gan.invert(target, steps=60, restarts=1, seed=3)
    assert z.shape == (4, gan.latent_dim) and err.shape == (4,)
    assert err.mean() < 0.5 * start.mean()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mnist-ae", "shapes3d-ae"])
def test_training_loop_lowers_the_loss(name):
    """The shared one-cycle loop behind every autoencoder spec (a few epochs on a little real data)."""
    from plugen.backbones.pointcloud import chamfer_distance
    from plugen.backbones.train import _ae_loss, _fit_autoencoder, _fit_pointcloud
    from plugen.data.shapes3d import make_shapes3d

    spec = SPECS[name]
    torch.manual_seed(0)
    model = spec.model(**spec.kwargs)
    if name == "mnist-ae":
        x = torch.as_tensor(mnist_split()[0][:256])

        def loss():
            model.eval()
            with torch.no_grad():
                return _ae_loss(model, x, spec.variational)[0].item()

        fit = _fit_autoencoder
    else:
        x = torch.as_tensor(make_shapes3d(64, seed=3).points)

        def loss():
            model.eval()
            with torch.no_grad():
                return chamfer_distance(model(x), x).mean().item()

        fit = _fit_pointcloud
    before = loss()
    last_epoch = fit(model, x, spec, epochs=4, seed=0, progress=False)
    assert np.isfinite(last_epoch) and loss() < 0.7 * before


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mnist-ae", "shapes3d-ae"])
def test_training_command_writes_a_loadable_backbone(name, tmp_path, monkeypatch):
    """``python -m plugen.backbones.train NAME`` end to end (one epoch; Shapes3D on a few clouds)."""
    import dataclasses

    from plugen.backbones import registry
    from plugen.backbones.train import main

    if name == "shapes3d-ae":
        spec = SPECS[name]
        monkeypatch.setitem(
            SPECS, name, dataclasses.replace(spec, extra={**spec.extra, "train_size": 64, "validation_size": 16})
        )
    main([name, "--epochs", "1", "--output", str(tmp_path)])
    meta = registry.describe(name, tmp_path)
    assert meta["training"]["epochs"] == 1 and np.isfinite(
        meta["training"]["final"]["validation"]["chamfer" if name == "shapes3d-ae" else "mse"]
    )
    bb = registry.load(name, directory=tmp_path)
    assert bb.latent_dim == SPECS[name].kwargs["latent_dim"]
