"""Split-conformal intervals (issue 24): the finite-sample quantiles, coverage on exchangeable
frames overall and per bin, narrower intervals where the errors are smaller, the JSON that
travels in a checkpoint, and the noise feature."""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_semfocus.errors import SemFocusError
from napari_semfocus.scoring.intervals import (
    IntervalModel,
    check_level,
    conformal_bounds,
    noise_level,
)


def test_conformal_bounds_take_the_corrected_ranks():
    errors = np.arange(1, 10, dtype=float)  # n = 9, level 0.8: ranks floor(1) and ceil(9)
    assert conformal_bounds(errors, 0.8) == (1.0, 9.0)
    lo, hi = conformal_bounds(np.arange(99, dtype=float), 0.8)  # ranks 10 and 90
    assert (lo, hi) == (9.0, 89.0)
    assert conformal_bounds(np.zeros(3), 0.9) == (-np.inf, np.inf)  # too few: unbounded


def _frames(n, rng):
    """Predictions whose errors grow towards the middle of the scale (heteroscedastic)."""
    true = rng.uniform(0, 10, n)
    spread = 0.2 + 0.8 * np.exp(-((true - 5) / 2.0) ** 2)
    pred = true + rng.normal(0.2, spread)  # a little bias too
    return pred, true


def test_coverage_holds_overall_and_per_bin_only_with_bins():
    rng = np.random.default_rng(0)
    cal_pred, cal_true = _frames(3000, rng)
    test_pred, test_true = _frames(3000, rng)
    plain = IntervalModel.fit(cal_pred, cal_true, 0.8)
    binned = IntervalModel.fit(cal_pred, cal_true, 0.8, feature="score")
    assert len(binned.edges) >= 2 and sum(binned.counts) == 3000
    for model in (plain, binned):
        low, high = model.bounds(test_pred)
        inside = (test_true >= low) & (test_true <= high)
        assert 0.77 <= inside.mean() <= 0.83
    bins = np.searchsorted(binned.edges, test_pred, side="right")

    def per_bin(model):
        low, high = model.bounds(test_pred)
        inside = (test_true >= low) & (test_true <= high)
        return [inside[bins == b].mean() for b in range(len(binned.edges) + 1)]

    assert min(per_bin(binned)) >= 0.74  # every part of the scale keeps its coverage
    assert min(per_bin(plain)) < 0.7  # one interval for all under-covers where errors are large


def test_bounds_stay_on_the_scale_and_contain_the_score_when_unbiased():
    rng = np.random.default_rng(1)
    pred, true = _frames(2000, rng)
    model = IntervalModel.fit(pred, pred + rng.normal(0, 0.5, 2000), 0.8)
    low, high = model.bounds(np.array([0.1, 5.0, 9.9]))
    assert np.all(low >= 0) and np.all(high <= 10)
    assert np.all((low <= [0.1, 5.0, 9.9]) & (high >= [0.1, 5.0, 9.9]))


def test_the_model_travels_as_json_and_a_broken_one_is_one_sentence():
    rng = np.random.default_rng(2)
    pred, true = _frames(600, rng)
    model = IntervalModel.fit(pred, true, 0.8, feature="score",
                              calibration={"frames": 600, "source": "synthetic"})
    again = IntervalModel.from_dict(json.loads(json.dumps(model.as_dict())))
    assert again == model
    with pytest.raises(SemFocusError, match="interval metadata is broken"):
        IntervalModel.from_dict({"level": 0.8, "feature": "score", "edges": [5.0],
                                 "lower": [-1.0], "upper": [1.0], "counts": [10]})
    with pytest.raises(SemFocusError, match="interval level 1.5 is not between 0 and 1"):
        check_level(1.5)


def _noisy_frames(n, rng):
    """Errors that grow with the middle of the scale and, within it, with the frame's noise."""
    pred, true = _frames(n, rng)
    noise = rng.uniform(0.0, 0.3, n)
    pred = true + (pred - true) * (0.4 + 4.0 * noise)
    return pred, true, noise


def test_score_and_noise_bins_cover_the_noisy_half_that_score_bins_miss():
    rng = np.random.default_rng(3)
    cal_pred, cal_true, cal_noise = _noisy_frames(3000, rng)
    pred, true, noise = _noisy_frames(3000, rng)
    by_score = IntervalModel.fit(cal_pred, cal_true, 0.8, "score", cal_noise)
    both = IntervalModel.fit(cal_pred, cal_true, 0.8, "score+noise", cal_noise)
    assert both.needs_noise and not by_score.needs_noise
    assert len(both.lower) == 2 * (len(both.edges) + 1) == 2 * len(both.noise_edges)
    assert sum(both.counts) == 3000 and min(both.counts) >= 60
    noisy = noise > np.median(noise)

    def coverage(model):
        low, high = model.bounds(pred, noise)
        inside = (true >= low) & (true <= high)
        return inside.mean(), inside[noisy].mean(), (high - low)[~noisy].mean()

    (all_s, noisy_s, quiet_w_s), (all_b, noisy_b, quiet_w_b) = coverage(by_score), coverage(both)
    assert 0.77 <= all_b <= 0.83 and 0.77 <= all_s <= 0.83
    assert noisy_s < 0.74 <= noisy_b  # the noisy half keeps its coverage only with noise bins
    assert quiet_w_b < quiet_w_s  # and the quiet half gets narrower intervals
    again = IntervalModel.from_dict(json.loads(json.dumps(both.as_dict())))
    assert again == both
    broken = {**both.as_dict(), "noise_edges": both.noise_edges[:-1]}
    with pytest.raises(SemFocusError, match="interval metadata is broken"):
        IntervalModel.from_dict(broken)
    with pytest.raises(SemFocusError, match="the interval needs the frames' noise"):
        both.bounds(pred)
    # too few frames to split a score bin: both halves get the whole bin's interval
    few = IntervalModel.fit(cal_pred[:100], cal_true[:100], 0.8, "score+noise", cal_noise[:100])
    assert few.edges == () and few.lower[0] == few.lower[1] and few.upper[0] == few.upper[1]


def test_noise_level_rises_with_noise_on_a_real_frame(pool_image):
    rng = np.random.default_rng(3)
    frame = pool_image[:400, :500]
    span = float(np.ptp(frame))
    levels = noise_level(np.stack([frame + rng.normal(0, s * span, frame.shape)
                                   for s in (0.0, 0.05, 0.2)]).astype(np.float32))
    assert levels[0] < levels[1] < levels[2]
    assert levels[2] == pytest.approx(0.2 * span / (span * 1.1), rel=0.6)  # about the std added


def test_the_maps_sparse_noise_estimate_reads_the_same_noise(pool_image):
    """The focus map bins its overlapping tiles by the noise on every 8th column
    (``column_step=8``): on a real frame with noise added, within 10 % of every 2nd column's."""
    rng = np.random.default_rng(4)
    frame = pool_image[:240, :320].astype(np.float32)
    span = float(np.ptp(frame))
    for s in (0.02, 0.1, 0.3):
        noisy = frame + rng.normal(0, s * span, frame.shape).astype(np.float32)
        dense, sparse = noise_level(noisy)[0], noise_level(noisy, column_step=8)[0]
        assert sparse == pytest.approx(dense, rel=0.1), s
