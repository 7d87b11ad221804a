"""The viewer's image layers as the jobs need them (no Qt): which layers can be scored, what
their metadata says (magnification, data bar, file), which slice the viewer shows, and a layer
as an :class:`~napari_semfocus.jobs.inputs.ImageInput` for a worker thread.

:func:`sem_metadata` is the one place a widget learns a layer's SEM metadata: the layer's own
``metadata`` (our reader, the samples), else the header of the file the layer was read from
(napari's own TIFF reader keeps no SEM metadata), so a magnification is found whichever reader
opened the file."""

from __future__ import annotations

import os
from functools import lru_cache

import numpy as np
from napari.layers import Image

from ..io.databar import detect_databar_rows
from ..io.images import read_file_metadata
from ..jobs.inputs import ImageInput


def image_layers(viewer) -> list:
    """The viewer's Image layers, in layer-list order."""
    return [layer for layer in viewer.layers if isinstance(layer, Image)]


def layer_array(layer):
    """The layer's array (the full-resolution level of a multiscale layer)."""
    return layer.data[0] if layer.multiscale else layer.data


def lead_shape(layer) -> tuple:
    """Shape of the slice axes of an image layer (() for a 2-D image or ``None``)."""
    if layer is None:
        return ()
    return tuple(int(n) for n in np.shape(layer_array(layer))[: layer.ndim - 2])


def sem_metadata(layer) -> dict:
    """The layer's SEM metadata: ``layer.metadata`` when it names a magnification, else the
    fields read from the header of the layer's source file (cached per file and modification
    time) under the layer's own."""
    own = dict(layer.metadata or {})
    if own.get("magnification") is not None:
        return own
    path = _source_file(layer)
    if path is None:
        return own
    try:
        stamp = os.stat(path).st_mtime_ns
    except OSError:
        return own
    return {**_file_metadata(path, stamp), **own}


@lru_cache(maxsize=64)
def _file_metadata(path: str, _mtime_ns: int) -> dict:
    return read_file_metadata(path)


def _source_file(layer) -> str | None:
    path = getattr(getattr(layer, "source", None), "path", None)
    return str(path) if path and os.path.isfile(str(path)) else None


def layer_magnification(layer) -> float | None:
    """Magnification of the layer's frames (:func:`sem_metadata`), or ``None``."""
    value = sem_metadata(layer).get("magnification")
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if np.isfinite(value) and value > 0 else None


def layer_databar_rows(layer) -> int:
    """Rows of the data bar at the bottom of the layer's frames (0 when none is known)."""
    try:
        rows = sem_metadata(layer).get("databar_rows")
        if rows is None and _source_file(layer) is not None and isinstance(layer.data, np.ndarray):
            # a file napari's own reader opened whose header does not give the bar (Zeiss):
            # detected on the frame as our reader does
            frame = layer.data if layer.ndim == 2 else layer.data.reshape((-1,) + layer.data.shape[-2:])[0]
            rows = detect_databar_rows(frame, layer.name) if not layer.rgb else 0
        return max(0, int(rows or 0))
    except (TypeError, ValueError):
        return 0


def layer_source_path(layer) -> str | None:
    """The file a layer was read from, where known."""
    path = (layer.metadata or {}).get("path")
    if not path:
        source = getattr(layer, "source", None)
        path = getattr(source, "path", None)
    return str(path) if path else None


def shown_slice(viewer, layer) -> tuple[int, ...]:
    """Index on the slice axes of ``layer`` of the slice the viewer shows (() for a 2-D image)."""
    lead = lead_shape(layer)
    if not lead:
        return ()
    point = layer.world_to_data(viewer.dims.point[-layer.ndim:])
    return tuple(min(max(int(round(float(v))), 0), n - 1) for v, n in zip(point, lead, strict=False))


def go_to_slice(viewer, layer, index: int) -> None:
    """Move the viewer's sliders to slice ``index`` (flat, row-major) of ``layer``."""
    offset = viewer.dims.ndim - layer.ndim
    for axis, i in enumerate(np.unravel_index(int(index), lead_shape(layer))):
        world = float(layer.translate[axis] + layer.scale[axis] * int(i))
        viewer.dims.set_point(offset + axis, world)


def layer_input(layer, magnification: float | None, data=None) -> ImageInput:
    """The :class:`ImageInput` of an image layer with ``magnification`` (captured on the UI
    thread; the array is not copied, and a dask array stays lazy: the jobs read it a block at a
    time, :mod:`napari_semfocus.scoring.lazy_frames`); ``data`` replaces the layer's
    full-resolution array (e.g. by one frame of it)."""
    return ImageInput(name=layer.name, data=layer_array(layer) if data is None else data,
                      magnification=magnification, databar_rows=layer_databar_rows(layer),
                      rgb=bool(layer.rgb), path=layer_source_path(layer))
