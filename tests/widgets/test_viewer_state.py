"""The widgets' shared state is per viewer, and a closed widget leaves nothing connected: its
callbacks are disconnected and Shift-S is released (real viewers, real docks)."""

from __future__ import annotations

import numpy as np
import pytest
from napari.utils.key_bindings import coerce_keybinding

from napari_semfocus._widgets.annotation_panel import SHORTCUT
from napari_semfocus._widgets.finetune_widget import FineTuneWidget
from napari_semfocus._widgets.forms import CHECKPOINT_MODEL
from napari_semfocus._widgets.map_widget import FocusMapWidget
from napari_semfocus._widgets.score_widget import ScoreFocusWidget
from napari_semfocus._widgets.viewer_state import state_of

pytestmark = pytest.mark.gui


def _docked(viewer, widget_class, name):
    widget = widget_class(viewer)
    viewer.window.add_dock_widget(widget, name=name, area="right")
    return widget


def test_the_model_chosen_for_scoring_is_per_viewer(make_napari_viewer, tmp_path):
    a, b = make_napari_viewer(), make_napari_viewer()
    score_a, score_b = _docked(a, ScoreFocusWidget, "Score"), _docked(b, ScoreFocusWidget, "Score")
    model = tmp_path / "tuned.safetensors"

    assert state_of(a).use_model(model) == 1  # one open widget follows viewer a's choice
    assert score_a.model_combo.currentData() == CHECKPOINT_MODEL
    assert score_a.checkpoint_edit.text() == str(model)
    assert score_b.model_combo.currentData() != CHECKPOINT_MODEL  # the other viewer keeps its own

    later = _docked(a, FocusMapWidget, "Map")  # a widget made later takes the choice
    assert later.checkpoint_edit.text() == str(model)
    assert state_of(b).model_path is None


def test_a_closed_widget_is_disconnected_and_releases_shift_s(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    tune = _docked(viewer, FineTuneWidget, "Fine-tune")
    score = _docked(viewer, ScoreFocusWidget, "Score")
    key = coerce_keybinding(SHORTCUT)
    assert key in viewer.keymap

    viewer.add_image(np.zeros((40, 50), np.float32), name="first")
    combo = tune.annotation_panel.layer_combo
    assert combo.findText("first") >= 0  # follows the layer list while open

    viewer.window.remove_dock_widget(tune)  # what the dock's close button does
    assert key not in viewer.keymap
    viewer.add_image(np.zeros((40, 50), np.float32), name="second")
    assert combo.findText("second") < 0  # no longer follows the viewer
    viewer.dims.events.current_step(value=(0, 0))  # no callback into the closed widget

    viewer.window.remove_dock_widget(score)
    assert state_of(viewer).use_model(tmp_path / "m.safetensors") == 0
    assert score.model_combo.currentData() != CHECKPOINT_MODEL


def test_a_second_fine_tune_widget_keeps_shift_s_when_the_first_closes(make_napari_viewer):
    viewer = make_napari_viewer()
    first = _docked(viewer, FineTuneWidget, "Fine-tune")
    second = _docked(viewer, FineTuneWidget, "Fine-tune 2")
    key = coerce_keybinding(SHORTCUT)
    viewer.window.remove_dock_widget(first)
    assert key in viewer.keymap  # still the second widget's
    viewer.window.remove_dock_widget(second)
    assert key not in viewer.keymap
