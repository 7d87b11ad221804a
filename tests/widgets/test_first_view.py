"""The first view of the run command (scripts/demo.py) in a real viewer: the focus series fills
a good part of the canvas (also after Reset view), Score focus is in front, the tab titles are
the widgets' names in full; the screenshot is docs/images/run-napari.png when made on purpose
(scripts/docs_images.sh)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from qtpy.QtWidgets import QApplication, QMainWindow, QTabBar

from ..helpers import REPO, check_screenshot

pytestmark = pytest.mark.gui

SCREENSHOT = "run-napari.png"
SERIES = "SEM focus series"


def load_demo():
    spec = importlib.util.spec_from_file_location("semfocus_demo", REPO / "scripts" / "demo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def shown_fraction(viewer, layer) -> np.ndarray:
    """How much of the canvas (height, width) the layer covers at the camera's zoom."""
    size = np.diff(layer.extent.world[:, -2:], axis=0)[0] + np.asarray(layer.scale[-2:])
    return viewer.camera.zoom * size / np.asarray(viewer.canvas.size, dtype=float)


def dock_tab_bars():
    windows = [w for w in QApplication.topLevelWidgets() if isinstance(w, QMainWindow)]
    return [bar for w in windows for bar in w.findChildren(QTabBar) if bar.count() >= 4]


def test_first_view_shows_the_focus_series(make_napari_viewer, qtbot, screenshot_dir):
    demo = load_demo()
    viewer = make_napari_viewer(show=True)
    viewer.window.resize(1500, 1000)
    demo.first_view(viewer)
    qtbot.wait(300)
    viewer.reset_view()  # as main() does once the window is shown
    assert [layer.name for layer in viewer.layers] == [SERIES]
    layer = viewer.layers[SERIES]
    assert viewer.layers.selection.active is layer
    assert layer.scale[-1] == pytest.approx(layer.metadata["pixel_size_um"])  # real µm

    def check_fills_canvas():
        frac = shown_fraction(viewer, layer)
        assert frac.max() >= 0.85 and np.all(frac <= 1.0), frac  # fits, fills one axis
        centre = np.asarray(viewer.camera.center[-2:])
        mid = layer.extent.world[:, -2:].mean(axis=0)
        assert np.all(np.abs(centre - mid) <= 0.05 * np.diff(layer.extent.world[:, -2:], axis=0))

    check_fills_canvas()
    viewer.camera.zoom *= 0.1  # the user zooms out; Reset view (Home) brings the sample back
    viewer.reset_view()
    check_fills_canvas()

    # Score focus in front of the other three, each tab titled by its widget's name in full
    (bar,) = dock_tab_bars()
    titles = [bar.tabText(i) for i in range(bar.count())]
    assert bar.tabText(bar.currentIndex()) == "Score focus"
    assert sorted(titles) == sorted(demo.WIDGETS), titles
    for i in range(bar.count()):
        text_width = bar.fontMetrics().horizontalAdvance(titles[i])
        assert bar.tabRect(i).width() >= text_width, titles[i]  # not cut ("Score focus (na…")
    path = screenshot_dir / SCREENSHOT
    path.parent.mkdir(parents=True, exist_ok=True)
    check_screenshot(viewer.screenshot(str(path), canvas_only=False, flash=False), path)


def test_open_sample_into_an_empty_viewer_fills_the_canvas(make_napari_viewer, qtbot):
    """File > Open Sample > SEM focus > SEM focus series: napari fits the first layer."""
    viewer = make_napari_viewer(show=True)
    viewer.window.resize(1200, 900)
    viewer.open_sample("napari-semfocus", "focus_series")
    qtbot.wait(100)
    viewer.reset_view()
    frac = shown_fraction(viewer, viewer.layers[SERIES])
    assert frac.max() >= 0.85 and np.all(frac <= 1.0), frac
