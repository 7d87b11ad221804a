"""The Fine-tune widget's "Suggest frames" in a real viewer: pressing it runs the job in a worker
and lists N distinct slices, best first, none of them annotated; selecting one shows it."""

from __future__ import annotations

import pytest
from qtpy.QtCore import Qt

from napari_semfocus._widgets.finetune_widget import FineTuneWidget

from ..helpers import check_screenshot, docked_viewer, needs_default_model

pytestmark = pytest.mark.gui

SERIES, SEM = "SEM focus series", "SEM image"


@needs_default_model
def test_suggest_marks_n_distinct_slices_in_order(make_napari_viewer, qtbot, screenshot_dir):
    viewer, widget = docked_viewer(make_napari_viewer, FineTuneWidget, "Fine-tune",
                                   ["sem_image", "focus_series"], size=(1600, 1000))
    widget.set_layer(SERIES)
    widget.set_slice(5)
    widget.add_annotation(6.0)  # annotated: never suggested
    panel = widget.suggest_panel
    panel.n_spin.setValue(5)
    widget.device_combo.setCurrentText("cpu")
    qtbot.mouseClick(panel.suggest_button, Qt.MouseButton.LeftButton)
    assert panel.is_running
    qtbot.waitUntil(lambda: not panel.is_running, timeout=300_000)

    table = panel.table
    assert table.rowCount() == 5
    rows = [[table.item(i, j).text() for j in range(5)] for i in range(5)]
    assert [r[0] for r in rows] == ["1", "2", "3", "4", "5"]
    marked = [(r[1], int(r[2])) for r in rows]
    assert len(set(marked)) == 5 and (SERIES, 5) not in marked
    assert {name for name, _ in marked} <= {SERIES, SEM}
    info = [s.informativeness for s in panel.suggestions]
    assert info[0] == max(info)
    assert panel.status_label.text().startswith("5 frames suggested, best first")

    table.selectRow(1)  # shows that slice, ready to annotate
    assert (widget.source_layer().name, widget.current_slice()) == marked[1]

    widget.scroll_area.ensureWidgetVisible(table, 0, 10)
    qtbot.wait(200)
    path = screenshot_dir / "finetune-suggest.png"
    check_screenshot(viewer.screenshot(str(path), canvas_only=False, flash=False), path)
