"""Acceptance gate, the record: the :class:`Gate` (threshold, target, the model it belongs to,
how it was calibrated) as a JSON file, read back with one-sentence errors, and the checkpoint to
score with for a gate. A gate names its model by the SHA-256 of the checkpoint file
(:func:`napari_semfocus.scoring.checkpoint.model_fingerprint`).

The threshold is chosen in :mod:`.calibrate`.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import __version__
from ..errors import SemFocusError
from ..io.files import file_sha256, write_text
from ..scoring.checkpoint import checkpoint_fingerprint, default_model_path, model_fingerprint
from ..scoring.preprocess import REGIONS
from .calibrate import Calibration, Figures, PRCurve, figures_at, format_figure, scores_array

GATE_FORMAT = "napari-semfocus-gate"
GATE_FORMAT_VERSION = 1
RULE = "accepted when score >= threshold"


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
            model = gate_model_record(scorer)
        return cls(threshold=calibration.threshold, target_precision=calibration.target_precision,
                   model=dict(model), accept_rule=dict(calibration.accept_rule),
                   calibration=calibration.figures.as_dict(),
                   target_reached=calibration.target_reached, region=region, held_out=held_out,
                   created=_dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
                   source=source, pr_curve=curve_record(calibration.curve))

    # -- decisions --
    def apply(self, scores) -> np.ndarray:
        """True (accepted) where ``score >= threshold``, per score."""
        return scores_array(scores) >= self.threshold

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
        path = write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")
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
                f"precision {format_figure(cal.get('precision'))}, recall "
                f"{format_figure(cal.get('recall'))}, "
                f"weighted F1 {format_figure(cal.get('f1_weighted'))}")


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
