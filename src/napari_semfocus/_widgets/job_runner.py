"""Running a job from a dock widget: :class:`JobRunner` (the Run / Cancel controls, the
progress bar and status line, and the ``napari.qt.threading`` worker behind them)."""

from __future__ import annotations

import threading
from collections.abc import Callable

from napari.qt.threading import thread_worker
from qtpy.QtWidgets import QHBoxLayout, QProgressBar, QPushButton

from ..errors import SemFocusError
from ..progress import Progress, Status
from ..runtime import import_torch_quietly
from .forms import note_label, notify_error, with_tip


def _quiet_job(job: Callable, settings, cancel):
    """The worker thread's generator: torch imported without blocking the window, then ``job``."""
    import_torch_quietly()
    return (yield from job(settings, cancel))


class JobRunner:
    """Run / cancel plumbing shared by the dock widgets (mix in before :class:`.dock.PluginDock`):
    the Run / Cancel buttons, the progress bar and status line, and the worker thread behind them.

    The mixin holds ``worker`` (``None`` when idle) and the cancel flag. The widget provides
    the controls made by ``add_run_controls``, ``snapshot_settings()`` (raises
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
