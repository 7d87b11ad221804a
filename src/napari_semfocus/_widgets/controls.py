"""Qt pieces shared by the dock widgets: :class:`WorkerMixin` (the Run / Cancel controls, the
progress bar and the worker thread behind them, the scrolled content) and :class:`ThemedPlot` (a matplotlib canvas in napari's dark or light
colours)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from napari.qt.threading import thread_worker
from qtpy.QtWidgets import QDockWidget, QHBoxLayout, QProgressBar, QPushButton, QVBoxLayout

from ..errors import SemFocusError
from ..io.files import write_text
from ..progress import Progress, Status
from ..runtime import import_torch_quietly
from .forms import (
    ask_save_path,
    fit_scroll_width,
    note_label,
    notify_error,
    plot_colors,
    scroll_wrapped,
    with_tip,
)

PLUGIN_NAME = "napari-semfocus"


def _quiet_job(job: Callable, settings, cancel):
    """The worker thread's generator: torch imported without blocking the window, then ``job``."""
    import_torch_quietly()
    return (yield from job(settings, cancel))


class WorkerMixin:
    """Run / cancel plumbing shared by the dock widgets (mix in before ``QWidget``), with the
    builders of the run controls and the scroll area, and ``set_method``.

    The mixin holds ``worker`` (``None`` when idle) and the cancel flag. The widget provides
    ``method_combo``, the controls made by ``add_run_controls``, ``snapshot_settings()`` (raises
    :class:`SemFocusError` for bad input), ``_on_returned(result)``, and the class attributes
    below. The job is a generator function ``job(settings, cancel)`` (one of
    :mod:`napari_semfocus.jobs`) yielding ``Status`` / ``Progress`` updates; it runs in a
    ``napari.qt.threading`` worker and stops between steps once the ``threading.Event`` is set.

    Progress is shown in the widget's own bar and status line only, set from the worker's
    signals: nothing here processes Qt events re-entrantly (napari's activity-dock bars call
    ``QApplication.processEvents`` on every update, which repainted the canvas in the middle of a
    layer change and could crash napari). The worker imports torch quietly before its job
    (:func:`napari_semfocus.runtime.import_torch_quietly`).
    """

    #: the generator function run in the worker thread, ``job(settings, cancel)``
    worker_job: Callable
    #: start of the status line when the job raised something other than SemFocusError
    failure_text: str = "Failed"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.worker = None
        self._cancel = threading.Event()

    # -- construction (call from the widget's ``_build``) --
    def add_run_controls(self, col, run_text: str, run_tip: str, cancel_tip: str) -> None:
        """Add Run / Cancel buttons, the progress bar and the status line to layout ``col``."""
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
        self.status_label = note_label("Ready.", "What the widget is doing.")
        col.addWidget(self.status_label)
        self.run_button.clicked.connect(self.run)
        self.cancel_button.clicked.connect(self.cancel)

    def set_scrolled_content(self, content, min_width: int) -> None:
        """Put ``content`` into the widget inside a vertical-only scroll area
        (``self.scroll_area``, sized to the content in ``showEvent``)."""
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        self.scroll_area = scroll_wrapped(content)
        outer.addWidget(self.scroll_area)
        self.setMinimumWidth(min_width)

    def showEvent(self, event) -> None:  # noqa: N802 (Qt naming)
        super().showEvent(event)
        fit_scroll_width(self.scroll_area)
        short_dock_title(self)

    def set_method(self, method: str) -> None:
        """``"model"`` or the name of a classical measure (``measures.MEASURES``)."""
        index = self.method_combo.findData(method)
        if index < 0:
            raise ValueError(f"unknown method {method!r}")
        self.method_combo.setCurrentIndex(index)

    # -- running --
    def _progress_text(self, update) -> str:
        """Status line for a ``Progress`` update."""
        return f"{update.name}: {update.done}/{update.total}"

    def _on_status(self, update) -> None:
        """Hook for a ``Status`` update (after the status line is set)."""

    def on_run_started(self, settings) -> None:
        """Hook called on the UI thread when a run starts with ``settings`` (e.g. to clear the
        previous run's results)."""

    @property
    def is_running(self) -> bool:
        return self.worker is not None

    def run(self) -> None:
        """Start the job in a worker thread (no-op while one is running)."""
        self.start_with(self.snapshot_settings)

    def start_with(self, make_settings: Callable[[], object]) -> None:
        """Start the job on the settings ``make_settings()`` reads (on the UI thread); its
        :class:`SemFocusError` is an error notification. No-op while a job runs."""
        if self.is_running:
            return
        try:
            settings = make_settings()
        except SemFocusError as exc:
            notify_error(str(exc))
            return
        self._cancel = threading.Event()
        self.on_run_started(settings)
        # errors are shown by _on_error as one-sentence notifications, not re-raised
        job = thread_worker(_quiet_job, start_thread=False, ignore_errors=True)
        self.worker = job(type(self).worker_job, settings, self._cancel)
        self.worker.yielded.connect(self._on_update)
        self.worker.returned.connect(self._on_returned)
        self.worker.errored.connect(self._on_error)
        self.worker.finished.connect(self._on_finished)
        self.run_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.progress_bar.setValue(self.progress_bar.minimum())
        self.status_label.setText("Starting…")
        self.worker.start()

    def cancel(self) -> None:
        """Ask the running worker to stop after its current step."""
        if self.worker is not None:
            self._cancel.set()
            self.status_label.setText("Cancelling…")

    def _on_update(self, update) -> None:
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

    # -- exports --
    def save_text(self, path, text: str, caption: str, default: str, file_filter: str,
                   what: str) -> Path | None:
        """Write ``text`` to ``path`` (asks for a file when ``None``) and say "<what> written to
        <path>." on the status line; returns the path (None when cancelled)."""
        path = ask_save_path(self, path, caption, default, file_filter)
        if path is not None:
            write_text(path, text)
            self.status_label.setText(f"{what} written to {path}.")
        return path


def short_dock_title(widget) -> None:
    """Title the dock holding ``widget`` by the widget's own name: napari names a plugin's dock
    "<widget> (napari-semfocus)", which tabbed docks cut to "Score focus (na…". The dock's own
    title bar and napari's Window menu keep the full name."""
    dock = enclosing_dock(widget)
    if dock is not None:
        dock.setWindowTitle(dock.windowTitle().removesuffix(f" ({PLUGIN_NAME})"))


def enclosing_dock(widget):
    """The QDockWidget holding ``widget`` (None when it is not docked)."""
    dock = widget.parentWidget()
    while dock is not None and not isinstance(dock, QDockWidget):
        dock = dock.parentWidget()
    return dock


class ThemedPlot:
    """A matplotlib figure with one axes on a Qt canvas, in napari's dark or light colours
    (``_fg`` / ``_bg``)."""

    def __init__(self, dark: bool, height: float, min_height: int):
        self._fg, self._bg = plot_colors(dark)
        # fixed margins: matplotlib's tight layout measured every label on each redraw, about
        # 60 % of a redraw's time on the UI thread
        self.figure = Figure(figsize=(3.4, height), dpi=100, facecolor=self._bg)
        self.figure.subplots_adjust(left=0.19, right=0.97, bottom=0.2, top=0.95)
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setMinimumHeight(min_height)
        self.axes = self.figure.add_subplot(111)

    def _style(self, xlabel: str, ylabel: str) -> None:
        """Colours of the axes, ticks and labels."""
        ax = self.axes
        ax.set_facecolor(self._bg)
        for spine in ax.spines.values():
            spine.set_color(self._fg)
        ax.tick_params(colors=self._fg, labelsize=8)
        ax.set_xlabel(xlabel, color=self._fg, fontsize=9)
        ax.set_ylabel(ylabel, color=self._fg, fontsize=9)

    def _legend(self, **kwargs) -> None:
        legend = self.axes.legend(fontsize=7, facecolor=self._bg, edgecolor=self._fg, **kwargs)
        for text in legend.get_texts():
            text.set_color(self._fg)
