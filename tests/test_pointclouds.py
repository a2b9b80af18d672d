"""Point clouds: Shapes3D data, Chamfer distance, the shipped shapes3d-ae backbone and shapes3d-shape
evaluator, and the experiments end to end at smoke scale."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from plugen.backbones.pointcloud import PointCloudAE, chamfer_distance
from plugen.data.shapes3d import (
    CLASSES,
    ELONGATION_RANGE,
    LABELS,
    SIZE_RANGE,
    cloud,
    make_shapes3d,
    measure,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def data():
    return make_shapes3d(96, seed=7)


# ---------------------------------------------------------------- data


def test_shapes3d_arrays_and_labels(data):
    assert data.points.shape == (96, 1024, 3) and data.points.dtype == np.float32
    assert data.Y.shape == (96, 3) and list(data.labels) == list(LABELS) == ["shape", "size", "elongation"]
    shape = data.column("shape")
    assert len(CLASSES) >= 8 and set(np.unique(shape)) == set(range(len(CLASSES)))
    assert np.all((data.column("size") >= SIZE_RANGE[0]) & (data.column("size") <= SIZE_RANGE[1]))
    assert np.all(
        (data.column("elongation") >= ELONGATION_RANGE[0]) & (data.column("elongation") <= ELONGATION_RANGE[1])
    )
    assert np.abs(data.points.mean(axis=1)).max() < 1e-5  # centred


def test_shapes3d_deterministic_by_seed(data):
    again, other = make_shapes3d(96, seed=7), make_shapes3d(96, seed=8)
    np.testing.assert_array_equal(again.points, data.points)
    np.testing.assert_array_equal(again.Y, data.Y)
    assert not np.allclose(other.Y, data.Y)


def test_measured_attributes_match_the_defined_ones(data):
    m = measure(data.points)
    np.testing.assert_allclose(m["size"], data.column("size"), atol=1e-4)
    np.testing.assert_allclose(m["elongation"], data.column("elongation"), atol=1e-3)
    # invariant to point order and to rotation
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    moved = data.points[:, rng.permutation(1024)] @ q.T
    np.testing.assert_allclose(measure(moved)["elongation"], m["elongation"], rtol=1e-4)
    # the definitions, by hand: a stretched sphere's spread ratio is its elongation
    p = cloud(0, size=0.8, elongation=1.7, points=4096)
    assert np.sqrt((p**2).sum(1).mean()) == pytest.approx(0.8, abs=1e-5)
    spread = np.sqrt(np.linalg.eigvalsh(np.cov(p.T, bias=True)))
    assert spread[2] / spread[1] == pytest.approx(1.7, abs=1e-3)


def test_classes_differ_in_geometry():
    sphere, cube = cloud(0, 1.0, 1.0, points=4096), cloud(1, 1.0, 1.0, points=4096)
    r_sphere, r_cube = np.linalg.norm(sphere, axis=1), np.linalg.norm(cube, axis=1)
    assert r_sphere.std() < 0.05  # all points at one radius
    assert r_cube.std() > 0.1  # faces: from the face centres to the corners
    torus = cloud(4, 1.0, 1.0, yaw=0.0, points=4096)
    assert np.sum(np.linalg.norm(torus[:, :2], axis=1) < 0.2) == 0  # the hole


# ---------------------------------------------------------------- Chamfer distance


def test_chamfer_distance_properties(data):
    a, b = torch.as_tensor(data.points[:4]), torch.as_tensor(data.points[4:8])
    same = chamfer_distance(a, a[:, torch.randperm(1024)])
    assert same.shape == (4,) and same.max().item() < 1e-6  # any point order
    torch.testing.assert_close(chamfer_distance(a, b), chamfer_distance(b, a))
    assert chamfer_distance(a, b).min().item() > 1e-3
    t = torch.tensor([0.05, 0.0, 0.0])
    shifted = chamfer_distance(a, a + t)  # every point has a neighbour |t| away
    assert torch.all(shifted > 1e-4) and torch.all(shifted <= 2 * 0.05**2 + 1e-6)
    x = b.clone().requires_grad_(True)
    chamfer_distance(x, a).sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_chamfer_distance_matches_the_dense_definition_and_its_gradient(data):
    a = torch.as_tensor(data.points[:3, :200]).double()
    b = torch.as_tensor(data.points[3:6, :150]).double().requires_grad_(True)
    d = ((b[:, :, None, :] - a[:, None, :, :]) ** 2).sum(-1)  # every pair, differentiated densely
    dense = d.min(dim=2).values.mean(1) + d.min(dim=1).values.mean(1)
    (want,) = torch.autograd.grad(dense.sum(), b)
    got = chamfer_distance(b, a, chunk=2)
    (grad,) = torch.autograd.grad(got.sum(), b)
    torch.testing.assert_close(got, dense.detach())
    torch.testing.assert_close(grad, want)


# ---------------------------------------------------------------- shipped backbone and evaluator


def test_shipped_backbone_round_trip():
    from plugen.backbones import describe, load

    bb = load("shapes3d-ae")
    meta = describe("shapes3d-ae")
    assert bb.latent_dim == 128 and isinstance(bb.model, PointCloudAE)
    fresh = make_shapes3d(16, seed=4242).points
    z = bb.encode(fresh)
    recon = bb.decode(z)
    assert z.shape == (16, 128) and recon.shape == (16, 1024, 3)
    assert torch.is_tensor(bb.encode(torch.as_tensor(fresh)))
    cd = chamfer_distance(torch.as_tensor(recon), torch.as_tensor(fresh)).mean().item()
    other = chamfer_distance(torch.as_tensor(fresh[::-1].copy()), torch.as_tensor(fresh)).mean().item()
    validation = meta["training"]["final"]["validation"]["chamfer"]
    assert cd < 2 * validation  # as good on fresh clouds as at training time
    assert cd < 0.25 * other  # far better than a wrong cloud
    # encoding is order invariant
    np.testing.assert_allclose(bb.encode(fresh[:, ::-1].copy()), z, atol=1e-4)


def test_shipped_evaluator_accuracy_on_fresh_clouds():
    from plugen.lab.evaluation.evaluators import WEIGHTS
    from plugen.lab.evaluation.pointcloud_classifier import load_pointcloud_evaluator

    evaluator = load_pointcloud_evaluator()
    fresh = make_shapes3d(240, seed=5151)
    accuracy = np.mean(evaluator.predict(fresh.points) == fresh.column("shape"))
    assert accuracy >= 0.9
    record = json.loads((WEIGHTS / "shapes3d-shape.json").read_text())
    assert record["training"]["test_accuracy"] >= 0.9 and record["class_names"] == list(CLASSES)
    assert evaluator.features(fresh.points[:5]).shape == (5, 128)


# ---------------------------------------------------------------- experiments


@pytest.mark.slow
def test_pointcloud_experiments_smoke(tmp_path):
    """Generation, edits and the report end to end on a few clouds (the classification table and the
    pictures are left to the benchmark: scikit-learn's grid search alone takes over a minute)."""
    from plugen.lab.evaluation.pointclouds import (
        render_report,
        run_pointcloud_experiments,
        write,
    )

    res = run_pointcloud_experiments(tmp_path, scale="smoke", classification=False, figures=False, log=False)
    assert res["latent_dim"] == 128 and set(res["methods"]) == {"PluGeN", "FPN"}
    assert res["evaluator"]["test_accuracy"] >= 0.9
    rec = res["reconstruction"]
    assert rec["shape_accuracy"] > 0.75 and rec["size_correlation"] > 0.9  # decoded clouds keep their labels
    for m in res["methods"].values():
        gen = m["generation"]
        assert [r["request"] for r in gen["requests"]] == [{"shape": c} for c in range(len(CLASSES))]
        assert 0 <= gen["mean_accuracy"] <= 1 and np.isfinite(gen["frechet_distance"])
        assert {c["label"] for c in m["edits"]["continuous"]} == {"size", "elongation"}
        assert all(-1 <= c["correlation"] <= 1 for c in m["edits"]["continuous"])
    assert "classification" not in res and "figures" not in res
    write(res, tmp_path / "r.json", tmp_path / "r.md")
    assert json.loads((tmp_path / "r.json").read_text())["scale"] == "smoke"
    report = render_report(res)
    assert "Generation accuracy per class" in report and "octahedron" in report


def test_cloud_grid_writes_a_picture(tmp_path):
    from plugen.lab.evaluation.pointclouds import cloud_grid

    clouds = make_shapes3d(2, seed=1).points.reshape(1, 2, 1024, 3)
    path = cloud_grid(clouds, tmp_path / "grid.png", col_titles=["a", "b"], title="t")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000
