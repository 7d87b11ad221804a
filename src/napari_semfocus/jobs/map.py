"""A focus map of one 2-D frame: one score per tile, with the model or a classical measure
(``semfocus map``, the Focus map widget), and the maps of a stack's slices.

:func:`map_image` yields ``Status`` / ``Progress`` updates, stops between windows / batches once
``cancel`` is set and returns a :class:`MapResult` holding the
:class:`~napari_semfocus.scoring.focus_map.FocusMap`. All numbers come from
:func:`napari_semfocus.scoring.focus_map.focus_map`.

Stacks: :func:`map_slices` maps the slices named in :class:`SliceMapSettings` one after the
other (the shown one, or all); :class:`StackMap` gathers slice maps into one
``(*slice axes, rows, cols)`` grid, NaN where a slice is not mapped yet, and says which are.
"""

from __future__ import annotations

import threading
from collections.abc import Generator
from dataclasses import dataclass, field, replace

import numpy as np

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


# ---- stacks: one map per slice -----------------------------------------------------------------
@dataclass(frozen=True)
class SliceMapSettings:
    """Map these slices of a stack: ``base.image.data`` is the whole array (``(*lead, H, W)``),
    ``slices`` the indices on its leading axes (``((),)`` for a 2-D image)."""

    base: MapSettings
    slices: tuple[tuple[int, ...], ...]

    @property
    def checkpoint(self) -> str | None:
        """The model file the maps are made with (None: the shipped model, or a measure)."""
        return self.base.checkpoint


@dataclass
class SliceMapResult:
    """The maps made, by slice (all of them, or those done before Cancel)."""

    settings: SliceMapSettings
    maps: dict[tuple[int, ...], FocusMap] = field(default_factory=dict)
    model_name: str = ""
    device_name: str = ""
    cancelled: bool = False

    @property
    def fmap(self) -> FocusMap | None:
        """The last map made (None when none was)."""
        return next(reversed(self.maps.values()), None)


def map_slices(settings: SliceMapSettings, cancel: threading.Event | None = None
               ) -> Generator[Status | Progress, None, SliceMapResult]:
    """Map every slice of ``settings.slices`` in turn (progress over all of them); stop between
    windows once ``cancel`` is set, keeping the slices already mapped."""
    result = SliceMapResult(settings)
    base, count = settings.base, len(settings.slices)
    for k, index in enumerate(settings.slices):
        frame = base.image.data[index] if index else base.image.data
        one = replace(base, image=replace(base.image, data=frame), slice_index=index)
        steps = map_image(one, cancel)
        while True:
            try:
                update = next(steps)
            except StopIteration as stop:
                done = stop.value
                break
            if isinstance(update, Progress):  # this slice's progress within the whole run
                yield replace(update, index=k, count=count)
            elif k == 0:  # loading / model status: once
                yield update
        result.model_name, result.device_name = done.model_name, done.device_name
        if done.cancelled:
            result.cancelled = True
            break
        result.maps[index] = done.fmap
    return result


class StackMap:
    """Slice maps of one layer on one grid: ``scores`` / ``certainty`` of shape
    ``(*lead_shape, rows, cols)``, NaN on slices not mapped; ``mapped`` marks the others."""

    def __init__(self, lead_shape: tuple[int, ...], first: FocusMap):
        self.lead_shape = tuple(lead_shape)
        self.grid = _grid_key(first)
        shape = self.lead_shape + first.shape
        self.scores = np.full(shape, np.nan, np.float32)
        self.certainty = np.full(shape, np.nan, np.float32)
        self.mapped = np.zeros(self.lead_shape, bool)
        self.maps: dict[tuple[int, ...], FocusMap] = {}

    def fits(self, fmap: FocusMap) -> bool:
        """Whether ``fmap`` is on this grid (same tiles, stride, frame, method and model)."""
        return _grid_key(fmap) == self.grid

    def add(self, index: tuple[int, ...], fmap: FocusMap) -> None:
        """Put the map of slice ``index`` in place (replacing an earlier one)."""
        if not self.fits(fmap):
            raise ValueError("the map is on another grid; start a new StackMap")
        self.scores[index] = fmap.scores
        self.certainty[index] = fmap.certainty
        self.mapped[index] = True
        self.maps[tuple(index)] = fmap

    def mapped_slices(self) -> list[list[int]]:
        """Indices (on the slice axes) of the mapped slices, in order."""
        return [[int(v) for v in i] for i in np.argwhere(self.mapped)]

    def unmapped(self) -> tuple[tuple[int, ...], ...]:
        """The slices not mapped yet, in order."""
        return tuple(tuple(int(v) for v in i) for i in np.argwhere(~self.mapped))

    def summary(self) -> dict:
        """Which slices are mapped, for the layer's metadata."""
        return {"slice_shape": list(self.lead_shape), "mapped_slices": self.mapped_slices(),
                "mapped_count": int(self.mapped.sum()), "slice_count": int(self.mapped.size)}


def _grid_key(fmap: FocusMap) -> tuple:
    return (fmap.tile_hw, fmap.stride_hw, fmap.origin_yx, fmap.image_hw, fmap.scored_hw,
            fmap.mode, fmap.method, fmap.model)
