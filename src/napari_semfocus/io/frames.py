"""Pixel arrays as grey frames: the first step of every path from a file or a layer to a score.

:func:`as_frames` turns a 2-D image, an (N, H, W) stack or RGB(A) data of any integer or float
type into a float32 (N, H, W) stack of grey frames, with one-sentence errors naming the input;
:func:`stack_of` flattens higher-dimensional stacks (e.g. time x focus) to (N, H, W).
"""

from __future__ import annotations

import numpy as np

from ..errors import SemFocusError

GREY_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def is_rgb(array: np.ndarray) -> bool:
    """True for channel-last colour data: (H, W, 3|4) or (N, H, W, 3|4)."""
    return array.ndim in (3, 4) and array.shape[-1] in (3, 4) and min(array.shape[-3:-1]) > 4


def as_frames(array, name: str = "image") -> np.ndarray:
    """Return the data as a float32 stack of grey frames (N, H, W).

    Accepts 2-D images, (N, H, W) stacks, and RGB/RGBA (H, W, C) or (N, H, W, C) in any integer or
    float dtype. Raises :class:`SemFocusError` naming ``name`` for anything else, for NaN or
    infinite values and for values beyond float32's range.
    """
    a = grey_frames(array, name)
    check_values(a, name)
    return a.astype(np.float32, copy=False)


def without_databar(frames: np.ndarray, rows: int) -> np.ndarray:
    """Grey ``frames`` ((N, H, W) or (H, W)) without the instrument's data bar, its ``rows``
    bottom rows (the one place every path cuts it: files, layers, annotations)."""
    return frames[..., : frames.shape[-2] - int(rows), :] if rows else frames


def grey_frames(array, name: str = "image") -> np.ndarray:
    """The data as an (N, H, W) stack of grey frames, checked as :func:`as_frames` checks it
    except for its values, in its own dtype (no float copy of grey data; RGB becomes float32
    grey): for looking at part of a large frame."""
    a = np.asarray(array)
    if a.dtype == bool or a.dtype.kind not in "uif":
        raise SemFocusError(f"{name} has data type {a.dtype}, not a greyscale or RGB image.")
    if is_rgb(a):
        a = a[..., :3].astype(np.float32) @ GREY_WEIGHTS
    if a.ndim == 3 and a.shape[-1] == 2 and min(a.shape[:2]) >= 16:
        raise SemFocusError(f"{name} has shape {a.shape}: 2 channels is neither greyscale nor "
                            f"RGB; give one channel or an RGB image.")
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3:
        raise SemFocusError(
            f"{name} has shape {a.shape}; expected a 2-D image, an (N, H, W) stack or RGB."
        )
    if a.shape[0] == 0 or min(a.shape[1:]) < 16:
        raise SemFocusError(f"{name} has shape {a.shape}; frames must be at least 16 x 16 pixels.")
    return a


FLOAT32_MAX = float(np.finfo(np.float32).max)
CHECK_ROWS_PX = 4_000_000  # values are checked in blocks of rows of about this many pixels


def check_values(a: np.ndarray, name: str = "image") -> None:
    """Refuse NaN or infinite values, and values beyond float32's range (the numbers scoring
    works in), in one sentence naming ``name``. ``a``: a 2-D frame or an (N, H, W) stack. Integer
    data passes at once; float data is checked in blocks of rows, with no frame-sized temporary."""
    if a.dtype.kind != "f":
        return
    step = max(1, CHECK_ROWS_PX // max(1, a.shape[-1]))
    for frame in a[None] if a.ndim == 2 else a:
        for r in range(0, frame.shape[0], step):
            block = frame[r : r + step]
            if not np.isfinite(block).all():
                raise SemFocusError(f"{name} contains NaN or infinite values.")
            if a.dtype.itemsize > 4 and np.abs(block).max(initial=0.0) > FLOAT32_MAX:
                raise SemFocusError(f"{name} holds values beyond +-3.4e+38, the float32 range "
                                    f"scoring works in; scale the data down.")


def stack_of(data, rgb: bool) -> np.ndarray:
    """The data as one 2-D frame, an (N, H, W) stack, or RGB; higher-dimensional stacks (e.g.
    time x focus) are flattened to (N, H, W) with N the product of the leading axes. Arrays
    (numpy, dask) are reshaped as they are: a dask array stays lazy."""
    if not hasattr(data, "reshape"):
        data = np.asarray(data)
    spatial = data.ndim - (1 if rgb else 0)
    if spatial > 3:
        tail = data.shape[-3:] if rgb else data.shape[-2:]
        data = data.reshape((-1,) + tail)
    return data


def n_slices(shape, rgb: bool) -> int:
    """Number of 2-D frames in data of ``shape`` (1 for a 2-D image)."""
    shape = tuple(shape)
    spatial = len(shape) - (1 if rgb else 0)
    return int(np.prod(shape[: spatial - 2])) if spatial > 2 else 1
