"""One labelled colour bar for the plugin's focus maps: napari draws a layer's colour bar
without a title, and two maps would show two such bars side by side. :func:`follow` keeps the
bar of the top-most visible focus-map layer only, with a text overlay beside it naming the
score scale and the layer (``viewer.canvas.overlays["semfocus_colorbar"]``, napari >= 0.9;
without it the bar is shown unlabelled)."""

from __future__ import annotations

import weakref

from napari.components.overlays import TextOverlay

from .layer_list import map_layers

LABEL_KEY = "semfocus_colorbar"
_FOLLOWED: weakref.WeakSet = weakref.WeakSet()  # viewers whose layer events are connected


def follow(viewer) -> None:
    """Show one labelled colour bar now and whenever maps are added, removed, moved, hidden or
    shown (connected once per viewer)."""
    overlays = getattr(viewer.canvas, "overlays", None)
    if overlays is not None and LABEL_KEY not in overlays:
        overlays[LABEL_KEY] = TextOverlay(position="top_right", visible=False, font_size=10,
                                          box=True)
    if viewer in _FOLLOWED:
        update(viewer)
        return
    _FOLLOWED.add(viewer)

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
    label = overlays[LABEL_KEY]
    if shown is None:
        label.visible = False
        return
    scale = shown.metadata["semfocus_map"].get("score_scale", "focus score")
    label.text = f"{scale}\n{shown.name}"
    label.visible = True
