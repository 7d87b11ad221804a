"""A focus map of a lazy (dask) frame: the in-memory map's grid and scores, read window by window.

The trunk windows are made small here (``WINDOW_PX``) so that a small frame takes several of
them; the dask chunks are not aligned with the tiles or the windows. A large frame mapped with a
classical measure shows what is read: strided subsamples and windows, never the whole frame.
"""

from __future__ import annotations

import cv2
import dask.array as da
import numpy as np
import pytest

import napari_semfocus.scoring.map_trunk as map_trunk
from napari_semfocus.errors import SemFocusError
from napari_semfocus.progress import run_to_end
from napari_semfocus.scoring.focus_map import focus_map

from ..helpers import needs_default_model
from ..lazy_helpers import logged_dask


def half_blurred(hw=(280, 330), seed=1) -> np.ndarray:
    """uint8 texture, sharp on the left half and blurred on the right."""
    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur(rng.random(hw).astype(np.float32), (0, 0), 1.2)
    img[:, hw[1] // 2:] = cv2.GaussianBlur(img[:, hw[1] // 2:], (0, 0), 4.0)
    return (255 * (img - img.min()) / np.ptp(img)).astype(np.uint8)


def assert_same_map(got, expected, atol=0.0):
    assert got.shape == expected.shape
    for field in ("tile_hw", "stride_hw", "origin_yx", "image_hw", "scored_hw", "mode"):
        assert getattr(got, field) == getattr(expected, field), field
    np.testing.assert_allclose(got.scores, expected.scores, atol=atol, rtol=0)
    np.testing.assert_allclose(got.weight, expected.weight, atol=atol, rtol=0)


@needs_default_model
def test_chunked_map_equals_the_in_memory_map(default_scorer, monkeypatch):
    monkeypatch.setattr(map_trunk, "WINDOW_PX", 256)  # 2 x 2 trunk windows
    img = half_blurred()
    kw = dict(magnification=5000, tile=(64, 96), exclude_bottom_rows=20)
    expected = default_scorer.focus_map(img, **kw)
    x, log = logged_dask(img, (77, 101))  # chunk edges fall inside tiles and windows
    with log.watch():
        got = default_scorer.focus_map(x, **kw)
    assert_same_map(got, expected)  # the same windows and levels: the same numbers
    assert expected.shape == (8, 7) and np.isfinite(expected.scores).all()
    assert expected.scores[:, :2].mean() > expected.scores[:, -2:].mean() + 1  # a real map
    assert max(log.computes) <= img.size  # the small frame's subsamples are the frame itself


def test_a_one_frame_stack_and_rgb_frame_are_mapped_as_the_numpy_frame():
    img = half_blurred()
    expected = run_to_end(focus_map(None, img, method="brenner", exclude_bottom_rows=20))
    for data, chunks in ((img[None], (1, 77, 101)), (np.stack([img] * 3, -1), (77, 101, 3))):
        got = run_to_end(focus_map(None, da.from_array(data, chunks=chunks), method="brenner",
                                   exclude_bottom_rows=20))
        assert_same_map(got, expected, atol=1e-3 * np.nanmax(expected.scores))


def test_a_large_lazy_frame_is_read_by_windows_and_subsamples():
    """4,100 x 4,100 (over 16 MP: the structure pass subsamples) with a classical measure
    (fast): the same map, and no compute reads more than a quarter of the frame (the strided
    subsamples are 1/4 and 1/67 of it, a tile 1/55)."""
    img = np.tile(half_blurred((410, 410)), (10, 10))
    kw = dict(method="brenner", tile=(480, 640))
    expected = run_to_end(focus_map(None, img, **kw))
    x, log = logged_dask(img, (1000, 1300))
    with log.watch():
        got = run_to_end(focus_map(None, x, **kw))
    assert_same_map(got, expected)
    assert got.shape == (17, 13)
    assert max(log.computes) <= img.size / 4


def test_lazy_stack_and_nan_are_one_sentence():
    stack = da.zeros((3, 64, 64), dtype=np.uint8, chunks=(1, 64, 64))
    with pytest.raises(SemFocusError, match="^mosaic is a stack of 3 frames; a focus map takes one"):
        run_to_end(focus_map(None, stack, method="brenner", name="mosaic"))
    frame = np.random.default_rng(0).random((300, 300))
    frame[250, 10] = np.inf
    with pytest.raises(SemFocusError, match="^mosaic contains NaN or infinite values.$"):
        run_to_end(focus_map(None, da.from_array(frame, chunks=100), method="brenner",
                             name="mosaic"))
