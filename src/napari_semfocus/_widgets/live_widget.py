"""Live QC: the dock widget that scores the frames of a folder while the microscope writes them.

Thin over :func:`napari_semfocus.jobs.watch.watch_to_table` (what ``semfocus watch`` runs): the
fields are read once into :class:`~napari_semfocus.jobs.watch.WatchSettings`, the watch runs in
a ``napari.qt.threading`` worker (``JobRunner``: Start / Stop, the backlog's progress in the
widget's bar), writing the table as ``semfocus watch --output`` does (an existing one is
continued: its frames are not scored again and are listed first). Each frame it yields is shown
on the UI thread: the newest frame in one layer updated in place, or a stack that grows (the
user's choice); its focus map (optional); a row of the frame table (score, worst region, accept
or retake); a point on the score plot with the gate's threshold; a rejected or unreadable frame
in the retake list (a click on it, or on its table row, shows it) and as a napari warning. Save
retake list writes what ``--retake`` writes; Report writes the acquisition report
(:func:`napari_semfocus.jobs.report.build_report`) in another worker. Closing the widget (its
dock, or the viewer) stops the watch.

Public API (tests, scripts)::

    w = LiveQCWidget(viewer); w.set_folder(path); w.set_gate(gate_file); w.run()
    ...; w.rows; w.rejected_names(); w.show_frame(name); w.cancel()
    w.save_retake(path); w.write_report(path)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from napari.qt.threading import thread_worker
from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ..errors import SemFocusError
from ..gate.file import Gate, resolve_checkpoint
from ..io.csv_stream import CsvStream
from ..io.files import write_text
from ..io.images import read_image
from ..io.tables import watch_columns
from ..jobs.report import ReportSettings, build_report
from ..jobs.watch import (
    FrameScored,
    FrameSkipped,
    WatchRun,
    WatchSettings,
    check_folder,
    watch_to_table,
    write_retake,
)
from ..scale import parse_magnification
from .dock import PluginDock
from .forms import (
    ask_save_path,
    browse_into,
    combo_box,
    dark_theme,
    double_spin_box,
    form_row,
    note_label,
    notify_error,
    notify_warning,
    row_widget,
    with_tip,
)
from .job_runner import JobRunner
from .live_plot import ScoreTimePlot
from .live_table import ACCEPTED, RETAKE, UNREADABLE, FrameTable

FRAME_LAYER, STACK_LAYER = "Live QC: newest frame", "Live QC: frames"
MAP_LAYER, CHOSEN_LAYER = "Live QC: focus map", "Live QC: chosen frame"
ONE_LAYER, STACK = "newest frame (one layer)", "growing stack"
GATE_FILES = "Gate files (*.json);;All files (*)"
CSV_FILES = "CSV files (*.csv)"
USER_ROLE = Qt.ItemDataRole.UserRole


def live_job(job: tuple[WatchSettings, CsvStream | None], cancel):
    """The worker's job: the watch of ``job``'s settings, its table (or None) written as it goes."""
    settings, table = job
    return (yield from watch_to_table(settings, cancel, table))


class LiveQCWidget(JobRunner, PluginDock):
    """Dock widget: watch a folder, score each new frame, show it, flag the ones to retake."""

    worker_job = staticmethod(live_job)
    failure_text = "Live QC failed"

    def __init__(self, napari_viewer):
        super().__init__(napari_viewer)
        self.rows: list[dict] = []  # the table's rows (watch columns), as they come
        self.gate: Gate | None = None
        self.settings: WatchSettings | None = None
        self.last_run: WatchRun | None = None
        self.report_worker = None
        self._columns = watch_columns(False)
        self._slices: dict[str, int] = {}  # name -> slice of the growing stack
        self._build()
        # taken out of its dock, or the viewer closed: the watch stops (the cancel flag of the
        # run, whichever is current)
        self.links.when_released(lambda: self._cancel.set())

    # ---- construction ----------------------------------------------------------------------
    def _build(self) -> None:
        content = QWidget()
        col = QVBoxLayout(content)
        form = QFormLayout()
        self.folder_edit = QLineEdit()
        self.folder_edit.setPlaceholderText("the folder the microscope writes into")
        self.folder_button = with_tip(QPushButton("Browse…"), "Choose the folder to watch.")
        form_row(form, "Folder", row_widget(self.folder_edit, self.folder_button), (
            "Frames already there are scored first, then each new TIFF, PNG or JPEG once it "
            "is completely written (docs/live-qc.md)."))
        self.gate_edit = QLineEdit()
        self.gate_edit.setPlaceholderText("optional: gate file (.json)")
        self.gate_button = with_tip(QPushButton("Browse…"), "Choose a gate file.")
        form_row(form, "Gate", row_widget(self.gate_edit, self.gate_button), (
            "A gate from the Acceptance gate widget or 'semfocus gate calibrate': each frame "
            "is accepted or marked for retake by its rule."))
        self.magnification_edit = QLineEdit()
        self.magnification_edit.setPlaceholderText("from each file's metadata")
        form_row(form, "Magnification", self.magnification_edit, (
            "Magnification of every frame (e.g. 5000 or 5k); empty: each file's SEM metadata."))
        self.show_combo = combo_box((ONE_LAYER, STACK), chars=18)
        form_row(form, "Show", self.show_combo, (
            "The newest frame in one layer updated in place, or every frame in a stack that "
            "grows (memory grows with it)."))
        self.map_check = with_tip(QCheckBox("Focus map of the newest frame"), (
            "Also map the newest frame tile by tile (slower: about one more scoring pass)."))
        form.addRow(self.map_check)
        self.poll_spin = double_spin_box(0.0, 60.0, 0.0, 0.5)
        form_row(form, "Poll (s)", self.poll_spin, (
            "0: file-system events. On a network share where they do not arrive, look for new "
            "files every this many seconds."))
        self.table_edit = QLineEdit()
        self.table_edit.setPlaceholderText("optional: scores CSV (continued if it exists)")
        form_row(form, "Table", self.table_edit, (
            "Write the scores as 'semfocus watch --output' does; an existing table of the same "
            "watch is continued (its frames are not scored again)."))
        col.addLayout(form)
        self.add_run_controls(col, "Start", "Start watching the folder.",
                              "Stop watching (the table stays complete).")
        self.cancel_button.setText("Stop")

        results = QGroupBox("Frames")
        res = QVBoxLayout(results)
        self.plot = ScoreTimePlot(dark=dark_theme())
        with_tip(self.plot.canvas, "The score of each frame as it arrives; the dashed line is "
                                   "the gate's threshold (red: retake).")
        res.addWidget(self.plot.canvas)
        self.frame_table = with_tip(FrameTable(self.show_frame), (
            "Every frame scored, newest at the bottom: click one to show it."))
        res.addWidget(self.frame_table)
        res.addWidget(note_label("Retake (rejected or unreadable):"))
        self.rejected_list = with_tip(QListWidget(), "Frames to retake: click one to show it.")
        self.rejected_list.setMinimumHeight(60)
        self.rejected_list.setMaximumHeight(80)
        res.addWidget(self.rejected_list)
        self.retake_button = with_tip(QPushButton("Save retake list…"), (
            "Write the frames to retake as a CSV (the rows 'semfocus watch --retake' writes)."))
        self.report_button = with_tip(QPushButton("Report…"), (
            "Write the acquisition report: one HTML file (summary, score over time, histogram, "
            "the rejected and lowest-scoring frames with their focus maps)."))
        res.addWidget(row_widget(self.retake_button, self.report_button))
        col.addWidget(results)
        col.addStretch(1)
        self.set_scrolled_content(content, 340)

        self.folder_button.clicked.connect(self._browse_folder)
        self.gate_button.clicked.connect(lambda: browse_into(
            self, self.gate_edit, "Gate file", GATE_FILES))
        self.rejected_list.itemClicked.connect(lambda item: self.show_frame(item.data(USER_ROLE)))
        self.retake_button.clicked.connect(lambda: self.save_retake())
        self.report_button.clicked.connect(lambda: self.write_report())

    def _browse_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder to watch", self.folder_edit.text())
        if folder:
            self.folder_edit.setText(folder)

    # ---- settings ----------------------------------------------------------------------------
    def set_folder(self, path) -> None:
        self.folder_edit.setText(str(path))

    def set_gate(self, path) -> None:
        self.gate_edit.setText("" if path is None else str(path))

    def snapshot_settings(self) -> tuple[WatchSettings, CsvStream | None]:
        """Read every field once (on the UI thread): the watch's settings and its table (None
        without one); raises SemFocusError for bad input."""
        folder = self.folder_edit.text().strip()
        if not folder:
            raise SemFocusError("No folder chosen: choose the folder the microscope writes into.")
        check_folder(folder)
        gate_text = self.gate_edit.text().strip()
        gate = Gate.load(gate_text) if gate_text else None
        checkpoint = resolve_checkpoint(gate) if gate is not None else None
        magnification = parse_magnification(self.magnification_edit.text())
        columns = watch_columns(gate is not None)
        table_text = self.table_edit.text().strip()
        table = None
        if table_text:
            table = CsvStream(table_text, ",".join(columns), None, resume=True, option="table")
        settings = WatchSettings(
            folder, magnification=magnification,
            checkpoint=None if checkpoint is None else str(checkpoint), gate=gate,
            poll=float(self.poll_spin.value()) or None, keep_pixels=True,
            focus_map=self.map_check.isChecked(),
            done=() if table is None else tuple(table.kept))
        return settings, table

    def on_run_started(self, settings) -> None:
        """Clear the previous watch's results; list a continued table's rows first."""
        self.settings, table = settings
        self.gate, self._columns, self._slices = self.settings.gate, watch_columns(
            self.settings.gate is not None), {}
        gate = self.gate
        self.plot.reset(None if gate is None else gate.threshold,
                        "focus score" if gate is None else gate.rule_label)
        self.frame_table.clear_rows()
        self.rejected_list.clear()
        self.rows = []
        for row in [] if table is None else table.kept_rows():
            self._add_row(row)

    # ---- frames as they come ----------------------------------------------------------------
    def _on_update(self, update) -> None:
        if isinstance(update, FrameScored):
            self._show_frame(update)
        elif isinstance(update, FrameSkipped):
            self.status_label.setText(f"{update.name} was {update.reason}; skipped.")
        else:
            super()._on_update(update)

    def _show_frame(self, frame: FrameScored) -> None:
        k, n = frame.backlog or (1, 1)
        self.progress_bar.setValue(int(1000 * k / n))
        self.status_label.setText(frame.lines()[-1].replace(frame.name, Path(frame.name).name))
        for cells in frame.cells(self.gate is not None):
            self._add_row(dict(zip(self._columns, cells, strict=True)))
        if frame.error is not None:
            notify_warning(f"Retake: {frame.error}")
            return
        if frame.pixels is not None:
            self._show_pixels(frame.name, frame.pixels)
            frame.pixels = None  # the layer holds them now
        if frame.fmap is not None:
            self._put_layer(MAP_LAYER, frame.fmap.scores, colormap="magma", opacity=0.5,
                            **frame.fmap.layer_kwargs())
        if frame.rejected:
            g = self.gate
            value = min(float(r[g.rule_score]) for r in self.rows if r["path"] == frame.name)
            notify_warning(f"Retake: {frame.name} ({g.rule_label} {value:.2f}; the gate accepts "
                           f"{g.rule_score} >= {g.threshold:.2f}).")

    def _add_row(self, row: dict) -> None:
        """One row of the watch's table into the results: table, plot, retake list."""
        self.rows.append(row)
        score, worst = _number(row["score"]), _number(row["worst_region"])
        if row["error"]:
            decision = UNREADABLE
        elif self.gate is None:
            decision = ""
        else:
            decision = ACCEPTED if row["accepted"] == "1" else RETAKE
        self.frame_table.add(row["path"], score, worst, decision)
        if score is not None:
            plotted = score if self.gate is None else _number(row[self.gate.rule_score])
            self.plot.add(plotted, None if self.gate is None else decision == ACCEPTED)
        if decision in (RETAKE, UNREADABLE) and row["path"] not in self.rejected_names():
            shown = "unreadable" if decision == UNREADABLE else f"{plotted:.2f}"
            item = QListWidgetItem(f"{Path(row['path']).name}   {shown}")
            item.setData(USER_ROLE, row["path"])
            item.setToolTip(row["error"] or row["path"])
            self.rejected_list.addItem(item)

    def _show_pixels(self, name: str, pixels: np.ndarray) -> None:
        if self.show_combo.currentText() == STACK and pixels.ndim == 2:
            if STACK_LAYER in self.viewer.layers and \
                    self.viewer.layers[STACK_LAYER].data.shape[1:] == pixels.shape:
                layer = self.viewer.layers[STACK_LAYER]
                layer.data = np.concatenate([layer.data, pixels[None]])
            else:
                self._put_layer(STACK_LAYER, pixels[None])
            self._slices[name] = len(self.viewer.layers[STACK_LAYER].data) - 1
            self.viewer.dims.set_current_step(0, self._slices[name])
        else:
            self._put_layer(FRAME_LAYER, pixels)

    def _put_layer(self, name: str, data, **kwargs) -> None:
        """Layer ``name`` showing ``data``: updated in place when it exists, else added."""
        if name in self.viewer.layers:
            layer = self.viewer.layers[name]
            layer.data = data
            for key in ("scale", "translate"):
                if key in kwargs:
                    setattr(layer, key, kwargs[key])
            if "contrast_limits" not in kwargs:
                layer.reset_contrast_limits()
        else:
            self.viewer.add_image(data, name=name, **kwargs)

    def rejected_names(self) -> list[str]:
        """The files in the retake list, in the order they came."""
        return [self.rejected_list.item(i).data(USER_ROLE)
                for i in range(self.rejected_list.count())]

    def show_frame(self, name: str) -> None:
        """Show frame ``name``: its slice of the growing stack, or read into its own layer."""
        if name in self._slices and STACK_LAYER in self.viewer.layers:
            self.viewer.dims.set_current_step(0, self._slices[name])
            return
        try:
            self._put_layer(CHOSEN_LAYER, read_image(name).data)
        except SemFocusError as exc:
            notify_error(str(exc))
            return
        layer = self.viewer.layers[CHOSEN_LAYER]
        layer.visible = True
        self.viewer.layers.selection.active = layer
        self.status_label.setText(f"Showing {Path(name).name} in '{CHOSEN_LAYER}' (above the "
                                  "newest frame: hide it to follow the watch again).")

    def _on_returned(self, result: WatchRun) -> None:
        self.last_run = result
        self.status_label.setText(f"Stopped: {result.scored} frames scored, {result.rejected} "
                                  f"to retake, {result.errors} unreadable.")

    # ---- retake list and report --------------------------------------------------------------
    def save_retake(self, path=None) -> Path | None:
        """Write the retake list (the table's rejected or unreadable rows) to ``path`` (asks
        when None); returns the path (None when cancelled or nothing was scored)."""
        if not self.rows:
            notify_error("There are no scored frames yet: start a watch first.")
            return None
        path = ask_save_path(self, path, "Retake list", "retake.csv", CSV_FILES)
        if path is not None:
            count = write_retake(path, self._columns, self.rows)
            self.status_label.setText(f"Retake list ({count} frames) written to {path}.")
        return path

    def write_report(self, path=None):
        """Write the acquisition report of the frames so far to ``path`` (asks when None) in a
        worker thread; returns the worker (None when there is nothing to report)."""
        if not self.rows or self.settings is None:
            notify_error("There are no scored frames to report yet: start a watch first.")
            return None
        path = ask_save_path(self, path, "Acquisition report", "acquisition-report.html",
                             "HTML files (*.html)")
        if path is None:
            return None
        s, run = self.settings, self.last_run
        model = None if run is None else {"name": run.model_name, "sha256": run.model_sha256}
        settings = ReportSettings(tuple(self.rows), s.folder, gate=s.gate,
                                  checkpoint=s.checkpoint, model=model, device=s.device,
                                  precision=s.precision)

        def done(page: str) -> None:
            write_text(path, page)
            self.status_label.setText(f"Report written to {path}.")

        worker = thread_worker(build_report, start_thread=False)(settings)
        worker.returned.connect(done)
        worker.errored.connect(lambda exc: notify_error(f"Report failed: {exc}"))
        worker.finished.connect(lambda: setattr(self, "report_worker", None))
        self.report_worker = worker
        self.status_label.setText("Writing the report…")
        worker.start()
        return worker


def _number(text: str) -> float | None:
    return float(text) if text else None
