"""Fine-tune: the dock widget that teaches the focus model a lab's own expert scores.

Thin over the core: annotations live in an :class:`~napari_semfocus.annotations.AnnotationTable`
(CSV save/load, folder + CSV, summary and warnings), training is
:func:`napari_semfocus.finetune.finetune` run by :func:`~._finetune_job.finetune_job` in a
``napari.qt.threading`` worker; the widget relays its typed updates to two progress bars and a
live plot, and Stop ends training after the current batch, keeping the best model so far. The
layers and files of the user are only read.

Public API (tests, scripts)::

    w = FineTuneWidget(viewer); w.set_layer("SEM focus series"); w.set_slice(4)
    w.score_spin.setValue(9.5); w.add_annotation()          # or Shift-S over the canvas
    w.save_csv("scores.csv"); w.load_csv("scores.csv"); w.load_folder("imgs/", "scores.csv")
    w.run(); w.cancel(); ...; w.result; w.save_model("lab.safetensors"); w.use_for_scoring()
"""

from __future__ import annotations

import threading
import weakref
from pathlib import Path

import numpy as np
from qtpy.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..annotations import Annotation, AnnotationTable
from ..errors import SemFocusError
from ..finetune import Evaluated, FineTuneResult, Prepared
from ..training import BatchDone, EpochDone, Finished, TrainConfig
from . import _active_model
from ._common import (
    WorkerMixin,
    ask_save_path,
    compact_combo,
    form_row,
    format_magnification,
    image_layers,
    layer_databar_rows,
    layer_magnification,
    layer_source_path,
    notify_error,
    notify_info,
    parse_magnification,
    with_tip,
)
from ._finetune_job import FineTuneSettings, finetune_job
from ._training_plot import TrainingPlot

SHORTCUT = "Shift-S"  # "score this slice": free in napari's default key bindings
WARN_STYLE = "color: #f0a030;"
DEFAULT_INIT, CHECKPOINT_INIT = "default", "checkpoint"


class FineTuneWidget(WorkerMixin, QWidget):
    """Dock widget: annotate images with expert scores, fine-tune, save, use for scoring."""

    worker_job = staticmethod(finetune_job)
    failure_text = "Fine-tuning failed"

    def __init__(self, napari_viewer):
        super().__init__()
        self.viewer = napari_viewer
        self.worker = None
        self._cancel = threading.Event()
        self.annotations = AnnotationTable()
        self.result: FineTuneResult | None = None
        self.saved_path: Path | None = None
        self._auto_magnification = ""
        self._build()
        for ev in ("inserted", "removed", "moved"):
            getattr(self.viewer.layers.events, ev).connect(lambda _e: self.refresh_layers())
        self.viewer.layers.selection.events.active.connect(self._on_active_layer)
        self.viewer.dims.events.current_step.connect(lambda _e: self._show_slice())
        _bind_shortcut(self.viewer, self)
        self.refresh_layers()
        self._refresh_table()

    # ---- construction ----------------------------------------------------------------------
    def _build(self) -> None:
        content = QWidget()
        col = QVBoxLayout(content)
        col.addWidget(self._build_annotate())
        col.addWidget(self._build_table())
        col.addWidget(self._build_training())
        self._add_run_controls(col, "Train", "Fine-tune the model on the annotations.",
                               "Stop after the current batch; the best model so far is kept.")
        self.cancel_button.setText("Stop")
        self.progress_bar.setFormat("epoch %v / %m")
        self.batch_bar = with_tip(QProgressBar(), "Batches of the current epoch.")
        self.batch_bar.setFormat("batch %v / %m")
        col.insertWidget(col.indexOf(self.progress_bar) + 1, self.batch_bar)
        self.plot = TrainingPlot(dark=_dark_theme())
        with_tip(self.plot.canvas, "Training RMSE per batch (from the loss) and validation RMSE "
                                   "per epoch (epoch 0: the model before fine-tuning).")
        col.addWidget(self.plot.canvas)
        col.addWidget(self._build_result())
        col.addStretch(1)
        self._set_scrolled_content(content, 360)

    def _build_annotate(self) -> QGroupBox:
        box = QGroupBox("Annotate")
        form = QFormLayout(box)
        self.layer_combo = compact_combo(QComboBox())
        form_row(form, "Image layer", self.layer_combo,
                 "The layer to annotate; for a stack, the slice shown in the viewer.")
        self.slice_label = with_tip(QLabel(), "The slice of the layer shown in the viewer.")
        form.addRow("Slice", self.slice_label)
        self.magnification_edit = QLineEdit()
        form_row(form, "Magnification", self.magnification_edit,
                 "From the layer's metadata; type it when the layer has none (e.g. 5000).")
        row = QWidget()
        hl = QHBoxLayout(row)
        hl.setContentsMargins(0, 0, 0, 0)
        self.score_spin = QDoubleSpinBox()
        self.score_spin.setRange(0.0, 10.0)
        self.score_spin.setDecimals(1)
        self.score_spin.setSingleStep(0.5)
        self.score_spin.setValue(10.0)
        with_tip(self.score_spin, "The expert's focus score: 10 = perfectly focused, "
                                  "1 = sample just recognisable, 0 = no sample.")
        self.add_button = with_tip(QPushButton("Add annotation"), (
            f"Give the shown image or slice this score ({SHORTCUT} over the canvas does the "
            "same). A slice annotated again gets the new score."))
        hl.addWidget(self.score_spin)
        hl.addWidget(self.add_button, 1)
        form.addRow("Score", row)
        self.add_button.clicked.connect(lambda: self.add_annotation())
        self.layer_combo.currentIndexChanged.connect(lambda _i: self._on_layer_changed())
        return box

    def _build_table(self) -> QGroupBox:
        box = QGroupBox("Annotations")
        col = QVBoxLayout(box)
        self.table = with_tip(QTableWidget(0, 4), "Double-click a score to edit it.")
        self.table.setHorizontalHeaderLabels(["Layer", "Slice", "Mag.", "Score"])
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.setMinimumHeight(130)
        col.addWidget(self.table)
        buttons = QHBoxLayout()
        self.remove_button = with_tip(QPushButton("Remove"), "Remove the selected rows.")
        self.save_csv_button = with_tip(QPushButton("Save CSV…"),
                                        "Save the table: layer,slice,magnification,score,path.")
        self.load_csv_button = with_tip(QPushButton("Load CSV…"), (
            "Replace the table by a saved one (or any CSV with path,magnification,score)."))
        self.load_folder_button = with_tip(QPushButton("Folder + CSV…"), (
            "Replace the table by a folder of images and a CSV path,magnification,score "
            "(optional slice), paths relative to the folder."))
        for b in (self.remove_button, self.save_csv_button, self.load_csv_button,
                  self.load_folder_button):
            buttons.addWidget(b)
        col.addLayout(buttons)
        self.summary_label = with_tip(QLabel(), "Spread of the annotations over the score range "
                                                "and magnifications.")
        self.summary_label.setWordWrap(True)
        col.addWidget(self.summary_label)
        self.warning_label = QLabel()
        self.warning_label.setWordWrap(True)
        self.warning_label.setStyleSheet(WARN_STYLE)
        col.addWidget(self.warning_label)
        self.table.itemChanged.connect(self._on_item_changed)
        self.remove_button.clicked.connect(lambda: self.remove_selected())
        self.save_csv_button.clicked.connect(lambda: self.save_csv())
        self.load_csv_button.clicked.connect(lambda: self.load_csv())
        self.load_folder_button.clicked.connect(lambda: self.load_folder())
        return box

    def _build_training(self) -> QGroupBox:
        from ..devices import DEVICE_CHOICES

        box = QGroupBox("Training")
        form = QFormLayout(box)
        self.init_combo = compact_combo(QComboBox())
        self.init_combo.addItem("Default model (shipped)", DEFAULT_INIT)
        self.init_combo.addItem("Checkpoint file…", CHECKPOINT_INIT)
        form_row(form, "Start from", self.init_combo, "The model to fine-tune.")
        row = QWidget()
        hl = QHBoxLayout(row)
        hl.setContentsMargins(0, 0, 0, 0)
        self.init_edit = with_tip(QLineEdit(), "Checkpoint (.safetensors) to start from.")
        self.init_browse = with_tip(QPushButton("…"), "Choose the checkpoint file.")
        hl.addWidget(self.init_edit, 1)
        hl.addWidget(self.init_browse)
        form.addRow(row)
        self.epochs_spin = _spin(1, 1000, 10)
        form_row(form, "Epochs", self.epochs_spin, (
            "Passes over the training annotations (at least 10 batches each); the model is "
            "validated after each, and the best one is kept."))
        self.lr_spin = QDoubleSpinBox()
        self.lr_spin.setDecimals(5)
        self.lr_spin.setRange(1e-5, 0.1)
        self.lr_spin.setSingleStep(1e-4)
        self.lr_spin.setValue(1e-3)
        form_row(form, "Learning rate", self.lr_spin, (
            "AdamW learning rate (cosine schedule). About 1e-3 when only the head is trained, "
            "1e-4 for the whole network."))
        self.batch_spin = _spin(1, 256, 16)
        form_row(form, "Batch size", self.batch_spin, "Crops per training step.")
        self.val_spin = QDoubleSpinBox()
        self.val_spin.setRange(0.0, 0.9)
        self.val_spin.setSingleStep(0.05)
        self.val_spin.setValue(0.25)
        form_row(form, "Validation fraction", self.val_spin, (
            "Share of the annotated images held out to validate (split by image: all slices "
            "of a stack stay on one side, never by crop). 0: no validation."))
        self.paper_aug = with_tip(QCheckBox("Random 320 × 240 crops, flips (the paper's)"), (
            "The paper's augmentation. Untick to choose another crop size or no flips."))
        self.paper_aug.setChecked(True)
        form.addRow("Augmentation", self.paper_aug)
        crop = QWidget()
        cl = QHBoxLayout(crop)
        cl.setContentsMargins(0, 0, 0, 0)
        self.crop_h, self.crop_w = _spin(32, 2048, 240, 16), _spin(32, 2048, 320, 16)
        self.flips_check = with_tip(QCheckBox("flips"), "Random horizontal and vertical flips.")
        self.flips_check.setChecked(True)
        for w in (self.crop_h, QLabel("×"), self.crop_w, self.flips_check):
            cl.addWidget(w)
        form_row(form, "Crop (h × w)", crop, "Random crop size in pixels for training.")
        self.freeze_check = with_tip(QCheckBox("train the head only"), (
            "Keep the convolutional trunk as it is and train only the head: fast on a CPU and "
            "robust with few annotations. Untick to adapt the whole network."))
        self.freeze_check.setChecked(True)
        form.addRow("Freeze trunk", self.freeze_check)
        self.device_combo = compact_combo(QComboBox(), 6)
        self.device_combo.addItems(list(DEVICE_CHOICES))
        form_row(form, "Device", self.device_combo, "auto: CUDA, then Apple MPS, then the CPU.")
        self.init_combo.currentIndexChanged.connect(lambda _i: self._update_enabled())
        self.paper_aug.toggled.connect(lambda _c: self._update_enabled())
        self.init_browse.clicked.connect(self._browse_init)
        self._update_enabled()
        return box

    def _build_result(self) -> QGroupBox:
        box = QGroupBox("Fine-tuned model")
        col = QVBoxLayout(box)
        self.result_label = with_tip(QLabel("No model trained yet."),
                                     "Validation RMSE against the annotations, before and after.")
        self.result_label.setWordWrap(True)
        col.addWidget(self.result_label)
        row = QHBoxLayout()
        self.save_model_button = with_tip(QPushButton("Save model…"), (
            "Save the best model as a checkpoint (.safetensors with its parent, annotations and "
            "validation RMSE before/after in the metadata)."))
        self.use_button = with_tip(QPushButton("Use for scoring"), (
            "Score focus and Focus map widgets (open ones and ones opened later) score with "
            "the saved model."))
        for b in (self.save_model_button, self.use_button):
            b.setEnabled(False)
            row.addWidget(b)
        col.addLayout(row)
        self.save_model_button.clicked.connect(lambda: self.save_model())
        self.use_button.clicked.connect(lambda: self.use_for_scoring())
        return box

    def _update_enabled(self) -> None:
        checkpoint = self.init_combo.currentData() == CHECKPOINT_INIT
        self.init_edit.setEnabled(checkpoint)
        self.init_browse.setEnabled(checkpoint)
        custom = not self.paper_aug.isChecked()
        for w in (self.crop_h, self.crop_w, self.flips_check):
            w.setEnabled(custom)
        if not custom:
            self.crop_h.setValue(240)
            self.crop_w.setValue(320)
            self.flips_check.setChecked(True)

    def _browse_init(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Model to fine-tune", "",
                                              "Model files (*.safetensors);;All files (*)")
        if path:
            self.init_edit.setText(path)

    # ---- layers and the current slice -------------------------------------------------------
    def refresh_layers(self) -> None:
        current = self.layer_combo.currentText()
        names = [lyr.name for lyr in image_layers(self.viewer)
                 if "semfocus_map" not in (lyr.metadata or {})]
        self.layer_combo.blockSignals(True)
        self.layer_combo.clear()
        self.layer_combo.addItems(names)
        if current in names:
            self.layer_combo.setCurrentText(current)
        self.layer_combo.blockSignals(False)
        self._on_layer_changed()

    def _on_active_layer(self, event=None) -> None:
        layer = self.viewer.layers.selection.active
        if layer is not None and self.layer_combo.findText(layer.name) >= 0:
            self.layer_combo.setCurrentText(layer.name)

    def _on_layer_changed(self) -> None:
        layer = self.source_layer()
        self._auto_magnification = format_magnification(layer_magnification(layer)) if layer else ""
        self.magnification_edit.setText(self._auto_magnification)
        self.magnification_edit.setPlaceholderText(
            "type the magnification, e.g. 5000" if layer is not None else "open an image")
        self._show_slice()

    def source_layer(self):
        name = self.layer_combo.currentText()
        return self.viewer.layers[name] if name and name in self.viewer.layers else None

    def set_layer(self, name: str) -> None:
        self.layer_combo.setCurrentText(name)

    def current_slice(self, layer=None) -> int:
        """Flat index of the slice of ``layer`` shown in the viewer (0 for a 2-D image)."""
        layer = layer or self.source_layer()
        lead = _lead_shape(layer)
        if not lead:
            return 0
        point = layer.world_to_data(self.viewer.dims.point[-layer.ndim:])
        index = [min(max(int(round(float(v))), 0), n - 1) for v, n in zip(point, lead, strict=False)]
        return int(np.ravel_multi_index(index, lead))

    def set_slice(self, index: int, layer=None) -> None:
        """Show slice ``index`` (flat) of ``layer`` (default: the chosen one) in the viewer."""
        layer = layer or self.source_layer()
        lead = _lead_shape(layer)
        offset = self.viewer.dims.ndim - layer.ndim
        for axis, i in enumerate(np.unravel_index(int(index), lead)):
            world = float(layer.translate[axis] + layer.scale[axis] * int(i))
            self.viewer.dims.set_point(offset + axis, world)

    def _show_slice(self) -> None:
        layer = self.source_layer()
        lead = _lead_shape(layer) if layer is not None else ()
        self.slice_label.setText("—" if layer is None else (
            f"{self.current_slice(layer)} (of 0–{int(np.prod(lead)) - 1})" if lead else "2-D image"))

    # ---- annotating ----------------------------------------------------------------------------
    def add_annotation(self, score: float | None = None) -> Annotation | None:
        """Annotate the shown slice of the chosen layer with ``score`` (default: the spin box)."""
        layer = self.source_layer()
        try:
            if layer is None:
                raise SemFocusError("There is no image layer to annotate: open an image first.")
            text = self.magnification_edit.text()
            try:
                mag = parse_magnification(text)
            except ValueError:
                raise SemFocusError(f"Magnification {text.strip()!r} is not a positive number.") from None
            if mag is None:
                raise SemFocusError(f"Layer '{layer.name}' has no magnification in its metadata: "
                                    "type it in the Magnification field.")
            value = float(self.score_spin.value() if score is None else score)
            ann = Annotation(layer.name, self.current_slice(layer), mag, value,
                             layer_source_path(layer))
        except SemFocusError as exc:
            notify_error(str(exc))
            return None
        index = self.annotations.add(ann)
        self._refresh_table()
        self.table.selectRow(index)
        self.status_label.setText(f"'{ann.layer}' slice {ann.slice}: score {ann.score:g}.")
        return ann

    def remove_selected(self) -> None:
        rows = sorted({i.row() for i in self.table.selectedIndexes()})
        if rows:
            self.annotations.remove(rows)
            self._refresh_table()

    def _refresh_table(self) -> None:
        from qtpy.QtCore import Qt

        self.table.blockSignals(True)
        self.table.setRowCount(len(self.annotations))
        for i, r in enumerate(self.annotations):
            cells = (r.layer, str(r.slice), format_magnification(r.magnification), f"{r.score:g}")
            for j, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if j < 3:
                    item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
                if j == 0 and r.path:
                    item.setToolTip(r.path)
                self.table.setItem(i, j, item)
        self.table.blockSignals(False)
        summary = self.annotations.summary()
        lines = summary.text().split("\n")
        self.summary_label.setText("\n".join(lines[: len(lines) - len(summary.warnings)]))
        self.warning_label.setText("\n".join(summary.warnings))
        self.warning_label.setVisible(bool(summary.warnings))
        self.summary = summary

    def _on_item_changed(self, item) -> None:
        if item.column() != 3:
            return
        try:
            self.annotations.set_score(item.row(), float(item.text()))
        except (ValueError, SemFocusError):
            notify_error(f"Score {item.text()!r} is not a number between 0 and 10.")
        self._refresh_table()

    # ---- CSV ---------------------------------------------------------------------------------
    def save_csv(self, path=None) -> Path | None:
        path = ask_save_path(self, path, "Save annotations", "annotations.csv", "CSV (*.csv)")
        if path is not None:
            self.annotations.save_csv(path)
            self.status_label.setText(f"{len(self.annotations)} annotations written to {path}.")
        return path

    def load_csv(self, path=None) -> bool:
        if path is None:
            path, _ = QFileDialog.getOpenFileName(self, "Load annotations", "", "CSV (*.csv)")
            if not path:
                return False
        return self._load(path, None)

    def load_folder(self, folder=None, csv_path=None) -> bool:
        """A folder of images and a CSV ``path,magnification,score`` (paths relative to it)."""
        if folder is None:
            folder = QFileDialog.getExistingDirectory(self, "Folder of images")
            if not folder:
                return False
        if csv_path is None:
            csv_path, _ = QFileDialog.getOpenFileName(self, "Scores (path,magnification,score)",
                                                      str(folder), "CSV (*.csv)")
            if not csv_path:
                return False
        return self._load(csv_path, folder)

    def _load(self, path, folder) -> bool:
        try:
            self.annotations = AnnotationTable.load_csv(path, image_folder=folder)
        except SemFocusError as exc:
            notify_error(str(exc))
            return False
        self._refresh_table()
        self.status_label.setText(f"{len(self.annotations)} annotations loaded from {path}.")
        return True

    # ---- training (run, cancel, is_running: WorkerMixin) ---------------------------------------
    def snapshot_settings(self) -> FineTuneSettings:
        """Read every field and the annotated frames of open layers (on the UI thread)."""
        init = DEFAULT_INIT
        if self.init_combo.currentData() == CHECKPOINT_INIT:
            init = self.init_edit.text().strip()
            if not init or not Path(init).is_file():
                raise SemFocusError(f"Checkpoint {init or '(none chosen)'} does not exist.")
        config = TrainConfig(
            epochs=int(self.epochs_spin.value()), batch_size=int(self.batch_spin.value()),
            lr=float(self.lr_spin.value()), optimiser="adamw",
            crop_hw=(int(self.crop_h.value()), int(self.crop_w.value())),
            flips=self.flips_check.isChecked(), freeze_trunk=self.freeze_check.isChecked(),
            device=self.device_combo.currentText())
        table = AnnotationTable(Annotation(**vars(r)) for r in self.annotations)
        return FineTuneSettings(table, config, init, float(self.val_spin.value()),
                                self._open_frames(table))

    def _open_frames(self, table: AnnotationTable) -> dict:
        """Frames of annotated slices whose layer is open (its file, if any, must match)."""
        frames = {}
        for r in table:
            if r.layer not in self.viewer.layers:
                continue
            layer = self.viewer.layers[r.layer]
            path = layer_source_path(layer)
            if r.path and path and Path(path).resolve() != Path(r.path).resolve():
                continue
            lead = _lead_shape(layer)
            if r.slice >= max(1, int(np.prod(lead))):
                raise SemFocusError(f"Layer '{r.layer}' has no slice {r.slice}.")
            data = layer.data[0] if layer.multiscale else layer.data
            frame = np.asarray(data[np.unravel_index(r.slice, lead)] if lead else data)
            bar = layer_databar_rows(layer)
            frames[r.key] = frame[: frame.shape[0] - bar] if bar else frame
        return frames

    def run(self) -> None:
        if not self.is_running:
            self.result = None
            self.saved_path = None
            self.save_model_button.setEnabled(False)
            self.use_button.setEnabled(False)
            self.plot.reset()
        super().run()

    def cancel(self) -> None:
        super().cancel()
        if self.worker is not None:
            self.status_label.setText("Stopping after the current batch…")

    def _on_update(self, update) -> None:
        if isinstance(update, Prepared):
            self.progress_bar.setRange(0, int(self.epochs_spin.value()))
            self.progress_bar.setValue(0)
            self.batch_bar.setRange(0, update.steps_per_epoch)
            self.batch_bar.setValue(0)
            self.status_label.setText(
                f"Fine-tuning {update.parent} on {update.device_name}: {update.train_frames} "
                f"training frames ({len(update.train_images)} images), {update.val_frames} "
                f"validation frames ({len(update.val_images)} images). Validating…")
        elif isinstance(update, Evaluated):
            self.plot.add_validation(0, update.val_rmse)
            before = "n/a" if update.val_rmse is None else f"{update.val_rmse:.3f}"
            self.status_label.setText(f"Validation RMSE before fine-tuning: {before}. Training…")
        elif isinstance(update, BatchDone):
            self.batch_bar.setRange(0, update.steps)
            self.batch_bar.setValue(update.step)
            self.plot.add_batch(update.epoch + update.step / update.steps, update.loss)
        elif isinstance(update, EpochDone):
            self.progress_bar.setValue(update.epoch)
            self.plot.add_validation(update.epoch, update.val_rmse)
            val = "n/a" if update.val_rmse is None else f"{update.val_rmse:.3f}"
            self.status_label.setText(f"Epoch {update.epoch}/{update.epochs}: training loss "
                                      f"{update.train_loss:.3f}, validation RMSE {val}"
                                      f"{' (best so far)' if update.is_best else ''}.")
        elif isinstance(update, Finished) and update.stopped:
            self.status_label.setText("Stopped.")

    def _on_returned(self, result: FineTuneResult) -> None:
        self.result = result
        if not result.trained:
            self.result_label.setText("Stopped before the first batch: nothing to save.")
            self.status_label.setText("Stopped; no model was trained.")
            return
        b, a = result.val_rmse_before, result.val_rmse_after
        rmse = ("no validation images" if a is None else
                f"validation RMSE {b:.3f} before, {a:.3f} after")
        note = " Worse than before: more annotations or other settings may help." if (
            a is not None and b is not None and a >= b) else ""
        how = f"stopped after {len(result.history)} epoch(s)" if result.stopped else "finished"
        self.result_label.setText(f"Best model ({how}): {rmse}.{note}")
        self.status_label.setText(f"Training {how}. Save the model to use it.")
        self.save_model_button.setEnabled(True)
        self.use_button.setEnabled(True)
        notify_info(f"Fine-tuning {how}: {rmse}.")

    # ---- the result --------------------------------------------------------------------------
    def save_model(self, path=None) -> Path | None:
        if self.result is None or not self.result.trained:
            return None
        path = ask_save_path(self, path, "Save fine-tuned model", "finetuned.safetensors",
                             "Model files (*.safetensors)")
        if path is None:
            return None
        try:
            self.saved_path = self.result.save(path)
        except (SemFocusError, OSError) as exc:
            notify_error(f"Could not save the model to {path}: {exc}")
            return None
        self.status_label.setText(f"Model saved to {path}.")
        return self.saved_path

    def use_for_scoring(self) -> Path | None:
        """Save (if not saved yet) and make Score focus / Focus map use the model."""
        path = self.saved_path or self.save_model()
        if path is None:
            return None
        n = _active_model.use_for_scoring(path)
        notify_info(f"{path.name} is now used for scoring ({n} open widget(s) switched).")
        self.status_label.setText(f"Score focus and Focus map now use {path.name}.")
        return path


def _spin(lo, hi, value, step=1) -> QSpinBox:
    s = QSpinBox()
    s.setRange(lo, hi)
    s.setSingleStep(step)
    s.setValue(value)
    return s


def _lead_shape(layer) -> tuple:
    """Shape of the slice axes of an image layer (() for a 2-D image)."""
    if layer is None:
        return ()
    data = layer.data[0] if layer.multiscale else layer.data
    return tuple(int(n) for n in np.shape(data)[: layer.ndim - 2])


def _bind_shortcut(viewer, widget) -> None:
    """``Shift-S`` over the canvas adds an annotation (the newest Fine-tune widget's)."""
    ref = weakref.ref(widget)

    def add_annotation(_viewer):
        w = ref()
        if w is not None:
            try:
                w.add_annotation()
            except RuntimeError:  # the widget's Qt object is gone
                pass

    viewer.bind_key(SHORTCUT, add_annotation, overwrite=True)


def _dark_theme() -> bool:
    try:
        from napari.settings import get_settings

        return get_settings().appearance.theme != "light"
    except Exception:
        return True
