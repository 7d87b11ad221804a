"""The evaluation's AUC is scikit-learn's roc_auc_score, equal to a pairwise count."""

from __future__ import annotations

import numpy as np
import pytest
import sklearn.metrics

from napari_semfocus.training import evaluation


def test_auc_is_scikit_learns_and_counts_pairs():
    assert evaluation.roc_auc_score is sklearn.metrics.roc_auc_score
    rng = np.random.default_rng(0)
    pos, neg = np.round(rng.normal(7, 1.5, 40), 1), np.round(rng.normal(5, 1.5, 30), 1)  # ties
    pairs = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    assert evaluation.auc(pos, neg) == pytest.approx(pairs / (len(pos) * len(neg)))
    assert evaluation.auc(pos, []) is None and evaluation.auc([], neg) is None


def test_noise_bins_are_quartiles_named_with_their_range():
    noise = np.linspace(0.0, 1.0, 101)
    bins = evaluation.noise_bins(noise)
    names, counts = np.unique(bins, return_counts=True)
    assert len(names) == 4 and counts.min() >= 25 and counts.max() <= 26
    assert bins[0] == "q1 0.000-0.250" and bins[-1] == "q4 0.750-1.000"
    assert (np.diff([int(b[1]) for b in bins]) >= 0).all()  # noisier frames, later bins
