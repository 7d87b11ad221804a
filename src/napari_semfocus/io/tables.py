"""The CSV tables of scores: what ``semfocus score`` / ``measure`` / ``gate`` write and what the
widgets export, with the same columns everywhere (``path,index,magnification,score`` and, for
gate decisions, ``accepted``)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

SCORE_COLUMNS = ("path", "index", "magnification", "score")
DECISION_COLUMNS = SCORE_COLUMNS + ("accepted",)


@dataclass
class ScoreRow:
    """One 2-D image or stack slice: its file (or layer name), slice index (0 for a 2-D image),
    the magnification used and the score."""

    path: str
    index: int
    magnification: float | None
    score: float

    def as_csv(self) -> list[str]:
        mag = "" if self.magnification is None else f"{self.magnification:g}"
        return [self.path, str(self.index), mag, f"{self.score:.4f}"]


def slice_rows(path: str, scores, magnification: float | None) -> list[ScoreRow]:
    """One row per slice of an image whose slices scored ``scores``."""
    return [ScoreRow(path, i, magnification, float(s)) for i, s in enumerate(scores)]


def csv_text(header: Iterable, rows: Iterable[Iterable]) -> str:
    """A CSV document (``\\n`` line ends)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(list(header))
    w.writerows(rows)
    return buf.getvalue()


def scores_csv(rows: Iterable[ScoreRow], value_name: str = "score") -> str:
    """``path,index,magnification,<value_name>``, one line per row."""
    return csv_text(SCORE_COLUMNS[:3] + (value_name,), (r.as_csv() for r in rows))


def decisions_csv(rows: Iterable[ScoreRow], accepted) -> str:
    """``path,index,magnification,score,accepted``: the score columns and ``accepted`` 1 or 0."""
    return csv_text(DECISION_COLUMNS, (row.as_csv() + [int(ok)] for row, ok in
                                       zip(rows, np.asarray(accepted, dtype=bool), strict=True)))


def labelled_scores_csv(rows: Iterable[ScoreRow], labels, acceptable) -> str:
    """The score columns with each image's ``label`` and whether it is ``acceptable`` (1/0)."""
    return csv_text(SCORE_COLUMNS + ("label", "acceptable"),
                    (r.as_csv() + [lab, int(ok)]
                     for r, lab, ok in zip(rows, labels, acceptable, strict=True)))
