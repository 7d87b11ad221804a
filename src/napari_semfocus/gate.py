"""Acceptance gate: an accept/reject decision on the focus score, tuned for precision.

In automated acquisition an accepted bad image costs far more than one taken again, so the gate
is the threshold on the model's score that reaches a target precision (default 0.95) with the
highest recall, chosen on annotated validation data:

    >>> cal = calibrate(model_scores, expert_scores=experts, accept_score=7, target_precision=0.95)
    >>> gate = Gate.from_calibration(cal, scorer)       # records the model it was calibrated for
    >>> gate.save("gate.json"); gate = Gate.load("gate.json", scorer=scorer)
    >>> gate.apply(new_scores)                          # True = accepted (score >= threshold)

Definitions used everywhere (CLI, widget, docs):

* An image is *accepted* when its model score is ``>= threshold``; the positive class is
  "acceptable" (expert score ``>= accept_score``, default 7, or an accept label).
* Candidate thresholds are the distinct model scores of the calibration images. Among those whose
  precision is ``>= target``, the gate takes the one with the highest recall (the lowest such
  threshold; on equal recall, the higher threshold). Its figures are counted directly on the
  calibration images: precision = TP / (TP + FP), recall = TP / (TP + FN), and the weighted F1
  over both classes (F1 of "accept" and of "reject", weighted by how many images truly belong to
  each, as ``sklearn.metrics.f1_score(average="weighted")``).
* When no threshold reaches the target, :func:`calibrate` raises :class:`SemFocusError` naming
  the best precision that can be reached. With ``best_effort=True`` it returns the threshold of
  the highest precision reached instead (on equal precision, the highest recall), flagged
  ``target_reached=False``; the gate file keeps that flag.
* Calibration needs images of both classes.

The figures on the calibration data are optimistic (the threshold was chosen on them):
:func:`held_out_check` calibrates on part of the groups (e.g. focus series) and counts the
figures on the others.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import SemFocusError

DEFAULT_TARGET_PRECISION = 0.95
DEFAULT_ACCEPT_SCORE = 7.0
GATE_FORMAT = "napari-semfocus-gate"
GATE_FORMAT_VERSION = 1
RULE = "accepted when score >= threshold"

#: words read as accept / reject labels (case-insensitive)
ACCEPT_WORDS = frozenset({"accept", "accepted", "yes", "y", "true", "pass", "ok", "good"})
REJECT_WORDS = frozenset({"reject", "rejected", "no", "n", "false", "fail", "bad"})


# ---- labels ----------------------------------------------------------------------------------
def accept_from_expert_scores(expert_scores, accept_score: float = DEFAULT_ACCEPT_SCORE
                              ) -> np.ndarray:
    """True where the expert score is at least ``accept_score``."""
    values = np.asarray(expert_scores, dtype=np.float64)
    if values.ndim != 1:
        raise SemFocusError(f"expert scores must be one number per image, got shape {values.shape}.")
    if not np.all(np.isfinite(values)):
        raise SemFocusError("expert scores must be finite numbers (found NaN or infinity).")
    return values >= float(accept_score)


def accept_from_labels(labels) -> np.ndarray:
    """Accept/reject labels -> bool: booleans, 0/1, or the words in ``ACCEPT_WORDS`` /
    ``REJECT_WORDS`` (accept/reject, yes/no, true/false, pass/fail)."""
    out = []
    for i, value in enumerate(labels):
        if isinstance(value, bool | np.bool_):
            out.append(bool(value))
            continue
        if isinstance(value, int | float | np.integer | np.floating) and value in (0, 1):
            out.append(bool(value))
            continue
        text = str(value).strip().lower()
        if text in ACCEPT_WORDS or text == "1":
            out.append(True)
        elif text in REJECT_WORDS or text == "0":
            out.append(False)
        else:
            raise SemFocusError(
                f"label {value!r} of image {i + 1} is not an accept/reject label "
                "(use accept/reject, yes/no, true/false, pass/fail or 1/0)."
            )
    return np.asarray(out, dtype=bool)


def labels_from_column(values: Sequence[str], accept_score: float = DEFAULT_ACCEPT_SCORE,
                       column: str = "label") -> tuple[np.ndarray, dict]:
    """A manifest column -> (accept flags, accept rule for the gate file).

    Numbers are expert scores (accepted when ``>= accept_score``; for 0/1 labels use
    ``accept_score=1``); words are accept/reject labels. Mixed columns are refused."""
    texts = [str(v).strip() for v in values]
    numbers = []
    for t in texts:
        try:
            numbers.append(float(t))
        except ValueError:
            numbers.append(None)
    if all(n is not None for n in numbers):
        return (accept_from_expert_scores(numbers, accept_score),
                {"kind": "expert_score", "column": column, "accept_score": float(accept_score)})
    if any(n is not None and t not in ("0", "1") for n, t in zip(numbers, texts, strict=True)):
        bad = next(t for n, t in zip(numbers, texts, strict=True) if n is None)
        raise SemFocusError(
            f"column {column} mixes expert scores and the word {bad!r}: use numbers (expert "
            "scores) or accept/reject words, not both."
        )
    return accept_from_labels(texts), {"kind": "labels", "column": column}


# ---- counting --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Confusion:
    """Counts at one threshold; positive = acceptable, predicted positive = accepted."""

    tp: int  # acceptable and accepted
    fp: int  # not acceptable but accepted (the costly error)
    fn: int  # acceptable but rejected
    tn: int  # not acceptable and rejected

    @classmethod
    def count(cls, accepted, acceptable) -> Confusion:
        a, t = np.asarray(accepted, dtype=bool), np.asarray(acceptable, dtype=bool)
        return cls(int(np.sum(a & t)), int(np.sum(a & ~t)), int(np.sum(~a & t)),
                   int(np.sum(~a & ~t)))

    @property
    def n(self) -> int:
        return self.tp + self.fp + self.fn + self.tn

    @property
    def precision(self) -> float | None:
        """TP / (TP + FP); ``None`` when nothing is accepted."""
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    @property
    def recall(self) -> float | None:
        """TP / (TP + FN); ``None`` when nothing is acceptable."""
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None

    @property
    def f1_weighted(self) -> float:
        """F1 of each class weighted by its support (sklearn ``average="weighted"``; a class
        whose F1 is undefined counts as 0, as sklearn's default)."""
        f1_pos = _f1(self.tp, self.fp, self.fn)
        f1_neg = _f1(self.tn, self.fn, self.fp)
        pos, neg = self.tp + self.fn, self.tn + self.fp
        return (pos * f1_pos + neg * f1_neg) / (pos + neg) if pos + neg else 0.0

    def as_dict(self) -> dict:
        return {"tp": self.tp, "fp": self.fp, "fn": self.fn, "tn": self.tn}

    def matrix(self) -> np.ndarray:
        """[[TN, FP], [FN, TP]]: rows = truth (reject, accept), columns = decision, as
        ``sklearn.metrics.confusion_matrix(acceptable, accepted)``."""
        return np.array([[self.tn, self.fp], [self.fn, self.tp]])


def _f1(tp: int, fp: int, fn: int) -> float:
    return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0


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
        return (f"precision {_fmt(self.precision)}, recall {_fmt(self.recall)}, weighted F1 "
                f"{self.f1_weighted:.3f} on {self.n} images (TP {self.confusion.tp}, "
                f"FP {self.confusion.fp}, FN {self.confusion.fn}, TN {self.confusion.tn})")


def figures_at(scores, acceptable, threshold: float) -> Figures:
    """Figures of the rule ``score >= threshold`` against the truth ``acceptable``."""
    scores = _scores_array(scores)
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
    """Precision and recall of ``score >= t`` for every distinct score ``t``."""
    scores = _scores_array(scores)
    acceptable = np.asarray(acceptable, dtype=bool)
    if acceptable.shape != scores.shape:
        raise SemFocusError(f"{len(scores)} scores but {len(acceptable)} labels.")
    order = np.argsort(-scores, kind="stable")
    s, t = scores[order], acceptable[order]
    tp_cum, fp_cum = np.cumsum(t), np.cumsum(~t)
    last = np.r_[np.flatnonzero(s[1:] != s[:-1]), len(s) - 1]  # last index of each distinct score
    tp, fp = tp_cum[last], fp_cum[last]
    pos = int(t.sum())
    recall = tp / pos if pos else np.zeros(len(tp))
    return PRCurve(s[last].copy(), tp / (tp + fp), recall, tp, fp, pos, len(s))


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
    scores = _scores_array(scores)
    if len(scores) != len(truth):
        raise SemFocusError(f"{len(scores)} scores but {len(truth)} labels.")
    if len(scores) == 0:
        raise SemFocusError("calibration needs at least one image of each class; got none.")
    n_pos = int(truth.sum())
    if n_pos == 0 or n_pos == len(truth):
        which = "acceptable" if n_pos else "to be rejected"
        raise SemFocusError(
            f"calibration needs images of both classes, but all {len(truth)} are {which}"
            f"{_rule_text(rule)}."
        )
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


def _rule_text(rule: dict) -> str:
    if rule.get("kind") == "expert_score":
        return f" (expert score >= {rule['accept_score']:g})"
    return ""


def _scores_array(scores) -> np.ndarray:
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(s)):
        raise SemFocusError("model scores must be finite numbers (found NaN or infinity).")
    return s


def _fmt(v) -> str:
    return "n/a" if v is None else f"{v:.3f}"


# ---- labelled images from a manifest -------------------------------------------------------
def read_calibration_manifest(manifest, label_column: str = "label", group_column: str = "series"):
    """A calibration manifest (``path``, the label column, optional ``magnification`` and group
    column; paths relative to its folder) -> (plan for :func:`batch.score_files`, label texts,
    groups). A missing magnification comes from the file's metadata; a missing group is the
    file itself."""
    from .batch import read_manifest

    rows = read_manifest(manifest, required=("path",))  # labels stay text (words allowed)
    if label_column not in rows[0]:
        raise SemFocusError(f"manifest {manifest} lacks the column {label_column} (it needs "
                            f"path,{label_column}).")
    plan, labels, groups = [], [], []
    for line, row in enumerate(rows, start=2):
        text = str(row.get("magnification") or "").strip()
        mag = None
        if text:
            try:
                mag = float(text)
            except ValueError:
                mag = -1.0
            if not 0 < mag < float("inf"):
                raise SemFocusError(
                    f"manifest {manifest} line {line}: magnification {text!r} is not a positive "
                    "number.")
        label = str(row.get(label_column) or "").strip()
        if not label:
            raise SemFocusError(f"manifest {manifest} line {line} has an empty {label_column}.")
        plan.append((row["path"], Path(row["path"]), mag))
        labels.append(label)
        groups.append(str(row.get(group_column) or "").strip() or row["path"])
    return plan, labels, groups


def score_calibration_images(plan, scorer, region: str = "whole", batch_size: int = 32):
    """Generator: score each planned file (one 2-D image each) as ``semfocus score`` does
    (:func:`batch.score_files`), yield ``(files done, files total)`` after each, and return the
    :class:`~napari_semfocus.batch.ScoreRow` list (one per file)."""
    from .batch import score_files

    for shown, path, _ in plan:
        if not path.is_file():
            raise SemFocusError(f"{shown}: no such file.")

    def score_fn(data, mag, databar, name):
        return scorer.score(data, mag, region=region, batch_size=batch_size,
                            exclude_bottom_rows=databar, name=name)

    rows = []
    for item in plan:
        got = score_files([item], score_fn, need_magnification=scorer.needs_magnification)
        if len(got) != 1:
            raise SemFocusError(
                f"{item[0]}: holds {len(got)} slices; calibration needs one label per image "
                "(save the slices as separate files).")
        rows.extend(got)
        yield len(rows), len(plan)
    return rows


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
    scores = _scores_array(scores)
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


# ---- the model a gate belongs to ----------------------------------------------------------
_HASHES: dict = {}


def file_sha256(path) -> str:
    """SHA-256 of a file (remembered per path, size and modification time)."""
    path = Path(path)
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _HASHES:
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        _HASHES[key] = h.hexdigest()
    return _HASHES[key]


def model_fingerprint(scorer) -> dict:
    """``{"name", "sha256", "hash_of"}`` of a :class:`~napari_semfocus.scorer.FocusScorer`:
    the SHA-256 of its checkpoint file, or of its metadata when it was not loaded from a file."""
    path = scorer.metadata.get("checkpoint_path")
    if path and Path(path).is_file():
        return {"name": scorer.name, "sha256": file_sha256(path), "hash_of": "file"}
    meta = {k: v for k, v in scorer.metadata.items() if k != "checkpoint_path"}
    text = json.dumps(meta, sort_keys=True, default=str)
    return {"name": scorer.name, "sha256": hashlib.sha256(text.encode()).hexdigest(),
            "hash_of": "metadata"}


def checkpoint_fingerprint(path=None) -> dict:
    """Fingerprint of a checkpoint file (``None``: the shipped default model) without loading
    the model."""
    from .scorer import default_model_path

    path = Path(path) if path is not None else default_model_path()
    if not path.is_file():
        raise SemFocusError(f"checkpoint {path} does not exist.")
    return {"name": path.name, "sha256": file_sha256(path), "hash_of": "file"}


# ---- the gate record -------------------------------------------------------------------------
_REQUIRED = {
    "format": str, "format_version": int, "threshold": float, "target_precision": float,
    "target_reached": bool, "rule": str, "model": dict, "accept_rule": dict, "calibration": dict,
    "created": str,
}
_MODEL_REQUIRED = {"name": str, "sha256": str}


@dataclass
class Gate:
    """A threshold on the focus score for one model, with how it was calibrated."""

    threshold: float
    target_precision: float
    model: dict
    accept_rule: dict
    calibration: dict
    target_reached: bool = True
    region: str = "whole"
    held_out: dict | None = None
    created: str = ""
    source: str | None = None
    pr_curve: dict | None = None  # {"thresholds", "precision", "recall"}: lists, one per point
    path: Path | None = field(default=None, compare=False)

    # -- construction --
    @classmethod
    def from_calibration(cls, calibration: Calibration, scorer=None, model: dict | None = None,
                         region: str = "whole", source: str | None = None,
                         held_out: dict | None = None) -> Gate:
        """A gate for ``scorer`` (or an explicit ``model`` fingerprint) from a calibration."""
        if model is None:
            if scorer is None:
                raise SemFocusError("a gate needs the model it belongs to (scorer or model).")
            model = model_fingerprint(scorer)
            path = scorer.metadata.get("checkpoint_path")
            if path:
                model["checkpoint_path"] = str(Path(path).resolve())
        return cls(threshold=calibration.threshold, target_precision=calibration.target_precision,
                   model=dict(model), accept_rule=dict(calibration.accept_rule),
                   calibration=calibration.figures.as_dict(),
                   target_reached=calibration.target_reached, region=region, held_out=held_out,
                   created=_dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
                   source=source, pr_curve=curve_record(calibration.curve))

    # -- decisions --
    def apply(self, scores) -> np.ndarray:
        """True (accepted) where ``score >= threshold``, per score."""
        return _scores_array(scores) >= self.threshold

    def figures(self, scores, acceptable) -> Figures:
        """The gate's figures on other labelled images."""
        return figures_at(scores, acceptable, self.threshold)

    def check_model(self, fingerprint: dict, where: str | None = None) -> None:
        """Raise :class:`SemFocusError` unless ``fingerprint`` is the model of this gate."""
        if fingerprint.get("sha256") != self.model.get("sha256"):
            raise SemFocusError(
                f"gate file {where or self.path or '(unsaved)'} was calibrated for the model "
                f"{self.model.get('name')} ({self.model.get('sha256', '')[:12]}), not "
                f"{fingerprint.get('name')} ({fingerprint.get('sha256', '')[:12]}) used now: "
                "calibrate a gate for this model or use the gate's model."
            )

    # -- files --
    def to_dict(self) -> dict:
        from . import __version__

        out = {"format": GATE_FORMAT, "format_version": GATE_FORMAT_VERSION,
               "threshold": float(self.threshold), "rule": RULE,
               "target_precision": float(self.target_precision),
               "target_reached": bool(self.target_reached), "model": dict(self.model),
               "region": self.region, "accept_rule": dict(self.accept_rule),
               "calibration": dict(self.calibration), "created": self.created,
               "napari_semfocus_version": __version__}
        if self.source:
            out["calibration_source"] = self.source
        if self.held_out is not None:
            out["held_out"] = dict(self.held_out)
        if self.pr_curve is not None:
            out["pr_curve"] = self.pr_curve
        return out

    def save(self, path) -> Path:
        """Write the gate as JSON (atomically)."""
        from .checkpoint import atomic_write

        path = Path(path)
        text = json.dumps(self.to_dict(), indent=2) + "\n"
        atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
        self.path = path
        return path

    @classmethod
    def load(cls, path, scorer=None, fingerprint: dict | None = None) -> Gate:
        """Read a gate file; with ``scorer`` (or its ``fingerprint``) also check that the gate
        belongs to that model. Raises :class:`SemFocusError` with one sentence on any problem."""
        path = Path(path)
        if not path.is_file():
            raise SemFocusError(f"gate file {path} does not exist.")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError:
            raise SemFocusError(f"gate file {path} is not a text (JSON) file.") from None
        except json.JSONDecodeError as exc:
            raise SemFocusError(
                f"gate file {path} is not valid JSON ({exc.msg} at line {exc.lineno} "
                f"column {exc.colno})."
            ) from None
        gate = cls.from_dict(data, where=str(path))
        gate.path = path
        if scorer is not None and fingerprint is None:
            fingerprint = model_fingerprint(scorer)
        if fingerprint is not None:
            gate.check_model(fingerprint, str(path))
        return gate

    @classmethod
    def from_dict(cls, data, where: str = "(gate)") -> Gate:
        """A gate from its JSON object, checked key by key."""
        if not isinstance(data, dict):
            raise SemFocusError(
                f"gate file {where} holds a JSON {type(data).__name__}, not a gate (a JSON object).")
        if data.get("format") != GATE_FORMAT:
            raise SemFocusError(
                f"gate file {where} is not a napari-semfocus gate (format "
                f"{data.get('format')!r}, expected {GATE_FORMAT!r}).")
        missing = [k for k in _REQUIRED if k not in data]
        missing += [f"model.{k}" for k in _MODEL_REQUIRED
                    if isinstance(data.get("model"), dict) and k not in data["model"]]
        if missing:
            raise SemFocusError(f"gate file {where} lacks the key(s) {', '.join(missing)}.")
        for key, kind in _REQUIRED.items():
            _check_type(data[key], kind, key, where)
        for key, kind in _MODEL_REQUIRED.items():
            _check_type(data["model"][key], kind, f"model.{key}", where)
        if data["format_version"] > GATE_FORMAT_VERSION:
            raise SemFocusError(
                f"gate file {where} has format version {data['format_version']}, newer than this "
                f"napari-semfocus reads ({GATE_FORMAT_VERSION}); please upgrade.")
        if not math.isfinite(data["threshold"]):
            raise SemFocusError(f"gate file {where}: threshold must be a finite number.")
        if not 0 < data["target_precision"] <= 1:
            raise SemFocusError(
                f"gate file {where}: target_precision must be in (0, 1], got "
                f"{data['target_precision']!r}.")
        if data["rule"] != RULE:
            raise SemFocusError(
                f"gate file {where} has the rule {data['rule']!r}; this version applies "
                f"only {RULE!r}.")
        region = data.get("region", "whole")
        from .preprocess import REGIONS

        if region not in REGIONS:
            raise SemFocusError(
                f"gate file {where}: region must be one of {', '.join(REGIONS)}, got {region!r}.")
        curve = data.get("pr_curve")
        if curve is not None and not _valid_curve(curve):
            raise SemFocusError(
                f"gate file {where}: pr_curve must hold equally long lists of numbers "
                "thresholds, precision and recall.")
        return cls(threshold=float(data["threshold"]),
                   target_precision=float(data["target_precision"]), model=dict(data["model"]),
                   accept_rule=dict(data["accept_rule"]), calibration=dict(data["calibration"]),
                   target_reached=bool(data["target_reached"]), region=region,
                   held_out=data.get("held_out"), created=data["created"],
                   source=data.get("calibration_source"), pr_curve=curve)

    def summary(self) -> str:
        cal = self.calibration
        flag = "" if self.target_reached else " (target NOT reached: best effort)"
        return (f"threshold {self.threshold:.4f} (target precision {self.target_precision:g}"
                f"{flag}) for {self.model.get('name')}; on {cal.get('n')} calibration images: "
                f"precision {_fmt(cal.get('precision'))}, recall {_fmt(cal.get('recall'))}, "
                f"weighted F1 {_fmt(cal.get('f1_weighted'))}")


MAX_CURVE_POINTS = 1000


def curve_record(curve: PRCurve) -> dict:
    """The curve for the gate file (4 decimals; at most ``MAX_CURVE_POINTS`` points)."""
    idx = np.arange(len(curve.thresholds))
    if len(idx) > MAX_CURVE_POINTS:
        idx = np.unique(np.linspace(0, len(idx) - 1, MAX_CURVE_POINTS).round().astype(int))
    return {key: [round(float(v), 4) for v in getattr(curve, key)[idx]]
            for key in ("thresholds", "precision", "recall")}


def _valid_curve(curve) -> bool:
    if not isinstance(curve, dict):
        return False
    lists = [curve.get(k) for k in ("thresholds", "precision", "recall")]
    return (all(isinstance(v, list) for v in lists) and len({len(v) for v in lists}) == 1
            and all(isinstance(x, int | float) and not isinstance(x, bool)
                    for v in lists for x in v))


def _check_type(value, kind, key, where) -> None:
    names = {str: "a string", int: "an integer", float: "a number", bool: "true or false",
             dict: "an object"}
    if kind is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, kind)
    if not ok:
        raise SemFocusError(f"gate file {where}: {key} must be {names[kind]}, got {value!r}.")


def resolve_checkpoint(gate: Gate, checkpoint=None):
    """The checkpoint to score with for ``gate``: ``checkpoint`` when given (checked to be the
    gate's model), else the shipped default model when it is the gate's model, else the file
    the gate was calibrated with, when it is still there and unchanged. Returns a path, or
    ``None`` for the default model; raises :class:`SemFocusError` when none fits."""
    from .scorer import default_model_path

    if checkpoint is not None:
        gate.check_model(checkpoint_fingerprint(checkpoint))
        return Path(checkpoint)
    default = default_model_path()
    if default.is_file() and file_sha256(default) == gate.model.get("sha256"):
        return None
    recorded = gate.model.get("checkpoint_path")
    if recorded and Path(recorded).is_file() and file_sha256(recorded) == gate.model["sha256"]:
        return Path(recorded)
    raise SemFocusError(
        f"gate file {gate.path or '(unsaved)'} was calibrated for the model "
        f"{gate.model.get('name')}, which is neither the shipped default model nor found at "
        f"{recorded or 'a recorded path'}: pass its checkpoint file."
    )


# ---- decisions as CSV ------------------------------------------------------------------------
DECISION_COLUMNS = ("path", "index", "magnification", "score", "accepted")


def decisions_csv(rows, accepted) -> str:
    """CSV ``path,index,magnification,score,accepted``: the columns of ``semfocus score``
    (``index`` = slice, 0 for a 2-D image) and ``accepted`` 1 or 0; ``rows`` are
    :class:`~napari_semfocus.batch.ScoreRow`."""
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(DECISION_COLUMNS)
    for row, ok in zip(rows, np.asarray(accepted, dtype=bool), strict=True):
        w.writerow(row.as_csv() + [int(ok)])
    return buf.getvalue()


# ---- the precision-recall plot ---------------------------------------------------------------
def plot_pr_curve(source, path=None, title: str | None = None,
                  held_out: Figures | None = None, figure=None, dark: bool = False,
                  compact: bool = False):
    """Precision against recall with the gate's point and the target precision marked, of a
    :class:`Calibration` or a :class:`Gate` (its recorded curve); written as PNG to ``path`` when
    given (matplotlib's Agg backend, no display). ``figure``: draw into this matplotlib figure
    (e.g. a widget's canvas); ``compact``: small fonts, no title. Returns the figure."""
    from matplotlib.figure import Figure

    if isinstance(source, Calibration):
        f = source.figures
        recall, precision = source.curve.recall, source.curve.precision
        n, n_acc = source.curve.n, source.curve.n_acceptable
        point = (f.recall, f.precision, f.f1_weighted)
    else:
        cal = source.calibration
        curve = source.pr_curve or {"recall": [], "precision": []}
        recall, precision = np.asarray(curve["recall"]), np.asarray(curve["precision"])
        n, n_acc = cal.get("n") or 0, cal.get("n_acceptable") or 0
        point = (cal.get("recall"), cal.get("precision"), cal.get("f1_weighted"))
    target, threshold = source.target_precision, source.threshold
    fg, bg = ("#d6d6d6", "#262930") if dark else ("#202020", "#ffffff")
    fig = figure if figure is not None else Figure(figsize=(5.6, 4.2), dpi=120)
    fig.clear()
    fig.set_facecolor(bg)
    ax = fig.add_subplot(1, 1, 1)
    ax.set_facecolor(bg)
    if len(recall):
        ax.plot(recall, precision, color="#3b82f6", linewidth=1.6,
                label="calibration images (one point per threshold)")
    ax.axhline(target, color="#ef4444", linestyle="--", linewidth=1,
               label=f"target precision {target:g}")
    if point[0] is not None and point[1] is not None:
        ax.plot([point[0]], [point[1]], marker="o", markersize=9, color="#f59e0b",
                markeredgecolor=fg, linestyle="none",
                label=f"gate: score >= {threshold:.2f}\n"
                      f"P {point[1]:.3f}, R {point[0]:.3f}, wF1 {point[2]:.3f}")
    if held_out is not None and held_out.precision is not None:
        ax.plot([held_out.recall], [held_out.precision], marker="s", markersize=8,
                color="#10b981", markeredgecolor=fg, linestyle="none",
                label=f"held out: P {held_out.precision:.3f}, R {held_out.recall:.3f}, "
                      f"wF1 {held_out.f1_weighted:.3f}")
    lows = [n_acc / n if n else 0.0, target] + ([float(np.min(precision))] if len(precision) else [])
    if held_out is not None and held_out.precision is not None:
        lows.append(held_out.precision)
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(max(0.0, min(lows) - 0.05), 1.01)
    small = 7 if compact else 9
    ax.set_xlabel("recall" if compact else "recall (acceptable images accepted)", color=fg,
                  fontsize=small)
    ax.set_ylabel("precision" if compact else "precision (accepted images acceptable)",
                  color=fg, fontsize=small)
    for spine in ax.spines.values():
        spine.set_color(fg)
    ax.tick_params(colors=fg, labelsize=small)
    ax.grid(alpha=0.25)
    legend = ax.legend(loc="lower left", fontsize=6 if compact else 8, facecolor=bg,
                       edgecolor=fg, framealpha=0.85)
    for text in legend.get_texts():
        text.set_color(fg)
    if not compact:
        ax.set_title(title or f"Precision-recall of the focus score ({n} images, "
                              f"{n_acc} acceptable)", color=fg, fontsize=10)
    fig.tight_layout()
    if path is not None:
        from .checkpoint import atomic_write

        atomic_write(Path(path), lambda tmp: fig.savefig(tmp, format="png", facecolor=bg))
    return fig
