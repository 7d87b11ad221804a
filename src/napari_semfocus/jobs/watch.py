"""Live acquisition QC: score the frames of a folder as they are written (``semfocus watch``,
the Live QC widget).

:func:`watch_folder` is a generator like the other jobs: it loads the model once, scores the
frames already in the folder (the backlog, oldest first), then each new frame once it is
completely written (:mod:`napari_semfocus.io.arrivals`), and yields a :class:`FrameScored` per
file (its rows, the gate's decisions, or the reason it has no score) and a
:class:`FrameSkipped` for a file deleted before it was scored. It stops once ``cancel`` is set
or, with ``until_idle``, after that many seconds without a new frame. Scores come from
:func:`napari_semfocus.jobs.score.score_images` (one prediction path: the number is the one
``semfocus score`` gives for the file) and decisions from
:meth:`napari_semfocus.gate.file.Gate.decide` (the gate's own rule). :func:`watch_to_table`
also appends each frame's rows to the watch's table as they come (the command and the widget
write it so); :func:`write_retake` writes the retake list (rejected or unreadable frames).
"""

from __future__ import annotations

import threading
from collections.abc import Generator, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..errors import ImageReadError, SemFocusError
from ..gate.file import Gate
from ..io.arrivals import DEFAULT_PATTERNS, Arrivals
from ..io.csv_stream import CsvStream
from ..io.files import write_text
from ..io.tables import SCORE_COLUMNS, ScoreRow, csv_lines, csv_text
from ..progress import Status, run_to_end
from ..scoring.checkpoint import model_fingerprint
from ..scoring.map_grid import FocusMap
from .inputs import FileInput
from .score import MODEL_METHOD, ScoreSettings, load_method, model_status, score_images

TICK_S = 0.05  # longest wait between two looks at the pending files


@dataclass(frozen=True)
class WatchSettings:
    """Everything a watch needs (read from the command line or the widget before it starts)."""

    folder: str
    patterns: tuple[str, ...] = DEFAULT_PATTERNS
    recursive: bool = False
    magnification: float | None = None  # None: each file's SEM metadata
    checkpoint: str | None = None  # None: the shipped model (or the gate's, resolved before)
    device: str = "auto"
    precision: str = "auto"
    batch_size: int = 32
    gate: Gate | None = None
    poll: float | None = None  # seconds between scans instead of file-system events
    settle: float = 0.25  # seconds a file must stay unchanged
    give_up: float = 5.0  # seconds an unreadable, unchanged file is retried
    until_idle: float | None = None  # stop after this long without a new frame
    keep_pixels: bool = False  # FrameScored.pixels holds the frame (the widget shows it)
    focus_map: bool = False  # FrameScored.fmap: the focus map of the frame (first slice)
    done: tuple[str, ...] = ()  # names already scored (a continued table's): never again
    backend: str = "auto"  # auto | torch | onnxruntime (scoring.backends.resolve_backend)


@dataclass
class FrameScored:
    """One file handled: its rows (one per slice) and decisions, or why it has no score."""

    name: str
    rows: list[ScoreRow] = field(default_factory=list)
    accepted: np.ndarray | None = None  # per slice, when gated
    error: str | None = None
    backlog: tuple[int, int] | None = None  # (k, n): the k-th of n frames found at the start
    pixels: np.ndarray | None = None
    fmap: FocusMap | None = None

    @property
    def rejected(self) -> bool:
        return self.accepted is not None and not bool(np.all(self.accepted))

    def cells(self, gated: bool) -> list[list[str]]:
        """The CSV cells of the watch's table (:func:`~napari_semfocus.io.tables.watch_columns`)."""
        if self.error is not None:
            empty = [""] * (len(SCORE_COLUMNS) - 2)  # no magnification, score, interval, region
            return [[self.name, "0", *empty] + ([""] if gated else []) + [self.error]]
        out = []
        for k, row in enumerate(self.rows):
            decision = [str(int(self.accepted[k]))] if gated else []
            out.append(row.as_csv() + decision + [""])
        return out

    def csv(self, gated: bool) -> str:
        return csv_lines(self.cells(gated))

    def lines(self) -> list[str]:
        """One line per frame (slice): name, score, worst region, accept or reject."""
        lead = f"[{self.backlog[0]}/{self.backlog[1]}] " if self.backlog else ""
        if self.error is not None:
            return [f"{lead}{self.name}: ERROR {self.error}"]
        out = []
        for k, row in enumerate(self.rows):
            name = self.name if len(self.rows) == 1 else f"{self.name}[{row.index}]"
            decision = ("" if self.accepted is None
                        else "  accept" if self.accepted[k] else "  REJECT")
            out.append(f"{lead}{name}  score {row.score:.2f}  worst region "
                       f"{row.worst_region:.2f}{decision}")
        return out


@dataclass(frozen=True)
class FrameSkipped:
    """A file deleted before it was scored."""

    name: str
    reason: str = "deleted before it was scored"


@dataclass
class WatchRun:
    """What a watch returns when it stops."""

    settings: WatchSettings
    scored: int = 0  # files with scores
    errors: int = 0  # files recorded with an error
    rejected: int = 0  # files with a rejected slice
    model_name: str = ""
    device_name: str = ""
    model_sha256: str = ""
    stopped_by: str = ""  # "idle" or "cancel"


def check_folder(folder) -> Path:
    """``folder`` as a Path when it is a folder to watch; one sentence otherwise."""
    path = Path(folder)
    if path.is_file():
        raise SemFocusError(f"{folder} is a file, not a folder; give the folder the microscope "
                            "writes into.")
    if not path.is_dir():
        raise SemFocusError(f"{folder}: no such folder to watch.")
    return path


def watch_folder(settings: WatchSettings, cancel: threading.Event | None = None
                 ) -> Generator[Status | FrameScored | FrameSkipped, None, WatchRun]:
    """Watch ``settings.folder`` until ``cancel`` is set (or idle): score each frame once."""
    s = settings
    check_folder(s.folder)
    region = s.gate.region if s.gate is not None else "whole"
    scorer = yield from load_method(MODEL_METHOD, s.checkpoint, s.device, s.precision, s.backend)
    fingerprint = model_fingerprint(scorer)
    if s.gate is not None:
        s.gate.check_model(fingerprint)
    run = WatchRun(s, model_name=scorer.name, device_name=scorer.device_name,
                   model_sha256=fingerprint["sha256"])
    gate_text = "" if s.gate is None else (f", gate: accept when {s.gate.rule_score} >= "
                                           f"{s.gate.threshold:.4f}")
    yield model_status(scorer, gate_text)
    score_settings = ScoreSettings((), MODEL_METHOD, s.checkpoint, s.device, region,
                                   s.batch_size, s.precision, backend=s.backend)
    with Arrivals(s.folder, s.patterns, s.recursive, s.settle, s.give_up, s.poll,
                  s.done) as found:
        backlog = {name: k for k, name in enumerate(found.backlog, start=1)}
        how = f"polling every {s.poll:g} s" if s.poll else "file-system events"
        yield Status(f"watching {s.folder} ({how}); {len(backlog)} frames there to score first")
        while True:
            if cancel is not None and cancel.is_set():
                run.stopped_by = "cancel"
                return run
            for name in found.take_gone():
                yield FrameSkipped(name)
            for name, path in found.ready():
                frame = _score_file(found, name, path, score_settings, s, scorer)
                if frame is None:
                    continue  # not readable yet, or written again while it was read
                found.finished(name)
                if name in backlog:
                    frame.backlog = (backlog[name], len(backlog))
                run.errors += frame.error is not None
                run.scored += frame.error is None
                run.rejected += frame.rejected
                yield frame
                if cancel is not None and cancel.is_set():
                    break
            if s.until_idle is not None and found.idle_for() >= s.until_idle:
                run.stopped_by = "idle"
                return run
            found.wait(TICK_S)


def watch_to_table(settings: WatchSettings, cancel: threading.Event | None = None,
                   table: CsvStream | None = None
                   ) -> Generator[Status | FrameScored | FrameSkipped, None, WatchRun]:
    """:func:`watch_folder`, each frame's rows appended to ``table`` (its header
    :func:`~napari_semfocus.io.tables.watch_columns`) and flushed before the frame is yielded;
    the table is closed when the watch stops, however it stops."""
    gated = settings.gate is not None
    watch = watch_folder(settings, cancel)
    completed = False
    try:
        update = next(watch)
        while True:
            if table is not None and isinstance(update, FrameScored):
                table.write(update.csv(gated))
            yield update
            update = next(watch)
    except StopIteration as stop:
        completed = True
        return stop.value
    finally:
        watch.close()
        if table is not None:
            table.close(completed=completed)


def retake_rows(rows: Iterable[dict]) -> list[dict]:
    """The rows of a watch's table whose frame must be retaken: rejected, or without a score."""
    return [r for r in rows if r.get("accepted") == "0" or r.get("error")]


def write_retake(path, columns: tuple[str, ...], rows: Iterable[dict]) -> int:
    """Write the retake list of the table ``rows`` (``columns``) to ``path``; its row count."""
    retake = retake_rows(rows)
    write_text(path, csv_text(columns, ([r.get(c, "") for c in columns] for r in retake)))
    return len(retake)


def _score_file(found: Arrivals, name: str, path: str, score_settings: ScoreSettings,
                s: WatchSettings, scorer) -> FrameScored | None:
    """Read and score one settled file: a :class:`FrameScored` (with an error when it cannot
    be scored), or None to try again later."""
    reason = found.broken_reason(name)
    if reason is not None:  # handed on although not whole: it stopped changing long ago
        return FrameScored(name, error=f"{name} {reason}.")
    try:
        image = FileInput(name, Path(path), s.magnification).load()
    except ImageReadError as exc:
        if not Path(path).exists() or not found.retry(name):
            return None  # deleted (Arrivals reports it), or tried again later
        return FrameScored(name, error=str(exc))
    except SemFocusError as exc:  # e.g. nonsense in the metadata's magnification
        return FrameScored(name, error=str(exc))
    if not found.unchanged(name):
        return None  # written again while it was read: it settles anew
    try:
        ran = run_to_end(score_images(replace(score_settings, images=(image,)), announce=False))
        (res,) = ran.images
        frame = FrameScored(name, res.rows())
        if s.gate is not None:
            frame.accepted = s.gate.decide(res.scores, res.worst_region)
        if s.keep_pixels:
            frame.pixels = np.asarray(image.data)
        if s.focus_map:
            first = image.frames()
            first = first[0] if first.ndim == (4 if image.rgb else 3) else first
            frame.fmap = scorer.focus_map(first, image.magnification,
                                          exclude_bottom_rows=image.databar_rows, name=name)
    except SemFocusError as exc:
        return FrameScored(name, error=str(exc))
    except Exception as exc:  # the watch goes on: the frame gets a row saying why
        return FrameScored(name, error=f"{name}: scoring failed ({type(exc).__name__}: {exc}).")
    return frame

