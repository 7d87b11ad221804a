"""``semfocus gate calibrate`` / ``apply`` on real scores of the shipped model, and their errors."""

from __future__ import annotations

import csv
import io
import json

import cv2
import numpy as np
import pytest
import tifffile

from napari_semfocus._sample_data import sample_path
from napari_semfocus.cli.main import main
from napari_semfocus.gate.calibrate import calibrate
from napari_semfocus.gate.file import Gate
from napari_semfocus.io.files import file_sha256
from napari_semfocus.io.images import read_image
from napari_semfocus.scoring.checkpoint import default_model_path, model_fingerprint

from ..helpers import LABELLED_SIGMAS as SIGMAS
from ..helpers import (
    MODEL,
    assert_matches_direct_count,
    needs_default_model,
    parse_csv,
    run_cli,
    synthetic,
    write_manifest,
)


@needs_default_model
def test_real_scores_calibrate_and_the_cli_agrees(labelled_folder, default_scorer, tmp_path, capsys):
    scorer = default_scorer
    root, rows = labelled_folder
    scores = np.array([scorer.score(cv2.imread(str(root / r[0]), cv2.IMREAD_GRAYSCALE), r[1])[0]
                       for r in rows])
    expert = np.array([r[2] for r in rows])
    acceptable = expert >= 7
    cal = calibrate(scores, expert_scores=expert, target_precision=0.9)
    assert cal.target_reached and cal.figures.precision >= 0.9
    assert_matches_direct_count(cal.figures, scores, acceptable, cal.threshold)

    gate_path, png = tmp_path / "gate.json", tmp_path / "pr.png"
    code = main(["gate", "calibrate", "--manifest", str(root / "manifest.csv"), "--target-precision",
                 "0.9", "--output", str(gate_path), "--plot", str(png), "--device", "cpu"])
    out, err = capsys.readouterr()
    assert code == 0, err
    gate = Gate.load(gate_path, scorer=scorer)
    assert gate.threshold == pytest.approx(cal.threshold, abs=1e-9)
    assert gate.calibration == cal.figures.as_dict()
    assert gate.model == {**model_fingerprint(scorer),
                          "checkpoint_path": str(default_model_path().resolve())}
    assert f"threshold: accept when score >= {cal.threshold:.4f}" in out
    assert png.is_file() and png.stat().st_size > 10_000

    # a folder of images and a folder with a stack: one decision per image / slice
    dec = tmp_path / "decisions.csv"
    code = main(["gate", "apply", str(root), str(root / "stacks"), "--gate", str(gate_path),
                 "--manifest", str(root / "manifest.csv"), "--output", str(dec), "--device", "cpu"])
    _, err = capsys.readouterr()
    assert code == 0, err
    got = list(csv.DictReader(io.StringIO(dec.read_text())))
    assert list(got[0]) == ["path", "index", "magnification", "score", "score_low", "score_high",
                            "worst_region", "accepted"]
    pngs = sorted(root.glob("*.png"))
    assert [r["path"] for r in got[: len(pngs)]] == [str(p) for p in pngs]
    assert [int(r["index"]) for r in got[len(pngs):]] == list(range(len(SIGMAS)))
    # the API's decisions on the same files
    want = []
    for p in pngs + [root / "stacks" / "series0.tif"]:
        img = read_image(p)
        mag = img.magnification or next(r[1] for r in rows if r[0] == p.name)
        want.extend(gate.apply(scorer.score(img.data, mag)))
    assert [r["accepted"] == "1" for r in got] == [bool(v) for v in want]
    assert 0 < sum(want) < len(want)
    assert f"{sum(want)} accepted, {len(want) - sum(want)} rejected" in err


@needs_default_model
def test_cli_bad_inputs_exit_2_with_one_line(labelled_folder, tmp_path, capsys):
    root, _ = labelled_folder
    png = root / "img0_0.png"
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    code, out, err = run_cli(["gate", "apply", png, "--gate", bad], capsys)
    assert code == 2 and out == ""
    assert err == (f"semfocus gate: error: gate file {bad} is not valid JSON (Expecting property "
                   "name enclosed in double quotes at line 1 column 2).\n")

    # a gate of another model: no default model fits it, and a given checkpoint is checked
    scores, expert = synthetic()
    other = Gate.from_calibration(calibrate(scores, expert_scores=expert), model=MODEL)
    other.save(tmp_path / "other.json")
    code, _, err = run_cli(["gate", "apply", png, "--gate", tmp_path / "other.json",
                            "--magnification", 5000], capsys)
    assert code == 2 and err.count("\n") == 1
    assert err == (f"semfocus gate: error: gate file {tmp_path / 'other.json'} was calibrated for "
                   "the model test-model.safetensors, which is neither the shipped default model "
                   "nor found at a recorded path: pass its checkpoint file.\n")
    code, _, err = run_cli(["gate", "apply", png, "--gate", tmp_path / "other.json",
                            "--checkpoint", default_model_path()], capsys)
    assert code == 2 and "was calibrated for the model test-model.safetensors (abababababab), " \
        f"not {default_model_path().name}" in err

    # calibration inputs
    m = tmp_path / "m.csv"
    m.write_text(f"path,label\n{png},high\n")
    code, _, err = run_cli(["gate", "calibrate", "--manifest", m, "--output", tmp_path / "g.json"],
                           capsys)
    assert code == 2 and err.count("\n") == 1
    assert "not an accept/reject label" in err and str(m) in err
    code, _, err = run_cli(["gate", "calibrate", "--manifest", m, "--target-precision", "1.2",
                            "--output", tmp_path / "g.json"], capsys)
    assert code == 2 and err == ("semfocus gate: error: target precision must be a number in "
                                 "(0, 1], got 1.2.\n")
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = run_cli(["gate", "apply", empty, "--gate", tmp_path / "other.json"], capsys)
    assert code == 2 and err == f"semfocus gate: error: {empty}: the folder holds no TIFF, PNG " \
        "or JPEG images.\n"


# ---- the worst-region rule ------------------------------------------------------------------------
@needs_default_model
def test_worst_region_gate_rejects_the_half_focused_sample_a_whole_gate_accepts(
        labelled_folder, tmp_path, capsys):
    """The half-focused sample scores ~7.6 as a whole and ~4.7 on its blurred half: a gate
    calibrated on one blur series with acceptable from expert score 6.5 (threshold ~6.9)
    accepts it on the whole score and rejects it on the worst region (single-tile calibration
    images: the same threshold for both rules)."""
    root, rows = labelled_folder
    manifest = write_manifest(tmp_path / "series0.csv",
                              [(str(root / r[0]), *r[1:]) for r in rows if r[3] == rows[0][3]])
    sample = sample_path("half_focused.tif")
    decisions = {}
    for rule in ("whole", "worst-region"):
        gate_path = tmp_path / f"{rule}.json"
        code, out, err = run_cli(["gate", "calibrate", "--manifest", manifest,
                                  "--accept-score", "6.5", "--rule", rule, "--output", gate_path,
                                  "--device", "cpu"], capsys)
        assert code == 0, err
        gate = Gate.load(gate_path)
        assert gate.score_rule == rule and 5.0 < gate.threshold < 7.3, gate.threshold
        score = "score" if rule == "whole" else "worst_region"
        assert f"threshold: accept when {score} >= {gate.threshold:.4f}" in out
        code, out, err = run_cli(["gate", "apply", sample, "--gate", gate_path,
                                  "--device", "cpu"], capsys)
        assert code == 0, err
        (row,) = parse_csv(out)
        assert float(row["score"]) > 7.0 and float(row["worst_region"]) < 5.5, row
        decisions[rule] = row["accepted"]
        assert f"accept when {score} >= {gate.threshold:.4f}" in err
    assert decisions == {"whole": "1", "worst-region": "0"}
    # apply uses the file's rule; asking for the other one is refused
    code, out, err = run_cli(["gate", "apply", sample, "--gate", tmp_path / "whole.json",
                              "--rule", "worst-region"], capsys)
    assert code == 2 and out == ""
    assert err == (f"semfocus gate: error: gate file {tmp_path / 'whole.json'} was calibrated "
                   "for the rule whole, not worst-region: calibrate a gate with --rule "
                   "worst-region.\n")


def test_apply_refuses_a_hand_edited_threshold_and_leaves_the_file(tmp_path, capsys):
    scores, expert = synthetic()
    gate_path = Gate.from_calibration(calibrate(scores, expert_scores=expert),
                                      model=MODEL).save(tmp_path / "gate.json")
    data = json.loads(gate_path.read_text())
    data["threshold"] = -5  # accepts everything
    gate_path.write_text(json.dumps(data, indent=2))
    before = file_sha256(gate_path)
    image = tmp_path / "img.tif"
    tifffile.imwrite(image, np.zeros((64, 64), np.uint8))
    code, out, err = run_cli(["gate", "apply", image, "--gate", gate_path,
                              "--magnification", "5000"], capsys)
    assert code == 2 and out == ""
    assert err == (f"semfocus gate: error: gate file {gate_path}: threshold -5 is not the "
                   "calibrated one (no point of its precision-recall curve has it with the "
                   "calibration's precision and recall), so the file was edited by hand; "
                   "calibrate the gate again.\n")
    assert file_sha256(gate_path) == before
