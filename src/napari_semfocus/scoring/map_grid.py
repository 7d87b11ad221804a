"""The grid of a focus map and the map itself as a result: :class:`FocusMap` (scores, their
intervals and weights per tile, and where each tile sits on the image and in napari) and the grid's geometry
(:func:`grid_axis`, :func:`footprints`, :func:`area_weights`). How the tiles are scored is in
:mod:`.focus_map`."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import SemFocusError

MODES = ("shared", "crop")
FEATURE_STRIDE = 32  # pixels per trunk feature cell (ResNet / MobileNet / EfficientNet)
# Feature cell i is centred on input pixel 32 i (every stride-2 layer is "same"-padded, so output
# j sits over input 2 j): it stands for pixels [32 i - 16, 32 i + 16) of its window.
FEATURE_SHIFT = 16
CERTAINTY_TEXT = ("width of the tile's score interval, score_high - score_low (points; smaller "
                  "= more certain)")
MIN_INSIDE = 0.5  # tiles with less of their height or width inside the scored image are NaN
# certainty: the width of the tile's score interval (score_high - score_low, points; empty
# without intervals); weight: the tile's coverage x structure weight (the certainty before)
CSV_COLUMNS = ("row", "column", "y", "x", "score", "score_low", "score_high", "certainty",
               "weight")


# ---- the result -------------------------------------------------------------------------------
@dataclass
class FocusMap:
    """Scores on a regular tile grid over an image, with what is needed to place it.

    ``scores`` and ``weight`` (coverage x structure weight, 0..1) are float32 (rows, cols)
    grids (NaN: tile not scored); ``low`` / ``high`` the tiles' score intervals (the model's
    interval for the tile's own noise; None for a classical measure or a model without
    intervals, ``extra["interval"]`` says why) and :attr:`certainty` their width. Tile
    (r, c) covers pixels ``[oy + r*sy, oy + r*sy + th) x [ox + c*sx, ox + c*sx + tw)`` of the image
    (clipped to the image), with ``(oy, ox) = origin_yx``, ``(sy, sx) = stride_hw``,
    ``(th, tw) = tile_hw``. ``image_hw`` is the whole frame's shape, ``scored_hw`` the part scored
    (without data-bar rows).
    """

    scores: np.ndarray
    weight: np.ndarray
    tile_hw: tuple[int, int]
    stride_hw: tuple[int, int]
    origin_yx: tuple[int, int]
    image_hw: tuple[int, int]
    scored_hw: tuple[int, int]
    mode: str
    method: str
    magnification: float | None = None
    model: str = ""
    extra: dict = field(default_factory=dict)
    low: np.ndarray | None = None
    high: np.ndarray | None = None

    @property
    def certainty(self) -> np.ndarray | None:
        """Per tile: the width of its score interval, ``high - low`` (score points; smaller =
        more certain); None without intervals."""
        return None if self.low is None else (self.high - self.low).astype(np.float32)

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.scores.shape)

    def tile_centres(self) -> tuple[np.ndarray, np.ndarray]:
        """Pixel coordinates (napari convention: pixel i has its centre at i) of the centres of
        the tile rows and columns: ``(ys (rows,), xs (cols,))``."""
        (oy, ox), (sy, sx), (th, tw) = self.origin_yx, self.stride_hw, self.tile_hw
        rows, cols = self.shape
        return (oy + sy * np.arange(rows) + (th - 1) / 2.0,
                ox + sx * np.arange(cols) + (tw - 1) / 2.0)

    def cell_px(self) -> np.ndarray:
        """Size in image pixels (h, w) of one overlay cell: the scored part of the frame divided
        evenly among the tiles, so the cells cover it exactly (within a quarter stride of the
        stride itself: the grid has ``round(length / stride)`` tiles per axis)."""
        return np.asarray(self.scored_hw, dtype=float) / np.asarray(self.shape, dtype=float)

    def napari_scale(self, layer_scale=(1.0, 1.0)) -> tuple[float, float]:
        """``scale`` of the overlay for a source layer with ``layer_scale`` (last two axes)."""
        s = np.asarray(layer_scale, dtype=float)[-2:]
        return tuple(float(v) for v in s * self.cell_px())

    def napari_translate(self, layer_scale=(1.0, 1.0), layer_translate=(0.0, 0.0)
                         ) -> tuple[float, float]:
        """``translate`` of the overlay so that its cells tile the scored part of the image edge
        to edge: napari puts pixel i of a layer at world ``translate + i * scale`` (pixel
        centres), so the image's top-left edge is ``translate - scale / 2`` and the first cell's
        centre lies half a cell inside it. Each cell stays within a quarter stride of its tile's
        centre (the grid is centred, its tiles ``stride`` apart)."""
        s = np.asarray(layer_scale, dtype=float)[-2:]
        t = np.asarray(layer_translate, dtype=float)[-2:]
        return tuple(float(v) for v in t + s * (self.cell_px() - 1.0) / 2.0)

    def world_extent(self, layer_scale=(1.0, 1.0), layer_translate=(0.0, 0.0)) -> np.ndarray:
        """[[y0, x0], [y1, x1]] world corners of the overlay (cell edges): the scored part of
        the image, ``translate - scale/2`` to ``translate + (scored - 1/2) * scale``."""
        s = np.asarray(layer_scale, dtype=float)[-2:]
        t = np.asarray(layer_translate, dtype=float)[-2:]
        scored = np.asarray(self.scored_hw, dtype=float)
        return np.stack([t - s / 2, t + (scored - 0.5) * s])

    def layer_kwargs(self, layer_scale=(1.0, 1.0), layer_translate=(0.0, 0.0)) -> dict:
        """Keyword arguments for ``viewer.add_image(fmap.scores, **kwargs)``."""
        model_scale = self.method in MODES or self.method == "model"
        lims = (0.0, 10.0) if model_scale else finite_range(self.scores)
        return {
            "scale": self.napari_scale(layer_scale),
            "translate": self.napari_translate(layer_scale, layer_translate),
            "contrast_limits": lims,
            "interpolation2d": "nearest",
            "metadata": {"semfocus_map": self.summary(), **self.grids()},
        }

    def grids(self) -> dict:
        """The per-tile grids of the layer's metadata: scores and weight, and with intervals
        score_low, score_high and certainty (their width)."""
        out = {"scores": self.scores, "weight": self.weight}
        if self.low is not None:
            out.update(score_low=self.low, score_high=self.high, certainty=self.certainty)
        return out

    def summary(self) -> dict:
        """The grid's settings as plain JSON-able values."""
        return {
            "tile_hw": list(self.tile_hw), "stride_hw": list(self.stride_hw),
            "origin_yx": list(self.origin_yx), "image_hw": list(self.image_hw),
            "scored_hw": list(self.scored_hw), "grid_shape": list(self.shape),
            "mode": self.mode, "method": self.method, "model": self.model,
            "magnification": self.magnification,
            "score_scale": ("focus score 0-10" if self.method in ("model", *MODES)
                            else f"{self.method}: larger = sharper"),
            "certainty": CERTAINTY_TEXT if self.low is not None else None,
            "weight": "coverage x structure weight of the tile (napari_semfocus.scoring.aggregate)",
            "interval": self.extra.get("interval"),
            # shared mode: the tiles at a step in focus, scored as crops (map_trunk.focus_steps)
            "rescored_as_crops": self.extra.get("refined"),
        }

    def to_rows(self) -> list[tuple]:
        """One row per tile: (row, column, y, x, score, score_low, score_high, certainty,
        weight); y, x = the tile's centre pixel; the interval's three NaN without intervals."""
        ys, xs = self.tile_centres()
        nan = np.full(self.shape, np.nan, np.float32)
        low, high, width = ((nan, nan, nan) if self.low is None
                            else (self.low, self.high, self.certainty))
        return [(r, c, float(ys[r]), float(xs[c]), float(self.scores[r, c]), float(low[r, c]),
                 float(high[r, c]), float(width[r, c]), float(self.weight[r, c]))
                for r in range(self.shape[0]) for c in range(self.shape[1])]

    def to_csv(self) -> str:
        lines = [",".join(CSV_COLUMNS)]
        for r, c, y, x, *values in self.to_rows():
            cells = ["" if np.isnan(v) else f"{v:{f}}"
                     for v, f in zip(values, (".4g", ".4g", ".4g", ".3f", ".3f"), strict=True)]
            lines.append(f"{r},{c},{y:g},{x:g}," + ",".join(cells))
        return "\n".join(lines) + "\n"


def finite_range(a: np.ndarray) -> tuple[float, float]:
    """(min, max) of the finite values (max > min; (0, 1) when there are none): the contrast
    limits of a map of a classical measure."""
    v = a[np.isfinite(a)]
    if v.size == 0:
        return (0.0, 1.0)
    lo, hi = float(v.min()), float(v.max())
    return (lo, hi if hi > lo else lo + 1.0)


# ---- grid geometry ----------------------------------------------------------------------------
def grid_axis(length: int, tile: int, stride: int) -> tuple[int, int]:
    """(origin, count) of the tiles along one axis.

    The overlay shows one cell of ``stride`` pixels per tile, centred on the tile; the count is
    ``round(length / stride)`` so the cells cover the axis to within half a stride in all (a
    quarter stride at each end), and the grid is centred on the axis. The tiles overhang the axis
    by at most ``tile - stride/2`` in all, so every tile has about ``1/2 + stride / (4 tile)`` of
    its length inside or more (5/8 at the default half-tile stride), never under
    :data:`MIN_INSIDE`.
    """
    if tile <= 0 or stride <= 0:
        raise SemFocusError(f"tile ({tile}) and stride ({stride}) must be positive.")
    n = max(1, math.floor(length / stride + 0.5))
    span = (n - 1) * stride + tile
    return -((span - length) // 2), n


def footprints(origin: int, n: int, tile: int, stride: int, length: int):
    """Clipped [start, stop) of every tile along one axis and the fraction inside."""
    a = origin + stride * np.arange(n)
    lo, hi = np.clip(a, 0, length), np.clip(a + tile, 0, length)
    return lo, hi, (hi - lo) / float(tile)


def area_weights(lo: np.ndarray, hi: np.ndarray, start: int, n_cells: int) -> np.ndarray:
    """(n_tiles, n_cells) weights: the share of each tile's [lo, hi) in each feature cell of a
    window starting at pixel ``start``; rows sum to 1 (mean over the footprint)."""
    edges = start - FEATURE_SHIFT + FEATURE_STRIDE * np.arange(n_cells + 1)
    edges[-1] = max(edges[-1], int(hi.max()))  # the last cell also stands for the last pixels
    c0, c1 = edges[:-1][None], edges[1:][None]
    overlap = np.clip(np.minimum(hi[:, None], c1) - np.maximum(lo[:, None], c0), 0, None)
    return (overlap / np.maximum(overlap.sum(1), 1)[:, None]).astype(np.float32)
