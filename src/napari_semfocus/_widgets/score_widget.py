"""Score focus: the dock widget that scores image layers (2-D images and stacks) for focus.

Thin over the core: it reads its fields once into a
:class:`~napari_semfocus.jobs.score.ScoreSettings` snapshot, runs
:func:`~napari_semfocus.jobs.score.score_images` (``FocusScorer.score_iter`` or ``measures.measure``) in a
``napari.qt.threading`` worker with a progress bar and a Cancel button, then shows the scores in a
sortable table (CSV export with the CLI's columns) and a focus curve, moves the viewer to the best
slice on request, and stores the scores in ``layer.metadata["semfocus"]``
(:func:`napari_semfocus.jobs.records.scores_record`).

Public API (used by the tests and by scripts driving the widget)::

    w = ScoreFocusWidget(viewer)
    w.set_selected_layers(["SEM focus series"]); w.set_method("brenner")
    w.run(); ...; w.results; w.export_csv("scores.csv"); w.go_to_best_slice()

A stack scored by the model also gets its through-focus curve fitted in the worker
(:mod:`napari_semfocus.scoring.through_focus`, z from the layer's metadata, e.g. the focus
series sample's ``defocus_um``): the plot shows the fit, best focus with its interval and the
best attainable score, "Go to best focus" goes to the slice nearest to it, and one line says
what the astigmatism indicator found.
"""

from __future__ import annotations

from pathlib import Path

from qtpy.QtWidgets import (
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)
from superqt import QCollapsible

from ..errors import SemFocusError
from ..jobs.records import SCORES_KEY, scores_record, with_records
from ..jobs.score import MODEL_METHOD, ImageScores, ScoreRun, ScoreSettings, score_images
from ..progress import Progress, Status
from ..scale import parse_magnification
from ..scoring.devices import DEVICE_CHOICES
from ..scoring.preprocess import REGIONS
from .dock import PluginDock
from .exports import save_text
from .forms import (
    CHECKPOINT_MODEL,
    DEFAULT_MODEL,
    MODEL_FILES,
    NOTE_STYLE,
    WARN_STYLE,
    backend_row,
    browse_into,
    combo_box,
    dark_theme,
    existing_checkpoint,
    form_row,
    format_magnification,
    method_combo,
    model_combo,
    names,
    note_label,
    notify_info,
    row_widget,
    select_method,
    spin_box,
    with_tip,
)
from .job_runner import JobRunner
from .layer_list import ChecklistMixin, LayerChecklist
from .layers import (
    go_to_slice,
    image_layers,
    layer_databar_rows,
    layer_input,
    layer_magnification,
)
from .results import FocusCurvePlot, ScoreTable, focus_text
from .viewer_state import follow_model_choice


class ScoreFocusWidget(ChecklistMixin, JobRunner, PluginDock):
    """Dock widget: per-slice focus scores of image layers, table, focus curve, best slice."""

    worker_job = staticmethod(score_images)
    failure_text = "Scoring failed"

    def __init__(self, napari_viewer):
        super().__init__(napari_viewer)
        self.results: list[ImageScores] = []
        self._skipped: list[str] = []  # ticked layers the last run left out (no magnification)
        self.last_run: ScoreRun | None = None
        self._auto_magnification = ""  # what the field was filled with from metadata
        self._build()
        self.refresh_layers()
        follow_model_choice(self)  # "Use for scoring" in the Fine-tune widget

    # ---- construction ----------------------------------------------------------------------
    def _build(self) -> None:
        content = QWidget()
        col = QVBoxLayout(content)

        # layers
        box = QGroupBox("Image layers")
        box_layout = QVBoxLayout(box)
        self.layer_list = LayerChecklist(self.links, (
            "Tick the image layers to score: 2-D images get one score, stacks (focus series, "
            "time series) one score per slice. RGB layers are converted to grey."), 72)
        box_layout.addWidget(self.layer_list)
        self.databar_note = note_label("", (
            "Rows of the vendor's data bar (text strip at the bottom) are left out of scoring. "
            "The height comes from the file's metadata or is detected when the file is opened."),
            NOTE_STYLE)
        box_layout.addWidget(self.databar_note)
        col.addWidget(box)

        # main settings
        form = QFormLayout()
        self.magnification_edit = QLineEdit()
        form_row(form, "Magnification", self.magnification_edit, (
            "Instrument magnification (e.g. 5000 or 5.72 k). Filled from the layer's metadata "
            "when the SEM reader or the sample data put it there; edit it to override. "
            "The model needs it; classical measures do not."))
        self.magnification_hint = note_label()
        form.addRow(self.magnification_hint)

        self.method_combo = method_combo()
        form_row(form, "Method", self.method_combo, (
            "Score with the focus model (0 = no sample, 10 = perfectly focused) or with a "
            "classical focus measure (larger = sharper, not on the 0-10 scale)."))

        self.model_combo = model_combo()
        form_row(form, "Model", self.model_combo, (
            "The model shipped with napari-semfocus, or a checkpoint (.safetensors) you trained "
            "or fine-tuned."))
        self.checkpoint_edit = with_tip(QLineEdit(), "Path of the checkpoint file (.safetensors).")
        self.checkpoint_edit.setPlaceholderText("checkpoint .safetensors")
        self.browse_button = with_tip(QPushButton("Browse…"), "Choose a checkpoint file.")
        path_row = row_widget(self.checkpoint_edit, self.browse_button)
        form_row(form, "Checkpoint", path_row, "Checkpoint file used when Model is 'Checkpoint file…'.")
        col.addLayout(form)

        # rarely used settings
        self.advanced = with_tip(QCollapsible("Advanced settings", expandedIcon="▼", collapsedIcon="▶"),
                                 "Rarely needed: device, region and batch size of the model.")
        adv = QWidget()
        adv_form = QFormLayout(adv)
        self.device_combo = combo_box(DEVICE_CHOICES)
        form_row(adv_form, "Device", self.device_combo, (
            "Where the model runs: auto picks CUDA, then Apple MPS, then the CPU. "
            "The device actually used is shown below after a run starts."))
        self.device_label = with_tip(QLabel("chosen when scoring starts"),
                                     "The device the model runs on.")
        self.device_label.setStyleSheet(NOTE_STYLE)
        adv_form.addRow("Using", self.device_label)
        self.backend_combo = backend_row(adv_form)
        self.region_combo = combo_box(REGIONS)
        form_row(adv_form, "Region", self.region_combo, (
            "whole: mean score of 240 x 320 (h x w) tiles covering the frame (default); centre: one "
            "240 x 320 (h x w) crop from the centre, as in the reference paper."))
        self.batch_spin = spin_box(1, 1024, 32)
        form_row(adv_form, "Batch size", self.batch_spin, (
            "Tiles per model batch; smaller uses less memory, and Cancel reacts between batches."))
        self.advanced.addWidget(adv)
        self.advanced.collapse(animate=False)
        col.addWidget(self.advanced)

        # run / cancel / progress
        self.add_run_controls(col, "Score focus", "Score the ticked layers.",
                               "Stop scoring after the current batch.")

        # results: focus curve and best slice first (what most users want), then the table
        results = QGroupBox("Results")
        res_layout = QVBoxLayout(results)
        self.plot = FocusCurvePlot(dark=dark_theme())
        with_tip(self.plot.canvas, (
            "Focus curve: score against slice (or focus z from the metadata). For a stack "
            "scored by the model: the fitted curve sqrt(s0² + (k (z - z0))²), best focus z0 "
            "with its 90 % interval (band) and the best attainable score (dotted line)."))
        res_layout.addWidget(self.plot.canvas)
        self.focus_label = note_label("", (
            "Best focus from the fitted curve, and the astigmatism indicator: the blur's long "
            "axis turning by ~90° through focus (docs/through-focus.md)."), NOTE_STYLE)
        self.focus_label.setWordWrap(True)
        self.focus_label.setVisible(False)
        res_layout.addWidget(self.focus_label)
        best_row = QHBoxLayout()
        self.curve_combo = with_tip(combo_box(), "Stack whose best focus to go to.")
        self.best_button = with_tip(QPushButton("Go to best focus"), (
            "Move the viewer's slider to the slice nearest to the fitted best focus (the "
            "best-scoring slice where no curve could be fitted)."))
        self.best_button.setEnabled(False)
        best_row.addWidget(self.curve_combo, 1)
        best_row.addWidget(self.best_button)
        res_layout.addLayout(best_row)
        self.table = with_tip(ScoreTable(), (
            "Scores per layer and slice. Click a column header to sort."))
        res_layout.addWidget(self.table)
        self.export_button = with_tip(QPushButton("Export CSV…"), (
            "Save the table as CSV with the command line's columns: path (the layer's file, or "
            "its name), index (slice), magnification, score."))
        self.export_button.setEnabled(False)
        res_layout.addWidget(self.export_button)
        col.addWidget(results)
        col.addStretch(1)

        self.set_scrolled_content(content, 340)

        self.export_button.clicked.connect(lambda: self.export_csv())
        self.best_button.clicked.connect(lambda: self.go_to_best_slice())
        self.browse_button.clicked.connect(lambda: browse_into(
            self, self.checkpoint_edit, "Focus model checkpoint", MODEL_FILES))
        self.method_combo.currentIndexChanged.connect(self._update_enabled)
        self.model_combo.currentIndexChanged.connect(self._update_enabled)
        self.layer_list.ticks_changed.connect(self._on_selection_changed)
        self._update_enabled()

    # ---- layer list (refresh_layers, selected_layer_names, set_selected_layers: ChecklistMixin)
    def _on_selection_changed(self) -> None:
        """Fill the magnification field and the data-bar note from the ticked layers."""
        layers = self.selected_layers()
        mags = {lyr.name: layer_magnification(lyr) for lyr in layers}
        known = {m for m in mags.values() if m is not None}
        missing = [n for n, m in mags.items() if m is None]
        # show a value only when every ticked layer has that one; a different text at run time
        # is the user's override for all ticked layers
        self._auto_magnification = (format_magnification(known.pop())
                                    if len(known) == 1 and not missing else "")
        self.magnification_edit.setText(self._auto_magnification)
        if not layers:
            self.magnification_edit.setPlaceholderText("tick an image layer")
            self._hint("", "")
        elif missing:
            self.magnification_edit.setPlaceholderText("type the magnification, e.g. 5000")
            self._hint(f"No magnification in the metadata of {names(missing)}: type it above "
                       "(the model needs it; a typed value applies to all ticked layers).",
                       WARN_STYLE)
        elif len({m for m in mags.values()}) > 1:
            self.magnification_edit.setPlaceholderText("from each layer's metadata")
            self._hint("Layers differ: each uses its own magnification; a value typed here "
                       "overrides all.", NOTE_STYLE)
        else:
            self.magnification_edit.setPlaceholderText("")
            self._hint("From the layer's metadata; edit to override.", NOTE_STYLE)
        bars = [(lyr.name, layer_databar_rows(lyr), (lyr.metadata or {}).get("databar_source"))
                for lyr in layers]
        bars = [b for b in bars if b[1] > 0]
        self.databar_note.setText("; ".join(
            f"'{n}': data bar of {r} rows at the bottom excluded from scoring"
            + (f" ({src})" if src else "") for n, r, src in bars))
        self.databar_note.setVisible(bool(bars))

    def _hint(self, text: str, style: str) -> None:
        self.magnification_hint.setText(text)
        self.magnification_hint.setStyleSheet(style)
        self.magnification_hint.setVisible(bool(text))

    # ---- settings ----------------------------------------------------------------------------
    def set_method(self, method: str) -> None:
        """``"model"`` or the name of a classical measure (``measures.MEASURES``)."""
        select_method(self.method_combo, method)

    def set_checkpoint(self, path) -> None:
        """Score with the checkpoint at ``path`` (``None``: the shipped default model)."""
        if path is None:
            self.model_combo.setCurrentIndex(self.model_combo.findData(DEFAULT_MODEL))
            return
        self.model_combo.setCurrentIndex(self.model_combo.findData(CHECKPOINT_MODEL))
        self.checkpoint_edit.setText(str(path))

    def _update_enabled(self) -> None:
        model = self.method_combo.currentData() == MODEL_METHOD
        checkpoint = self.model_combo.currentData() == CHECKPOINT_MODEL
        for w in (self.model_combo, self.device_combo, self.backend_combo, self.region_combo,
                  self.batch_spin):
            w.setEnabled(model)
        self.checkpoint_edit.setEnabled(model and checkpoint)
        self.browse_button.setEnabled(model and checkpoint)

    def snapshot_settings(self) -> ScoreSettings:
        """Read every field once (on the UI thread); raises SemFocusError for bad input."""
        if not image_layers(self.viewer):
            raise SemFocusError("There is no image layer to score: open an image or a sample first.")
        layers = self.selected_layers()
        if not layers:
            raise SemFocusError("No image layer is ticked: tick the layers to score.")
        text = self.magnification_edit.text()
        typed = parse_magnification(text)
        if text.strip() == self._auto_magnification:
            typed = None  # not an override: every layer uses its own metadata
        method = self.method_combo.currentData()
        checkpoint = None
        if method == MODEL_METHOD and self.model_combo.currentData() == CHECKPOINT_MODEL:
            checkpoint = existing_checkpoint(self.checkpoint_edit.text())
            if checkpoint is None:
                raise SemFocusError("No checkpoint file chosen: pick one or use the default model.")
        mags = [(lyr, typed if typed is not None else layer_magnification(lyr)) for lyr in layers]
        if method == MODEL_METHOD:  # the model needs one: layers without are named and skipped
            missing = [lyr.name for lyr, m in mags if m is None]
            mags = [(lyr, m) for lyr, m in mags if m is not None]
            if not mags:
                raise SemFocusError(f"No magnification is known for {names(missing)}: type it in "
                                    "the Magnification field (the model needs it).")
        inputs = tuple(layer_input(lyr, m).with_focus_from(lyr.metadata) for lyr, m in mags)
        return ScoreSettings(images=inputs, method=method, checkpoint=checkpoint,
                             device=self.device_combo.currentText(),
                             backend=self.backend_combo.currentText(),
                             region=self.region_combo.currentText(),
                             batch_size=int(self.batch_spin.value()), focus_curves=True)

    # ---- running (run, cancel, is_running: JobRunner) -------------------------------------
    def _on_status(self, update: Status) -> None:
        if update.device_name:
            self.device_label.setText(update.device_name)

    def on_run_started(self, settings: ScoreSettings) -> None:
        """A new run clears the previous run's results; ticked layers left out (no
        magnification) are named."""
        self.results = []
        self.table.set_results([])
        self.plot.clear()
        self.focus_label.clear()
        self.focus_label.setVisible(False)
        self.curve_combo.clear()
        self.best_button.setEnabled(False)
        self.export_button.setEnabled(False)
        scored = {im.name for im in settings.images}
        self._skipped = [lyr.name for lyr in self.selected_layers() if lyr.name not in scored]
        if self._skipped:
            notify_info(f"Not scored: {names(self._skipped)} (no magnification known; type one "
                        "to score them).")

    def _progress_text(self, update: Progress) -> str:
        return (f"Scoring '{update.name}' ({update.index + 1}/{update.count}): "
                f"{update.done}/{update.total}")

    def _on_returned(self, result: ScoreRun) -> None:
        self.last_run = result
        if result.cancelled:
            self.status_label.setText("Cancelled; no scores were stored.")
            notify_info("Focus scoring cancelled.")
            return
        self.progress_bar.setValue(1000)
        self.show_results(result)

    # ---- results -----------------------------------------------------------------------------
    def show_results(self, result: ScoreRun) -> None:
        """Fill table and plot, store scores in the layers' metadata."""
        self.results = list(result.images)
        model = result.settings.method == MODEL_METHOD
        self.table.set_results(self.results, "{:.2f}" if model else "{:.4g}")
        self.export_button.setEnabled(bool(self.results))
        ylabel = "focus score (0–10)" if model else f"{result.settings.method} (larger = sharper)"
        self.plot.plot(self.results, ylabel, score_range=(0, 10.3) if model else None)
        stacks = [r.name for r in self.results if len(r.scores) > 1]
        self.curve_combo.clear()
        self.curve_combo.addItems(stacks)
        self.best_button.setEnabled(bool(stacks))
        for res in self.results:
            self._store_in_layer(res, result)
        best = "; ".join(f"'{r.name}': best slice {r.best_index} "
                         f"(score {r.scores[r.best_index]:.3g})" if len(r.scores) > 1 else
                         f"'{r.name}': {r.scores[0]:.3g}" for r in self.results)
        skipped = (f" Not scored (no magnification): {names(self._skipped)}."
                   if self._skipped else "")
        self.status_label.setText(
            f"Done ({result.model_name} on {result.device_name}). {best}{skipped}")
        lines = [focus_text(r) for r in self.results if len(r.scores) > 1 and model]
        self.focus_label.setText("\n".join(lines))
        self.focus_label.setVisible(bool(lines))

    def _store_in_layer(self, res: ImageScores, result: ScoreRun) -> None:
        """``layer.metadata["semfocus"]``. (Image layers have no ``features`` table in napari,
        so the per-slice scores live in metadata only.)"""
        if res.name not in self.viewer.layers:
            return  # removed while scoring
        layer = self.viewer.layers[res.name]
        layer.metadata = with_records(layer.metadata, {SCORES_KEY: scores_record(res, result)})

    def export_csv(self, path=None) -> Path | None:
        """Write the table to ``path`` (asks for a file when ``None``); returns the path."""
        return save_text(self, path, self.table.csv_text(), "Export focus scores",
                               "focus-scores.csv", "CSV files (*.csv)", "Scores")

    def go_to_best_slice(self, layer_name: str | None = None) -> int | None:
        """Move the viewer's sliders to the slice nearest to the fitted best focus of a scored
        stack (the best-scoring slice where no curve was fitted); returns that slice."""
        name = layer_name or self.curve_combo.currentText()
        res = next((r for r in self.results if r.name == name and len(r.scores) > 1), None)
        if res is None or name not in self.viewer.layers:
            return None
        go_to_slice(self.viewer, self.viewer.layers[name], res.best_focus_index)
        return res.best_focus_index

    go_to_best_focus = go_to_best_slice

