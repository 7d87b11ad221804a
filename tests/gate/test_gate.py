"""The acceptance gate: threshold at a target precision, its figures, the gate file, the CLI.

Synthetic scores (expert label + noise: an imperfect model) check the choice of threshold and
every reported number against a direct count (and scikit-learn); the shipped model's real scores
on blurred copies of real SEM images check the same end to end, through ``semfocus gate
calibrate`` and ``semfocus gate apply`` on a folder (same decisions as the API).
"""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from sklearn.metrics import (
    precision_recall_curve,
)

from napari_semfocus.errors import SemFocusError, SemFocusWarning
from napari_semfocus.gate.calibrate import calibrate, figures_at, held_out_check, pr_curve
from napari_semfocus.gate.file import Gate
from napari_semfocus.gate.labels import labels_from_column
from napari_semfocus.gate.plot import plot_pr_curve

from ..helpers import MODEL, assert_matches_direct_count, synthetic


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
     " has format version 9, newer than this napari-semfocus reads (3); please upgrade."),
])
def test_bad_gate_files_fail_with_one_sentence(gate_file, change, message):
    path, _ = gate_file
    rewrite(path, change)
    with pytest.raises(SemFocusError) as err:
        Gate.load(path)
    text = str(err.value)
    assert text.startswith(f"gate file {path}")
    assert text.endswith(message) and "\n" not in text


def test_a_hand_edited_threshold_is_refused(gate_file):
    """The threshold must be the calibrated point of the stored curve: -5 (accepts everything)
    and another point of the curve (its precision and recall are not the stored ones) are
    refused; the calibrated file loads."""
    path, gate = gate_file
    assert Gate.load(path).threshold == gate.threshold
    other_point = next(t for t in gate.pr_curve["thresholds"] if abs(t - gate.threshold) > 0.5)
    for edited in (-5, other_point, gate.threshold + 0.001):
        rewrite(path, lambda d, t=edited: d.update(threshold=t))
        with pytest.raises(SemFocusError) as err:
            Gate.load(path)
        assert str(err.value) == (
            f"gate file {path}: threshold {edited:g} is not the calibrated one (no point of its "
            "precision-recall curve has it with the calibration's precision and recall), so the "
            "file was edited by hand; calibrate the gate again.")
    # an unsigned file (format version 1) written before the curve was stored cannot be
    # checked: it loads, with a warning that it is not signed
    rewrite(path, lambda d: (d.update(threshold=gate.threshold, format_version=1),
                             d.pop("pr_curve"), d.pop("signature")))
    with pytest.warns(SemFocusWarning, match="format version 1, which is not signed"):
        assert Gate.load(path).threshold == gate.threshold


SIGNATURE_MISMATCH = ("does not match its signature, so it was edited after calibration "
                      "(threshold, rule, region, model, accept rule, figures or curve); "
                      "calibrate the gate again.")


@pytest.mark.parametrize("change", [
    lambda d: d.update(region="centre"),  # compared centre scores with a whole-frame threshold
    lambda d: d.update(rule="accepted when worst_region >= threshold"),
    lambda d: d["model"].update(sha256="cd" * 32),
    lambda d: d["accept_rule"].update(accept_score=5.0),
    lambda d: d.update(target_precision=0.5),
    lambda d: d.update(target_reached=not d["target_reached"]),
    lambda d: d["calibration"].update(n=10),
    lambda d: d["pr_curve"]["recall"].__setitem__(0, 0.5),
    lambda d: d.update(created="2020-01-01T00:00:00+00:00"),
], ids=["region", "rule", "model", "accept_score", "target_precision", "target_reached",
        "calibration.n", "pr_curve", "created"])
def test_an_edit_of_any_field_that_changes_the_threshold_is_refused(gate_file, change):
    """Issue 28: an edit of region alone (whole -> centre) used to be applied; every field but
    the model file's path and the calibration source is signed."""
    path, _ = gate_file
    rewrite(path, change)
    with pytest.raises(SemFocusError) as err:
        Gate.load(path)
    assert str(err.value) == f"gate file {path} {SIGNATURE_MISMATCH}"


def test_harmless_edits_keep_the_signature_and_a_lost_signature_is_refused(gate_file):
    path, gate = gate_file
    data = json.loads(path.read_text())
    assert data["format_version"] == 3 and len(data["signature"]) == 64
    rewrite(path, lambda d: (d["model"].update(checkpoint_path="/moved/m.safetensors"),
                             d.update(calibration_source="labels of lab B")))
    path.write_text(json.dumps(json.loads(path.read_text()), indent=7))  # layout is free
    assert Gate.load(path).threshold == gate.threshold
    rewrite(path, lambda d: d.pop("signature"))
    with pytest.raises(SemFocusError) as err:
        Gate.load(path)
    assert str(err.value) == (f"gate file {path} lacks its signature (format version 3 files "
                              "are signed); calibrate the gate again.")


def test_the_chosen_point_stays_in_a_thinned_curve(tmp_path):
    scores, expert = synthetic(n=3000)
    cal = calibrate(scores, expert_scores=expert)
    gate = Gate.from_calibration(cal, model=MODEL)
    assert len(cal.curve.thresholds) > 2000 and len(gate.pr_curve["thresholds"]) <= 1001
    assert Gate.load(gate.save(tmp_path / "gate.json")) == gate


def test_the_rule_is_kept_in_the_file_and_old_files_read_as_whole(gate_file, tmp_path):
    path, gate = gate_file
    data = json.loads(path.read_text())
    assert data["rule"] == "accepted when score >= threshold"  # as files before the rule
    assert Gate.load(path).score_rule == "whole"
    scores, expert = synthetic()
    worst = Gate.from_calibration(calibrate(scores, expert_scores=expert), model=MODEL,
                                  score_rule="worst-region")
    worst.save(tmp_path / "worst.json")
    data = json.loads((tmp_path / "worst.json").read_text())
    assert data["rule"] == "accepted when worst_region >= threshold"
    loaded = Gate.load(tmp_path / "worst.json")
    assert loaded == worst and loaded.score_rule == "worst-region"
    assert "on the worst region" in loaded.summary()
    # the rule decides which score is compared
    t = worst.threshold
    assert worst.decide([t + 1, t + 1], [t - 1, t + 1]).tolist() == [False, True]
    assert gate.decide([gate.threshold + 1], [0.0]).tolist() == [True]
    with pytest.raises(SemFocusError, match="needs the model's worst-region scores"):
        worst.decide([t + 1], None)
    rewrite(path, lambda d: d.update(rule="accepted when mood >= threshold"))
    with pytest.raises(SemFocusError) as err:
        Gate.load(path)
    assert str(err.value) == (
        f"gate file {path} has the rule 'accepted when mood >= threshold'; this version applies "
        "only 'accepted when score >= threshold' or 'accepted when worst_region >= threshold'.")


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


def test_figures_come_from_scikit_learn_and_match_a_plain_count():
    """precision, recall, weighted F1, the confusion counts and the curve are scikit-learn's
    (issue 14, item 10), and still equal a count done here with numpy alone."""
    import sklearn.metrics

    from napari_semfocus.gate import calibrate as module

    for name in ("precision_recall_curve", "precision_score", "recall_score", "f1_score",
                 "confusion_matrix"):
        assert getattr(module, name, None) is getattr(sklearn.metrics, name), name
    scores, expert = synthetic(n=200, seed=5)
    acceptable = expert >= 7
    fig = figures_at(scores, acceptable, 7.5)
    a = scores >= 7.5
    tp, fp = int((a & acceptable).sum()), int((a & ~acceptable).sum())
    fn, tn = int((~a & acceptable).sum()), int((~a & ~acceptable).sum())
    assert (fig.confusion.tp, fig.confusion.fp, fig.confusion.fn, fig.confusion.tn) == (tp, fp, fn, tn)
    assert fig.precision == pytest.approx(tp / (tp + fp))
    assert fig.recall == pytest.approx(tp / (tp + fn))
    f1_acc, f1_rej = 2 * tp / (2 * tp + fp + fn), 2 * tn / (2 * tn + fn + fp)
    assert fig.f1_weighted == pytest.approx(((tp + fn) * f1_acc + (tn + fp) * f1_rej) / len(a))
    curve = pr_curve(scores, acceptable)
    k = int(np.argmin(np.abs(curve.thresholds - np.sort(scores)[150])))
    assert curve.tp[k] == int(((scores >= curve.thresholds[k]) & acceptable).sum())
    assert curve.fp[k] == int(((scores >= curve.thresholds[k]) & ~acceptable).sum())
