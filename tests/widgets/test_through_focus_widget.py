"""The Score focus widget's through-focus view in a real napari viewer (issue 23): on the focus
series sample (z from its ``defocus_um`` metadata, 80 um steps, slice 4 in focus) the plot
shows the fitted hyperbola, best focus with its interval and the best attainable score, one
line says what was found (astigmatism included), and "Go to best focus" moves the slider to the
slice nearest to best focus. A screenshot is taken (docs/images/through-focus.png when
``$SEMFOCUS_SCREENSHOTS`` names docs/images, see scripts/docs_images.sh)."""

from __future__ import annotations

import numpy as np
import pytest
from qtpy.QtCore import Qt

from napari_semfocus._widgets.score_widget import ScoreFocusWidget

from ..helpers import check_screenshot, docked_viewer, needs_default_model

pytestmark = pytest.mark.gui

SERIES = "SEM focus series"
SCREENSHOT = "through-focus.png"


@needs_default_model
def test_focus_curve_plot_and_go_to_best_focus(make_napari_viewer, qtbot, screenshot_dir):
    viewer, widget = docked_viewer(make_napari_viewer, ScoreFocusWidget, "Score focus",
                                   ["focus_series"], size=(1600, 1000))
    layer = viewer.layers[SERIES]
    truth = layer.metadata["in_focus_index"]
    defocus = np.asarray(layer.metadata["defocus_um"])
    step = float(np.diff(defocus).mean())
    viewer.dims.set_point(0, 0)
    widget.set_selected_layers([SERIES])
    widget.device_combo.setCurrentText("cpu")
    widget.run()
    qtbot.waitUntil(lambda: not widget.is_running, timeout=600_000)

    (res,) = widget.results
    curve = res.focus_curve
    assert curve is not None, res.focus_curve_note
    assert curve.z_unit == "um" and curve.z_source == "metadata defocus_um"
    assert abs(curve.best_z - defocus[truth]) <= step / 2  # within half a step
    assert curve.best_z_low < curve.best_z < curve.best_z_high
    assert curve.best_z_high - curve.best_z_low < 2 * step
    assert curve.best_index == truth

    # the plot: points and fitted curve against z, the interval band and best-score line
    ax = widget.plot.axes
    labels = [line.get_label() for line in ax.lines]
    assert any(lbl.startswith("fit") for lbl in labels)
    fit_line = next(line for line in ax.lines if line.get_label().startswith("fit"))
    x, y = fit_line.get_data()
    assert x.min() < defocus.min() and x.max() > defocus.max()  # spans the series in um
    assert abs(x[np.argmax(y)] - curve.best_z) <= step / 10  # peaks at best focus
    assert np.max(y) == pytest.approx(curve.best_score, abs=0.05)
    assert any(abs(line.get_ydata()[0] - curve.best_score) < 1e-6 for line in ax.lines
               if len(line.get_ydata()) == 2)  # the best attainable score's line
    bands = [p for p in ax.patches if "interval" in str(p.get_label())]
    assert len(bands) == 1
    assert "defocus_um" in ax.get_xlabel()

    text = widget.focus_label.text()
    assert widget.focus_label.isVisible()
    assert "best focus z =" in text and "best attainable score" in text
    assert "astigmatism" in text.lower() and "likely" not in text.lower()

    # the button: nearest slice to best focus
    assert widget.best_button.text() == "Go to best focus"
    assert viewer.dims.current_step[0] == 0
    qtbot.mouseClick(widget.best_button, Qt.MouseButton.LeftButton)
    assert viewer.dims.current_step[0] == curve.best_index == truth

    # stored with the scores
    stored = layer.metadata["semfocus"]["focus_curve"]
    assert stored["best_index"] == truth and stored["z_unit"] == "um"

    widget.scroll_area.ensureWidgetVisible(widget.best_button, 0, 10)
    qtbot.wait(500)
    path = screenshot_dir / SCREENSHOT
    path.parent.mkdir(parents=True, exist_ok=True)
    image = viewer.screenshot(str(path), canvas_only=False, flash=False)
    check_screenshot(image, path)


@needs_default_model
def test_one_sided_stack_is_refused_in_one_line(make_napari_viewer, qtbot):
    """A stack whose slices all lie past best focus gets no curve: the widget's line gives the
    fit's refusal (which way best focus lies), the plot draws only the fitted stack's curve and
    "Go to best focus" falls back to the best-scoring slice."""
    viewer, widget = docked_viewer(make_napari_viewer, ScoreFocusWidget, "Score focus",
                                   ["focus_series"])
    layer = viewer.layers[SERIES]
    truth = layer.metadata["in_focus_index"]
    meta = {k: v for k, v in layer.metadata.items()
            if not isinstance(v, (list, tuple)) or k == "defocus_um"}
    meta["defocus_um"] = list(layer.metadata["defocus_um"][truth + 1:])
    meta.pop("in_focus_index", None)
    viewer.add_image(layer.data[truth + 1:], name="past focus", metadata=meta,
                     scale=layer.scale)
    widget.set_selected_layers([SERIES, "past focus"])
    widget.device_combo.setCurrentText("cpu")
    widget.run()
    qtbot.waitUntil(lambda: not widget.is_running, timeout=600_000)

    by_name = {r.name: r for r in widget.results}
    assert by_name[SERIES].focus_curve is not None
    past = by_name["past focus"]
    assert past.focus_curve is None
    assert "best focus is beyond the first slice" in past.focus_curve_note
    assert "smaller z" in past.focus_curve_note
    text = widget.focus_label.text().splitlines()
    assert len(text) == 2 and text[1] == f"No focus curve: {past.focus_curve_note}"
    fits = [ln for ln in widget.plot.axes.lines if "fit" in ln.get_label()]
    assert len(fits) == 1  # the refused stack is not drawn on the fitted stack's um axis
    assert widget.go_to_best_slice("past focus") == past.best_index == 0
    assert viewer.dims.current_step[0] == 0
