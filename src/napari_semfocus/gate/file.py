"""Acceptance gate, the record: the :class:`Gate` (threshold, target, the model it belongs to,
how it was calibrated) as a JSON file, read back with one-sentence errors, and the checkpoint to
score with for a gate. A gate names its model by the SHA-256 of the checkpoint file
(:func:`napari_semfocus.scoring.checkpoint.model_fingerprint`).

The threshold is chosen in :mod:`.calibrate`. A gate compares one score per image or slice with
its threshold, by its *rule*: ``whole`` (the whole-frame score) or ``worst-region`` (the score
of the frame's worst informative region, :func:`napari_semfocus.scoring.aggregate.worst_region_score`,
which rejects a frame that is partly out of focus). The rule is written into the file as the
sentence ``"accepted when <score> >= threshold"``; files written before the worst-region rule hold
the whole-score sentence.

A gate file edited by hand after calibration is refused on loading. Since format version 2 the
file carries ``signature``: the SHA-256 of its canonical JSON (keys sorted, no spaces) without
the keys that do not change what the threshold means (:data:`UNSIGNED_KEYS`: the path of the
model file, the calibration source, the signature itself), so an edit of the threshold, rule,
region, model, accept rule, figures or curve is refused (:func:`check_signature`). And its
threshold must be a point of the precision-recall curve stored with it, with the stored
precision and recall of the calibration (:func:`check_calibrated_threshold`): the one check
files of version 1, which are not signed, get (they load with a warning). Version 3 adds the
optional, signed ``review`` entry (the review band's figures, :mod:`.review`); version 2 files
load as before, without it.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import __version__
from ..errors import SemFocusError, SemFocusWarning
from ..io.files import existing_file, file_sha256, write_text
from ..scoring.checkpoint import checkpoint_fingerprint, default_model_path, model_fingerprint
from ..scoring.preprocess import REGIONS
from .calibrate import Calibration, Figures, PRCurve, figures_at, format_figure, scores_array

GATE_FORMAT = "napari-semfocus-gate"
GATE_FORMAT_VERSION = 3  # 2: signed (the signature key); 3: the review band's figures (review)
SIGNATURE_KEY = "signature"
# keys left out of the signature: edits that do not change what the threshold means (moving the
# model file, which the gate names by its SHA-256; a note on where the labels came from)
UNSIGNED_KEYS = (SIGNATURE_KEY, "calibration_source", "model.checkpoint_path")
SCORE_RULES = ("whole", "worst-region")  # which score of a frame the gate compares
RULE_SCORES = {"whole": "score", "worst-region": "worst_region"}  # their CSV columns
RULE_TEXTS = {rule: f"accepted when {score} >= threshold" for rule, score in RULE_SCORES.items()}
RULE_LABELS = {"whole": "whole score", "worst-region": "worst region"}


def check_score_rule(rule) -> str:
    """``rule`` when it is one of :data:`SCORE_RULES`, else :class:`SemFocusError`."""
    if rule not in SCORE_RULES:
        raise SemFocusError(f"gate rule {rule!r} is not one of {', '.join(SCORE_RULES)}.")
    return rule


def gated_scores(rule: str, scores, worst_region):
    """What a gate of ``rule`` compares with its threshold: ``scores`` (whole frames) or
    ``worst_region`` (one per frame; :class:`SemFocusError` when there is none)."""
    if check_score_rule(rule) == "whole":
        return scores
    if worst_region is None:
        raise SemFocusError("the worst-region rule needs the model's worst-region scores, "
                            "which a classical measure does not give.")
    return worst_region


# ---- the model a gate belongs to ----------------------------------------------------------
def gate_model_record(scorer) -> dict:
    """The ``model`` entry of a gate file: :func:`model_fingerprint` plus the absolute path of
    the checkpoint file, when the scorer was loaded from one."""
    model = model_fingerprint(scorer)
    path = scorer.metadata.get("checkpoint_path")
    if path:
        model["checkpoint_path"] = str(Path(path).resolve())
    return model


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
    score_rule: str = "whole"  # one of SCORE_RULES
    review: dict | None = None  # the review band's figures (gate.review.review_record)
    path: Path | None = field(default=None, compare=False)

    # -- construction --
    @classmethod
    def from_calibration(cls, calibration: Calibration, scorer=None, model: dict | None = None,
                         region: str = "whole", source: str | None = None,
                         held_out: dict | None = None, score_rule: str = "whole",
                         review: dict | None = None) -> Gate:
        """A gate for ``scorer`` (or an explicit ``model`` fingerprint) from a calibration of
        the scores ``score_rule`` compares."""
        if model is None:
            if scorer is None:
                raise SemFocusError("a gate needs the model it belongs to (scorer or model).")
            model = gate_model_record(scorer)
        return cls(threshold=calibration.threshold, target_precision=calibration.target_precision,
                   model=dict(model), accept_rule=dict(calibration.accept_rule),
                   calibration=calibration.figures.as_dict(),
                   target_reached=calibration.target_reached, region=region, held_out=held_out,
                   created=_dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
                   source=source, pr_curve=curve_record(calibration.curve, calibration.threshold),
                   score_rule=check_score_rule(score_rule), review=review)

    # -- decisions --
    def apply(self, scores) -> np.ndarray:
        """True (accepted) where ``score >= threshold``, per score (the scores of the rule)."""
        return scores_array(scores) >= self.threshold

    def decide(self, scores, worst_region=None) -> np.ndarray:
        """Accepted or not, per frame, from its whole score and worst region by the rule."""
        return self.apply(gated_scores(self.score_rule, scores, worst_region))

    @property
    def rule_text(self) -> str:
        """``"accepted when score >= threshold"`` or ``"... worst_region >= ..."``."""
        return RULE_TEXTS[self.score_rule]

    @property
    def rule_score(self) -> str:
        """The CSV column the rule compares: "score" or "worst_region"."""
        return RULE_SCORES[self.score_rule]

    @property
    def rule_label(self) -> str:
        """What the rule compares, in words: "whole score" or "worst region"."""
        return RULE_LABELS[self.score_rule]

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
        out = {"format": GATE_FORMAT, "format_version": GATE_FORMAT_VERSION,
               "threshold": float(self.threshold), "rule": self.rule_text,
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
        if self.review is not None:
            out["review"] = self.review
        out[SIGNATURE_KEY] = signature(out)
        return out

    def save(self, path) -> Path:
        """Write the gate as JSON (atomically)."""
        path = write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")
        self.path = path
        return path

    @classmethod
    def load(cls, path, scorer=None, fingerprint: dict | None = None) -> Gate:
        """Read a gate file; with ``scorer`` (or its ``fingerprint``) also check that the gate
        belongs to that model. Raises :class:`SemFocusError` with one sentence on any problem."""
        path = existing_file(path, "gate file")
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
        rules = {text: rule for rule, text in RULE_TEXTS.items()}
        if data["rule"] not in rules:
            raise SemFocusError(
                f"gate file {where} has the rule {data['rule']!r}; this version applies "
                f"only {' or '.join(repr(t) for t in rules)}.")
        region = data.get("region", "whole")
        if region not in REGIONS:
            raise SemFocusError(
                f"gate file {where}: region must be one of {', '.join(REGIONS)}, got {region!r}.")
        curve = data.get("pr_curve")
        if curve is not None and not _valid_curve(curve):
            raise SemFocusError(
                f"gate file {where}: pr_curve must hold equally long lists of numbers "
                "thresholds, precision and recall.")
        if curve is not None:
            check_calibrated_threshold(data["threshold"], curve, data["calibration"], where)
        check_signature(data, where)
        if not isinstance(data.get("review", {}), dict):
            raise SemFocusError(f"gate file {where}: review must be an object.")
        return cls(threshold=float(data["threshold"]),
                   target_precision=float(data["target_precision"]), model=dict(data["model"]),
                   accept_rule=dict(data["accept_rule"]), calibration=dict(data["calibration"]),
                   target_reached=bool(data["target_reached"]), region=region,
                   held_out=data.get("held_out"), created=data["created"],
                   source=data.get("calibration_source"), pr_curve=curve,
                   score_rule=rules[data["rule"]], review=data.get("review"))

    def summary(self) -> str:
        cal = self.calibration
        flag = "" if self.target_reached else " (target NOT reached: best effort)"
        return (f"threshold {self.threshold:.4f} on the {self.rule_label} (target precision {self.target_precision:g}"
                f"{flag}) for {self.model.get('name')}; on {cal.get('n')} calibration images: "
                f"precision {format_figure(cal.get('precision'))}, recall "
                f"{format_figure(cal.get('recall'))}, "
                f"weighted F1 {format_figure(cal.get('f1_weighted'))}")


MAX_CURVE_POINTS = 1000


CURVE_DECIMALS = 4


def curve_record(curve: PRCurve, threshold: float | None = None) -> dict:
    """The curve for the gate file (4 decimals; at most ``MAX_CURVE_POINTS`` points, always
    with the point of ``threshold``)."""
    idx = np.arange(len(curve.thresholds))
    if len(idx) > MAX_CURVE_POINTS:
        idx = np.linspace(0, len(idx) - 1, MAX_CURVE_POINTS).round().astype(int)
        if threshold is not None:
            idx = np.append(idx, np.flatnonzero(curve.thresholds == threshold))
        idx = np.unique(idx)
    return {key: [round(float(v), CURVE_DECIMALS) for v in getattr(curve, key)[idx]]
            for key in ("thresholds", "precision", "recall")}


def check_calibrated_threshold(threshold: float, curve: dict, calibration: dict, where) -> None:
    """Refuse a threshold that is not the calibrated one: it must be a point of the stored
    precision-recall curve (to the curve's 4 decimals) whose precision and recall are the
    calibration's. A hand-edited threshold (e.g. -5, which accepts everything) is not."""
    tol = 0.5 * 10.0 ** -CURVE_DECIMALS + 1e-9
    want = [calibration.get(k) for k in ("precision", "recall")]
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in want):
        points = zip(curve["thresholds"], curve["precision"], curve["recall"], strict=True)
        if any(abs(t - threshold) <= tol and abs(p - want[0]) <= tol and abs(r - want[1]) <= tol
               for t, p, r in points):
            return
    raise SemFocusError(
        f"gate file {where}: threshold {threshold:g} is not the calibrated one (no point of its "
        "precision-recall curve has it with the calibration's precision and recall), so the file "
        "was edited by hand; calibrate the gate again.")


def signature(data: dict) -> str:
    """SHA-256 of the canonical JSON of a gate record (keys sorted, no spaces, ASCII) without
    :data:`UNSIGNED_KEYS`."""
    signed = {k: v for k, v in data.items() if k not in UNSIGNED_KEYS}
    if isinstance(signed.get("model"), dict):
        signed["model"] = {k: v for k, v in signed["model"].items()
                           if f"model.{k}" not in UNSIGNED_KEYS}
    text = json.dumps(signed, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def check_signature(data: dict, where) -> None:
    """Refuse a signed gate record whose signature is not its own (an edit of a field that
    changes what the threshold means); a record of format version 1 (unsigned) loads with a
    warning that only its threshold could be checked."""
    if data["format_version"] < 2:
        warnings.warn(SemFocusWarning(
            f"gate file {where} is of format version {data['format_version']}, which is not "
            "signed: only its threshold is checked against its curve; calibrate the gate again "
            "to have every field checked."), stacklevel=3)
        return
    stored = data.get(SIGNATURE_KEY)
    if not isinstance(stored, str):
        raise SemFocusError(f"gate file {where} lacks its signature (format version "
                            f"{data['format_version']} files are signed); calibrate the gate "
                            "again.")
    if signature(data) != stored:
        raise SemFocusError(
            f"gate file {where} does not match its signature, so it was edited after "
            "calibration (threshold, rule, region, model, accept rule, figures or curve); "
            "calibrate the gate again.")


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
