"""The score interval of a fine-tuned model (issue 24, item 2): recalibrated on its own
validation split, or, when that split is too small, the parent's widened, with a note.

The fitting is :meth:`~napari_semfocus.scoring.intervals.IntervalModel.fit`, the one
``scripts/calibrate_intervals.py`` uses, at the parent's level and on the parent's feature (the
frame's noise for the shipped model; bins only where each holds
:data:`~napari_semfocus.scoring.intervals.MIN_PER_BIN` frames). The validation frames are scored
as users score them (whole frame, structure-weighted tiles) with the fine-tuned model.

*Too small*: fewer validation frames than
:func:`~napari_semfocus.scoring.intervals.min_calibration_frames` (21 at 80 %): with the
split-conformal ranks of fewer frames, the chance that the interval covers less than
``level - 0.1`` of new frames exceeds 10 % (below 9 frames at 80 % a rank falls off the ends and
a side is unbounded). Then the parent's interval is kept, each side widened by the 90th
percentile of how far fine-tuning moved the scores of the annotated frames (at most
:data:`SHIFT_FRAMES` of them): the parent's interval holds the truth around the parent's score;
the fine-tuned score lies that far from it for 90 % of frames like the annotated ones, so the
widened interval around the new score still holds the parent's (and a lab's scale that the
fine-tuning moved towards lies between the two).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..progress import run_to_end
from ..scoring.aggregate import weighted_score
from ..scoring.intervals import DEFAULT_LEVEL, IntervalModel, min_calibration_frames
from ..scoring.scorer import FocusScorer

SHIFT_FRAMES = 32  # annotated frames (evenly spread) that measure how far fine-tuning moved scores
SHIFT_QUANTILE = 0.9


@dataclass(frozen=True)
class Recalibration:
    """The fine-tuned model's interval (``IntervalModel.as_dict()``, or None: no interval) and,
    unless it was calibrated on its own validation split, one sentence saying why not."""

    interval: dict | None
    note: str | None = None


def frame_scores(model, data, device, index=None) -> tuple[np.ndarray, np.ndarray]:
    """(scores, noise) of the frames ``index`` (default: all) of a LabelledSet, as scoring
    computes them (frames of one shape scored together)."""
    scorer = FocusScorer(model, {}, device=device)
    index = np.arange(len(data)) if index is None else np.asarray(index)
    scores, noise = np.empty(len(index)), np.empty(len(index))
    by_shape: dict = {}
    for k, i in enumerate(index):
        by_shape.setdefault(np.shape(data.images[int(i)]), []).append(k)
    for ks in by_shape.values():
        stack = np.stack([np.asarray(data.images[int(index[k])]) for k in ks])
        tiles = run_to_end(scorer.tiles_iter(stack, data.magnifications[index[ks]]))
        scores[ks] = [weighted_score(s, w) for s, w in zip(tiles.scores, tiles.weights,
                                                           strict=True)]
        noise[ks] = tiles.frame_noise()
    return scores, noise


def shift_frames(data) -> np.ndarray:
    """The annotated frames (indices) that measure the shift: at most :data:`SHIFT_FRAMES`,
    evenly spread."""
    n = len(data)
    return np.unique(np.linspace(0, n - 1, min(n, SHIFT_FRAMES)).round().astype(int))


def needs_fallback(parent_interval: dict | None, val_set) -> bool:
    """Whether the validation split is too small to calibrate at the parent's level."""
    level = IntervalModel.from_dict(parent_interval).level if parent_interval else DEFAULT_LEVEL
    return (0 if val_set is None else len(val_set)) < min_calibration_frames(level)


def recalibrate(model, val_set, device, parent_interval: dict | None = None,
                parent_scores: np.ndarray | None = None, annotated=None) -> Recalibration:
    """The interval of the fine-tuned ``model``: fitted on ``val_set`` when it is big enough,
    else ``parent_interval`` widened by the shift between ``parent_scores`` (the parent's
    scores of :func:`shift_frames` of ``annotated``, taken before training) and the model's."""
    parent = IntervalModel.from_dict(parent_interval) if parent_interval else None
    level = parent.level if parent else DEFAULT_LEVEL
    feature = parent.feature if parent else "noise"
    need, n = min_calibration_frames(level), 0 if val_set is None else len(val_set)
    if n >= need:
        scores, noise = frame_scores(model, val_set, device)
        images = len(set(val_set.groups.tolist()))
        fitted = IntervalModel.fit(scores, val_set.labels, level, feature, noise, calibration={
            "frames": n, "images": images, "source": "the fine-tuning's validation split "
            "(annotated images never trained on; used once to choose between the parent and the "
            "last epoch)", "recalibrated": True})
        return Recalibration(fitted.as_dict())
    small = (f"the validation split ({n} frame(s)) is too small to calibrate a "
             f"{level:.0%} interval (it needs {need}: with fewer, the interval would cover under "
             f"{level - 0.1:.0%} of new frames with a chance over 10 %)")
    if parent is None or parent_scores is None or annotated is None:
        return Recalibration(None, f"{small}, and the parent has no interval to fall back on: "
                                   f"the model has none.")
    new, _ = frame_scores(model, annotated, device, shift_frames(annotated))
    by = float(np.quantile(np.abs(new - parent_scores), SHIFT_QUANTILE))
    note = (f"{small}: the interval is the parent's, each side widened by {by:.2f} points (how "
            f"far fine-tuning moved the scores of {SHIFT_QUANTILE:.0%} of the annotated frames).")
    widened = parent.widened(by, {"fallback": note, "widened_by": by,
                                  "validation_frames": n, "frames_needed": need})
    return Recalibration(widened.as_dict(), note)
