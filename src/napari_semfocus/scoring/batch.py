"""Scoring files in bulk: the one implementation behind ``semfocus score`` / ``measure``.

Magnification for each file comes from, in order: an explicit value, the manifest CSV
(``path,magnification``; paths relative to the manifest's folder), the file's SEM metadata.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import SemFocusError
from ..io.images import IMAGE_SUFFIXES, read_image

SCORE_COLUMNS = ("path", "index", "magnification", "score")


@dataclass
class ScoreRow:
    path: str
    index: int
    magnification: float | None
    score: float

    def as_csv(self) -> list[str]:
        mag = "" if self.magnification is None else f"{self.magnification:g}"
        return [self.path, str(self.index), mag, f"{self.score:.4f}"]


def read_manifest(manifest, required=("path", "magnification")) -> list[dict]:
    """Rows of a manifest CSV with ``path`` resolved against the manifest's folder."""
    manifest = Path(manifest)
    if not manifest.is_file():
        raise SemFocusError(f"manifest {manifest} does not exist.")
    with open(manifest, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in required if c not in (reader.fieldnames or [])]
        if missing:
            raise SemFocusError(
                f"manifest {manifest} lacks the column(s) {', '.join(missing)} "
                f"(it needs {','.join(required)})."
            )
        rows = []
        for i, row in enumerate(reader, start=2):
            if not (row.get("path") or "").strip():
                raise SemFocusError(f"manifest {manifest} line {i} has an empty path.")
            row = dict(row)
            row["path"] = str((manifest.parent / row["path"].strip()).resolve())
            for key in ("magnification", "label"):
                if key in required:
                    row[key] = _positive_or_label(row.get(key), key, manifest, i)
            rows.append(row)
    if not rows:
        raise SemFocusError(f"manifest {manifest} has no rows.")
    return rows


def _positive_or_label(value, key, manifest, line):
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise SemFocusError(f"manifest {manifest} line {line}: {key} {value!r} is not a number.") from None
    if not np.isfinite(v) or (key == "magnification" and v <= 0):
        raise SemFocusError(f"manifest {manifest} line {line}: {key} {value!r} is not valid.")
    return v


def plan_inputs(paths: Iterable, magnification: float | None = None, manifest=None):
    """List of (path as given, resolved Path, magnification or None) to score, checked to exist."""
    by_path = {}
    if manifest is not None:
        by_path = {r["path"]: r["magnification"] for r in read_manifest(manifest)}
    paths = list(paths) or list(by_path)
    if not paths:
        raise SemFocusError("no input files given.")
    plan = []
    for p in paths:
        path = Path(p)
        if not path.is_file():
            raise SemFocusError(f"{p}: no such file.")
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            raise SemFocusError(f"{p}: unsupported file type {path.suffix}; use TIFF, PNG or JPEG.")
        mag = magnification if magnification is not None else by_path.get(str(path.resolve()))
        plan.append((str(p), path, mag))
    return plan


def score_files(plan, score_fn: Callable, log: Callable[[str], None] = lambda s: None,
                need_magnification: bool = True) -> list[ScoreRow]:
    """Read each planned file once, call ``score_fn(data, magnification, databar_rows, name)``
    -> per-frame scores, and return one row per frame."""
    rows: list[ScoreRow] = []
    for k, (shown, path, mag) in enumerate(plan, start=1):
        img = read_image(path)
        if mag is None:
            mag = img.magnification
        if mag is None and need_magnification:
            raise SemFocusError(
                f"{shown}: no magnification given and none found in the file's metadata; "
                "pass --magnification or --manifest."
            )
        scores = score_fn(img.data, mag, img.databar_rows, shown)
        log(f"[{k}/{len(plan)}] {shown}")
        rows.extend(ScoreRow(shown, i, mag, float(s)) for i, s in enumerate(np.atleast_1d(scores)))
    return rows


def rows_to_csv(rows: list[ScoreRow], value_name: str = "score") -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(SCORE_COLUMNS[:3] + (value_name,))
    for r in rows:
        w.writerow(r.as_csv())
    return buf.getvalue()
