"""napari reader for SEM TIFFs with vendor metadata (FEI/Thermo Fisher, Zeiss, Tescan,
Fibics/Atlas, and JEOL or Hitachi with their ``.txt`` sidecar).

It claims a TIFF only when :func:`napari_semfocus.io.sem_metadata.read_sem_metadata` finds SEM
metadata in it (only the TIFF's tags and the sidecar are read, not the pixels); for every other
file :func:`napari_get_reader` returns ``None`` at once, so that napari's own TIFF reader takes
it, and logs why at debug level (logger ``napari_semfocus._reader``).

Each file becomes an Image layer whose

- ``scale`` is the pixel size in **micrometres** (µm) on both image axes (1 per slice for stacks),
  with ``units`` set to µm where napari supports layer units, so napari's scale bar is right;
- ``metadata`` holds ``magnification``, ``pixel_size_m``, ``pixel_size_um``, ``hfw_m``, ``vendor``,
  ``voltage_kv``, ``working_distance_mm``, ``detector``, ``databar_rows`` (from the FEI metadata,
  otherwise found by :func:`napari_semfocus.io.databar.detect_databar_rows`), ``databar_source``
  ("metadata" or "detected") and ``path``.

A file with a data bar also gets a Shapes layer: a rectangle over the bar, named as excluded
from focus scoring (the Score focus widget leaves those rows out); it is never left selected and
it is shown and hidden with its image (:func:`tidy_databar_layers`).

Why napari asks which reader opens a ``.tif``: npe2 picks the readers that *may* open a file by
its name alone (``filename_patterns`` in ``napari.yaml``), never by its content, and napari's
own reader also claims ``*.tif``. Two readers match, so napari shows its reader dialog (and
``viewer.open(path)`` raises ``MultipleReaderError``) unless a reader is named
(``viewer.open(path, plugin="napari-semfocus")``) or a preference is saved. The plugin claims
nothing else (PNG, JPEG... open without a question). To open SEM TIFFs without the dialog, save
a preference for where they live: napari's Preferences > Plugins > File extension readers match
the *whole path*, e.g. ``*/sem-data/*.tif`` -> SEM focus; a preference for every ``*.tif``
would send plain TIFFs here too, which this reader declines, and napari asks again.
"""

from __future__ import annotations

import inspect
import logging
from pathlib import Path

import tifffile
from napari import current_viewer
from napari.layers import Image
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QApplication

from .io.databar import databar_rectangle
from .io.images import TIFF_SUFFIXES, SEMImage, read_image
from .io.sem_metadata import read_sem_metadata

DATABAR_NOTE = "data bar: excluded from focus scoring"

log = logging.getLogger(__name__)


def napari_get_reader(path):
    """Return :func:`read_sem_tiffs` when every path is a TIFF with SEM vendor metadata."""
    paths = [path] if isinstance(path, (str, Path)) else list(path)
    if not paths:
        return None
    for p in paths:
        reason = not_claimed_reason(p)
        if reason:
            log.debug("napari-semfocus does not read %s: %s; left to napari's other readers",
                      p, reason)
            return None
    return read_sem_tiffs


def not_claimed_reason(path) -> str | None:
    """Why the reader leaves ``path`` to other readers, or None when it reads it."""
    path = Path(path)
    if path.suffix.lower() not in TIFF_SUFFIXES:
        return "not a .tif/.tiff file"
    if not path.is_file():
        return "no such file"
    try:
        with tifffile.TiffFile(path) as tif:
            if read_sem_metadata(tif, path):
                return None
    except Exception as exc:  # not a TIFF after all, damaged...: leave it to other readers
        return f"not a readable TIFF ({type(exc).__name__})"
    return ("no SEM metadata (FEI/Thermo Fisher or Zeiss tag, Tescan or Fibics tag, "
            "JEOL or Hitachi .txt sidecar)")


def is_sem_tiff(path) -> bool:
    """True for a TIFF file with SEM vendor metadata the reader understands."""
    return not_claimed_reason(path) is None


def read_sem_tiffs(path) -> list[tuple]:
    """napari reader function: layer data tuples for one path or a list of paths."""
    paths = [path] if isinstance(path, (str, Path)) else list(path)
    layers: list[tuple] = []
    for p in paths:
        layers.extend(sem_layer_tuples(read_image(p)))
    return layers


def tidy_databar_layers(viewer) -> None:
    """After napari added our layers: a data-bar layer is never the selected layer (napari
    selects the last layer added; the image is selected instead, so the layer controls show
    contrast, not shape settings) and it is shown and hidden with its image."""
    layers = viewer.layers
    for bar in [lyr for lyr in layers if (lyr.metadata or {}).get("semfocus_role") == "databar"]:
        image_name = bar.metadata.get("image_layer")
        if image_name not in layers:
            continue
        image = layers[image_name]
        if not bar.metadata.get("linked"):
            bar.metadata = {**bar.metadata, "linked": True}
            image.events.visible.connect(
                lambda event, bar=bar: setattr(bar, "visible", bool(event.source.visible)))
            bar.visible = image.visible
        if layers.selection.active is bar:
            layers.selection.active = image


def _tidy_current_viewer() -> None:
    viewer = current_viewer()
    if viewer is not None:
        tidy_databar_layers(viewer)


def _after_open() -> None:
    """Run :func:`tidy_databar_layers` once napari has added the layers being returned (the next
    turn of the event loop; no Qt application: nothing to tidy)."""
    if QApplication.instance() is not None:
        QTimer.singleShot(0, _tidy_current_viewer)


def layer_metadata(image: SEMImage) -> dict:
    """The Image layer's ``metadata``: the file's SEM metadata plus the data bar's height and
    where it comes from (the file's metadata, or detected)."""
    meta = dict(image.metadata)
    meta["databar_rows"] = image.databar_rows
    meta.setdefault("databar_source", image.databar_source)
    if meta.get("pixel_size_m"):
        meta["pixel_size_um"] = meta["pixel_size_m"] * 1e6
    if image.path is not None:
        meta["path"] = str(image.path)
    return meta


def sem_layer_tuples(image: SEMImage, name: str | None = None, metadata: dict | None = None
                     ) -> list[tuple]:
    """Image layer (plus data-bar Shapes layer when there is a bar) for one SEM image.

    ``metadata`` overrides :func:`layer_metadata` (the sample data passes its own)."""
    meta = layer_metadata(image) if metadata is None else dict(metadata)
    name = name or (image.path.stem if image.path is not None else "SEM image")
    data = image.data
    rgb = data.ndim == 3 and data.shape[-1] in (3, 4)
    spatial_ndim = data.ndim - (1 if rgb else 0)
    pixel_um = meta.get("pixel_size_um")
    kwargs: dict = {"name": name, "metadata": meta, "rgb": rgb}
    if pixel_um:
        kwargs["scale"] = (1.0,) * (spatial_ndim - 2) + (pixel_um, pixel_um)
        if _layers_take_units():
            kwargs["units"] = ("pixel",) * (spatial_ndim - 2) + ("µm", "µm")
    layers = [(data, kwargs, "image")]
    rows = int(meta.get("databar_rows") or 0)
    if rows > 0:
        height, width = (data.shape[-3:-1] if rgb else data.shape[-2:])
        layers.append(databar_layer_tuple(height, width, rows, name, pixel_um))
        _after_open()
    return layers


def databar_layer_tuple(height: int, width: int, rows: int, image_name: str,
                        pixel_um: float | None = None) -> tuple:
    """Shapes layer tuple: a rectangle over the data bar of ``image_name``, without text on the
    canvas (a screen-sized label floated over the image and other layers): the layer's name and
    its ``note`` feature, which napari's status bar shows under the mouse, say what it is."""
    kwargs = {
        "name": f"{image_name} data bar (excluded)",
        "shape_type": "rectangle",
        "edge_color": "#ff9900",
        "face_color": [1.0, 0.6, 0.0, 0.18],
        "edge_width": max(1.0, 0.004 * width),
        "features": {"note": [f"{DATABAR_NOTE} ({rows} rows)"]},
        "metadata": {"semfocus_role": "databar", "image_layer": image_name, "rows": rows},
    }
    if pixel_um:
        kwargs["scale"] = (pixel_um, pixel_um)
        if _layers_take_units():
            kwargs["units"] = ("µm", "µm")
    return ([databar_rectangle(height, width, rows)], kwargs, "shapes")


def _layers_take_units() -> bool:
    """Layer ``units`` came with napari 0.6; older versions reject the keyword."""
    return "units" in inspect.signature(Image.__init__).parameters
