import numpy as np
import pytest

from plugen.data.shapes import HELD_OUT, LABELS, make_shapes, measure, render


def combos(data):
    return {(int(s), int(c)) for s, c in data.Y[:, :2]}


def test_training_split_is_correlated_and_misses_the_held_out_combinations():
    data = make_shapes(3000, "train", seed=0)
    assert data.images.shape == (3000, 3, 32, 32) and data.images.dtype == np.float32
    assert 0 <= data.images.min() and data.images.max() <= 1
    assert list(data.labels) == list(LABELS)
    assert combos(data).isdisjoint(HELD_OUT) and len(combos(data)) == 6
    shape, colour = data.column("shape"), data.column("colour")
    assert abs(np.corrcoef(shape, colour)[0, 1]) > 0.2 or np.mean(shape == colour) > 0.5  # entangled
    sizes = [data.column("size")[shape == s].mean() for s in range(3)]
    assert max(sizes) - min(sizes) > 0.7  # size depends on the shape


def test_unseen_split_has_only_held_out_combinations():
    data = make_shapes(300, "unseen", seed=1)
    assert combos(data) == set(HELD_OUT)


def test_generation_is_deterministic_and_shapes_stay_in_frame():
    a, b = make_shapes(50, seed=3), make_shapes(50, seed=3)
    assert np.array_equal(a.images, b.images) and np.array_equal(a.Y, b.Y)
    border = np.concatenate([a.images[..., 0, :], a.images[..., -1, :], a.images[..., :, 0], a.images[..., :, -1]], -1)
    assert border.max() < 0.05


def test_measurements_read_the_rendered_attributes():
    data = make_shapes(500, "uniform", seed=4)
    m = measure(data.images)
    assert np.mean(m["colour"] == data.column("colour")) == 1.0
    assert np.abs(m["x"] - data.column("x")).max() < 0.3 and np.abs(m["y"] - data.column("y")).max() < 0.3
    assert np.corrcoef(m["size"], data.column("size"))[0, 1] > 0.97


def test_equal_size_means_equal_area_across_shapes():
    n = 3
    images = render([0, 1, 2], [0, 0, 0], [6.0] * n, [16.0] * n, [16.0] * n, [0.3] * n)
    areas = images.max(axis=1).sum(axis=(1, 2))
    assert areas.max() / areas.min() < 1.05


def test_bad_split():
    with pytest.raises(ValueError, match="split"):
        make_shapes(3, "test")
