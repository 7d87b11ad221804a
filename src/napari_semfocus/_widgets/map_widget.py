"""Focus map: the dock widget that maps focus tile by tile over an image layer.

Thin over the core: its fields are read once into a
:class:`~napari_semfocus.jobs.map.SliceMapSettings` snapshot,
:func:`~napari_semfocus.jobs.map.map_slices` (``scoring.focus_map.focus_map`` per slice) runs in a
``napari.qt.threading`` worker with progress and Cancel, and
the maps become one Image layer over the source layer: ``scale``/``translate`` from
``FocusMap.napari_scale/napari_translate`` put each cell over its tile (also with a physical
pixel size), contrast limits 0-10 for the model, one labelled colour bar (:mod:`.colorbar`), the
grid and the settings in ``layer.metadata``. napari's status bar shows the score under the mouse.

Stacks: the map layer has the stack's slice axes, ``(N, rows, cols)``, so it follows the slider.
**Map this slice** maps the shown slice, **Map all slices** the ones not mapped yet; with
*Follow the slider* on, moving the slider to an unmapped slice maps it. Unmapped slices are NaN
(transparent); ``metadata["semfocus_map"]["mapped_slices"]`` lists the mapped ones
(:class:`~napari_semfocus.jobs.map.StackMap`).

Public API (tests, scripts)::

    w = FocusMapWidget(viewer); w.set_layer("Half-focused frame"); w.set_method("brenner")
    w.run(); ...; w.map_layer_out; w.export_tiff("map.tif"); w.export_csv("map.csv")
    w.map_all_slices(); w.follow_check.setChecked(True)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from qtpy.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ..errors import SemFocusError
from ..jobs.map import (
    MapBook,
    MapSettings,
    SliceMapResult,
    SliceMapSettings,
    StackMap,
    map_layer_kwargs,
    map_layer_name,
    map_slices,
)
from ..jobs.score import MODEL_METHOD
from ..progress import Progress
from ..scale import parse_magnification
from ..scoring.focus_map import DEFAULT_MODE
from ..scoring.map_files import write_tiff
from ..scoring.map_grid import FocusMap
from . import colorbar
from .dock import PluginDock
from .exports import save_text
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
    select_method,
    spin_box,
    with_tip,
)
from .job_runner import JobRunner
from .layer_list import LayerCombo
from .layers import (
    layer_array,
    layer_input,
    layer_magnification,
    lead_shape,
    shown_slice,
)
from .viewer_state import follow_model_choice

COLORMAPS = ("magma", "viridis", "inferno", "turbo", "plasma")


class FocusMapWidget(JobRunner, PluginDock):
    """Dock widget: a tile-wise focus map of one image layer, as an overlay Image layer."""

    worker_job = staticmethod(map_slices)
    failure_text = "Focus map failed"

    def __init__(self, napari_viewer):
        super().__init__(napari_viewer)
        self.last_run: SliceMapResult | None = None
        self.map_layer_out = None
        self.book = MapBook()  # the slice maps made per source layer
        self._follow_pending = False
        self._build()
        self.refresh_layers()
        follow_model_choice(self)  # "Use for scoring" in the Fine-tune widget
        colorbar.follow(self.viewer)
        self.links.connect(self.viewer.dims.events.current_step, self._on_slider)

    # ---- construction ----------------------------------------------------------------------
    def _build(self) -> None:
        content = QWidget()
        col = QVBoxLayout(content)
        form = QFormLayout()
        self.layer_combo = LayerCombo(self.links)
        form_row(form, "Image layer", self.layer_combo,
                 "The layer to map (the plugin's own focus maps are not offered); for a stack, "
                 "the slice shown in the viewer, or all slices.")
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
        self.mode_combo = combo_box([("crop each tile (exact)", "crop"),
                                     ("shared trunk (fast)", "shared")])
        self.mode_combo.setCurrentIndex(self.mode_combo.findData(DEFAULT_MODE))
        form_row(form, "Mode", self.mode_combo, (
            "crop (default): every tile is cut out and scored, exactly as Score focus scores "
            "it; shared: the network runs once over the frame and the model's map head scores "
            "each tile's pooled features, ~2.4x faster, within ~0.2 points of crop on average "
            "but a single tile may miss by more (docs/focus-map.md)."))
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

        self.add_run_controls(col, "Map this slice", (
            "Map the image, or the slice of the stack the viewer shows."),
            "Stop after the current window or batch of tiles (slices already mapped are kept).")
        stack_row = QHBoxLayout()
        self.all_button = with_tip(QPushButton("Map all slices"), (
            "Map every slice of the stack not mapped yet with these settings (progress below)."))
        self.follow_check = with_tip(QCheckBox("Follow the slider"), (
            "Once a stack has a map: when the slider shows a slice not mapped yet, map it."))
        self.follow_check.setChecked(True)
        stack_row.addWidget(self.all_button)
        stack_row.addWidget(self.follow_check)
        col.insertLayout(col.indexOf(self.progress_bar), stack_row)
        export = QHBoxLayout()
        self.tiff_button = with_tip(QPushButton("Export TIFF…"),
                                    "Save the score grid as a float32 TIFF (NaN: not scored).")
        self.csv_button = with_tip(QPushButton("Export CSV…"),
                                   "Save row, column, y, x (tile centre), score, score_low, "
                                   "score_high, certainty (the interval's width), weight.")
        for b in (self.tiff_button, self.csv_button):
            b.setEnabled(False)
            export.addWidget(b)
        col.addLayout(export)
        col.addStretch(1)
        self.set_scrolled_content(content, 320)

        self.tiff_button.clicked.connect(lambda: self.export_tiff())
        self.csv_button.clicked.connect(lambda: self.export_csv())
        self.all_button.clicked.connect(lambda: self.map_all_slices())
        self.layer_combo.changed.connect(self._fill_magnification)
        self.method_combo.currentIndexChanged.connect(lambda _i: self._update_enabled())
        self.colormap_combo.currentTextChanged.connect(self._restyle)
        self.opacity_spin.valueChanged.connect(lambda _v: self._restyle())
        self._update_enabled()

    def _update_enabled(self) -> None:
        model = self.method_combo.currentData() == MODEL_METHOD
        self.checkpoint_edit.setEnabled(model)
        self.mode_combo.setEnabled(model)
        stack = bool(lead_shape(self.source_layer()))
        self.all_button.setEnabled(stack and not self.is_running)
        self.follow_check.setEnabled(stack)
        self.run_button.setText("Map this slice" if stack else "Map focus")

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
        self._update_enabled()

    def source_layer(self):
        return self.layer_combo.layer()

    def set_layer(self, name: str) -> None:
        self.layer_combo.setCurrentText(name)

    def set_method(self, method: str) -> None:
        """``"model"`` or the name of a classical measure (``measures.MEASURES``)."""
        select_method(self.method_combo, method)

    def set_checkpoint(self, path) -> None:
        """Map with the checkpoint at ``path`` (``None``: the shipped default model)."""
        self.checkpoint_edit.setText("" if path is None else str(path))

    # ---- running ---------------------------------------------------------------------------
    def snapshot_settings(self, all_slices: bool = False) -> SliceMapSettings:
        """The shown slice (or every slice not mapped yet with these settings) to map."""
        layer = self.source_layer()
        if layer is None:
            raise SemFocusError("There is no image layer to map: open an image or a sample first.")
        mag = parse_magnification(self.magnification_edit.text())
        method = self.method_combo.currentData()
        checkpoint = (existing_checkpoint(self.checkpoint_edit.text()) if method == MODEL_METHOD
                      else self.checkpoint_edit.text().strip() or None)
        tile = (int(self.tile_h.value()), int(self.tile_w.value()))
        sh, sw = int(self.stride_h.value()), int(self.stride_w.value())
        stride = (sh or tile[0] // 2, sw or tile[1] // 2)
        base = MapSettings(image=layer_input(layer, mag, layer_array(layer)), method=method,
                           checkpoint=checkpoint, mode=self.mode_combo.currentData(),
                           tile_hw=tile, stride_hw=stride)
        slices = (shown_slice(self.viewer, layer),)
        if all_slices:
            self._forget_removed_map(layer.name)
            slices = self.book.slices_to_map(base, lead_shape(layer))
            if not slices:
                raise SemFocusError(f"Every slice of layer '{layer.name}' is mapped already with "
                                    "these settings.")
        return SliceMapSettings(base, slices)

    def map_all_slices(self) -> None:
        """Map every slice of the stack not mapped yet (one worker, progress over all)."""
        self.start_with(lambda: self.snapshot_settings(all_slices=True))

    def _forget_removed_map(self, source: str) -> None:
        """Forget the maps of ``source`` when the user deleted its map layer."""
        if map_layer_name(source) not in self.viewer.layers:
            self.book.forget(source)

    def _on_slider(self, _event=None) -> None:
        """Follow the slider: map the shown slice when its stack has a map but not this slice."""
        layer = self.source_layer()
        if layer is None or not lead_shape(layer):
            return
        self._forget_removed_map(layer.name)
        stack = self.book.any_stack(layer.name)
        index = shown_slice(self.viewer, layer)
        if stack is None or stack.mapped[index]:
            return
        if not self.follow_check.isChecked():
            self.status_label.setText(f"Slice {list(index)} is not mapped: Map this slice, or "
                                      "Map all slices.")
        elif self.is_running:
            self._follow_pending = True  # once the current run is done
        else:
            self.run()

    def _on_finished(self) -> None:
        super()._on_finished()
        self._update_enabled()
        if self._follow_pending:
            self._follow_pending = False
            self._on_slider()

    # ---- running (run, cancel, is_running: JobRunner) -------------------------------------
    def _progress_text(self, update: Progress) -> str:
        where = f", slice {update.index + 1} of {update.count}" if update.count > 1 else ""
        return f"Mapping '{update.name}'{where}: {update.done}/{update.total} tiles"

    def _on_returned(self, result: SliceMapResult) -> None:
        self.last_run = result
        if result.maps:
            if not result.cancelled:
                self.progress_bar.setValue(1000)
            self.show_map(result)
        if result.cancelled:
            kept = f"; {len(result.maps)} slice(s) mapped before are shown" if result.maps else ""
            self.status_label.setText(f"Cancelled{kept}." if kept else
                                      "Cancelled; no map was made.")
            notify_info("Focus map cancelled.")

    # ---- results ---------------------------------------------------------------------------
    def show_map(self, result: SliceMapResult) -> None:
        """Put the new slice maps into the overlay layer ``<source> focus map`` (made, or
        replaced when the grid or the settings changed) over the source layer."""
        name = result.settings.base.image.name
        if name not in self.viewer.layers:
            return
        src = self.viewer.layers[name]
        self._forget_removed_map(name)
        stack = self.book.add(result, lead_shape(src))
        last = result.fmap
        self.map_layer_out = self._put_layer(src, stack, result)
        self.tiff_button.setEnabled(True)
        self.csv_button.setEnabled(True)
        finite = stack.scores[np.isfinite(stack.scores)]
        slices = (f", slices mapped {stack.summary()['mapped_count']}/{stack.mapped.size}"
                  if stack.lead_shape else "")
        width = ("" if last.low is None else f", interval width {np.nanmin(last.certainty):.2f}–"
                 f"{np.nanmax(last.certainty):.2f} (layer metadata: score_low, score_high)")
        none = "" if last.low is not None or last.method != MODEL_METHOD else (
            f" No intervals: {last.extra.get('interval')}.")
        self.status_label.setText(
            f"Done ({result.model_name} on {result.device_name}): {last.shape[0]} × "
            f"{last.shape[1]} tiles{slices}, scores {finite.min():.3g}–{finite.max():.3g}"
            f"{width}.{none}")

    def _put_layer(self, src, stack: StackMap, result: SliceMapResult):
        """The map layer of ``src`` showing ``stack`` (its data and metadata updated in place
        when it is already there with that shape)."""
        kwargs = map_layer_kwargs(stack, result, src.scale, src.translate,
                                  getattr(src, "units", None))
        meta = kwargs["metadata"]
        name = map_layer_name(src.name)
        layer = self.viewer.layers[name] if name in self.viewer.layers else None
        if layer is not None and layer.data.shape == stack.scores.shape and \
                np.allclose(layer.scale, kwargs["scale"]):
            layer.metadata = meta
            layer.contrast_limits = kwargs["contrast_limits"]
            layer.data = stack.scores.copy()
            return layer
        if layer is not None:
            self.viewer.layers.remove(layer)
        # added hidden, then shown with its colour bar over a few event-loop turns (colorbar.reveal)
        layer = self.viewer.add_image(
            stack.scores.copy(), name=name, colormap=self.colormap_combo.currentText(),
            opacity=float(self.opacity_spin.value()), blending="translucent", visible=False,
            **kwargs)
        colorbar.reveal(self.viewer, layer)
        return layer

    def shown_map(self) -> FocusMap | None:
        """The map of the slice the viewer shows (a 2-D image: its map), else the last one made."""
        layer = self.source_layer()
        stack = self.book.any_stack(layer.name) if layer is not None else None
        if stack is not None:
            fmap = stack.maps.get(shown_slice(self.viewer, layer))
            if fmap is not None:
                return fmap
        return self.last_run.fmap if self.last_run is not None else None

    def export_tiff(self, path=None) -> Path | None:
        """Write the score grid of the shown slice (float32 TIFF, settings as JSON in its
        description)."""
        fmap = self.shown_map()
        if fmap is None:
            return None
        path = ask_save_path(self, path, "Export focus map", "focus-map.tif", "TIFF (*.tif)")
        if path:
            write_tiff(fmap, path)
            self.status_label.setText(f"Focus map written to {path}.")
        return path

    def export_csv(self, path=None) -> Path | None:
        """Write row, column, y, x (tile centre), score, score_low, score_high, certainty (the
        interval's width), weight per tile."""
        fmap = self.shown_map()
        if fmap is None:
            return None
        return save_text(self, path, fmap.to_csv(), "Export focus map",
                               "focus-map.csv", "CSV (*.csv)", "Focus map")

