"""Focus map: the dock widget that maps focus tile by tile over an image layer.

Thin over the core: its fields are read once into a
:class:`~napari_semfocus.jobs.map.MapSettings` snapshot, :func:`~napari_semfocus.jobs.map.map_image`
(``scoring.focus_map.focus_map``) runs in a ``napari.qt.threading`` worker with a progress bar
and Cancel, and the :class:`~napari_semfocus.scoring.focus_map.FocusMap` becomes an Image layer
over the source layer: ``scale``/``translate`` from ``FocusMap.napari_scale/napari_translate`` put
each cell over its tile (also with a physical pixel size), contrast limits 0-10 for the model,
a colour bar, the grid and the settings in ``layer.metadata``. napari's status bar shows the score
under the mouse. For a stack, the slice shown in the viewer is mapped.

Public API (tests, scripts)::

    w = FocusMapWidget(viewer); w.set_layer("Half-focused frame"); w.set_method("brenner")
    w.run(); ...; w.map_layer_out; w.export_tiff("map.tif"); w.export_csv("map.csv")
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from qtpy.QtWidgets import (
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ..errors import SemFocusError
from ..jobs.map import MapResult, MapSettings, map_image
from ..jobs.score import MODEL_METHOD
from ..progress import Progress
from ..scale import parse_magnification
from ..scoring.map_files import write_tiff
from .active_model import follow as follow_active_model
from .controls import WorkerMixin
from .forms import (
    ask_save_path,
    combo_box,
    double_spin_box,
    existing_checkpoint,
    form_row,
    format_magnification,
    method_combo,
    notify_info,
    row_widget,
    spin_box,
    with_tip,
)
from .layer_list import LayerCombo
from .layers import (
    layer_array,
    layer_input,
    layer_magnification,
    shown_slice,
)

COLORMAPS = ("magma", "viridis", "inferno", "turbo", "plasma")


class FocusMapWidget(WorkerMixin, QWidget):
    """Dock widget: a tile-wise focus map of one image layer, as an overlay Image layer."""

    worker_job = staticmethod(map_image)
    failure_text = "Focus map failed"

    def __init__(self, napari_viewer):
        super().__init__()
        self.viewer = napari_viewer
        self.last_run: MapResult | None = None
        self.map_layer_out = None
        self._build()
        self.refresh_layers()
        follow_active_model(self)  # "Use for scoring" in the Fine-tune widget

    # ---- construction ----------------------------------------------------------------------
    def _build(self) -> None:
        content = QWidget()
        col = QVBoxLayout(content)
        form = QFormLayout()
        self.layer_combo = LayerCombo(self.viewer)
        form_row(form, "Image layer", self.layer_combo,
                 "The layer to map; for a stack, the slice shown in the viewer is mapped.")
        self.magnification_edit = QLineEdit()
        form_row(form, "Magnification", self.magnification_edit,
                 "Instrument magnification, filled from the layer's metadata; edit to override.")
        self.method_combo = method_combo()
        form_row(form, "Method", self.method_combo,
                 "The focus model (0-10) or a classical measure (larger = sharper) per tile.")
        self.checkpoint_edit = QLineEdit()
        self.checkpoint_edit.setPlaceholderText("empty: the shipped default model")
        form_row(form, "Checkpoint", self.checkpoint_edit,
                 "A model file (.safetensors); leave empty for the shipped model.")
        self.mode_combo = combo_box([("shared trunk (fast)", "shared"),
                                     ("crop each tile (exact)", "crop")])
        form_row(form, "Mode", self.mode_combo, (
            "shared: the network runs once over the frame and its features are averaged over "
            "each tile (overlap is nearly free); crop: every tile is cut out and scored."))
        self.tile_h, self.tile_w = spin_box(32, 4096, 240, 16), spin_box(32, 4096, 320, 16)
        form_row(form, "Tile (h × w)", row_widget(self.tile_h, QLabel("×"), self.tile_w),
                 "Tile size in pixels (the model's 240 × 320).")
        self.stride_h, self.stride_w = spin_box(0, 4096, 0, 8), spin_box(0, 4096, 0, 8)
        self.stride_h.setSpecialValueText("½ tile")
        self.stride_w.setSpecialValueText("½ tile")
        form_row(form, "Stride (h × w)", row_widget(self.stride_h, QLabel("×"), self.stride_w),
                 "Step between tiles in pixels; 0 = half a tile (overlapping tiles).")
        self.colormap_combo = combo_box(COLORMAPS)
        form_row(form, "Colormap", self.colormap_combo, "Colormap of the focus-map layer.")
        self.opacity_spin = double_spin_box(0.0, 1.0, 0.5, 0.05)
        form_row(form, "Opacity", self.opacity_spin, "Opacity of the focus-map layer.")
        col.addLayout(form)

        self.add_run_controls(col, "Map focus", "Compute the focus map.",
                               "Stop after the current window.")
        export = QHBoxLayout()
        self.tiff_button = with_tip(QPushButton("Export TIFF…"),
                                    "Save the score grid as a float32 TIFF (NaN: not scored).")
        self.csv_button = with_tip(QPushButton("Export CSV…"),
                                   "Save row, column, y, x (tile centre), score, certainty.")
        for b in (self.tiff_button, self.csv_button):
            b.setEnabled(False)
            export.addWidget(b)
        col.addLayout(export)
        col.addStretch(1)
        self.set_scrolled_content(content, 320)

        self.tiff_button.clicked.connect(lambda: self.export_tiff())
        self.csv_button.clicked.connect(lambda: self.export_csv())
        self.layer_combo.changed.connect(self._fill_magnification)
        self.method_combo.currentIndexChanged.connect(lambda _i: self._update_enabled())
        self.colormap_combo.currentTextChanged.connect(self._restyle)
        self.opacity_spin.valueChanged.connect(lambda _v: self._restyle())
        self._update_enabled()

    def _update_enabled(self) -> None:
        model = self.method_combo.currentData() == MODEL_METHOD
        self.checkpoint_edit.setEnabled(model)
        self.mode_combo.setEnabled(model)

    def _restyle(self, *_):
        layer = self.map_layer_out
        if layer is not None and layer in self.viewer.layers:
            layer.colormap = self.colormap_combo.currentText()
            layer.opacity = float(self.opacity_spin.value())

    # ---- layers ----------------------------------------------------------------------------
    def refresh_layers(self) -> None:
        self.layer_combo.refresh()  # fills the magnification (``changed``)

    def _fill_magnification(self) -> None:
        layer = self.source_layer()
        self.magnification_edit.setText(
            format_magnification(layer_magnification(layer)) if layer is not None else "")

    def source_layer(self):
        return self.layer_combo.layer()

    def set_layer(self, name: str) -> None:
        self.layer_combo.setCurrentText(name)

    def set_checkpoint(self, path) -> None:
        """Map with the checkpoint at ``path`` (``None``: the shipped default model)."""
        self.checkpoint_edit.setText("" if path is None else str(path))

    # ---- running ---------------------------------------------------------------------------
    def snapshot_settings(self) -> MapSettings:
        layer = self.source_layer()
        if layer is None:
            raise SemFocusError("There is no image layer to map: open an image or a sample first.")
        mag = parse_magnification(self.magnification_edit.text())
        data = layer_array(layer)
        index = shown_slice(self.viewer, layer)
        frame = data[index] if index else data
        method = self.method_combo.currentData()
        checkpoint = (existing_checkpoint(self.checkpoint_edit.text()) if method == MODEL_METHOD
                      else self.checkpoint_edit.text().strip() or None)
        tile = (int(self.tile_h.value()), int(self.tile_w.value()))
        sh, sw = int(self.stride_h.value()), int(self.stride_w.value())
        stride = (sh or tile[0] // 2, sw or tile[1] // 2)
        return MapSettings(image=layer_input(layer, mag, frame), slice_index=index, method=method,
                           checkpoint=checkpoint, mode=self.mode_combo.currentData(),
                           tile_hw=tile, stride_hw=stride)

    # ---- running (run, cancel, is_running: WorkerMixin) -------------------------------------
    def _progress_text(self, update: Progress) -> str:
        return f"Mapping '{update.name}': {update.done}/{update.total} tiles"

    def _on_returned(self, result: MapResult) -> None:
        self.last_run = result
        if result.cancelled or result.fmap is None:
            self.status_label.setText("Cancelled; no map was made.")
            notify_info("Focus map cancelled.")
            return
        self.progress_bar.setValue(1000)
        self.show_map(result)

    # ---- results ---------------------------------------------------------------------------
    def show_map(self, result: MapResult) -> None:
        """Add (or replace) the overlay layer ``<source> focus map`` over the source layer."""
        s, fmap = result.settings, result.fmap
        name = f"{s.image.name} focus map"
        if s.image.name not in self.viewer.layers:
            return
        src = self.viewer.layers[s.image.name]
        kwargs = fmap.layer_kwargs(src.scale[-2:], src.translate[-2:])
        if getattr(src, "units", None) is not None:  # napari >= 0.5: physical units (e.g. µm)
            kwargs["units"] = tuple(src.units)[-2:]
        kwargs["metadata"]["semfocus_map"].update(
            source_layer=s.image.name, slice_index=list(s.slice_index), device=result.device_name,
            databar_rows_excluded=s.image.databar_rows)
        if name in self.viewer.layers:
            self.viewer.layers.remove(name)
        self.map_layer_out = self.viewer.add_image(
            fmap.scores, name=name, colormap=self.colormap_combo.currentText(),
            opacity=float(self.opacity_spin.value()), blending="translucent", **kwargs)
        self.map_layer_out.colorbar.visible = True
        self.tiff_button.setEnabled(True)
        self.csv_button.setEnabled(True)
        finite = fmap.scores[np.isfinite(fmap.scores)]
        self.status_label.setText(
            f"Done ({result.model_name} on {result.device_name}): {fmap.shape[0]} × "
            f"{fmap.shape[1]} tiles, scores {finite.min():.3g}–{finite.max():.3g}.")

    def export_tiff(self, path=None) -> Path | None:
        """Write the score grid (float32 TIFF, settings as JSON in its description)."""
        if self.last_run is None or self.last_run.fmap is None:
            return None
        path = ask_save_path(self, path, "Export focus map", "focus-map.tif", "TIFF (*.tif)")
        if path:
            write_tiff(self.last_run.fmap, path)
            self.status_label.setText(f"Focus map written to {path}.")
        return path

    def export_csv(self, path=None) -> Path | None:
        """Write row, column, y, x (tile centre), score, certainty per tile."""
        if self.last_run is None or self.last_run.fmap is None:
            return None
        return self.save_text(path, self.last_run.fmap.to_csv(), "Export focus map",
                               "focus-map.csv", "CSV (*.csv)", "Focus map")
