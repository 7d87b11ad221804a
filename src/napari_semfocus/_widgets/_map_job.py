"""The work behind the Focus map widget, as a generator for ``napari.qt.threading`` (no Qt).

:func:`map_layer` takes a :class:`MapSettings` snapshot, yields ``Status`` / ``Progress`` updates,
checks a cancel flag between windows / batches and returns a :class:`MapResult` holding the
:class:`~napari_semfocus.tiling.FocusMap`. All numbers come from ``tiling.focus_map``.
"""

from __future__ import annotations

import threading
from collections.abc import Generator
from dataclasses import dataclass

import numpy as np

from ..scoring.focus_map import FocusMap
from ._common import MODEL_METHOD, LayerInput
from ._score_job import (
    CANCELLED,
    Progress,
    Status,
    check_magnification,
    check_scorable,
    drive_steps,
    load_method,
)


@dataclass(frozen=True)
class MapSettings:
    """Everything a map run needs, read from the widget once before the worker starts."""

    layer: LayerInput  # ``data`` is the 2-D frame to map (the current slice of a stack)
    slice_index: tuple[int, ...] = ()  # position of that frame in the layer's leading axes
    method: str = MODEL_METHOD
    checkpoint: str | None = None
    device: str = "auto"
    mode: str = "shared"
    tile_hw: tuple[int, int] = (240, 320)
    stride_hw: tuple[int, int] | None = None  # None: half a tile


@dataclass
class MapResult:
    settings: MapSettings
    fmap: FocusMap | None = None
    model_name: str = ""
    device_name: str = ""
    cancelled: bool = False


def map_layer(settings: MapSettings, cancel: threading.Event
              ) -> Generator[Status | Progress, None, MapResult]:
    from ..scoring.focus_map import focus_map

    result = MapResult(settings)
    layer = settings.layer
    data = np.asarray(layer.data)
    check_scorable(layer, data)
    scorer = yield from load_method(settings.method, settings.checkpoint, settings.device, result)
    if scorer is not None:
        check_magnification(scorer, layer)
    steps = focus_map(scorer, data, layer.magnification, settings.tile_hw, settings.stride_hw,
                      settings.mode, exclude_bottom_rows=layer.databar_rows,
                      method=settings.method, name=f"layer '{layer.name}'")
    fmap = yield from drive_steps(steps, cancel, layer.name, 0, 1)
    if fmap is CANCELLED:
        result.cancelled = True
    else:
        result.fmap = fmap
    return result
