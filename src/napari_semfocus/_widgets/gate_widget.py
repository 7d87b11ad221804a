"""Acceptance gate: the dock widget that accepts or rejects images and stack slices by their
focus score, at a precision chosen on labelled images.

Thin over the jobs of ``semfocus gate`` (:mod:`napari_semfocus.jobs.gate`): load a gate file,
or calibrate one from a labelled manifest (scored in a worker thread, optionally with a held-out
part of the groups, with the precision-recall curve); apply it to the ticked image layers,
scoring them as Score focus does unless the layer already holds the gate model's scores in
``metadata["semfocus"]``. Decisions go to a table, to ``layer.metadata["semfocus_gate"]``
(:mod:`napari_semfocus.jobs.records`; the pixels are never changed) and to CSV
(``path,index,magnification,score,score_low,score_high,worst_region,accepted``, as the CLI); rejected slices are
listed (click one to go there) and "Next rejected" steps through them. A gate compares the whole
score or the worst informative region ("Gate on"; a loaded gate's own rule, shown with its
threshold). With "Review band" ticked, a whole-score gate decides three ways from each score's
interval (:mod:`napari_semfocus.gate.review`): accepted, rejected or review (a person looks;
listed with the rejected slices, tinted amber, ``decision`` column in the CSV). The panels are
in :mod:`.gate_panels`.

Public API (tests, scripts)::

    w = AcceptanceGateWidget(viewer)
    w.load_gate("gate.json")            # or: w.set_manifest("val.csv"); w.calibrate(); ...
    w.set_selected_layers(["SEM focus series"]); w.apply_gate(); ...
    w.results; w.rejected(); w.next_rejected(); w.export_csv("decisions.csv"); w.save_gate(p)
"""

from __future__ import annotations

from pathlib import Path

from qtpy.QtCore import Qt
from qtpy.QtWidgets import QVBoxLayout, QWidget

from ..errors import SemFocusError
from ..gate.calibrate import Calibration
from ..gate.file import Gate, resolve_checkpoint
from ..gate.review import review_summary
from ..jobs.gate import (
    ApplyResult,
    ApplySettings,
    CalibrateResult,
    CalibrateSettings,
    ImageDecisions,
    apply_gate,
    calibrate_gate,
    decisions_table,
)
from ..jobs.records import (
    GATE_KEY,
    SCORES_KEY,
    gate_record,
    scores_record,
    stored_scores,
    stored_with_bounds,
    with_records,
)
from .dock import PluginDock
from .exports import save_text
from .forms import (
    WARN_STYLE,
    ask_open_path,
    ask_save_path,
    browse_into,
    existing_checkpoint,
    notify_error,
    notify_info,
)
from .gate_panels import (
    build_apply_box,
    build_calibrate_section,
    build_decisions_box,
    build_gate_box,
    fill_rejected_list,
)
from .job_runner import JobRunner
from .layer_list import ChecklistMixin
from .layers import go_to_slice, image_layers, layer_input, layer_magnification


def gate_job(settings, cancel):
    """The widget's one worker: calibrate from a manifest, or apply the gate to layers."""
    job = calibrate_gate if isinstance(settings, CalibrateSettings) else apply_gate
    return (yield from job(settings, cancel))


# ---- the widget -------------------------------------------------------------------------------
class AcceptanceGateWidget(ChecklistMixin, JobRunner, PluginDock):
    """Dock widget: calibrate or load a gate, apply it to layers, find the rejected slices."""

    worker_job = staticmethod(gate_job)
    failure_text = "Gate failed"

    def __init__(self, napari_viewer):
        super().__init__(napari_viewer)
        self.gate: Gate | None = None
        self.calibration_result: CalibrateResult | None = None
        self.results: list[ImageDecisions] = []
        self.last_result = None
        self._action = "apply"
        self._build()
        self.refresh_layers()

    # ---- construction ------------------------------------------------------------------------
    def _build(self) -> None:
        content = QWidget()
        col = QVBoxLayout(content)
        col.addWidget(build_gate_box(self))
        col.addWidget(build_calibrate_section(self))
        col.addWidget(build_apply_box(self))
        col.addWidget(build_decisions_box(self))
        col.addStretch(1)
        self.set_scrolled_content(content, 360)

        self.load_button.clicked.connect(lambda: self.load_gate())
        self.gate_edit.returnPressed.connect(lambda: self.load_gate(self.gate_edit.text()))
        self.save_gate_button.clicked.connect(lambda: self.save_gate())
        self.manifest_browse.clicked.connect(lambda: browse_into(
            self, self.manifest_edit, "Labelled images (manifest)",
            "CSV files (*.csv);;All files (*)"))
        self.calibrate_button.clicked.connect(self.calibrate)
        self.precision_spin.valueChanged.connect(self._on_target_changed)
        self.rule_combo.currentIndexChanged.connect(self._on_rule_changed)
        self.rejected_list.itemClicked.connect(self._on_rejected_clicked)
        self.next_button.clicked.connect(lambda: self.next_rejected())
        self.export_button.clicked.connect(lambda: self.export_csv())
        self._update_enabled()

    def _update_enabled(self) -> None:
        has = bool(self.results)
        self.export_button.setEnabled(has)
        self.next_button.setEnabled(any(r.rejected_slices for r in self.results))
        self.save_gate_button.setEnabled(self.calibration is not None and self.gate is not None)

    # (layers: refresh_layers, selected_layer_names, set_selected_layers from ChecklistMixin)

    @property
    def calibration(self) -> Calibration | None:
        """The calibration in memory (None once a gate file is loaded)."""
        return None if self.calibration_result is None else self.calibration_result.calibration

    # ---- the gate --------------------------------------------------------------------------------
    def load_gate(self, path=None) -> Gate | None:
        """Load a gate file (asks for one when ``path`` is None); errors are notified."""
        if path is None or not str(path).strip():
            path = ask_open_path(self, "Gate file", "Gate files (*.json)")
            if path is None:
                return None
        try:
            gate = Gate.load(path)
        except SemFocusError as exc:
            self.status_label.setText(str(exc))
            notify_error(str(exc))
            return None
        self.gate_edit.setText(str(path))
        self.calibration_result = None
        self._set_gate(gate)
        self.plot_pr()
        return gate

    def _set_gate(self, gate: Gate) -> None:
        self.gate = gate
        controls = (self.precision_spin, self.rule_combo)
        for control in controls:  # show the gate's target and rule without re-choosing
            control.blockSignals(True)
        self.precision_spin.setValue(gate.target_precision)
        self.rule_combo.setCurrentIndex(self.rule_combo.findData(gate.score_rule))
        for control in controls:
            control.blockSignals(False)
        review = review_summary(gate.review)
        self.gate_label.setText(gate.summary() + "." + (f"\n{review}." if review else ""))
        self.gate_label.setStyleSheet("" if gate.target_reached else WARN_STYLE)
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

    def _on_target_changed(self, value: float) -> None:
        self._rechoose("target", lambda result: result.with_target(float(value)))

    def _on_rule_changed(self) -> None:
        self._rechoose("rule", lambda result: result.with_rule(self.rule_combo.currentData()))

    def _rechoose(self, what: str, change) -> None:
        """Choose the threshold again after a change of the target or the rule (no rescoring)."""
        if self.calibration_result is None:
            if self.gate is not None:
                self.status_label.setText(f"Calibrate again to change the {what} of a loaded "
                                          "gate.")
            return
        try:
            result = change(self.calibration_result)
        except SemFocusError as exc:
            self.status_label.setText(str(exc))
            return
        self._calibrated(result)

    def _calibrated(self, result: CalibrateResult) -> None:
        self.calibration_result = result
        self.gate_edit.setText("")
        self._set_gate(result.gate)
        self.plot_pr()
        held = "" if result.held_out is None else f"; held out: {result.held_out.summary()}"
        self.status_label.setText(f"Calibrated: {result.calibration.summary()}{held}. "
                                  "Save the gate to keep it.")

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

    def _calibrate_settings(self) -> CalibrateSettings:
        manifest = self.manifest_edit.text().strip()
        if not manifest:
            raise SemFocusError("No manifest chosen: pick the CSV of labelled images.")
        if not Path(manifest).is_file():
            raise SemFocusError(f"Manifest {manifest} does not exist.")
        hold_out = float(self.hold_out_spin.value())
        return CalibrateSettings(
            manifest=manifest, target_precision=float(self.precision_spin.value()),
            accept_score=float(self.accept_spin.value()),
            label_column=self.label_column_edit.text().strip() or "label",
            hold_out=hold_out or None,
            checkpoint=existing_checkpoint(self.checkpoint_edit.text()),
            rule=self.rule_combo.currentData())

    def _apply_settings(self) -> ApplySettings:
        if self.gate is None:
            raise SemFocusError("No gate: load a gate file or calibrate one first.")
        if not image_layers(self.viewer):
            raise SemFocusError("There is no image layer: open an image or a sample first.")
        layers = self.selected_layers()
        if not layers:
            raise SemFocusError("No image layer is ticked: tick the layers to accept/reject.")
        inputs, reused = [], []
        review = self.review_check.isChecked()
        stored = stored_with_bounds if review else stored_scores  # the band needs intervals
        for lyr in layers:
            li = layer_input(lyr, layer_magnification(lyr))
            inputs.append(li)
            reused.append(stored(lyr.metadata, self.gate, li.n_slices)
                          if self.reuse_check.isChecked() else None)
        checkpoint = None
        if any(r is None for r in reused):
            path = resolve_checkpoint(self.gate, existing_checkpoint(self.checkpoint_edit.text()))
            checkpoint = None if path is None else str(path)
        return ApplySettings(gate=self.gate, images=tuple(inputs), reused=tuple(reused),
                             checkpoint=checkpoint, review=review)

    def _progress_text(self, update) -> str:
        verb = "Scoring" if self._action == "apply" else "Calibration: scoring"
        return f"{verb} '{update.name}': {update.done}/{update.total}"

    def _on_returned(self, result) -> None:
        self.last_result = result
        if result.cancelled:
            self.status_label.setText("Cancelled; nothing was changed.")
            notify_info("Acceptance gate cancelled.")
            return
        self.progress_bar.setValue(1000)
        if isinstance(result, CalibrateResult):
            self._calibrated(result)
        else:
            self.show_results(result)

    # ---- results -----------------------------------------------------------------------------
    def show_results(self, result: ApplyResult) -> None:
        self.results = list(result.images)
        gate = result.settings.gate
        self.table.set_results(self.results)
        fill_rejected_list(self.rejected_list, self.results, gate.score_rule)
        for res in self.results:
            self._store_in_layer(res, result)
        n = sum(len(r.scores) for r in self.results)
        acc = sum(int(r.accepted.sum()) for r in self.results)
        rev = sum(int((r.decisions == "review").sum()) for r in self.results
                  if r.decisions is not None)
        counts = f"{acc} accepted, {n - acc - rev} rejected" + (
            f", {rev} to review" if result.settings.review else "")
        rule = (f"interval low end >= {gate.threshold:.2f}: accept; high end below: reject; "
                "else review" if result.settings.review
                else f"{gate.rule_label} >= {gate.threshold:.2f}")
        self.summary_label.setText(f"{counts} of {n} ({rule}).")
        reused = [r.name for r in self.results if r.scores_from != "scored"]
        note = f" Reused the stored scores of {', '.join(reused)}." if reused else ""
        self.status_label.setText(f"Done: {counts}.{note}")
        self._update_enabled()

    def _store_in_layer(self, res: ImageDecisions, result: ApplyResult) -> None:
        """``metadata["semfocus_gate"]`` (and ``metadata["semfocus"]`` when freshly scored, as
        Score focus writes it); the layer's data is not touched."""
        if res.name not in self.viewer.layers:
            return
        layer = self.viewer.layers[res.name]
        records = {GATE_KEY: gate_record(res.scores, res.accepted, result.settings.gate,
                                         res.scores_from, res.worst_region, res.decisions)}
        if res.scored is not None:
            records[SCORES_KEY] = scores_record(res.scored, result.run)
        layer.metadata = with_records(layer.metadata, records)

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
        go_to_slice(self.viewer, layer, index)

    def export_csv(self, path=None) -> Path | None:
        """Write the decisions as CSV (the CLI's columns); asks for a file when ``path`` is None."""
        if not self.results:
            return None
        return save_text(self, path, decisions_table(self.results, by_file=True), "Export decisions",
                               "decisions.csv", "CSV files (*.csv)", "Decisions")

    # ---- the precision-recall plot --------------------------------------------------------------
    def plot_pr(self) -> None:
        """Draw the precision-recall curve of the calibration in memory, else the one recorded
        in the gate file, with the gate's point (the core's plot, as written by
        ``semfocus gate calibrate --plot``)."""
        result = self.calibration_result
        if result is None:
            self.pr_plot.show(self.gate)
        else:
            self.pr_plot.show(result.calibration, held_out=result.held_out,
                              score_name=result.gate.rule_label)
