"""The focus map's overlay picture (scoring/map_files.write_overlay_png): the colour bar shows
the colormap at full opacity, though the map over the image is drawn at 50 %."""

from __future__ import annotations

import numpy as np
from matplotlib import colormaps
from PIL import Image as PILImage

from napari_semfocus.scoring.focus_map import FocusMap
from napari_semfocus.scoring.map_files import write_overlay_png


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
