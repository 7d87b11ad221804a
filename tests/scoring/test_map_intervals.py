"""Per-tile score intervals on focus maps (issue 24): every tile gets the model's interval for
its own feature value; with an interval binned by noise, a noisy half of a real frame gets wider
intervals than its clean half; a model without intervals gives none (said), not made-up ones."""

from __future__ import annotations

import numpy as np

from napari_semfocus.scoring.intervals import IntervalModel, noise_level
from napari_semfocus.scoring.map_grid import CSV_COLUMNS

from ..helpers import needs_default_model


@needs_default_model
def test_tile_intervals_hold_the_score_and_widen_with_noise(default_scorer, pool_image):
    frame = pool_image[:480, :640].astype(np.float32)  # a real FEI frame (lung cells)
    lo, hi = np.percentile(frame, [0.5, 99.5])
    noisy = frame.copy()
    noisy[:, 320:] += np.random.default_rng(0).normal(0, hi - lo, (480, 320))  # heavy noise
    # an interval binned by noise, its edge between the two halves' noise (the shipped model's
    # calibration may bin by another feature: scripts/calibrate_intervals.py keeps the best)
    clean_noise, noisy_noise = noise_level([noisy[:, :320], noisy[:, 320:]])
    assert clean_noise < noisy_noise
    by_noise = IntervalModel(0.8, "noise", ((clean_noise + noisy_noise) / 2,), (-0.4, -1.5),
                             (0.4, 1.5), (100, 100)).as_dict()
    default_scorer.metadata["interval"], saved = by_noise, default_scorer.metadata["interval"]
    try:
        fmap = default_scorer.focus_map(noisy, 12000, stride=(240, 320))  # 2 x 2 tiles, crop mode
    finally:
        default_scorer.metadata["interval"] = saved
    assert fmap.shape == (2, 2) and fmap.low is not None
    assert np.all(fmap.low <= fmap.scores) and np.all(fmap.scores <= fmap.high)
    assert np.array_equal(fmap.certainty, (fmap.high - fmap.low).astype(np.float32))
    clean, noise = fmap.certainty[:, 0], fmap.certainty[:, 1]
    assert noise.min() > clean.max(), fmap.certainty
    rows = [line.split(",") for line in fmap.to_csv().splitlines()]
    assert tuple(rows[0]) == CSV_COLUMNS and len(rows) == 5
    cells = {name: [float(r[k]) for r in rows[1:]] for k, name in enumerate(rows[0])}
    np.testing.assert_allclose(cells["certainty"], fmap.certainty.ravel(), atol=2e-3)
    np.testing.assert_allclose(cells["score_low"], fmap.low.ravel(), rtol=1e-3)

    default_scorer.metadata["interval"] = None
    try:  # the same weights without intervals (a fine-tuned model before its calibration)
        bare = default_scorer.focus_map(noisy, 12000, stride=(240, 320))
    finally:
        default_scorer.metadata["interval"] = saved
    assert bare.low is None and bare.certainty is None
    assert bare.extra["interval"].startswith("none: the model")
    assert bare.to_csv().splitlines()[1].split(",")[5:8] == ["", "", ""]
    np.testing.assert_array_equal(bare.scores, fmap.scores)
