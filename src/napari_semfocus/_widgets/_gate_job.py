"""The work behind the Acceptance gate widget, as a generator for ``napari.qt.threading``, and
the plain data it reads and writes (no Qt).

:func:`gate_job` takes a :class:`CalibrateSettings` or :class:`ApplySettings` snapshot, yields
the ``Status`` / ``Progress`` updates of :mod:`._score_job`, checks a cancel flag between steps
and returns a :class:`CalibrateResult` or :class:`ApplyResult`. Calibrating scores the manifest's
images as ``semfocus gate calibrate`` does (:mod:`napari_semfocus.gate_labels`); applying scores
layers with the Score focus worker (:func:`~._score_job.score_layers`) unless their stored scores
are reused. Also here: which stored scores may be reused, what goes into the layer's metadata,
and the decisions as CSV.
"""

from __future__ import annotations

import threading
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import SemFocusError
from ..gate.calibrate import Calibration
from ..gate.file import RULE, Gate
from ._common import MODEL_METHOD, LayerInput, RunResult, ScoreSettings
from ._score_job import CANCELLED, Status, drive_steps, load_method, score_layers

METADATA_KEY = "semfocus_gate"


# ---- what the worker gets and returns ---------------------------------------------------------
@dataclass(frozen=True)
class CalibrateSettings:
    manifest: str
    target_precision: float
    accept_score: float
    label_column: str
    checkpoint: str | None
    device: str = "auto"
    region: str = "whole"
    batch_size: int = 32


@dataclass(frozen=True)
class ApplySettings:
    gate: Gate
    layers: tuple[LayerInput, ...]
    reused: tuple  # per layer: stored scores (np.ndarray) or None = score it
    checkpoint: str | None
    device: str = "auto"
    batch_size: int = 32


@dataclass
class CalibrateResult:
    settings: CalibrateSettings
    calibration: Calibration | None = None
    model: dict = field(default_factory=dict)
    model_name: str = ""
    device_name: str = ""
    cancelled: bool = False


@dataclass
class LayerDecisions:
    """Scores and decisions of one layer (one per slice)."""

    layer_name: str
    scores: np.ndarray
    accepted: np.ndarray
    magnification: float | None
    path: str | None
    scores_from: str  # "scored" or "layer metadata"
    databar_rows: int = 0

    @property
    def rejected_slices(self) -> list[int]:
        return [int(i) for i in np.flatnonzero(~self.accepted)]


@dataclass
class ApplyResult:
    settings: ApplySettings
    layers: list[LayerDecisions] = field(default_factory=list)
    model_name: str = ""
    device_name: str = ""
    cancelled: bool = False


# ---- the worker -------------------------------------------------------------------------------
def gate_job(settings, cancel: threading.Event):
    """The worker: calibrate from a manifest, or apply a gate to layers."""
    if isinstance(settings, CalibrateSettings):
        return (yield from _calibrate_job(settings, cancel))
    return (yield from _apply_job(settings, cancel))


def _calibrate_job(s: CalibrateSettings, cancel) -> Generator:
    from ..gate.calibrate import calibrate
    from ..gate.file import gate_model_record
    from ..gate.labels import (
        labels_from_column,
        read_calibration_manifest,
        score_calibration_images,
    )

    result = CalibrateResult(settings=s)
    plan, texts, _groups = read_calibration_manifest(s.manifest, s.label_column)
    try:
        acceptable, rule = labels_from_column(texts, s.accept_score, s.label_column)
    except SemFocusError as exc:
        raise SemFocusError(f"manifest {s.manifest}: {exc}") from None
    scorer = yield from load_method(MODEL_METHOD, s.checkpoint, s.device, result)
    steps = score_calibration_images(plan, scorer, s.region, s.batch_size)
    rows = yield from drive_steps(steps, cancel, Path(s.manifest).name, 0, 1)
    if rows is CANCELLED:
        result.cancelled = True
        return result
    yield Status(f"choosing the threshold for precision {s.target_precision:g}…")
    result.calibration = calibrate([r.score for r in rows], acceptable=acceptable,
                                   target_precision=s.target_precision, accept_rule=rule)
    result.model = gate_model_record(scorer)
    return result


def _apply_job(s: ApplySettings, cancel) -> Generator:
    from ..gate.file import model_fingerprint
    from ._score_job import get_scorer

    result = ApplyResult(settings=s)
    fresh = {}
    to_score = tuple(layer for layer, r in zip(s.layers, s.reused, strict=True) if r is None)
    if to_score:
        yield Status("loading the gate's focus model…")
        s.gate.check_model(model_fingerprint(get_scorer(s.checkpoint, s.device)))
        run: RunResult = yield from score_layers(
            ScoreSettings(layers=to_score, method=MODEL_METHOD, checkpoint=s.checkpoint,
                          device=s.device, region=s.gate.region, batch_size=s.batch_size), cancel)
        result.model_name, result.device_name = run.model_name, run.device_name
        if run.cancelled:
            result.cancelled = True
            return result
        fresh = {r.layer_name: r.scores for r in run.layers}
    else:
        result.model_name = s.gate.model.get("name", "")
    for layer, reused in zip(s.layers, s.reused, strict=True):
        scores = np.asarray(reused if reused is not None else fresh[layer.name], dtype=np.float64)
        result.layers.append(LayerDecisions(
            layer.name, scores, s.gate.apply(scores), layer.magnification, layer.path,
            "scored" if reused is None else "layer metadata", layer.databar_rows))
    return result


# ---- layer metadata and CSV -------------------------------------------------------------------
def stored_scores(metadata, gate: Gate, n_slices: int):
    """Scores in ``metadata["semfocus"]`` made by the gate's model (same model name, SHA-256
    where recorded, region, one per slice), else None."""
    stored = (metadata or {}).get("semfocus") or {}
    scores = stored.get("scores")
    if (stored.get("method") != MODEL_METHOD or scores is None
            or stored.get("model") != gate.model.get("name")
            or stored.get("region", "whole") != gate.region
            or len(scores) != n_slices):
        return None
    sha = stored.get("model_sha256")
    if sha is not None and sha != gate.model.get("sha256"):
        return None
    return np.asarray(scores, dtype=np.float64)


def layer_metadata(metadata, res: LayerDecisions, result: ApplyResult) -> dict:
    """A copy of a layer's metadata with ``metadata["semfocus_gate"]`` (and
    ``metadata["semfocus"]`` when freshly scored, as Score focus writes it)."""
    gate = result.settings.gate
    meta = dict(metadata or {})
    meta[METADATA_KEY] = {
        "accepted": [bool(v) for v in res.accepted],
        "rejected_slices": res.rejected_slices,
        "scores": [float(v) for v in res.scores],
        "threshold": gate.threshold,
        "target_precision": gate.target_precision,
        "rule": RULE,
        "gate_file": str(gate.path) if gate.path else None,
        "model": gate.model.get("name"),
        "model_sha256": gate.model.get("sha256"),
        "region": gate.region,
        "scores_from": res.scores_from,
    }
    if res.scores_from == "scored":
        meta["semfocus"] = {
            "scores": [float(v) for v in res.scores],
            "best_index": int(np.argmax(res.scores)),
            "method": MODEL_METHOD,
            "model": result.model_name,
            "model_sha256": gate.model.get("sha256"),
            "score_scale": "focus score 0-10",
            "magnification": res.magnification,
            "region": gate.region,
            "device": result.device_name,
            "databar_rows_excluded": res.databar_rows,
        }
    return meta


def decisions_text(results) -> str:
    """The decisions of ``results`` (:class:`LayerDecisions`) as the CLI's CSV; ``path`` is the
    layer's file, or its name."""
    from ..gate.file import decisions_csv
    from ..scoring.batch import ScoreRow

    rows, accepted = [], []
    for res in results:
        for i, score in enumerate(res.scores):
            rows.append(ScoreRow(res.path or res.layer_name, i, res.magnification, float(score)))
            accepted.append(bool(res.accepted[i]))
    return decisions_csv(rows, accepted)
