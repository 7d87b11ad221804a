"""A focus map of one 2-D frame: one score per tile, with the model or a classical measure
(``semfocus map``, the Focus map widget).

:func:`map_image` yields ``Status`` / ``Progress`` updates, stops between windows / batches once
``cancel`` is set and returns a :class:`MapResult` holding the
:class:`~napari_semfocus.scoring.focus_map.FocusMap`. All numbers come from
:func:`napari_semfocus.scoring.focus_map.focus_map`.
"""

from __future__ import annotations

import threading
from collections.abc import Generator
from dataclasses import dataclass

from ..progress import CANCELLED, Progress, Status, relay
from ..scoring.focus_map import FocusMap, focus_map
from ..scoring.preprocess import TILE_HW
from .inputs import ImageInput
from .score import MODEL_METHOD, load_method, method_names, model_status


@dataclass(frozen=True)
class MapSettings:
    """Everything a map run needs (read from the widget or the command line before it runs)."""

    image: ImageInput  # ``data`` is the 2-D frame to map (one slice of a stack)
    slice_index: tuple[int, ...] = ()  # position of that frame in the layer's leading axes
    method: str = MODEL_METHOD
    checkpoint: str | None = None
    device: str = "auto"
    mode: str = "shared"
    tile_hw: tuple[int, int] = TILE_HW
    stride_hw: tuple[int, int] | None = None  # None: half a tile
    precision: str = "auto"  # auto | float32 | bf16


@dataclass
class MapResult:
    settings: MapSettings
    fmap: FocusMap | None = None
    model_name: str = ""
    device_name: str = ""
    cancelled: bool = False


def map_image(settings: MapSettings, cancel: threading.Event | None = None
              ) -> Generator[Status | Progress, None, MapResult]:
    """Map focus over ``settings.image``; stop between windows / batches once ``cancel`` is set."""
    result = MapResult(settings)
    image = settings.image
    data = image.frames()
    scorer = yield from load_method(settings.method, settings.checkpoint, settings.device,
                                    settings.precision)
    result.model_name, result.device_name = method_names(settings.method, scorer)
    if scorer is not None:
        yield model_status(scorer)
        image.check_magnification(scorer)
    steps = focus_map(scorer, data, image.magnification, settings.tile_hw, settings.stride_hw,
                      settings.mode, exclude_bottom_rows=image.databar_rows,
                      method=settings.method, name=image.label)
    fmap = yield from relay(steps, cancel, image.name)
    if fmap is CANCELLED:
        result.cancelled = True
    else:
        result.fmap = fmap
    return result
