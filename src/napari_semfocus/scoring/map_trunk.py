"""The shared trunk of a focus map (``mode="shared"``): the frame through the CNN trunk once, in
stitched cores, each tile's features pooled from the stitched feature map
(:func:`pooled_rows`), and the tiles at a step in focus that need their crops instead
(:func:`focus_steps`). :mod:`.focus_map` drives it."""

from __future__ import annotations

import numpy as np

from .map_grid import FEATURE_SHIFT, FEATURE_STRIDE, area_weights
from .preprocess import normalise

WINDOW_PX = 2048  # core size of a trunk window in shared mode (plus halo)
# context around a window's core: the trunk's features over the core then equal the whole
# frame's (measured, windows of 600 px on 6 pool frames, against one window: halo 128 px differs
# by 0.0003 points per tile on average, 0.003 at most; 64 px 0.008 / 0.11; 192 px 0). A halo of a
# whole tile (320 px, before) made a 4096 x 4096 map 1.7x one pass.
HALO_PX = 128
# shared mode: tiles whose map-head score differs from a neighbour's by more than this are cut
# and scored as crops (:func:`focus_steps`)
REFINE_STEP = 1.0


def _cores(lo: int, hi: int) -> list[tuple[int, int]]:
    """``[lo, hi)`` (``lo`` on a feature-cell boundary) cut into the fewest cores of equal
    length, at most WINDOW_PX pixels and a whole number of feature cells each (the last one
    takes what is left)."""
    n = hi - lo
    size = -(-n // -(-n // WINDOW_PX))
    size = -(-size // FEATURE_STRIDE) * FEATURE_STRIDE
    return [(a, min(hi, a + size)) for a in range(lo, hi, size)]


def _core_cells(a: int, b: int, start: int, n_cells: int, last: bool) -> slice:
    """The cells of a window (starting at pixel ``start``, ``n_cells`` cells) that stand for
    its core ``[a, b)``: cell ``i`` covers ``start - 16 + 32 i`` on (:data:`FEATURE_SHIFT`),
    so a core ``[a, b)`` between two others holds the cells over ``[a - 16, b - 16)``; the
    last core keeps every cell to the window's end (what lies beyond the tiles weighs 0)."""
    j0 = (a - start) // FEATURE_STRIDE
    return slice(j0, n_cells if last else j0 + (b - a) // FEATURE_STRIDE)


def pooled_rows(scorer, frame, levels, geo):
    """Shared mode's trunk over the frame, stitched: the part of the frame the tiles cover is
    cut into cores of at most :data:`WINDOW_PX` pixels a side (aligned to feature cells); the
    trunk runs over each core plus a halo of :data:`HALO_PX` (context, so its features equal
    the whole frame's), only the core's cells are kept, and a strip of cores at a time is
    stitched into one feature map, so every pixel is run through the trunk once plus the
    halos (a window per block of whole tiles ran the overlap between blocks twice: a
    4096 x 4096 map cost 1.3x one pass, 0.88x stitched). Yields ``(r0, r1, pooled)``: the
    tile rows r0..r1 whose footprints the stitched rows hold, their features averaged over
    every tile's footprint with exact area weights (:func:`.map_grid.area_weights`), a torch
    tensor (r1 - r0, columns, C); yields ``(r, r, None)`` after every window, so a caller can
    stop between windows."""
    ylo, yhi, xlo, xhi, valid = geo
    H, W = frame.shape
    rows = np.nonzero(valid.any(1))[0]
    cols = np.nonzero(valid.any(0))[0]
    if not len(rows):
        return
    y_lo = int(ylo[rows[0]]) // FEATURE_STRIDE * FEATURE_STRIDE
    x_lo = int(xlo[cols[0]]) // FEATURE_STRIDE * FEATURE_STRIDE
    y_cores = _cores(y_lo, int(yhi[rows[-1]]))
    x_cores = _cores(x_lo, int(xhi[cols[-1]]))
    wx = None  # column weights, once the stitched width is known
    buf, start, r = None, y_lo, int(rows[0])  # stitched rows from pixel ``start``; next tile row
    per_call = max(1, 65536 // len(xlo))  # tile rows pooled at once: <= 134 MB of features
    for k, (a, b) in enumerate(y_cores):
        last_row = k == len(y_cores) - 1
        y0, y1 = max(0, (a - HALO_PX) // FEATURE_STRIDE * FEATURE_STRIDE), min(H, b + HALO_PX)
        strip = []
        for q, (u, v) in enumerate(x_cores):
            x0 = max(0, (u - HALO_PX) // FEATURE_STRIDE * FEATURE_STRIDE)
            x1 = min(W, v + HALO_PX)
            feats = scorer.feature_map(normalise(frame[y0:y1, x0:x1], levels))
            ys = _core_cells(a, b, y0, feats.shape[1], last_row)
            xs = _core_cells(u, v, x0, feats.shape[2], q == len(x_cores) - 1)
            strip.append(feats[:, ys, xs])
            yield r, r, None  # a window done: a caller may stop here
        strip = strip[0] if len(strip) == 1 else _cat(strip, 2)
        buf = strip if buf is None else _cat([buf, strip], 1)
        if wx is None:
            wx = area_weights(xlo, xhi, x_lo, buf.shape[2])
        # tile rows whose footprint the stitched rows now hold (all of them after the last strip)
        covered = np.inf if last_row else b - FEATURE_SHIFT
        end = r
        while end < len(ylo) and yhi[end] <= covered:
            end += 1
        for r0 in range(r, end, per_call):
            r1 = min(end, r0 + per_call)
            wy = area_weights(ylo[r0:r1], yhi[r0:r1], start, buf.shape[1])
            yield r0, r1, scorer.pooled_features(buf, wy, wx)
        r = end
        if r < len(ylo):  # drop the rows no later tile reaches
            keep = max(0, (int(ylo[r]) - start + FEATURE_SHIFT) // FEATURE_STRIDE)
            buf, start = buf[:, keep:], start + keep * FEATURE_STRIDE


def _cat(parts, dim: int):
    import torch  # lazily: the feature maps are torch tensors

    return torch.cat(parts, dim)


def focus_steps(scores: np.ndarray, step: float = REFINE_STEP) -> np.ndarray:
    """Tiles whose score differs from a neighbour's (4-neighbourhood) by more than ``step``
    points. There the shared trunk's features of a tile also see the other side of the step
    (its receptive field reaches ~200 px past the footprint): a blurred tile beside a sharp
    region reads sharper than its crop (v5 on the half-focused sample: up to 0.75 points)."""
    s = np.nan_to_num(scores, nan=0.0)
    ok = np.isfinite(scores)
    out = np.zeros(scores.shape, dtype=bool)
    for axis in (0, 1):
        a = [slice(None)] * 2
        b = [slice(None)] * 2
        a[axis], b[axis] = slice(1, None), slice(None, -1)
        big = (np.abs(s[tuple(a)] - s[tuple(b)]) > step) & ok[tuple(a)] & ok[tuple(b)]
        out[tuple(a)] |= big
        out[tuple(b)] |= big
    return out
