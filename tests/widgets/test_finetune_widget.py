"""The Fine-tune dock widget in a real napari viewer (Qt; run under Xvfb on CI).

End to end on the samples: annotate slices of the focus series and the SEM image (buttons and the
keyboard shortcut), train in a worker with tiny settings while a 20 ms QTimer must keep firing,
see the progress bars and the live plot move, take a screenshot mid-training, Stop, save the
best model and "Use for scoring": the Score focus and Focus map widgets switch to it.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import tifffile
from qtpy.QtCore import Qt, QTimer
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDockWidget,
    QDoubleSpinBox,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QSpinBox,
)

from napari_semfocus._widgets.finetune_widget import SHORTCUT, FineTuneWidget
from napari_semfocus._widgets.forms import CHECKPOINT_MODEL
from napari_semfocus._widgets.map_widget import FocusMapWidget
from napari_semfocus._widgets.score_widget import ScoreFocusWidget
from napari_semfocus.scale import label_for_added_blur
from napari_semfocus.scoring.checkpoint import default_model_path, read_metadata
from napari_semfocus.training.finetune import MIN_STEPS_PER_EPOCH
from napari_semfocus.training.loop import BatchDone, stop_point

from ..helpers import (
    assert_layers_unchanged,
    check_screenshot,
    docked_viewer,
    layer_snapshot,
    needs_default_model,
)

pytestmark = pytest.mark.gui

SCREENSHOT = "finetune-widget.png"
SERIES, SEM = "SEM focus series", "SEM image"
TIMEOUT_MS = 300_000


@pytest.fixture
def samples_viewer(make_napari_viewer):
    """A shown viewer with the focus series and the SEM image, and the widget docked."""
    # the focus series opened last, on top: the screenshot shows it
    return docked_viewer(make_napari_viewer, FineTuneWidget, "Fine-tune",
                         ["sem_image", "focus_series"])


def dock_of(widget):
    while not isinstance(widget, QDockWidget):
        widget = widget.parentWidget()
    return widget


def lab_score(label):
    """A lab that scores 1.5 points harsher than the project's scale on blurred images."""
    return np.where(np.asarray(label) >= 9, label, np.clip(np.asarray(label) - 1.5, 0, 10))


def annotate_samples(qtbot, viewer, widget):
    """The focus series: every slice with the harsher lab's score (one slice by the shortcut);
    the SEM image: 9.5. Returns the series' lab scores."""

    layer = viewer.layers[SERIES]
    lab = lab_score(np.array(layer.metadata["expected_scores"]))
    widget.set_layer(SERIES)
    assert widget.magnification_edit.text() == f"{layer.metadata['magnification']:g}"
    for i, score in enumerate(lab):
        widget.set_slice(i)
        assert widget.current_slice() == i and widget.slice_label.text().startswith(f"{i} ")
        widget.score_spin.setValue(float(score))
        if i == 3:  # the keyboard shortcut over the canvas
            canvas = viewer.window._qt_viewer.canvas.native  # noqa: SLF001 (the real canvas)
            canvas.setFocus()
            qtbot.keyClick(canvas, Qt.Key.Key_S, Qt.KeyboardModifier.ShiftModifier)
        else:
            qtbot.mouseClick(widget.add_button, Qt.MouseButton.LeftButton)
    assert widget.table.rowCount() == 11, "the shortcut did not add slice 3"
    widget.set_layer(SEM)
    assert widget.slice_label.text() == "2-D image"
    widget.score_spin.setValue(9.5)
    widget.add_annotation()
    return lab


# ---- end to end ---------------------------------------------------------------------------
@pytest.mark.slow
@needs_default_model
def test_annotate_train_stop_save_and_use_for_scoring(samples_viewer, qtbot, tmp_path, screenshot_dir,
                                                       blur_series):

    viewer, widget = samples_viewer
    sigmas, frames = blur_series  # a third image: a real pool image blurred 5 ways
    viewer.add_image(frames, name="pool blur series", metadata={"magnification": 6000},
                     visible=False, units=viewer.layers[SERIES].units)
    viewer.layers.selection.active = viewer.layers[SERIES]
    score_widget = ScoreFocusWidget(viewer)  # docked before the model exists
    viewer.window.add_dock_widget(score_widget, name="Score focus", area="right", tabify=True)
    dock_of(widget).raise_()  # the Fine-tune tab in front
    before = layer_snapshot(viewer)

    lab = annotate_samples(qtbot, viewer, widget)
    rows = widget.annotations.rows
    assert [(r.layer, r.slice) for r in rows] == [(SERIES, i) for i in range(11)] + [(SEM, 0)]
    np.testing.assert_allclose([r.score for r in rows[:11]], np.round(lab, 1))
    assert rows[0].path and rows[0].path.endswith("focus_series.tif")
    widget.set_layer("pool blur series")
    for i, label in enumerate(label_for_added_blur(np.array(sigmas))):
        widget.set_slice(i)
        widget.add_annotation(float(lab_score(label)))
    widget.set_layer(SERIES)
    widget.set_slice(4)
    widget.add_annotation(9.0)  # the same slice again: replaced, not added
    assert widget.table.rowCount() == 17 and widget.table.item(4, 3).text() == "9"
    assert widget.summary_label.text().startswith("17 annotations of 3 images.")
    assert widget.warning_label.isHidden()

    # small settings: head only, a few batches, CPU
    widget.epochs_spin.setValue(6)
    widget.batch_spin.setValue(4)
    widget.lr_spin.setValue(0.002)
    assert widget.paper_aug.isChecked()  # 240 x 320 crops, flips
    assert (widget.crop_h.value(), widget.crop_w.value()) == (240, 320)
    widget.val_spin.setValue(0.3)  # one image of three
    widget.device_combo.setCurrentText("cpu")
    assert widget.freeze_check.isChecked()

    ticks: list[float] = []
    timer = QTimer()
    timer.setInterval(20)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start()
    qtbot.mouseClick(widget.run_button, Qt.MouseButton.LeftButton)
    assert widget.is_running and widget.cancel_button.isEnabled()
    qtbot.waitUntil(lambda: widget.batch_bar.value() >= 1, timeout=TIMEOUT_MS)
    t_start, n_start = time.perf_counter(), len(ticks)
    # progress bars and plot move: a finished epoch (validation point) and batches beyond it
    qtbot.waitUntil(lambda: len(widget.plot.val_x) >= 2 and len(widget.plot.train_x) >= 12,
                    timeout=TIMEOUT_MS)
    assert widget.is_running
    assert widget.progress_bar.value() >= 1 and widget.progress_bar.maximum() == 6
    assert widget.batch_bar.maximum() == MIN_STEPS_PER_EPOCH
    assert widget.plot.val_x[:2] == [0, 1] and all(v > 0 for v in widget.plot.val_y)
    assert len(widget.plot.train_line.get_xdata()) == len(widget.plot.train_x)
    qtbot.waitUntil(lambda: widget.plot.draws >= 2, timeout=5_000)  # redrawn while training
    t_run, n_run = time.perf_counter(), len(ticks)

    widget.scroll_area.ensureWidgetVisible(widget.plot.canvas, 0, 10)
    qtbot.wait(300)
    screenshot = screenshot_dir / SCREENSHOT
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    image = viewer.screenshot(str(screenshot), canvas_only=False, flash=False)
    mid_training = widget.is_running

    qtbot.mouseClick(widget.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not widget.is_running, timeout=TIMEOUT_MS)
    timer.stop()

    # the UI event loop kept running while the worker trained
    elapsed_ms = 1000 * (t_run - t_start)
    fired = n_run - n_start
    gaps = np.diff(ticks[n_start:n_run])
    print(f"timer: {fired} ticks in {elapsed_ms:.0f} ms of training, longest gap "
          f"{1000 * gaps.max():.0f} ms")
    assert fired >= max(10, 0.25 * elapsed_ms / 20)
    assert gaps.max() < 2.0

    # the screenshot, taken mid-training, is not blank
    assert mid_training
    check_screenshot(image, screenshot)

    # stopped after the current batch, with the best model so far
    result = widget.result
    assert result is not None and result.trained and result.stopped
    assert 1 <= len(result.history) < 6
    assert result.val_rmse_before is not None and result.val_rmse_after is not None
    assert "Best model (stopped" in widget.result_label.text()
    assert widget.save_model_button.isEnabled() and widget.use_button.isEnabled()
    assert widget.run_button.isEnabled() and not widget.cancel_button.isEnabled()

    path = widget.save_model(tmp_path / "lab.safetensors")
    assert path == tmp_path / "lab.safetensors" and path.is_file()
    meta = read_metadata(path)
    assert meta["provenance"]["parent"] == default_model_path().name
    assert meta["provenance"]["annotations"]["count"] == 17
    assert meta["fine_tuning"]["val_rmse_before"] == pytest.approx(result.val_rmse_before)
    assert meta["fine_tuning"]["val_rmse_after"] == pytest.approx(result.val_rmse_after)
    assert meta["fine_tuning"]["stopped"] is True

    # "Use for scoring": the docked Score focus widget and widgets opened later use it
    score_widget.set_method("brenner")
    qtbot.mouseClick(widget.use_button, Qt.MouseButton.LeftButton)
    assert score_widget.method_combo.currentData() == "model"
    assert score_widget.model_combo.currentData() == CHECKPOINT_MODEL
    assert score_widget.checkpoint_edit.text() == str(path)
    assert score_widget.snapshot_settings().checkpoint == str(path)
    later_score, later_map = ScoreFocusWidget(viewer), FocusMapWidget(viewer)
    assert later_score.checkpoint_edit.text() == str(path)
    assert later_map.checkpoint_edit.text() == str(path)
    assert later_map.snapshot_settings().checkpoint == str(path)

    assert_layers_unchanged(viewer, before)  # the user's layers were only read


# ---- a worse model is never one click from use ------------------------------------------------
def train_far_too_fast(qtbot, widget, keep_parent: bool):
    """Train the annotated samples with a learning rate far too high (every epoch is worse than
    the parent on validation), tiny crops, one epoch; wait for the worker to end."""
    widget.epochs_spin.setValue(1)
    widget.batch_spin.setValue(2)
    widget.lr_spin.setValue(0.1)
    widget.paper_aug.setChecked(False)
    widget.crop_h.setValue(96)
    widget.crop_w.setValue(128)
    widget.val_spin.setValue(0.5)  # one image of two
    widget.device_combo.setCurrentText("cpu")
    widget.keep_parent_check.setChecked(keep_parent)
    assert widget.freeze_check.isChecked()  # the default
    qtbot.mouseClick(widget.run_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not widget.is_running, timeout=TIMEOUT_MS)
    assert widget.result is not None and widget.result.trained


@needs_default_model
def test_a_worse_model_keeps_the_parent_or_asks_before_scoring_with_it(make_napari_viewer, qtbot,
                                                                       tmp_path, monkeypatch,
                                                                       expert_set):
    viewer, widget = docked_viewer(make_napari_viewer, FineTuneWidget, "Fine-tune")
    score_widget = ScoreFocusWidget(viewer)
    table, frames = expert_set  # two real images, each blurred 5 ways, scored by a harsher lab
    for image in table.images()[:2]:
        rows = [r for r in table.rows if r.layer == image]
        viewer.add_image(np.stack([frames[r.key][0] for r in rows]), name=image,
                         metadata={"magnification": rows[0].magnification})
        widget.set_layer(image)
        for r in rows:
            widget.set_slice(r.slice)
            widget.add_annotation(r.score)
    assert widget.table.rowCount() == 10
    asked = []
    answer = [QMessageBox.StandardButton.No]
    monkeypatch.setattr(QMessageBox, "question",
                        lambda parent, title, text, *a: asked.append(text) or answer[0])

    # the default: no epoch beat the parent, so the parent is the result; nothing to save or use
    train_far_too_fast(qtbot, widget, keep_parent=True)
    result = widget.result
    assert result.kept_parent and result.val_rmse_after == result.val_rmse_before
    assert widget.result_label.text().startswith(
        f"Kept the parent: the last epoch's validation RMSE {result.history[-1]['val_rmse']:.3f} "
        f"did not beat the parent's {result.val_rmse_before:.3f}, so the result is "
        f"{default_model_path().name} itself")
    assert not widget.save_model_button.isEnabled() and not widget.use_button.isEnabled()
    parent_line = [ln for ln in widget.plot.axes.lines if ln.get_label() == "parent (epoch 0)"]
    assert len(parent_line) == 1 and parent_line[0].get_ydata()[0] == result.val_rmse_before
    assert widget.data_warning_label.text() == (
        "The validation split is too small to mean much: 5 frame(s) (fewer than 20), 1 image(s) "
        "(fewer than 3); its RMSE, and so the choice between the parent and the fine-tuned model, "
        "may not hold for other images: annotate more images or raise the validation fraction.")
    assert not widget.data_warning_label.isHidden()

    # asked not to keep it, the (worse) best epoch is offered, with its figures, and "Use for
    # scoring" asks first: No leaves every widget on its model, Yes switches
    train_far_too_fast(qtbot, widget, keep_parent=False)
    result = widget.result
    assert result.worse_than_parent and not result.kept_parent
    figures = (f"validation RMSE {result.val_rmse_after:.3f}, parent {default_model_path().name} "
               f"{result.val_rmse_before:.3f}")
    assert "WORSE than the parent" in widget.result_label.text()
    assert (f"\nScore intervals: {result.interval_note}" in widget.result_label.text()
            and "is too small to calibrate" in result.interval_note)  # the parent's, widened
    assert figures in widget.use_button.toolTip() and figures in widget.save_model_button.toolTip()
    qtbot.mouseClick(widget.use_button, Qt.MouseButton.LeftButton)
    assert len(asked) == 1 and figures in asked[0]
    assert score_widget.model_combo.currentData() != CHECKPOINT_MODEL  # not switched
    assert widget.saved_path is None and not list(tmp_path.iterdir())  # nothing saved either
    assert widget.status_label.text().startswith("Not switched")
    answer[0] = QMessageBox.StandardButton.Yes
    path = widget.save_model(tmp_path / "worse.safetensors")
    assert figures in widget.status_label.text()  # "Save" states the figures
    qtbot.mouseClick(widget.use_button, Qt.MouseButton.LeftButton)
    assert len(asked) == 2
    assert score_widget.checkpoint_edit.text() == str(path)
    assert figures in widget.status_label.text()


# ---- annotations in the widget ---------------------------------------------------------------
def test_csv_save_load_edit_remove_and_folder(samples_viewer, qtbot, tmp_path, errors):
    viewer, widget = samples_viewer
    widget.set_layer(SERIES)
    for i, s in [(0, 2.0), (4, 10.0), (8, 3.5)]:
        widget.set_slice(i)
        widget.add_annotation(s)
    widget.table.item(2, 3).setText("4.5")  # edit a score in the table
    assert widget.annotations.rows[2].score == 4.5
    widget.table.item(2, 3).setText("eleven")
    assert widget.annotations.rows[2].score == 4.5 and widget.table.item(2, 3).text() == "4.5"
    assert len(errors) == 1 and "'eleven'" in errors[0]
    assert "Too few to train" in widget.warning_label.text()
    assert "Too few to validate" in widget.warning_label.text()

    path = widget.save_csv(tmp_path / "ann.csv")
    assert path.read_text().splitlines()[0] == "layer,slice,magnification,score,path"
    widget.table.selectRow(0)
    widget.remove_selected()
    assert [r.slice for r in widget.annotations] == [4, 8]
    assert widget.load_csv(path)
    assert [(r.slice, r.score) for r in widget.annotations] == [(0, 2), (4, 10), (8, 4.5)]

    folder = tmp_path / "imgs"
    folder.mkdir()
    tifffile.imwrite(folder / "a.tif", np.zeros((32, 32), np.uint8))
    (tmp_path / "scores.csv").write_text("path,magnification,score\na.tif,3000,6\n")
    assert widget.load_folder(folder, tmp_path / "scores.csv")
    assert [(r.layer, r.score, r.path) for r in widget.annotations] == [
        ("a.tif", 6.0, str((folder / "a.tif").resolve()))]
    (tmp_path / "bad.csv").write_text("path,score\na.tif,6\n")
    assert not widget.load_csv(tmp_path / "bad.csv")
    assert len(errors) == 2 and "bad.csv" in errors[1] and "magnification" in errors[1]
    assert len(widget.annotations) == 1  # the table is kept


def test_magnification_missing_or_typed(make_napari_viewer, errors):
    viewer = make_napari_viewer()
    layer = viewer.add_image(np.random.default_rng(0).random((64, 80)), name="no-mag")
    widget = FineTuneWidget(viewer)
    assert widget.magnification_edit.text() == ""
    assert widget.add_annotation(5) is None
    assert len(errors) == 1 and "no magnification" in errors[0] and "'no-mag'" in errors[0]
    widget.magnification_edit.setText("5.72 k")
    ann = widget.add_annotation(5)
    assert ann.magnification == 5720 and ann.slice == 0 and ann.path is None
    assert "semfocus" not in layer.metadata


def test_training_errors_are_notifications(samples_viewer, qtbot, errors):
    viewer, widget = samples_viewer
    widget.set_layer(SERIES)
    for i in range(3):
        widget.set_slice(i)
        widget.add_annotation(5)
    widget.run()  # too few annotations: the worker's SemFocusError becomes a notification
    qtbot.waitUntil(lambda: not widget.is_running, timeout=60_000)
    assert len(errors) == 1 and "at least 8" in errors[0]
    assert widget.result is None and not widget.save_model_button.isEnabled()
    widget.init_combo.setCurrentIndex(1)
    widget.init_edit.setText("/nowhere/model.safetensors")
    widget.run()  # a missing checkpoint is refused before any worker starts
    assert not widget.is_running
    assert len(errors) == 2 and "/nowhere/model.safetensors" in errors[1]
    widget.init_edit.setText("")
    widget.run()
    assert not widget.is_running
    assert len(errors) == 3 and errors[2].startswith("No checkpoint file chosen")


def test_every_field_has_a_tooltip(make_napari_viewer):
    widget = FineTuneWidget(make_napari_viewer())
    fields = [w for cls in (QComboBox, QLineEdit, QPushButton, QSpinBox, QDoubleSpinBox, QCheckBox)
              for w in widget.findChildren(cls)]
    fields = [w for w in fields if not isinstance(w.parent(), (QComboBox, QSpinBox, QDoubleSpinBox))]
    assert len(fields) >= 20
    missing = [w for w in fields if not w.toolTip() and not w.parent().toolTip()]
    assert not missing, [type(w).__name__ + ":" + w.text() if hasattr(w, "text") else ""
                         for w in missing]
    assert SHORTCUT in widget.add_button.toolTip()


def test_opens_from_the_plugin_menu(make_napari_viewer):
    viewer = make_napari_viewer()
    _dock, widget = viewer.window.add_plugin_dock_widget("napari-semfocus", "Fine-tune")
    assert isinstance(widget, FineTuneWidget)


def test_data_that_cannot_validate_is_a_warning_notification(make_napari_viewer, monkeypatch):
    from napari.utils import notifications

    from napari_semfocus.training.finetune import Prepared

    shown = []
    monkeypatch.setattr(notifications, "show_warning", lambda msg, *a, **k: shown.append(msg))
    widget = FineTuneWidget(make_napari_viewer())
    widget._on_update(Prepared("scratch", "cpu", 8, 0, ("one",), (), 10,
                               ("all 8 annotations come from one image: no validation.",)))
    assert shown == ["All 8 annotations come from one image: no validation."]


def test_the_stop_message_says_where_training_stopped():
    """Stop at batch 5 of 20 of the first epoch said "after 1 epoch(s)" before."""
    assert stop_point(BatchDone(0, 5, 20, 0.1), 1) == "stopped at batch 5 of 20 of epoch 1"
    assert stop_point(BatchDone(2, 20, 20, 0.1), 3) == "stopped after 3 whole epoch(s)"
    assert stop_point(None, 0) == "stopped after 0 whole epoch(s)"
