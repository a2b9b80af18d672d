"""Shapes3D: procedural 3-D point clouds, a stand-in for ShapeNet (FPN paper section 5.1.2).

ShapeNet (the FPN paper's point-cloud data, 55 classes) cannot be downloaded here, so this module
draws labelled point clouds of eight solids instead. Each cloud is ``points`` points sampled
uniformly by area on the solid's surface, then

1. *whitened*: the canonical cloud is centred and mapped by ``C^(-1/2)`` (``C`` its covariance),
   so every class starts with the identity covariance (a torus gets a fatter tube, a capsule a
   shorter barrel; the class stays recognisable, and the attributes below become exact);
2. *elongated*: stretched by ``elongation`` along its own z axis;
3. *scaled*: multiplied so its root-mean-square radius equals ``size``;
4. *rotated*: a yaw of up to 15 degrees either way about the vertical axis, then a tilt of up to 15
   degrees about a random horizontal axis (style, unlabelled). Like ShapeNet's objects, the solids are
   upright and roughly aligned: with any yaw, a small autoencoder trained by Chamfer distance averages
   a cube over its turns and decodes a cylinder (with a uniform yaw most cubes and pyramids came back
   as cylinders and cones).

Labels (:data:`LABELS`), defined so that :func:`measure` reads them back exactly from raw points:

- ``shape``: categorical, the index into :data:`CLASSES`;
- ``size``: continuous, the root-mean-square distance of the points from their centroid,
  ``sqrt(mean ||p - mean(p)||^2)`` (0.5 to 1.0);
- ``elongation``: continuous, ``sqrt(l1 / l2)`` where ``l1 >= l2 >= l3`` are the eigenvalues of the
  points' covariance: the ratio of the spread along the longest principal axis to that along the
  second (1.0 to 2.0). After step 1 the covariance is ``k^2 diag(1, 1, e^2)``, so it is exactly ``e``.

Generation is deterministic given the seed.

>>> data = make_shapes3d(16, seed=0)
>>> data.points.shape, data.Y.shape
((16, 1024, 3), (16, 3))
>>> bool(np.allclose(measure(data.points)["size"], data.column("size"), atol=1e-4))
True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CLASSES = ("sphere", "cube", "cylinder", "cone", "torus", "pyramid", "capsule", "octahedron")
LABELS = {"shape": "categorical", "size": "continuous", "elongation": "continuous"}
POINTS = 1024
SIZE_RANGE = (0.5, 1.0)
ELONGATION_RANGE = (1.0, 2.0)
MAX_YAW = np.deg2rad(15.0)
MAX_TILT = np.deg2rad(15.0)


@dataclass
class PointCloudDataset:
    points: np.ndarray  # (n, P, 3) float32
    Y: np.ndarray  # (n, K) float64 labels in the order of ``labels``
    labels: dict[str, str]  # name -> "categorical" | "continuous"
    rotation: np.ndarray  # (n, 2) yaw, tilt in radians (unlabelled style)

    def __len__(self) -> int:
        return len(self.points)

    def subset(self, index) -> PointCloudDataset:
        return PointCloudDataset(self.points[index], self.Y[index], dict(self.labels), self.rotation[index])

    def split(self, fraction: float, seed: int = 0) -> tuple[PointCloudDataset, PointCloudDataset]:
        """Random split: the first part has ``fraction`` of the rows."""
        order = np.random.default_rng(seed).permutation(len(self))
        cut = int(round(len(self) * fraction))
        return self.subset(order[:cut]), self.subset(order[cut:])

    def column(self, name: str) -> np.ndarray:
        return self.Y[:, list(self.labels).index(name)]


def make_shapes3d(n: int, seed: int = 0, points: int = POINTS, classes: np.ndarray | None = None) -> PointCloudDataset:
    """``n`` labelled clouds, classes balanced at random (or the given class codes), size and
    elongation uniform over :data:`SIZE_RANGE` and :data:`ELONGATION_RANGE`."""
    rng = np.random.default_rng(seed)
    shape = rng.integers(0, len(CLASSES), n) if classes is None else np.asarray(classes, int).reshape(n)
    size = rng.uniform(*SIZE_RANGE, n)
    elongation = rng.uniform(*ELONGATION_RANGE, n)
    yaw = rng.uniform(-MAX_YAW, MAX_YAW, n)
    tilt = rng.uniform(0, MAX_TILT, n)
    tilt_axis = rng.uniform(0, 2 * np.pi, n)
    out = np.empty((n, points, 3), np.float32)
    for i in range(n):
        out[i] = cloud(shape[i], size[i], elongation[i], yaw[i], tilt[i], tilt_axis[i], points, rng)
    Y = np.column_stack([shape, size, elongation]).astype(np.float64)
    return PointCloudDataset(out, Y, dict(LABELS), np.column_stack([yaw, tilt]))


def cloud(
    shape: int,
    size: float,
    elongation: float,
    yaw: float = 0.0,
    tilt: float = 0.0,
    tilt_axis: float = 0.0,
    points: int = POINTS,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """One cloud (points, 3) float32: surface sample, whiten, elongate, scale, rotate (module docstring)."""
    rng = np.random.default_rng(0) if rng is None else rng
    p = _SAMPLERS[CLASSES[int(shape)]](points, rng)
    p = p - p.mean(axis=0)
    vals, vecs = np.linalg.eigh(p.T @ p / len(p))
    p = p @ (vecs / np.sqrt(vals)) @ vecs.T  # identity covariance, axes kept
    p[:, 2] *= elongation
    p *= size / np.sqrt((p**2).sum(axis=1).mean())
    return (p @ _rotation(yaw, tilt, tilt_axis).T).astype(np.float32)


def measure(points: np.ndarray) -> dict[str, np.ndarray]:
    """``size`` and ``elongation`` (module docstring) read from raw clouds (n, P, 3): exact on
    generated clouds, and an independent judge of decoded ones."""
    p = np.asarray(points, np.float64)
    p = p - p.mean(axis=1, keepdims=True)
    size = np.sqrt((p**2).sum(axis=2).mean(axis=1))
    cov = np.einsum("npi,npj->nij", p, p) / p.shape[1]
    vals = np.linalg.eigvalsh(cov)  # ascending
    elongation = np.sqrt(vals[:, 2] / np.maximum(vals[:, 1], 1e-12))
    return {"size": size, "elongation": elongation}


def _rotation(yaw: float, tilt: float, tilt_axis: float) -> np.ndarray:
    """Tilt by ``tilt`` about the horizontal axis at angle ``tilt_axis``, after a yaw about z."""
    c, s = np.cos(yaw), np.sin(yaw)
    Rz = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    a = np.array([np.cos(tilt_axis), np.sin(tilt_axis), 0.0])
    K = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    Rt = np.eye(3) + np.sin(tilt) * K + (1 - np.cos(tilt)) * K @ K  # Rodrigues
    return Rt @ Rz


# ---- uniform surface samplers of the canonical solids (axis along z) ----


def _triangles(tris: np.ndarray, n: int, rng) -> np.ndarray:
    """``n`` points uniform by area on triangles (T, 3, 3)."""
    area = 0.5 * np.linalg.norm(np.cross(tris[:, 1] - tris[:, 0], tris[:, 2] - tris[:, 0]), axis=1)
    t = rng.choice(len(tris), n, p=area / area.sum())
    u, v = rng.random((2, n))
    flip = u + v > 1
    u, v = np.where(flip, 1 - u, u), np.where(flip, 1 - v, v)
    a, b, c = tris[t, 0], tris[t, 1], tris[t, 2]
    return a + u[:, None] * (b - a) + v[:, None] * (c - a)


def _sphere(n, rng):
    p = rng.normal(size=(n, 3))
    return p / np.linalg.norm(p, axis=1, keepdims=True)


def _cube(n, rng):
    face = rng.integers(0, 6, n)
    p = rng.uniform(-1, 1, (n, 3))
    p[np.arange(n), face % 3] = np.where(face < 3, -1.0, 1.0)
    return p


def _disk(n, rng, radius=1.0):
    r, t = radius * np.sqrt(rng.random(n)), rng.uniform(0, 2 * np.pi, n)
    return r * np.cos(t), r * np.sin(t)


def _cylinder(n, rng, radius=1.0, half_height=1.0):
    side, cap = 2 * np.pi * radius * 2 * half_height, np.pi * radius**2
    on_side = rng.random(n) < side / (side + 2 * cap)
    t = rng.uniform(0, 2 * np.pi, n)
    x, y = _disk(n, rng, radius)
    z = np.where(
        on_side, rng.uniform(-half_height, half_height, n), np.where(rng.random(n) < 0.5, -half_height, half_height)
    )
    return np.column_stack([np.where(on_side, radius * np.cos(t), x), np.where(on_side, radius * np.sin(t), y), z])


def _cone(n, rng, radius=1.0, height=2.0):
    lateral, base = np.pi * radius * np.hypot(radius, height), np.pi * radius**2
    on_side = rng.random(n) < lateral / (lateral + base)
    s = np.sqrt(rng.random(n))  # distance from the apex, as a fraction: uniform by area
    t = rng.uniform(0, 2 * np.pi, n)
    x, y = _disk(n, rng, radius)
    return np.column_stack(
        [
            np.where(on_side, s * radius * np.cos(t), x),
            np.where(on_side, s * radius * np.sin(t), y),
            np.where(on_side, height * (1 - s), 0.0),
        ]
    )


def _torus(n, rng, major=1.0, minor=0.4):
    out = np.empty((0, 3))
    while len(out) < n:  # rejection: area element is proportional to major + minor cos(phi)
        theta, phi = rng.uniform(0, 2 * np.pi, (2, 2 * n))
        keep = rng.random(2 * n) < (major + minor * np.cos(phi)) / (major + minor)
        r = major + minor * np.cos(phi[keep])
        out = np.vstack(
            [out, np.column_stack([r * np.cos(theta[keep]), r * np.sin(theta[keep]), minor * np.sin(phi[keep])])]
        )
    return out[:n]


_BASE = np.array([[-1, -1, 0], [1, -1, 0], [1, 1, 0], [-1, 1, 0]], float)
_PYRAMID = np.array(
    [[_BASE[i], _BASE[(i + 1) % 4], [0, 0, 1.5]] for i in range(4)] + [_BASE[[0, 1, 2]], _BASE[[0, 2, 3]]]
)
_OCTAHEDRON = np.array(
    [[[sx, 0, 0], [0, sy, 0], [0, 0, sz]] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], float
)


def _capsule(n, rng, radius=1.0, half_length=1.0):
    side, caps = 2 * np.pi * radius * 2 * half_length, 4 * np.pi * radius**2
    on_side = rng.random(n) < side / (side + caps)
    t = rng.uniform(0, 2 * np.pi, n)
    ball = _sphere(n, rng) * radius
    ball[:, 2] += np.sign(ball[:, 2]) * half_length
    side_p = np.column_stack([radius * np.cos(t), radius * np.sin(t), rng.uniform(-half_length, half_length, n)])
    return np.where(on_side[:, None], side_p, ball)


_SAMPLERS = {
    "sphere": _sphere,
    "cube": _cube,
    "cylinder": _cylinder,
    "cone": _cone,
    "torus": _torus,
    "pyramid": lambda n, rng: _triangles(_PYRAMID, n, rng),
    "capsule": _capsule,
    "octahedron": lambda n, rng: _triangles(_OCTAHEDRON, n, rng),
}
