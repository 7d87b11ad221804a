"""The viewer's image layers in a dock widget, kept in step with the viewer's layer list:
:class:`LayerChecklist` ticks the layers to process (Score focus, Acceptance gate; it follows
renames too) and :class:`LayerCombo` chooses one (Focus map, Fine-tune). Neither offers the
plugin's own focus-map layers (:func:`input_layers`): they hold scores, not SEM images.
:class:`ChecklistMixin` gives a widget the checklist's public API.
"""

from __future__ import annotations

from qtpy.QtCore import Qt, Signal
from qtpy.QtWidgets import QComboBox, QListWidget, QListWidgetItem

from .forms import compact_combo
from .layers import image_layers


def map_layers(viewer) -> list:
    """The focus-map layers this plugin made (``metadata["semfocus_map"]``), in layer order."""
    return [lyr for lyr in image_layers(viewer) if "semfocus_map" in (lyr.metadata or {})]


def input_layers(viewer) -> list:
    """The image layers a widget may process: all but the focus maps this plugin made."""
    maps = map_layers(viewer)
    return [lyr for lyr in image_layers(viewer) if lyr not in maps]


def _follow_layer_list(links, callback) -> None:
    """Call ``callback(event)`` whenever the viewer's layers are inserted, removed or moved
    (until ``links``, a :class:`.viewer_state.ViewerLinks`, are released)."""
    events = links.viewer.layers.events
    for ev in (events.inserted, events.removed, events.moved):
        links.connect(ev, callback)


class LayerChecklist(QListWidget):
    """The viewer's image layers, each with a tick box."""

    #: the ticks may have changed: by the user, :meth:`refresh` or :meth:`set_ticked`
    ticks_changed = Signal()

    def __init__(self, links, tip: str, max_height: int, parent=None):
        super().__init__(parent)
        self.viewer = links.viewer
        self._links = links
        self.setToolTip(tip)
        self.setMaximumHeight(max_height)
        self.itemChanged.connect(lambda _item: self.ticks_changed.emit())
        _follow_layer_list(links, self._on_layers_changed)
        for layer in self.viewer.layers:
            links.connect(layer.events.name, self.refresh)

    def _on_layers_changed(self, event=None) -> None:
        layer = getattr(event, "value", None)
        if layer is not None and hasattr(layer, "events") and hasattr(layer.events, "name"):
            self._links.connect(layer.events.name, self.refresh)
        self.refresh()

    def refresh(self) -> None:
        """Rebuild the list from the viewer, keeping the ticks of layers still there; when none
        of them is ticked, tick the selected image layers (or the newest image layer)."""
        ticked = set(self.ticked_names())
        layers = input_layers(self.viewer)
        if not ticked & {lyr.name for lyr in layers}:
            chosen = [lyr.name for lyr in layers if lyr in self.viewer.layers.selection]
            ticked = set(chosen or ([layers[-1].name] if layers else []))
        self.blockSignals(True)
        self.clear()
        for layer in layers:
            item = QListWidgetItem(layer.name)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked if layer.name in ticked
                               else Qt.CheckState.Unchecked)
            self.addItem(item)
        self.blockSignals(False)
        self.ticks_changed.emit()

    def ticked_names(self) -> list[str]:
        items = (self.item(i) for i in range(self.count()))
        return [it.text() for it in items if it.checkState() == Qt.CheckState.Checked]

    def ticked_layers(self) -> list:
        chosen = set(self.ticked_names())
        return [layer for layer in input_layers(self.viewer) if layer.name in chosen]

    def set_ticked(self, layer_names) -> None:
        """Tick exactly the image layers named in ``layer_names``."""
        wanted = set(layer_names)
        self.blockSignals(True)
        for i in range(self.count()):
            item = self.item(i)
            item.setCheckState(Qt.CheckState.Checked if item.text() in wanted
                               else Qt.CheckState.Unchecked)
        self.blockSignals(False)
        self.ticks_changed.emit()


class ChecklistMixin:
    """The public layer API of a widget whose ``layer_list`` is a :class:`LayerChecklist`."""

    layer_list: LayerChecklist

    def refresh_layers(self) -> None:
        """Rebuild the layer list from the viewer (see :meth:`LayerChecklist.refresh`)."""
        self.layer_list.refresh()

    def selected_layer_names(self) -> list[str]:
        return self.layer_list.ticked_names()

    def selected_layers(self) -> list:
        return self.layer_list.ticked_layers()

    def set_selected_layers(self, layer_names) -> None:
        """Tick exactly the image layers named in ``layer_names``."""
        self.layer_list.set_ticked(layer_names)


class LayerCombo(QComboBox):
    """The viewer's image layers other than focus maps (:func:`input_layers`), one to choose
    (a compact combo box)."""

    #: the chosen layer may have changed: another choice, or after :meth:`refresh`
    changed = Signal()

    def __init__(self, links, parent=None):
        super().__init__(parent)
        self.viewer = links.viewer
        compact_combo(self)
        self.currentIndexChanged.connect(lambda _i: self.changed.emit())
        _follow_layer_list(links, self.refresh)

    def refresh(self) -> None:
        """Rebuild the choices from the viewer, keeping the chosen layer when it is still there."""
        current = self.currentText()
        names = [lyr.name for lyr in input_layers(self.viewer)]
        self.blockSignals(True)
        self.clear()
        self.addItems(names)
        if current in names:
            self.setCurrentText(current)
        self.blockSignals(False)
        self.changed.emit()

    def layer(self):
        """The chosen layer (None when there is none)."""
        name = self.currentText()
        return self.viewer.layers[name] if name and name in self.viewer.layers else None
