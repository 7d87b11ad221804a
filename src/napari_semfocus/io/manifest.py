"""Manifest CSVs: a list of image files with their magnification (and labels), paths relative to
the manifest's folder (``semfocus score --manifest``, ``evaluate``, validation sets)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from ..errors import SemFocusError
from ..scale import parse_magnification


def read_manifest(manifest, required=("path", "magnification")) -> list[dict]:
    """Rows of a manifest CSV with ``path`` resolved against the manifest's folder; the
    ``magnification`` (written as users write it: 5000, 5k, 5,000x) and ``label`` columns, when
    required, are checked and turned into numbers."""
    manifest = Path(manifest)
    if not manifest.is_file():
        raise SemFocusError(f"manifest {manifest} does not exist.")
    try:
        text = manifest.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise SemFocusError(f"manifest {manifest} is not UTF-8 text; save it as UTF-8 CSV.") from None
    with io.StringIO(text, newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in required if c not in (reader.fieldnames or [])]
        if missing:
            raise SemFocusError(
                f"manifest {manifest} lacks the column(s) {', '.join(missing)} "
                f"(it needs {','.join(required)})."
            )
        rows, seen = [], {}
        for i, row in enumerate(reader, start=2):
            if not (row.get("path") or "").strip():
                raise SemFocusError(f"manifest {manifest} line {i} has an empty path.")
            row = dict(row)
            row["path"] = str((manifest.parent / row["path"].strip()).resolve())
            key = (row["path"], (row.get("slice") or row.get("index") or "").strip())
            if key in seen:
                raise SemFocusError(f"manifest {manifest} line {i} repeats the image of line "
                                    f"{seen[key]} ({row['path']}); list each image once.")
            seen[key] = i
            where = f"manifest {manifest} line {i}"
            if "magnification" in required:
                row["magnification"] = parse_magnification(row.get("magnification"), where,
                                                           required=True)
            if "label" in required:
                row["label"] = _label(row.get("label"), where)
            rows.append(row)
    if not rows:
        raise SemFocusError(f"manifest {manifest} has no rows.")
    return rows


def _label(value, where: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise SemFocusError(f"{where}: label {value!r} is not a number.") from None
    if not np.isfinite(v):
        raise SemFocusError(f"{where}: label {value!r} is not valid.")
    return v
