"""An interval with every score (issue 24): a model whose metadata holds intervals gives each
slice ``low <= score <= high`` in the job's result, its CSV rows and the layer record; a model
without them leaves the cells empty; the shipped model's intervals hold the score and do not
move with the precision."""

from __future__ import annotations

import numpy as np
import pytest

from napari_semfocus._sample_data import load_sample
from napari_semfocus.io.tables import SCORE_COLUMNS, scores_csv
from napari_semfocus.jobs.inputs import ImageInput
from napari_semfocus.jobs.records import scores_record
from napari_semfocus.jobs.score import MODEL_METHOD, ScoreSettings, score_images, score_rows
from napari_semfocus.progress import run_to_end
from napari_semfocus.scale import parse_magnification
from napari_semfocus.scoring.checkpoint import load_checkpoint, save_checkpoint
from napari_semfocus.scoring.intervals import IntervalModel
from napari_semfocus.scoring.scorer import FocusScorer

from ..helpers import needs_default_model


@pytest.fixture(scope="module")
def interval_checkpoint(untrained_checkpoint, tmp_path_factory):
    """The untrained model with an interval of -1.0 / +0.5 below / above a noise edge of 0.1
    and -2 / +2 above it."""
    model, meta = load_checkpoint(untrained_checkpoint)
    meta["interval"] = IntervalModel(0.8, "noise", (0.1,), (-1.0, -2.0), (0.5, 2.0),
                                     (100, 100)).as_dict()
    path = tmp_path_factory.mktemp("interval") / "with-interval.safetensors"
    return save_checkpoint(model, path, meta)


def _run(checkpoint, frames):
    image = ImageInput("stack", frames, 5000.0, 0, False)
    settings = ScoreSettings((image,), MODEL_METHOD, str(checkpoint), "cpu")
    return run_to_end(score_images(settings))


def test_scores_carry_their_interval_into_rows_csv_and_record(interval_checkpoint):
    rng = np.random.default_rng(0)
    clean = np.tile(np.linspace(0, 1, 320, dtype=np.float32), (240, 1))
    frames = np.stack([clean, clean + rng.normal(0, 0.5, clean.shape).astype(np.float32)])
    run = _run(interval_checkpoint, frames)
    res = run.images[0]
    assert res.low is not None and res.high is not None
    assert np.all(res.low <= res.scores) and np.all(res.scores <= res.high)
    width = res.high - res.low
    assert width[0] < width[1]  # the noisy frame falls in the wider bin
    rows = score_rows(run.images)
    assert [(r.score_low, r.score_high) for r in rows] == list(zip(res.low, res.high, strict=True))
    header, first = scores_csv(rows).splitlines()[:2]
    assert header.split(",") == list(SCORE_COLUMNS)
    cells = dict(zip(SCORE_COLUMNS, first.split(","), strict=True))
    assert float(cells["score_low"]) <= float(cells["score"]) <= float(cells["score_high"])
    record = scores_record(res, run)
    assert record["score_low"] == pytest.approx(list(res.low))
    assert record["interval_level"] == 0.8


def test_a_model_without_intervals_leaves_them_empty(untrained_checkpoint):
    run = _run(untrained_checkpoint, np.random.default_rng(1).random((240, 320), np.float32))
    res = run.images[0]
    assert res.low is None and res.high is None and run.interval_level is None
    cells = dict(zip(SCORE_COLUMNS, scores_csv(score_rows(run.images)).splitlines()[1].split(","),
                     strict=True))
    assert cells["score_low"] == cells["score_high"] == ""
    assert scores_record(res, run)["score_low"] is None


@needs_default_model
def test_the_shipped_intervals_hold_the_score_in_both_precisions():
    sample = load_sample("focus_series.tif")
    mag = parse_magnification(sample.magnification)
    bounds = {}
    for precision in ("float32", "bf16"):
        scorer = FocusScorer.default(device="cpu", precision=precision)
        assert scorer.interval is not None and scorer.interval.level == 0.8
        tiles = run_to_end(scorer.tiles_iter(sample.data, mag,
                                             exclude_bottom_rows=sample.databar_rows))
        scores = scorer.score(sample.data, mag, exclude_bottom_rows=sample.databar_rows)
        low, high = scorer.bounds(scores, tiles.frame_noise())
        assert np.all(low <= scores + 1e-9) and np.all(scores <= high + 1e-9)
        bounds[precision] = (low, high)
    for a, b in zip(bounds["float32"], bounds["bf16"], strict=True):
        assert np.max(np.abs(a - b)) < 0.15  # bf16 moves the scores a little, not the bins
