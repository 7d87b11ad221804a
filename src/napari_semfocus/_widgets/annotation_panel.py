"""The annotation part of the Fine-tune widget: score the shown slice, edit the table, CSV.

:class:`AnnotationPanel` holds the "Annotate" group (image layer, shown slice, magnification,
score, Add annotation / ``Shift-S`` over the canvas) and the "Annotations" group (the editable
table of an :class:`~napari_semfocus.training.data.annotations.AnnotationTable`, Remove, Save / Load CSV,
Folder + CSV, the spread summary and its warnings). It reads the viewer's layers and never changes
them; what it would put on a status line it emits as :attr:`AnnotationPanel.status`.
:meth:`AnnotationPanel.open_frames` hands the annotated frames of open layers to training.

The layer combo follows the viewer's layer list by itself; the owner wires the viewer's events to
:meth:`~AnnotationPanel.follow_active_layer` and :meth:`~AnnotationPanel.show_slice`, and binds
the shortcut to :func:`shortcut_callback`.
"""

from __future__ import annotations

import weakref
from pathlib import Path

import numpy as np
from qtpy.QtCore import Qt, Signal
from qtpy.QtWidgets import (
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..errors import SemFocusError
from ..scale import parse_magnification
from ..training.data.annotations import Annotation, AnnotationTable
from .forms import (
    WARN_STYLE,
    ask_open_path,
    ask_save_path,
    double_spin_box,
    form_row,
    format_magnification,
    note_label,
    notify_error,
    row_widget,
    rows_table,
    with_tip,
)
from .layer_list import LayerCombo
from .layers import (
    go_to_slice,
    layer_array,
    layer_databar_rows,
    layer_magnification,
    layer_source_path,
    lead_shape,
    shown_slice,
)

SHORTCUT = "Shift-S"  # "score this slice": free in napari's default key bindings
SCORE_COLUMN = 3


class AnnotationPanel(QWidget):
    """The "Annotate" and "Annotations" groups: expert scores of shown slices, as a table."""

    #: a one-line message for the owner's status line
    status = Signal(str)

    def __init__(self, links, parent=None):
        super().__init__(parent)
        self.viewer = links.viewer
        self._links = links
        self.annotations = AnnotationTable()
        col = QVBoxLayout(self)
        col.setContentsMargins(0, 0, 0, 0)
        col.addWidget(self._build_annotate())
        col.addWidget(self._build_table())
        self.refresh_layers()
        self._refresh_table()

    # ---- construction ----------------------------------------------------------------------
    def _build_annotate(self) -> QGroupBox:
        box = QGroupBox("Annotate")
        form = QFormLayout(box)
        self.layer_combo = LayerCombo(self._links)
        form_row(form, "Image layer", self.layer_combo,
                 "The layer to annotate; for a stack, the slice shown in the viewer.")
        self.slice_label = with_tip(QLabel(), "The slice of the layer shown in the viewer.")
        form.addRow("Slice", self.slice_label)
        self.magnification_edit = QLineEdit()
        form_row(form, "Magnification", self.magnification_edit,
                 "From the layer's metadata; type it when the layer has none (e.g. 5000).")
        self.score_spin = double_spin_box(0.0, 10.0, 10.0, 0.5, decimals=1)
        with_tip(self.score_spin, "The expert's focus score: 10 = perfectly focused, "
                                  "1 = sample just recognisable, 0 = no sample.")
        self.add_button = with_tip(QPushButton("Add annotation"), (
            f"Give the shown image or slice this score ({SHORTCUT} over the canvas does the "
            "same). A slice annotated again gets the new score."))
        form.addRow("Score", row_widget(self.score_spin, self.add_button, stretch=1))
        self.add_button.clicked.connect(lambda: self.add_annotation())
        self.layer_combo.changed.connect(self._on_layer_changed)
        return box

    def _build_table(self) -> QGroupBox:
        box = QGroupBox("Annotations")
        col = QVBoxLayout(box)
        self.table = rows_table(["Layer", "Slice", "Mag.", "Score"],
                                "Double-click a score to edit it.", stretch=0, min_height=130)
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
        self.summary_label = note_label("", "Spread of the annotations over the score range and "
                                            "magnifications.")
        col.addWidget(self.summary_label)
        self.warning_label = note_label(style=WARN_STYLE)
        col.addWidget(self.warning_label)
        self.table.itemChanged.connect(self._on_item_changed)
        self.remove_button.clicked.connect(lambda: self.remove_selected())
        self.save_csv_button.clicked.connect(lambda: self.save_csv())
        self.load_csv_button.clicked.connect(lambda: self.load_csv())
        self.load_folder_button.clicked.connect(lambda: self.load_folder())
        return box

    # ---- layers and the current slice -------------------------------------------------------
    def refresh_layers(self) -> None:
        self.layer_combo.refresh()  # then _on_layer_changed (``changed``)

    def follow_active_layer(self, event=None) -> None:
        """Choose the viewer's active layer, if it can be annotated."""
        layer = self.viewer.layers.selection.active
        if layer is not None and self.layer_combo.findText(layer.name) >= 0:
            self.layer_combo.setCurrentText(layer.name)

    def _on_layer_changed(self) -> None:
        layer = self.source_layer()
        self.magnification_edit.setText(
            format_magnification(layer_magnification(layer)) if layer else "")
        self.magnification_edit.setPlaceholderText(
            "type the magnification, e.g. 5000" if layer is not None else "open an image")
        self.show_slice()

    def source_layer(self):
        return self.layer_combo.layer()

    def set_layer(self, name: str) -> None:
        self.layer_combo.setCurrentText(name)

    def current_slice(self, layer=None) -> int:
        """Flat index of the slice of ``layer`` shown in the viewer (0 for a 2-D image)."""
        layer = layer or self.source_layer()
        index = shown_slice(self.viewer, layer)
        return int(np.ravel_multi_index(index, lead_shape(layer))) if index else 0

    def set_slice(self, index: int, layer=None) -> None:
        """Show slice ``index`` (flat) of ``layer`` (default: the chosen one) in the viewer."""
        go_to_slice(self.viewer, layer or self.source_layer(), index)

    def show_slice(self, _event=None) -> None:
        """Show which slice of the chosen layer the viewer shows."""
        layer = self.source_layer()
        lead = lead_shape(layer) if layer is not None else ()
        self.slice_label.setText("—" if layer is None else (
            f"{self.current_slice(layer)} (of 0–{int(np.prod(lead)) - 1})" if lead else "2-D image"))

    # ---- annotating ----------------------------------------------------------------------------
    def add_annotation(self, score: float | None = None) -> Annotation | None:
        """Annotate the shown slice of the chosen layer with ``score`` (default: the spin box)."""
        layer = self.source_layer()
        try:
            if layer is None:
                raise SemFocusError("There is no image layer to annotate: open an image first.")
            mag = parse_magnification(self.magnification_edit.text())
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
        self.status.emit(f"'{ann.layer}' slice {ann.slice}: score {ann.score:g}.")
        return ann

    def remove_selected(self) -> None:
        rows = sorted({i.row() for i in self.table.selectedIndexes()})
        if rows:
            self.annotations.remove(rows)
            self._refresh_table()

    def _refresh_table(self) -> None:
        self.table.blockSignals(True)
        self.table.setRowCount(len(self.annotations))
        for i, r in enumerate(self.annotations):
            cells = (r.layer, str(r.slice), format_magnification(r.magnification), f"{r.score:g}")
            for j, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if j < SCORE_COLUMN:
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
        if item.column() != SCORE_COLUMN:
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
            self.status.emit(f"{len(self.annotations)} annotations written to {path}.")
        return path

    def load_csv(self, path=None) -> bool:
        if path is None:
            path = ask_open_path(self, "Load annotations", "CSV (*.csv)")
            if path is None:
                return False
        return self._load(path, None)

    def load_folder(self, folder=None, csv_path=None) -> bool:
        """A folder of images and a CSV ``path,magnification,score`` (paths relative to it)."""
        if folder is None:
            folder = QFileDialog.getExistingDirectory(self, "Folder of images")
            if not folder:
                return False
        if csv_path is None:
            csv_path = ask_open_path(self, "Scores (path,magnification,score)", "CSV (*.csv)",
                                     str(folder))
            if csv_path is None:
                return False
        return self._load(csv_path, folder)

    def _load(self, path, folder) -> bool:
        try:
            self.annotations = AnnotationTable.load_csv(path, image_folder=folder)
        except SemFocusError as exc:
            notify_error(str(exc))
            return False
        self._refresh_table()
        self.status.emit(f"{len(self.annotations)} annotations loaded from {path}.")
        return True

    # ---- for training --------------------------------------------------------------------------
    def open_frames(self, table: AnnotationTable) -> dict:
        """Frames of annotated slices whose layer is open (its file, if any, must match)."""
        frames = {}
        for r in table:
            if r.layer not in self.viewer.layers:
                continue
            layer = self.viewer.layers[r.layer]
            path = layer_source_path(layer)
            if r.path and path and Path(path).resolve() != Path(r.path).resolve():
                continue
            lead = lead_shape(layer)
            if r.slice >= max(1, int(np.prod(lead))):
                raise SemFocusError(f"Layer '{r.layer}' has no slice {r.slice}.")
            data = layer_array(layer)
            frame = np.asarray(data[np.unravel_index(r.slice, lead)] if lead else data)
            frames[r.key] = (frame, layer_databar_rows(layer))
        return frames


def shortcut_callback(panel: AnnotationPanel):
    """What ``Shift-S`` over the canvas does: add an annotation in ``panel`` (bound by the newest
    Fine-tune widget, released when it is closed)."""
    ref = weakref.ref(panel)

    def add_annotation(_viewer):
        p = ref()
        if p is not None:
            p.add_annotation()

    return add_annotation
