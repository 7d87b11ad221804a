"""The review band (issue 24): accept when the whole interval lies at or above the threshold,
reject when it lies below, review when it straddles; the exact decisions CSV, the figures that
calibration stores, and the one sentence where there is no band."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile

from napari_semfocus.errors import SemFocusError
from napari_semfocus.gate.file import Gate, signature
from napari_semfocus.gate.review import review_figures, three_way
from napari_semfocus.jobs.gate import ApplySettings, apply_gate, decisions_table
from napari_semfocus.jobs.inputs import ImageInput
from napari_semfocus.progress import run_to_end
from napari_semfocus.scoring.checkpoint import checkpoint_fingerprint

from ..helpers import MODEL, run_cli

SCORES = [7.0, 6.2, 5.0, 8.0, 5.8]
LOW = [6.0, 5.5, 4.0, 7.4, 5.0]  # slice 0: its low end exactly at the threshold (accepted)
HIGH = [8.0, 7.0, 5.9, 9.0, 6.5]  # slices 1 and 4 straddle 6.0: one above, one below it


def gate(threshold=6.0, rule="whole", review=None) -> Gate:
    return Gate(threshold=threshold, target_precision=0.9, model=dict(MODEL), accept_rule={},
                calibration={}, score_rule=rule, review=review)


def test_three_way_decisions_csv_and_figures():
    image = ImageInput("frames", np.zeros((5, 32, 32)), 5000.0)
    stored = ((np.array(SCORES), None, np.array(LOW), np.array(HIGH)),)
    settings = ApplySettings(gate(), (image,), stored, review=True)
    (res,) = run_to_end(apply_gate(settings)).images
    assert res.decisions.tolist() == ["accept", "review", "reject", "accept", "review"]
    assert decisions_table([res]) == (
        "path,index,magnification,score,score_low,score_high,worst_region,accepted,decision\n"
        "frames,0,5000,7.0000,6.0000,8.0000,,1,accept\n"
        "frames,1,5000,6.2000,5.5000,7.0000,,0,review\n"
        "frames,2,5000,5.0000,4.0000,5.9000,,0,reject\n"
        "frames,3,5000,8.0000,7.4000,9.0000,,1,accept\n"
        "frames,4,5000,5.8000,5.0000,6.5000,,0,review\n")
    # without the band: the plain gate, its columns unchanged (slice 1 accepted, 4 rejected)
    plain = run_to_end(apply_gate(ApplySettings(gate(), (image,), stored))).images
    assert decisions_table(plain).splitlines()[0].endswith(",worst_region,accepted")
    assert plain[0].accepted.tolist() == [True, True, False, True, False]

    # slice 1 (score 6.2, above the threshold, not acceptable) goes to review, not accepted
    acceptable = [True, False, False, True, True]
    figures = review_figures(6.0, LOW, HIGH, acceptable)
    assert (figures.accepted, figures.review, figures.rejected) == (2, 2, 1)
    assert figures.precision == 1.0 and figures.fraction_review == pytest.approx(0.4)
    assert figures.recall == pytest.approx(2 / 3) and figures.rejected_good == 0
    with pytest.raises(SemFocusError, match="score_low <= score_high"):
        three_way(6.0, [7.0], [6.0])


def test_review_figures_travel_signed_in_the_gate_file(tmp_path):
    record = {"interval_level": 0.8, "calibration": review_figures(
        6.0, LOW, HIGH, [True, False, False, True, True]).as_dict()}
    path = gate(review=record).save(tmp_path / "gate.json")
    assert Gate.load(path).review == record
    text = path.read_text().replace('"review": 2', '"review": 0')
    (tmp_path / "edited.json").write_text(text)
    with pytest.raises(SemFocusError, match="does not match its signature"):
        Gate.load(tmp_path / "edited.json")
    # a gate file of format version 2 (before the review band) loads, without the figures
    old = {k: v for k, v in gate().to_dict().items() if k != "review"}
    old["format_version"] = 2
    old["signature"] = signature(old)
    (tmp_path / "v2.json").write_text(json.dumps(old))
    assert Gate.load(tmp_path / "v2.json").review is None


def test_no_band_without_intervals_one_sentence(tmp_path, untrained_checkpoint, capsys):
    image = ImageInput("frames", np.zeros((5, 32, 32)), 5000.0)
    worst = ApplySettings(gate(rule="worst-region"), (image,), review=True)
    with pytest.raises(SemFocusError, match="compares the worst-region score, which has no "):
        run_to_end(apply_gate(worst))
    # a model without intervals (here an untrained one): one sentence, nothing written
    path = gate(threshold=5.0).save(tmp_path / "gate.json")
    bare = Gate.load(path)
    bare.model = checkpoint_fingerprint(untrained_checkpoint)
    bare.save(path)
    tifffile.imwrite(tmp_path / "a.tif", np.random.default_rng(0).integers(0, 255, (64, 64),
                                                                           dtype=np.uint8))
    out = tmp_path / "decisions.csv"
    code, _, err = run_cli(["gate", "apply", tmp_path / "a.tif", "--gate", path, "--checkpoint",
                            untrained_checkpoint, "--magnification", "5000", "--review",
                            "--device", "cpu", "--output", out], capsys)
    assert code != 0 and not out.exists()
    assert err.strip().endswith(
        f"the model {untrained_checkpoint.name} has no score intervals (a fine-tuned model before "
        "its intervals are calibrated), so there is no review band: apply the gate without it.")
    assert len(err.strip().splitlines()) == 1, err
