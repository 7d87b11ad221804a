"""The acceptance gate: threshold at a target precision, its figures, the gate file, the CLI.

Synthetic scores (expert label + noise: an imperfect model) check the choice of threshold and
every reported number against a direct count (and scikit-learn); the shipped model's real scores
on blurred copies of real SEM images check the same end to end, through ``semfocus gate
calibrate`` and ``semfocus gate apply`` on a folder (same decisions as the API).
"""

from __future__ import annotations

import csv
import io
import json

import cv2
import numpy as np
import pytest
import tifffile
from sklearn.metrics import confusion_matrix, f1_score, precision_score, recall_score

from napari_semfocus.cli.main import main
from napari_semfocus.errors import SemFocusError
from napari_semfocus.gate.calibrate import calibrate, figures_at, held_out_check, pr_curve
from napari_semfocus.gate.file import Gate, model_fingerprint
from napari_semfocus.gate.labels import labels_from_column
from napari_semfocus.gate.plot import plot_pr_curve
from napari_semfocus.scale import label_for_added_blur
from napari_semfocus.scoring.scorer import FocusScorer, default_model_path

from .conftest import POOL, blur, need_pool

MODEL = {"name": "test-model.safetensors", "sha256": "ab" * 32, "hash_of": "file"}
needs_model = pytest.mark.skipif(not default_model_path().is_file(),
                                 reason="the shipped model is not in this checkout")


def synthetic(n=600, noise=1.2, seed=0):
    """Expert scores uniform on 0-10 and model scores = expert + Gaussian noise."""
    rng = np.random.default_rng(seed)
    expert = rng.uniform(0, 10, n)
    return expert + rng.normal(0, noise, n), expert


def direct_count(scores, acceptable, threshold):
    """Everything the gate reports, counted here without the module under test."""
    accepted = np.asarray(scores) >= threshold
    return {
        "precision": precision_score(acceptable, accepted),
        "recall": recall_score(acceptable, accepted),
        "f1_weighted": f1_score(acceptable, accepted, average="weighted"),
        "matrix": confusion_matrix(acceptable, accepted, labels=[False, True]),
        "n": len(accepted),
    }


def assert_matches_direct_count(figures, scores, acceptable, threshold):
    want = direct_count(scores, acceptable, threshold)
    assert figures.precision == pytest.approx(want["precision"], abs=1e-12)
    assert figures.recall == pytest.approx(want["recall"], abs=1e-12)
    assert figures.f1_weighted == pytest.approx(want["f1_weighted"], abs=1e-12)
    np.testing.assert_array_equal(figures.confusion.matrix(), want["matrix"])
    assert figures.n == want["n"]


# ---- the choice of threshold ----------------------------------------------------------------
@pytest.mark.parametrize("target", [0.8, 0.9, 0.95, 0.99])
def test_calibration_reaches_target_with_highest_recall(target):
    scores, expert = synthetic()
    acceptable = expert >= 7
    cal = calibrate(scores, expert_scores=expert, accept_score=7, target_precision=target)
    # the model is imperfect here: no threshold separates the classes
    assert cal.figures.recall < 1 or cal.figures.confusion.fp > 0
    assert cal.target_reached and cal.figures.precision >= target
    assert_matches_direct_count(cal.figures, scores, acceptable, cal.threshold)
    # brute force: no threshold reaching the target has a higher recall
    accepted = scores[None, :] >= np.unique(scores)[:, None]  # one row per threshold
    tp = (accepted & acceptable).sum(axis=1)
    precision, recall = tp / accepted.sum(axis=1), tp / acceptable.sum()
    best = recall[precision >= target].max()
    assert cal.figures.recall == pytest.approx(best)
    # the record of the calibration in a gate is the same numbers
    gate = Gate.from_calibration(cal, model=MODEL)
    assert gate.calibration["confusion"] == cal.figures.confusion.as_dict()
    assert gate.calibration["n"] == len(scores)
    np.testing.assert_array_equal(gate.apply(scores), scores >= cal.threshold)


def test_pr_curve_matches_sklearn():
    from sklearn.metrics import precision_recall_curve

    scores, expert = synthetic(n=300, seed=3)
    scores = np.round(scores, 1)  # ties between images
    acceptable = expert >= 7
    curve = pr_curve(scores, acceptable)
    p, r, t = precision_recall_curve(acceptable, scores)
    order = np.argsort(-t)
    np.testing.assert_allclose(curve.thresholds, t[order])
    np.testing.assert_allclose(curve.precision, p[:-1][order])
    np.testing.assert_allclose(curve.recall, r[:-1][order])


def test_accept_reject_labels_give_the_same_gate():
    scores, expert = synthetic(seed=1)
    acceptable = expert >= 7
    by_expert = calibrate(scores, expert_scores=expert)
    words = ["accept" if a else "reject" for a in acceptable]
    by_words = calibrate(scores, labels=words)
    flags, rule = labels_from_column(words)
    assert rule == {"kind": "labels", "column": "label"}
    zero_one, rule01 = labels_from_column([str(int(a)) for a in acceptable], accept_score=1)
    assert rule01["kind"] == "expert_score"
    np.testing.assert_array_equal(flags, acceptable)
    np.testing.assert_array_equal(zero_one, acceptable)
    assert by_words.threshold == by_expert.threshold
    assert by_words.figures == by_expert.figures
    with pytest.raises(SemFocusError, match="mixes expert scores and the word 'maybe'"):
        labels_from_column(["7.5", "maybe"])


def test_unreachable_target_fails_or_is_flagged():
    scores = np.array([9.0, 8.0, 7.0, 6.0, 5.0])
    acceptable = np.array([False, True, True, False, True])  # the top image is a bad one
    with pytest.raises(SemFocusError) as err:
        calibrate(scores, acceptable=acceptable, target_precision=0.9)
    assert str(err.value) == (
        "target precision 0.9 is not reached on these 5 images: the best is 0.667 "
        "(threshold 7, recall 0.667); lower the target precision (or accept the best effort).")
    cal = calibrate(scores, acceptable=acceptable, target_precision=0.9, best_effort=True)
    assert not cal.target_reached
    assert cal.threshold == 7.0 and cal.figures.precision == pytest.approx(2 / 3)
    gate = Gate.from_calibration(cal, model=MODEL)
    assert gate.to_dict()["target_reached"] is False


def test_one_class_and_bad_targets_fail_clearly():
    with pytest.raises(SemFocusError) as err:
        calibrate([5.0, 6.0, 9.0], expert_scores=[8, 9, 10])
    assert str(err.value) == ("calibration needs images of both classes, but all 3 are "
                              "acceptable (expert score >= 7).")
    for bad in (0, 1.5, "high"):
        with pytest.raises(SemFocusError, match="target precision must be a number in"):
            calibrate([1.0, 9.0], expert_scores=[2, 9], target_precision=bad)


def test_held_out_check_counts_the_other_groups():
    scores, expert = synthetic(n=400, seed=2)
    acceptable = expert >= 7
    groups = np.repeat([f"s{i:02d}" for i in range(40)], 10)
    check = held_out_check(scores, acceptable, groups, 0.95, held_out_fraction=0.5, seed=0)
    assert not set(check.calibration_groups) & set(check.held_out_groups)
    assert len(check.held_out_groups) == 20
    held = check.held_out_index
    assert set(groups[held]) == set(check.held_out_groups)
    # the threshold comes from the calibration groups only
    alone = calibrate(scores[check.calibration_index], acceptable=acceptable[check.calibration_index])
    assert check.calibration.threshold == alone.threshold
    assert_matches_direct_count(check.held_out, scores[held], acceptable[held],
                                check.calibration.threshold)
    swapped = held_out_check(scores, acceptable, groups, 0.95, seed=0, swap=True)
    assert swapped.held_out_groups == check.calibration_groups


def test_pr_plot_png(tmp_path):
    scores, expert = synthetic()
    cal = calibrate(scores, expert_scores=expert)
    other_scores, other_expert = synthetic(seed=9)
    held = figures_at(other_scores, other_expert >= 7, cal.threshold)
    out = plot_pr_curve(cal, tmp_path / "pr.png", held_out=held)
    assert out is not None
    image = cv2.imread(str(tmp_path / "pr.png"))
    assert image.shape[0] > 300 and image.shape[1] > 400 and image.std() > 20


# ---- the gate file --------------------------------------------------------------------------
@pytest.fixture
def gate_file(tmp_path):
    scores, expert = synthetic()
    gate = Gate.from_calibration(calibrate(scores, expert_scores=expert), model=MODEL)
    return gate.save(tmp_path / "gate.json"), gate


def test_gate_file_round_trip(gate_file):
    path, gate = gate_file
    data = json.loads(path.read_text())
    assert {"threshold", "target_precision", "model", "accept_rule", "calibration", "created",
            "rule", "target_reached"} <= set(data)
    assert data["model"]["sha256"] == MODEL["sha256"]
    assert data["accept_rule"] == {"kind": "expert_score", "accept_score": 7.0}
    loaded = Gate.load(path)
    assert loaded == gate
    curve = pr_curve(*synthetic()[:1], synthetic()[1] >= 7)
    np.testing.assert_allclose(data["pr_curve"]["precision"], curve.precision, atol=5e-5)
    np.testing.assert_allclose(data["pr_curve"]["thresholds"], curve.thresholds, atol=5e-5)
    scores = np.linspace(0, 10, 101)
    np.testing.assert_array_equal(loaded.apply(scores), gate.apply(scores))


def rewrite(path, change):
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


@pytest.mark.parametrize("change, message", [
    (lambda d: d.pop("threshold"), "lacks the key(s) threshold."),
    (lambda d: (d.pop("calibration"), d["model"].pop("sha256")),
     "lacks the key(s) calibration, model.sha256."),
    (lambda d: d.update(threshold="high"), ": threshold must be a number, got 'high'."),
    (lambda d: d.update(target_reached="yes"), ": target_reached must be true or false, got 'yes'."),
    (lambda d: d.update(model="resnet"), ": model must be an object, got 'resnet'."),
    (lambda d: d.update(target_precision=1.5), ": target_precision must be in (0, 1], got 1.5."),
    (lambda d: d["pr_curve"].update(recall=[0.5]),
     ": pr_curve must hold equally long lists of numbers thresholds, precision and recall."),
    (lambda d: d.update(format="something-else"),
     " is not a napari-semfocus gate (format 'something-else', expected 'napari-semfocus-gate')."),
    (lambda d: d.update(format_version=9),
     " has format version 9, newer than this napari-semfocus reads (1); please upgrade."),
])
def test_bad_gate_files_fail_with_one_sentence(gate_file, change, message):
    path, _ = gate_file
    rewrite(path, change)
    with pytest.raises(SemFocusError) as err:
        Gate.load(path)
    text = str(err.value)
    assert text.startswith(f"gate file {path}")
    assert text.endswith(message) and "\n" not in text


def test_gate_files_that_are_not_gates(tmp_path):
    cases = {"empty.json": (b"", "is not valid JSON (Expecting value at line 1 column 1)."),
             "list.json": (b"[1, 2]", "holds a JSON list, not a gate (a JSON object)."),
             "binary.json": (b"\xff\xfe\x00\x81", "is not a text (JSON) file.")}
    for name, (content, message) in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(SemFocusError) as err:
            Gate.load(tmp_path / name)
        assert str(err.value) == f"gate file {tmp_path / name} {message}"
    with pytest.raises(SemFocusError) as err:
        Gate.load(tmp_path / "none.json")
    assert str(err.value) == f"gate file {tmp_path / 'none.json'} does not exist."


def test_gate_of_another_model_is_refused(gate_file):
    path, _ = gate_file
    other = {"name": "other.safetensors", "sha256": "cd" * 32}
    with pytest.raises(SemFocusError) as err:
        Gate.load(path, fingerprint=other)
    assert str(err.value) == (
        f"gate file {path} was calibrated for the model test-model.safetensors (abababababab), "
        "not other.safetensors (cdcdcdcdcdcd) used now: calibrate a gate for this model or use "
        "the gate's model.")
    assert Gate.load(path, fingerprint=dict(MODEL)).threshold > 0


# ---- real scores of the shipped model on blurred real SEM images ----------------------------
SIGMAS = (0.0, 0.75, 1.25, 2.0, 3.0, 5.0)  # labels 10, 8.7, 7.9, 6.9, 6.1, 5.0
POOL_FILES = ("lungcells_lacunarity/DC_v2__CS_DCs_12000x_A.tif",
              "lungcells_lacunarity/DC_v2__CS_DCs_8000x_A.tif",
              "lungcells_lacunarity/DC_v2__CS_DCs_2500x_B.tif")


@pytest.fixture(scope="module")
def labelled_folder(tmp_path_factory):
    """PNGs of three real SEM frames (2x downscaled, 240 x 320 crops) blurred by SIGMAS, with a
    manifest path,magnification,label,series and a stack TIFF of one series."""
    need_pool()
    from napari_semfocus.io.images import read_image

    root = tmp_path_factory.mktemp("labelled")
    rows, stack = [], []
    for k, rel in enumerate(POOL_FILES):
        img = read_image(POOL / rel)
        data = img.data[: img.data.shape[0] - img.databar_rows].astype(np.float32)
        data = cv2.resize(data, (data.shape[1] // 2, data.shape[0] // 2),
                          interpolation=cv2.INTER_AREA)[:240, :320]  # one model tile
        lo, hi = np.percentile(data, [0.5, 99.5])
        for j, sigma in enumerate(SIGMAS):
            frame = np.clip(255 * (blur(data, sigma) - lo) / (hi - lo), 0, 255).astype(np.uint8)
            name = f"img{k}_{j}.png"
            cv2.imwrite(str(root / name), frame)
            rows.append((name, img.magnification / 2, float(label_for_added_blur(sigma)), f"s{k}"))
            if k == 0:
                stack.append(frame)
    with open(root / "manifest.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "magnification", "label", "series"])
        w.writerows(rows)
    stack_dir = root / "stacks"
    stack_dir.mkdir()
    tifffile.imwrite(stack_dir / "series0.tif", np.stack(stack),
                     metadata={"magnification": rows[0][1]})
    return root, rows


@pytest.fixture(scope="module")
def scorer():
    return FocusScorer.default(device="cpu")


@needs_model
def test_real_scores_calibrate_and_the_cli_agrees(labelled_folder, scorer, tmp_path, capsys):
    root, rows = labelled_folder
    scores = np.array([scorer.score(cv2.imread(str(root / r[0]), cv2.IMREAD_GRAYSCALE), r[1])[0]
                       for r in rows])
    expert = np.array([r[2] for r in rows])
    acceptable = expert >= 7
    cal = calibrate(scores, expert_scores=expert, target_precision=0.9)
    assert cal.target_reached and cal.figures.precision >= 0.9
    assert_matches_direct_count(cal.figures, scores, acceptable, cal.threshold)

    gate_path, png = tmp_path / "gate.json", tmp_path / "pr.png"
    code = main(["gate", "calibrate", "--manifest", str(root / "manifest.csv"), "--precision",
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
    assert list(got[0]) == ["path", "index", "magnification", "score", "accepted"]
    pngs = sorted(root.glob("*.png"))
    assert [r["path"] for r in got[: len(pngs)]] == [str(p) for p in pngs]
    assert [int(r["index"]) for r in got[len(pngs):]] == list(range(len(SIGMAS)))
    # the API's decisions on the same files
    from napari_semfocus.io.images import read_image

    want = []
    for p in pngs + [root / "stacks" / "series0.tif"]:
        img = read_image(p)
        mag = img.magnification or next(r[1] for r in rows if r[0] == p.name)
        want.extend(gate.apply(scorer.score(img.data, mag)))
    assert [r["accepted"] == "1" for r in got] == [bool(v) for v in want]
    assert 0 < sum(want) < len(want)
    assert f"{sum(want)} accepted, {len(want) - sum(want)} rejected" in err


def run_cli(args, capsys):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@needs_model
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
    code, _, err = run_cli(["gate", "calibrate", "--manifest", m, "--precision", "1.2",
                            "--output", tmp_path / "g.json"], capsys)
    assert code == 2 and err == ("semfocus gate: error: target precision must be a number in "
                                 "(0, 1], got 1.2.\n")
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = run_cli(["gate", "apply", empty, "--gate", tmp_path / "other.json"], capsys)
    assert code == 2 and err == f"semfocus gate: error: {empty}: the folder holds no TIFF, PNG " \
        "or JPEG images.\n"
