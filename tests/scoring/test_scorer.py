"""FocusScorer: a trained model scores sharper frames higher; its errors name the input."""

from __future__ import annotations

import numpy as np
import pytest

from napari_semfocus import FocusScorer
from napari_semfocus.errors import SemFocusError
from napari_semfocus.training.loop import BatchDone, Finished


def test_trained_model_scores_sharper_higher(tiny_checkpoint, blur_series):
    path, updates = tiny_checkpoint
    losses = [u.loss for u in updates if isinstance(u, BatchDone)]
    assert np.mean(losses[-10:]) < np.mean(losses[:10])
    assert isinstance(updates[-1], Finished) and updates[-1].best_path == path
    scorer = FocusScorer.from_checkpoint(path, device="cpu")
    assert scorer.device_name.startswith("cpu")
    sigmas, frames = blur_series
    scores = scorer.score(frames, magnification=5000, batch_size=8)
    assert scores.shape == (len(sigmas),)
    assert np.all((scores >= 0) & (scores <= 10))
    assert scores[0] > scores[2] > scores[4], scores
    centre = scorer.score(frames[0], 5000, region="centre")
    assert centre.shape == (1,)


def test_scorer_errors(tiny_checkpoint, blur_series):
    scorer = FocusScorer.from_checkpoint(tiny_checkpoint[0], device="cpu")
    frame = blur_series[1][0]
    with pytest.raises(SemFocusError, match="no magnification given"):
        scorer.score(frame, None, name="frame.tif")
    with pytest.raises(SemFocusError, match="positive"):
        scorer.score(frame, -5)
    with pytest.raises(SemFocusError, match="region"):
        scorer.score(frame, 5000, region="middle")
    with pytest.raises(SemFocusError, match="not available"):
        FocusScorer.from_checkpoint(tiny_checkpoint[0], device="cuda:7")


@pytest.mark.parametrize("mag", ["abc", 1 + 2j, {"a": 1}, object()])
def test_api_magnification_of_the_wrong_kind_is_one_sentence(untrained_checkpoint, mag):
    scorer = FocusScorer.load(untrained_checkpoint, device="cpu")
    frame = np.random.default_rng(0).random((64, 64)).astype(np.float32)
    with pytest.raises(SemFocusError, match=r"magnification .* is not a positive number"):
        scorer.score(frame, mag)
    assert scorer.score(frame, "5k").shape == (1,)  # text as users write it


@pytest.mark.parametrize("kw", [dict(tile=(240,)), dict(tile=(240, 320, 5)), dict(tile="ab"),
                                dict(tile=(240.5, 320)), dict(stride=(5,)), dict(tile=7)])
def test_focus_map_tile_and_stride_of_the_wrong_shape_are_one_sentence(untrained_checkpoint, kw):
    scorer = FocusScorer.load(untrained_checkpoint, device="cpu")
    frame = np.random.default_rng(0).random((256, 320)).astype(np.float32)
    what = next(iter(kw))
    with pytest.raises(SemFocusError, match=rf"^{what} .* is not a \(height, width\) pair of whole "
                                            r"numbers of pixels\.$"):
        scorer.focus_map(frame, 5000, **kw)
    assert scorer.focus_map(frame, 5000, tile=[64, 64], stride=np.array([32, 32])).scores.size
