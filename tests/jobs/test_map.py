"""jobs/map.py without Qt: map_slices maps the slices asked for, with progress over all of them,
and keeps the slices done before Cancel; StackMap gathers slice maps into one grid, NaN where a
slice is not mapped, and says which are."""

from __future__ import annotations

import threading

import cv2
import numpy as np
import pytest

from napari_semfocus.jobs.inputs import ImageInput
from napari_semfocus.jobs.map import MapSettings, SliceMapSettings, StackMap, map_slices
from napari_semfocus.progress import Progress, run_to_end

SIGMAS = (4.0, 0.0, 2.0)  # slice 1 is the sharp one


@pytest.fixture(scope="module")
def stack() -> np.ndarray:
    rng = np.random.default_rng(0)
    sharp = (rng.random((160, 200)) * 255).astype(np.float32)
    frames = [sharp if s == 0 else cv2.GaussianBlur(sharp, (0, 0), s) for s in SIGMAS]
    return np.stack(frames).astype(np.uint8)


def settings(stack, slices) -> SliceMapSettings:
    base = MapSettings(ImageInput("stack", stack, None), method="brenner", tile_hw=(64, 80))
    return SliceMapSettings(base, slices)


def test_maps_the_slices_asked_for_with_progress_over_all(stack):
    updates = []
    result = run_to_end(map_slices(settings(stack, ((2,), (1,)))), updates.append)
    assert list(result.maps) == [(2,), (1,)] and not result.cancelled
    assert result.fmap is result.maps[(1,)]  # the last one made
    progress = [u for u in updates if isinstance(u, Progress)]
    assert {(p.index, p.count) for p in progress} == {(0, 2), (1, 2)}
    assert progress[-1].fraction == pytest.approx(1.0)
    assert result.maps[(1,)].scores.mean() > 2 * result.maps[(2,)].scores.mean()  # sharp > blurred


def test_cancel_keeps_the_slices_already_mapped(stack):
    cancel = threading.Event()
    gen = map_slices(settings(stack, ((0,), (1,), (2,))), cancel)
    seen = 0
    while True:
        try:
            update = next(gen)
        except StopIteration as stop:
            result = stop.value
            break
        if isinstance(update, Progress) and update.index == 1:
            seen += 1
            cancel.set()  # during the second slice
    assert seen and result.cancelled and list(result.maps) == [(0,)]


def test_stack_map_gathers_slices(stack):
    result = run_to_end(map_slices(settings(stack, ((1,),))))
    fmap = result.maps[(1,)]
    maps = StackMap((3,), fmap)
    assert maps.scores.shape == (3, *fmap.shape) and np.isnan(maps.scores).all()
    assert maps.unmapped() == ((0,), (1,), (2,))
    maps.add((1,), fmap)
    np.testing.assert_array_equal(maps.scores[1], fmap.scores)
    assert np.isnan(maps.scores[[0, 2]]).all()
    assert maps.unmapped() == ((0,), (2,))
    assert maps.summary() == {"slice_shape": [3], "mapped_slices": [[1]], "mapped_count": 1,
                              "slice_count": 3}
    other = run_to_end(map_slices(SliceMapSettings(
        MapSettings(ImageInput("stack", stack, None), method="brenner", tile_hw=(32, 40)),
        ((0,),)))).fmap
    assert not maps.fits(other)
    with pytest.raises(ValueError):
        maps.add((0,), other)


def test_a_2d_image_is_one_slice(stack):
    result = run_to_end(map_slices(settings(stack[1], ((),))))
    maps = StackMap((), result.fmap)
    maps.add((), result.fmap)
    np.testing.assert_array_equal(maps.scores, result.fmap.scores)
    assert maps.summary()["mapped_slices"] == [[]] and maps.unmapped() == ()
