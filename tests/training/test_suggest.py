"""Frames worth annotating (issue 24, item 4): the picks are N distinct frames, best first, one
per stratum of the predicted score, in each the informative one (wide interval, near the
threshold), spread over the data (not copies of one frame)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_semfocus.errors import SemFocusError
from napari_semfocus.jobs.inputs import ImageInput
from napari_semfocus.progress import run_to_end
from napari_semfocus.training.suggest import (
    DEFAULT_THRESHOLD,
    Candidate,
    informativeness,
    score_candidates,
    suggest,
)

from ..helpers import needs_default_model


def candidate(name, score, width, features, index=0):
    f = np.asarray(features, dtype=np.float64)
    return Candidate(name, index, None, 5000.0, score, score - width / 2, score + width / 2,
                     f / np.linalg.norm(f))


def features(rng, n, dim=16):
    return rng.normal(size=(n, dim))


def test_one_pick_per_score_stratum_the_informative_frame_in_each_best_first():
    """24 frames in four score groups (1, 4, 7, 9.5), one of each group with a wide interval:
    4 picks are one per group, each its wide frame, the most informative first."""
    rng = np.random.default_rng(0)
    f = features(rng, 24)
    cands = [candidate(f"g{g}-{i}", score + 0.05 * i, 3.0 if i == 2 else 0.5, f[6 * g + i])
             for g, score in enumerate((1.0, 4.0, 7.0, 9.5)) for i in range(6)]
    picks = suggest(cands, 4)
    assert [s.rank for s in picks] == [1, 2, 3, 4]
    assert sorted(s.candidate.name for s in picks) == ["g0-2", "g1-2", "g2-2", "g3-2"]
    info = informativeness([c.score for c in cands], [c.low for c in cands],
                           [c.high for c in cands])
    assert picks[0].informativeness == pytest.approx(info.max())  # the best comes first
    assert picks[0].candidate.name == "g2-2"  # wide and on the threshold (7)
    # more asked than there are frames: every frame once
    assert len({s.candidate.key for s in suggest(cands, 50)}) == 24
    # all intervals alike: the frames near the threshold are the most informative, yet the
    # picks still cover the scale, one per group (informativeness alone takes group 7's)
    alike = [candidate(c.name, c.score, 1.5, c.features) for c in cands]
    assert sorted(s.candidate.name[:2] for s in suggest(alike, 4)) == ["g0", "g1", "g2", "g3"]


def test_copies_of_one_hard_frame_are_not_all_picked():
    rng = np.random.default_rng(1)
    f = features(rng, 6)
    copies = [candidate("hard", DEFAULT_THRESHOLD, 3.0, f[0], index=i) for i in range(6)]
    others = [candidate(f"other{i}", DEFAULT_THRESHOLD + 1.5, 2.0, f[1 + i]) for i in range(5)]
    picks = suggest(copies + others, 5)
    names = [s.candidate.name for s in picks]
    assert names[0] == "hard" and names.count("hard") == 1  # the best copy, then the rest
    assert len({s.candidate.key for s in picks}) == 5


def test_annotated_frames_are_left_out():
    rng = np.random.default_rng(2)
    f = features(rng, 3)
    cands = [candidate("a", 7.0, 2.0, f[0]), candidate("b", 6.5, 2.0, f[1]),
             candidate("c", 9.9, 0.5, f[2])]
    picks = suggest(cands, 3, annotated=[("a", 0)])
    assert [s.candidate.name for s in picks][:1] == ["b"] and len(picks) == 2
    with pytest.raises(SemFocusError, match="every frame given is annotated already"):
        suggest(cands, 1, annotated=[("a", 0), ("b", 0), ("c", 0)])


@needs_default_model
def test_candidates_are_scored_as_users_score_them(default_scorer, blur_series):
    _, frames = blur_series
    stack = frames[:, :240, :320]
    cands = run_to_end(score_candidates(default_scorer, [ImageInput("series", stack, 6000.0)]))
    assert [c.key for c in cands] == [("series", i) for i in range(len(stack))]
    np.testing.assert_allclose([c.score for c in cands],
                               default_scorer.score(stack, 6000.0), atol=1e-6)
    assert all(c.low <= c.score <= c.high for c in cands)
    norms = [np.linalg.norm(c.features) for c in cands]
    assert np.allclose(norms, 1.0) and cands[0].features.shape == (512,)
    assert not np.allclose(cands[0].features, cands[-1].features)
