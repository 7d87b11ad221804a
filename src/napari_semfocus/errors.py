"""Errors that carry one clear sentence for the user (the CLI exits with code 2 on them)."""


class SemFocusError(ValueError):
    """Bad input: the message names the input and what is wrong with it."""


class CheckpointError(SemFocusError):
    """A model file that cannot be used (corrupt, foreign, or of another architecture)."""


class ImageReadError(SemFocusError):
    """An image file that cannot be read or holds no usable 2-D image data."""


class SemFocusWarning(UserWarning):
    """Work goes on, but the user should know (one sentence; the CLI prints it as a warning)."""
