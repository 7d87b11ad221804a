"""The "Frames worth annotating" group of the Fine-tune widget: Suggest frames.

Thin over :func:`napari_semfocus.jobs.suggest.suggest_job` (the job of ``semfocus suggest``), run
in a worker: every slice of the open image layers (less the annotated ones) is scored once by the
model the widget starts from, and the picks are listed in the group's table in order, best first
(rank, layer, slice, score, interval). Selecting a row shows that slice, ready to annotate. Layers
without a magnification are left out (named in the status line); the layers are only read.
"""

from __future__ import annotations

from collections.abc import Callable

from qtpy.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..errors import SemFocusError
from ..jobs.suggest import SuggestSettings, suggest_job
from ..scale import parse_magnification
from ..training.suggest import DEFAULT_THRESHOLD, Suggestion
from .forms import note_label, rows_table, spin_box, with_tip
from .job_runner import JobRunner
from .layers import image_layers, layer_input, layer_magnification

COLUMNS = ("#", "Layer", "Slice", "Score", "Interval")


class SuggestPanel(JobRunner, QWidget):
    """Suggest frames to annotate; ``model()`` gives ("default" or a checkpoint, device)."""

    worker_job = staticmethod(suggest_job)
    failure_text = "Suggesting frames failed"

    def __init__(self, viewer, annotation_panel, model: Callable[[], tuple], parent=None):
        super().__init__(parent)
        self.viewer, self._panel, self._model = viewer, annotation_panel, model
        self.suggestions: list[Suggestion] = []
        self.skipped: list[str] = []
        col = QVBoxLayout(self)
        col.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        self.n_spin = with_tip(spin_box(1, 1000, 12), "How many frames to suggest.")
        row.addWidget(QLabel("Frames"))
        row.addWidget(self.n_spin)
        row.addStretch(1)
        col.addLayout(row)
        self.add_run_controls(col, "Suggest frames", (
            "Score every slice of the open image layers (not yet annotated) and list the ones "
            "whose annotation should teach the model most: wide score intervals, scores near "
            f"{DEFAULT_THRESHOLD:g} (the gate's default accept score), spread over the images "
            "(not N copies of one hard frame). Best first."), "Stop scoring.")
        self.suggest_button = self.run_button
        self.table = rows_table(
            COLUMNS, "Suggested frames, best first: select a row to show that slice.",
            stretch=1, min_height=110, editable=False)
        col.addWidget(self.table)
        self.note = note_label("", "How the frames were chosen (docs/fine-tuning.md).")
        col.addWidget(self.note)
        self.table.itemSelectionChanged.connect(self._show_selected)

    def snapshot_settings(self) -> SuggestSettings:
        images, self.skipped = [], []
        chosen = self._panel.source_layer()
        for layer in image_layers(self.viewer):
            mag = layer_magnification(layer)
            if layer is chosen and self._panel.magnification_edit.text().strip():
                mag = self._typed_magnification()
            if mag is None:
                self.skipped.append(layer.name)
                continue
            images.append(layer_input(layer, mag))
        if not images:
            raise SemFocusError("No image layer with a magnification is open: open an image "
                                "(or type the magnification of the chosen layer) first.")
        init, device = self._model()
        checkpoint = None if init == "default" else init
        annotated = tuple(r.key for r in self._panel.annotations)
        return SuggestSettings(tuple(images), int(self.n_spin.value()), checkpoint, device,
                               annotated=annotated)

    def _typed_magnification(self):
        return parse_magnification(self._panel.magnification_edit.text(), "Magnification field")

    def on_run_started(self, settings) -> None:
        self.suggestions = []
        self.table.setRowCount(0)
        self.note.setText("")

    def _on_returned(self, result) -> None:
        if result is None:
            self.status_label.setText("Stopped: no frames suggested.")
            return
        self.suggestions = list(result)
        self.table.setRowCount(len(result))
        for i, s in enumerate(result):
            c = s.candidate
            cells = (str(s.rank), c.name, str(c.index), f"{c.score:.2f}",
                     f"{c.low:.1f}–{c.high:.1f}")
            for j, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(f"informativeness {s.informativeness:.3f}")
                self.table.setItem(i, j, item)
        skipped = (f" Left out (no magnification): {', '.join(self.skipped)}."
                   if self.skipped else "")
        self.status_label.setText(f"{len(result)} frames suggested, best first: annotate them "
                                  f"from the top.{skipped}")
        self.note.setText("One from each part of the score range, there the frame with the widest "
                          f"interval nearest {DEFAULT_THRESHOLD:g}, unlike the others picked; "
                          "already annotated slices are left out.")

    def _show_selected(self) -> None:
        rows = sorted({i.row() for i in self.table.selectedIndexes()})
        if rows and rows[0] < len(self.suggestions):
            c = self.suggestions[rows[0]].candidate
            if c.name in self.viewer.layers:
                self._panel.set_layer(c.name)
                self._panel.set_slice(c.index, self.viewer.layers[c.name])
