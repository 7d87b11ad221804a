"""The shipped default model: loads offline and orders real SEM images by focus."""

from __future__ import annotations

import numpy as np

from napari_semfocus.scoring.checkpoint import default_model_path

from ..helpers import blur, needs_default_model

pytestmark = needs_default_model

def test_metadata_describes_the_model(default_scorer):
    meta = default_scorer.metadata
    assert meta["architecture"]["backbone"] == "resnet18"
    assert meta["architecture"]["use_magnification"] is True
    assert meta["weights_dtype"] == "float16"
    assert default_model_path().stat().st_size < 25e6


def test_sharp_pool_image_above_its_blurred_copies(default_scorer, pool_image):
    sigmas = [0.0, 1.5, 3.0, 6.0, 12.0]
    frames = np.stack([blur(pool_image, s) for s in sigmas])
    scores = default_scorer.score(frames, magnification=6000)
    assert np.all(np.diff(scores) < 0), scores
    # labels of the blurred copies (if the 2x-downscaled frame were perfectly sharp): 10, 7.6,
    # 6.1, 4.6, 3.1; this 12,000x frame is itself slightly soft at 2x, so the top is lower
    assert scores[0] > 7.5 and scores[-1] < 4.0, scores
    assert abs(scores[-1] - 3.1) < 1.0, scores


def test_flat_and_noise_frames_score_near_zero(default_scorer):
    """No sample, no score. Perfectly uniform frames are 0 by the scale's rule without the model
    (the flat-tile rule), so the model itself is judged on white, black and grey frames with a
    little detector noise, which it has to recognise as empty."""
    rng = np.random.default_rng(0)
    frames = np.stack([
        np.full((480, 640), 250, np.uint8),
        np.zeros((480, 640), np.uint8),
        np.clip(128 + 20 * rng.standard_normal((480, 640)), 0, 255).astype(np.uint8),
        np.clip(250 + 1.5 * rng.standard_normal((480, 640)), 0, 255).astype(np.uint8),
        np.clip(3 + 1.5 * rng.standard_normal((480, 640)), 0, 255).astype(np.uint8),
    ])
    scores = default_scorer.score(frames, magnification=5000)
    assert np.all(scores < 1.0), scores
    assert scores[0] == scores[1] == 0.0  # uniform: the rule, not the model
