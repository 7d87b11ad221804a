"""A through-focus series from pixels to its focus curve: score every slice (the one prediction
path, :class:`~.scorer.FocusScorer`), fit the curve (:mod:`.through_focus`) and judge
astigmatism (:mod:`.astigmatism`). The CLI (``semfocus focus-curve``), the Score focus widget
(through :func:`napari_semfocus.jobs.score.score_images`) and the API
(``FocusScorer.focus_curve``) all come here.

    >>> curve = scorer.focus_curve(stack, magnification=5000, z=[0, 5, 10, 15, 20, 25, 30])
    >>> curve.best_z, (curve.best_z_low, curve.best_z_high), curve.best_score, curve.astigmatism
"""

from __future__ import annotations

import numpy as np

from ..errors import SemFocusError
from ..io.focus_positions import FocusPositions
from .astigmatism import series_astigmatism
from .through_focus import LEVEL, FocusCurve, fit_focus_curve


def positions_of(z, n: int) -> FocusPositions:
    """``z`` as :class:`FocusPositions`: None -> the index; numbers -> micrometres."""
    if z is None:
        return FocusPositions(tuple(float(i) for i in range(n)))
    if isinstance(z, FocusPositions):
        return z
    try:
        values = tuple(float(v) for v in np.asarray(z, dtype=np.float64).ravel())
    except (TypeError, ValueError):
        raise SemFocusError(f"z {z!r} is not a list of numbers, one per slice.") from None
    return FocusPositions(values, "um", "given")


def curve_from_scores(frames, scores, positions: FocusPositions, name: str = "series",
                      exclude_bottom_rows: int = 0, interval: str = "profile",
                      level: float = LEVEL, weights=None) -> FocusCurve:
    """The fitted curve of a series whose slices are already scored, with its astigmatism
    record; ``frames`` (N, H, W) in the order of ``positions`` (None: no astigmatism record)."""
    scores = np.asarray(scores, dtype=np.float64)
    z = positions.array
    curve = fit_focus_curve(scores, z, weights, positions.unit, positions.source, name,
                            interval, level)
    if frames is not None:
        curve.astigmatism = series_astigmatism(frames, scores, z, curve.best_z, curve.s0_px,
                                               exclude_bottom_rows)
    return curve


def order_by_z(frames: np.ndarray, positions: FocusPositions):
    """Frames and positions sorted by z (a set of files may come in any order)."""
    order = np.argsort(positions.array, kind="stable")
    sorted_pos = FocusPositions(tuple(positions.array[order]), positions.unit, positions.source)
    return frames[order], sorted_pos, order


def focus_curve(scorer, stack, magnification=None, z=None, name: str = "series",
                exclude_bottom_rows: int = 0, interval: str = "profile",
                batch_size: int = 32) -> FocusCurve:
    """Score the slices of ``stack`` (N, H, W) with ``scorer`` and fit the through-focus curve;
    ``z``: one focus position per slice (micrometres; None: the slice index)."""
    frames = np.asarray(stack)
    if frames.ndim != 3 or frames.shape[0] < 2:
        raise SemFocusError(f"{name}: a through-focus series is a stack of at least 2 slices "
                            f"(N, H, W), not an array of shape {frames.shape}.")
    positions = positions_of(z, frames.shape[0])
    frames, positions, order = order_by_z(frames, positions)
    mags = magnification
    if mags is not None and np.ndim(mags) == 1:
        mags = np.asarray(mags)[order]
    scores = scorer.score(frames, mags, batch_size=batch_size,
                          exclude_bottom_rows=exclude_bottom_rows, name=name)
    return curve_from_scores(frames, scores, positions, name, exclude_bottom_rows, interval)
