"""A focus map of one 2-D frame: one score per tile, with the model or a classical measure
(``semfocus map``, the Focus map widget), and the maps of a stack's slices.

:func:`map_image` yields ``Status`` / ``Progress`` updates, stops between windows / batches once
``cancel`` is set and returns a :class:`MapResult` holding the
:class:`~napari_semfocus.scoring.map_grid.FocusMap`. All numbers come from
:func:`napari_semfocus.scoring.focus_map.focus_map`.

Stacks: :func:`map_slices` maps the slices named in :class:`SliceMapSettings` one after the
other (the shown one, or all); :class:`StackMap` gathers slice maps into one
``(*slice axes, rows, cols)`` grid, NaN where a slice is not mapped yet, and says which are;
:class:`MapBook` keeps them per source layer with the settings they were made with, and
:func:`map_layer_kwargs` gives the map layer's arguments (the Focus map widget's bookkeeping).
"""

from __future__ import annotations

import threading
from collections.abc import Generator
from dataclasses import dataclass, field, replace

import numpy as np

from ..progress import CANCELLED, Progress, Status, relay
from ..scoring.focus_map import DEFAULT_MODE, focus_map
from ..scoring.map_grid import FocusMap, finite_range
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
    mode: str = DEFAULT_MODE
    tile_hw: tuple[int, int] = TILE_HW
    stride_hw: tuple[int, int] | None = None  # None: half a tile
    precision: str = "auto"  # auto | float32 | bf16 | int8
    backend: str = "auto"  # auto | torch | onnxruntime (scoring.backends.resolve_backend)


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
                                    settings.precision, settings.backend)
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
    """Slice maps of one layer on one grid: ``scores`` / ``weight`` (and with intervals ``low``
    / ``high``, else None) of shape ``(*lead_shape, rows, cols)``, NaN on slices not mapped;
    ``mapped`` marks the others."""

    def __init__(self, lead_shape: tuple[int, ...], first: FocusMap):
        self.lead_shape = tuple(lead_shape)
        self.grid = _grid_key(first)
        shape = self.lead_shape + first.shape
        self.scores = np.full(shape, np.nan, np.float32)
        self.weight = np.full(shape, np.nan, np.float32)
        has = first.low is not None  # one model per stack (the grid key): all or none have
        self.low, self.high = ((np.full(shape, np.nan, np.float32) for _ in range(2)) if has
                               else (None, None))
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
        self.weight[index] = fmap.weight
        if self.low is not None and fmap.low is not None:
            self.low[index], self.high[index] = fmap.low, fmap.high
        self.mapped[index] = True
        self.maps[tuple(index)] = fmap

    def mapped_slices(self) -> list[list[int]]:
        """Indices (on the slice axes) of the mapped slices, in order."""
        return [[int(v) for v in i] for i in np.argwhere(self.mapped)]

    def unmapped(self) -> tuple[tuple[int, ...], ...]:
        """The slices not mapped yet, in order."""
        return tuple(tuple(int(v) for v in i) for i in np.argwhere(~self.mapped))

    def grids(self) -> dict:
        """The per-tile grids of the map layer's metadata (:meth:`FocusMap.grids`, all slices)."""
        out = {"scores": self.scores, "weight": self.weight}
        if self.low is not None:
            out.update(score_low=self.low, score_high=self.high, certainty=self.high - self.low)
        return out

    def summary(self) -> dict:
        """Which slices are mapped, for the layer's metadata."""
        return {"slice_shape": list(self.lead_shape), "mapped_slices": self.mapped_slices(),
                "mapped_count": int(self.mapped.sum()), "slice_count": int(self.mapped.size)}


def _grid_key(fmap: FocusMap) -> tuple:
    return (fmap.tile_hw, fmap.stride_hw, fmap.origin_yx, fmap.image_hw, fmap.scored_hw,
            fmap.mode, fmap.method, fmap.model)


# ---- the maps of a session: which slices of which layer are mapped, and their layer -----------
def map_layer_name(source: str) -> str:
    """The name of the focus-map layer of the layer named ``source``."""
    return f"{source} focus map"


def settings_key(settings: MapSettings) -> tuple:
    """What makes two maps of a layer comparable: method, model, magnification, tiles."""
    return (settings.method, settings.checkpoint, settings.mode, settings.tile_hw,
            settings.stride_hw, settings.image.magnification, settings.image.databar_rows)


class MapBook:
    """The slice maps made of each source layer (by name), with the settings they were made
    with: which slices a new run must map, and where a run's maps go."""

    def __init__(self):
        self._stacks: dict[str, tuple[tuple, StackMap]] = {}

    def stack(self, base: MapSettings) -> StackMap | None:
        """The slice maps of ``base``'s layer made with the same settings (None when there are
        none)."""
        key, stack = self._stacks.get(base.image.name, (None, None))
        return stack if stack is not None and key == settings_key(base) else None

    def any_stack(self, source: str) -> StackMap | None:
        """The slice maps of the layer named ``source``, whatever their settings."""
        return self._stacks.get(source, (None, None))[1]

    def slices_to_map(self, base: MapSettings, lead_shape: tuple[int, ...]) -> tuple:
        """Every slice of a ``lead_shape`` stack not mapped yet with ``base``'s settings."""
        stack = self.stack(base)
        if stack is not None:
            return stack.unmapped()
        return tuple(tuple(int(v) for v in i) for i in np.ndindex(tuple(lead_shape)))

    def add(self, result: SliceMapResult, lead_shape: tuple[int, ...]) -> StackMap:
        """Put ``result``'s maps into its layer's slice maps (new ones when the grid or the
        settings changed) and return them."""
        base = result.settings.base
        stack = self.stack(base)
        if stack is None or not stack.fits(result.fmap):
            stack = StackMap(lead_shape, result.fmap)
            self._stacks[base.image.name] = (settings_key(base), stack)
        for index, fmap in result.maps.items():
            stack.add(index, fmap)
        return stack

    def forget(self, source: str) -> None:
        """Drop the maps of the layer named ``source`` (its map layer is gone)."""
        self._stacks.pop(source, None)


def map_layer_kwargs(stack: StackMap, result: SliceMapResult, source_scale, source_translate,
                     source_units=None) -> dict:
    """Keyword arguments for ``viewer.add_image(stack.scores, **kwargs)``: the map layer over a
    source layer with ``source_scale`` / ``source_translate`` (all its axes) and ``units``,
    its slice axes included, with the settings and slice bookkeeping in its metadata."""
    last, lead = result.fmap, len(stack.lead_shape)
    kwargs = last.layer_kwargs(tuple(source_scale)[-2:], tuple(source_translate)[-2:])
    base = result.settings.base
    meta = kwargs["metadata"]
    meta["semfocus_map"].update(
        source_layer=base.image.name, slice_index=list(next(reversed(result.maps))),
        device=result.device_name, databar_rows_excluded=base.image.databar_rows,
        **stack.summary())
    for key in ("score_low", "score_high", "certainty"):
        meta.pop(key, None)  # the last slice's grids: replaced by all the slices'
    meta.update(stack.grids())
    if meta["semfocus_map"]["score_scale"] != "focus score 0-10":
        kwargs["contrast_limits"] = finite_range(stack.scores)
    kwargs["scale"] = tuple(source_scale)[:lead] + tuple(kwargs["scale"])
    kwargs["translate"] = tuple(source_translate)[:lead] + tuple(kwargs["translate"])
    if source_units is not None:  # napari >= 0.5: physical units (e.g. µm)
        kwargs["units"] = tuple(source_units)[-2 - lead:]
    return kwargs
