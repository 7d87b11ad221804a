"""Real SEM frames as published, judged by eye (benchmarks/real_frames.csv): the shipped model
scores each within the range a microscopist would accept (crisp high, soft lower, empty ~0).
The frames are read from tests/data (copies of the pool and vendor files, licences there)."""

from __future__ import annotations

import importlib.util

from ..helpers import DATA, REPO, needs_default_model

_spec = importlib.util.spec_from_file_location("real_frames", REPO / "benchmarks" / "real_frames.py")
real_frames = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(real_frames)
ROWS = real_frames.read_rows()


@needs_default_model
def test_real_frames_score_in_the_ranges_judged_by_eye(default_scorer):
    """Every frame within its range, but for at most one (v5: the superalloy frame judged soft,
    8.81 for 4.5-8.5), and none more than 1 point outside (the model card lists which miss and
    by how much)."""
    scores = real_frames.score_rows(default_scorer, ROWS, DATA)  # copies in tests/data
    off = [max(float(r["low"]) - s, s - float(r["high"]), 0.0) for r, s in zip(ROWS, scores, strict=True)]
    misses = [(r["path"], r["crop"], round(s, 2)) for r, s, o in zip(ROWS, scores, off, strict=True) if o > 0]
    assert len(misses) <= 1 and max(off) <= 1.0, misses
    crisp = [s for r, s in zip(ROWS, scores, strict=True) if r["judged"] == "crisp"]
    empty = [s for r, s in zip(ROWS, scores, strict=True) if r["judged"] == "empty"]
    assert min(crisp) > max(empty) + 5, (crisp, empty)


def test_the_set_covers_crisp_soft_and_empty_frames():
    judged = [r["judged"] for r in ROWS]
    assert {"crisp", "soft", "empty"} <= set(judged) and len(ROWS) >= 15
