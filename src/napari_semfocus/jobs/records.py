"""What the widgets write into a layer's ``metadata`` (plain dicts, no Qt), with one set of keys:

- ``metadata["semfocus"]`` (:func:`scores_record`): the scores of the layer's slices and how they
  were made, written by Score focus and by the Acceptance gate when it scores a layer;
  :func:`stored_scores` reads them back for a gate (same model file, region and slices; the
  worst regions too for a worst-region gate).
- ``metadata["semfocus_gate"]`` (:func:`gate_record`): the gate's decisions.

The pixels of a layer are never changed.
"""

from __future__ import annotations

import numpy as np

from ..gate.file import Gate
from .score import MODEL_METHOD, ImageScores, ScoreRun

SCORES_KEY = "semfocus"
GATE_KEY = "semfocus_gate"


def scores_record(res: ImageScores, run: ScoreRun) -> dict:
    """``metadata["semfocus"]`` of a scored image: scores, their interval (``score_low`` /
    ``score_high`` per slice and its ``interval_level``; None without one), the worst
    informative region per slice (None for a classical measure), best slice, method, model (name and SHA-256 of its
    file), scale, magnification, region, device, data-bar rows left out."""
    method = run.settings.method
    model = method == MODEL_METHOD
    return {
        "scores": [float(v) for v in res.scores],
        "score_low": None if res.low is None else [float(v) for v in res.low],
        "score_high": None if res.high is None else [float(v) for v in res.high],
        "interval_level": run.interval_level if res.low is not None else None,
        "worst_region": None if res.worst_region is None else [float(v) for v in
                                                               res.worst_region],
        "best_index": res.best_index,
        "method": method,
        "model": run.model_name,
        "model_sha256": run.model_sha256 if model else None,
        "score_scale": "focus score 0-10" if model else f"{method}: larger = sharper",
        "magnification": res.magnification,
        "region": run.settings.region if model else "whole",
        "device": run.device_name,
        "databar_rows_excluded": res.databar_rows,
        "focus_curve": None if res.focus_curve is None else res.focus_curve.to_dict(),
    }


def stored_scores(metadata, gate: Gate, n_slices: int):
    """(scores, worst regions or None) in ``metadata["semfocus"]`` made by the gate's model
    (same model name, SHA-256 where recorded, region, one per slice, and the worst regions when
    the gate's rule needs them), else None."""
    stored = (metadata or {}).get(SCORES_KEY) or {}
    scores, worst = stored.get("scores"), stored.get("worst_region")
    if gate.score_rule == "worst-region" and (worst is None or len(worst) != n_slices):
        return None
    if (stored.get("method") != MODEL_METHOD or scores is None
            or stored.get("model") != gate.model.get("name")
            or stored.get("region", "whole") != gate.region
            or len(scores) != n_slices):
        return None
    sha = stored.get("model_sha256")
    if sha is not None and sha != gate.model.get("sha256"):
        return None
    return (np.asarray(scores, dtype=np.float64),
            None if worst is None else np.asarray(worst, dtype=np.float64))


def stored_with_bounds(metadata, gate: Gate, n_slices: int):
    """:func:`stored_scores` with the scores' intervals, ``(scores, worst, low, high)``, for the
    review band; None when the stored scores have no intervals (or are not the gate's)."""
    scores = stored_scores(metadata, gate, n_slices)
    stored = (metadata or {}).get(SCORES_KEY) or {}
    low, high = stored.get("score_low"), stored.get("score_high")
    if scores is None or low is None or high is None or len(low) != n_slices:
        return None
    return (*scores, np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64))


def gate_record(scores, accepted, gate: Gate, scores_from: str, worst_region=None,
                decisions=None) -> dict:
    """``metadata["semfocus_gate"]``: the decisions per slice (with the review band also
    ``decisions``: accept / reject / review), the scores (whole and worst region) and the gate
    that made them, with its rule."""
    accepted = np.asarray(accepted, dtype=bool)
    return {
        "decisions": None if decisions is None else [str(d) for d in decisions],
        "accepted": [bool(v) for v in accepted],
        "rejected_slices": [int(i) for i in np.flatnonzero(~accepted)],
        "scores": [float(v) for v in scores],
        "worst_region": None if worst_region is None else [float(v) for v in worst_region],
        "threshold": gate.threshold,
        "target_precision": gate.target_precision,
        "rule": gate.rule_text,
        "score_rule": gate.score_rule,
        "gate_file": str(gate.path) if gate.path else None,
        "model": gate.model.get("name"),
        "model_sha256": gate.model.get("sha256"),
        "region": gate.region,
        "scores_from": scores_from,
    }


def with_records(metadata, records: dict) -> dict:
    """A copy of a layer's ``metadata`` with ``records`` (``{SCORES_KEY: …, GATE_KEY: …}``)."""
    return {**dict(metadata or {}), **records}
