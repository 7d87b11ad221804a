"""Scoring images and stacks: one score per 2-D image or slice, with the focus model or a
classical measure (``semfocus score`` / ``measure``, the Score focus widget, gate apply).

:func:`score_images` is a generator: it yields :class:`~napari_semfocus.progress.Status` and
:class:`~napari_semfocus.progress.Progress` updates, stops between batches once ``cancel`` is
set, and returns a :class:`ScoreRun`. All numbers come from ``FocusScorer.tiles_iter`` (the
tile scores and weights, aggregated into the whole score and the worst informative region by
:mod:`napari_semfocus.scoring.aggregate`) and ``measures.measure``.
"""

from __future__ import annotations

import threading
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..errors import SemFocusError
from ..io.focus_positions import stack_positions
from ..io.tables import ScoreRow, slice_rows
from ..progress import CANCELLED, Progress, Status, relay
from ..scoring.aggregate import weighted_score, worst_region_score
from ..scoring.checkpoint import model_fingerprint
from ..scoring.focus_curve import curve_from_scores
from ..scoring.measures import measure
from ..scoring.scorer import FocusScorer
from ..scoring.through_focus import FocusCurve
from .inputs import ImageInput

MODEL_METHOD = "model"
LAZY_NOTE = "a lazy (dask) stack is read once, for its scores: astigmatism is not judged"
CLASSICAL_DEVICE = "cpu (classical measure)"
_SCORERS: dict = {}  # (checkpoint, device, precision, backend) -> FocusScorer; the last one used is kept


@dataclass(frozen=True)
class ScoreSettings:
    """Everything a scoring run needs (read from the widget or the command line before it runs)."""

    images: tuple  # ImageInput, or FileInput (read when its turn comes)
    method: str = MODEL_METHOD  # "model" or a name in measures.MEASURES
    checkpoint: str | None = None  # None = the shipped default model
    device: str = "auto"
    region: str = "whole"
    batch_size: int = 32
    precision: str = "auto"  # auto | float32 | bf16 (scoring.devices.resolve_precision)
    focus_curves: bool = False  # fit the through-focus curve of every stack (the model only)
    backend: str = "auto"  # auto | torch | onnxruntime (scoring.backends.resolve_backend)


@dataclass
class ImageScores:
    """Scores of one image, one per slice (one for a 2-D image): the whole score and, for the
    model, the score of the worst informative region (``worst_region``; None for a classical
    measure)."""

    name: str
    scores: np.ndarray
    magnification: float | None
    databar_rows: int
    path: str | None = None
    worst_region: np.ndarray | None = None
    focus_curve: FocusCurve | None = None  # a stack's fitted through-focus curve
    focus_curve_note: str = ""  # why a stack has none (the fit's refusal)
    # per slice: where the true score lies for the model's share of frames (its metadata's
    # interval, scoring.intervals); None for a classical measure or a model without intervals
    low: np.ndarray | None = None
    high: np.ndarray | None = None

    @property
    def best_index(self) -> int:
        return int(np.argmax(self.scores))

    @property
    def best_focus_index(self) -> int:
        """The slice nearest to the fitted best focus, else the best-scoring slice."""
        return self.focus_curve.best_index if self.focus_curve is not None else self.best_index

    def rows(self, path: str | None = None) -> list[ScoreRow]:
        """The CSV rows of this image; ``path`` column: ``path`` (default: the name)."""
        return slice_rows(path or self.name, self.scores, self.magnification, self.worst_region,
                          self.low, self.high)


@dataclass
class ScoreRun:
    """What a finished (or cancelled) run returns."""

    settings: ScoreSettings
    images: list[ImageScores] = field(default_factory=list)
    model_name: str = ""
    device_name: str = ""
    model_sha256: str | None = None  # of the model file (None for a classical measure)
    interval_level: float | None = None  # the share of frames the scores' intervals hold
    cancelled: bool = False


def load_scorer(checkpoint: str | None, device: str, precision: str = "auto",
                backend: str = "auto") -> FocusScorer:
    """The default model or a checkpoint on ``device`` in ``precision`` with ``backend``, loaded
    once per process and reused."""
    key = (checkpoint, device, precision, backend)
    if key not in _SCORERS:
        scorer = FocusScorer.load(checkpoint, device=device, precision=precision,
                                  backend=backend)
        _SCORERS.clear()
        _SCORERS[key] = scorer
    return _SCORERS[key]


def model_status(scorer: FocusScorer, text: str = "") -> Status:
    """"model <name> on <device>" (and ``text``) for status lines and the CLI."""
    return Status(f"model {scorer.name} on {scorer.device_name}{text}", scorer.device_name,
                  scorer.name)


def load_method(method: str, checkpoint: str | None, device: str, precision: str = "auto",
                backend: str = "auto") -> Generator[Status, None, FocusScorer | None]:
    """Yield the status of loading ``method``; return the :class:`FocusScorer` for the model,
    ``None`` for a classical measure. (Use with ``yield from`` inside a job.)"""
    if method == MODEL_METHOD:
        yield Status("loading the focus model…")
        return load_scorer(checkpoint, device, precision, backend)
    yield Status(f"classical measure {method}", CLASSICAL_DEVICE)
    return None


def method_names(method: str, scorer: FocusScorer | None) -> tuple[str, str]:
    """(model name, device name) of a run: the model's, or the classical measure's."""
    return (scorer.name, scorer.device_name) if scorer is not None else (method, CLASSICAL_DEVICE)


def score_images(settings: ScoreSettings, cancel: threading.Event | None = None,
                 announce: bool = True) -> Generator[Status | Progress, None, ScoreRun]:
    """Score every image of ``settings``; stop between batches once ``cancel`` is set. The
    model's status (``announce``) comes once the first image is read and checked, so that a bad
    first input is the only message."""
    run = ScoreRun(settings=settings)
    scorer = yield from load_method(settings.method, settings.checkpoint, settings.device,
                                    settings.precision, settings.backend)
    run.model_name, run.device_name = method_names(settings.method, scorer)
    if scorer is not None:
        run.model_sha256 = model_fingerprint(scorer)["sha256"]
        run.interval_level = None if scorer.interval is None else scorer.interval.level
    n = len(settings.images)
    for k, item in enumerate(settings.images):
        image = item.load()
        data = image.frames()
        if scorer is not None:
            image.check_magnification(scorer)
            if k == 0 and announce:
                yield model_status(scorer)
            steps = _model_steps(scorer, scorer.tiles_iter(
                data, image.magnification, region=settings.region, batch_size=settings.batch_size,
                exclude_bottom_rows=image.databar_rows, name=image.label))
        else:
            steps = _measure_steps(image, data, settings.method)
        value = yield from relay(steps, cancel, image.name, k, n)
        if value is CANCELLED:
            run.cancelled = True
            return run
        scores, worst, bounds = value
        res = ImageScores(image.name, scores, image.magnification, image.databar_rows,
                          image.path, worst)
        if bounds is not None:
            res.low, res.high = bounds
        if settings.focus_curves and scorer is not None and len(scores) >= 2:
            res.focus_curve, res.focus_curve_note = _curve(image, data, scores)
        run.images.append(res)
    return run


def _curve(image: ImageInput, data, scores) -> tuple[FocusCurve | None, str]:
    """The fitted through-focus curve of a scored stack, or (None, the refusal sentence)."""
    positions = image.focus or stack_positions(None, len(scores))
    # the astigmatism check reads the pixels again: never a lazy stack's (read once, by chunks)
    frames = data if isinstance(data, np.ndarray) else None
    try:
        curve = curve_from_scores(frames, scores, positions, image.label, image.databar_rows)
    except SemFocusError as exc:
        return None, str(exc)
    if frames is None:
        curve.astigmatism = {"likely": False, "judged": False, "note": LAZY_NOTE}
    return curve, ""


def score_rows(images: Sequence[ImageScores]) -> list[ScoreRow]:
    """The CSV rows of scored images, the ``path`` column naming each as the user gave it."""
    return [row for res in images for row in res.rows()]


def _model_steps(scorer, tiles_steps):
    """``FocusScorer.tiles_iter``'s steps, returning (whole scores, worst regions, the scores'
    (low, high) or None) per frame."""
    tiles = yield from tiles_steps
    pairs = zip(tiles.scores, tiles.weights, strict=True)
    scores, worst = np.array([(weighted_score(s, w), worst_region_score(s, w))
                              for s, w in pairs], dtype=np.float64).reshape(-1, 2).T
    return scores, worst, scorer.bounds(scores, tiles.frame_noise())


def _measure_steps(image: ImageInput, data, method: str):
    """Generator yielding (frames done, frames total), returning (the measure of every frame,
    None: a measure has no regions)."""
    stack = data.ndim - (1 if image.rgb else 0) == 3
    frames = data if stack else data[None]
    out = np.empty(len(frames))
    for i, frame in enumerate(frames):
        out[i] = measure(frame, method, exclude_bottom_rows=image.databar_rows,
                         label=image.label)[0]
        yield i + 1, len(frames)
    return out, None, None
