"""From tile scores to one score per frame: weight each tile by how much sample it shows.

A microscopist judges focus from where the sample is, not from empty substrate around it. The
whole-image score is therefore a weighted mean of the tile scores, each tile weighted by its
*structure* relative to the most structured tile of the same frame:

    structure(tile) = std of the normalised tile after a Gaussian low-pass (sigma 3 px)
    weight(tile)    = clip((structure / max structure over the frame's tiles - 0.25) / 0.35,
                           0.001, 1)
    score(frame)    = sum(weight * tile score) / sum(weight)

The low-pass keeps particles, edges and textures of a few pixels and up (sharp or blurred) and
removes most pixel noise (its std falls ~11x), so a tile of empty substrate or noise beside
sample gets weight ~0.001 and a frame with particles in one corner scores like that corner. Tiles
with at least 60 % of the structure of the best tile count fully, so a frame whose halves both show
sample scores between them; when every tile is alike (a noise field, an even texture) every
weight is the same and the score is the plain mean; a uniform frame has no structure and every
tile scores 0. The same weight, times the fraction of a tile inside the image, is the focus
map's *certainty*. ``benchmarks/bench_aggregation.py`` measures this rule against the plain mean
and a contrast weight on sparse, corner and half-blurred frames.

A frame half sharp, half blurred scores between its halves, so a gate on the whole score can
accept it. Beside the whole score, every frame therefore has its *worst informative region*
(:func:`worst_region_score`, the gate's ``worst-region`` rule):

    informative(tile) = weight >= 0.5   (structure >= 42.5 % of the frame's best tile)
    worst_region      = mean of the lowest-scoring quarter of the informative tiles
                        (at least one tile; a fractional last tile counts by its fraction)

The quarter, rather than the single worst tile, keeps one odd tile (a charging spot, a tile
that is mostly edge) from deciding; a frame with fewer than four informative tiles is judged by
its worst one. Tiles of empty substrate never count, and when no tile is informative (every
weight at the floor: a uniform or structureless frame) the worst region is the whole score. On
a uniformly focused frame it stays within the spread of the tile scores, a little below the
whole score.
"""

from __future__ import annotations

import cv2
import numpy as np

STRUCTURE_SIGMA = 3.0  # px: low-pass before measuring a tile's structure
WEIGHT_LOW, WEIGHT_HIGH = 0.25, 0.6  # structure relative to the frame's best tile: 0 .. 1
WEIGHT_FLOOR = 1e-3  # every tile counts a little, so all-empty frames still have a mean
INFORMATIVE_WEIGHT = 0.5  # tiles the worst region is taken from
WORST_FRACTION = 0.25  # of the informative tiles: the worst region's size


def tile_structure(tile: np.ndarray, sigma: float = STRUCTURE_SIGMA) -> float:
    """Std of a normalised tile after the low-pass (0 for a uniform tile)."""
    t = np.asarray(tile, dtype=np.float32)
    if t.size == 0 or float(np.ptp(t)) == 0.0:
        return 0.0
    lp = cv2.GaussianBlur(t, (0, 0), sigma, borderType=cv2.BORDER_REFLECT_101)
    return float(lp.std())


def structure_weights(structure) -> np.ndarray:
    """Weights of a frame's tiles from their structure (any shape; NaN stays NaN)."""
    s = np.asarray(structure, dtype=np.float64)
    finite = np.isfinite(s)
    ref = float(s[finite].max()) if finite.any() else 0.0
    if ref <= 0:
        return np.where(finite, WEIGHT_FLOOR, np.nan)
    w = np.clip((s / ref - WEIGHT_LOW) / (WEIGHT_HIGH - WEIGHT_LOW), WEIGHT_FLOOR, 1.0)
    return np.where(finite, w, np.nan)


def weighted_score(scores, weights) -> float:
    """The frame's score: weighted mean of its tile scores (NaN tiles ignored)."""
    s, w = np.asarray(scores, np.float64), np.asarray(weights, np.float64)
    ok = np.isfinite(s) & np.isfinite(w)
    if not ok.any():
        return float("nan")
    return float(np.sum(s[ok] * w[ok]) / np.sum(w[ok]))


def worst_region_score(scores, weights) -> float:
    """The frame's worst informative region: the mean score of the lowest-scoring quarter of
    its informative tiles (weight >= ``INFORMATIVE_WEIGHT``; at least one tile); the whole score
    when no tile is informative; NaN tiles ignored."""
    s, w = np.asarray(scores, np.float64), np.asarray(weights, np.float64)
    informative = np.isfinite(s) & np.isfinite(w) & (w >= INFORMATIVE_WEIGHT)
    if not informative.any():
        return weighted_score(s, w)
    ordered = np.sort(s[informative])
    size = max(1.0, WORST_FRACTION * len(ordered))  # in tiles
    whole_tiles = int(size)
    total = ordered[:whole_tiles].sum()
    if size > whole_tiles:
        total += (size - whole_tiles) * ordered[whole_tiles]
    return float(total / size)
