"""Whole-image scores from where focus can be seen (napari_semfocus.aggregate), with the shipped
model: sample in one corner, two structured halves, a uniform frame; and the weights alone."""

from __future__ import annotations

import numpy as np
import pytest

from napari_semfocus._sample_data import load_sample
from napari_semfocus.progress import run_to_end
from napari_semfocus.scoring import aggregate
from napari_semfocus.scoring.preprocess import normalise
from napari_semfocus.training.data import degrade, scenes
from napari_semfocus.training.data.scene_builders import fractal_noise

from ..helpers import blur, needs_default_model

MAG = 5000.0


def _noisy(img, seed):
    noise = degrade.NoiseSettings(dose=400.0, read_sigma=0.01, line_sigma=0.0, line_gain_sigma=0.0)
    return (np.clip(degrade.add_noise(img, noise, np.random.default_rng(seed)), 0, 1) * 255
            ).astype(np.uint8)


def _corner_frame(seed=3):
    """480 x 640: sharp particles in the top-left 240 x 320, flat substrate elsewhere."""
    rng = np.random.default_rng(seed)
    frame = np.full((480, 640), 0.3, np.float32) + 0.01 * fractal_noise((480, 640), rng)
    frame[:240, :320] = 0.1 + 0.8 * scenes.render_scene("balls", (240, 320), rng)
    return _noisy(frame, seed)


def test_weights_favour_structure_over_noise():
    rng = np.random.default_rng(0)
    sample = 0.1 + 0.8 * scenes.render_scene("crystals", (240, 320), rng)
    substrate = rng.normal(0.3, 0.03, (240, 320)).astype(np.float32)  # noise std 3 % of range
    frame = normalise(np.concatenate([substrate, sample], axis=1))
    s = [aggregate.tile_structure(frame[:, :320]), aggregate.tile_structure(frame[:, 320:])]
    w = aggregate.structure_weights(s)
    assert s[1] > 3 * s[0]
    assert w[1] == 1.0 and w[0] < 0.05
    # a uniform tile has no structure; a frame of uniform tiles weighs them all alike
    assert aggregate.tile_structure(np.zeros((50, 60))) == 0.0
    assert np.all(aggregate.structure_weights([0.0, 0.0]) == aggregate.WEIGHT_FLOOR)
    assert aggregate.weighted_score([2.0, np.nan, 4.0], [1.0, 1.0, 3.0]) == pytest.approx(3.5)


@needs_default_model
def test_sample_in_one_corner_scores_like_the_corner(default_scorer):
    frame = _corner_frame()
    whole, corner = default_scorer.score(np.stack([frame]), MAG)[0], default_scorer.score(frame[:240, :320], MAG)[0]
    assert corner > 7.0, corner
    assert abs(whole - corner) <= 0.5, (whole, corner)


@needs_default_model
def test_two_structured_halves_score_between_them(default_scorer, pool_image):
    img = pool_image[:480, :640]
    frame = np.concatenate([img[:, :320], blur(img, 5.0)[:, 320:]], axis=1)
    left, right = default_scorer.score(frame[:, :320], MAG)[0], default_scorer.score(frame[:, 320:], MAG)[0]
    whole = default_scorer.score(frame, MAG)[0]
    assert left > right + 1.5, (left, right)
    assert right + 0.2 < whole < left - 0.2, (left, whole, right)


@needs_default_model
def test_uniform_frame_scores_zero_as_a_whole_and_in_its_map(default_scorer):
    frame = np.full((480, 640), 37, np.uint16)
    assert default_scorer.score(frame, MAG)[0] == 0.0
    fmap = default_scorer.focus_map(frame, MAG)
    assert np.all(fmap.scores == 0.0)
    assert np.all(fmap.weight <= aggregate.WEIGHT_FLOOR + 1e-6)


@needs_default_model
def test_map_weight_is_the_score_weight(default_scorer):
    fmap = default_scorer.focus_map(_corner_frame(), MAG, stride=(240, 320))
    assert fmap.shape == (2, 2)
    assert fmap.weight[0, 0] == 1.0 and np.all(fmap.weight.ravel()[1:] < 0.05), fmap.weight


# ---- the worst informative region --------------------------------------------------------------
def test_worst_region_is_the_lowest_quarter_of_the_informative_tiles():
    worst = aggregate.worst_region_score
    # 8 informative tiles: the lowest 2 (a quarter); empty tiles (weight 0.001) never count
    scores = [9.0, 9.0, 9.0, 9.0, 9.0, 9.0, 4.0, 5.0, 0.5, 1.0]
    weights = [1, 1, 1, 0.6, 1, 1, 1, 0.5, 0.001, 0.2]
    assert worst(scores, weights) == pytest.approx(4.5)
    # one odd tile among eight does not decide: it shares the quarter with the next lowest
    assert worst([9.0] * 7 + [3.0], [1.0] * 8) == pytest.approx(6.0)
    # a fractional last tile counts by its fraction: 6 tiles -> 1.5 tiles
    assert worst([2.0, 8.0, 9.0, 9.0, 9.0, 9.0], [1.0] * 6) == pytest.approx((2 + 0.5 * 8) / 1.5)
    # fewer than four informative tiles: the worst one
    assert worst([7.0, 3.0, 9.0], [1.0, 1.0, 0.01]) == 3.0
    # no informative tile (all at the floor): the whole score; NaN tiles are ignored
    floor = aggregate.structure_weights([0.0, 0.0, 0.0])
    assert worst([1.0, 2.0, 6.0], floor) == pytest.approx(3.0)
    assert worst([np.nan, 8.0, 2.0, 8.0, 8.0], [1.0] * 5) == pytest.approx(2.0)


def _whole_and_worst(scorer, name):
    sample = load_sample(name)
    tiles, weights, _noise = run_to_end(scorer.tiles_iter(
        sample.data, sample.magnification, exclude_bottom_rows=sample.databar_rows))
    return (aggregate.weighted_score(tiles[0], weights[0]),
            aggregate.worst_region_score(tiles[0], weights[0]))


@needs_default_model
def test_half_focused_sample_worst_region_is_its_blurred_half(default_scorer):
    """The half-focused sample scores ~7.5 as a whole (a 7.35 gate accepts it); its blurred
    half scores ~4.5 tile by tile, and the worst region says so."""
    whole, worst = _whole_and_worst(default_scorer, "half_focused.tif")
    assert whole > 7.0, whole
    assert worst < 5.5 and worst < whole - 2.0, (whole, worst)


@needs_default_model
def test_uniformly_sharp_frame_worst_region_stays_near_the_whole(default_scorer):
    whole, worst = _whole_and_worst(default_scorer, "sem_image.tif")
    assert whole > 8.5, whole
    assert whole - 0.5 < worst <= whole, (whole, worst)
