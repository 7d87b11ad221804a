"""The CSV tables of scores: what ``semfocus score`` / ``measure`` / ``gate`` write and what the
widgets export, with the same columns everywhere:
``path,index,magnification,score,score_low,score_high,worst_region`` (``score_low`` /
``score_high``: the interval where the true score lies for the model's share of frames, 80 % for
the shipped model, empty for a model without intervals; ``worst_region``: the frame's worst
informative region,
:func:`napari_semfocus.scoring.aggregate.worst_region_score`), and, for gate decisions,
``accepted``. A classical measure has no regions: ``path,index,magnification,score``. A watch
(``semfocus watch``) adds ``accepted`` when gated and ``error`` (why a frame has no score)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

SCORE_COLUMNS = ("path", "index", "magnification", "score", "score_low", "score_high",
                 "worst_region")
MEASURE_COLUMNS = SCORE_COLUMNS[:4]
DECISION_COLUMNS = SCORE_COLUMNS + ("accepted",)
# with the review band: ``decision`` accept / reject / review (``accepted`` 1 only for accept)
REVIEW_COLUMNS = DECISION_COLUMNS + ("decision",)


def watch_columns(gated: bool) -> tuple[str, ...]:
    """The columns of a watch's table: the score columns, ``accepted`` when gated, ``error``."""
    return (DECISION_COLUMNS if gated else SCORE_COLUMNS) + ("error",)


@dataclass
class ScoreRow:
    """One 2-D image or stack slice: its file (or layer name), slice index (0 for a 2-D image),
    the magnification used, the score and the score of its worst informative region (None for
    a classical measure: an empty cell)."""

    path: str
    index: int
    magnification: float | None
    score: float
    worst_region: float | None = None
    score_low: float | None = None
    score_high: float | None = None

    def as_csv(self) -> list[str]:
        """The cells of :data:`SCORE_COLUMNS`."""
        mag = "" if self.magnification is None else f"{self.magnification:g}"
        cell = lambda v: "" if v is None else f"{v:.4f}"  # noqa: E731
        return [self.path, str(self.index), mag, f"{self.score:.4f}", cell(self.score_low),
                cell(self.score_high), cell(self.worst_region)]


def slice_rows(path: str, scores, magnification: float | None, worst_region=None, low=None,
               high=None) -> list[ScoreRow]:
    """One row per slice of an image whose slices scored ``scores`` (and, for the model,
    ``worst_region`` and the interval ``low`` .. ``high``, one per slice)."""
    per = lambda a: [None] * len(scores) if a is None else [float(v) for v in a]  # noqa: E731
    return [ScoreRow(path, i, magnification, float(s), w, lo, hi)
            for i, (s, w, lo, hi) in enumerate(zip(scores, per(worst_region), per(low),
                                                   per(high), strict=True))]


def csv_text(header: Iterable, rows: Iterable[Iterable]) -> str:
    """A CSV document (``\\n`` line ends)."""
    return csv_lines([list(header)]) + csv_lines(rows)


def csv_lines(rows: Iterable[Iterable]) -> str:
    """CSV lines without a header (``\\n`` line ends)."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue()


def scores_csv(rows: Iterable[ScoreRow], columns: tuple = SCORE_COLUMNS) -> str:
    """``columns`` (:data:`SCORE_COLUMNS`, or :data:`MEASURE_COLUMNS` for a classical measure),
    one line per row."""
    return csv_text(columns, (r.as_csv()[: len(columns)] for r in rows))


def decisions_csv(rows: Iterable[ScoreRow], accepted, decisions=None) -> str:
    """:data:`DECISION_COLUMNS`: the score columns and ``accepted`` 1 or 0; with ``decisions``
    (the review band's accept / reject / review per row) :data:`REVIEW_COLUMNS`."""
    ok = np.asarray(accepted, dtype=bool)
    if decisions is None:
        return csv_text(DECISION_COLUMNS, (row.as_csv() + [int(a)]
                                           for row, a in zip(rows, ok, strict=True)))
    return csv_text(REVIEW_COLUMNS, (row.as_csv() + [int(a), d]
                                     for row, a, d in zip(rows, ok, decisions, strict=True)))


def labelled_scores_csv(rows: Iterable[ScoreRow], labels, acceptable) -> str:
    """The score columns with each image's ``label`` and whether it is ``acceptable`` (1/0)."""
    return csv_text(SCORE_COLUMNS + ("label", "acceptable"),
                    (r.as_csv() + [lab, int(ok)]
                     for r, lab, ok in zip(rows, labels, acceptable, strict=True)))
