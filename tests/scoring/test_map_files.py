"""The focus map's overlay picture (scoring/map_files.write_overlay_png): the colour bar shows
the colormap at full opacity, though the map over the image is drawn at 50 %; the image is drawn
from a block-averaged copy of at most PNG_MAX_PX pixels a side, read band by band, so a huge
frame needs no frame-sized float copy (issue 16 item 5; figures: docs/benchmarks/memory.md)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from matplotlib import colormaps
from PIL import Image as PILImage

from napari_semfocus.io.frames import as_frames
from napari_semfocus.progress import run_to_end
from napari_semfocus.scoring import map_files
from napari_semfocus.scoring.focus_map import focus_map
from napari_semfocus.scoring.map_files import display_frame, write_overlay_png
from napari_semfocus.scoring.map_grid import FocusMap


def test_colour_bar_is_opaque(tmp_path):
    scores = np.linspace(0, 10, 12, dtype=np.float32).reshape(3, 4)
    fmap = FocusMap(scores, np.ones_like(scores), (64, 64), (32, 32), (0, 0), (128, 160),
                    (128, 160), "shared", "model")
    frame = np.full((128, 160), 255, np.uint8)  # white: a translucent bar would look washed out
    png = write_overlay_png(frame, fmap, tmp_path / "overlay.png")
    pic = np.asarray(PILImage.open(png).convert("RGB")).astype(float)
    bar = pic[:, int(0.85 * pic.shape[1]):].reshape(-1, 3)  # right of the image: the bar
    for value in (0.0, 0.5):  # magma's black and its magenta, as drawn at full opacity
        want = 255 * np.asarray(colormaps["magma"](value)[:3])
        assert np.min(np.abs(bar - want).max(axis=1)) < 12, value


def block_means(grey, ky, kx):
    gh, gw = grey.shape[0] // ky, grey.shape[1] // kx
    return grey[: gh * ky, : gw * kx].reshape(gh, ky, gw, kx).mean(axis=(1, 3))


@pytest.mark.parametrize("shape, blocks", [((5000, 3000), (3, 2)), ((4100, 50, 3), (3, 1)),
                                           ((300, 2049), (1, 2)), ((700, 900), (1, 1))])
def test_display_frame_is_the_block_mean_of_the_frame(monkeypatch, shape, blocks):
    monkeypatch.setattr(map_files, "BAND_PX", 200_000)  # many bands, a short last one
    frame = np.random.default_rng(0).integers(0, 255, shape, dtype=np.uint8)
    grey, k = display_frame(frame, "frame")
    assert k == blocks and max(grey.shape) <= map_files.PNG_MAX_PX and grey.dtype == np.float32
    np.testing.assert_allclose(grey, block_means(as_frames(frame)[0], *blocks), rtol=1e-5)


def test_the_overlay_picture_of_a_tall_frame_stays_bounded(tmp_path):
    frame = np.random.default_rng(1).integers(0, 255, (6000, 200), dtype=np.uint8)
    fmap = run_to_end(focus_map(None, frame, method="brenner"))
    png = write_overlay_png(frame, fmap, tmp_path / "tall.png")
    h, w = cv2.imread(str(png)).shape[:2]
    # 8 inches wide at 120 dpi; the height capped at PNG_MAX_ASPECT x the width (+ the title)
    assert w <= 8 * 120 and h <= (map_files.PNG_MAX_ASPECT * 8 + 0.6) * 120
