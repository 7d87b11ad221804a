"""Tile-wise focus maps: one focus score per tile on a regular grid over a 2-D frame.

    >>> fmap = scorer.focus_map(image, magnification=5000)          # FocusMap, mode "shared"
    >>> fmap.scores.shape, fmap.origin_yx, fmap.stride_hw
    >>> viewer.add_image(fmap.scores, **fmap.layer_kwargs(image_layer.scale, image_layer.translate))

Grid. Tiles of ``tile_hw`` pixels start at ``origin + k * stride`` (default stride: half a tile).
There are ``round(length / stride)`` tiles along each axis and the grid is centred on the scored
part of the frame (the frame minus its data-bar rows). The overlay divides that part evenly among
the tiles (:meth:`FocusMap.cell_px`, within a quarter stride of the stride), so it covers the
scored image exactly, edge to edge, for any stride and pixel size, and each cell lies over its
tile's centre to within a quarter stride. A tile is scored on the part of its footprint that
lies inside the image. A tile with less than :data:`MIN_INSIDE` of its height or of its
width inside would not be scored (NaN); the grid rule keeps at least that much of every tile
inside along each axis, so every tile is scored, corners included (a corner tile may have less than
half its *area* inside: 5/8 x 5/8 at the default stride).

Modes.
- ``"shared"`` (fast): the CNN trunk runs once over the normalised frame (large frames: over
  cores of at most :data:`.map_trunk.WINDOW_PX` pixels plus a halo of
  :data:`.map_trunk.HALO_PX`, stitched a strip at a time, so memory stays bounded:
  :func:`.map_trunk.pooled_rows`), the trunk's feature map is averaged over each tile's
  footprint, and the model's *map head* scores each mean (:meth:`FocusScorer.pooled_scores`);
  tiles at a step in focus (:func:`.map_trunk.focus_steps`) are then cut and scored as crops,
  because their features also see the other side of the step. Tiles are not aligned to the
  trunk's 32-pixel feature cells: every feature cell is weighted by the fraction of it the
  footprint covers (separable, exact area weights), so any tile size and stride work. Overlap
  is then almost free (:func:`tile_features` gives the pooled features themselves).
- ``"crop"`` (:data:`DEFAULT_MODE`): every tile is cut out and scored by
  :meth:`FocusScorer.predict` (exact: what the whole-frame score is made of; 2.6-4.5x the cost of
  one pass at half-tile stride).
- a classical measure (``method`` a name in :data:`measures.MEASURES`): the measure of each tile's
  pixels (not on the 0-10 scale; larger = sharper).

Why a map head. The model's own head cannot score region-pooled features of a whole frame as it
scores the tile's crop: it was trained on the global average of a 240 x 320 crop's 8 x 10 feature
cells, and the outer ring of those cells sees the crop's border (the trunk's zero padding, a step
edge that reads as sharp). In a whole frame there is no border, so the plain head read ~1.3
points lower per tile than the crops (issue 27, measured on the fibre frame of the pool: crop
9.11 on average over its 36 whole tiles; the same crops pooled over their inner 6 x 8 cells 8.29,
inner 4 x 6 cells 7.30; shared trunk 7.45; a crop with 64 px of real context around it, pooled
over its footprint, 7.30; normalising per tile instead of per frame moved crops by +0.24 only).
The map head (the head's shape, started from it) was therefore distilled, trunk frozen, to give
for a tile's pooled features the tile's crop score, on real pool frames, blurred and half blurred
(``scripts/distil_map_head.py``; figures in docs/benchmarks/focus-map.md). It removes the bias
(mean |shared - crop| 0.1-0.2 per frame on held-out folders) but single tiles stay up to ~2.7
points off, so the default mode is ``"crop"``. It is valid only for
the weights it was distilled for (:func:`~.model.scoring_fingerprint`): a model without one (a
checkpoint from before, a fine-tuned model: training takes it off) maps in ``"crop"`` mode
instead, exact and slower, and the map says so (``FocusMap.mode`` is ``"crop"``,
``FocusMap.extra["note"]`` is :data:`NO_MAP_HEAD`).

Intervals and certainty (issue 24). With a model that carries score intervals
(:attr:`FocusScorer.interval`), every tile gets ``low`` / ``high``: the model's interval for the
tile's score, binned by the interval's feature: the tile's score, its own noise
(:func:`.intervals.noise_level` of its normalised footprint on every 8th column,
:data:`MAP_NOISE_COLUMN_STEP`; whole frames are binned by their tiles' median noise on every
2nd column) or both, so that a noisy part of a frame gets the wider intervals of noisy frames.
The map's *certainty* is that interval's width (:attr:`FocusMap.certainty`, points). The
intervals were calibrated on whole frames; measured on tiles no calibration saw, they cover
the tiles that show sample about as whole frames, but not in every group, and tiles of empty
substrate much less (docs/benchmarks/intervals.md). Without intervals (a classical measure, a
model not calibrated) ``low`` / ``high`` are None and ``extra["interval"]`` says why. ``weight`` (0..1) is
``coverage * structure weight`` (the certainty before issue 24): the fraction of the tile inside
the scored image times the weight whole-image scores use (:mod:`.aggregate`), low for empty
substrate or noise beside sample whatever the score says.
"""

from __future__ import annotations

from collections.abc import Generator

import numpy as np

from ..errors import SemFocusError, check_whole_number
from ..io.frames import as_frames, check_values, is_rgb
from .aggregate import STRUCTURE_SIGMA, structure_weights, tile_structure
from .intervals import frame_noise
from .lazy_frames import is_lazy, lazy_frame
from .map_grid import (
    MIN_INSIDE,
    MODES,
    FocusMap,
    footprints,
    grid_axis,
)
from .map_trunk import focus_steps, pooled_rows
from .measures import MEASURES
from .preprocess import MAX_TILE_SIDE, TILE_HW, normalisation_levels, normalise

# The default mode: "crop", the one whose tiles are what the frame's score is made of (issue 27:
# the shared trunk with the distilled map head agrees on average, 0.1-0.25 points per tile, but
# single tiles miss by up to ~1.7 points; docs/benchmarks/focus-map.md). "shared" is the fast one.
DEFAULT_MODE = "crop"
NO_MAP_HEAD = ("the model has no map head (a fine-tuned or older checkpoint): every tile's crop "
               "was scored instead of the shared trunk (exact, ~4x slower at half-tile stride)")
# the most tiles a map takes: 5 x the default grid on a 20,000 x 20,000 frame (20,875 tiles);
# tile 32 x 32 at stride 1 on a 512 x 534 frame (273,000 tiles) ran for minutes without a word
MAX_MAP_TILES = 100_000
# the tiles' noise (their interval bin) on every 8th column: a tile's noise on every 2nd column,
# as whole frames are binned, cost a third of an int8 shared map (0.22 of 0.67 s, 169 tiles)
MAP_NOISE_COLUMN_STEP = 8


def _as_frame(image, name: str) -> np.ndarray:
    """A 2-D grey frame; 2-D integer/float arrays are used as they are (no float copy)."""
    a = np.asarray(image)
    if a.ndim == 2 and a.dtype.kind in "uif" and a.dtype != bool and min(a.shape) >= 16:
        check_values(a, name)  # the sentences of ``as_frames``, without a float copy
        return a
    if a.ndim == 3 and not is_rgb(a) and a.shape[0] != 1:
        raise SemFocusError(f"{name} is a stack of {a.shape[0]} frames; a focus map takes one "
                            "2-D frame (pick a slice).")
    return as_frames(a, name)[0]


# ---- the map ----------------------------------------------------------------------------------
def focus_map(scorer, image, magnification=None, tile=TILE_HW, stride=None,
              mode: str = DEFAULT_MODE, exclude_bottom_rows: int = 0, method: str = "model",
              batch_size: int = 32,
              name: str = "image") -> Generator[tuple[int, int], None, FocusMap]:
    """Generator: yields ``(tiles_done, tiles_total)`` between windows / batches (a caller may
    stop there) and returns the :class:`FocusMap`. ``scorer`` may be None for a classical
    ``method``. Drive it to the end with :func:`napari_semfocus.progress.run_to_end`."""
    if method != "model" and method not in MEASURES:
        raise SemFocusError(f"method {method!r} is neither 'model' nor one of {', '.join(MEASURES)}.")
    if method == "model" and mode not in MODES:
        raise SemFocusError(f"mode {mode!r} is not one of {', '.join(MODES)}.")
    if method == "model" and scorer is None:
        raise SemFocusError("a focus map with the model needs a FocusScorer.")
    batch_size = check_whole_number(batch_size, "batch_size")
    frame = lazy_frame(image, name) if is_lazy(image) else _as_frame(image, name)  # dask: lazy
    H0, W0 = frame.shape
    rows_off = int(exclude_bottom_rows or 0)
    if rows_off and rows_off >= H0 - 16:
        raise SemFocusError(f"{name}: the data bar covers the whole frame.")
    frame = frame[: H0 - rows_off]
    H, W = frame.shape
    (th, tw), (sy, sx), (oy, ox), geo, inside = _layout((H, W), tile, stride, name)
    ylo, yhi, xlo, xhi, valid = geo
    ny, nx = valid.shape
    levels = normalisation_levels(frame)  # of the whole frame, used block by block
    structure = np.where(valid, _structure(frame, levels, ylo, yhi, xlo, xhi), np.nan)
    weight = inside * structure_weights(structure)
    scores = np.full((ny, nx), np.nan, dtype=np.float32)
    extra = {}
    if method != "model":
        steps = _measure_tiles(frame, MEASURES[method], geo, scores)
        mode_used, model_name, mag = "crop", method, magnification
    else:
        enc = scorer.encode_magnifications(magnification, 1, name)
        # one tile (a frame no larger than a tile): cut and scored exactly as ``score`` does
        mode_used, model_name = ("crop" if ny * nx == 1 else mode), scorer.name
        if mode_used == "shared" and not scorer.has_map_head:
            mode_used, extra["note"] = "crop", NO_MAP_HEAD
        if mode_used == "shared":
            steps = _shared_tiles(scorer, frame, levels, enc, geo, scores, batch_size, extra)
        else:
            steps = _crop_tiles(scorer, frame, levels, enc, geo, scores, batch_size)
        mag = None if magnification is None else float(magnification)
    yield from steps
    low = high = None
    if method == "model":  # a tile without any contrast holds no sample: 0, as in ``score``
        scores[valid & (structure == 0)] = 0.0
        low, high, extra["interval"] = _tile_bounds(scorer, frame, levels, geo, scores)
    else:
        extra["interval"] = f"none: a classical measure ({method}) has no score intervals"
    return FocusMap(scores=scores, weight=weight.astype(np.float32), tile_hw=(th, tw),
                    stride_hw=(sy, sx), origin_yx=(int(oy), int(ox)), image_hw=(H0, W0),
                    scored_hw=(H, W), mode=mode_used, method=method, magnification=mag,
                    model=model_name, extra=extra, low=low, high=high)


def _tile_bounds(scorer, frame, levels, geo, scores):
    """``(low, high, what)``: every scored tile's interval from the model's interval for its
    score (and its own noise, for an interval binned by noise; NaN where not scored), or
    ``(None, None, why not)``."""
    model = scorer.interval
    if model is None:
        return None, None, (f"none: the model {scorer.name} has no score intervals (a fine-tuned "
                            "model before its intervals are calibrated)")
    ylo, yhi, xlo, xhi, valid = geo
    rows, cols = np.nonzero(valid)
    noise = None  # read only for an interval binned by noise (a pass over every tile)
    if model.needs_noise:
        noise = np.array([frame_noise(normalise(frame[ylo[r]:yhi[r], xlo[c]:xhi[c]], levels),
                                      MAP_NOISE_COLUMN_STEP)
                          for r, c in zip(rows, cols, strict=True)])
    low = np.full(scores.shape, np.nan, np.float32)
    high = low.copy()
    low[rows, cols], high[rows, cols] = model.bounds(scores[rows, cols], noise)
    binned = {"noise": "binned by the tile's own noise", "score": "binned by the tile's score",
              "score+noise": "binned by the tile's score and its own noise"}
    return low, high, {"level": model.level, "feature": model.feature,
                       "per_tile": "the model's interval for the tile's score, "
                                   + binned.get(model.feature, "the same for every tile")}


def _layout(scored_hw, tile, stride, name: str = "image"):
    """The grid over a scored part of ``scored_hw``: ``(tile_hw, stride_hw, origin_yx, geo,
    inside)`` with ``geo = (ylo, yhi, xlo, xhi, valid)`` (clipped footprints per row / column,
    scored tiles) and ``inside`` the fraction of each tile inside."""
    H, W = scored_hw
    th, tw = (int(v) for v in tile)
    sy, sx = (max(1, th // 2), max(1, tw // 2)) if stride is None else (int(v) for v in stride)
    if min(th, tw) < 32:
        raise SemFocusError(f"tile {th} x {tw} is too small; use at least 32 x 32 pixels.")
    # along an axis no longer than a tile, the frame is one tile (as in ``score``), one cell wide
    (th, sy), (tw, sx) = ((H, H) if th >= H else (th, sy)), ((W, W) if tw >= W else (tw, sx))
    if max(th, tw) > MAX_TILE_SIDE:  # a batch of 32 such tiles is already 134 MP
        raise SemFocusError(f"{name}: tiles of {th} x {tw} pixels are too large for a focus map; "
                            f"use at most {MAX_TILE_SIDE} x {MAX_TILE_SIDE}.")
    oy, ny = grid_axis(H, th, sy)
    ox, nx = grid_axis(W, tw, sx)
    if ny * nx > MAX_MAP_TILES:  # before any work: the structure of every tile is measured next
        raise SemFocusError(
            f"{name}: a map of {ny} x {nx} tiles ({ny * nx:,}, stride {sy} x {sx}) is more than "
            f"a focus map takes ({MAX_MAP_TILES:,} tiles); use a larger stride or tile.")
    ylo, yhi, yin = footprints(oy, ny, th, sy, H)
    xlo, xhi, xin = footprints(ox, nx, tw, sx, W)
    inside = (yin[:, None] * xin[None, :]).astype(np.float32)
    # per axis, not on the area: a corner tile has yin * xin inside (0.7 * 0.7 < 0.5 on a
    # 1536 x 2048 frame), and leaving it out left the frame's corners unscored
    valid = (yin[:, None] >= MIN_INSIDE) & (xin[None, :] >= MIN_INSIDE)
    return (th, tw), (sy, sx), (int(oy), int(ox)), (ylo, yhi, xlo, xhi, valid), inside


def tile_features(scorer, frame: np.ndarray, tile=TILE_HW, stride=None) -> np.ndarray:
    """The region-pooled trunk features (rows, cols, C) of every tile of the focus map's grid
    over a 2-D ``frame`` (no data bar), exactly as the shared mode pools them before its head
    (NaN rows for tiles not scored): what the map head is distilled on
    (``scripts/distil_map_head.py``) and what the benchmark scores with the plain head."""
    frame = _as_frame(frame, "frame")
    geo = _layout(frame.shape, tile, stride)[3]
    valid = geo[4]
    out = None
    for r0, r1, pooled in pooled_rows(scorer, frame, normalisation_levels(frame), geo):
        if pooled is None:
            continue
        block = pooled.cpu().numpy()
        if out is None:
            out = np.full((*valid.shape, block.shape[-1]), np.nan, dtype=np.float32)
        out[r0:r1] = np.where(valid[r0:r1, :, None], block, np.nan)
    return out


def _structure(frame, levels, ylo, yhi, xlo, xhi) -> np.ndarray:
    """:func:`aggregate.tile_structure` of every tile's footprint on the normalised frame
    (frames over ~4 MP from a subsampled copy, with the low-pass scaled to match)."""
    step = max(1, int(np.sqrt(frame.size / 4_000_000)))
    f = normalise(frame[::step, ::step], levels)
    out = np.zeros((len(ylo), len(xlo)), dtype=np.float64)
    for r, (a, b) in enumerate(zip(ylo // step, -(-yhi // step), strict=True)):
        for c, (u, v) in enumerate(zip(xlo // step, -(-xhi // step), strict=True)):
            out[r, c] = tile_structure(f[a:b, u:v], STRUCTURE_SIGMA / step)
    return out


def _measure_tiles(frame, fn, geo, scores):
    ylo, yhi, xlo, xhi, valid = geo
    total, done = int(valid.sum()), 0
    for r in range(len(ylo)):
        for c in range(len(xlo)):
            if valid[r, c]:
                tile = np.ascontiguousarray(frame[ylo[r]:yhi[r], xlo[c]:xhi[c]], dtype=np.float32)
                scores[r, c] = fn(tile)
                done += 1
        yield done, total


def _crop_tiles(scorer, frame, levels, enc, geo, scores, batch_size):
    """Exact mode: cut every (clipped) tile and score it; batches of tiles of the same shape."""
    ylo, yhi, xlo, xhi, valid = geo
    groups: dict = {}
    for r, c in zip(*np.nonzero(valid), strict=True):
        groups.setdefault((yhi[r] - ylo[r], xhi[c] - xlo[c]), []).append((r, c))
    total, done = int(valid.sum()), 0
    for cells in groups.values():
        for k in range(0, len(cells), batch_size):
            part = cells[k : k + batch_size]
            tiles = np.stack([normalise(frame[ylo[r]:yhi[r], xlo[c]:xhi[c]], levels)
                              for r, c in part])
            m = None if enc is None else np.repeat(enc, len(part))
            out = scorer.predict(tiles, m)
            for (r, c), s in zip(part, out, strict=True):
                scores[r, c] = s
            done += len(part)
            yield done, total


def _shared_tiles(scorer, frame, levels, enc, geo, scores, batch_size, extra):
    """Shared-trunk mode: the map head (:meth:`FocusScorer.pooled_scores`) on each tile's
    pooled features from :func:`.map_trunk.pooled_rows`; then the tiles at a step in focus
    (:func:`.map_trunk.focus_steps`) are cut and scored as crops (``extra["refined"]``: how
    many)."""
    valid = geo[4]
    total, done = int(valid.sum()), 0
    for r0, r1, pooled in pooled_rows(scorer, frame, levels, geo):
        if pooled is not None:
            ok = valid[r0:r1]
            scores[r0:r1] = np.where(ok, scorer.pooled_scores(pooled, enc), np.nan)
            done += int(ok.sum())
        yield done, total
    steps = focus_steps(scores) & valid
    extra["refined"] = int(steps.sum())
    if steps.any():  # every tile has a score by now: the progress stays at the end
        for _ in _crop_tiles(scorer, frame, levels, enc, (*geo[:4], steps), scores, batch_size):
            yield total, total
