"""Open napari with the napari-semfocus widgets docked and the focus-series sample shown.

The first view shows one sample well: the SEM focus series alone, selected and filling the
canvas, with the Score focus widget in front of the other three (Focus map, Acceptance gate,
Fine-tune, as tabs). The samples have real pixel sizes (0.11, 0.04 and 0.65 µm), so opened
together the focus series would be a small patch in a corner of the half-focused frame, and
napari's Reset view fits every layer, hidden ones too; the other two samples are one click away
in File > Open Sample > SEM focus.

The shipped model is loaded before the window opens: importing torch holds Python's GIL for
seconds at a time, and done by the first scoring run's worker it froze the window (stalls of
0.3-0.7 s, measured with a 10 ms QTimer).
"""

import sys

import napari
from qtpy.QtCore import QTimer

SAMPLE = "focus_series"
WIDGETS = ("Score focus", "Focus map", "Acceptance gate", "Fine-tune")


def first_view(viewer) -> None:
    """Open the focus series, dock the widgets (Score focus in front) and fit the view to the
    canvas that is left."""
    viewer.open_sample("napari-semfocus", SAMPLE)
    docks = [viewer.window.add_plugin_dock_widget("napari-semfocus", name, tabify=i > 0)[0]
             for i, name in enumerate(WIDGETS)]  # the others as tabs beside Score focus
    QTimer.singleShot(0, docks[0].raise_)  # once the tabs are laid out
    viewer.layers.selection.active = viewer.layers[0]
    viewer.reset_view()  # the docks took part of the canvas napari fitted the sample to


def load_model_early() -> None:
    """Load the shipped model into the jobs' cache (the widgets' first run then finds it);
    without an installed model, nothing: the widgets say so when used."""
    from napari_semfocus.errors import SemFocusError
    from napari_semfocus.jobs.score import load_scorer

    print("demo: loading the focus model before the window opens", file=sys.stderr)
    try:
        load_scorer(None, "auto")
    except SemFocusError:
        pass


def main():
    load_model_early()  # before the viewer: no window to freeze yet
    viewer = napari.Viewer(title="napari-semfocus")
    first_view(viewer)
    QTimer.singleShot(0, viewer.reset_view)  # once the window is shown at its final size
    napari.run()


if __name__ == "__main__":
    main()
