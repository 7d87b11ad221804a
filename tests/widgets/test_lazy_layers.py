"""Dask layers in a real napari viewer (Qt under Xvfb): the Score focus widget scores a lazy
stack and the Focus map widget maps its shown slice without loading the layer whole.

The layer's dask array logs what each compute reads (tests/lazy_helpers.py): during a run no
compute reads more than one chunk (scoring) or one slice (map), the scores equal the numpy
path's, and the layer still holds the same dask array afterwards.
"""

from __future__ import annotations

import numpy as np
import pytest

from napari_semfocus._widgets.map_widget import FocusMapWidget
from napari_semfocus._widgets.score_widget import ScoreFocusWidget
from napari_semfocus.jobs.score import load_scorer
from napari_semfocus.progress import run_to_end
from napari_semfocus.scoring.focus_map import focus_map
from napari_semfocus.scoring.measures import measure

from ..helpers import docked_viewer, needs_default_model
from ..lazy_helpers import blur_stack, logged_dask

pytestmark = pytest.mark.gui

TIMEOUT_MS = 300_000
METHODS = ["brenner", pytest.param("model", marks=needs_default_model)]


def lazy_viewer(make_napari_viewer, widget_class, dock: str, chunks):
    """(viewer, widget, stack, its ReadLog): a 6-slice dask stack as the only layer."""
    viewer, widget = docked_viewer(make_napari_viewer, widget_class, dock, size=(1200, 800))
    stack = blur_stack(n=6, hw=(256, 320))
    x, log = logged_dask(stack, chunks)
    viewer.add_image(x, name="lazy", metadata={"magnification": 5000.0})
    return viewer, widget, stack, log


@pytest.mark.parametrize("method", METHODS)
def test_score_widget_scores_a_dask_layer_a_chunk_at_a_time(make_napari_viewer, qtbot, method):
    viewer, widget, stack, log = lazy_viewer(make_napari_viewer, ScoreFocusWidget, "Score focus",
                                             (2, 256, 320))
    data = viewer.layers["lazy"].data
    widget.set_selected_layers(["lazy"])
    widget.set_method(method)
    with log.watch():
        widget.run()
        qtbot.waitUntil(lambda: not widget.is_running, timeout=TIMEOUT_MS)
    run = widget.last_run
    assert run is not None and not run.cancelled, widget.status_label.text()
    scores = run.images[0].scores
    expected = (load_scorer(None, "auto").score(stack, 5000.0) if method == "model"
                else measure(stack, method))
    np.testing.assert_array_equal(scores, expected)
    frame = stack[0].size
    assert max(log.computes) <= 2 * frame  # one chunk of two slices per compute
    assert sum(log.computes) <= stack.size + 2 * frame  # once, plus the probe of 2 slices
    assert viewer.layers["lazy"].data is data  # the layer was only read


@pytest.mark.parametrize("method", METHODS)
def test_map_widget_maps_the_shown_slice_of_a_dask_layer(make_napari_viewer, qtbot, method):
    viewer, widget, stack, log = lazy_viewer(make_napari_viewer, FocusMapWidget, "Focus map",
                                             (1, 100, 130))
    viewer.dims.set_current_step(0, 4)
    widget.set_layer("lazy")
    widget.set_method(method)
    if method == "model":
        widget.checkpoint_edit.setText("")
    with log.watch():
        widget.run()
        qtbot.waitUntil(lambda: not widget.is_running, timeout=TIMEOUT_MS)
    assert widget.last_run is not None and widget.last_run.fmap is not None, \
        widget.status_label.text()
    scorer = load_scorer(None, "auto") if method == "model" else None
    expected = run_to_end(focus_map(scorer, stack[4], 5000.0, method=method,
                                    mode=widget.mode_combo.currentData()))  # the widget's mode
    np.testing.assert_array_equal(widget.last_run.fmap.scores, expected.scores)
    assert 0 < max(log.computes) <= stack[0].size  # a slice at most per compute
    assert log.first_axis == {4}  # the shown slice only
