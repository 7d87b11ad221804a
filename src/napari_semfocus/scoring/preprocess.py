"""Image preparation: any 2-D greyscale / RGB frame or (N, H, W) stack -> normalised float frames,
and the tiles (regions) the model looks at.

Data flow: raw array -> :func:`as_frames` (N, H, W) float32 grey -> :func:`normalise` per frame ->
:func:`region_tiles` picks the 240 x 320 windows to score -> :func:`to_model_input` (B, 3, h, w).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import SemFocusError

TILE_HW = (240, 320)  # the paper's 320 x 240 (width x height) input
REGIONS = ("whole", "centre")
NORMALISATION = {
    "kind": "percentile",
    "low_percentile": 0.5,
    "high_percentile": 99.5,
    "centre": 0.5,
    "scale": 0.25,
    "clip": 4.0,
}
_GREY_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def is_rgb(array: np.ndarray) -> bool:
    """True for channel-last colour data: (H, W, 3|4) or (N, H, W, 3|4)."""
    return array.ndim in (3, 4) and array.shape[-1] in (3, 4) and min(array.shape[-3:-1]) > 4


def as_frames(array, name: str = "image") -> np.ndarray:
    """Return the data as a float32 stack of grey frames (N, H, W).

    Accepts 2-D images, (N, H, W) stacks, and RGB/RGBA (H, W, C) or (N, H, W, C) in any integer or
    float dtype. Raises :class:`SemFocusError` naming ``name`` for anything else.
    """
    a = np.asarray(array)
    if a.dtype == bool or a.dtype.kind not in "uif":
        raise SemFocusError(f"{name} has data type {a.dtype}, not a greyscale or RGB image.")
    if is_rgb(a):
        a = a[..., :3].astype(np.float32) @ _GREY_WEIGHTS
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3:
        raise SemFocusError(
            f"{name} has shape {a.shape}; expected a 2-D image, an (N, H, W) stack or RGB."
        )
    if a.shape[0] == 0 or min(a.shape[1:]) < 16:
        raise SemFocusError(f"{name} has shape {a.shape}; frames must be at least 16 x 16 pixels.")
    a = a.astype(np.float32, copy=False)
    if not np.all(np.isfinite(a)):
        raise SemFocusError(f"{name} contains NaN or infinite values.")
    return a


def normalise(frame: np.ndarray) -> np.ndarray:
    """Robust intensity normalisation of one frame: percentiles -> roughly [-2, 2], float32.

    Brightness and contrast do not change the result (up to rounding); a constant frame maps to 0.
    """
    f = np.asarray(frame, dtype=np.float32)
    step = max(1, int(np.sqrt(f.size / 250_000)))  # percentiles from <= ~250k samples
    lo, hi = np.percentile(f[::step, ::step], [NORMALISATION["low_percentile"],
                                               NORMALISATION["high_percentile"]])
    span = float(hi - lo)
    if span <= 1e-6 * max(1.0, abs(float(hi))):
        return np.zeros_like(f)
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
    import torch

    t = torch.from_numpy(np.ascontiguousarray(tiles, dtype=np.float32))[:, None]
    return t.expand(-1, 3, -1, -1).contiguous(memory_format=torch.channels_last)
