"""plugen: make a frozen generative model conditional with a small normalising flow on its latents."""

__version__ = "0.1.0"

from plugen.errors import CheckpointError, ExtrapolationWarning, InputError, NotFittedError, PlugenError, TrainingError
from plugen.plugins import FPN, PluGeN

__all__ = [
    "FPN",
    "PluGeN",
    "load",
    "CheckpointError",
    "ExtrapolationWarning",
    "InputError",
    "NotFittedError",
    "PlugenError",
    "TrainingError",
    "__version__",
]


def load(path, device: str = "cpu", backbone: str | None = None, latent_dim: int | None = None):
    """Load any plugen checkpoint (PluGeN or FPN) written by ``save``."""
    from pathlib import Path

    from plugen.checkpoint import load_plugin

    return load_plugin(Path(path), device=device, backbone=backbone, latent_dim=latent_dim)
