"""One labelled colour bar for the plugin's focus maps: napari draws a layer's colour bar
without a title, and two maps would show two such bars side by side. :func:`follow` keeps the
bar of the top-most visible focus-map layer only, with a text overlay beside it naming the
score scale and the layer (``viewer.canvas.overlays["semfocus_colorbar"]``, napari >= 0.9;
without it the bar is shown unlabelled).

A new map layer is added hidden and shown on the next turn of the event loop (:func:`reveal`):
napari builds the layer's visuals in the turn that adds it and draws them in the next, so the
two costs do not add up in one frozen moment. Only napari's public layer and overlay API is used.
"""

from __future__ import annotations

from napari.components.overlays import TextOverlay
from qtpy.QtCore import QTimer

from .layer_list import map_layers

LABEL_KEY = "semfocus_colorbar"


def follow(viewer) -> None:
    """Show one labelled colour bar now and whenever maps are added, removed, moved, hidden or
    shown (connected once per viewer: the label overlay marks a viewer already followed)."""
    overlays = getattr(viewer.canvas, "overlays", None)
    if overlays is not None and LABEL_KEY in overlays:
        update(viewer)
        return
    if overlays is not None:
        overlays[LABEL_KEY] = TextOverlay(position="top_right", visible=False, font_size=10,
                                          box=True)

    def changed(event=None):
        layer = getattr(event, "value", None)
        if layer is not None and hasattr(getattr(layer, "events", None), "visible"):
            layer.events.visible.connect(lambda _e: update(viewer))
        update(viewer)

    for ev in (viewer.layers.events.inserted, viewer.layers.events.removed,
               viewer.layers.events.moved):
        ev.connect(changed)
    for layer in viewer.layers:
        layer.events.visible.connect(lambda _e: update(viewer))
    update(viewer)


def reveal(viewer, layer) -> None:
    """Show ``layer``, a map layer just added hidden, on the next event-loop turn (unless it was
    deleted meanwhile); the colour bars follow."""
    def show():
        if layer in viewer.layers:
            layer.visible = True

    QTimer.singleShot(0, show)


def label_text(layer) -> str:
    """What the label says for a map layer: the score scale, then the layer's name."""
    scale = layer.metadata["semfocus_map"].get("score_scale", "focus score")
    return f"{scale}\n{layer.name}"


def update(viewer) -> None:
    """The colour bar of the top-most visible map on, the others off; the label says what the
    colours mean and which layer they belong to."""
    maps = map_layers(viewer)
    shown = next((lyr for lyr in reversed(maps) if lyr.visible), None)
    for layer in maps:
        layer.colorbar.visible = layer is shown
    overlays = getattr(viewer.canvas, "overlays", None)
    if overlays is None or LABEL_KEY not in overlays:
        return
    text_overlay = overlays[LABEL_KEY]
    if shown is None:
        text_overlay.visible = False
        return
    text_overlay.text = label_text(shown)
    text_overlay.visible = True
