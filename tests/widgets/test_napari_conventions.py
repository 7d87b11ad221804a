"""napari's own conventions, in a real viewer: progress never runs a nested event loop, Cancel
stops within one batch, the plugin's focus maps are not offered as inputs, and two maps show one
labelled colour bar. The event-loop stall guards (a 10 ms QTimer,
:class:`tests.helpers.EventLoopTicks`) are timed, so they carry the ``perf`` marker: the default
run (and CI) leaves them out; ``pytest -m perf`` runs them beside benchmarks/bench_ui_stalls.py."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import traceback

import numpy as np
import pytest
from qtpy.QtWidgets import QApplication

from napari_semfocus._widgets.finetune_widget import FineTuneWidget
from napari_semfocus._widgets.gate_widget import AcceptanceGateWidget
from napari_semfocus._widgets.layer_list import map_layers
from napari_semfocus._widgets.map_widget import FocusMapWidget
from napari_semfocus._widgets.score_widget import ScoreFocusWidget
from napari_semfocus.progress import Progress
from napari_semfocus.scoring.checkpoint import default_model_path

from ..helpers import EventLoopTicks, docked_viewer

pytestmark = pytest.mark.gui

SERIES, HALF = "SEM focus series", "Half-focused frame"
TIMEOUT_MS = 600_000
#: a frozen window a user notices (the issue measured 944 ms on the first run). A guard, not the
#: target: the 100 ms target and the figures are measured by benchmarks/bench_ui_stalls.py
#: (docs/benchmarks/ui-stalls.md); a loaded CI machine stretches single stalls past 100 ms.
STALL_GUARD_MS = 250


def model_checkpoint(untrained_checkpoint):
    return None if default_model_path().is_file() else untrained_checkpoint


def test_progress_never_runs_a_nested_event_loop(make_napari_viewer, qtbot, monkeypatch):
    """No ``QApplication.processEvents`` from the plugin's code while a job runs and shows its
    progress (napari's activity-dock bars call it on every update; nested in a layer change it
    repainted the canvas and crashed napari)."""
    viewer = make_napari_viewer()
    viewer.add_image(np.random.default_rng(0).integers(0, 255, (40, 128, 128), dtype=np.uint8),
                     name="stack")
    nested: list[str] = []
    real = QApplication.processEvents

    def recording(*args):
        stack = "".join(traceback.format_stack())
        if "napari_semfocus" in stack:
            nested.append(stack[-2000:])
        if args and isinstance(args[0], QApplication):  # called on the instance
            args = args[1:]
        return real(*args)

    monkeypatch.setattr(QApplication, "processEvents", staticmethod(recording))
    for widget_class in (ScoreFocusWidget, FocusMapWidget):
        widget = widget_class(viewer)
        widget.set_method("brenner")
        widget.run()
        qtbot.waitUntil(lambda w=widget: not w.is_running, timeout=60_000)
        assert widget.progress_bar.value() == widget.progress_bar.maximum()
    assert "semfocus" in viewer.layers["stack"].metadata and map_layers(viewer)
    assert nested == [], nested[0]


def test_cancel_stops_within_one_batch(make_napari_viewer, qtbot, untrained_checkpoint):
    viewer = make_napari_viewer()
    frames = np.random.default_rng(1).integers(0, 255, (24, 240, 320), dtype=np.uint8)
    viewer.add_image(frames, name="stack", metadata={"magnification": 5000})
    widget = ScoreFocusWidget(viewer)
    widget.set_method("model")
    widget.set_checkpoint(untrained_checkpoint)
    widget.batch_spin.setValue(2)  # one tile per frame: 12 batches
    batches: list[int] = []
    widget.run()
    widget.worker.yielded.connect(
        lambda u: batches.append(u.done) if isinstance(u, Progress) else None)
    qtbot.waitUntil(lambda: len(batches) >= 1, timeout=TIMEOUT_MS)
    widget.cancel()
    at_cancel = len(batches)
    qtbot.waitUntil(lambda: not widget.is_running, timeout=TIMEOUT_MS)
    assert widget.last_run.cancelled
    assert len(batches) - at_cancel <= 1  # at most the batch in flight finished
    assert batches[-1] < 24


def run_watched(qtbot, widget, start, until_shown: bool = False) -> dict:
    """Run a widget's job (``start()``) under a 10 ms QTimer: the longest event-loop stall
    while the job ran (from the start to its last update; with ``until_shown``, from its last
    update until its new map layer is shown, colorbar.reveal, and 300 ms more), an idle
    baseline measured just before (the machine's own noise: the 2 CPU cores are shared), and
    the run's length (ms)."""
    with EventLoopTicks(10) as loop:
        idle_start = loop.mark()
        qtbot.wait(1500)
        idle_end = loop.mark()
        updates: list[float] = []
        start()
        widget.worker.yielded.connect(lambda _u: updates.append(loop.mark()))
        qtbot.waitUntil(lambda: not widget.is_running, timeout=TIMEOUT_MS)
        qtbot.waitUntil(lambda: all(m.visible for m in map_layers(widget.viewer)),
                        timeout=10_000)
        qtbot.wait(300)
        shown = loop.mark()
    assert updates
    start_at, end_at = (updates[-1], shown) if until_shown else (idle_end, updates[-1])
    return {"stall": loop.longest_gap_ms(start_at, end_at),
            "idle": loop.longest_gap_ms(idle_start, idle_end),
            "run": 1000 * (end_at - start_at)}


def map_viewer_watched(make_napari_viewer, qtbot, checkpoint, until_shown: bool):
    """Score, then map every slice of the focus series, each run watched (:func:`run_watched`):
    (viewer, the map widget, scoring's figures, mapping's figures)."""
    viewer, score = docked_viewer(make_napari_viewer, ScoreFocusWidget, "Score focus",
                                  ["focus_series"])
    score.set_method("model")
    score.set_checkpoint(checkpoint)
    scoring = run_watched(qtbot, score, score.run)
    assert score.results and not score.last_run.cancelled
    fmap = FocusMapWidget(viewer)
    fmap.set_layer(SERIES)
    fmap.set_method("model")
    fmap.set_checkpoint(checkpoint)
    mapping = run_watched(qtbot, fmap, fmap.map_all_slices, until_shown)
    assert fmap.last_run.maps and not fmap.last_run.cancelled
    return viewer, fmap, scoring, mapping


@pytest.mark.perf
def test_no_event_loop_stall_while_scoring_and_mapping(make_napari_viewer, qtbot,
                                                       untrained_checkpoint):
    checkpoint = model_checkpoint(untrained_checkpoint)
    _viewer, _fmap, scoring, mapping = map_viewer_watched(make_napari_viewer, qtbot, checkpoint,
                                                          until_shown=False)
    for what, m in (("scoring", scoring), ("mapping", mapping)):
        print(f"{what}: longest event-loop stall {m['stall']:.0f} ms in {m['run']:.0f} ms "
              f"(idle baseline {m['idle']:.0f} ms)")
        assert m["stall"] < STALL_GUARD_MS + m["idle"], (what, m)


@pytest.mark.perf
def test_no_event_loop_stall_while_a_new_map_layer_is_shown(make_napari_viewer, qtbot,
                                                            untrained_checkpoint):
    checkpoint = model_checkpoint(untrained_checkpoint)
    viewer, fmap, _scoring, shown = map_viewer_watched(make_napari_viewer, qtbot, checkpoint,
                                                       until_shown=True)
    layer = viewer.layers[f"{SERIES} focus map"]
    assert layer.visible and layer.colorbar.visible  # the new layer is shown, with its bar
    print(f"new map layer: longest event-loop stall {shown['stall']:.0f} ms in "
          f"{shown['run']:.0f} ms (idle baseline {shown['idle']:.0f} ms)")
    assert shown["stall"] < STALL_GUARD_MS + shown["idle"], shown


FIRST_RUN = textwrap.dedent("""
    import json, sys, time
    import numpy as np
    import napari
    from qtpy.QtCore import QTimer
    from qtpy.QtWidgets import QApplication
    from napari_semfocus._widgets.score_widget import ScoreFocusWidget
    viewer = napari.Viewer(show=True)
    viewer.window.resize(1500, 1000)
    viewer.open_sample("napari-semfocus", "half_focused")
    widget = ScoreFocusWidget(viewer)
    viewer.window.add_dock_widget(widget, area="right")
    widget.set_method("model")
    app = QApplication.instance()
    def spin(seconds):
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            app.processEvents(); time.sleep(0.002)
    spin(1.0)
    ticks = []
    timer = QTimer(); timer.setInterval(10)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter())); timer.start()
    spin(1.5)
    idle = 1000 * np.diff(ticks).max()
    torch_before = "torch" in sys.modules
    start = time.perf_counter()
    widget.run()
    while widget.is_running:
        app.processEvents(); time.sleep(0.002)
    spin(0.5)
    gaps = 1000 * np.diff([t for t in ticks if t >= start])
    print(json.dumps({"idle": idle, "stall": float(gaps.max()), "torch_before": torch_before,
                      "scored": "semfocus" in viewer.layers[0].metadata,
                      "run": time.perf_counter() - start}))
    viewer.close()
""")


@pytest.mark.perf
def test_no_event_loop_stall_on_the_first_run_in_a_fresh_napari():
    """The first Score focus run in a napari where torch was never imported (a fresh process:
    this one imported torch already): the worker imports torch, torchvision and triton
    quietly (napari_semfocus/runtime.py) while the window keeps ticking."""
    out = subprocess.run([sys.executable, "-c", FIRST_RUN], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    m = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"first run: longest event-loop stall {m['stall']:.0f} ms in {m['run']:.1f} s "
          f"(idle baseline {m['idle']:.0f} ms)")
    assert not m["torch_before"] and m["scored"]
    assert m["stall"] < STALL_GUARD_MS + m["idle"], m


def test_maps_are_not_inputs_and_two_maps_show_one_labelled_colour_bar(make_napari_viewer,
                                                                       qtbot):
    viewer, fmap = docked_viewer(make_napari_viewer, FocusMapWidget, "Focus map",
                                 ["half_focused", "focus_series"])
    fmap.set_method("brenner")
    for name in (HALF, SERIES):
        fmap.set_layer(name)
        fmap.run()
        qtbot.waitUntil(lambda: not fmap.is_running, timeout=TIMEOUT_MS)
        qtbot.waitUntil(lambda: all(m.visible for m in map_layers(viewer)), timeout=10_000)
    maps = [viewer.layers[f"{HALF} focus map"], viewer.layers[f"{SERIES} focus map"]]
    # neither map is offered as an input
    score, gate, tune = (ScoreFocusWidget(viewer), AcceptanceGateWidget(viewer),
                         FineTuneWidget(viewer))
    offered = [score.layer_list.item(i).text() for i in range(score.layer_list.count())]
    assert offered == [HALF, SERIES]
    assert [gate.layer_list.item(i).text() for i in range(gate.layer_list.count())] == offered
    assert [fmap.layer_combo.itemText(i) for i in range(fmap.layer_combo.count())] == offered
    viewer.layers.selection = set(maps)  # selected maps are still not ticked
    score.refresh_layers()
    assert set(score.selected_layer_names()) <= {HALF, SERIES}
    assert tune is not None

    # one colour bar, the top map's, with a label naming its scale and layer
    label = viewer.canvas.overlays["semfocus_colorbar"]
    assert [m.colorbar.visible for m in maps] == [False, True]
    assert label.visible and f"{SERIES} focus map" in label.text and "brenner" in label.text
    maps[1].visible = False
    assert [m.colorbar.visible for m in maps] == [True, False]
    assert f"{HALF} focus map" in label.text
    viewer.layers.remove(maps[0])
    assert not label.visible
