"""Dask arrays that log what is read from them, for the tests that check a lazy array is read a
block at a time and never whole: :func:`logged_dask` wraps a numpy array; inside
``with log.watch():`` every dask compute's reads (elements) are counted separately. And a small
through-focus stack to read (:func:`blur_stack`)."""

from __future__ import annotations

import threading
from contextlib import contextmanager

import cv2
import dask.array as da
import numpy as np
from dask.callbacks import Callback


class ReadLog:
    """An array-like over ``array`` for ``dask.array.from_array``: counts the elements each
    dask compute reads from it (``computes``, one number per compute while :meth:`watch` is on)
    and which indices of the first axis were read (``first_axis``)."""

    def __init__(self, array: np.ndarray):
        self.array = array
        self.shape, self.dtype, self.ndim = array.shape, array.dtype, array.ndim
        self.computes: list[int] = []
        self.first_axis: set[int] = set()  # first-axis indices (slices) read since watch()
        self.current = 0
        self.lock = threading.Lock()

    def __getitem__(self, key):
        out = np.asarray(self.array[key])
        first = key[0] if isinstance(key, tuple) else key
        index = np.arange(self.shape[0])[first]
        with self.lock:
            self.current += out.size
            self.first_axis.update(np.atleast_1d(index).tolist())
        return out

    @contextmanager
    def watch(self):
        """Count the reads of each dask compute started inside the block (and note the first-axis
        indices read from here on)."""
        self.first_axis.clear()

        def start(dsk):
            self.current = 0

        def finish(dsk, state, errored):
            self.computes.append(self.current)

        with Callback(start=start, finish=finish):
            yield self


def logged_dask(array: np.ndarray, chunks) -> tuple:
    """``(dask array over array with chunks, its ReadLog)``."""
    log = ReadLog(array)
    return da.from_array(log, chunks=chunks, lock=False, asarray=True), log


def blur_stack(n=5, hw=(300, 400), seed=0) -> np.ndarray:
    """uint8 frames of one random texture, blurred more from frame to frame."""
    rng = np.random.default_rng(seed)
    base = cv2.GaussianBlur(rng.random(hw).astype(np.float32), (0, 0), 1.0)
    frames = [cv2.GaussianBlur(base, (0, 0), 0.3 + 1.5 * i) for i in range(n)]
    return np.stack([255 * (f - f.min()) / np.ptp(f) for f in frames]).astype(np.uint8)
