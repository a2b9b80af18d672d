import numpy as np
import pytest

from plugen.data.shapes import HELD_OUT, LABELS, make_shapes, measure, render


def combos(data):
    return {(int(s), int(c)) for s, c in data.Y[:, :2]}


@pytest.mark.slow
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


def _square_extent(images):
    """Axis-aligned width of each (single) shape over the side of the square of equal area: 1 for an
    unrotated square, up to sqrt(2) at 45 degrees."""
    cover = images.max(axis=1) > 0.5
    cols = cover.any(axis=1)
    width = cols.shape[1] - np.argmax(cols[:, ::-1], axis=1) - np.argmax(cols, axis=1)
    return width / np.sqrt(cover.sum(axis=(1, 2)))


def test_rotation_range():
    def squares(max_rotation):
        data = make_shapes(400, "uniform", seed=5, max_rotation=max_rotation)
        return _square_extent(data.images[data.column("shape") == 0])

    upright, default, full = squares(0.0), squares(30.0), squares(None)
    assert upright.max() < 1.15  # axis-aligned
    # tilted by up to 30 degrees (width up to cos 30 + sin 30 = 1.37): few squares near the widest
    assert np.mean(default > 1.2) > 0.25 and np.mean(default > 1.3) < 0.2
    assert np.mean(full > 1.3) > 0.3  # any angle: a 45-degree square is 1.41 wide
    assert np.array_equal(make_shapes(20, seed=6).images, make_shapes(20, seed=6, max_rotation=30.0).images)


def test_class_names_say_what_the_generator_draws():
    from plugen.data.shapes import COLOURS, SHAPES

    assert LABELS["shape"] == list(SHAPES) and LABELS["colour"] == list(COLOURS)
    n = 3
    images = render(np.arange(n), np.arange(n), np.full(n, 6.0), np.full(n, 16.0), np.full(n, 16.0), np.zeros(n))
    mask = images.max(axis=1)
    corners = mask[:, [10, 21], :][:, :, [10, 21]].mean(axis=(1, 2))  # 5.5 px from the centre on both axes
    above, below = mask[:, 12].sum(axis=1), mask[:, 19].sum(axis=1)  # widths of two rows 3.5 px from the centre
    asymmetry = np.abs(above - below) / (above + below)
    drawn = [
        "square" if c > 0.9 else "triangle" if a > 0.2 else "circle" if c < 0.1 and a < 0.05 else "?"
        for c, a in zip(corners, asymmetry)
    ]
    assert drawn == list(SHAPES)
    channel = measure(images)["colour"].astype(int)
    assert [("red", "green", "blue")[c] for c in channel] == list(COLOURS)
