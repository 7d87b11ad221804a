"""One labelled colour bar for the plugin's focus maps: napari draws a layer's colour bar
without a title, and two maps would show two such bars side by side. :func:`follow` keeps the
bar of the top-most visible focus-map layer only, with a text overlay beside it naming the
score scale and the layer (``viewer.canvas.overlays["semfocus_colorbar"]``, napari >= 0.9;
without it the bar is shown unlabelled).

A new map layer is shown over several event-loop turns (:func:`reveal`): napari builds a layer's
visuals, its colour bar and the label's glyphs on the UI thread, and each visual's first draw
compiles its shader programs (tens of ms each with software OpenGL); one after the other, with
the event loop running between them, no single step freezes the window for that long. The
label is drawn once, transparent, when the first widget follows the viewer, for the same
reason."""

from __future__ import annotations

import warnings
import weakref
from contextlib import contextmanager

from napari.components.overlays import TextOverlay
from qtpy.QtCore import QTimer

from .layer_list import map_layers

LABEL_KEY = "semfocus_colorbar"
_FOLLOWED: weakref.WeakSet = weakref.WeakSet()  # viewers whose layer events are connected
_REVEALING: weakref.WeakSet = weakref.WeakSet()  # viewers where a new map is being revealed
STEP_MS = 60  # between the steps of a reveal: the canvas draws each step before the next
BAR_PARTS = 3  # the colour ramp, its outline, the ticks with their labels (bar_parts)
WARM_CHARS = "ÅÉÑŐjgpqy 0123456789.-+e"  # vispy measures text with the first; tick labels


@contextmanager
def napari_internals():
    """Around the reads of napari's canvas internals below (each falls back where they moved):
    napari warns about them on every access (FutureWarning), which users would see in their
    console many times per map."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        yield


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
    run_steps([*glyph_steps(viewer, ""), *label_warm_steps(viewer)])  # ahead of the first map

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
    """Show ``layer``, a map layer just added hidden, in steps (turns of the event loop): the
    glyphs of its label not rendered yet, a few per step (:func:`glyph_steps`); its colour bar,
    made while the layer is hidden (napari builds the bar's visuals but draws no bar of a hidden
    layer), its parts hidden; the layer; the bar's parts, one per step (:func:`bar_parts`); the
    label. The colour bars follow the layers again after the last step."""
    _REVEALING.add(viewer)
    overlays = getattr(viewer.canvas, "overlays", None)
    text_overlay = overlays.get(LABEL_KEY) if overlays is not None else None

    parts: list = []

    def make_bar():
        for other in map_layers(viewer):
            other.colorbar.visible = other is layer
        parts.extend(bar_parts(viewer, layer))
        for part in parts:
            part.visible = False

    def show_layer():
        layer.visible = True

    def show_part(i):
        if i < len(parts):
            parts[i].visible = True

    def show_text():
        if text_overlay is not None:
            text_overlay.text = label_text(layer)
            text_overlay.visible = True

    def done():
        _REVEALING.discard(viewer)
        update(viewer)

    steps = [*glyph_steps(viewer, label_text(layer)), make_bar, show_layer,
             *[lambda i=i: show_part(i) for i in range(BAR_PARTS)], show_text]
    steps = [lambda s=s: s() if layer in viewer.layers else None for s in steps] + [done]
    QTimer.singleShot(STEP_MS, lambda: run_steps(steps))  # after the turn that added it


def bar_parts(viewer, layer) -> list:
    """The visuals napari draws ``layer``'s colour bar with (the colour ramp, its outline, the
    ticks with their labels), each compiled on its first draw; [] where napari's canvas cannot
    be reached. (Hiding the tick labels apart from the tick lines loses them: napari lays them
    out only with the ticks.)"""
    try:
        with napari_internals():
            canvas = viewer.window._qt_viewer.canvas  # noqa: SLF001 (napari's canvas)
            node = canvas._layer_overlay_to_visual[layer][layer.colorbar].node  # noqa: SLF001
        return [node.img, node.box, node.ticks]
    except (AttributeError, KeyError):
        return []


def revealing(viewer) -> bool:
    """True while a new map layer of ``viewer`` is being shown (:func:`reveal`)."""
    return viewer in _REVEALING


def run_steps(steps: list) -> None:
    """Run ``steps`` one per event-loop turn, ``STEP_MS`` after the one before has run (and the
    canvas has drawn it)."""
    if steps:
        steps[0]()
        QTimer.singleShot(STEP_MS, lambda: run_steps(steps[1:]))


def glyph_steps(viewer, text: str, per_step: int = 4) -> list:
    """Steps that render the glyphs of ``text`` (and those napari's text measures its lines
    with, and the colour bar's digits) not rendered yet into the canvas's font, ``per_step`` at
    a time: napari renders a glyph (~5 ms here) the first time a text draws it, all in that
    draw. None where the canvas's font cannot be reached (napari's layout changed)."""
    try:
        with napari_internals():
            info = viewer.window._qt_viewer.canvas.font_info  # noqa: SLF001 (napari's canvas)
            info = info() if callable(info) else info  # a method in napari 0.9, once a property
            font = info.font_manager.get_font(info.face)
            rendered = set(getattr(font, "_glyphs", {}))
    except AttributeError:
        return []
    chars = list(dict.fromkeys(WARM_CHARS + text))

    def render(group):
        for char in group:
            font[char]  # noqa: B018 (renders and caches the glyph)

    new = [c for c in chars if c not in rendered]
    return [lambda g=new[i:i + per_step]: render(g) for i in range(0, len(new), per_step)]


def label_warm_steps(viewer) -> list:
    """Two steps that draw the label once, transparent (text, box and all), and hide it again:
    its first draw builds its shader programs (~50 ms here), better done before any map is
    shown. None where the label is already shown or napari has no canvas overlays."""
    overlays = getattr(viewer.canvas, "overlays", None)
    label = overlays.get(LABEL_KEY) if overlays is not None else None
    if label is None or label.visible:
        return []

    def draw_transparent():
        if not label.visible and viewer not in _REVEALING:
            label.update({"text": "0", "opacity": 0.0, "box_color": (0, 0, 0, 0),
                          "visible": True})

    def hide():
        label.update({"visible": False, "opacity": 1.0, "box_color": None})
        update(viewer)

    return [draw_transparent, hide]


def label_text(layer) -> str:
    """What the label says for a map layer: the score scale, then the layer's name."""
    scale = layer.metadata["semfocus_map"].get("score_scale", "focus score")
    return f"{scale}\n{layer.name}"


def update(viewer) -> None:
    """The colour bar of the top-most visible map on, the others off; the label says what the
    colours mean and which layer they belong to. Nothing while a new map is being revealed."""
    if viewer in _REVEALING:
        return
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
