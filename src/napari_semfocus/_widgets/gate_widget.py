"""Acceptance gate: the dock widget that accepts or rejects images and stack slices by their
focus score, at a precision chosen on labelled images.

Thin over :mod:`napari_semfocus.gate` (the same core as ``semfocus gate``): load a gate file, or
calibrate one from a labelled manifest (scored in a worker thread, with the precision-recall
curve); apply it to the ticked image layers, scoring them with the Score focus worker
(:func:`~._score_job.score_layers`) unless the layer already holds the gate model's scores in
``metadata["semfocus"]``. Decisions go to a table, to ``layer.metadata["semfocus_gate"]`` (the
pixels are never changed) and to CSV (``path,index,magnification,score,accepted``, as the CLI);
rejected slices are listed (click one to go there) and "Next rejected" steps through them.

Public API (tests, scripts)::

    w = AcceptanceGateWidget(viewer)
    w.load_gate("gate.json")            # or: w.set_manifest("val.csv"); w.calibrate(); ...
    w.set_selected_layers(["SEM focus series"]); w.apply_gate(); ...
    w.results; w.rejected(); w.next_rejected(); w.export_csv("decisions.csv"); w.save_gate(p)
"""

from __future__ import annotations

import threading
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from qtpy.QtCore import Qt
from qtpy.QtGui import QColor
from qtpy.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)
from superqt import QCollapsible

from ..errors import SemFocusError
from ..gate import DEFAULT_ACCEPT_SCORE, DEFAULT_TARGET_PRECISION, Calibration, Gate
from ._common import (
    MODEL_METHOD,
    LayerInput,
    RunResult,
    ScoreSettings,
    WorkerMixin,
    ask_save_path,
    form_row,
    image_layers,
    layer_databar_rows,
    layer_magnification,
    layer_source_path,
    notify_info,
    with_tip,
    write_text_file,
)
from ._results import _NumberItem
from ._score_job import CANCELLED, Status, drive_steps, load_method, score_layers

METADATA_KEY = "semfocus_gate"
NOTE_STYLE = "color: #9aa0a6;"
ACCEPT_BG = QColor(40, 160, 80, 90)
REJECT_BG = QColor(220, 60, 60, 110)


# ---- what the worker gets and returns (plain data, no Qt) ------------------------------------
@dataclass(frozen=True)
class CalibrateSettings:
    manifest: str
    target_precision: float
    accept_score: float
    label_column: str
    checkpoint: str | None
    device: str = "auto"
    region: str = "whole"
    batch_size: int = 32


@dataclass(frozen=True)
class ApplySettings:
    gate: Gate
    layers: tuple[LayerInput, ...]
    reused: tuple  # per layer: stored scores (np.ndarray) or None = score it
    checkpoint: str | None
    device: str = "auto"
    batch_size: int = 32


@dataclass
class CalibrateResult:
    settings: CalibrateSettings
    calibration: Calibration | None = None
    model: dict = field(default_factory=dict)
    model_name: str = ""
    device_name: str = ""
    cancelled: bool = False


@dataclass
class LayerDecisions:
    """Scores and decisions of one layer (one per slice)."""

    layer_name: str
    scores: np.ndarray
    accepted: np.ndarray
    magnification: float | None
    path: str | None
    scores_from: str  # "scored" or "layer metadata"
    databar_rows: int = 0

    @property
    def rejected_slices(self) -> list[int]:
        return [int(i) for i in np.flatnonzero(~self.accepted)]


@dataclass
class ApplyResult:
    settings: ApplySettings
    layers: list[LayerDecisions] = field(default_factory=list)
    model_name: str = ""
    device_name: str = ""
    cancelled: bool = False


def gate_job(settings, cancel: threading.Event):
    """The worker: calibrate from a manifest, or apply a gate to layers."""
    if isinstance(settings, CalibrateSettings):
        return (yield from _calibrate_job(settings, cancel))
    return (yield from _apply_job(settings, cancel))


def _calibrate_job(s: CalibrateSettings, cancel) -> Generator:
    from ..gate import (
        calibrate,
        labels_from_column,
        model_fingerprint,
        read_calibration_manifest,
        score_calibration_images,
    )

    result = CalibrateResult(settings=s)
    plan, texts, _groups = read_calibration_manifest(s.manifest, s.label_column)
    try:
        acceptable, rule = labels_from_column(texts, s.accept_score, s.label_column)
    except SemFocusError as exc:
        raise SemFocusError(f"manifest {s.manifest}: {exc}") from None
    scorer = yield from load_method(MODEL_METHOD, s.checkpoint, s.device, result)
    steps = score_calibration_images(plan, scorer, s.region, s.batch_size)
    rows = yield from drive_steps(steps, cancel, Path(s.manifest).name, 0, 1)
    if rows is CANCELLED:
        result.cancelled = True
        return result
    yield Status(f"choosing the threshold for precision {s.target_precision:g}…")
    result.calibration = calibrate([r.score for r in rows], acceptable=acceptable,
                                   target_precision=s.target_precision, accept_rule=rule)
    result.model = model_fingerprint(scorer)
    if scorer.metadata.get("checkpoint_path"):
        result.model["checkpoint_path"] = str(Path(scorer.metadata["checkpoint_path"]).resolve())
    return result


def _apply_job(s: ApplySettings, cancel) -> Generator:
    from ..gate import model_fingerprint
    from ._score_job import get_scorer

    result = ApplyResult(settings=s)
    fresh = {}
    to_score = tuple(layer for layer, r in zip(s.layers, s.reused, strict=True) if r is None)
    if to_score:
        yield Status("loading the gate's focus model…")
        s.gate.check_model(model_fingerprint(get_scorer(s.checkpoint, s.device)))
        run: RunResult = yield from score_layers(
            ScoreSettings(layers=to_score, method=MODEL_METHOD, checkpoint=s.checkpoint,
                          device=s.device, region=s.gate.region, batch_size=s.batch_size), cancel)
        result.model_name, result.device_name = run.model_name, run.device_name
        if run.cancelled:
            result.cancelled = True
            return result
        fresh = {r.layer_name: r.scores for r in run.layers}
    else:
        result.model_name = s.gate.model.get("name", "")
    for layer, reused in zip(s.layers, s.reused, strict=True):
        scores = np.asarray(reused if reused is not None else fresh[layer.name], dtype=np.float64)
        result.layers.append(LayerDecisions(
            layer.name, scores, s.gate.apply(scores), layer.magnification, layer.path,
            "scored" if reused is None else "layer metadata", layer.databar_rows))
    return result


# ---- the decisions table --------------------------------------------------------------------
TABLE_HEADERS = ("Slice", "Score", "Accepted", "Layer")


class DecisionTable(QTableWidget):
    """One row per (layer, slice): slice, score, accepted, layer (rows tinted). Sortable."""

    def __init__(self, parent=None):
        super().__init__(0, len(TABLE_HEADERS), parent)
        self.setHorizontalHeaderLabels(list(TABLE_HEADERS))
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.verticalHeader().setVisible(False)
        header = self.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        header.setSortIndicator(0, Qt.SortOrder.AscendingOrder)  # by slice, as scored
        self.setSortingEnabled(True)
        self.setMinimumHeight(160)

    def set_results(self, results) -> None:
        self.setSortingEnabled(False)
        rows = [(r, i) for r in results for i in range(len(r.scores))]
        self.setRowCount(len(rows))
        for row, (res, i) in enumerate(rows):
            ok = bool(res.accepted[i])
            cells = [_NumberItem(i, str(i)), _NumberItem(res.scores[i], f"{res.scores[i]:.2f}"),
                     _NumberItem(int(ok), "yes" if ok else "no"), QTableWidgetItem(res.layer_name)]
            for col, item in enumerate(cells):
                item.setBackground(ACCEPT_BG if ok else REJECT_BG)
                self.setItem(row, col, item)
        self.setSortingEnabled(True)

    def rows(self) -> list[tuple[str, int, float, bool]]:
        """(layer, slice, score, accepted) in the order shown."""
        role = Qt.ItemDataRole.UserRole
        return [(self.item(r, 3).text(), int(self.item(r, 0).data(role)),
                 float(self.item(r, 1).data(role)), bool(self.item(r, 2).data(role)))
                for r in range(self.rowCount())]


# ---- the widget -------------------------------------------------------------------------------
class AcceptanceGateWidget(WorkerMixin, QWidget):
    """Dock widget: calibrate or load a gate, apply it to layers, find the rejected slices."""

    worker_job = staticmethod(gate_job)
    failure_text = "Gate failed"

    def __init__(self, napari_viewer):
        super().__init__()
        self.viewer = napari_viewer
        self.gate: Gate | None = None
        self.calibration: Calibration | None = None
        self._calibration_model: dict = {}
        self._calibration_settings: CalibrateSettings | None = None
        self.results: list[LayerDecisions] = []
        self.last_result = None
        self.worker = None
        self._cancel = threading.Event()
        self._action = "apply"
        self._build()
        self._connect_viewer()
        self.refresh_layers()

    # ---- construction ------------------------------------------------------------------------
    def _build(self) -> None:
        content = QWidget()
        col = QVBoxLayout(content)

        # the gate in use
        box = QGroupBox("Gate")
        form = QFormLayout(box)
        row = QWidget()
        lay = QHBoxLayout(row)
        lay.setContentsMargins(0, 0, 0, 0)
        self.gate_edit = with_tip(QLineEdit(), "Gate file (JSON) written by this widget or by "
                                               "'semfocus gate calibrate'.")
        self.gate_edit.setPlaceholderText("gate.json")
        self.load_button = with_tip(QPushButton("Load…"), "Load a gate file.")
        lay.addWidget(self.gate_edit)
        lay.addWidget(self.load_button)
        form.addRow("Gate file", row)
        self.gate_label = with_tip(QLabel("No gate: load a gate file or calibrate one below."),
                                   "The threshold in use and its figures on the calibration data.")
        self.gate_label.setWordWrap(True)
        self.gate_label.setStyleSheet(NOTE_STYLE)
        form.addRow(self.gate_label)
        from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
        from matplotlib.figure import Figure

        self._dark = _dark_theme()
        self.figure = Figure(figsize=(3.4, 2.6), dpi=100)
        self.canvas = with_tip(FigureCanvasQTAgg(self.figure), (
            "Precision-recall curve of the calibration images: the dot is the gate, the dashed "
            "line the target precision."))
        self.canvas.setMinimumHeight(220)
        self._plot_placeholder()
        form.addRow(self.canvas)
        self.save_gate_button = with_tip(QPushButton("Save gate…"),
                                         "Write the calibrated gate to a JSON file.")
        self.save_gate_button.setEnabled(False)
        form.addRow(self.save_gate_button)
        col.addWidget(box)

        # calibration (collapsible: not needed once a gate file exists)
        self.calibrate_section = with_tip(
            QCollapsible("Calibrate from labelled images", expandedIcon="▼", collapsedIcon="▶"),
            "Choose the threshold on labelled images (expert scores or accept/reject labels).")
        cal = QWidget()
        cform = QFormLayout(cal)
        row = QWidget()
        lay = QHBoxLayout(row)
        lay.setContentsMargins(0, 0, 0, 0)
        self.manifest_edit = QLineEdit()
        self.manifest_edit.setPlaceholderText("manifest.csv")
        self.manifest_browse = with_tip(QPushButton("Browse…"), "Choose the manifest CSV.")
        lay.addWidget(self.manifest_edit)
        lay.addWidget(self.manifest_browse)
        form_row(cform, "Manifest", row, (
            "CSV with a path column (relative to the CSV's folder), the label column and "
            "optionally magnification (else from each file's metadata)."))
        self.label_column_edit = QLineEdit("label")
        form_row(cform, "Label column", self.label_column_edit, (
            "Expert scores (numbers: acceptable when >= Accept score) or accept/reject words."))
        self.accept_spin = QDoubleSpinBox()
        self.accept_spin.setRange(0.0, 10.0)
        self.accept_spin.setSingleStep(0.5)
        self.accept_spin.setValue(DEFAULT_ACCEPT_SCORE)
        form_row(cform, "Accept score", self.accept_spin, (
            "An image is acceptable when its expert score is at least this (1 for 0/1 labels)."))
        self.precision_spin = QDoubleSpinBox()
        self.precision_spin.setDecimals(3)
        self.precision_spin.setRange(0.5, 1.0)
        self.precision_spin.setSingleStep(0.01)
        self.precision_spin.setValue(DEFAULT_TARGET_PRECISION)
        form_row(cform, "Target precision", self.precision_spin, (
            "Fraction of accepted images that must be acceptable. The gate takes the threshold "
            "reaching it with the highest recall. After a calibration, changing it re-chooses "
            "the threshold at once (no rescoring)."))
        self.checkpoint_edit = QLineEdit()
        self.checkpoint_edit.setPlaceholderText("empty: the shipped model / the gate's model")
        form_row(cform, "Model", self.checkpoint_edit, (
            "Checkpoint (.safetensors) to calibrate with; empty = the shipped default model. "
            "Applying uses the gate's own model (this file when given)."))
        self.calibrate_button = with_tip(QPushButton("Calibrate"), (
            "Score the manifest's images (worker thread) and choose the threshold."))
        cform.addRow(self.calibrate_button)
        self.calibrate_section.addWidget(cal)
        self.calibrate_section.expand(animate=False)
        col.addWidget(self.calibrate_section)

        # apply
        box = QGroupBox("Apply to image layers")
        alay = QVBoxLayout(box)
        self.layer_list = with_tip(QListWidget(), (
            "Tick the image layers to accept/reject: one decision per 2-D image or stack slice."))
        self.layer_list.setMaximumHeight(64)
        alay.addWidget(self.layer_list)
        self.reuse_check = with_tip(QCheckBox("Reuse scores already in the layer"), (
            "Use the scores Score focus stored in the layer when they come from the gate's model "
            "(same model file name and region, one per slice); otherwise the layer is scored."))
        self.reuse_check.setChecked(True)
        alay.addWidget(self.reuse_check)
        self._add_run_controls(alay, "Apply gate", "Score the ticked layers and accept/reject "
                               "each image or slice.", "Stop after the current batch.")
        col.addWidget(box)

        # results
        box = QGroupBox("Decisions")
        rlay = QVBoxLayout(box)
        self.summary_label = QLabel("")
        self.summary_label.setWordWrap(True)
        rlay.addWidget(self.summary_label)
        rlay.addWidget(QLabel("Rejected slices (click to go there):"))
        self.rejected_list = with_tip(QListWidget(), "Click a rejected image/slice to show it.")
        self.rejected_list.setMaximumHeight(110)
        rlay.addWidget(self.rejected_list)
        buttons = QHBoxLayout()
        self.next_button = with_tip(QPushButton("Next rejected"),
                                    "Go to the next rejected slice (wraps around).")
        self.export_button = with_tip(QPushButton("Export CSV…"), (
            "Save the decisions as CSV: path (the layer's file, or its name), index (slice), "
            "magnification, score, accepted (1/0) — the columns of 'semfocus gate apply'."))
        buttons.addWidget(self.next_button)
        buttons.addWidget(self.export_button)
        rlay.addLayout(buttons)
        self.table = with_tip(DecisionTable(), "Score and decision per layer and slice.")
        rlay.addWidget(self.table)
        col.addWidget(box)
        col.addStretch(1)

        self._set_scrolled_content(content, 360)

        self.load_button.clicked.connect(lambda: self.load_gate())
        self.gate_edit.returnPressed.connect(lambda: self.load_gate(self.gate_edit.text()))
        self.save_gate_button.clicked.connect(lambda: self.save_gate())
        self.manifest_browse.clicked.connect(self._browse_manifest)
        self.calibrate_button.clicked.connect(self.calibrate)
        self.precision_spin.valueChanged.connect(self._on_target_changed)
        self.rejected_list.itemClicked.connect(self._on_rejected_clicked)
        self.next_button.clicked.connect(lambda: self.next_rejected())
        self.export_button.clicked.connect(lambda: self.export_csv())
        self._update_enabled()

    def _connect_viewer(self) -> None:
        events = self.viewer.layers.events
        for ev in (events.inserted, events.removed, events.moved):
            ev.connect(self._on_layers_changed)
        for layer in self.viewer.layers:
            layer.events.name.connect(lambda _e: self.refresh_layers())

    def _on_layers_changed(self, event=None) -> None:
        layer = getattr(event, "value", None)
        if layer is not None and hasattr(layer, "events") and hasattr(layer.events, "name"):
            layer.events.name.connect(lambda _e: self.refresh_layers())
        self.refresh_layers()

    def _update_enabled(self) -> None:
        has = bool(self.results)
        self.export_button.setEnabled(has)
        self.next_button.setEnabled(any(r.rejected_slices for r in self.results))
        self.save_gate_button.setEnabled(self.calibration is not None and self.gate is not None)

    # ---- layers --------------------------------------------------------------------------------
    def refresh_layers(self) -> None:
        """The viewer's image layers, keeping ticks; the newest (or selected) ticked when none."""
        ticked = set(self.selected_layer_names())
        layers = image_layers(self.viewer)
        if not ticked & {lyr.name for lyr in layers}:
            chosen = [lyr.name for lyr in layers if lyr in self.viewer.layers.selection]
            ticked = set(chosen or ([layers[-1].name] if layers else []))
        self.layer_list.clear()
        for layer in layers:
            item = QListWidgetItem(layer.name)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked if layer.name in ticked
                               else Qt.CheckState.Unchecked)
            self.layer_list.addItem(item)

    def selected_layer_names(self) -> list[str]:
        items = (self.layer_list.item(i) for i in range(self.layer_list.count()))
        return [it.text() for it in items if it.checkState() == Qt.CheckState.Checked]

    def set_selected_layers(self, layer_names) -> None:
        wanted = set(layer_names)
        for i in range(self.layer_list.count()):
            item = self.layer_list.item(i)
            item.setCheckState(Qt.CheckState.Checked if item.text() in wanted
                               else Qt.CheckState.Unchecked)

    # ---- the gate --------------------------------------------------------------------------------
    def load_gate(self, path=None) -> Gate | None:
        """Load a gate file (asks for one when ``path`` is None); errors are notified."""
        if path is None or not str(path).strip():
            path, _ = QFileDialog.getOpenFileName(self, "Gate file", "", "Gate files (*.json)")
            if not path:
                return None
        try:
            gate = Gate.load(path)
        except SemFocusError as exc:
            self.status_label.setText(str(exc))
            from ._common import notify_error

            notify_error(str(exc))
            return None
        self.gate_edit.setText(str(path))
        self.calibration = None
        self._set_gate(gate)
        self.plot_pr()
        return gate

    def _set_gate(self, gate: Gate) -> None:
        self.gate = gate
        self.precision_spin.blockSignals(True)
        self.precision_spin.setValue(gate.target_precision)
        self.precision_spin.blockSignals(False)
        self.gate_label.setText(gate.summary() + ".")
        self.gate_label.setStyleSheet("" if gate.target_reached else "color: #f0a030;")
        self._update_enabled()

    def save_gate(self, path=None) -> Path | None:
        """Write the calibrated gate to ``path`` (asks when None); returns the path."""
        if self.gate is None:
            return None
        path = ask_save_path(self, path, "Save gate", "gate.json", "Gate files (*.json)")
        if path is None:
            return None
        self.gate.save(path)
        self.gate_edit.setText(str(path))
        self.status_label.setText(f"Gate written to {path}.")
        return path

    def set_manifest(self, path) -> None:
        self.manifest_edit.setText(str(path))

    def _browse_manifest(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Labelled images (manifest)", "",
                                              "CSV files (*.csv);;All files (*)")
        if path:
            self.manifest_edit.setText(path)

    def _on_target_changed(self, value: float) -> None:
        if self.calibration is None:
            if self.gate is not None:
                self.status_label.setText("Calibrate again to change the target of a loaded gate.")
            return
        try:
            cal = self.calibration.with_target(float(value))
        except SemFocusError as exc:
            self.status_label.setText(str(exc))
            return
        self._calibrated(cal)

    def _calibrated(self, cal: Calibration) -> None:
        self.calibration = cal
        s = self._calibration_settings
        gate = Gate.from_calibration(cal, model=self._calibration_model,
                                     region=s.region if s else "whole",
                                     source=str(Path(s.manifest).resolve()) if s else None)
        self.gate_edit.setText("")
        self._set_gate(gate)
        self.plot_pr()
        self.status_label.setText(f"Calibrated: {cal.summary()}. Save the gate to keep it.")

    # ---- running: one worker for calibrating and applying --------------------------------------
    def calibrate(self) -> None:
        """Score the manifest's images and choose the threshold (worker thread)."""
        self._action = "calibrate"
        self.run()

    def apply_gate(self) -> None:
        """Accept/reject every slice of the ticked layers (worker thread)."""
        self._action = "apply"
        self.run()

    def run(self) -> None:
        if self.sender() is self.run_button:  # the Apply gate button
            self._action = "apply"
        super().run()
        if self.worker is not None:
            self.calibrate_button.setEnabled(False)

    def _on_finished(self) -> None:
        super()._on_finished()
        self.calibrate_button.setEnabled(True)
        self._action = "apply"

    def snapshot_settings(self):
        return (self._calibrate_settings() if self._action == "calibrate"
                else self._apply_settings())

    def _checkpoint(self) -> str | None:
        text = self.checkpoint_edit.text().strip()
        if text and not Path(text).is_file():
            raise SemFocusError(f"Checkpoint {text} does not exist.")
        return text or None

    def _calibrate_settings(self) -> CalibrateSettings:
        manifest = self.manifest_edit.text().strip()
        if not manifest:
            raise SemFocusError("No manifest chosen: pick the CSV of labelled images.")
        if not Path(manifest).is_file():
            raise SemFocusError(f"Manifest {manifest} does not exist.")
        settings = CalibrateSettings(
            manifest=manifest, target_precision=float(self.precision_spin.value()),
            accept_score=float(self.accept_spin.value()),
            label_column=self.label_column_edit.text().strip() or "label",
            checkpoint=self._checkpoint())
        self._calibration_settings = settings
        return settings

    def _apply_settings(self) -> ApplySettings:
        from ..gate import resolve_checkpoint

        if self.gate is None:
            raise SemFocusError("No gate: load a gate file or calibrate one first.")
        if not image_layers(self.viewer):
            raise SemFocusError("There is no image layer: open an image or a sample first.")
        chosen = set(self.selected_layer_names())
        layers = [lyr for lyr in image_layers(self.viewer) if lyr.name in chosen]
        if not layers:
            raise SemFocusError("No image layer is ticked: tick the layers to accept/reject.")
        inputs, reused = [], []
        for lyr in layers:
            li = LayerInput(name=lyr.name, data=lyr.data[0] if lyr.multiscale else lyr.data,
                            magnification=layer_magnification(lyr),
                            databar_rows=layer_databar_rows(lyr), rgb=bool(lyr.rgb),
                            path=layer_source_path(lyr))
            inputs.append(li)
            reused.append(self._stored_scores(lyr, li) if self.reuse_check.isChecked() else None)
        checkpoint = None
        if any(r is None for r in reused):
            path = resolve_checkpoint(self.gate, self._checkpoint())
            checkpoint = None if path is None else str(path)
        return ApplySettings(gate=self.gate, layers=tuple(inputs), reused=tuple(reused),
                             checkpoint=checkpoint)

    def _stored_scores(self, layer, li: LayerInput):
        """Scores in ``metadata["semfocus"]`` made by the gate's model, or None."""
        stored = (layer.metadata or {}).get("semfocus") or {}
        scores = stored.get("scores")
        if (stored.get("method") != MODEL_METHOD or scores is None
                or stored.get("model") != self.gate.model.get("name")
                or stored.get("region", "whole") != self.gate.region
                or len(scores) != li.n_slices):
            return None
        sha = stored.get("model_sha256")
        if sha is not None and sha != self.gate.model.get("sha256"):
            return None
        return np.asarray(scores, dtype=np.float64)

    def _progress_text(self, update) -> str:
        verb = "Scoring" if self._action == "apply" else "Calibration: scoring"
        return f"{verb} '{update.layer_name}': {update.done}/{update.total}"

    def _on_returned(self, result) -> None:
        self.last_result = result
        if result.cancelled:
            self.status_label.setText("Cancelled; nothing was changed.")
            notify_info("Acceptance gate cancelled.")
            return
        self.progress_bar.setValue(1000)
        if isinstance(result, CalibrateResult):
            self._calibration_model = dict(result.model)
            self._calibrated(result.calibration)
        else:
            self.show_results(result)

    # ---- results -----------------------------------------------------------------------------
    def show_results(self, result: ApplyResult) -> None:
        self.results = list(result.layers)
        self.table.set_results(self.results)
        self.rejected_list.clear()
        for res in self.results:
            for i in res.rejected_slices:
                text = (f"{res.layer_name}: slice {i} (score {res.scores[i]:.2f})"
                        if len(res.scores) > 1 else f"{res.layer_name} (score {res.scores[i]:.2f})")
                item = QListWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, (res.layer_name, i))
                self.rejected_list.addItem(item)
            self._store_in_layer(res, result)
        n = sum(len(r.scores) for r in self.results)
        acc = sum(int(r.accepted.sum()) for r in self.results)
        self.summary_label.setText(
            f"{acc} accepted, {n - acc} rejected of {n} (score >= {self.gate.threshold:.2f}).")
        reused = [r.layer_name for r in self.results if r.scores_from != "scored"]
        note = f" Reused the stored scores of {', '.join(reused)}." if reused else ""
        self.status_label.setText(f"Done: {acc} accepted, {n - acc} rejected.{note}")
        self._update_enabled()

    def _store_in_layer(self, res: LayerDecisions, result: ApplyResult) -> None:
        """``metadata["semfocus_gate"]`` (and ``metadata["semfocus"]`` when freshly scored, as
        Score focus writes it); the layer's data is not touched."""
        if res.layer_name not in self.viewer.layers:
            return
        layer = self.viewer.layers[res.layer_name]
        gate = result.settings.gate
        meta = dict(layer.metadata or {})
        meta[METADATA_KEY] = {
            "accepted": [bool(v) for v in res.accepted],
            "rejected_slices": res.rejected_slices,
            "scores": [float(v) for v in res.scores],
            "threshold": gate.threshold,
            "target_precision": gate.target_precision,
            "rule": "accepted when score >= threshold",
            "gate_file": str(gate.path) if gate.path else None,
            "model": gate.model.get("name"),
            "model_sha256": gate.model.get("sha256"),
            "region": gate.region,
            "scores_from": res.scores_from,
        }
        if res.scores_from == "scored":
            meta["semfocus"] = {
                "scores": [float(v) for v in res.scores],
                "best_index": int(np.argmax(res.scores)),
                "method": MODEL_METHOD,
                "model": result.model_name,
                "model_sha256": gate.model.get("sha256"),
                "score_scale": "focus score 0-10",
                "magnification": res.magnification,
                "region": gate.region,
                "device": result.device_name,
                "databar_rows_excluded": res.databar_rows,
            }
        layer.metadata = meta

    def rejected(self) -> list[tuple[str, int]]:
        """(layer, slice) of every rejected image/slice, in list order."""
        role = Qt.ItemDataRole.UserRole
        return [tuple(self.rejected_list.item(i).data(role))
                for i in range(self.rejected_list.count())]

    def next_rejected(self) -> tuple[str, int] | None:
        """Go to the rejected slice after the one selected in the list (wraps around)."""
        count = self.rejected_list.count()
        if not count:
            return None
        row = (self.rejected_list.currentRow() + 1) % count
        self.rejected_list.setCurrentRow(row)
        return self._on_rejected_clicked(self.rejected_list.item(row))

    def _on_rejected_clicked(self, item) -> tuple[str, int] | None:
        name, index = item.data(Qt.ItemDataRole.UserRole)
        self.go_to_slice(name, int(index))
        return name, int(index)

    def go_to_slice(self, layer_name: str, index: int) -> None:
        """Select the layer and move the viewer's sliders to slice ``index`` of it."""
        if layer_name not in self.viewer.layers:
            return
        layer = self.viewer.layers[layer_name]
        self.viewer.layers.selection.active = layer
        lead = layer.data.shape[: layer.ndim - 2] if not layer.multiscale else ()
        if not lead:
            return
        pos = np.unravel_index(index, lead)
        offset = self.viewer.dims.ndim - layer.ndim
        for axis, i in enumerate(pos):
            world = float(layer.translate[axis] + layer.scale[axis] * int(i))
            self.viewer.dims.set_point(offset + axis, world)

    def export_csv(self, path=None) -> Path | None:
        """Write the decisions as CSV (the CLI's columns); asks for a file when ``path`` is None."""
        from ..batch import ScoreRow
        from ..gate import decisions_csv

        if not self.results:
            return None
        path = ask_save_path(self, path, "Export decisions", "decisions.csv", "CSV files (*.csv)")
        if path is None:
            return None
        rows, accepted = [], []
        for res in self.results:
            for i, score in enumerate(res.scores):
                rows.append(ScoreRow(res.path or res.layer_name, i, res.magnification,
                                     float(score)))
                accepted.append(bool(res.accepted[i]))
        write_text_file(path, decisions_csv(rows, accepted))
        self.status_label.setText(f"Decisions written to {path}.")
        return path

    # ---- the precision-recall plot --------------------------------------------------------------
    def _plot_placeholder(self, text: str = "Calibrate to see the precision-recall curve.") -> None:
        fg, bg = ("#d6d6d6", "#262930") if self._dark else ("#202020", "#ffffff")
        self.figure.clear()
        self.figure.set_facecolor(bg)
        ax = self.figure.add_subplot(1, 1, 1)
        ax.set_axis_off()
        ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True, color=fg, fontsize=8,
                transform=ax.transAxes)
        self.canvas.draw()

    def plot_pr(self) -> None:
        """Draw the precision-recall curve of the calibration in memory, else the one recorded
        in the gate file, with the gate's point (the core's plot, as written by
        ``semfocus gate calibrate --plot``)."""
        from ..gate import plot_pr_curve

        source = self.calibration if self.calibration is not None else self.gate
        if source is None:
            self._plot_placeholder()
            return
        plot_pr_curve(source, figure=self.figure, dark=self._dark, compact=True)
        self.canvas.draw()


def _dark_theme() -> bool:
    try:
        from napari.settings import get_settings

        return get_settings().appearance.theme != "light"
    except Exception:
        return True
