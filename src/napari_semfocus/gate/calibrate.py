"""Acceptance gate: an accept/reject decision on the focus score, tuned for precision.

In automated acquisition an accepted bad image costs far more than one taken again, so the gate
is the threshold on the model's score that reaches a target precision (default 0.95) with the
highest recall, chosen on annotated validation data:

    >>> cal = calibrate(model_scores, expert_scores=experts, accept_score=7, target_precision=0.95)
    >>> gate = Gate.from_calibration(cal, scorer)       # gate.file.Gate: records the model
    >>> gate.save("gate.json"); gate = Gate.load("gate.json", scorer=scorer)
    >>> gate.apply(new_scores)                          # True = accepted (score >= threshold)

Definitions used everywhere (CLI, widget, docs):

* An image is *accepted* when its model score is ``>= threshold``; the positive class is
  "acceptable" (expert score ``>= accept_score``, default 7, or an accept label).
* Candidate thresholds are the distinct model scores of the calibration images. Among those whose
  precision is ``>= target``, the gate takes the one with the highest recall (the lowest such
  threshold; on equal recall, the higher threshold). Its figures on the calibration images come
  from scikit-learn: the curve from ``precision_recall_curve``, the counts from
  ``confusion_matrix``, precision = TP / (TP + FP) and recall = TP / (TP + FN) from
  ``precision_score`` / ``recall_score``, and the weighted F1 over both classes (F1 of "accept"
  and of "reject", weighted by how many images truly belong to each) from
  ``f1_score(average="weighted")``; the tests compare them with a direct count.
* When no threshold reaches the target, :func:`calibrate` raises :class:`SemFocusError` naming
  the best precision that can be reached. With ``best_effort=True`` it returns the threshold of
  the highest precision reached instead (on equal precision, the highest recall), flagged
  ``target_reached=False``; the gate file keeps that flag.
* Calibration needs images of both classes.

The figures on the calibration data are optimistic (the threshold was chosen on them):
:func:`held_out_check` calibrates on part of the groups (e.g. focus series) and counts the
figures on the others.

Beside this module: :mod:`.labels` (the truth: labels, the calibration manifest), :mod:`.file`
(the gate record: JSON file, the model it belongs to) and :mod:`.plot` (the precision-recall
plot). The workflow (score a manifest, calibrate, optionally on part of the groups) is
:func:`napari_semfocus.jobs.gate.calibrate_gate`, for the CLI and the widget.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from sklearn.metrics import (
    confusion_matrix,
    f1_score,
    precision_recall_curve,
    precision_score,
    recall_score,
)

from ..errors import SemFocusError
from .labels import DEFAULT_ACCEPT_SCORE, accept_from_expert_scores, accept_from_labels

DEFAULT_TARGET_PRECISION = 0.95


# ---- counting --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Confusion:
    """Counts at one threshold; positive = acceptable, predicted positive = accepted. Made by
    :meth:`count`, which also keeps the decisions and the truth for the figures."""

    tp: int  # acceptable and accepted
    fp: int  # not acceptable but accepted (the costly error)
    fn: int  # acceptable but rejected
    tn: int  # not acceptable and rejected
    accepted: tuple = field(default=(), compare=False, repr=False)
    acceptable: tuple = field(default=(), compare=False, repr=False)

    @classmethod
    def count(cls, accepted, acceptable) -> Confusion:
        a, t = np.asarray(accepted, dtype=bool), np.asarray(acceptable, dtype=bool)
        tn, fp, fn, tp = (int(v) for v in confusion_matrix(t, a, labels=[False, True]).ravel())
        return cls(tp, fp, fn, tn, tuple(a.tolist()), tuple(t.tolist()))

    def _truth_and_decisions(self) -> tuple[np.ndarray, np.ndarray]:
        if len(self.acceptable) == self.n:
            return np.asarray(self.acceptable, bool), np.asarray(self.accepted, bool)
        # counts given directly: any arrays with these counts give the same figures
        truth = np.repeat([True, False, True, False], [self.tp, self.fp, self.fn, self.tn])
        decided = np.repeat([True, True, False, False], [self.tp, self.fp, self.fn, self.tn])
        return truth, decided

    @property
    def n(self) -> int:
        return self.tp + self.fp + self.fn + self.tn

    @property
    def precision(self) -> float | None:
        """TP / (TP + FP); ``None`` when nothing is accepted."""
        if not self.tp + self.fp:
            return None
        return float(precision_score(*self._truth_and_decisions(), zero_division=0.0))

    @property
    def recall(self) -> float | None:
        """TP / (TP + FN); ``None`` when nothing is acceptable."""
        if not self.tp + self.fn:
            return None
        return float(recall_score(*self._truth_and_decisions(), zero_division=0.0))

    @property
    def f1_weighted(self) -> float:
        """F1 of each class weighted by its support (``f1_score(average="weighted")``; a class
        whose F1 is undefined counts as 0)."""
        if not self.n:
            return 0.0
        truth, decided = self._truth_and_decisions()
        return float(f1_score(truth, decided, average="weighted", labels=[False, True],
                              zero_division=0.0))

    def as_dict(self) -> dict:
        return {"tp": self.tp, "fp": self.fp, "fn": self.fn, "tn": self.tn}

    def matrix(self) -> np.ndarray:
        """[[TN, FP], [FN, TP]]: rows = truth (reject, accept), columns = decision, as
        ``sklearn.metrics.confusion_matrix(acceptable, accepted)``."""
        return np.array([[self.tn, self.fp], [self.fn, self.tp]])


@dataclass(frozen=True)
class Figures:
    """Precision, recall, weighted F1 and the confusion counts of a gate on a set of images."""

    threshold: float
    confusion: Confusion

    @property
    def n(self) -> int:
        return self.confusion.n

    @property
    def precision(self) -> float | None:
        return self.confusion.precision

    @property
    def recall(self) -> float | None:
        return self.confusion.recall

    @property
    def f1_weighted(self) -> float:
        return self.confusion.f1_weighted

    def as_dict(self) -> dict:
        c = self.confusion
        return {"n": c.n, "n_acceptable": c.tp + c.fn, "n_accepted": c.tp + c.fp,
                "precision": self.precision, "recall": self.recall,
                "f1_weighted": self.f1_weighted, "confusion": c.as_dict()}

    def summary(self) -> str:
        return (f"precision {format_figure(self.precision)}, recall "
                f"{format_figure(self.recall)}, weighted F1 "
                f"{self.f1_weighted:.3f} on {self.n} images (TP {self.confusion.tp}, "
                f"FP {self.confusion.fp}, FN {self.confusion.fn}, TN {self.confusion.tn})")


def figures_at(scores, acceptable, threshold: float) -> Figures:
    """Figures of the rule ``score >= threshold`` against the truth ``acceptable``."""
    scores = scores_array(scores)
    return Figures(float(threshold), Confusion.count(scores >= threshold, acceptable))


# ---- the precision-recall curve and the choice of threshold --------------------------------
@dataclass(frozen=True)
class PRCurve:
    """One point per candidate threshold (the distinct scores, highest first): precision,
    recall and the counts of ``score >= threshold``."""

    thresholds: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    tp: np.ndarray
    fp: np.ndarray
    n_acceptable: int
    n: int


def pr_curve(scores, acceptable) -> PRCurve:
    """Precision and recall of ``score >= t`` for every distinct score ``t``
    (``sklearn.metrics.precision_recall_curve``, highest threshold first, without its final
    (recall 0, precision 1) point), with the counts behind them."""
    scores = scores_array(scores)
    acceptable = np.asarray(acceptable, dtype=bool)
    if acceptable.shape != scores.shape:
        raise SemFocusError(f"{len(scores)} scores but {len(acceptable)} labels.")
    pos = int(acceptable.sum())
    sorted_scores = np.sort(scores)
    if 0 < pos < len(scores):
        precision, recall, thresholds = precision_recall_curve(acceptable, scores,
                                                               drop_intermediate=False)
        precision, recall, thresholds = precision[-2::-1], recall[-2::-1], thresholds[::-1]
        n_accepted = len(scores) - np.searchsorted(sorted_scores, thresholds, side="left")
        tp = np.rint(recall * pos).astype(int)
    else:  # one class only (sklearn warns and divides by zero): all or no accepted are TPs
        thresholds = np.unique(scores)[::-1]
        n_accepted = len(scores) - np.searchsorted(sorted_scores, thresholds, side="left")
        tp = n_accepted if pos else np.zeros(len(thresholds), dtype=int)
        precision, recall = tp / n_accepted, (tp / pos if pos else np.zeros(len(tp)))
    return PRCurve(thresholds.astype(np.float64), precision.astype(np.float64),
                   recall.astype(np.float64), tp, n_accepted - tp, pos, len(scores))


@dataclass(frozen=True)
class Calibration:
    """The chosen threshold, its figures on the calibration images, and the whole curve."""

    target_precision: float
    threshold: float
    figures: Figures
    curve: PRCurve
    target_reached: bool
    scores: np.ndarray
    acceptable: np.ndarray
    accept_rule: dict = field(default_factory=dict)

    def with_target(self, target_precision: float, best_effort: bool = False) -> Calibration:
        """The same data calibrated for another target (no rescoring)."""
        return calibrate(self.scores, acceptable=self.acceptable, target_precision=target_precision,
                         best_effort=best_effort, accept_rule=self.accept_rule)

    def summary(self) -> str:
        flag = "" if self.target_reached else " (TARGET NOT REACHED: best effort)"
        return (f"threshold {self.threshold:.4f} for precision >= {self.target_precision:g}"
                f"{flag}: {self.figures.summary()}")


def calibrate(scores, expert_scores=None, labels=None, acceptable=None,
              accept_score: float = DEFAULT_ACCEPT_SCORE,
              target_precision: float = DEFAULT_TARGET_PRECISION, best_effort: bool = False,
              accept_rule: dict | None = None) -> Calibration:
    """Choose the threshold on ``scores`` that reaches ``target_precision`` with the highest
    recall. The truth is given by one of ``expert_scores`` (acceptable when ``>= accept_score``),
    ``labels`` (accept/reject words, booleans or 0/1) or ``acceptable`` (booleans)."""
    check_target(target_precision)
    given = [x is not None for x in (expert_scores, labels, acceptable)]
    if sum(given) != 1:
        raise SemFocusError("give exactly one of expert_scores, labels or acceptable.")
    if expert_scores is not None:
        truth = accept_from_expert_scores(expert_scores, accept_score)
        rule = {"kind": "expert_score", "accept_score": float(accept_score)}
    elif labels is not None:
        truth, rule = accept_from_labels(labels), {"kind": "labels"}
    else:
        truth, rule = np.asarray(acceptable, dtype=bool), {"kind": "acceptable"}
    rule = dict(accept_rule or rule)
    scores = scores_array(scores)
    if len(scores) != len(truth):
        raise SemFocusError(f"{len(scores)} scores but {len(truth)} labels.")
    if len(scores) == 0:
        raise SemFocusError("calibration needs at least one image of each class; got none.")
    check_both_classes(truth, rule)
    curve = pr_curve(scores, truth)
    ok = np.flatnonzero(curve.precision >= target_precision - 1e-12)
    if ok.size:
        best = ok[np.argmax(curve.recall[ok])]  # argmax: the first = highest threshold on ties
        reached = True
    elif best_effort:
        top = curve.precision.max()
        cands = np.flatnonzero(curve.precision >= top - 1e-12)
        best, reached = cands[np.argmax(curve.recall[cands])], False
    else:
        k = int(np.argmax(curve.precision))
        raise SemFocusError(
            f"target precision {target_precision:g} is not reached on these {len(scores)} images: "
            f"the best is {curve.precision[k]:.3f} (threshold {curve.thresholds[k]:.4g}, recall "
            f"{curve.recall[k]:.3f}); lower the target precision (or accept the best effort)."
        )
    threshold = float(curve.thresholds[best])
    return Calibration(float(target_precision), threshold, figures_at(scores, truth, threshold),
                       curve, reached, scores, truth, rule)


def check_target(target_precision) -> None:
    if not (isinstance(target_precision, int | float) and 0 < float(target_precision) <= 1):
        raise SemFocusError(
            f"target precision must be a number in (0, 1], got {target_precision!r}.")


def check_both_classes(truth, rule: dict, where: str = "") -> None:
    """Refuse labels of one class only (``where``: ``manifest M: `` to name the input)."""
    truth = np.asarray(truth, dtype=bool)
    n_pos = int(truth.sum())
    if n_pos == 0 or n_pos == len(truth):
        which = "acceptable" if n_pos else "to be rejected"
        raise SemFocusError(
            f"{where}calibration needs images of both classes, but all {len(truth)} are "
            f"{which}{_rule_text(rule, acceptable=bool(n_pos))}.")


def _rule_text(rule: dict, acceptable: bool = True) -> str:
    """`` (expert score >= 7)`` for acceptable images, `` (expert score < 7)`` for the others."""
    if rule.get("kind") == "expert_score":
        return f" (expert score {'>=' if acceptable else '<'} {rule['accept_score']:g})"
    return ""


def scores_array(scores) -> np.ndarray:
    """Model scores as a flat float array; refuses NaN and infinity."""
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(s)):
        raise SemFocusError("model scores must be finite numbers (found NaN or infinity).")
    return s


def format_figure(v) -> str:
    """A figure (precision, recall, F1, RMSE, ...) with 3 decimals; ``n/a`` for None (the gate's
    summaries and the evaluation report)."""
    return "n/a" if v is None else f"{v:.3f}"


# ---- honest figures on other data ------------------------------------------------------------
@dataclass(frozen=True)
class HeldOutCheck:
    """A gate calibrated on the groups of one part, counted on the others."""

    calibration: Calibration
    held_out: Figures
    calibration_groups: tuple
    held_out_groups: tuple
    calibration_index: np.ndarray
    held_out_index: np.ndarray

    def as_dict(self) -> dict:
        return {"calibration": self.calibration.figures.as_dict(),
                "held_out": self.held_out.as_dict(),
                "threshold": self.calibration.threshold,
                "target_precision": self.calibration.target_precision,
                "target_reached_on_calibration": self.calibration.target_reached,
                "n_groups": {"calibration": len(self.calibration_groups),
                             "held_out": len(self.held_out_groups)}}


def split_groups(groups, held_out_fraction: float = 0.5, seed: int = 0
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks (calibration, held out) keeping every group on one side; the groups are
    shuffled with ``seed`` and ``round(fraction * n_groups)`` of them are held out."""
    groups = np.asarray([str(g) for g in groups])
    uniq = np.unique(groups)
    if len(uniq) < 2:
        raise SemFocusError("a held-out check needs at least two groups (e.g. focus series).")
    if not 0 < held_out_fraction < 1:
        raise SemFocusError(f"held-out fraction must be between 0 and 1, got {held_out_fraction}.")
    n_out = min(len(uniq) - 1, max(1, int(round(held_out_fraction * len(uniq)))))
    out = set(np.random.default_rng(seed).permutation(uniq)[:n_out].tolist())
    held = np.array([g in out for g in groups])
    return ~held, held


def held_out_check(scores, acceptable, groups, target_precision=DEFAULT_TARGET_PRECISION,
                   held_out_fraction: float = 0.5, seed: int = 0, best_effort: bool = False,
                   accept_rule: dict | None = None, swap: bool = False) -> HeldOutCheck:
    """Calibrate on one part of the groups and count the gate's figures on the other part.
    ``swap=True`` exchanges the two parts (the second fold of a two-fold check)."""
    scores = scores_array(scores)
    acceptable = np.asarray(acceptable, dtype=bool)
    cal, held = split_groups(groups, held_out_fraction, seed)
    if swap:
        cal, held = held, cal
    calibration = calibrate(scores[cal], acceptable=acceptable[cal],
                            target_precision=target_precision, best_effort=best_effort,
                            accept_rule=accept_rule)
    figures = figures_at(scores[held], acceptable[held], calibration.threshold)
    g = np.asarray([str(x) for x in groups])
    return HeldOutCheck(calibration, figures, tuple(np.unique(g[cal])), tuple(np.unique(g[held])),
                        np.flatnonzero(cal), np.flatnonzero(held))
