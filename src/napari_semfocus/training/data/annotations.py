"""Expert focus annotations: the table the Fine-tune widget builds and ``semfocus train
--annotations`` reads (no Qt).

One :class:`Annotation` per scored image or stack slice: ``layer`` (a napari layer name, or the
file's name), ``slice`` (flat index of the slice in a stack, 0 for a 2-D image), ``magnification``,
the expert ``score`` (0-10) and, where known, the ``path`` of the image file. An
:class:`AnnotationTable` holds at most one row per (layer, slice) (read from a CSV: per image and
slice, a repeat refused); it is saved as CSV with the
columns :data:`CSV_COLUMNS` and loads that CSV back, or any CSV with ``path,magnification,score``
(optional ``slice`` or ``index``; paths relative to an image folder or to the CSV's folder), e.g. a
``semfocus score`` output whose score column an expert has corrected.

:meth:`AnnotationTable.summary` counts the annotations over score bins and magnification bands
and warns when there are too few to train (:data:`MIN_TRAIN`) or to validate (fewer than two
distinct images). :meth:`AnnotationTable.labelled_set` builds the
:class:`~.labelled.LabelledSet` for training, grouped by image (layer or file),
so that a validation split never puts two slices of one image on both sides.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ...errors import SemFocusError
from ...io.files import existing_file, write_text
from ...io.frames import as_frames, without_databar
from ...io.images import read_frames
from ...io.manifest import OneRowPerImage
from ...scale import parse_magnification
from .labelled import LabelledSet

CSV_COLUMNS = ("layer", "slice", "magnification", "score", "path")
MIN_TRAIN = 8  # fewer annotations than this: fine-tuning is refused
MIN_VALIDATION_IMAGES = 2  # distinct images needed for a validation split
SCORE_BINS = ((0, 2), (2, 4), (4, 6), (6, 8), (8, 10))
MAG_BANDS = (("<1k", 0, 1e3), ("1k–10k", 1e3, 1e4), ("10k–50k", 1e4, 5e4), ("≥50k", 5e4, np.inf))


@dataclass
class Annotation:
    """An expert score for one image or stack slice."""

    layer: str
    slice: int
    magnification: float
    score: float
    path: str | None = None

    def __post_init__(self):
        self.layer = str(self.layer)
        self.slice = int(self.slice)
        self.score = float(self.score)
        self.path = str(self.path) if self.path else None
        if not self.layer:
            raise SemFocusError("an annotation needs a layer or file name.")
        if self.slice < 0:
            raise SemFocusError(f"annotation of '{self.layer}': slice {self.slice} is negative.")
        check_score(self.score, f"annotation of '{self.layer}'")
        self.magnification = parse_magnification(self.magnification, f"annotation of '{self.layer}'",
                                                 required=True)

    @property
    def key(self) -> tuple[str, int]:
        return (self.layer, self.slice)

    @property
    def image(self) -> str:
        """The image this annotation belongs to (its group for train/validation splits)."""
        return self.path or self.layer


def check_score(score: float, what: str = "score") -> float:
    if not (np.isfinite(score) and 0.0 <= score <= 10.0):
        raise SemFocusError(f"{what}: score {score!r} is not between 0 and 10.")
    return float(score)


@dataclass
class Summary:
    """How many annotations there are and how they spread; warnings when too few."""

    count: int
    images: int
    score_bins: list[tuple[str, int]]
    magnification_bands: list[tuple[str, int]]
    warnings: list[str] = field(default_factory=list)

    @property
    def can_train(self) -> bool:
        return self.count >= MIN_TRAIN

    @property
    def can_validate(self) -> bool:
        return self.images >= MIN_VALIDATION_IMAGES

    def text(self) -> str:
        lines = [f"{self.count} annotation{'s' if self.count != 1 else ''} of "
                 f"{self.images} image{'s' if self.images != 1 else ''}."]
        if self.count:
            lines.append("Scores: " + ", ".join(f"{b} {n}" for b, n in self.score_bins))
            lines.append("Magnification: " + ", ".join(f"{b} {n}" for b, n in self.magnification_bands))
        return "\n".join(lines + self.warnings)


class AnnotationTable:
    """Ordered annotations, at most one per (layer, slice)."""

    def __init__(self, rows: Iterable[Annotation] = ()):
        self.rows: list[Annotation] = []
        for row in rows:
            self.add(row)

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self):
        return iter(self.rows)

    # ---- editing ---------------------------------------------------------------------------
    def add(self, annotation: Annotation) -> int:
        """Add ``annotation`` or replace the row of the same (layer, slice); returns its index."""
        for i, row in enumerate(self.rows):
            if row.key == annotation.key:
                self.rows[i] = annotation
                return i
        self.rows.append(annotation)
        return len(self.rows) - 1

    def set_score(self, index: int, score: float) -> None:
        self.rows[index].score = check_score(float(score), f"annotation of '{self.rows[index].layer}'")

    def remove(self, indices) -> None:
        """Remove the rows at ``indices`` (an int or several)."""
        drop = {int(i) for i in np.atleast_1d(indices)}
        self.rows = [r for i, r in enumerate(self.rows) if i not in drop]

    def clear(self) -> None:
        self.rows = []

    def extend(self, other: Iterable[Annotation]) -> None:
        for row in other:
            self.add(row)

    # ---- CSV -------------------------------------------------------------------------------
    def csv_text(self) -> str:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for r in self.rows:
            writer.writerow([r.layer, r.slice, f"{r.magnification:g}", f"{r.score:.4g}", r.path or ""])
        return buf.getvalue()

    def save_csv(self, path) -> Path:
        """Write the table (columns :data:`CSV_COLUMNS`) atomically."""
        return write_text(path, self.csv_text())

    @classmethod
    def load_csv(cls, path, image_folder=None) -> AnnotationTable:
        """Read a saved table, or a CSV ``path,magnification,score`` (optional ``slice`` or
        ``index``, ``layer``) with paths relative to ``image_folder`` (default: the CSV's folder).
        Each image (and slice) once, as in a manifest (:class:`~napari_semfocus.io.manifest.OneRowPerImage`).
        Raises :class:`SemFocusError` naming the file and the problem."""
        path = existing_file(path, "annotations file")
        base = Path(image_folder) if image_folder is not None else path.parent
        if image_folder is not None and not base.is_dir():
            raise SemFocusError(f"image folder {base} does not exist.")
        try:
            text = path.read_text(encoding="utf-8-sig")
        except (UnicodeDecodeError, OSError) as exc:
            raise SemFocusError(f"annotations file {path} is not a readable CSV text file "
                                f"({type(exc).__name__}).") from None
        reader = csv.DictReader(io.StringIO(text))
        columns = [c.strip() for c in (reader.fieldnames or [])]
        reader.fieldnames = columns
        missing = [c for c in ("magnification", "score") if c not in columns]
        if "layer" not in columns and "path" not in columns:
            missing.append("layer or path")
        if missing:
            raise SemFocusError(f"annotations file {path} lacks the column(s) {', '.join(missing)} "
                                "(it needs magnification, score and a layer or path column).")
        table, once = cls(), OneRowPerImage(f"annotations file {path}")
        for line, row in enumerate(reader, start=2):
            annotation = _row_annotation(row, path, line, base)
            once.add(line, annotation.image, annotation.slice)  # as a manifest: each image once
            table.rows.append(annotation)
        if not table.rows:
            raise SemFocusError(f"annotations file {path} has no rows.")
        return table

    # ---- summary and training data ---------------------------------------------------------
    def images(self) -> list[str]:
        return sorted({r.image for r in self.rows})

    def summary(self) -> Summary:
        scores = np.array([r.score for r in self.rows], dtype=float)
        mags = np.array([r.magnification for r in self.rows], dtype=float)
        bins = []
        for k, (lo, hi) in enumerate(SCORE_BINS):
            last = k == len(SCORE_BINS) - 1
            n = int(np.sum((scores >= lo) & ((scores <= hi) if last else (scores < hi))))
            bins.append((f"{lo}–{hi}", n))
        bands = [(name, int(np.sum((mags >= lo) & (mags < hi)))) for name, lo, hi in MAG_BANDS]
        n_images = len(self.images())
        warnings = []
        if len(self.rows) < MIN_TRAIN:
            warnings.append(f"Too few to train: {len(self.rows)} annotation(s), at least "
                            f"{MIN_TRAIN} are needed.")
        if n_images < MIN_VALIDATION_IMAGES:
            warnings.append("Too few to validate: annotate at least 2 different images "
                            "(the validation split is by image).")
        if len(self.rows) >= 2 and sum(1 for _, n in bins if n) == 1:
            warnings.append("All scores lie in one bin: annotate sharper and blurrier images too.")
        return Summary(len(self.rows), n_images, bins, bands, warnings)

    def labelled_set(self, frames: Mapping | None = None):
        """A LabelledSet of the annotated frames, grouped by image. ``frames`` maps
        (layer, slice) to ``(frame, databar_rows)``: a 2-D (or RGB) frame taken from a napari
        layer and the rows of its data bar; other rows are read from their ``path``. The data
        bar is left out of both."""
        frames = frames or {}
        files: dict[str, np.ndarray] = {}
        images = []
        for r in self.rows:
            frame, bar = frames.get(r.key, (None, 0))
            if frame is None:
                if not r.path:
                    raise SemFocusError(f"annotation of '{r.layer}' slice {r.slice}: the layer is not "
                                        "open and no image file is known for it.")
                if r.path not in files:
                    files[r.path] = read_frames(r.path)
                stack = files[r.path]
                if r.slice >= len(stack):
                    raise SemFocusError(f"annotation of {r.path}: slice {r.slice} does not exist "
                                        f"(the file has {len(stack)}).")
                frame = stack[r.slice]
            images.append(without_databar(as_frames(frame, f"annotation of '{r.layer}'"), bar)[0])
        if not images:
            raise SemFocusError("there are no annotations.")
        return LabelledSet(images, np.array([r.score for r in self.rows]),
                           np.array([r.magnification for r in self.rows]),
                           np.array([r.image for r in self.rows]))

    def describe(self, source=None, max_rows: int = 500) -> dict:
        """Provenance for checkpoint metadata: the rows (up to ``max_rows``), the count, and the
        file they came from where there is one."""
        info: dict = {"count": len(self.rows), "images": len(self.images())}
        if source is not None:
            info["file"] = str(source)
        if len(self.rows) <= max_rows:
            info["rows"] = [asdict(r) for r in self.rows]
        return info


def _row_annotation(row: dict, path: Path, line: int, base: Path) -> Annotation:
    where = f"annotations file {path} line {line}"
    file = (row.get("path") or "").strip()
    resolved = str((base / file).resolve()) if file else None
    layer = (row.get("layer") or "").strip() or (Path(file).name if file else "")
    if not layer:
        raise SemFocusError(f"{where} has neither a layer nor a path.")
    values = {"magnification": parse_magnification(row.get("magnification"), where, required=True)}
    for key in ("score", "slice"):
        text = (row.get(key) or row.get("index") or "0") if key == "slice" else (row.get(key) or "")
        try:
            values[key] = float(text.strip())
        except ValueError:
            raise SemFocusError(f"{where}: {key} {text!r} is not a number.") from None
    if values["slice"] != int(values["slice"]):
        raise SemFocusError(f"{where}: slice {values['slice']!r} is not a whole number.")
    try:
        return Annotation(layer, int(values["slice"]), values["magnification"], values["score"],
                          resolved)
    except SemFocusError as exc:
        raise SemFocusError(f"{where}: {str(exc).split(': ', 1)[-1]}") from None
