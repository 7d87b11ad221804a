"""Fine-tune: the dock widget that teaches the focus model a lab's own expert scores.

Thin over the core: annotations live in an :class:`~napari_semfocus.training.data.annotations.AnnotationTable`
edited in the :class:`~.annotation_panel.AnnotationPanel` (shown slice, table, CSV save/load,
folder + CSV, summary and warnings), training is :func:`napari_semfocus.training.finetune.finetune` run by
:func:`napari_semfocus.jobs.finetune.finetune_job` in a ``napari.qt.threading`` worker; the widget relays its
typed updates to two progress bars and a live plot, and Stop ends training after the current
batch, keeping the best model so far. The layers and files of the user are only read.

Public API (tests, scripts)::

    w = FineTuneWidget(viewer); w.set_layer("SEM focus series"); w.set_slice(4)
    w.score_spin.setValue(9.5); w.add_annotation()          # or Shift-S over the canvas
    w.save_csv("scores.csv"); w.load_csv("scores.csv"); w.load_folder("imgs/", "scores.csv")
    w.run(); w.cancel(); ...; w.result; w.save_model("lab.safetensors"); w.use_for_scoring()
    w.suggest_panel.n_spin.setValue(12); w.suggest_panel.run()   # Suggest frames: .suggestions
"""

from __future__ import annotations

from pathlib import Path

from qtpy.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ..errors import SemFocusError
from ..jobs.finetune import FineTuneSettings, finetune_job
from ..scoring.devices import DEVICE_CHOICES
from ..training.data.annotations import Annotation, AnnotationTable
from ..training.finetune import (
    FINETUNE_DEFAULTS,
    MIN_STEPS_PER_EPOCH,
    VAL_FRACTION,
    Evaluated,
    FineTuneResult,
    Prepared,
    finetune_config,
)
from ..training.loop import BatchDone, EpochDone, Finished, stop_point
from .annotation_panel import SHORTCUT, AnnotationPanel, shortcut_callback
from .dock import PluginDock
from .forms import (
    CHECKPOINT_MODEL,
    DEFAULT_MODEL,
    MODEL_FILES,
    WARN_STYLE,
    advanced_section,
    ask_save_path,
    browse_into,
    combo_box,
    dark_theme,
    double_spin_box,
    existing_checkpoint,
    form_row,
    model_combo,
    note_label,
    notify_error,
    notify_info,
    notify_warning,
    row_widget,
    spin_box,
    with_tip,
)
from .job_runner import JobRunner
from .plots import TrainingPlot
from .suggest_panel import SuggestPanel
from .viewer_state import state_of

__all__ = ["SHORTCUT", "FineTuneWidget"]


def _panel_api(name: str) -> property:
    """The annotation panel's ``name``, kept on the widget (its public API predates the panel)."""
    return property(lambda self: getattr(self.annotation_panel, name), doc=f"panel's {name}")


class FineTuneWidget(JobRunner, PluginDock):
    """Dock widget: annotate images with expert scores, fine-tune, save, use for scoring."""

    worker_job = staticmethod(finetune_job)
    failure_text = "Fine-tuning failed"


    def __init__(self, napari_viewer):
        super().__init__(napari_viewer)
        self.result: FineTuneResult | None = None
        self._last_batch: BatchDone | None = None  # the last batch of the run, for Stop's message
        self.saved_path: Path | None = None
        self._build()
        self._connect_viewer()

    # ---- construction ----------------------------------------------------------------------
    def _build(self) -> None:
        content = QWidget()
        col = QVBoxLayout(content)
        self.annotation_panel = AnnotationPanel(self.links)
        col.addWidget(self.annotation_panel)
        col.addWidget(self._build_suggest())
        col.addWidget(self._build_training())
        self.add_run_controls(col, "Train", "Fine-tune the model on the annotations.",
                               "Stop after the current batch; that model is kept when it beats "
                               "the one you start from.")
        self.annotation_panel.status.connect(self.status_label.setText)
        self.cancel_button.setText("Stop")
        self.progress_bar.setFormat("epoch %v / %m")
        self.progress_bar.setRange(0, int(self.epochs_spin.value()))  # not the base class's 0..1000
        self.batch_bar = with_tip(QProgressBar(), "Batches of the current epoch.")
        self.batch_bar.setFormat("batch %v / %m")
        col.insertWidget(col.indexOf(self.progress_bar) + 1, self.batch_bar)
        self.plot = TrainingPlot(dark=dark_theme())
        with_tip(self.plot.canvas, "Training RMSE per batch (from the loss) and validation RMSE "
                                   "per epoch (epoch 0: the model before fine-tuning).")
        col.addWidget(self.plot.canvas)
        col.addWidget(self._build_result())
        col.addStretch(1)
        self.set_scrolled_content(content, 360)

    def _connect_viewer(self) -> None:
        """Keep the annotation panel in step with the viewer (its layer combo follows the layer
        list by itself) and bind Shift-S to it, until the widget is closed."""
        panel = self.annotation_panel
        self.links.connect(self.viewer.layers.selection.events.active, panel.follow_active_layer)
        self.links.connect(self.viewer.dims.events.current_step, panel.show_slice)
        self.links.bind_key(SHORTCUT, shortcut_callback(panel))

    def _build_suggest(self) -> QGroupBox:
        box = QGroupBox("Frames worth annotating")
        self.suggest_panel = SuggestPanel(self.viewer, self.annotation_panel, lambda: (
            self._init_model(), self.device_combo.currentText()))
        QVBoxLayout(box).addWidget(self.suggest_panel)
        return box

    def _build_training(self) -> QGroupBox:
        box = QGroupBox("Training")
        outer = QVBoxLayout(box)
        form = QFormLayout()
        outer.addLayout(form)
        self.init_combo = model_combo()
        form_row(form, "Start from", self.init_combo, "The model to fine-tune.")
        self.init_edit = with_tip(QLineEdit(), "Checkpoint (.safetensors) to start from.")
        self.init_browse = with_tip(QPushButton("…"), "Choose the checkpoint file.")
        form.addRow(row_widget(self.init_edit, self.init_browse, stretch=0))
        ft = FINETUNE_DEFAULTS  # the CLI's fine-tuning defaults too
        self.epochs_spin = spin_box(1, 1000, ft["epochs"])
        form_row(form, "Epochs", self.epochs_spin, (
            f"Passes over the training annotations (at least {MIN_STEPS_PER_EPOCH} batches "
            "each); the model is validated after each, and the last one is kept when it "
            "beats the model you start from."))
        self.advanced, form = advanced_section("Learning rate, batch, validation split, "
                                               "augmentation, trunk, device: the defaults suit "
                                               "most annotation sets.")
        outer.addWidget(self.advanced)
        self.lr_spin = double_spin_box(1e-5, 0.1, ft["lr"], 1e-4, decimals=5)
        form_row(form, "Learning rate", self.lr_spin, (
            "AdamW learning rate of the head (cosine schedule); the trunk's trained blocks "
            f"learn at {ft['trunk_lr_factor']:g} times it."))
        self.batch_spin = spin_box(1, 256, ft["batch_size"])
        form_row(form, "Batch size", self.batch_spin, "Crops per training step.")
        self.val_spin = double_spin_box(0.0, 0.9, VAL_FRACTION, 0.05)
        form_row(form, "Validation fraction", self.val_spin, (
            "Share of the annotated images held out to validate (split by image: all slices "
            "of a stack stay on one side, never by crop). 0: no validation."))
        self.paper_aug = with_tip(QCheckBox("Random 240 × 320 (h × w) crops, flips (the paper's)"), (
            "The paper's augmentation. Untick to choose another crop size or no flips."))
        self.paper_aug.setChecked(True)
        form.addRow("Augmentation", self.paper_aug)
        self.crop_h, self.crop_w = spin_box(32, 2048, 240, 16), spin_box(32, 2048, 320, 16)
        self.flips_check = with_tip(QCheckBox("flips"), "Random horizontal and vertical flips.")
        self.flips_check.setChecked(True)
        crop = row_widget(self.crop_h, QLabel("×"), self.crop_w, self.flips_check)
        form_row(form, "Crop (h × w)", crop, "Random crop size in pixels for training.")
        self.freeze_check = with_tip(QCheckBox("all but its last block"), (
            "Keep the convolutional trunk and its batch-norm statistics as they are, except its "
            "last block (layer4), and train the head: fast on a CPU and robust with few "
            "annotations. Untick to adapt the whole network."))
        self.freeze_check.setChecked(ft["freeze_trunk"])
        form.addRow("Freeze trunk", self.freeze_check)
        self.keep_parent_check = with_tip(QCheckBox("unless the last epoch beats it"), (
            "The model you start from is epoch 0: only a last epoch with a lower validation RMSE "
            "replaces it. Untick to keep the last epoch even when it is worse."))
        self.keep_parent_check.setChecked(True)
        form.addRow("Keep the parent", self.keep_parent_check)
        self.device_combo = combo_box(DEVICE_CHOICES, 6)
        form_row(form, "Device", self.device_combo, "auto: CUDA, then Apple MPS, then the CPU.")
        self.init_combo.currentIndexChanged.connect(lambda _i: self._update_enabled())
        self.paper_aug.toggled.connect(lambda _c: self._update_enabled())
        self.init_browse.clicked.connect(lambda: browse_into(
            self, self.init_edit, "Model to fine-tune", MODEL_FILES))
        self._update_enabled()
        return box

    def _build_result(self) -> QGroupBox:
        box = QGroupBox("Fine-tuned model")
        col = QVBoxLayout(box)
        self.result_label = note_label("No model trained yet.",
                                       "Validation RMSE against the annotations, before and after.")
        col.addWidget(self.result_label)
        self.data_warning_label = note_label(style=WARN_STYLE)  # the run's data warnings
        self.data_warning_label.setVisible(False)
        col.addWidget(self.data_warning_label)
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
        checkpoint = self.init_combo.currentData() == CHECKPOINT_MODEL
        self.init_edit.setEnabled(checkpoint)
        self.init_browse.setEnabled(checkpoint)
        custom = not self.paper_aug.isChecked()
        for w in (self.crop_h, self.crop_w, self.flips_check):
            w.setEnabled(custom)
        if not custom:
            self.crop_h.setValue(240)
            self.crop_w.setValue(320)
            self.flips_check.setChecked(True)

    # ---- training (run, cancel, is_running: JobRunner) ---------------------------------------
    def snapshot_settings(self) -> FineTuneSettings:
        """Read every field and the annotated frames of open layers (on the UI thread)."""
        init = self._init_model()
        config = finetune_config(
            epochs=int(self.epochs_spin.value()), batch_size=int(self.batch_spin.value()),
            lr=float(self.lr_spin.value()),
            crop_hw=(int(self.crop_h.value()), int(self.crop_w.value())),
            flips=self.flips_check.isChecked(), freeze_trunk=self.freeze_check.isChecked(),
            device=self.device_combo.currentText())
        table = AnnotationTable(Annotation(**vars(r)) for r in self.annotations)
        return FineTuneSettings(table, config, init, float(self.val_spin.value()),
                                self.annotation_panel.open_frames(table),
                                keep_parent=self.keep_parent_check.isChecked())

    def _init_model(self) -> str:
        """The model to start from: "default" (as the job takes it) or a checkpoint path."""
        if self.init_combo.currentData() != CHECKPOINT_MODEL:
            return DEFAULT_MODEL
        init = existing_checkpoint(self.init_edit.text())
        if init is None:
            raise SemFocusError("No checkpoint file chosen: pick one or start from the default model.")
        return init

    def run(self) -> None:
        if not self.is_running:
            self.result = None
            self._last_batch = None
            self.saved_path = None
            self.save_model_button.setEnabled(False)
            self.use_button.setEnabled(False)
            self.data_warning_label.setVisible(False)
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
            warnings = [w[0].upper() + w[1:] for w in update.warnings]
            for warning in warnings:
                notify_warning(warning)
            self.data_warning_label.setText("\n".join(warnings))
            self.data_warning_label.setVisible(bool(warnings))
        elif isinstance(update, Evaluated):
            self.plot.add_validation(0, update.val_rmse)
            before = "n/a" if update.val_rmse is None else f"{update.val_rmse:.3f}"
            self.status_label.setText(f"Validation RMSE before fine-tuning: {before}. Training…")
        elif isinstance(update, BatchDone):
            self._last_batch = update
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
        how = stop_point(self._last_batch, len(result.history)) if result.stopped else "finished"
        if result.kept_parent:
            why = result.why_parent_kept
            text = (f"Kept the parent: {why}, so the result is {self._parent_name()} itself; "
                    f"there is nothing to save.")
            self.result_label.setText(text)
            self.status_label.setText(f"Training {how}; kept the parent.")
            notify_info(text)
            return
        figures = self._figures()
        note = (" WORSE than the parent: more annotations or other settings may help."
                if result.worse_than_parent else "") + (
            f"\nScore intervals: {result.interval_note}" if result.interval_note else "")
        self.result_label.setText(f"Best model ({how}): {figures}.{note}")
        self.status_label.setText(f"Training {how}. Save the model to use it.")
        for button in (self.save_model_button, self.use_button):
            button.setEnabled(True)
            button.setToolTip(f"{button.toolTip().split(' (validation')[0]} ({figures})")
        notify_info(f"Fine-tuning {how}: {figures}.")

    def _parent_name(self) -> str:
        return self.result.metadata["provenance"].get("parent") or "the untrained model"

    def _figures(self) -> str:
        """The result's validation RMSE and its parent's, in words."""
        b, a = self.result.val_rmse_before, self.result.val_rmse_after
        if a is None:
            return "validation RMSE unknown (no validation images)"
        return f"validation RMSE {a:.3f}, parent {self._parent_name()} {b:.3f}"

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
        self.status_label.setText(f"Model saved to {path} ({self._figures()}).")
        return self.saved_path

    def use_for_scoring(self) -> Path | None:
        """Save (if not saved yet) and make Score focus / Focus map use the model; a model that
        scored worse than its parent on validation only after the user confirms."""
        if self.result is None or not self.result.trained or self.result.kept_parent:
            return None
        if self.result.worse_than_parent and not self._confirm_worse():
            self.status_label.setText(f"Not switched: scoring keeps its model ({self._figures()}).")
            return None
        path = self.saved_path or self.save_model()
        if path is None:
            return None
        n = state_of(self.viewer).use_model(path)
        notify_info(f"{path.name} ({self._figures()}) is now used for scoring "
                    f"({n} open widget(s) switched).")
        self.status_label.setText(f"Score focus and Focus map now use {path.name} "
                                  f"({self._figures()}).")
        return path

    def _confirm_worse(self) -> bool:
        answer = QMessageBox.question(
            self, "Use a worse model?",
            f"The fine-tuned model scored worse than its parent on validation "
            f"({self._figures()}). Score with it anyway?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No)
        return answer == QMessageBox.StandardButton.Yes


#: the annotation panel's widgets, state and methods, kept on the widget (tests, scripts)
PANEL_API = ("layer_combo", "slice_label", "magnification_edit", "score_spin", "add_button",
             "table", "remove_button", "save_csv_button", "load_csv_button", "load_folder_button",
             "summary_label", "warning_label", "annotations", "summary", "refresh_layers",
             "source_layer", "set_layer", "current_slice", "set_slice", "add_annotation",
             "remove_selected", "save_csv", "load_csv", "load_folder")
for _name in PANEL_API:
    setattr(FineTuneWidget, _name, _panel_api(_name))
