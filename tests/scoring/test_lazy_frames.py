"""Lazy (dask) stacks are scored a group of slices at a time, with the numpy path's scores.

Dask arrays here log what each compute reads (tests/lazy_helpers.py): a stack is read once, a
chunk (or a smaller group) per compute, never whole; scores equal the numpy path's exactly (RGB:
within 1e-3); bad input gives the numpy path's sentence; a constant layer is still refused.
"""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest

import napari_semfocus.scoring.lazy_frames as lazy_frames
from napari_semfocus.errors import SemFocusError
from napari_semfocus.io.frames import as_frames
from napari_semfocus.jobs.inputs import ImageInput
from napari_semfocus.scoring.lazy_frames import LazyFrames, constant_value, is_lazy

from ..helpers import needs_default_model
from ..lazy_helpers import blur_stack, logged_dask


@needs_default_model
def test_dask_stack_scores_equal_the_numpy_path_read_a_chunk_at_a_time(default_scorer):
    stack = blur_stack(n=4, hw=(260, 300))  # one tile per frame once the data bar is off
    x, log = logged_dask(stack, (2, 170, 150))  # chunks not aligned with the tile
    expected = default_scorer.score(stack, 5000, batch_size=3, exclude_bottom_rows=20)
    with log.watch():
        got = default_scorer.score(x, 5000, batch_size=3, exclude_bottom_rows=20)
    np.testing.assert_array_equal(got, expected)
    assert expected[0] > expected[-1] + 2  # the frames differ: a real comparison
    frame = stack[0].size
    assert sum(log.computes) == stack.size  # every pixel read once
    assert max(log.computes) <= 2 * frame  # one chunk of 2 slices at a time, never the stack


def test_groups_follow_the_chunks_and_the_memory_cap(monkeypatch):
    x = da.zeros((7, 64, 80), dtype=np.uint8, chunks=((3, 4), 64, 80))
    assert LazyFrames(x).groups() == [(0, 3), (3, 7)]
    monkeypatch.setattr(lazy_frames, "GROUP_BYTES", 2 * 64 * 80 * 4)  # two float32 frames
    assert LazyFrames(x).groups() == [(0, 2), (2, 3), (3, 5), (5, 7)]
    assert LazyFrames(x[0]).groups() == [(0, 1)] and LazyFrames(x[0]).shape == (1, 64, 80)


@needs_default_model
def test_2d_and_rgb_dask_arrays(default_scorer):
    stack = blur_stack(n=2, hw=(200, 260))
    frame = da.from_array(stack[0], chunks=(100, 100))
    assert default_scorer.score(frame, 5000) == default_scorer.score(stack[0], 5000)
    rgb = np.stack([stack, stack // 2, 255 - stack], axis=-1)  # (2, H, W, 3)
    got = default_scorer.score(da.from_array(rgb, chunks=(1, 130, 170, 3)), 5000)
    np.testing.assert_allclose(got, default_scorer.score(rgb, 5000), atol=1e-3)


def numpy_sentence(array, name="stack") -> str:
    with pytest.raises(SemFocusError) as err:
        as_frames(array, name)
    return str(err.value)


@pytest.mark.parametrize("array", [
    np.zeros((3, 40, 50), dtype=bool),  # not an image type
    np.zeros((2, 3, 40, 50), dtype=np.uint8),  # 4-D, not RGB
    np.zeros((3, 10, 50), dtype=np.uint8),  # frames under 16 px
    np.zeros((40, 50, 2), dtype=np.uint8),  # two channels
], ids=["bool", "4-D", "small", "2-channel"])
def test_bad_dask_input_gets_the_numpy_sentence_without_a_read(array):
    x, log = logged_dask(array, array.shape)
    with log.watch(), pytest.raises(SemFocusError) as err:
        LazyFrames(x, "stack")
    assert str(err.value) == numpy_sentence(array)
    assert sum(log.computes) == 0


def test_nan_in_a_later_group_is_one_sentence():
    stack = np.random.default_rng(0).random((4, 32, 40)).astype(np.float32)
    stack[3, 5, 5] = np.nan
    frames = LazyFrames(da.from_array(stack, chunks=(1, 32, 40)), "stack")
    with pytest.raises(SemFocusError, match="^stack contains NaN or infinite values.$"):
        list(frames)


def test_a_dask_layer_stays_lazy_and_a_constant_one_is_refused():
    stack = blur_stack(n=16, hw=(512, 512))
    x, log = logged_dask(stack, (1, 512, 512))
    with log.watch():
        data = ImageInput("lazy", x, 5000.0).frames()
    assert is_lazy(data) and data.shape == stack.shape
    assert sum(log.computes) <= stack.size / 32  # a strided probe of 2 slices, not the stack
    four_d = ImageInput("4-D", x.reshape(4, 4, 512, 512), 5000.0).frames()  # time x focus
    assert is_lazy(four_d) and four_d.shape == stack.shape

    dark = np.zeros_like(stack)
    dark[:, :, 1] = 9  # only in odd columns, which the strided probe skips: a full pass settles it
    assert constant_value(da.from_array(dark, chunks=(1, 512, 512))) is None
    flat = da.full((4, 64, 80), 7, dtype=np.uint16, chunks=(1, 64, 80))
    assert constant_value(flat) == 7.0
    with pytest.raises(SemFocusError, match=r"^layer 'flat' is constant \(every pixel is 7\)"):
        ImageInput("flat", flat, 5000.0).frames()
    assert constant_value(np.full((3, 3), 2.5)) == 2.5 and constant_value(stack) is None
