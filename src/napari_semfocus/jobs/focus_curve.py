"""A through-focus series from files: one stack, or a set of files with one frame per focus
position (``semfocus focus-curve``). The slices are read, ordered by z, scored by the focus
model (``FocusScorer.score_iter``) and the curve fitted
(:func:`napari_semfocus.scoring.focus_curve.curve_from_scores`), as the Score focus widget does
for a stack layer (:func:`napari_semfocus.jobs.score.score_images` with ``focus_curves``).

z: the metadata's per-slice focus values or each file's working distance, else ``step_um``,
else the slice index (:mod:`napari_semfocus.io.focus_positions`).
"""

from __future__ import annotations

import threading
from collections.abc import Generator
from dataclasses import dataclass

import numpy as np

from ..errors import SemFocusError
from ..io.focus_positions import FocusPositions, file_positions, stack_positions
from ..io.frames import as_frames
from ..io.images import read_image
from ..progress import CANCELLED, Progress, Status, relay
from ..scale import parse_magnification
from ..scoring.focus_curve import curve_from_scores, order_by_z
from ..scoring.through_focus import FocusCurve
from .inputs import FILE_NO_MAGNIFICATION, plan_files
from .score import load_scorer, model_status


@dataclass(frozen=True)
class FocusCurveSettings:
    paths: tuple
    magnification: float | None = None  # None: each file's metadata
    step_um: float | None = None
    checkpoint: str | None = None
    device: str = "auto"
    precision: str = "auto"
    interval: str = "profile"
    batch_size: int = 32
    backend: str = "auto"  # auto | torch | onnxruntime (scoring.backends.resolve_backend)


@dataclass
class Series:
    """The slices of a through-focus series ordered by z, data bars cut off."""

    name: str
    frames: np.ndarray  # (N, H, W) float32
    magnifications: np.ndarray | None  # one per slice
    positions: FocusPositions
    files: tuple  # the stack's file, or the files in z order


@dataclass
class FocusCurveRun:
    series: Series
    curve: FocusCurve | None = None
    scores: np.ndarray | None = None
    model_name: str = ""
    device_name: str = ""
    cancelled: bool = False


def load_series(paths, magnification: float | None = None, step_um: float | None = None
                ) -> Series:
    """One stack file, or several files of one frame each (same size), as a :class:`Series`."""
    files = plan_files(paths, magnification)
    images = [read_image(f.path) for f in files]
    frames, mags, metas = [], [], []
    for f, img in zip(files, images, strict=True):
        stack = as_frames(img.data, f.name)
        if img.databar_rows:
            stack = stack[:, : stack.shape[1] - img.databar_rows]
        mag = f.magnification
        if mag is None:
            mag = parse_magnification(img.magnification, f"{f.name} (file metadata)")
        frames.append(stack)
        mags.extend([mag] * len(stack))
        metas.append(img.metadata)
    if len(files) == 1:
        positions = stack_positions(metas[0], len(frames[0]), step_um)
        name, slice_paths = files[0].name, (files[0].name,)
    else:
        for f, stack in zip(files, frames, strict=True):
            if len(stack) != 1:
                raise SemFocusError(f"{f.name} holds {len(stack)} slices: give one stack, or "
                                    "several files of one frame each.")
        shapes = {s.shape[1:] for s in frames}
        if len(shapes) > 1:
            raise SemFocusError(f"the files of a focus series must have one size; these have "
                                f"{', '.join(f'{h} x {w}' for h, w in sorted(shapes))}.")
        positions = file_positions(metas, step_um)
        name, slice_paths = f"{files[0].name} .. {files[-1].name}", tuple(f.name for f in files)
    stacked = np.concatenate(frames)
    if len(stacked) < 2:
        raise SemFocusError(f"{name}: a focus series needs at least 2 slices; this has 1.")
    missing = any(m is None for m in mags)
    stacked, positions, order = order_by_z(stacked, positions)
    if len(slice_paths) > 1:
        slice_paths = tuple(slice_paths[i] for i in order)
    return Series(name, stacked, None if missing else np.asarray(mags, np.float64)[order],
                  positions, slice_paths)


def focus_curve_run(settings: FocusCurveSettings, cancel: threading.Event | None = None
                    ) -> Generator[Status | Progress, None, FocusCurveRun]:
    """Read, score and fit the series of ``settings``; stops between batches on ``cancel``."""
    series = load_series(settings.paths, settings.magnification, settings.step_um)
    run = FocusCurveRun(series)
    yield Status("loading the focus model…")
    scorer = load_scorer(settings.checkpoint, settings.device, settings.precision,
                         settings.backend)
    if scorer.needs_magnification and series.magnifications is None:
        raise SemFocusError(FILE_NO_MAGNIFICATION.format(name=series.name, model=scorer.name))
    yield model_status(scorer)
    run.model_name, run.device_name = scorer.name, scorer.device_name
    steps = scorer.score_iter(series.frames, series.magnifications,
                              batch_size=settings.batch_size, name=series.name)
    scores = yield from relay(steps, cancel, series.name)
    if scores is CANCELLED:
        run.cancelled = True
        return run
    run.scores = scores
    run.curve = curve_from_scores(series.frames, scores, series.positions, series.name,
                                  interval=settings.interval)
    return run
