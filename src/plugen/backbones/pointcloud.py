"""Reference point-cloud backbone: a non-generative PointNet autoencoder for Shapes3D clouds
(:mod:`plugen.data.shapes3d`, (n, 1024, 3) float32).

The FPN paper (section 5.1.2) plugs a flow into PointFlow's non-generative autoencoder for all 55
ShapeNet classes, with a 128-dimensional latent space. Neither PointFlow's weights nor ShapeNet are
available offline, so this is a small stand-in with the same role and latent size:

- encoder: a PointNet (Qi et al. 2017): a shared per-point MLP 3 -> 64 -> 128 -> width, a max-pool
  over points (order invariant), and a linear map to the 128-dim code;
- decoder: an MLP 128 -> width -> width -> P * 3 (Achlioptas et al. 2018, "Learning Representations
  and Generative Models for 3D Point Clouds"); the shipped model has width 512;
- loss: the symmetric Chamfer distance (:func:`chamfer_distance`).

It is an autoencoder, not a generative model: random codes decode to nothing in particular, and a
plugin is what makes it generate (the paper's point).

The shipped ``shapes3d-ae`` weights are produced by ``python -m plugen.backbones.train shapes3d-ae``.

>>> import torch
>>> ae = PointCloudAE().eval()
>>> ae.decode(ae.encode(torch.zeros(2, 1024, 3))).shape
torch.Size([2, 1024, 3])
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from plugen.backbones.registry import architecture


def chamfer_distance(a: Tensor, b: Tensor, chunk: int = 64) -> Tensor:
    """Symmetric Chamfer distance per cloud: ``mean_a min_b ||a - b||^2 + mean_b min_a ||a - b||^2``.

    ``a`` (n, P, 3) and ``b`` (n, Q, 3); returns (n,). Zero for identical clouds (in any point
    order), symmetric, and differentiable (the training loss of the autoencoder). Computed in
    chunks of ``chunk`` clouds to bound memory.

    The nearest neighbours are found without autograd (one batched ``||x||^2 + ||y||^2 - 2 x.y``
    product), then the loss is recomputed from the matched pairs only: the same value and the same
    gradient as differentiating through the full P x Q distance matrix, at a fraction of its cost.
    """
    out = []
    for i in range(0, a.shape[0], chunk):
        x, y = a[i : i + chunk], b[i : i + chunk]
        with torch.no_grad():
            xd, yd = x.detach(), y.detach()
            d = torch.baddbmm((yd * yd).sum(-1)[:, None, :], xd, yd.transpose(1, 2), alpha=-2)
            d.add_((xd * xd).sum(-1)[:, :, None])
            to_b, to_a = d.argmin(dim=2), d.argmin(dim=1)  # each point's nearest neighbour in the other cloud
        near_b = torch.gather(y, 1, to_b[..., None].expand(-1, -1, 3))
        near_a = torch.gather(x, 1, to_a[..., None].expand(-1, -1, 3))
        out.append(((x - near_b) ** 2).sum(-1).mean(1) + ((y - near_a) ** 2).sum(-1).mean(1))
    return torch.cat(out)


@architecture
class PointCloudAE(nn.Module):
    """PointNet encoder (shared MLP + max-pool) and MLP decoder to ``points`` x 3 (module docstring)."""

    def __init__(self, latent_dim: int = 128, points: int = 1024, width: int = 256):
        super().__init__()
        self.latent_dim, self.points = latent_dim, points
        self.point_mlp = nn.Sequential(
            nn.Linear(3, 64),
            nn.ReLU(),
            nn.Linear(64, 128),
            nn.ReLU(),
            nn.Linear(128, width),
            nn.ReLU(),
        )
        self.to_latent = nn.Linear(width, latent_dim)
        self.decoder = nn.Sequential(
            nn.Linear(latent_dim, width),
            nn.ReLU(),
            nn.Linear(width, width),
            nn.ReLU(),
            nn.Linear(width, points * 3),
        )

    def encode(self, x: Tensor) -> Tensor:
        """Clouds (n, P, 3), any P and point order -> codes (n, latent_dim)."""
        return self.to_latent(self.point_mlp(x).max(dim=1).values)

    def decode(self, z: Tensor) -> Tensor:
        """Codes (n, latent_dim) -> clouds (n, points, 3)."""
        return self.decoder(z).view(-1, self.points, 3)

    def forward(self, x: Tensor) -> Tensor:
        return self.decode(self.encode(x))
