"""Manifest CSVs: a list of image files with their magnification (and labels), paths relative to
the manifest's folder (``semfocus score --manifest``, ``evaluate``, validation sets)."""

from __future__ import annotations

import csv
import io

import numpy as np

from ..errors import SemFocusError
from ..scale import parse_magnification
from .files import existing_file


class OneRowPerImage:
    """The rule of every table that lists images (manifests, annotations CSVs): each image (and
    slice) once. :meth:`add` refuses a repeat in one sentence naming both lines, e.g.
    ``manifest M line 3 repeats the image of line 2 (/data/a.tif); list each image once.`` (a
    repeated annotation was silently replaced by the later row before)."""

    def __init__(self, table: str):
        self.table = table  # "manifest M", "annotations file A"
        self.seen: dict = {}

    def add(self, line: int, image: str, slice_key="") -> None:
        """Row ``line`` lists ``image`` (a resolved path, or a layer name) and ``slice_key``
        ("" or 0 for a 2-D image or the whole stack)."""
        key = (image, str(slice_key).strip() or "0")
        if key in self.seen:
            shown = image if key[1] == "0" else f"{image}, slice {key[1]}"
            raise SemFocusError(f"{self.table} line {line} repeats the image of line "
                                f"{self.seen[key]} ({shown}); list each image once.")
        self.seen[key] = line


def read_manifest(manifest, required=("path", "magnification")) -> list[dict]:
    """Rows of a manifest CSV with ``path`` resolved against the manifest's folder; the
    ``magnification`` (written as users write it: 5000, 5k, 5,000x) and ``label`` columns, when
    required, are checked and turned into numbers."""
    manifest = existing_file(manifest, "manifest")
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
        rows, once = [], OneRowPerImage(f"manifest {manifest}")
        for i, row in enumerate(reader, start=2):
            if not (row.get("path") or "").strip():
                raise SemFocusError(f"manifest {manifest} line {i} has an empty path.")
            row = dict(row)
            row["path"] = str((manifest.parent / row["path"].strip()).resolve())
            once.add(i, row["path"], row.get("slice") or row.get("index") or "")
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
