"""The review band of an acceptance gate (issue 24): a person looks where the model cannot tell.

Every score of a model with intervals comes with ``score_low`` .. ``score_high``, where the true
score lies for the interval's share of frames (:mod:`napari_semfocus.scoring.intervals`). With
the review band, a gate decides three ways instead of two:

* ``accept``: the whole interval lies at or above the threshold (``score_low >= threshold``);
* ``reject``: the whole interval lies below it (``score_high < threshold``);
* ``review``: the interval straddles the threshold; a person looks.

The band compares the whole-frame score's interval, so it exists for gates of the ``whole``
rule only (the worst region has no interval), and for models with intervals only: otherwise
:func:`check_review` says so in one sentence. :func:`review_figures` counts, on labelled frames,
the precision of the automatic accepts and the fraction sent to review (what ``gate calibrate``
reports and stores in the gate file's ``review`` entry).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import SemFocusError
from .calibrate import format_figure, scores_array

DECISIONS = ("accept", "reject", "review")


def three_way(threshold: float, low, high) -> np.ndarray:
    """Per frame: ``"accept"`` (``low >= threshold``), ``"reject"`` (``high < threshold``) or
    ``"review"`` (the interval straddles the threshold)."""
    lo, hi = scores_array(low), scores_array(high)
    if lo.shape != hi.shape or np.any(lo > hi):
        raise SemFocusError("score intervals must be pairs with score_low <= score_high.")
    return np.where(lo >= threshold, "accept", np.where(hi < threshold, "reject", "review"))


def check_review(rule: str, has_intervals: bool, model_name: str = "the gate's model") -> None:
    """Refuse the review band, in one sentence, where there is none: a gate of another rule
    than ``whole``, or a model without intervals."""
    if rule != "whole":
        raise SemFocusError(
            f"the review band compares the whole score's interval with the threshold, and this "
            f"gate compares the {rule} score, which has no interval: apply it without the review "
            "band, or calibrate a gate on the whole score.")
    if not has_intervals:
        raise SemFocusError(
            f"the model {model_name} has no score intervals (a fine-tuned model before its "
            "intervals are calibrated), so there is no review band: apply the gate without it.")


@dataclass(frozen=True)
class ReviewFigures:
    """The review band on labelled frames: how many were accepted, rejected and sent to review
    automatically, and how right the automatic decisions were."""

    n: int
    accepted: int  # accepted automatically
    rejected: int  # rejected automatically
    review: int  # sent to a person
    accepted_bad: int  # accepted automatically but not acceptable (the costly error)
    rejected_good: int  # rejected automatically but acceptable
    acceptable: int  # acceptable frames in all

    @property
    def precision(self) -> float | None:
        """Of the automatic accepts, the share acceptable (None when there are none)."""
        return None if not self.accepted else 1.0 - self.accepted_bad / self.accepted

    @property
    def fraction_review(self) -> float:
        return self.review / self.n if self.n else 0.0

    @property
    def recall(self) -> float | None:
        """Of the acceptable frames, the share accepted automatically (None without any)."""
        good = self.accepted - self.accepted_bad
        return None if not self.acceptable else good / self.acceptable

    def as_dict(self) -> dict:
        return {"n": self.n, "acceptable": self.acceptable, "accepted": self.accepted,
                "rejected": self.rejected, "review": self.review,
                "accepted_not_acceptable": self.accepted_bad,
                "rejected_acceptable": self.rejected_good,
                "precision_automatic_accepts": self.precision,
                "recall_automatic_accepts": self.recall,
                "fraction_review": self.fraction_review}

    @classmethod
    def from_dict(cls, d: dict) -> ReviewFigures:
        return cls(d["n"], d["accepted"], d["rejected"], d["review"],
                   d["accepted_not_acceptable"], d["rejected_acceptable"], d["acceptable"])

    def summary(self) -> str:
        return (f"precision of the automatic accepts {format_figure(self.precision)} "
                f"({self.accepted} accepted, {self.accepted_bad} of them not acceptable), "
                f"{self.fraction_review:.1%} to review ({self.review}), {self.rejected} rejected "
                f"({self.rejected_good} of them acceptable) on {self.n} images")


def review_figures(threshold: float, low, high, acceptable) -> ReviewFigures:
    """The review band's figures at ``threshold`` on frames with intervals ``low`` .. ``high``
    and the truth ``acceptable``."""
    decision = three_way(threshold, low, high)
    truth = np.asarray(acceptable, dtype=bool)
    if truth.shape != decision.shape:
        raise SemFocusError(f"{len(decision)} intervals but {len(truth)} labels.")
    acc, rej = decision == "accept", decision == "reject"
    return ReviewFigures(len(decision), int(acc.sum()), int(rej.sum()),
                         int((decision == "review").sum()), int((acc & ~truth).sum()),
                         int((rej & truth).sum()), int(truth.sum()))


def review_record(threshold: float, level: float | None, low, high, acceptable,
                  held_out: np.ndarray | None = None) -> dict:
    """The gate file's ``review`` entry: the interval level and the figures on the calibration
    frames (with a hold-out: on the frames the threshold was chosen on, and on the held-out ones
    by index ``held_out``)."""
    low, high, truth = scores_array(low), scores_array(high), np.asarray(acceptable, bool)
    rule = "accept when score_low >= threshold, reject when score_high < threshold, else review"
    out = {"interval_level": level, "rule": rule}
    if held_out is None:
        out["calibration"] = review_figures(threshold, low, high, truth).as_dict()
        return out
    held = np.zeros(len(low), bool)
    held[held_out] = True
    out["calibration"] = review_figures(threshold, low[~held], high[~held], truth[~held]).as_dict()
    out["held_out"] = review_figures(threshold, low[held], high[held], truth[held]).as_dict()
    return out


def review_summary(record: dict | None) -> str:
    """One line per part (calibration, held out) of a gate file's ``review`` entry (empty
    without one)."""
    if not record:
        return ""
    return "\n".join(f"review band, {part.replace('_', ' ')}: "
                     f"{ReviewFigures.from_dict(record[part]).summary()}"
                     for part in ("calibration", "held_out") if record.get(part))
