"""The Live QC dock widget in a real napari viewer (Qt; Xvfb on CI): a live watch of a folder
with a gate, frames written while it runs (one blurred), each scored as ``semfocus score``
scores the file, plotted, the blurred one rejected (listed, a napari warning, shown on a
click), the newest frame in its layer, the table written; the window keeps its event loop
running throughout (the watch is in a worker thread); Stop ends it. A screenshot is taken
(live-qc.png, kept in docs/images/ by scripts/docs_images.sh)."""

from __future__ import annotations

import napari.utils.notifications as notifications
import numpy as np
import pytest
import tifffile

from napari_semfocus._widgets.live_widget import FRAME_LAYER, REJECTED_LAYER, LiveQCWidget

from ..helpers import (
    EventLoopTicks,
    check_screenshot,
    docked_viewer,
    needs_default_model,
    parse_csv,
    run_cli,
    synthetic_gate,
)
from ..watch_writer import BLURRED, MAGNIFICATION, frame, tiff_bytes

pytestmark = [pytest.mark.gui, needs_default_model]

SCREENSHOT = "live-qc.png"
TIMEOUT_MS = 240_000  # only against hangs
NAMES = ("f01.tif", "f02.tif", "f03.tif")  # f02 is blurred


def test_live_watch_scores_plots_and_rejects(make_napari_viewer, qtbot, tmp_path, capsys,
                                             errors, monkeypatch, screenshot_dir):
    warnings: list[str] = []
    monkeypatch.setattr(notifications, "show_warning", lambda msg, *a, **k: warnings.append(msg))
    acq = tmp_path / "acq"
    acq.mkdir()
    viewer, widget = docked_viewer(make_napari_viewer, LiveQCWidget, "Live QC", (),
                                   (1500, 1000))
    widget.set_folder(acq)
    widget.set_gate(synthetic_gate(tmp_path / "gate.json"))
    widget.magnification_edit.setText(str(MAGNIFICATION))
    widget.table_edit.setText(str(tmp_path / "scores.csv"))
    with EventLoopTicks() as ticks:
        widget.run()
        qtbot.waitUntil(lambda: "watching" in widget.status_label.text().lower(),
                        timeout=TIMEOUT_MS)
        for k, name in enumerate(NAMES):  # written while the watch runs, one at a time
            (acq / name).write_bytes(tiff_bytes(name))
            qtbot.waitUntil(lambda k=k: len(widget.rows) == k + 1, timeout=TIMEOUT_MS)
    assert len(ticks.ticks) > 20  # the event loop went on while frames were scored
    assert not errors, errors

    # one row per frame, the score `semfocus score` gives the file, decided by the gate
    paths = [str(acq / n) for n in NAMES]
    assert [r["path"] for r in widget.rows] == paths
    code, text, err = run_cli(["score", *paths, "--magnification", MAGNIFICATION], capsys)
    assert code == 0, err
    assert [r["score"] for r in widget.rows] == [r["score"] for r in parse_csv(text)]
    assert [r["accepted"] for r in widget.rows] == ["0" if n in BLURRED else "1" for n in NAMES]
    # plotted, listed, notified, shown
    qtbot.waitUntil(lambda: widget.plot.draws > 0 and len(widget.plot.y) == 3)
    assert widget.plot.y == [float(r["score"]) for r in widget.rows]
    assert widget.plot.colours.count("#d62728") == 1
    assert widget.rejected_names() == [str(acq / "f02.tif")]
    assert len(warnings) == 1 and "Rejected: " in warnings[0] and "f02.tif" in warnings[0]
    np.testing.assert_array_equal(viewer.layers[FRAME_LAYER].data, frame("f03.tif"))
    widget.rejected_list.itemClicked.emit(widget.rejected_list.item(0))
    np.testing.assert_array_equal(viewer.layers[REJECTED_LAYER].data, frame("f02.tif"))

    widget.cancel()
    qtbot.waitUntil(lambda: not widget.is_running, timeout=TIMEOUT_MS)
    assert widget.last_run.scored == 3 and widget.last_run.rejected == 1
    table = parse_csv((tmp_path / "scores.csv").read_text())
    assert [r["score"] for r in table] == [r["score"] for r in widget.rows]
    tifffile.imwrite(acq / "later.tif", frame("later.tif"))  # after Stop: not scored
    qtbot.wait(300)
    assert len(widget.rows) == 3

    viewer.layers.selection.active = viewer.layers[FRAME_LAYER]
    viewer.reset_view()
    qtbot.wait(300)
    path = screenshot_dir / SCREENSHOT
    path.parent.mkdir(parents=True, exist_ok=True)
    check_screenshot(viewer.screenshot(str(path), canvas_only=False, flash=False), path)
