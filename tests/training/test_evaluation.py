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
