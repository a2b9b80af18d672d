"""Exceptions and warnings raised by plugen. Every message names the problem and, where it can, the fix."""


class PlugenError(Exception):
    """Base class of all plugen errors."""


class InputError(PlugenError, ValueError):
    """Bad latents, labels or requests: wrong shape, NaN/Inf, unknown label, wrong latent size."""


class NotFittedError(PlugenError, AttributeError):
    """A method that needs a fitted plugin was called before ``fit`` or ``load``."""


class CheckpointError(PlugenError):
    """A checkpoint directory is missing, corrupted, or does not match what it is used with."""


class TrainingError(PlugenError, FloatingPointError):
    """Training diverged (NaN/Inf loss) before any good weights existed."""


class ExtrapolationWarning(UserWarning):
    """A requested continuous label value lies outside the values the plugin was fitted on."""
