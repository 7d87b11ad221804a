"""The evaluation's AUC is scikit-learn's roc_auc_score, equal to a pairwise count; its noise
and label bins."""

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


def test_label_bins_follow_the_scale_with_the_sharp_sources_apart():
    label = np.array([0.5, 2.0, 2.01, 5.5, 8.0, 9.01, 9.99, 10.0])
    assert evaluation.label_bins(label).tolist() == [
        "(0, 2]", "(0, 2]", "(2, 4]", "(4, 6]", "(6, 8]", "(8, 10)", "(8, 10)", "10"]
    # the report's breakdown: a model that scores only the label-10 frames low shows it there
    pred = np.where(label >= 10, label - 0.7, label)
    by = evaluation.breakdown(pred, label, evaluation.label_bins(label))
    assert list(by) == ["(0, 2]", "(2, 4]", "(4, 6]", "(6, 8]", "(8, 10)", "10"]
    assert by["10"]["bias"] == pytest.approx(-0.7) and by["(8, 10)"]["bias"] == 0.0
