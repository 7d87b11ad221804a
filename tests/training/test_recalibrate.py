"""A fine-tuned model's score interval (issue 24, item 2): recalibrated on its own validation
split when that holds enough frames, else the parent's widened, with a note that says why."""

from __future__ import annotations

import pytest

from napari_semfocus.progress import run_to_end
from napari_semfocus.scoring.checkpoint import read_metadata
from napari_semfocus.scoring.intervals import (
    IntervalModel,
    conformal_ranks,
    min_calibration_frames,
    short_coverage_chance,
)
from napari_semfocus.scoring.scorer import FocusScorer
from napari_semfocus.training.finetune import finetune, finetune_config

from ..helpers import needs_default_model

TINY = {"epochs": 1, "steps_per_epoch": 2, "batch_size": 4, "crop_hw": (96, 128),
        "device": "cpu"}


def test_too_small_follows_the_finite_sample_ranks():
    need = min_calibration_frames(0.8)
    # below 9 frames a rank of an 80 % interval falls off the ends: a side is unbounded
    assert conformal_ranks(8, 0.8)[0] == 0 and short_coverage_chance(8, 0.8) == 1.0
    assert short_coverage_chance(need - 1, 0.8) > 0.1
    assert all(short_coverage_chance(n, 0.8) <= 0.1 for n in range(need, need + 200))
    assert min_calibration_frames(0.9) < need < min_calibration_frames(0.5)


@needs_default_model
def test_a_tiny_split_falls_back_to_the_parents_interval_widened(expert_set, tmp_path):
    table, frames = expert_set  # 8 images x 5 blurs; a quarter held out: 2 images, 10 frames
    result = run_to_end(finetune(table, finetune_config(**TINY), frames=frames,
                                 keep_parent=False))
    parent = FocusScorer.default(device="cpu").interval
    note = result.interval_note
    assert note.startswith(f"the validation split (10 frame(s)) is too small to calibrate a 80% "
                           f"interval (it needs {min_calibration_frames(0.8)}")
    model = IntervalModel.from_dict(result.metadata["interval"])
    by = model.calibration["widened_by"]
    print(f"fallback: the parent's interval widened by {by:.2f} points each side")
    assert by > 0 and f"widened by {by:.2f} points" in note
    assert model.edges == parent.edges and model.level == parent.level
    assert [round(lo + by, 6) for lo in model.lower] == [round(lo, 6) for lo in parent.lower]
    assert [round(hi - by, 6) for hi in model.upper] == [round(hi, 6) for hi in parent.upper]
    meta = read_metadata(result.save(tmp_path / "tiny.safetensors"))  # travels with the model
    assert meta["interval"]["calibration"]["fallback"] == note
    assert meta["fine_tuning"]["interval_note"] == note


@needs_default_model
def test_a_big_enough_split_calibrates_its_own_interval(expert_set):
    table, frames = expert_set  # 5 of 8 images held out: 25 frames
    result = run_to_end(finetune(table, finetune_config(**TINY), frames=frames,
                                 val_fraction=0.6, keep_parent=False))
    assert result.metadata["fine_tuning"]["val_frames"] == 25 >= min_calibration_frames(0.8)
    assert result.interval_note is None
    model = IntervalModel.from_dict(result.metadata["interval"])
    assert model.calibration["recalibrated"] and model.calibration["frames"] == 25
    assert model.counts == (25,) and model.level == pytest.approx(0.8)  # too few for noise bins
    scorer = FocusScorer(result.model, result.metadata, device="cpu")
    low, high = scorer.bounds([5.0], [0.1])
    assert low[0] < 5.0 < high[0]
