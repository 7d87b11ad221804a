"""The Live QC dock widget in a real napari viewer (Qt; Xvfb on CI), against a writer process
(``tests/watch_writer.py``) that fills the watched folder as an acquisition does: a frame there
before the start (the backlog), frames written in chunks, with a pause, renamed into place, a
corrupt file and a file deleted half-written. Every good frame gets one row whose score is the
one ``semfocus score`` gives for the file; the blurred frames are marked for retake (table,
plot, retake list, a napari warning), the corrupt one as unreadable; a click shows a frame; the
retake list and the report are written; the window's event loop keeps running throughout (the
watch is in a worker thread). Stop ends the watch; Start again continues its table; closing the
widget's dock, or the viewer, stops a running watch; the growing stack and the focus map of the
newest frame are shown when chosen. A screenshot of the 1600 x 1000 window is
taken (live-qc.png, kept in docs/images/ by scripts/docs_images.sh)."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import napari.utils.notifications as notifications
import numpy as np
import pytest
from watchdog.observers.api import BaseObserver

from napari_semfocus._widgets.live_table import ACCEPTED, RETAKE, UNREADABLE
from napari_semfocus._widgets.live_widget import (
    CHOSEN_LAYER,
    FRAME_LAYER,
    MAP_LAYER,
    STACK,
    STACK_LAYER,
    LiveQCWidget,
)
from napari_semfocus.progress import Status

from ..helpers import (
    EventLoopTicks,
    check_screenshot,
    docked_viewer,
    needs_default_model,
    parse_csv,
    run_cli,
    synthetic_gate,
)
from ..watch_writer import BLURRED, MAGNIFICATION, frame

pytestmark = [pytest.mark.gui, needs_default_model]

SCREENSHOT = "live-qc.png"
TIMEOUT_MS = 240_000  # only against hangs: nothing here is timed
WRITER = Path(__file__).resolve().parents[1] / "watch_writer.py"
FIRST = ["f00.tif", "f01.tif", "f02.tif", "f03.tif", "bad.png", "f04.tif", "f05.tif"]
RED = "#d62728"


def write(folder: Path, phase: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(WRITER), str(folder), phase])


def observers() -> list[threading.Thread]:
    """The file-system observer threads alive (a watch in events mode runs one)."""
    return [t for t in threading.enumerate() if isinstance(t, BaseObserver)]


def start(widget, qtbot) -> None:
    """Start the watch and wait until it watches (the model loaded, the folder scanned)."""
    widget.run()
    texts: list[str] = []  # every status, even one the next frame's line replaced at once
    widget.worker.yielded.connect(lambda u: isinstance(u, Status) and texts.append(u.text))
    qtbot.waitUntil(lambda: any(t.startswith("watching") for t in texts) or
                    not widget.is_running, timeout=TIMEOUT_MS)
    assert widget.is_running, widget.status_label.text()


def test_live_qc_scores_flags_and_stops(make_napari_viewer, qtbot, tmp_path, capsys, errors,
                                        monkeypatch, screenshot_dir):
    warnings: list[str] = []
    monkeypatch.setattr(notifications, "show_warning", lambda msg, *a, **k: warnings.append(msg))
    acq, table = tmp_path / "acq", tmp_path / "scores.csv"
    acq.mkdir()
    subprocess.run([sys.executable, str(WRITER), str(acq), "backlog"], check=True)
    viewer, widget = docked_viewer(make_napari_viewer, LiveQCWidget, "Live QC", (), (1600, 1000))
    widget.set_folder(acq)
    widget.set_gate(synthetic_gate(tmp_path / "gate.json"))
    widget.magnification_edit.setText(str(MAGNIFICATION))
    widget.table_edit.setText(str(table))
    with EventLoopTicks() as ticks:
        start(widget, qtbot)
        writer = write(acq, "live")
        qtbot.waitUntil(lambda: writer.poll() is not None and len(widget.rows) == len(FIRST),
                        timeout=TIMEOUT_MS)
    assert writer.returncode == 0
    assert len(ticks.ticks) > 50  # the event loop went on while frames were written and scored
    assert not errors, errors

    # each frame once (the deleted one never), the backlog first; scores as `semfocus score`
    names = [Path(r["path"]).name for r in widget.rows]
    assert names[0] == "f00.tif" and sorted(names) == sorted(FIRST)
    good = [r for r in widget.rows if not r["error"]]
    code, text, err = run_cli(["score", *(r["path"] for r in good), "--magnification",
                               str(MAGNIFICATION)], capsys)
    assert code == 0, err
    assert [(r["score"], r["worst_region"]) for r in good] == \
        [(r["score"], r["worst_region"]) for r in parse_csv(text)]
    decisions = {Path(r["path"]).name: r["accepted"] for r in good}
    assert decisions == {n: "0" if n in BLURRED else "1" for n in FIRST if n != "bad.png"}
    (bad,) = [r for r in widget.rows if r["error"]]
    assert Path(bad["path"]).name == "bad.png" and "bad.png" in bad["error"]

    # table, plot, retake list and warnings say the same
    expected = [UNREADABLE if n == "bad.png" else RETAKE if n in BLURRED else ACCEPTED
                for n in names]
    assert widget.frame_table.column_texts(0) == names
    assert widget.frame_table.column_texts(3) == expected
    qtbot.waitUntil(lambda: len(widget.plot.y) == len(good) and widget.plot.draws > 0)
    assert widget.plot.y == [float(r["score"]) for r in good]
    assert widget.plot.colours.count(RED) == len(BLURRED)
    to_retake = [n for n, e in zip(names, expected, strict=True) if e != ACCEPTED]
    assert [Path(n).name for n in widget.rejected_names()] == to_retake
    assert len(warnings) == len(to_retake) and all(w.startswith("Retake: ") for w in warnings)
    assert all(any(n in w for w in warnings) for n in to_retake)

    # the newest frame is shown; a click on the retake list or the table shows that frame
    newest = Path(good[-1]["path"]).name
    np.testing.assert_array_equal(viewer.layers[FRAME_LAYER].data, frame(newest))
    item = widget.rejected_list.item(to_retake.index("f02.tif"))
    widget.rejected_list.itemClicked.emit(item)
    np.testing.assert_array_equal(viewer.layers[CHOSEN_LAYER].data, frame("f02.tif"))
    widget.frame_table.cellClicked.emit(0, 1)
    np.testing.assert_array_equal(viewer.layers[CHOSEN_LAYER].data, frame("f00.tif"))

    # retake list and report
    widget.save_retake(tmp_path / "retake.csv")
    retake = parse_csv((tmp_path / "retake.csv").read_text())
    assert [Path(r["path"]).name for r in retake] == to_retake
    report = tmp_path / "report.html"
    worker = widget.write_report(report)
    qtbot.waitUntil(lambda: widget.report_worker is None, timeout=TIMEOUT_MS)
    assert worker is not None and report.is_file()
    page = report.read_text()
    assert "data:image/png;base64," in page and "f02.tif" in page and "f05.tif" in page

    # Stop: the table is complete; a frame written after it is not scored
    widget.cancel()
    qtbot.waitUntil(lambda: not widget.is_running, timeout=TIMEOUT_MS)
    run = widget.last_run
    assert (run.scored, run.rejected, run.errors, run.stopped_by) == (6, 2, 1, "cancel")
    assert parse_csv(table.read_text()) == widget.rows
    assert not observers()
    write(acq, "after").wait()
    qtbot.wait(1000)
    assert len(widget.rows) == len(FIRST)

    # Start again: the table is continued, only the frame that came while stopped is scored
    start(widget, qtbot)
    qtbot.waitUntil(lambda: len(widget.rows) == len(FIRST) + 1, timeout=TIMEOUT_MS)
    assert Path(widget.rows[-1]["path"]).name == "f06.tif"
    assert widget.frame_table.rowCount() == len(FIRST) + 1
    assert [Path(r["path"]).name for r in parse_csv(table.read_text())] == names + ["f06.tif"]

    viewer.layers[CHOSEN_LAYER].visible = False  # the newest frame shows again
    viewer.layers.selection.active = viewer.layers[FRAME_LAYER]
    viewer.reset_view()
    qtbot.wait(400)
    path = screenshot_dir / SCREENSHOT
    path.parent.mkdir(parents=True, exist_ok=True)
    check_screenshot(viewer.screenshot(str(path), canvas_only=False, flash=False), path)

    # closing the dock widget stops the running watch
    assert widget.is_running and observers()
    viewer.window.remove_dock_widget(widget)
    qtbot.waitUntil(lambda: not widget.is_running and not observers(), timeout=TIMEOUT_MS)
    assert widget.last_run.stopped_by == "cancel"
    assert not errors, errors


def test_stack_and_map_then_closing_the_viewer_stops_the_watch(make_napari_viewer, qtbot,
                                                                tmp_path, errors):
    acq = tmp_path / "acq"
    acq.mkdir()
    viewer, widget = docked_viewer(make_napari_viewer, LiveQCWidget, "Live QC")
    widget.set_folder(acq)
    widget.magnification_edit.setText(str(MAGNIFICATION))
    widget.show_combo.setCurrentText(STACK)
    widget.map_check.setChecked(True)
    start(widget, qtbot)
    for k in range(2):
        write(acq, "backlog" if k == 0 else "after").wait()
        qtbot.waitUntil(lambda k=k: len(widget.rows) == k + 1, timeout=TIMEOUT_MS)
    # a stack that grows, the slider on the newest frame, the newest frame's focus map
    stack = viewer.layers[STACK_LAYER].data
    np.testing.assert_array_equal(stack, np.stack([frame("f00.tif"), frame("f06.tif")]))
    assert viewer.dims.current_step[0] == 1
    fmap = viewer.layers[MAP_LAYER]
    assert fmap.data.ndim == 2 and np.nanmin(fmap.data) >= 0 and np.nanmax(fmap.data) <= 10
    assert FRAME_LAYER not in viewer.layers
    assert observers()
    viewer.close()
    qtbot.waitUntil(lambda: not observers(), timeout=TIMEOUT_MS)
    assert not errors, errors
