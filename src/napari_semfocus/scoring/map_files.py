"""A focus map as files: the score grid as a float32 TIFF, the table as CSV
(row, column, y, x, score, score_low, score_high, certainty, weight: ``map_grid.CSV_COLUMNS``)
and an overlay picture with a colour bar (``semfocus map``
and the Focus map widget's exports)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import tifffile
from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.figure import Figure

from ..errors import SemFocusError
from ..io.files import atomic_write, write_text
from ..io.frames import as_frames
from .map_grid import FocusMap, finite_range

PNG_MAX_PX = 2048  # the overlay picture draws the image from at most this many pixels a side
PNG_MAX_ASPECT = 4  # a frame taller than 4 x its width is drawn in a picture 4 x as tall as wide
BAND_PX = 8_000_000  # frame pixels averaged at a time (bounded temporaries)


def write_tiff(fmap: FocusMap, path) -> Path:
    """The score grid as a float32 TIFF, the grid settings as JSON in its description."""
    desc = json.dumps(fmap.summary())
    return atomic_write(Path(path), lambda tmp: tifffile.imwrite(
        tmp, fmap.scores.astype(np.float32), description=desc, metadata=None))


def write_csv(fmap: FocusMap, path) -> Path:
    """One row per tile: row, column, y, x (tile centre pixel), score, score_low, score_high,
    certainty (the interval's width), weight (:data:`.map_grid.CSV_COLUMNS`)."""
    return write_text(path, fmap.to_csv())


def check_overlay(colormap: str, alpha: float, names=("colormap", "alpha")) -> None:
    """Refuse (one sentence) a ``colormap`` matplotlib does not know or an ``alpha`` outside
    0..1: :func:`write_overlay_png`'s settings, checked before any scoring (a traceback from
    matplotlib once the map was made, before). ``names``: how the message names the two (the
    command line's options)."""
    if colormap not in colormaps:
        raise SemFocusError(f"{names[0]} {colormap!r} is not one of matplotlib's colormaps "
                            "(for example magma, viridis, gray).")
    if not 0.0 <= alpha <= 1.0:
        raise SemFocusError(f"{names[1]} {alpha} is not between 0 and 1.")


def write_overlay_png(frame, fmap: FocusMap, path, colormap: str = "magma",
                      alpha: float = 0.5) -> Path:
    """The image in grey, the map over it (each cell centred on its tile) and a colour bar
    (settings checked by :func:`check_overlay`).

    The picture is about 1000 pixels wide, so the image is drawn from a block-averaged copy of
    at most :data:`PNG_MAX_PX` pixels a side (:func:`display_frame`): memory stays bounded for
    any frame size."""
    check_overlay(colormap, alpha)
    grey, (ky, kx) = display_frame(frame, str(path))
    (y0, x0), (y1, x1) = fmap.world_extent()
    model_scale = fmap.method == "model"
    lims = (0.0, 10.0) if model_scale else finite_range(fmap.scores)
    h, w = np.asarray(frame).shape[:2]
    fig = Figure(figsize=(8, min(8 * h / w, PNG_MAX_ASPECT * 8) + 0.6), dpi=120)
    ax = fig.add_subplot(1, 1, 1)
    lo, hi = np.percentile(grey, [0.5, 99.5])
    gh, gw = grey.shape  # pixel (i, j) of ``grey``: block (i, j) of ky x kx pixels of the frame
    ax.imshow(grey, cmap="gray", vmin=lo, vmax=hi if hi > lo else lo + 1,
              extent=(-0.5, gw * kx - 0.5, gh * ky - 0.5, -0.5), interpolation="antialiased")
    im = ax.imshow(np.ma.masked_invalid(fmap.scores), cmap=colormap, vmin=lims[0], vmax=lims[1],
                   alpha=alpha, extent=(x0, x1, y1, y0), interpolation="nearest")
    ax.set_xlim(-0.5, w - 0.5)
    ax.set_ylim(h - 0.5, -0.5)
    ax.set_axis_off()
    label = "focus score (0-10)" if model_scale else f"{fmap.method} (larger = sharper)"
    # the bar shows the colours at full opacity (drawn from ``im`` it would be at ``alpha``)
    fig.colorbar(ScalarMappable(norm=im.norm, cmap=im.cmap), ax=ax, fraction=0.046, pad=0.02,
                 label=label)
    ax.set_title(f"{Path(str(path)).stem}: {fmap.shape[0]} x {fmap.shape[1]} tiles of "
                 f"{fmap.tile_hw[0]} x {fmap.tile_hw[1]}, stride {fmap.stride_hw[0]} x "
                 f"{fmap.stride_hw[1]}, {fmap.mode if model_scale else fmap.method}", fontsize=9)
    fig.tight_layout()
    return atomic_write(Path(path), lambda tmp: fig.savefig(tmp, format="png"))


def display_frame(frame, name: str) -> tuple[np.ndarray, tuple[int, int]]:
    """``(grey, (ky, kx))``: the frame as float32 grey, averaged over blocks of ky x kx pixels so
    that neither side exceeds :data:`PNG_MAX_PX` ((1, 1): as it is). Read band by band, so no
    float copy of a large frame is made; the last rows (columns) that do not fill a block (fewer
    than ky (kx)) are left out of the picture."""
    data = np.asarray(frame)
    h, w = data.shape[:2]
    ky, kx = -(-h // PNG_MAX_PX), -(-w // PNG_MAX_PX)
    if ky == kx == 1:
        return as_frames(data, name)[0], (1, 1)
    gh, gw = h // ky, w // kx
    rows = min(gh, max(BAND_PX // (w * ky), -(-16 // ky)))  # as_frames wants >= 16 rows
    out = np.empty((gh, gw), dtype=np.float32)
    for r in range(0, gh, rows):
        r = min(r, gh - rows)  # the last band ends at the last block, as long as the others
        band = as_frames(data[r * ky : (r + rows) * ky, : gw * kx], name)[0]
        out[r : r + rows] = band.reshape(rows, ky, gw, kx).mean(axis=(1, 3))
    return out, (ky, kx)
