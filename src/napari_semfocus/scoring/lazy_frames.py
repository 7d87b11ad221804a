"""Lazy (dask) arrays, read a block at a time: a stack is scored a group of slices at a time and a
mosaic is mapped window by window; neither is ever loaded whole.

A *lazy* array here is a dask array (anything with ``chunks`` and ``compute``; a zarr or HDF5
array, a memory map or a tifffile ``aszarr`` store becomes one with ``dask.array.from_array`` /
``from_zarr``). Nothing is read up front: the shape and type are checked from the array's
metadata with the sentences a numpy array gets (:func:`grey_shape`), and pixels are computed only
where they are needed, then go through the code a numpy array goes through:

- scoring (:class:`LazyFrames`, used by ``FocusScorer.tiles_iter``): the slices of one dask chunk
  along the first axis at a time (at most :data:`GROUP_BYTES` of float32 frames), each group
  through :func:`~napari_semfocus.io.frames.as_frames`; the scores equal the numpy path's
  exactly (RGB: the grey conversion of a block may differ by one float32 rounding);
- focus maps (:func:`lazy_frame`, used by ``focus_map``): the frame stays a 2-D dask array and the
  map's own loop computes what it reads: the strided subsamples behind the normalisation levels
  and the tiles' structure, then each trunk window (about 2048 px plus a halo of 128 px, on
  the tile grid), normalised with the whole frame's levels. Windows, levels and grid
  are the in-memory path's, whatever the chunks, so the map is the same.
"""

from __future__ import annotations

import numpy as np

from ..errors import SemFocusError
from ..io.frames import GREY_WEIGHTS, as_frames, check_values, grey_frames, is_rgb

GROUP_BYTES = 128 * 2**20  # float32 frames of a lazy stack computed at once when scoring
CHECK_PX = 4_000_000  # a lazy float frame's values are checked in blocks of rows of this size


def is_lazy(data) -> bool:
    """True for a dask array (pixels computed on demand); False for numpy and anything else."""
    return not isinstance(data, np.ndarray) and hasattr(data, "chunks") and hasattr(data, "compute")


def grey_shape(data, name: str = "image") -> tuple[int, int, int]:
    """(N, H, W) of the grey frames of ``data``, checked as
    :func:`~napari_semfocus.io.frames.as_frames` checks an array (its sentences), from the shape
    and dtype alone: the checks run on a zero-byte stand-in of the grey shape."""
    shape = tuple(int(n) for n in data.shape)
    stand_in = np.broadcast_to(np.zeros((), dtype=data.dtype),
                               shape[:-1] if is_rgb(data) else shape)
    return tuple(int(n) for n in grey_frames(stand_in, name).shape)


class LazyFrames:
    """The grey frames of a lazy 2-D image, (N, H, W) stack or RGB data: ``shape`` and ``len``
    without reading; iterating computes a group of slices at a time (:meth:`groups`) and yields
    float32 (H, W) frames made by :func:`~napari_semfocus.io.frames.as_frames`."""

    def __init__(self, data, name: str = "image"):
        self.data, self.name = data, name
        self.shape = grey_shape(data, name)
        self.stacked = data.ndim - (1 if is_rgb(data) else 0) == 3

    def __len__(self) -> int:
        return self.shape[0]

    def groups(self) -> list[tuple[int, int]]:
        """[start, stop) of the slices computed together: one chunk along the first axis, split
        into runs of at most :data:`GROUP_BYTES` of float32 frames."""
        if not self.stacked:
            return [(0, 1)]
        n, h, w = self.shape
        per = max(1, GROUP_BYTES // (4 * h * w))
        edges = np.cumsum((0, *self.data.chunks[0]))
        return [(int(s), int(min(b, s + per))) for a, b in zip(edges[:-1], edges[1:], strict=True)
                for s in range(a, b, per)]

    def __iter__(self):
        for a, b in self.groups():
            block = self.data[a:b] if self.stacked else self.data
            yield from as_frames(np.asarray(block), self.name)


def lazy_frame(data, name: str = "image"):
    """The one 2-D grey frame of lazy ``data`` (2-D, (1, H, W) or RGB) as a 2-D dask array for a
    focus map; float values are checked block by block as a numpy frame's are; a stack of
    several frames is one sentence."""
    n, h, w = grey_shape(data, name)
    if n != 1:
        raise SemFocusError(f"{name} is a stack of {n} frames; a focus map takes one 2-D frame "
                            "(pick a slice).")
    if is_rgb(data):
        frame = data.reshape(h, w, data.shape[-1])[..., :3].astype(np.float32) @ GREY_WEIGHTS
    else:
        frame = data.reshape(h, w)
    if frame.dtype.kind == "f":
        rows = max(1, CHECK_PX // w)
        for r in range(0, h, rows):
            check_values(np.asarray(frame[r : r + rows]), name)
    return frame


def constant_value(data) -> float | None:
    """The value of every pixel when ``data`` holds only one, else None. A lazy array is first
    probed on a strided sample of two or three slices (a difference there settles it without
    reading the array), then compared in one pass over its chunks."""
    if not is_lazy(data):
        lo = data.min()
        return float(lo) if data.max() == lo else None
    lead = data.ndim - (3 if is_rgb(data) else 2)
    probe = np.asarray(data[tuple(slice(None, None, max(1, n // (2 if i < lead else 256)))
                                  for i, n in enumerate(data.shape))])
    if probe.min() != probe.max():
        return None
    import dask  # lazily: the data is a dask array, so dask is loaded already

    lo, hi = dask.compute(data.min(), data.max())  # one pass over the chunks
    return float(lo) if lo == hi else None
