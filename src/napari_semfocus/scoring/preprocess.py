"""Image preparation: grey frames -> normalised float frames, and the tiles (regions) the model
looks at.

Data flow: raw array -> :func:`~napari_semfocus.io.frames.as_frames` (N, H, W) float32 grey ->
:func:`normalise` per frame -> :func:`region_windows` picks the 240 x 320 windows to score ->
:func:`to_model_input` (B, 3, h, w). Training (random crops), whole-image scores and focus maps
all normalise through :func:`normalise`; a focus map normalises a large frame block by block with
the levels of the whole frame (:func:`normalisation_levels`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import SemFocusError

TILE_HW = (240, 320)  # the paper's input: 240 x 320 (h x w) pixels
MIN_TILE_SIDE = 32  # one feature cell of the trunk
# the largest tile side a model or a focus map takes: a shared-mode window (focus_map.WINDOW_PX);
# a batch of 32 such tiles is already 134 MP
MAX_TILE_SIDE = 2048
REGIONS = ("whole", "centre")
NORMALISATION = {
    "kind": "percentile",
    "low_percentile": 0.5,
    "high_percentile": 99.5,
    "centre": 0.5,
    "scale": 0.25,
    "clip": 4.0,
}


def normalisation_levels(frame: np.ndarray) -> tuple:
    """The (low, high) percentile levels of one frame that :func:`normalise` maps to about
    [-2, 2] (from a subsample of at most ~250k pixels)."""
    step = max(1, int(np.sqrt(frame.size / 250_000)))  # percentiles from <= ~250k samples
    # subsampled before it is read or copied: frames may be huge mosaics (or dask arrays)
    f = np.asarray(frame[::step, ::step])
    # in float64 (a small copy): float32 overflows between values near +-3.4e38
    lo, hi = np.percentile(f.astype(np.float64),
                           [NORMALISATION["low_percentile"], NORMALISATION["high_percentile"]])
    return float(lo), float(hi)  # Python floats keep float32 frames float32 in normalise


def normalise(frame: np.ndarray, levels: tuple | None = None) -> np.ndarray:
    """Robust intensity normalisation of one frame: percentiles -> roughly [-2, 2].

    Brightness and contrast do not change the result (up to rounding); a constant frame maps to 0.
    ``levels``: the frame's :func:`normalisation_levels` when ``frame`` is one block of a larger
    frame (default: those of ``frame`` itself).
    """
    f = np.asarray(frame, dtype=np.float32)
    lo, hi = normalisation_levels(f) if levels is None else levels
    span = float(hi) - float(lo)  # float64: finite for any float32 levels
    if span <= 1e-6 * max(1.0, abs(float(hi))):
        return np.zeros_like(f)
    with np.errstate(over="ignore"):  # differences beyond float32 (values near +-3.4e38): clipped
        out = (f - lo) * (1.0 / (span * NORMALISATION["scale"])) - (
            NORMALISATION["centre"] / NORMALISATION["scale"]
        )
    c = NORMALISATION["clip"]
    return np.clip(out, -c, c, out=out)


def tile_starts(length: int, tile: int, stride: int) -> np.ndarray:
    """Start offsets of windows of size ``tile`` that cover [0, length), the last one flush."""
    if length <= tile:
        return np.zeros(1, dtype=int)
    starts = np.arange(0, length - tile + 1, stride)
    if starts[-1] != length - tile:
        starts = np.append(starts, length - tile)
    return starts


@dataclass(frozen=True)
class Window:
    y: int
    x: int
    h: int
    w: int

    def cut(self, frame: np.ndarray) -> np.ndarray:
        return frame[self.y : self.y + self.h, self.x : self.x + self.w]


def region_windows(shape_hw, region: str = "whole", tile_hw=TILE_HW) -> list[Window]:
    """Windows scored for one frame: ``whole`` = tiles covering the frame, ``centre`` = one
    centre crop. Frames smaller than a tile are scored whole."""
    if region not in REGIONS:
        raise SemFocusError(f"region {region!r} is not one of {', '.join(REGIONS)}.")
    H, W = int(shape_hw[0]), int(shape_hw[1])
    th, tw = min(tile_hw[0], H), min(tile_hw[1], W)
    if region == "centre":
        return [Window((H - th) // 2, (W - tw) // 2, th, tw)]
    return [Window(int(y), int(x), th, tw) for y in tile_starts(H, th, th)
            for x in tile_starts(W, tw, tw)]


def to_model_input(tiles: np.ndarray):
    """(B, h, w) normalised float array -> torch (B, 3, h, w) float32 tensor, channels_last."""
    import torch  # lazily: torch is only loaded when a model runs (fast plugin menu)

    t = torch.from_numpy(np.ascontiguousarray(tiles, dtype=np.float32))[:, None]
    return t.expand(-1, 3, -1, -1).contiguous(memory_format=torch.channels_last)
