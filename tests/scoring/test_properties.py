"""Hypothesis properties of the two ways to score a frame (docs/reliability.md): for any dtype,
any shape from 1 pixel to a few hundred, NaN and infinity sprinkled in and any magnification,
``score`` and ``focus_map`` either return finite scores in [0, 10] (a uniform frame 0 in both) or
raise :class:`SemFocusError`, and they make the same decision."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from napari_semfocus import FocusScorer
from napari_semfocus.errors import SemFocusError

DTYPES = (np.uint8, np.uint16, np.int16, np.float32, np.float64)


@pytest.fixture(scope="module")
def scorer(untrained_checkpoint):
    return FocusScorer.load(untrained_checkpoint, device="cpu")


def outcome(call):
    """("ok", scores) or ("refused", sentence); anything else fails the test."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return "ok", np.asarray(call(), dtype=np.float64)
        except SemFocusError as exc:
            return "refused", str(exc)


@st.composite
def frames(draw):
    h = draw(st.integers(1, 300))
    w = draw(st.integers(1, 300))
    dtype = draw(st.sampled_from(DTYPES))
    kind = draw(st.sampled_from(["noise", "uniform", "gradient"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if kind == "uniform":
        frame = np.full((h, w), draw(st.integers(0, 200)), dtype=np.float64)
    elif kind == "gradient":
        frame = np.add.outer(np.arange(h), np.arange(w)).astype(np.float64)
    else:
        frame = rng.random((h, w)) * 255
    frame = frame.astype(dtype)
    if frame.dtype.kind == "f" and draw(st.booleans()):
        spots = rng.random((h, w)) < draw(st.floats(0, 0.05))
        frame[spots] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    return frame


MAGNIFICATIONS = st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                           st.sampled_from([5000.0, 1e12, 1e-9, 0.0, -5.0]))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=frames(), mag=MAGNIFICATIONS)
def test_score_and_focus_map_agree_and_stay_on_the_scale(scorer, frame, mag):
    kind, score = outcome(lambda: scorer.score(frame, mag))
    map_kind, fmap = outcome(lambda: scorer.focus_map(frame, mag).scores)
    assert kind == map_kind, (kind, score, map_kind, fmap)
    event(kind)  # --hypothesis-show-statistics: how many examples were scored, how many refused
    if kind == "refused":
        return
    assert score.shape == (1,) and np.isfinite(score).all()
    assert 0 <= score[0] <= 10
    finite = fmap[np.isfinite(fmap)]
    assert finite.size and ((finite >= 0) & (finite <= 10)).all()
    if np.ptp(frame) == 0:
        assert score[0] == 0 and (finite == 0).all()
