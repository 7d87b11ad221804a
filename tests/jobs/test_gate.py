"""The gate's jobs: the widget's calibration (with a held-out part) is the command line's, and
applying reuses the scores a layer holds when they come from the gate's model."""

from __future__ import annotations

import dataclasses

import numpy as np

from napari_semfocus.cli.main import main
from napari_semfocus.gate.calibrate import calibrate, figures_at
from napari_semfocus.gate.file import Gate
from napari_semfocus.jobs.gate import (
    ApplySettings,
    CalibrateSettings,
    CalibrationScored,
    apply_gate,
    calibrate_gate,
)
from napari_semfocus.jobs.inputs import ImageInput
from napari_semfocus.jobs.records import SCORES_KEY, scores_record, stored_scores
from napari_semfocus.jobs.score import ImageScores, ScoreRun, ScoreSettings
from napari_semfocus.progress import run_to_end

from ..helpers import MODEL, needs_default_model, synthetic


@needs_default_model
def test_the_widget_job_and_the_cli_calibrate_the_same_gate_with_a_hold_out(labelled_folder,
                                                                             tmp_path, capsys):
    root, rows = labelled_folder
    manifest = root / "manifest.csv"
    settings = CalibrateSettings(str(manifest), target_precision=0.9, hold_out=0.5, seed=1,
                                 best_effort=True, device="cpu")
    updates = []
    result = run_to_end(calibrate_gate(settings), updates.append)
    scored = [u for u in updates if isinstance(u, CalibrationScored)]
    assert len(scored) == 1 and len(scored[0].rows) == len(rows)
    assert result.check is not None and result.held_out is not None

    out = tmp_path / "gate.json"
    code = main(["gate", "calibrate", "--manifest", str(manifest), "--target-precision", "0.9",
                 "--hold-out", "0.5", "--seed", "1", "--best-effort", "--output", str(out),
                 "--device", "cpu"])
    assert code == 0, capsys.readouterr().err
    cli = Gate.load(out)
    assert cli.threshold == result.gate.threshold
    assert cli.calibration == result.gate.calibration
    assert cli.held_out == result.gate.held_out
    assert cli.held_out["n_groups"] == len(result.check.held_out_groups) == 2
    assert cli.model == result.gate.model and cli.region == result.gate.region

    # another target: the same scores, and the held-out figures follow the new threshold
    other = result.with_target(0.8)
    held = result.check.held_out_index
    scores = np.array([r.score for r in result.rows])
    want = figures_at(scores[held], result.acceptable[held], other.calibration.threshold)
    assert other.held_out == want
    assert other.gate.threshold == other.calibration.threshold
    assert other.gate.held_out["precision"] == want.precision


def test_applying_reuses_scores_a_layer_holds_from_the_gate_model():
    scores, expert = synthetic()
    gate = Gate.from_calibration(calibrate(scores, expert_scores=expert), model=MODEL)
    frames = np.zeros((2, 32, 32), np.uint8)
    held = np.array([gate.threshold - 1.0, gate.threshold + 1.0])
    settings = ApplySettings(gate, (ImageInput("stack", frames, 5000.0),),
                             reused=((held, held[::-1]),))
    result = run_to_end(apply_gate(settings))  # no model is loaded: nothing to score
    (res,) = result.images
    assert res.scores_from == "layer metadata" and result.run is None
    assert res.accepted.tolist() == [False, True] and res.rejected_slices == [0]
    # a worst-region gate compares the worst regions instead
    worst_gate = dataclasses.replace(gate, score_rule="worst-region")
    result = run_to_end(apply_gate(dataclasses.replace(settings, gate=worst_gate)))
    assert result.images[0].accepted.tolist() == [True, False]
    assert [r.worst_region for r in result.images[0].rows()] == held[::-1].tolist()


def test_the_scores_record_is_read_back_for_the_gate_of_the_same_model():
    scores, expert = synthetic()
    gate = Gate.from_calibration(calibrate(scores, expert_scores=expert), model=MODEL)
    run = ScoreRun(ScoreSettings((), region=gate.region), model_name=MODEL["name"],
                   device_name="cpu", model_sha256=MODEL["sha256"])
    res = ImageScores("stack", np.array([2.0, 9.0, 4.0]), 5000.0, 0,
                      worst_region=np.array([1.0, 8.0, 3.5]))
    record = scores_record(res, run)
    assert record["best_index"] == 1 and record["model_sha256"] == MODEL["sha256"]
    assert record["worst_region"] == [1.0, 8.0, 3.5]
    scores, worst = stored_scores({SCORES_KEY: record}, gate, 3)
    np.testing.assert_array_equal(scores, res.scores)
    np.testing.assert_array_equal(worst, res.worst_region)
    # a worst-region gate needs the worst regions: a record without them is scored again
    worst_gate = dataclasses.replace(gate, score_rule="worst-region")
    assert stored_scores({SCORES_KEY: record}, worst_gate, 3)[1].tolist() == [1.0, 8.0, 3.5]
    assert stored_scores({SCORES_KEY: {**record, "worst_region": None}}, worst_gate, 3) is None
    assert stored_scores({SCORES_KEY: record}, gate, 2) is None  # other slices
    other = {**record, "model_sha256": "cd" * 32}
    assert stored_scores({SCORES_KEY: other}, gate, 3) is None  # same name, another file
    measure = scores_record(res, ScoreRun(ScoreSettings((), method="brenner")))
    assert measure["model_sha256"] is None and measure["region"] == "whole"
    assert stored_scores({SCORES_KEY: measure}, gate, 3) is None


def test_calibration_settings_default_to_the_cli_defaults():
    s = CalibrateSettings("m.csv")
    assert (s.target_precision, s.accept_score, s.label_column, s.group_column, s.hold_out) == (
        0.95, 7.0, "label", "series", None)
