"""Score focus: the dock widget that scores image layers (2-D images and stacks) for focus.

Thin over the core: it reads its fields once into a :class:`~._common.ScoreSettings` snapshot,
runs :func:`~._score_job.score_layers` (``FocusScorer.score_iter`` or ``measures.measure``) in a
``napari.qt.threading`` worker with a progress bar and a Cancel button, then shows the scores in a
sortable table (CSV export with the CLI's columns) and a focus curve, moves the viewer to the best
slice on request, and stores the scores in ``layer.metadata["semfocus"]``.

Public API (used by the tests and by scripts driving the widget)::

    w = ScoreFocusWidget(viewer)
    w.set_selected_layers(["SEM focus series"]); w.set_method("brenner")
    w.run(); ...; w.results; w.export_csv("scores.csv"); w.go_to_best_slice()
"""

from __future__ import annotations

import threading
from pathlib import Path

from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)
from superqt import QCollapsible

from ..errors import SemFocusError
from ._active_model import follow as follow_active_model
from ._common import (
    MODEL_METHOD,
    LayerInput,
    LayerScores,
    RunResult,
    ScoreSettings,
    WorkerMixin,
    ask_save_path,
    compact_combo,
    form_row,
    format_magnification,
    image_layers,
    layer_databar_rows,
    layer_magnification,
    layer_source_path,
    names,
    notify_info,
    parse_magnification,
    with_tip,
    write_text_file,
)
from ._results import FocusCurvePlot, ScoreTable
from ._score_job import Progress, Status, score_layers

DEFAULT_MODEL = "default"
CHECKPOINT_MODEL = "checkpoint"
MISSING_STYLE = "color: #f0a030;"
NOTE_STYLE = "color: #9aa0a6;"


class ScoreFocusWidget(WorkerMixin, QWidget):
    """Dock widget: per-slice focus scores of image layers, table, focus curve, best slice."""

    worker_job = staticmethod(score_layers)
    failure_text = "Scoring failed"

    def __init__(self, napari_viewer):
        super().__init__()
        self.viewer = napari_viewer
        self.results: list[LayerScores] = []
        self.last_run: RunResult | None = None
        self.worker = None
        self._cancel = threading.Event()
        self._auto_magnification = ""  # what the field was filled with from metadata
        self._build()
        self._connect_viewer()
        self.refresh_layers()
        follow_active_model(self)  # "Use for scoring" in the Fine-tune widget

    # ---- construction ----------------------------------------------------------------------
    def _build(self) -> None:
        content = QWidget()
        col = QVBoxLayout(content)

        # layers
        box = QGroupBox("Image layers")
        box_layout = QVBoxLayout(box)
        self.layer_list = with_tip(QListWidget(), (
            "Tick the image layers to score: 2-D images get one score, stacks (focus series, "
            "time series) one score per slice. RGB layers are converted to grey."))
        self.layer_list.setMaximumHeight(72)
        box_layout.addWidget(self.layer_list)
        self.databar_note = with_tip(QLabel(), (
            "Rows of the vendor's data bar (text strip at the bottom) are left out of scoring. "
            "The height comes from the file's metadata or is detected when the file is opened."))
        self.databar_note.setWordWrap(True)
        self.databar_note.setStyleSheet(NOTE_STYLE)
        box_layout.addWidget(self.databar_note)
        col.addWidget(box)

        # main settings
        form = QFormLayout()
        self.magnification_edit = QLineEdit()
        form_row(form, "Magnification", self.magnification_edit, (
            "Instrument magnification (e.g. 5000 or 5.72 k). Filled from the layer's metadata "
            "when the SEM reader or the sample data put it there; edit it to override. "
            "The model needs it; classical measures do not."))
        self.magnification_hint = QLabel()
        self.magnification_hint.setWordWrap(True)
        form.addRow(self.magnification_hint)

        self.method_combo = compact_combo(QComboBox())
        self.method_combo.addItem("FocusNet model (score 0–10)", MODEL_METHOD)
        from ..measures import MEASURES

        for name in MEASURES:
            self.method_combo.addItem(f"{name} (classical measure)", name)
        form_row(form, "Method", self.method_combo, (
            "Score with the focus model (0 = no sample, 10 = perfectly focused) or with a "
            "classical focus measure (larger = sharper, not on the 0-10 scale)."))

        self.model_combo = compact_combo(QComboBox())
        self.model_combo.addItem("Default model (shipped)", DEFAULT_MODEL)
        self.model_combo.addItem("Checkpoint file…", CHECKPOINT_MODEL)
        form_row(form, "Model", self.model_combo, (
            "The model shipped with napari-semfocus, or a checkpoint (.safetensors) you trained "
            "or fine-tuned."))
        path_row = QWidget()
        path_layout = QHBoxLayout(path_row)
        path_layout.setContentsMargins(0, 0, 0, 0)
        self.checkpoint_edit = with_tip(QLineEdit(), "Path of the checkpoint file (.safetensors).")
        self.checkpoint_edit.setPlaceholderText("checkpoint .safetensors")
        self.browse_button = with_tip(QPushButton("Browse…"), "Choose a checkpoint file.")
        path_layout.addWidget(self.checkpoint_edit)
        path_layout.addWidget(self.browse_button)
        form_row(form, "Checkpoint", path_row, "Checkpoint file used when Model is 'Checkpoint file…'.")
        col.addLayout(form)

        # rarely used settings
        self.advanced = with_tip(QCollapsible("Advanced settings", expandedIcon="▼", collapsedIcon="▶"),
                                 "Rarely needed: device, region and batch size of the model.")
        adv = QWidget()
        adv_form = QFormLayout(adv)
        self.device_combo = compact_combo(QComboBox())
        from ..devices import DEVICE_CHOICES

        self.device_combo.addItems(list(DEVICE_CHOICES))
        form_row(adv_form, "Device", self.device_combo, (
            "Where the model runs: auto picks CUDA, then Apple MPS, then the CPU. "
            "The device actually used is shown below after a run starts."))
        self.device_label = with_tip(QLabel("chosen when scoring starts"),
                                     "The device the model runs on.")
        self.device_label.setStyleSheet(NOTE_STYLE)
        adv_form.addRow("Using", self.device_label)
        self.region_combo = compact_combo(QComboBox())
        from ..preprocess import REGIONS

        self.region_combo.addItems(list(REGIONS))
        form_row(adv_form, "Region", self.region_combo, (
            "whole: mean score of 320 x 240 tiles covering the frame (default); centre: one "
            "320 x 240 crop from the centre, as in the reference paper."))
        self.batch_spin = QSpinBox()
        self.batch_spin.setRange(1, 1024)
        self.batch_spin.setValue(32)
        form_row(adv_form, "Batch size", self.batch_spin, (
            "Tiles per model batch; smaller uses less memory, and Cancel reacts between batches."))
        self.advanced.addWidget(adv)
        self.advanced.collapse(animate=False)
        col.addWidget(self.advanced)

        # run / cancel / progress
        self._add_run_controls(col, "Score focus", "Score the ticked layers.",
                               "Stop scoring after the current batch.")

        # results: focus curve and best slice first (what most users want), then the table
        results = QGroupBox("Results")
        res_layout = QVBoxLayout(results)
        self.plot = FocusCurvePlot(dark=_dark_theme())
        with_tip(self.plot.canvas, "Focus curve: score against slice; the star marks the best slice.")
        res_layout.addWidget(self.plot.canvas)
        best_row = QHBoxLayout()
        self.curve_combo = with_tip(compact_combo(QComboBox()), "Stack whose best slice to show.")
        self.best_button = with_tip(QPushButton("Go to best slice"),
                                    "Move the viewer's slider to the best-focused slice.")
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

        self._set_scrolled_content(content, 340)

        self.export_button.clicked.connect(lambda: self.export_csv())
        self.best_button.clicked.connect(lambda: self.go_to_best_slice())
        self.browse_button.clicked.connect(self._browse_checkpoint)
        self.method_combo.currentIndexChanged.connect(self._update_enabled)
        self.model_combo.currentIndexChanged.connect(self._update_enabled)
        self.layer_list.itemChanged.connect(lambda _item: self._on_selection_changed())
        self._update_enabled()

    def _connect_viewer(self) -> None:
        events = self.viewer.layers.events
        events.inserted.connect(self._on_layers_changed)
        events.removed.connect(self._on_layers_changed)
        events.moved.connect(self._on_layers_changed)

    # ---- layer list ------------------------------------------------------------------------
    def _on_layers_changed(self, event=None) -> None:
        layer = getattr(event, "value", None)
        if layer is not None and hasattr(layer, "events") and hasattr(layer.events, "name"):
            layer.events.name.connect(lambda _e: self.refresh_layers())
        self.refresh_layers()

    def refresh_layers(self) -> None:
        """Rebuild the layer list from the viewer, keeping the ticks of layers still there;
        when nothing is ticked, tick the selected image layers (or the newest image layer)."""
        ticked = set(self.selected_layer_names())
        layers = image_layers(self.viewer)
        if not ticked & {lyr.name for lyr in layers}:
            chosen = [lyr.name for lyr in layers if lyr in self.viewer.layers.selection]
            ticked = set(chosen or ([layers[-1].name] if layers else []))
        self.layer_list.blockSignals(True)
        self.layer_list.clear()
        for layer in layers:
            item = QListWidgetItem(layer.name)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked if layer.name in ticked
                               else Qt.CheckState.Unchecked)
            self.layer_list.addItem(item)
        self.layer_list.blockSignals(False)
        self._on_selection_changed()

    def selected_layer_names(self) -> list[str]:
        out = []
        for i in range(self.layer_list.count()):
            item = self.layer_list.item(i)
            if item.checkState() == Qt.CheckState.Checked:
                out.append(item.text())
        return out

    def selected_layers(self) -> list:
        chosen = set(self.selected_layer_names())
        return [layer for layer in image_layers(self.viewer) if layer.name in chosen]

    def set_selected_layers(self, layer_names) -> None:
        """Tick exactly the image layers named in ``layer_names``."""
        wanted = set(layer_names)
        self.layer_list.blockSignals(True)
        for i in range(self.layer_list.count()):
            item = self.layer_list.item(i)
            item.setCheckState(Qt.CheckState.Checked if item.text() in wanted
                               else Qt.CheckState.Unchecked)
        self.layer_list.blockSignals(False)
        self._on_selection_changed()

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
                       MISSING_STYLE)
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
        for w in (self.model_combo, self.device_combo, self.region_combo, self.batch_spin):
            w.setEnabled(model)
        self.checkpoint_edit.setEnabled(model and checkpoint)
        self.browse_button.setEnabled(model and checkpoint)

    def _browse_checkpoint(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Focus model checkpoint", "",
                                              "Model files (*.safetensors);;All files (*)")
        if path:
            self.checkpoint_edit.setText(path)

    def snapshot_settings(self) -> ScoreSettings:
        """Read every field once (on the UI thread); raises SemFocusError for bad input."""
        if not image_layers(self.viewer):
            raise SemFocusError("There is no image layer to score: open an image or a sample first.")
        layers = self.selected_layers()
        if not layers:
            raise SemFocusError("No image layer is ticked: tick the layers to score.")
        text = self.magnification_edit.text()
        try:
            typed = parse_magnification(text)
        except ValueError:
            raise SemFocusError(
                f"Magnification {text.strip()!r} is not a positive number (e.g. 5000).") from None
        if text.strip() == self._auto_magnification:
            typed = None  # not an override: every layer uses its own metadata
        method = self.method_combo.currentData()
        checkpoint = None
        if method == MODEL_METHOD and self.model_combo.currentData() == CHECKPOINT_MODEL:
            checkpoint = self.checkpoint_edit.text().strip()
            if not checkpoint:
                raise SemFocusError("No checkpoint file chosen: pick one or use the default model.")
            if not Path(checkpoint).is_file():
                raise SemFocusError(f"Checkpoint {checkpoint} does not exist.")
        inputs = tuple(
            LayerInput(name=lyr.name, data=lyr.data[0] if lyr.multiscale else lyr.data,
                       magnification=typed if typed is not None else layer_magnification(lyr),
                       databar_rows=layer_databar_rows(lyr), rgb=bool(lyr.rgb),
                       path=layer_source_path(lyr))
            for lyr in layers)
        return ScoreSettings(layers=inputs, method=method, checkpoint=checkpoint,
                             device=self.device_combo.currentText(),
                             region=self.region_combo.currentText(),
                             batch_size=int(self.batch_spin.value()))

    # ---- running (run, cancel, is_running: WorkerMixin) -------------------------------------
    def _on_status(self, update: Status) -> None:
        if update.device_name:
            self.device_label.setText(update.device_name)

    def _progress_text(self, update: Progress) -> str:
        return (f"Scoring '{update.layer_name}' ({update.layer_index + 1}/{update.n_layers}): "
                f"{update.done}/{update.total}")

    def _on_returned(self, result: RunResult) -> None:
        self.last_run = result
        if result.cancelled:
            self.status_label.setText("Cancelled; no scores were stored.")
            notify_info("Focus scoring cancelled.")
            return
        self.progress_bar.setValue(1000)
        self.show_results(result)

    # ---- results -----------------------------------------------------------------------------
    def show_results(self, result: RunResult) -> None:
        """Fill table and plot, store scores in the layers' metadata."""
        self.results = list(result.layers)
        model = result.settings.method == MODEL_METHOD
        self.table.set_results(self.results, "{:.2f}" if model else "{:.4g}")
        self.export_button.setEnabled(bool(self.results))
        ylabel = "focus score (0–10)" if model else f"{result.settings.method} (larger = sharper)"
        self.plot.plot(self.results, ylabel, score_range=(0, 10.3) if model else None)
        stacks = [r.layer_name for r in self.results if len(r.scores) > 1]
        self.curve_combo.clear()
        self.curve_combo.addItems(stacks)
        self.best_button.setEnabled(bool(stacks))
        for res in self.results:
            self._store_in_layer(res, result)
        best = "; ".join(f"'{r.layer_name}': best slice {r.best_index} "
                         f"(score {r.scores[r.best_index]:.3g})" if len(r.scores) > 1 else
                         f"'{r.layer_name}': {r.scores[0]:.3g}" for r in self.results)
        self.status_label.setText(f"Done ({result.model_name} on {result.device_name}). {best}")

    def _store_in_layer(self, res: LayerScores, result: RunResult) -> None:
        """``layer.metadata["semfocus"]``. (Image layers have no ``features`` table in napari,
        so the per-slice scores live in metadata only.)"""
        if res.layer_name not in self.viewer.layers:
            return  # removed while scoring
        layer = self.viewer.layers[res.layer_name]
        s = result.settings
        model = s.method == MODEL_METHOD
        meta = dict(layer.metadata or {})
        meta["semfocus"] = {
            "scores": [float(v) for v in res.scores],
            "best_index": res.best_index,
            "method": s.method,
            "model": result.model_name,
            "score_scale": "focus score 0-10" if model else f"{s.method}: larger = sharper",
            "magnification": res.magnification,
            "region": s.region if model else "whole",
            "device": result.device_name,
            "databar_rows_excluded": res.databar_rows,
        }
        layer.metadata = meta

    def export_csv(self, path=None) -> Path | None:
        """Write the table to ``path`` (asks for a file when ``None``); returns the path."""
        path = ask_save_path(self, path, "Export focus scores", "focus-scores.csv",
                             "CSV files (*.csv)")
        if path is None:
            return None
        write_text_file(path, self.table.csv_text())
        self.status_label.setText(f"Scores written to {path}.")
        return path

    def go_to_best_slice(self, layer_name: str | None = None) -> int | None:
        """Move the viewer's sliders to the best slice of a scored stack; returns that slice."""
        import numpy as np

        name = layer_name or self.curve_combo.currentText()
        res = next((r for r in self.results if r.layer_name == name and len(r.scores) > 1), None)
        if res is None or name not in self.viewer.layers:
            return None
        layer = self.viewer.layers[name]
        lead = layer.data.shape[: layer.ndim - 2]
        index = np.unravel_index(res.best_index, lead)
        offset = self.viewer.dims.ndim - layer.ndim
        for axis, i in enumerate(index):
            world = float(layer.translate[axis] + layer.scale[axis] * int(i))
            self.viewer.dims.set_point(offset + axis, world)
        return res.best_index


def _dark_theme() -> bool:
    try:
        from napari.settings import get_settings

        return get_settings().appearance.theme != "light"
    except Exception:
        return True
