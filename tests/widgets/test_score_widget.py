"""The Score focus dock widget in a real napari viewer (Qt; run under Xvfb on CI).

End to end on the "SEM focus series" sample: one score per slice, best slice = the in-focus
slice (±1), the curve falls away on both sides, CSV export and ``metadata["semfocus"]`` hold the
numbers, and a screenshot of the viewer with the widget and the focus curve is taken (kept in
docs/images/ by scripts/docs_images.sh, in a temporary folder otherwise). The shipped
model is not always there (it is trained separately): its test is skipped without it, and the
same end-to-end test runs with classical measures, which must always pass.
"""

from __future__ import annotations

import csv
import io
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from qtpy.QtCore import Qt
from qtpy.QtWidgets import QComboBox, QLineEdit, QPushButton, QSpinBox

import napari_semfocus.scoring.checkpoint as checkpoint
from napari_semfocus._widgets.score_widget import ScoreFocusWidget
from napari_semfocus.scale import magnification_error
from napari_semfocus.scoring.checkpoint import default_model_path
from napari_semfocus.scoring.measures import measure

from ..helpers import (
    assert_layers_unchanged,
    check_screenshot,
    docked_viewer,
    layer_snapshot,
    needs_default_model,
)

pytestmark = pytest.mark.gui

SCREENSHOT = "score-widget.png"
SCREENSHOT_CLASSICAL = "score-widget-classical.png"
SERIES = "SEM focus series"
WORKER_TIMEOUT_MS = 600_000  # the model on 2 busy CPU cores


# ---- helpers --------------------------------------------------------------------------------
@pytest.fixture
def series_viewer(make_napari_viewer):
    """A shown viewer with the focus-series sample and the widget docked."""
    return docked_viewer(make_napari_viewer, ScoreFocusWidget, "Score focus", ["focus_series"])


def run_and_wait(qtbot, widget, timeout=WORKER_TIMEOUT_MS):
    widget.run()
    qtbot.waitUntil(lambda: not widget.is_running, timeout=timeout)


def save_screenshot(qtbot, viewer, widget, path: Path) -> np.ndarray:
    """Screenshot of the whole window, the widget scrolled to show the focus curve."""
    widget.scroll_area.ensureWidgetVisible(widget.best_button, 0, 10)
    qtbot.wait(500)
    path.parent.mkdir(parents=True, exist_ok=True)
    image = viewer.screenshot(str(path), canvas_only=False, flash=False)
    check_screenshot(image, path)
    return image


def check_focus_series_run(qtbot, viewer, widget, tmp_path, method: str, min_drop,
                           screenshots=()):
    """Everything the issue asks of a run on the focus series (screenshots taken right after
    the run, at the best slice); returns the scores."""
    layer = viewer.layers[SERIES]
    before = np.array(layer.data, copy=True)
    truth = layer.metadata["in_focus_index"]
    assert widget.selected_layer_names() == [SERIES]
    assert widget.magnification_edit.text() == f"{layer.metadata['magnification']:g}"

    run_and_wait(qtbot, widget)

    assert widget.last_run is not None and not widget.last_run.cancelled
    (res,) = widget.results
    scores = res.scores
    assert scores.shape == (layer.data.shape[0],)  # one score per slice
    assert abs(res.best_index - truth) <= 1
    peak = scores[res.best_index]
    left, right = scores[: max(0, truth - 2)], scores[truth + 3 :]
    assert left.size and right.size
    assert min_drop(peak, left.mean()) and min_drop(peak, right.mean())  # falls on both sides
    assert scores[truth] > max(scores[truth - 2], scores[truth + 2])

    # go to the best slice
    assert widget.best_button.isEnabled()
    assert widget.go_to_best_slice() == res.best_index
    assert viewer.dims.current_step[0] == res.best_index
    for path in screenshots:
        save_screenshot(qtbot, viewer, widget, path)

    # table and CSV export (the CLI's columns)
    assert widget.table.rowCount() == len(scores)
    out = widget.export_csv(tmp_path / "scores.csv")
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    if res.worst_region is None:  # a classical measure: semfocus measure's columns
        assert list(rows[0]) == ["path", "index", "magnification", "score"]
    else:  # the model: semfocus score's
        assert list(rows[0]) == ["path", "index", "magnification", "score", "score_low",
                                 "score_high", "worst_region"]
        np.testing.assert_allclose([float(r["worst_region"]) for r in rows], res.worst_region,
                                   atol=1e-4, rtol=1e-6)
        # every score with its interval (the shipped model's 80 %): in the CSV and the table
        low, high = (np.array([float(r[c]) for r in rows]) for c in ("score_low", "score_high"))
        assert np.all(low <= np.array(scores) + 1e-4) and np.all(np.array(scores) <= high + 1e-4)
        assert np.all(high - low > 0.5)
        assert f"({low[0]:.1f}–{high[0]:.1f})" in widget.table.item(0, 3).text()
    assert [int(r["index"]) for r in rows] == list(range(len(scores)))
    np.testing.assert_allclose([float(r["score"]) for r in rows], scores, atol=1e-4, rtol=1e-6)
    assert {float(r["magnification"]) for r in rows} == {layer.metadata["magnification"]}

    # sorting the table by score puts the best slice first (descending)

    widget.table.sortItems(3, Qt.SortOrder.DescendingOrder)
    assert widget.table.rows()[0][1] == res.best_index

    # results in the layer's metadata, pixels untouched
    stored = layer.metadata["semfocus"]
    np.testing.assert_allclose(stored["scores"], scores)
    assert stored["best_index"] == res.best_index
    assert stored["method"] == method
    assert stored["magnification"] == layer.metadata["magnification"]
    assert {"model", "region", "device"} <= set(stored)
    np.testing.assert_array_equal(layer.data, before)
    return scores


# ---- end to end ---------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["brenner", "tenengrad"])
def test_classical_measure_on_focus_series(series_viewer, qtbot, tmp_path, method,
                                          screenshot_dir):
    viewer, widget = series_viewer
    widget.set_method(method)
    screenshots = []
    if method == "brenner":
        screenshots.append(screenshot_dir / SCREENSHOT_CLASSICAL)
        if not default_model_path().is_file():  # else the model test owns score-widget.png
            screenshots.append(screenshot_dir / SCREENSHOT)
    check_focus_series_run(qtbot, viewer, widget, tmp_path, method,
                           min_drop=lambda peak, far: far < 0.5 * peak, screenshots=screenshots)
    assert "classical" in widget.device_label.text()


@pytest.mark.slow
@needs_default_model
def test_default_model_on_focus_series(series_viewer, qtbot, tmp_path, screenshot_dir):
    viewer, widget = series_viewer
    widget.set_method("model")
    widget.set_checkpoint(None)
    scores = check_focus_series_run(qtbot, viewer, widget, tmp_path, "model",
                                    min_drop=lambda peak, far: far < peak - 2.0,
                                    screenshots=[screenshot_dir / SCREENSHOT])
    assert np.all((scores >= 0) & (scores <= 10))
    assert viewer.layers[SERIES].metadata["semfocus"]["model"].startswith("focusnet")
    assert widget.device_label.text() != "chosen when scoring starts"


def test_checkpoint_model_path_runs_with_progress_and_device(series_viewer, qtbot,
                                                             untrained_checkpoint):
    viewer, widget = series_viewer
    widget.set_method("model")
    widget.set_checkpoint(untrained_checkpoint)
    widget.region_combo.setCurrentText("centre")
    widget.batch_spin.setValue(4)
    run_and_wait(qtbot, widget)
    (res,) = widget.results
    assert res.scores.shape == (11,) and np.all((res.scores >= 0) & (res.scores <= 10))
    assert widget.progress_bar.value() == widget.progress_bar.maximum()
    assert widget.device_label.text().startswith(("cpu", "cuda", "mps"))
    stored = viewer.layers[SERIES].metadata["semfocus"]
    assert stored["model"] == untrained_checkpoint.name
    assert stored["model_sha256"] == checkpoint.checkpoint_fingerprint(untrained_checkpoint)["sha256"]
    assert stored["region"] == "centre"
    assert stored["device"] == widget.device_label.text()


def test_backend_choice_runs_onnxruntime(series_viewer, qtbot, untrained_checkpoint, tmp_path,
                                         monkeypatch, screenshot_dir):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # the exported model
    viewer, widget = series_viewer
    widget.set_method("model")
    widget.set_checkpoint(untrained_checkpoint)
    widget.region_combo.setCurrentText("centre")
    assert [widget.backend_combo.itemText(i) for i in range(widget.backend_combo.count())] == [
        "auto", "torch", "onnxruntime"]
    widget.backend_combo.setCurrentText("onnxruntime")
    run_and_wait(qtbot, widget)
    (res,) = widget.results
    assert res.scores.shape == (11,) and np.all((res.scores >= 0) & (res.scores <= 10))
    assert widget.device_label.text().endswith("[onnxruntime]")
    assert list((tmp_path / "cache" / "napari-semfocus" / "onnx").glob("*-float32-ort*.onnx"))
    widget.advanced.expand(animate=False)
    widget.scroll_area.ensureWidgetVisible(widget.backend_combo, 0, 10)
    qtbot.wait(300)
    check_screenshot(viewer.screenshot(str(screenshot_dir / "score-backend.png"),
                                       canvas_only=False, flash=False),
                     screenshot_dir / "score-backend.png")


def test_data_bar_is_excluded_and_shown(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    viewer.open_sample("napari-semfocus", "sem_image")
    assert {type(layer).__name__ for layer in viewer.layers} == {"Image", "Shapes"}
    widget = ScoreFocusWidget(viewer)
    assert widget.selected_layer_names() == ["SEM image"]
    assert "39 rows" in widget.databar_note.text() and not widget.databar_note.isHidden()
    widget.set_method("brenner")
    run_and_wait(qtbot, widget)
    layer = viewer.layers["SEM image"]
    (res,) = widget.results
    assert res.scores[0] == pytest.approx(measure(layer.data, "brenner", exclude_bottom_rows=39)[0])
    assert res.scores[0] != pytest.approx(measure(layer.data, "brenner")[0])
    assert layer.metadata["semfocus"]["databar_rows_excluded"] == 39
    assert not widget.best_button.isEnabled()  # a single frame has no focus curve


def test_2d_rgb_and_several_layers(make_napari_viewer, qtbot):
    rng = np.random.default_rng(0)
    viewer = make_napari_viewer()
    grey = viewer.add_image(rng.integers(0, 255, (120, 160), dtype=np.uint8), name="grey",
                            metadata={"magnification": 5000})
    rgb = viewer.add_image(rng.integers(0, 255, (120, 160, 3), dtype=np.uint8), name="rgb",
                           rgb=True)
    widget = ScoreFocusWidget(viewer)
    widget.set_selected_layers(["grey", "rgb"])
    assert "No magnification" in widget.magnification_hint.text()  # rgb has none: prompt
    assert "'rgb'" in widget.magnification_hint.text()
    assert widget.magnification_edit.text() == ""  # nothing guessed for rgb
    widget.set_method("laplacian_variance")
    run_and_wait(qtbot, widget)
    assert [r.name for r in widget.results] == ["grey", "rgb"]
    assert all(r.scores.shape == (1,) for r in widget.results)
    assert widget.table.rowCount() == 2
    assert grey.metadata["semfocus"]["magnification"] == 5000
    assert rgb.metadata["semfocus"]["magnification"] is None
    # a typed value overrides the metadata of every ticked layer
    widget.magnification_edit.setText("2.5k")
    run_and_wait(qtbot, widget)
    assert [r.magnification for r in widget.results] == [2500, 2500]


def test_model_on_several_layers_skips_the_one_without_magnification(make_napari_viewer, qtbot,
                                                                      untrained_checkpoint):
    """Each layer is scored with its own magnification; one without is named and left out, the
    others are scored; a new run clears the previous run's results first."""
    rng = np.random.default_rng(0)
    viewer = make_napari_viewer()
    for name, mag in (("a", 5000), ("none", None), ("b", 20000)):
        viewer.add_image(rng.integers(0, 255, (120, 160), dtype=np.uint8), name=name,
                         metadata={} if mag is None else {"magnification": mag})
    widget = ScoreFocusWidget(viewer)
    widget.set_method("model")
    widget.set_checkpoint(untrained_checkpoint)
    widget.set_selected_layers(["a", "none", "b"])
    run_and_wait(qtbot, widget)
    assert [(r.name, r.magnification) for r in widget.results] == [("a", 5000), ("b", 20000)]
    assert "Not scored (no magnification): 'none'" in widget.status_label.text()
    assert "semfocus" not in viewer.layers["none"].metadata
    widget.set_selected_layers(["b"])
    widget.run()
    assert widget.results == [] and widget.table.rowCount() == 0  # cleared at the start
    qtbot.waitUntil(lambda: not widget.is_running, timeout=120_000)
    assert [r.name for r in widget.results] == ["b"] and "Not scored" not in \
        widget.status_label.text()


# ---- errors: a notification, layers untouched ------------------------------------------------
def test_error_no_image_layer(make_napari_viewer, qtbot, errors):
    viewer = make_napari_viewer()
    viewer.add_points(np.zeros((2, 2)))
    widget = ScoreFocusWidget(viewer)
    widget.run()
    assert not widget.is_running
    assert len(errors) == 1 and "no image layer" in errors[0].lower()


def test_error_constant_image(make_napari_viewer, qtbot, errors):
    viewer = make_napari_viewer()
    viewer.add_image(np.full((64, 80), 7, np.uint8), name="flat", metadata={"magnification": 1e3})
    before = layer_snapshot(viewer)
    widget = ScoreFocusWidget(viewer)
    widget.set_method("brenner")
    run_and_wait(qtbot, widget)
    assert len(errors) == 1 and "'flat'" in errors[0] and "constant" in errors[0]
    assert widget.results == []
    assert_layers_unchanged(viewer, before, absent_keys=("semfocus",))


def test_error_missing_magnification_for_the_model(make_napari_viewer, qtbot, errors,
                                                   untrained_checkpoint):
    viewer = make_napari_viewer()
    viewer.add_image(np.random.default_rng(0).random((64, 80)), name="no-mag")
    before = layer_snapshot(viewer)
    widget = ScoreFocusWidget(viewer)
    assert widget.magnification_edit.text() == ""
    assert "No magnification" in widget.magnification_hint.text()
    widget.set_method("model")
    widget.set_checkpoint(untrained_checkpoint)
    run_and_wait(qtbot, widget)
    assert len(errors) == 1 and "magnification" in errors[0].lower()
    assert_layers_unchanged(viewer, before, absent_keys=("semfocus",))


@pytest.mark.parametrize("content", [b"", b"not a safetensors file", None])
def test_error_bad_checkpoint(make_napari_viewer, qtbot, errors, tmp_path, content):
    viewer = make_napari_viewer()
    viewer.add_image(np.random.default_rng(0).random((64, 80)), name="img",
                     metadata={"magnification": 2000})
    before = layer_snapshot(viewer)
    path = tmp_path / "bad.safetensors"
    if content is not None:
        path.write_bytes(content)
    widget = ScoreFocusWidget(viewer)
    widget.set_method("model")
    widget.set_checkpoint(path)
    run_and_wait(qtbot, widget)
    assert len(errors) == 1 and "checkpoint" in errors[0].lower()
    assert errors[0].count(".") <= 4 and "\n" not in errors[0]  # one sentence, no traceback
    assert_layers_unchanged(viewer, before, absent_keys=("semfocus",))


def test_error_default_model_missing(make_napari_viewer, qtbot, errors, monkeypatch, tmp_path):
    monkeypatch.setattr(checkpoint, "default_model_path", lambda: tmp_path / "absent.safetensors")
    viewer = make_napari_viewer()
    viewer.add_image(np.random.default_rng(0).random((64, 80)), name="img",
                     metadata={"magnification": 2000})
    before = layer_snapshot(viewer)
    widget = ScoreFocusWidget(viewer)
    widget.set_method("model")
    widget.set_checkpoint(None)
    run_and_wait(qtbot, widget)
    assert len(errors) == 1 and "default focus model is not installed" in errors[0]
    assert_layers_unchanged(viewer, before, absent_keys=("semfocus",))


def test_error_bad_magnification_text(make_napari_viewer, qtbot, errors):
    viewer = make_napari_viewer()
    viewer.add_image(np.random.default_rng(0).random((64, 80)), name="img")
    widget = ScoreFocusWidget(viewer)
    widget.magnification_edit.setText("a lot")
    widget.run()
    assert not widget.is_running
    assert len(errors) == 1 and "'a lot'" in errors[0]
    assert errors[0] == str(magnification_error("a lot"))  # the CLI's sentence too


# ---- cancel, layer list ---------------------------------------------------------------------
def test_cancel_stops_and_stores_nothing(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    stack = np.random.default_rng(0).integers(0, 255, (400, 256, 256), dtype=np.uint8)
    layer = viewer.add_image(stack, name="long stack")
    widget = ScoreFocusWidget(viewer)
    widget.set_method("brenner")
    widget.run()
    widget.cancel()
    qtbot.waitUntil(lambda: not widget.is_running, timeout=60_000)
    assert widget.last_run is not None and widget.last_run.cancelled
    assert widget.results == [] and "semfocus" not in layer.metadata
    assert widget.run_button.isEnabled() and not widget.cancel_button.isEnabled()


def test_layer_list_follows_the_viewer(make_napari_viewer):
    viewer = make_napari_viewer()
    widget = ScoreFocusWidget(viewer)
    assert widget.selected_layer_names() == []
    viewer.add_image(np.zeros((32, 32)), name="a", metadata={"magnification": 5720})
    assert widget.selected_layer_names() == ["a"]
    assert widget.magnification_edit.text() == "5720"
    viewer.add_image(np.zeros((32, 32)), name="b", metadata={"magnification": 1140})
    viewer.add_points(np.zeros((1, 2)), name="pts")
    assert [widget.layer_list.item(i).text() for i in range(widget.layer_list.count())] == ["a", "b"]
    widget.set_selected_layers(["a", "b"])
    assert widget.magnification_edit.text() == ""  # they differ: each uses its own
    assert "own magnification" in widget.magnification_hint.text()
    viewer.layers["a"].name = "renamed"
    assert "renamed" in [widget.layer_list.item(i).text() for i in range(widget.layer_list.count())]
    viewer.layers.remove("renamed")
    assert widget.selected_layer_names() == ["b"]


def test_model_runs_in_a_gui_process_without_crashing(tmp_path, untrained_checkpoint):
    """torch/torchvision first imported after the viewer is up (as for a user) must not crash
    the process (Mesa's LLVM vs triton's LLVM, see scoring/llvm_guard); a fresh process, since this
    one may have imported torch before any viewer existed."""

    script = textwrap.dedent(f"""
        import sys, time, numpy as np, napari
        from qtpy.QtWidgets import QApplication
        from napari_semfocus._widgets.score_widget import ScoreFocusWidget
        viewer = napari.Viewer(show=True)
        assert "torch" not in sys.modules
        viewer.add_image(np.random.default_rng(0).random((2, 64, 80)), name="s",
                         metadata={{"magnification": 3000}})
        w = ScoreFocusWidget(viewer)
        w.set_method("model")
        w.set_checkpoint({str(untrained_checkpoint)!r})
        w.run()
        t = time.time()
        while w.is_running and time.time() - t < 300:
            QApplication.processEvents(); time.sleep(0.02)
        print("scores", len(w.results[0].scores))
        viewer.close()
    """)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=400)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "scores 2" in run.stdout


def test_every_field_has_a_tooltip(make_napari_viewer):
    widget = ScoreFocusWidget(make_napari_viewer())
    fields = [w for cls in (QComboBox, QLineEdit, QPushButton, QSpinBox)
              for w in widget.findChildren(cls)]
    fields = [w for w in fields if not isinstance(w.parent(), QComboBox)]
    assert len(fields) >= 10
    missing = [w for w in fields if not w.toolTip() and not w.parent().toolTip()]
    assert not missing, [type(w).__name__ + ":" + w.objectName() for w in missing]
