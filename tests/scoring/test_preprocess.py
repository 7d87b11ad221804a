"""Image preparation: any dtype and RGB to grey frames, normalisation, the regions scored."""

from __future__ import annotations

import numpy as np
import pytest

from napari_semfocus.errors import SemFocusError
from napari_semfocus.io.frames import as_frames
from napari_semfocus.scoring.preprocess import normalise, region_windows


def test_prepare_any_dtype_and_rgb():
    rng = np.random.default_rng(0)
    base = rng.random((64, 80)).astype(np.float32)
    u8 = (base * 255).astype(np.uint8)
    u16 = (base * 65535).astype(np.uint16)
    rgb = np.repeat(u8[..., None], 3, axis=2)
    assert as_frames(u8).shape == (1, 64, 80)
    assert as_frames(rgb).shape == (1, 64, 80)
    assert as_frames(np.stack([u16, u16, u16, u16])).shape == (4, 64, 80)
    # brightness/contrast do not change the normalised image
    a, b = normalise(u8.astype(np.float32)), normalise(3.0 * u8.astype(np.float32) + 100)
    assert np.allclose(a, b, atol=1e-4)
    assert np.allclose(normalise(u16), normalise(u8), atol=0.05)
    assert not normalise(np.full((32, 32), 7.0)).any()
    with pytest.raises(SemFocusError, match="shape"):
        as_frames(np.zeros((2, 3, 4, 5, 6)))


def test_regions_cover_frame():
    wins = region_windows((1000, 1500), "whole")
    covered = np.zeros((1000, 1500), bool)
    for w in wins:
        assert (w.h, w.w) == (240, 320)
        covered[w.y : w.y + w.h, w.x : w.x + w.w] = True
    assert covered.all()
    (c,) = region_windows((1000, 1500), "centre")
    assert (c.y, c.x, c.h, c.w) == (380, 590, 240, 320)
    (small,) = region_windows((100, 120), "whole")
    assert (small.h, small.w) == (100, 120)
