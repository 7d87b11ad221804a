"""Helpers shared by the dock widgets: which layers can be scored, what their metadata says,
the plain settings snapshot handed to worker threads, notifications, small Qt builders, and the
run / cancel plumbing of a worker thread (:class:`WorkerMixin`).

Nothing here does numerical work; the worker side (``_score_job``) never touches Qt.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..errors import SemFocusError

MODEL_METHOD = "model"


# ---- layers and their metadata (no Qt) ---------------------------------------------------
def image_layers(viewer) -> list:
    """The viewer's Image layers, in layer-list order."""
    from napari.layers import Image

    return [layer for layer in viewer.layers if isinstance(layer, Image)]


def layer_magnification(layer) -> float | None:
    """Magnification the SEM reader or the sample data put into ``layer.metadata``."""
    value = (layer.metadata or {}).get("magnification")
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if np.isfinite(value) and value > 0 else None


def layer_databar_rows(layer) -> int:
    """Rows of the data bar at the bottom of the layer's frames (0 when none is known)."""
    try:
        return max(0, int((layer.metadata or {}).get("databar_rows") or 0))
    except (TypeError, ValueError):
        return 0


def layer_source_path(layer) -> str | None:
    """The file a layer was read from, where known."""
    path = (layer.metadata or {}).get("path")
    if not path:
        source = getattr(layer, "source", None)
        path = getattr(source, "path", None)
    return str(path) if path else None


def parse_magnification(text: str) -> float | None:
    """'5000', '5,000', '5k', '5.72 K X' -> float; '' -> None; raises ValueError otherwise."""
    from ..sem_metadata import parse_zeiss_magnification

    text = (text or "").strip().replace(",", "").replace("×", "x")
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        value = parse_zeiss_magnification(text if text.lower().endswith("x") else text + " x")
    if value is None or not np.isfinite(value) or value <= 0:
        raise ValueError(text)
    return float(value)


# ---- the settings snapshot handed to the worker -------------------------------------------
@dataclass(frozen=True)
class LayerInput:
    """One layer to score, captured on the UI thread (the array is not copied)."""

    name: str
    data: object  # the layer's array (numpy, dask, ...)
    magnification: float | None
    databar_rows: int
    rgb: bool = False
    path: str | None = None

    @property
    def n_slices(self) -> int:
        shape = tuple(np.shape(self.data))
        spatial = len(shape) - (1 if self.rgb else 0)
        return int(np.prod(shape[: spatial - 2])) if spatial > 2 else 1


@dataclass(frozen=True)
class ScoreSettings:
    """Everything a scoring run needs, read from the widget once before the worker starts."""

    layers: tuple[LayerInput, ...]
    method: str = MODEL_METHOD  # "model" or a name in measures.MEASURES
    checkpoint: str | None = None  # None = the shipped default model
    device: str = "auto"
    region: str = "whole"
    batch_size: int = 32


@dataclass
class LayerScores:
    """Scores of one layer, one per slice (one for a 2-D image)."""

    layer_name: str
    scores: np.ndarray
    magnification: float | None
    databar_rows: int
    path: str | None = None

    @property
    def best_index(self) -> int:
        return int(np.argmax(self.scores))


@dataclass
class RunResult:
    """What a finished run returns to the UI thread."""

    settings: ScoreSettings
    layers: list[LayerScores] = field(default_factory=list)
    model_name: str = ""
    device_name: str = ""
    cancelled: bool = False


# ---- notifications -------------------------------------------------------------------------
def notify_error(message: str) -> None:
    from napari.utils.notifications import show_error

    show_error(message)


def notify_info(message: str) -> None:
    from napari.utils.notifications import show_info

    show_info(message)


# ---- small Qt builders ---------------------------------------------------------------------
def with_tip(widget, tip: str):
    """Set ``tip`` as the tooltip of ``widget`` and return the widget."""
    widget.setToolTip(tip)
    return widget


def form_row(layout, label: str, widget, tip: str) -> None:
    """Add ``label: widget`` to a QFormLayout, both carrying the tooltip."""
    from qtpy.QtWidgets import QLabel

    lab = with_tip(QLabel(label), tip)
    layout.addRow(lab, with_tip(widget, tip))


def scroll_wrapped(content):
    """A QScrollArea around ``content`` that scrolls vertically on small screens."""
    from qtpy.QtCore import Qt
    from qtpy.QtWidgets import QFrame, QScrollArea

    area = QScrollArea()
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    area.setWidget(content)
    return area


def fit_scroll_width(area) -> None:
    """Make a scroll area (no horizontal scrolling) wide enough for its content, so that nothing
    is cut off at the right; call it once styles are applied (e.g. from ``showEvent``).

    The widget holding the area gets at least that minimum width too: an explicit, smaller
    ``setMinimumWidth`` on it would otherwise let its dock stay narrower than the area."""
    content = area.widget()
    width = content.minimumSizeHint().width() + area.verticalScrollBar().sizeHint().width()
    width += 2 * area.frameWidth() + 2
    area.setMinimumWidth(width)
    owner = area.parentWidget()
    if owner is not None and owner.minimumWidth() < width:
        owner.setMinimumWidth(width)


def compact_combo(combo, chars: int = 12):
    """Let a combo box shrink below its longest item (it shows the item elided)."""
    from qtpy.QtWidgets import QComboBox

    combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    combo.setMinimumContentsLength(chars)
    return combo


def format_magnification(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def names(items: Sequence) -> str:
    return ", ".join(f"'{n}'" for n in items)


# ---- the worker thread behind a dock widget -------------------------------------------------
def ask_save_path(parent, path, caption: str, default: str, file_filter: str):
    """``path`` as a Path, or the file the user picks in a save dialog (None when cancelled)."""
    from pathlib import Path

    if path is None:
        from qtpy.QtWidgets import QFileDialog

        path, _ = QFileDialog.getSaveFileName(parent, caption, default, file_filter)
        if not path:
            return None
    return Path(path)


def write_text_file(path, text: str) -> None:
    """Write an export atomically (temp file + rename), like every file the core writes."""
    from pathlib import Path

    from ..checkpoint import atomic_write

    atomic_write(Path(path), lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


class WorkerMixin:
    """Run / cancel plumbing shared by the dock widgets (mix in before ``QWidget``), with the
    builders of the run controls and the scroll area, and ``set_method``.

    The widget provides ``worker`` (``None`` when idle), ``method_combo``, the controls made by
    ``_add_run_controls``, ``snapshot_settings()`` (raises
    :class:`SemFocusError` for bad input), ``_on_returned(result)``, and the class attributes
    below. The job is a generator function ``job(settings, cancel)`` (``_score_job`` /
    ``_map_job``) yielding ``Status`` / ``Progress`` updates; it runs in a
    ``napari.qt.threading`` worker and stops between steps once the ``threading.Event`` is set.
    """

    #: the generator function run in the worker thread, ``job(settings, cancel)``
    worker_job: Callable
    #: start of the status line when the job raised something other than SemFocusError
    failure_text: str = "Failed"

    # -- construction (call from the widget's ``_build``) --
    def _add_run_controls(self, col, run_text: str, run_tip: str, cancel_tip: str) -> None:
        """Add Run / Cancel buttons, the progress bar and the status line to layout ``col``."""
        from qtpy.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton

        buttons = QHBoxLayout()
        self.run_button = with_tip(QPushButton(run_text), run_tip)
        self.cancel_button = with_tip(QPushButton("Cancel"), cancel_tip)
        self.cancel_button.setEnabled(False)
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.cancel_button)
        col.addLayout(buttons)
        self.progress_bar = with_tip(QProgressBar(), "Progress of the current run.")
        self.progress_bar.setRange(0, 1000)
        self.progress_bar.setValue(0)
        self.progress_bar.setFormat("%p%")
        col.addWidget(self.progress_bar)
        self.status_label = with_tip(QLabel("Ready."), "What the widget is doing.")
        self.status_label.setWordWrap(True)
        col.addWidget(self.status_label)
        self.run_button.clicked.connect(self.run)
        self.cancel_button.clicked.connect(self.cancel)

    def _set_scrolled_content(self, content, min_width: int) -> None:
        """Put ``content`` into the widget inside a vertical-only scroll area
        (``self.scroll_area``, sized to the content in ``showEvent``)."""
        from qtpy.QtWidgets import QVBoxLayout

        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        self.scroll_area = scroll_wrapped(content)
        outer.addWidget(self.scroll_area)
        self.setMinimumWidth(min_width)

    def showEvent(self, event) -> None:  # noqa: N802 (Qt naming)
        super().showEvent(event)
        fit_scroll_width(self.scroll_area)

    def set_method(self, method: str) -> None:
        """``"model"`` or the name of a classical measure (``measures.MEASURES``)."""
        index = self.method_combo.findData(method)
        if index < 0:
            raise ValueError(f"unknown method {method!r}")
        self.method_combo.setCurrentIndex(index)

    # -- running --
    def _progress_text(self, update) -> str:
        """Status line for a ``Progress`` update."""
        return f"{update.layer_name}: {update.done}/{update.total}"

    def _on_status(self, update) -> None:
        """Hook for a ``Status`` update (after the status line is set)."""

    @property
    def is_running(self) -> bool:
        return self.worker is not None

    def run(self) -> None:
        """Start the job in a worker thread (no-op while one is running)."""
        if self.is_running:
            return
        try:
            settings = self.snapshot_settings()
        except SemFocusError as exc:
            notify_error(str(exc))
            return
        from napari.qt.threading import thread_worker

        self._cancel = threading.Event()
        # errors are shown by _on_error as one-sentence notifications, not re-raised
        job = thread_worker(type(self).worker_job, start_thread=False, ignore_errors=True)
        self.worker = job(settings, self._cancel)
        self.worker.yielded.connect(self._on_update)
        self.worker.returned.connect(self._on_returned)
        self.worker.errored.connect(self._on_error)
        self.worker.finished.connect(self._on_finished)
        self.run_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.progress_bar.setValue(0)
        self.status_label.setText("Starting…")
        self.worker.start()

    def cancel(self) -> None:
        """Ask the running worker to stop after its current step."""
        if self.worker is not None:
            self._cancel.set()
            self.status_label.setText("Cancelling…")

    def _on_update(self, update) -> None:
        from ._score_job import Progress, Status

        if isinstance(update, Status):
            self.status_label.setText(update.text[:1].upper() + update.text[1:])
            self._on_status(update)
        elif isinstance(update, Progress):
            self.progress_bar.setValue(int(round(1000 * update.fraction)))
            self.status_label.setText(self._progress_text(update))

    def _on_error(self, exc: Exception) -> None:
        if isinstance(exc, SemFocusError):
            message = str(exc)
        else:
            message = f"{self.failure_text}: {type(exc).__name__}: {exc}"
        self.status_label.setText(message)
        notify_error(message)

    def _on_finished(self) -> None:
        self.worker = None
        self.run_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
