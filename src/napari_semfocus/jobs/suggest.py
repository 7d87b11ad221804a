"""Frames worth annotating (``semfocus suggest``, the Fine-tune widget's "Suggest frames").

:func:`suggest_job` loads the model, scores every slice of the images of a
:class:`SuggestSettings` snapshot once (:func:`napari_semfocus.training.suggest.score_candidates`)
and returns the picks of :func:`napari_semfocus.training.suggest.suggest`, best first (None when
cancelled). The threshold is the gate's when a gate file is given.
"""

from __future__ import annotations

import threading
from collections.abc import Generator
from dataclasses import dataclass

from ..gate.file import Gate
from ..progress import Status
from ..training.suggest import Suggestion, score_candidates, suggest
from .score import load_scorer, model_status


@dataclass(frozen=True)
class SuggestSettings:
    """Everything a suggestion needs, read from the widget or the command line first."""

    images: tuple  # ImageInput (layers) or FileInput (files)
    n: int
    checkpoint: str | None = None  # None: the shipped model
    device: str = "auto"
    precision: str = "auto"
    threshold: float | None = None  # None: the gate's, else training.suggest.DEFAULT_THRESHOLD
    gate: str | None = None  # a gate file: its threshold (and it must belong to the model)
    annotated: tuple = ()  # (name or path, slice) of frames already annotated
    batch_size: int = 32


def suggest_job(settings: SuggestSettings, cancel: threading.Event | None = None
                ) -> Generator[object, None, list[Suggestion] | None]:
    s = settings
    yield Status("loading the focus model…")
    scorer = load_scorer(s.checkpoint, s.device, s.precision)
    threshold = s.threshold
    if s.gate is not None:
        threshold = Gate.load(s.gate, scorer=scorer).threshold
    yield model_status(scorer)
    candidates = yield from score_candidates(scorer, s.images, cancel, s.batch_size)
    if candidates is None:
        return None
    return suggest(candidates, s.n, threshold, s.annotated)
