"""How long the napari window freezes while the widgets score and map: a 10 ms QTimer on the UI
thread records its ticks and the longest gap between two ticks is the longest stall (the same
measurement as tests/widgets/test_napari_conventions.py, here in fresh processes so that the
first run pays for importing torch, as a user's does). Each run is timed from pressing the
button until its results are shown (for a map: its new layer revealed, 0.5 s at least).

Scenarios, each in its own process under the display of the caller (run it with xvfb-run):
  idle        the viewer with the focus series and nothing running (the machine's noise floor)
  first-run   Score focus with the shipped model on the focus series, torch not imported yet
  model-early the same after the run command's early model load (scripts/demo.py)
  map-all     Focus map of every slice of the focus series (model already loaded)

    xvfb-run -a -s "-screen 0 1600x1200x24" python benchmarks/bench_ui_stalls.py \\
        [--repeats 2] [--output docs/benchmarks/ui-stalls.md]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CHILD = r'''
import importlib.util, json, sys, time
import numpy as np
scenario = sys.argv[1]
if scenario in ("model-early", "map-all"):
    spec = importlib.util.spec_from_file_location("demo", sys.argv[2])
    demo = importlib.util.module_from_spec(spec); spec.loader.exec_module(demo)
    demo.load_model_early()
import napari
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QApplication
from napari_semfocus._widgets.layer_list import map_layers
from napari_semfocus._widgets.map_widget import FocusMapWidget
from napari_semfocus._widgets.score_widget import ScoreFocusWidget
viewer = napari.Viewer(show=True)
viewer.window.resize(1500, 1000)
viewer.open_sample("napari-semfocus", "focus_series")
app = QApplication.instance()
widget = FocusMapWidget(viewer) if scenario == "map-all" else ScoreFocusWidget(viewer)
viewer.window.add_dock_widget(widget, area="right")
widget.set_method("model")
t_end = time.perf_counter() + 1.0
while time.perf_counter() < t_end:
    app.processEvents(); time.sleep(0.002)
ticks = []
timer = QTimer(); timer.setInterval(10)
timer.timeout.connect(lambda: ticks.append(time.perf_counter())); timer.start()
t0 = time.perf_counter()
if scenario == "idle":
    while time.perf_counter() - t0 < 5: app.processEvents(); time.sleep(0.002)
else:
    if scenario == "map-all":
        widget.set_layer("SEM focus series"); widget.map_all_slices()
    else:
        widget.run()
    while widget.is_running: app.processEvents(); time.sleep(0.002)
    # then the results are shown: a new map layer on the next turn (colorbar.reveal), 0.5 s more
    t_end = time.perf_counter() + 0.5
    while not all(m.visible for m in map_layers(viewer)) or time.perf_counter() < t_end:
        app.processEvents(); time.sleep(0.002)
t1 = time.perf_counter()
gaps = 1000 * np.diff(ticks)
print(json.dumps({"seconds": t1 - t0, "longest_ms": float(gaps.max()),
                  "p99_ms": float(np.percentile(gaps, 99)), "over_100ms": int((gaps > 100).sum())}))
viewer.close()
'''

SCENARIOS = ("idle", "first-run", "model-early", "map-all")


def run(scenario: str) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, scenario, str(REPO / "scripts" / "demo.py")],
                         capture_output=True, text=True, timeout=900, env=os.environ.copy())
    if out.returncode != 0:
        raise SystemExit(f"{scenario} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--output", help="Markdown file for the table (default: print)")
    args = ap.parse_args()
    rows = []
    for scenario in SCENARIOS:
        runs = [run(scenario) for _ in range(args.repeats)]
        best = min(runs, key=lambda r: r["longest_ms"])
        worst = max(runs, key=lambda r: r["longest_ms"])
        rows.append((scenario, best, worst))
        print(scenario, runs, file=sys.stderr)
    load = os.getloadavg()[0]
    lines = [f"{os.cpu_count()} CPU cores (shared with other work: load average {load:.1f} at "
             f"the end), {args.repeats} runs per scenario, each in a fresh process; 10 ms QTimer.",
             "", "| scenario | run (s) | longest stall (ms), best / worst run | 99th pct gap (ms) "
             "| gaps > 100 ms |", "|---|---|---|---|---|"]
    for scenario, best, worst in rows:
        lines.append(f"| {scenario} | {best['seconds']:.1f} | {best['longest_ms']:.0f} / "
                     f"{worst['longest_ms']:.0f} | {best['p99_ms']:.0f} | {best['over_100ms']} |")
    text = "\n".join(lines) + "\n"
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
