"""The Focus map dock widget in a real napari viewer (Qt under Xvfb).

On the half-focused sample (its layer has a physical pixel size as ``scale``): the overlay layer
sits over the image (world extents agree to a quarter stride), contrast limits, colour bar and
metadata are set, the map is high on the sharp side, TIFF/CSV export. Runs with a classical
measure (screenshot focus-map-classical.png) and an untrained model (always), and with the
shipped model when it is installed (screenshot focus-map.png); the screenshots are kept in
docs/images/ by scripts/docs_images.sh, in a temporary folder otherwise.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile

from napari_semfocus._widgets.layer_list import map_layers
from napari_semfocus._widgets.map_widget import FocusMapWidget
from napari_semfocus.scoring.checkpoint import default_model_path

from ..helpers import docked_viewer, needs_default_model

pytestmark = pytest.mark.gui

SCREENSHOT = "focus-map.png"
SCREENSHOT_CLASSICAL = "focus-map-classical.png"
SAMPLE = "Half-focused frame"
TIMEOUT_MS = 600_000


@pytest.fixture
def map_viewer(make_napari_viewer):
    return docked_viewer(make_napari_viewer, FocusMapWidget, "Focus map", ["half_focused"],
                         (1400, 900))


def run_map(qtbot, widget):
    widget.run()
    qtbot.waitUntil(lambda: not widget.is_running, timeout=TIMEOUT_MS)
    # a new map layer is added hidden and shown on the next event-loop turn (colorbar.reveal)
    qtbot.waitUntil(lambda: all(m.visible for m in map_layers(widget.viewer)), timeout=10_000)
    assert widget.last_run is not None and widget.last_run.fmap is not None, \
        widget.status_label.text()
    return widget.last_run.fmap


def check_overlay(viewer, widget, fmap, model: bool):
    src = viewer.layers[SAMPLE]
    layer = viewer.layers[f"{SAMPLE} focus map"]
    assert layer is widget.map_layer_out
    assert src.scale[-1] != 1.0  # the sample has a physical pixel size (µm)
    np.testing.assert_allclose(layer.scale, np.asarray(src.scale) * fmap.cell_px())
    img_edges = src.extent.world + np.array([[-0.5], [0.5]]) * np.asarray(src.scale)
    map_edges = layer.extent.world + np.array([[-0.5], [0.5]]) * np.asarray(layer.scale)
    np.testing.assert_allclose(map_edges, img_edges, atol=1e-6)  # the overlay sits on the image
    if model:
        assert tuple(layer.contrast_limits) == (0.0, 10.0)
    assert layer.visible and layer.colorbar.visible  # shown, with its bar, after the reveal
    assert tuple(layer.units) == tuple(src.units)[-2:]
    meta = layer.metadata["semfocus_map"]
    assert meta["grid_shape"] == list(fmap.shape) and meta["source_layer"] == SAMPLE
    np.testing.assert_array_equal(layer.metadata["scores"], fmap.scores)
    # the value napari shows under the mouse for a world position over tile (1, 0)
    ys, xs = fmap.tile_centres()
    world = src.data_to_world((ys[1], xs[0]))
    assert layer.get_value(world, world=True) == pytest.approx(float(fmap.scores[1, 0]))


def test_classical_map_in_viewer(map_viewer, qtbot, tmp_path, screenshot_dir):
    viewer, widget = map_viewer
    before = np.array(viewer.layers[SAMPLE].data, copy=True)
    widget.set_layer(SAMPLE)
    assert widget.run_button.text() == "Map focus" and not widget.all_button.isEnabled()
    widget.set_method("brenner")
    fmap = run_map(qtbot, widget)
    check_overlay(viewer, widget, fmap, model=False)
    assert fmap.scores[:, 0].mean() > 3 * fmap.scores[:, -1].mean()
    np.testing.assert_array_equal(viewer.layers[SAMPLE].data, before)

    grid = tifffile.imread(widget.export_tiff(tmp_path / "m.tif"))
    assert grid.shape == fmap.shape
    lines = widget.export_csv(tmp_path / "m.csv").read_text().splitlines()
    assert lines[0] == "row,column,y,x,score,score_low,score_high,certainty,weight"
    assert len(lines) == fmap.scores.size + 1
    # a second run replaces the overlay instead of adding another one
    widget.opacity_spin.setValue(0.7)
    run_map(qtbot, widget)
    assert sum(lyr.name.endswith("focus map") for lyr in viewer.layers) == 1
    assert widget.map_layer_out.opacity == pytest.approx(0.7)
    save_screenshot(qtbot, viewer, screenshot_dir / SCREENSHOT_CLASSICAL)


def test_model_map_in_viewer(map_viewer, qtbot, untrained_checkpoint, tmp_path, screenshot_dir):
    viewer, widget = map_viewer
    widget.set_layer(SAMPLE)
    widget.set_method("model")
    assert widget.magnification_edit.text() == "127"
    if default_model_path().is_file():
        widget.checkpoint_edit.setText("")
    else:
        widget.checkpoint_edit.setText(str(untrained_checkpoint))
    fmap = run_map(qtbot, widget)
    check_overlay(viewer, widget, fmap, model=True)
    if default_model_path().is_file():
        assert fmap.scores[:, :2].mean() - fmap.scores[:, -2:].mean() >= 2.0
    # an untrained model's map is not worth a picture in the docs
    save_screenshot(qtbot, viewer, screenshot_dir / SCREENSHOT if default_model_path().is_file()
                    else tmp_path / "focus-map-untrained.png")


def save_screenshot(qtbot, viewer, path: Path) -> None:
    viewer.reset_view()
    qtbot.wait(500)
    path.parent.mkdir(parents=True, exist_ok=True)
    image = np.asarray(viewer.screenshot(str(path), canvas_only=False, flash=False))
    assert path.is_file() and path.stat().st_size > 10_000
    rgb = image[..., :3].astype(float)
    assert rgb.std() > 20


# ---- stacks: a map per slice, following the slider ----------------------------------------------
SERIES = "SEM focus series"
SCREENSHOT_STACK = "focus-map-stack.png"


@pytest.fixture
def series_map_viewer(make_napari_viewer):
    return docked_viewer(make_napari_viewer, FocusMapWidget, "Focus map", ["focus_series"],
                         (1400, 900))


def shown_value(viewer, layer, world_yx) -> float:
    """The value napari shows for ``layer`` at ``world_yx`` on the slice the slider shows."""
    point = list(viewer.dims.point)
    point[-2:] = world_yx
    return float(layer.get_value(point, world=True))


@pytest.mark.parametrize("method", ["brenner", pytest.param("model", marks=needs_default_model)])
def test_stack_map_follows_the_slider(series_map_viewer, qtbot, screenshot_dir, tmp_path, method):
    viewer, widget = series_map_viewer
    src = viewer.layers[SERIES]
    truth, n = src.metadata["in_focus_index"], src.data.shape[0]
    before = np.array(src.data, copy=True)
    widget.set_layer(SERIES)
    assert widget.run_button.text() == "Map this slice" and widget.all_button.isEnabled()
    widget.set_method(method)
    viewer.dims.set_current_step(0, 0)  # the most blurred slice
    fmap = run_map(qtbot, widget)

    layer = viewer.layers[f"{SERIES} focus map"]
    assert layer.data.shape == (n, *fmap.shape)  # one map per slice, on the slider's axis
    np.testing.assert_allclose(layer.scale[0], src.scale[0])
    meta = layer.metadata["semfocus_map"]
    assert meta["mapped_slices"] == [[0]] and meta["slice_count"] == n
    assert np.isfinite(layer.data[0]).all() and np.isnan(layer.data[1:]).all()
    world = src.data_to_world((0, *(c[0] for c in fmap.tile_centres())))[-2:]
    blurred = shown_value(viewer, layer, world)
    assert blurred == pytest.approx(float(fmap.scores[0, 0]))

    # the slider moves to the sharp slice: mapped on its own, and the shown map changes
    assert widget.follow_check.isChecked()
    viewer.dims.set_current_step(0, truth)
    qtbot.waitUntil(lambda: [truth] in layer.metadata["semfocus_map"]["mapped_slices"]
                    and not widget.is_running, timeout=TIMEOUT_MS)
    sharp = shown_value(viewer, layer, world)
    assert sharp == pytest.approx(float(layer.data[truth][0, 0]))
    assert sharp > (1.5 * blurred if method == "brenner" else blurred + 2.0)
    assert layer.metadata["semfocus_map"]["mapped_slices"] == [[0], [truth]]
    # the model's map is the one worth a picture in the docs
    save_screenshot(qtbot, viewer, (screenshot_dir if method == "model" else tmp_path)
                    / SCREENSHOT_STACK)
    assert viewer.dims.current_step[0] == truth  # Reset view left the slider where it was

    # without following, an unmapped slice stays transparent and the widget says so
    widget.follow_check.setChecked(False)
    viewer.dims.set_current_step(0, n - 1)
    qtbot.wait(200)
    assert not widget.is_running and np.isnan(layer.data[n - 1]).all()
    assert "not mapped" in widget.status_label.text()

    # Map all slices: the rest, with progress; the sharp slice maps highest
    widget.map_all_slices()
    assert widget.is_running
    qtbot.waitUntil(lambda: not widget.is_running, timeout=TIMEOUT_MS)
    assert viewer.layers[f"{SERIES} focus map"] is layer  # updated in place
    assert layer.metadata["semfocus_map"]["mapped_count"] == n
    assert widget.last_run.settings.slices == tuple((i,) for i in range(n) if i not in (0, truth))
    assert np.isfinite(layer.data).all()
    means = np.nanmean(layer.data, axis=(1, 2))
    assert abs(int(np.argmax(means)) - truth) <= 1 and means[truth] > means[0]
    assert widget.progress_bar.value() == widget.progress_bar.maximum()
    np.testing.assert_array_equal(layer.metadata["scores"], layer.data)
    # the export is the shown slice's map
    grid = tifffile.imread(widget.export_tiff(tmp_path / "m.tif"))
    np.testing.assert_array_equal(grid, layer.data[n - 1])
    np.testing.assert_array_equal(src.data, before)  # the source was only read


# ---- deleting layers: never a crash ---------------------------------------------------------------
def test_map_after_every_layer_was_deleted_and_deleting_during_a_run(map_viewer, qtbot):
    """The issue's crash (3 of 3 before): a map, then every layer deleted, another image opened
    and mapped. Then the source deleted while its map is being made, and a map layer deleted
    before the next run: the runs end cleanly, nothing is shown for a deleted source."""
    viewer, widget = map_viewer
    widget.set_layer(SAMPLE)
    widget.set_method("model")
    run_map(qtbot, widget)
    viewer.layers.select_all()
    viewer.layers.remove_selected()
    assert len(viewer.layers) == 0 and widget.layer_combo.count() == 0
    viewer.open_sample("napari-semfocus", "sem_image")
    widget.refresh_layers()
    widget.set_layer("SEM image")
    fmap = run_map(qtbot, widget)
    assert "SEM image focus map" in viewer.layers and np.isfinite(fmap.scores).all()
    viewer.layers.remove("SEM image focus map")  # the map layer deleted: the next run adds one
    widget.run()
    viewer.layers.remove("SEM image")  # the source deleted during the run
    qtbot.waitUntil(lambda: not widget.is_running, timeout=TIMEOUT_MS)
    qtbot.wait(100)
    assert "SEM image focus map" not in viewer.layers
    viewer.layers.select_all()
    viewer.layers.remove_selected()
    qtbot.wait(100)
    assert len(viewer.layers) == 0
