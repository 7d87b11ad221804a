"""The Acceptance gate dock widget in a real napari viewer (Qt; run under Xvfb on CI).

A gate is calibrated in the widget (worker thread) from labelled, blurred copies of real SEM
frames scored by the shipped model, saved, loaded back, and applied to the "SEM focus series"
sample: the in-focus slice is accepted and the clearly blurred slices are rejected; table,
rejected list, CSV export and ``metadata["semfocus_gate"]`` agree; the pixels are unchanged;
"Next rejected" and a click in the list move the viewer; with the review band ticked, the
stored intervals decide accept / reject / review. A screenshot is taken (gate-widget.png,
kept in docs/images/ by scripts/docs_images.sh, in a temporary folder otherwise).

With the worst-region rule, a gate calibrated in the widget rejects the half-focused sample,
which the same calibration on the whole score accepts (screenshot gate-worst-region.png).
"""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest

from napari_semfocus._widgets.gate_widget import AcceptanceGateWidget
from napari_semfocus.gate.calibrate import calibrate
from napari_semfocus.gate.file import Gate

from ..helpers import (
    check_screenshot,
    docked_viewer,
    labelled_frames,
    needs_default_model,
    parse_csv,
    write_manifest,
)

pytestmark = [pytest.mark.gui, needs_default_model]

SCREENSHOT = "gate-widget.png"
WORST_REGION_SCREENSHOT = "gate-worst-region.png"
SERIES = "SEM focus series"
HALF = "Half-focused frame"
TIMEOUT_MS = 300_000
SIGMAS = (0.0, 0.5, 1.0, 1.5, 1.7, 1.9, 2.1, 2.5, 4.0, 6.0)  # labels 10 .. 7.3, 7.0, 6.8 .. 4.5
POOL_FILES = ("lungcells_lacunarity/DC_v2__CS_DCs_12000x_A.tif",
              "lungcells_lacunarity/DC_v2__CS_DCs_2500x_B.tif",
              "lungcells_lacunarity/DC_v2__CS_DCs_2500x_A.tif")


@pytest.fixture(scope="module")
def labelled_manifest(tmp_path_factory):
    """240 x 320 crops of three real SEM frames (2x downscaled) blurred by SIGMAS, labelled by
    the score scale; several near the accept score 7, where the model is not perfect (the
    frames differ in their own sharpness)."""
    root = tmp_path_factory.mktemp("gate-labelled")
    rows, _ = labelled_frames(root, POOL_FILES, SIGMAS, (slice(100, 340), slice(100, 420)), "c")
    with open(root / "manifest.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "magnification", "label", "series"])
        w.writerows((name, f"{mag:g}", f"{label:.3f}", f"c{series[1:]}")
                    for name, mag, label, series in rows)
    return root / "manifest.csv"


@pytest.fixture
def gate_viewer(make_napari_viewer):
    return docked_viewer(make_napari_viewer, AcceptanceGateWidget, "Acceptance gate",
                         ["focus_series"], (1500, 1100))


def wait(qtbot, widget):
    qtbot.waitUntil(lambda: not widget.is_running, timeout=TIMEOUT_MS)


def test_calibrate_apply_to_focus_series(gate_viewer, qtbot, tmp_path, labelled_manifest, errors,
                                         screenshot_dir):
    viewer, widget = gate_viewer
    layer = viewer.layers[SERIES]
    before = np.array(layer.data, copy=True)

    # calibrate in the worker thread
    widget.set_manifest(labelled_manifest)
    widget.precision_spin.setValue(0.9)
    widget.calibrate()
    wait(qtbot, widget)
    assert not errors, errors
    cal = widget.calibration
    assert cal is not None and cal.target_reached and cal.figures.precision >= 0.9
    assert cal.figures.recall < 1 or cal.figures.confusion.fp > 0  # an imperfect model here
    assert widget.gate.threshold == cal.threshold
    assert "threshold" in widget.gate_label.text()
    # the same numbers as the core on the same scores
    again = calibrate(cal.scores, acceptable=cal.acceptable, target_precision=0.9)
    assert again.threshold == cal.threshold and again.figures == cal.figures
    # changing the target re-chooses at once, without scoring again
    widget.precision_spin.setValue(0.8)
    assert widget.calibration.target_precision == 0.8
    assert widget.calibration.threshold <= cal.threshold
    widget.precision_spin.setValue(0.9)
    assert widget.gate.threshold == cal.threshold

    # save, and load it back as a user would
    gate_path = widget.save_gate(tmp_path / "gate.json")
    assert json.loads(gate_path.read_text())["target_precision"] == 0.9
    assert widget.load_gate(gate_path) is not None
    assert widget.gate == Gate.load(gate_path)

    # apply to the focus series (scored with the same worker as Score focus)
    assert widget.selected_layer_names() == [SERIES]
    widget.apply_gate()
    wait(qtbot, widget)
    assert not errors, errors
    (res,) = widget.results
    truth = layer.metadata["in_focus_index"]
    expected = np.array(layer.metadata["expected_scores"])
    assert res.scores.shape == (11,) and res.scores_from == "scored"
    assert res.accepted[truth], res.scores  # the sharp slice is accepted
    clearly_blurred = expected < 6.0  # slices 2 or more steps from focus
    assert not res.accepted[clearly_blurred].any(), res.scores
    np.testing.assert_array_equal(res.accepted, res.scores >= widget.gate.threshold)

    # metadata, table, rejected list and CSV agree; pixels untouched
    stored = layer.metadata["semfocus_gate"]
    assert stored["accepted"] == [bool(v) for v in res.accepted]
    assert stored["rejected_slices"] == res.rejected_slices
    assert stored["threshold"] == widget.gate.threshold
    assert stored["gate_file"] == str(gate_path)
    np.testing.assert_allclose(layer.metadata["semfocus"]["scores"], res.scores)
    rows = widget.table.rows()
    assert [r[1] for r in rows] == list(range(11))
    assert [r[3] for r in rows] == [bool(v) for v in res.accepted]
    assert widget.rejected() == [(SERIES, i) for i in res.rejected_slices]
    out = widget.export_csv(tmp_path / "decisions.csv")
    got = list(csv.DictReader(io.StringIO(out.read_text())))
    assert list(got[0]) == ["path", "index", "magnification", "score", "score_low", "score_high",
                            "worst_region", "accepted"]
    assert [r["accepted"] == "1" for r in got] == [bool(v) for v in res.accepted]
    np.testing.assert_array_equal(layer.data, before)

    # finding the rejected slices: next rejected, and a click in the list
    first = res.rejected_slices[0]
    assert widget.next_rejected() == (SERIES, first)
    assert viewer.dims.current_step[0] == first
    assert widget.next_rejected() == (SERIES, res.rejected_slices[1])
    assert viewer.dims.current_step[0] == res.rejected_slices[1]
    last = widget.rejected_list.item(widget.rejected_list.count() - 1)
    widget.rejected_list.itemClicked.emit(last)
    assert viewer.dims.current_step[0] == res.rejected_slices[-1]

    # applying again reuses the scores now stored in the layer (no scoring)
    widget.apply_gate()
    wait(qtbot, widget)
    assert widget.results[0].scores_from == "layer metadata"
    np.testing.assert_array_equal(widget.results[0].accepted, res.accepted)

    # the review band: the stored scores' intervals decide three ways (the real worker)
    widget.review_check.setChecked(True)
    widget.apply_gate()
    wait(qtbot, widget)
    assert not errors, errors
    (band,) = widget.results
    low, high = (np.array(layer.metadata["semfocus"][k]) for k in ("score_low", "score_high"))
    t = widget.gate.threshold
    want = np.where(low >= t, "accept", np.where(high < t, "reject", "review"))
    assert band.decisions.tolist() == want.tolist() and "review" in want, (low, high, t)
    np.testing.assert_array_equal(band.accepted, want == "accept")
    got = parse_csv(widget.export_csv(tmp_path / "review.csv").read_text())
    assert list(got[0])[-2:] == ["accepted", "decision"]
    assert [r["decision"] for r in got] == want.tolist()
    assert [widget.table.decision(r) for r in range(11)] == want.tolist()
    assert layer.metadata["semfocus_gate"]["decisions"] == want.tolist()
    assert f"{(want == 'review').sum()} to review" in widget.summary_label.text()
    review = [i for i in range(11) if want[i] == "review"]
    assert widget.rejected() == [(SERIES, i) for i in range(11) if want[i] != "accept"]

    # screenshot: the calibration curve and the decisions with the review band, at a review slice
    widget.go_to_slice(SERIES, review[0])
    screenshot_decisions(viewer, widget, qtbot, screenshot_dir / SCREENSHOT)


def test_bad_gate_file_and_missing_gate_are_reported(gate_viewer, tmp_path, errors):
    viewer, widget = gate_viewer
    viewer.layers[SERIES].name = "renamed series"
    assert widget.selected_layer_names() == ["renamed series"]
    widget.apply_gate()  # no gate yet
    assert errors == ["No gate: load a gate file or calibrate one first."]
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "napari-semfocus-gate"}')
    assert widget.load_gate(bad) is None
    assert errors[-1].startswith(f"gate file {bad} lacks the key(s) format_version, threshold")
    assert widget.gate is None and not widget.is_running


def test_worst_region_rule_rejects_the_half_focused_sample(make_napari_viewer, qtbot, tmp_path,
                                                          labelled_folder, errors,
                                                          screenshot_dir):
    """Calibrated on one blur series (acceptable from expert score 6.5: threshold ~6.9), the
    worst-region gate rejects the half-focused sample (whole ~7.6, worst region ~4.7); the same
    calibration re-chosen on the whole score (no rescoring) accepts it."""
    viewer, widget = docked_viewer(make_napari_viewer, AcceptanceGateWidget, "Acceptance gate",
                                   ["half_focused"], (1500, 1200))
    layer = viewer.layers[HALF]
    before = np.array(layer.data, copy=True)
    root, rows = labelled_folder
    widget.set_manifest(write_manifest(tmp_path / "series0.csv", [
        (str(root / r[0]), *r[1:]) for r in rows if r[3] == rows[0][3]]))
    widget.accept_spin.setValue(6.5)
    widget.rule_combo.setCurrentIndex(widget.rule_combo.findData("worst-region"))
    widget.calibrate()
    wait(qtbot, widget)
    assert not errors, errors
    gate = widget.gate
    assert gate.score_rule == "worst-region" and "on the worst region" in widget.gate_label.text()
    legend = [t.get_text() for t in widget.figure.axes[0].get_legend().get_texts()]
    assert any(t.startswith(f"gate: worst region >= {gate.threshold:.2f}") for t in legend), legend

    widget.set_selected_layers([HALF])
    widget.apply_gate()
    wait(qtbot, widget)
    assert not errors, errors
    (res,) = widget.results
    assert res.scores[0] >= gate.threshold > res.worst_region[0] + 1.0, (res, gate.threshold)
    assert res.accepted.tolist() == [False] and res.scores_from == "scored"
    stored = layer.metadata["semfocus_gate"]
    assert stored["score_rule"] == "worst-region" and stored["accepted"] == [False]
    assert stored["worst_region"] == pytest.approx(res.worst_region.tolist())
    assert layer.metadata["semfocus"]["worst_region"] == pytest.approx(res.worst_region.tolist())
    assert widget.rejected_list.item(0).text() == f"{HALF} (worst region {res.worst_region[0]:.2f})"
    assert "(worst region >= " in widget.summary_label.text()
    (row,) = widget.table.rows()
    assert row[3] is False and row[4] == pytest.approx(res.worst_region[0])

    screenshot_decisions(viewer, widget, qtbot, screenshot_dir / WORST_REGION_SCREENSHOT)

    # the same calibration on the whole score: re-chosen at once, and it accepts the frame
    widget.rule_combo.setCurrentIndex(widget.rule_combo.findData("whole"))
    assert widget.gate.score_rule == "whole" and widget.gate.threshold == gate.threshold
    assert "on the whole score" in widget.gate_label.text()
    widget.apply_gate()
    wait(qtbot, widget)
    assert widget.results[0].scores_from == "layer metadata"
    assert widget.results[0].accepted.tolist() == [True]
    assert layer.metadata["semfocus_gate"]["score_rule"] == "whole"
    np.testing.assert_array_equal(layer.data, before)


def screenshot_decisions(viewer, widget, qtbot, path) -> None:
    """Save (and check) a screenshot of the gate with its calibration folded and the decisions
    table in view."""
    widget.calibrate_section.collapse(animate=False)
    qtbot.wait(200)
    widget.scroll_area.ensureWidgetVisible(widget.table, 0, 10)
    qtbot.wait(500)
    path.parent.mkdir(parents=True, exist_ok=True)
    check_screenshot(viewer.screenshot(str(path), canvas_only=False, flash=False), path)
