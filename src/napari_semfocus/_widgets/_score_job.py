"""The work behind the Score focus widget, as a generator for ``napari.qt.threading``.

:func:`score_layers` takes a :class:`~._common.ScoreSettings` snapshot (plain data, no Qt),
yields :class:`Status` and :class:`Progress` updates, checks a cancel flag between batches, and
returns a :class:`~._common.RunResult`. All numbers come from the core: ``FocusScorer.score_iter``
for the model, ``measures.measure`` for the classical measures.
"""

from __future__ import annotations

import threading
from collections.abc import Generator
from dataclasses import dataclass

import numpy as np

from ..errors import SemFocusError
from ._common import MODEL_METHOD, LayerInput, LayerScores, RunResult, ScoreSettings

_SCORERS: dict = {}  # (checkpoint, device) -> FocusScorer; the last one used is kept


@dataclass(frozen=True)
class Status:
    """A message for the widget's status line (e.g. which model runs on which device)."""

    text: str
    device_name: str = ""


@dataclass(frozen=True)
class Progress:
    """``done`` of ``total`` units (tiles or frames) of layer ``layer_index`` of ``n_layers``."""

    layer_name: str
    layer_index: int
    n_layers: int
    done: int
    total: int

    @property
    def fraction(self) -> float:
        inner = self.done / self.total if self.total else 1.0
        return (self.layer_index + inner) / max(1, self.n_layers)


def get_scorer(checkpoint: str | None, device: str):
    """The default model or a checkpoint on ``device``, loaded once and reused."""
    from ..scoring.llvm_guard import guard_triton_import

    guard_triton_import()  # before torch is first imported in the GUI process
    from ..scoring import scorer as scorer_module

    FocusScorer = scorer_module.FocusScorer  # noqa: N806 (a class)
    if not checkpoint and not scorer_module.default_model_path().is_file():
        raise SemFocusError(
            "The default focus model is not installed with napari-semfocus: choose "
            "'Checkpoint file…' under Model, or a classical measure under Method."
        )
    key = (checkpoint, device)
    if key not in _SCORERS:
        scorer = (FocusScorer.from_checkpoint(checkpoint, device=device) if checkpoint
                  else FocusScorer.default(device=device))
        _SCORERS.clear()
        _SCORERS[key] = scorer
    return _SCORERS[key]


def frames_of(layer: LayerInput) -> np.ndarray:
    """The layer's data as one 2-D frame, an (N, H, W) stack, or RGB; higher-dimensional
    stacks (e.g. time x focus) are flattened to (N, H, W) with N the product of leading axes."""
    data = np.asarray(layer.data)
    spatial = data.ndim - (1 if layer.rgb else 0)
    if spatial > 3:
        tail = data.shape[-3:] if layer.rgb else data.shape[-2:]
        data = data.reshape((-1,) + tail)
    return data


def check_scorable(layer: LayerInput, data: np.ndarray) -> None:
    """Raise :class:`SemFocusError` for a layer with no data or one constant value."""
    if data.size == 0:
        raise SemFocusError(f"layer '{layer.name}' is empty: there is nothing to score.")
    if data.dtype.kind in "uif" and data.min() == data.max():
        raise SemFocusError(
            f"layer '{layer.name}' is constant (every pixel is {data.flat[0]:g}): "
            "it shows no sample to score."
        )


def check_magnification(scorer, layer: LayerInput) -> None:
    """Raise :class:`SemFocusError` when the model needs a magnification the layer lacks."""
    if scorer.needs_magnification and layer.magnification is None:
        raise SemFocusError(
            f"layer '{layer.name}' has no magnification in its metadata and the model "
            f"{scorer.name} needs one: type it into the Magnification field."
        )


def load_method(method: str, checkpoint: str | None, device: str, result
                ) -> Generator[Status, None, object]:
    """Yield the status of loading ``method``; fill ``result.model_name`` / ``device_name``;
    return the :class:`FocusScorer` for the model, ``None`` for a classical measure.
    (Use with ``yield from`` inside a job generator.)"""
    if method == MODEL_METHOD:
        yield Status("loading the focus model…")
        scorer = get_scorer(checkpoint, device)
        result.model_name, result.device_name = scorer.name, scorer.device_name
        yield Status(f"model {scorer.name} on {scorer.device_name}", scorer.device_name)
        return scorer
    result.model_name, result.device_name = method, "cpu (classical measure)"
    yield Status(f"classical measure {method}", result.device_name)
    return None


CANCELLED = object()  # what drive_steps returns when the cancel flag stopped it


def drive_steps(steps: Generator, cancel: threading.Event, layer_name: str, layer_index: int,
                n_layers: int) -> Generator[Progress, None, object]:
    """Run ``steps`` (a generator yielding ``(done, total)`` and returning a value), yielding a
    :class:`Progress` per step and checking ``cancel`` before each; return the steps' value, or
    :data:`CANCELLED` (after closing ``steps``) once ``cancel`` is set."""
    while True:
        if cancel.is_set():
            steps.close()
            return CANCELLED
        try:
            done, total = next(steps)
        except StopIteration as stop:
            return stop.value
        yield Progress(layer_name, layer_index, n_layers, done, total)


def score_layers(settings: ScoreSettings, cancel: threading.Event
                 ) -> Generator[Status | Progress, None, RunResult]:
    """Score every layer of ``settings``; stop between batches once ``cancel`` is set."""
    result = RunResult(settings=settings)
    scorer = yield from load_method(settings.method, settings.checkpoint, settings.device, result)

    n = len(settings.layers)
    for k, layer in enumerate(settings.layers):
        data = frames_of(layer)
        check_scorable(layer, data)
        if scorer is not None:
            steps = _model_steps(scorer, layer, data, settings)
        else:
            steps = _measure_steps(layer, data, settings.method)
        value = yield from drive_steps(steps, cancel, layer.name, k, n)
        if value is CANCELLED:
            result.cancelled = True
            return result
        scores = np.asarray(value, dtype=np.float64)
        result.layers.append(LayerScores(layer.name, scores, layer.magnification,
                                         layer.databar_rows, layer.path))
    return result


def _model_steps(scorer, layer: LayerInput, data, settings: ScoreSettings):
    check_magnification(scorer, layer)
    return scorer.score_iter(data, layer.magnification, region=settings.region,
                             batch_size=settings.batch_size,
                             exclude_bottom_rows=layer.databar_rows, name=f"layer '{layer.name}'")


def _measure_steps(layer: LayerInput, data, method: str):
    """Generator yielding (frames done, frames total), returning the measure of every frame."""
    from ..scoring.measures import measure

    stack = data.ndim - (1 if layer.rgb else 0) == 3
    frames = data if stack else data[None]
    out = np.empty(len(frames))
    for i, frame in enumerate(frames):
        out[i] = measure(frame, method, exclude_bottom_rows=layer.databar_rows,
                         label=f"layer '{layer.name}'")[0]
        yield i + 1, len(frames)
    return out
