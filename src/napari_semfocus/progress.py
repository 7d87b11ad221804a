"""Long work as generators: a step yields progress and returns its result.

The core's long steps (:meth:`FocusScorer.score_iter`, :func:`focus_map`, training) are generator
functions that yield ``(done, total)`` or typed updates and return their result. The jobs
(:mod:`napari_semfocus.jobs`) relay them as :class:`Status` and :class:`Progress` updates and stop
between steps when asked (:func:`relay`); a caller that only wants the result, or prints the
updates (the CLI), drives a generator with :func:`run_to_end`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator
from dataclasses import dataclass


@dataclass(frozen=True)
class Status:
    """A message for a status line; ``model_name`` / ``device_name`` once a model is loaded."""

    text: str
    device_name: str = ""
    model_name: str = ""


@dataclass(frozen=True)
class Progress:
    """``done`` of ``total`` units (tiles, frames) of item ``index`` (an image, ``name``) of
    ``count``."""

    name: str
    index: int
    count: int
    done: int
    total: int

    @property
    def fraction(self) -> float:
        inner = self.done / self.total if self.total else 1.0
        return (self.index + inner) / max(1, self.count)


CANCELLED = object()  # what :func:`relay` returns when the cancel flag stopped it


def run_to_end(gen: Generator, on_update: Callable[[object], None] | None = None):
    """Run a generator to its end, passing each update to ``on_update``; return its value."""
    while True:
        try:
            update = next(gen)
        except StopIteration as stop:
            return stop.value
        if on_update is not None:
            on_update(update)


def relay(steps: Generator, cancel: threading.Event | None, name: str, index: int = 0,
          count: int = 1) -> Generator[Progress, None, object]:
    """Run ``steps`` (yielding ``(done, total)``, returning a value), yield a :class:`Progress`
    per step, check ``cancel`` before each; return the steps' value, or :data:`CANCELLED` (after
    closing ``steps``) once ``cancel`` is set."""
    while True:
        if cancel is not None and cancel.is_set():
            steps.close()
            return CANCELLED
        try:
            done, total = next(steps)
        except StopIteration as stop:
            return stop.value
        yield Progress(name, index, count, done, total)
