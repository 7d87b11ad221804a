"""Errors that carry one clear sentence for the user (the CLI exits with code 2 on them)."""

import math
import numbers


class SemFocusError(ValueError):
    """Bad input: the message names the input and what is wrong with it."""


class CheckpointError(SemFocusError):
    """A model file that cannot be used (corrupt, foreign, or of another architecture)."""


class BrokenModelError(SemFocusError):
    """A model that gives NaN or infinite scores for finite input (its checkpoint was edited or
    damaged, or training broke it)."""


class ImageReadError(SemFocusError):
    """An image file that cannot be read or holds no usable 2-D image data."""


class SemFocusWarning(UserWarning):
    """Work goes on, but the user should know (one sentence; the CLI prints it as a warning)."""


def check_whole_number(value, what: str, least: int = 1) -> int:
    """``value`` as an int when it is a whole number of at least ``least``; else
    :class:`SemFocusError` naming ``what``: ``batch_size -3 is not a whole number of at least 1.``
    (the one sentence for batch sizes, worker and epoch counts, in the core and the CLI)."""
    if (isinstance(value, bool) or not isinstance(value, numbers.Real)
            or not math.isfinite(value) or value != int(value) or value < least):
        raise SemFocusError(f"{what} {value} is not a whole number of at least {least}.")
    return int(value)
