"""Acceptance gate, the truth to calibrate on: which labelled images are acceptable.

The truth per image is an expert score (acceptable when ``>= accept_score``, default 7) or an
accept/reject label (words, booleans or 0/1). A calibration manifest (CSV: ``path``, the label
column, optional ``magnification`` and group column) is read here; its images are scored as
``semfocus score`` scores them by the calibration job (:mod:`napari_semfocus.jobs.gate`). The
threshold itself is chosen in :mod:`.calibrate`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import SemFocusError
from ..io.manifest import read_manifest
from ..scale import parse_magnification

DEFAULT_ACCEPT_SCORE = 7.0

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


# ---- labelled images from a manifest -------------------------------------------------------
def read_calibration_manifest(manifest, label_column: str = "label", group_column: str = "series"):
    """A calibration manifest (``path``, the label column, optional ``magnification`` and group
    column; paths relative to its folder) -> (``(path, magnification or None)`` per image, label
    texts, groups). A missing magnification comes from the file's metadata when it is scored; a
    missing group is the file itself."""
    rows = read_manifest(manifest, required=("path",))  # labels stay text (words allowed)
    if label_column not in rows[0]:
        raise SemFocusError(f"manifest {manifest} lacks the column {label_column} (it needs "
                            f"path,{label_column}).")
    images, labels, groups = [], [], []
    for line, row in enumerate(rows, start=2):
        mag = parse_magnification(row.get("magnification"), f"manifest {manifest} line {line}")
        label = str(row.get(label_column) or "").strip()
        if not label:
            raise SemFocusError(f"manifest {manifest} line {line} has an empty {label_column}.")
        images.append((row["path"], mag))
        labels.append(label)
        groups.append(str(row.get(group_column) or "").strip() or row["path"])
    return images, labels, groups
