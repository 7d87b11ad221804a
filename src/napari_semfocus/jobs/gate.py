"""The acceptance gate's workflows: calibrate a gate on labelled images, and apply one to images
and stacks (``semfocus gate calibrate`` / ``apply``, the Acceptance gate widget).

:func:`calibrate_gate` reads a calibration manifest, scores its images as ``semfocus score``
does (:func:`.score.score_images`), chooses the threshold (:func:`napari_semfocus.gate.calibrate.calibrate`)
or, with a hold-out fraction, calibrates on part of the groups and counts the figures on the
others (:func:`~napari_semfocus.gate.calibrate.held_out_check`), and returns the
:class:`~napari_semfocus.gate.file.Gate`. :func:`apply_gate` scores the images (or reuses the
scores a layer holds) and accepts or rejects every image and slice. Both compare the score the
gate's rule names (``whole``: the whole-frame score; ``worst-region``: the worst informative
region, :func:`napari_semfocus.gate.file.gated_scores`). With the review band
(``ApplySettings.review``, :mod:`napari_semfocus.gate.review`) a whole-score gate decides three
ways from each score's interval: accept, reject or review; calibration counts the band's
figures on the labelled images (the gate file's ``review`` entry).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Generator, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import SemFocusError
from ..gate.calibrate import (
    DEFAULT_TARGET_PRECISION,
    Calibration,
    Figures,
    HeldOutCheck,
    calibrate,
    check_both_classes,
    check_target,
    figures_at,
    held_out_check,
)
from ..gate.file import Gate, check_score_rule, gate_model_record, gated_scores
from ..gate.labels import DEFAULT_ACCEPT_SCORE, labels_from_column, read_calibration_manifest
from ..gate.review import check_review, review_record, three_way
from ..io.files import existing_file
from ..io.tables import ScoreRow, decisions_csv, slice_rows
from ..progress import Progress, Status
from ..scoring.checkpoint import model_fingerprint
from .inputs import FileInput
from .score import (
    MODEL_METHOD,
    ImageScores,
    ScoreRun,
    ScoreSettings,
    load_method,
    load_scorer,
    model_status,
    score_images,
    score_rows,
)


# ---- calibrate ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class CalibrateSettings:
    manifest: str
    target_precision: float = DEFAULT_TARGET_PRECISION
    accept_score: float = DEFAULT_ACCEPT_SCORE
    label_column: str = "label"
    group_column: str = "series"
    hold_out: float | None = None  # fraction of the groups held out of the calibration
    seed: int = 0  # shuffles the groups for the hold-out
    best_effort: bool = False  # unreachable target: the gate of the best precision, flagged
    checkpoint: str | None = None  # None = the shipped default model
    device: str = "auto"
    region: str = "whole"
    batch_size: int = 32
    precision: str = "auto"  # auto | float32 | bf16
    rule: str = "whole"  # the score the gate compares: one of gate.file.SCORE_RULES
    backend: str = "auto"  # auto | torch | onnxruntime (scoring.backends.resolve_backend)


@dataclass(frozen=True)
class CalibrationScored:
    """The calibration images are scored; the threshold is chosen next."""

    rows: list  # ScoreRow, one per image
    labels: list  # the label column's texts
    acceptable: np.ndarray


@dataclass
class CalibrateResult:
    settings: CalibrateSettings
    calibration: Calibration | None = None
    check: HeldOutCheck | None = None  # with a hold-out: the calibration and held-out figures
    gate: Gate | None = None
    rows: list[ScoreRow] = field(default_factory=list)  # one per image
    labels: list[str] = field(default_factory=list)  # the label column's texts
    acceptable: np.ndarray | None = None
    groups: list[str] = field(default_factory=list)
    model: dict = field(default_factory=dict)  # the gate file's model record
    model_name: str = ""
    device_name: str = ""
    interval_level: float | None = None  # the model's score intervals (None: it has none)
    cancelled: bool = False

    @property
    def held_out(self) -> Figures | None:
        return None if self.check is None else self.check.held_out

    def with_target(self, target_precision: float) -> CalibrateResult:
        """The same scores calibrated for another target precision (no rescoring)."""
        cal = self.calibration.with_target(target_precision, self.settings.best_effort)
        check = self.check
        if check is not None:
            held = figures_at(_held_scores(self), _held_acceptable(self), cal.threshold)
            check = dataclasses.replace(check, calibration=cal, held_out=held)
        return _with_gate(dataclasses.replace(self, calibration=cal, check=check))

    def with_rule(self, rule: str) -> CalibrateResult:
        """The same images calibrated for the gate rule ``rule`` (no rescoring: the rows hold
        the whole scores and the worst regions)."""
        settings = dataclasses.replace(self.settings, rule=check_score_rule(rule))
        scores = np.array([gated_scores(rule, r.score, r.worst_region) for r in self.rows])
        cal, check = _choose(settings, scores, self.acceptable, self.groups,
                             self.calibration.accept_rule)
        return _with_gate(dataclasses.replace(self, settings=settings, calibration=cal,
                                              check=check))


def calibrate_gate(settings: CalibrateSettings, cancel: threading.Event | None = None
                   ) -> Generator[Status | Progress | CalibrationScored, None, CalibrateResult]:
    """Score the manifest's images and choose the threshold; stops between batches once
    ``cancel`` is set."""
    s = settings
    check_target(s.target_precision)
    check_score_rule(s.rule)
    result = CalibrateResult(settings=s)
    images, labels, groups = read_calibration_manifest(s.manifest, s.label_column, s.group_column)
    try:
        acceptable, rule = labels_from_column(labels, s.accept_score, s.label_column)
    except SemFocusError as exc:
        raise SemFocusError(f"manifest {s.manifest}: {exc}") from None
    if len(acceptable):  # one class only: said before any image is scored, naming the manifest
        check_both_classes(acceptable, rule, f"manifest {s.manifest}: ")
    files = tuple(FileInput(path, Path(path), mag) for path, mag in images)
    for f in files:  # before the model is loaded
        existing_file(f.name)
    scorer = yield from load_method(MODEL_METHOD, s.checkpoint, s.device, s.precision, s.backend)
    result.model_name, result.device_name = scorer.name, scorer.device_name
    result.model = gate_model_record(scorer)
    result.interval_level = None if scorer.interval is None else scorer.interval.level
    yield model_status(scorer, f", {len(images)} images")
    run = yield from score_images(ScoreSettings(files, MODEL_METHOD, s.checkpoint, s.device,
                                                s.region, s.batch_size, s.precision,
                                                backend=s.backend), cancel,
                                  announce=False)
    if run.cancelled:
        result.cancelled = True
        return result
    for res in run.images:
        if len(res.scores) != 1:
            raise SemFocusError(
                f"{res.name}: holds {len(res.scores)} slices; calibration needs one label per "
                "image (save the slices as separate files).")
    scores = np.array([gated_scores(s.rule, res.scores, res.worst_region)[0]
                       for res in run.images])
    rows = score_rows(run.images)
    yield CalibrationScored(rows, list(labels), acceptable)
    yield Status(f"choosing the threshold for precision {s.target_precision:g}…")
    cal, check = _choose(s, scores, acceptable, groups, rule)
    result = dataclasses.replace(result, calibration=cal, check=check, rows=rows,
                                 labels=list(labels), acceptable=acceptable, groups=list(groups))
    return _with_gate(result)


def _choose(s: CalibrateSettings, scores, acceptable, groups, accept_rule: dict
            ) -> tuple[Calibration, HeldOutCheck | None]:
    """The threshold on ``scores`` (the rule's), on part of the groups with a hold-out."""
    if s.hold_out is not None:
        check = held_out_check(scores, acceptable, groups, s.target_precision, s.hold_out, s.seed,
                               best_effort=s.best_effort, accept_rule=accept_rule)
        return check.calibration, check
    return calibrate(scores, acceptable=acceptable, target_precision=s.target_precision,
                     best_effort=s.best_effort, accept_rule=accept_rule), None


def _with_gate(result: CalibrateResult) -> CalibrateResult:
    """``result`` with the gate of its calibration (and hold-out figures, when there are)."""
    s = result.settings
    held_out = None
    if result.check is not None:
        held_out = result.check.as_dict()["held_out"]
        held_out.update({"fraction": s.hold_out, "seed": s.seed, "group_column": s.group_column,
                         "n_groups": len(result.check.held_out_groups)})
    gate = Gate.from_calibration(result.calibration, model=result.model, region=s.region,
                                 source=str(Path(s.manifest).resolve()), held_out=held_out,
                                 score_rule=s.rule, review=_review(result))
    return dataclasses.replace(result, gate=gate)


def _review(result: CalibrateResult) -> dict | None:
    """The review band's figures at the chosen threshold (None for a worst-region gate or a
    model without intervals: there is no band)."""
    rows = result.rows
    if result.settings.rule != "whole" or not rows or any(r.score_low is None for r in rows):
        return None
    held = None if result.check is None else result.check.held_out_index
    return review_record(result.calibration.threshold, result.interval_level,
                         [r.score_low for r in rows], [r.score_high for r in rows],
                         result.acceptable, held)


def _held_scores(result: CalibrateResult) -> np.ndarray:
    rule = result.settings.rule
    return np.array([gated_scores(rule, r.score, r.worst_region)
                     for r in result.rows])[result.check.held_out_index]


def _held_acceptable(result: CalibrateResult) -> np.ndarray:
    return np.asarray(result.acceptable)[result.check.held_out_index]


# ---- apply --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ApplySettings:
    gate: Gate
    images: tuple  # ImageInput or FileInput
    reused: tuple | None = None  # per image: (scores, worst regions or None) it holds, or None
    checkpoint: str | None = None  # the gate's model (see gate.file.resolve_checkpoint)
    device: str = "auto"
    batch_size: int = 32
    precision: str = "auto"  # auto | float32 | bf16
    review: bool = False  # the review band: accept / reject / review from the scores' intervals
    backend: str = "auto"  # auto | torch | onnxruntime (scoring.backends.resolve_backend)


@dataclass
class ImageDecisions:
    """Scores (whole and worst region) and decisions of one image (one per slice)."""

    name: str
    scores: np.ndarray
    accepted: np.ndarray
    magnification: float | None
    path: str | None
    scores_from: str  # "scored" or "layer metadata"
    databar_rows: int = 0
    scored: ImageScores | None = None  # the fresh scores, when scored
    worst_region: np.ndarray | None = None
    bounds: tuple | None = None  # (low, high) per slice: the scores' intervals, when known
    decisions: np.ndarray | None = None  # with the review band: accept / reject / review

    @property
    def rejected_slices(self) -> list[int]:
        return [int(i) for i in np.flatnonzero(~self.accepted)]

    def rows(self, path: str | None = None) -> list[ScoreRow]:
        """The CSV rows of this image; ``path`` column: ``path`` (default: the name); the
        scores' intervals when known (scored now, or stored with the scores)."""
        low, high = self.bounds or (None, None)
        return slice_rows(path or self.name, self.scores, self.magnification, self.worst_region,
                          low, high)


def decisions_table(images: Iterable[ImageDecisions], by_file: bool = False) -> str:
    """The decisions of every image and slice as CSV: the one writer of ``semfocus gate apply``,
    its Dask runs and the Acceptance gate widget. The ``path`` column holds each image's name,
    or with ``by_file`` its file where it has one (layers opened from a file)."""
    images = list(images)
    rows = [row for res in images for row in res.rows(res.path if by_file else None)]
    accepted = [bool(ok) for res in images for ok in res.accepted]
    review = bool(images) and all(res.decisions is not None for res in images)
    decisions = [d for res in images for d in res.decisions] if review else None
    return decisions_csv(rows, np.asarray(accepted, dtype=bool), decisions)


@dataclass
class ApplyResult:
    settings: ApplySettings
    images: list[ImageDecisions] = field(default_factory=list)
    run: ScoreRun | None = None  # the scoring run, when images were scored
    model_name: str = ""
    device_name: str = ""
    cancelled: bool = False


def apply_gate(settings: ApplySettings, cancel: threading.Event | None = None
               ) -> Generator[Status | Progress, None, ApplyResult]:
    """Accept or reject every image and slice by the gate's rule; images without reused scores
    are scored with the gate's model (checked by its SHA-256) in the gate's region."""
    s = settings
    result = ApplyResult(settings=s)
    if s.review:  # a worst-region gate has no band: said before anything is scored
        check_review(s.gate.score_rule, True)
    reused = s.reused or (None,) * len(s.images)
    to_score = tuple(image for image, r in zip(s.images, reused, strict=True) if r is None)
    fresh = iter(())
    if to_score:
        yield Status("loading the gate's focus model…")
        scorer = load_scorer(s.checkpoint, s.device, s.precision, s.backend)
        s.gate.check_model(model_fingerprint(scorer))
        if s.review:
            check_review("whole", scorer.interval is not None, scorer.name)
        run = yield from score_images(ScoreSettings(to_score, MODEL_METHOD, s.checkpoint, s.device,
                                                    s.gate.region, s.batch_size, s.precision,
                                                    backend=s.backend), cancel)
        result.run, result.model_name, result.device_name = run, run.model_name, run.device_name
        if run.cancelled:
            result.cancelled = True
            return result
        fresh = iter(run.images)
    else:
        result.model_name = s.gate.model.get("name", "")
    for image, stored in zip(s.images, reused, strict=True):
        if stored is None:
            res = next(fresh)
            bounds = None if res.low is None else (res.low, res.high)
            out = ImageDecisions(res.name, res.scores, None, res.magnification, res.path,
                                 "scored", res.databar_rows, res, res.worst_region, bounds)
        else:  # (scores, worst regions) or, with their intervals, (..., low, high)
            scores, worst, *bounds = stored
            out = ImageDecisions(image.name, scores, None, image.magnification, image.path,
                                 "layer metadata", image.databar_rows, worst_region=worst,
                                 bounds=tuple(bounds) or None)
        out.accepted = s.gate.decide(out.scores, out.worst_region)
        if s.review:
            if out.bounds is None:
                raise SemFocusError(f"{out.name}: its stored scores have no intervals, so there "
                                    "is no review band for it: score it again.")
            out.decisions = three_way(s.gate.threshold, *out.bounds)
            out.accepted = out.decisions == "accept"
        result.images.append(out)
    return result
