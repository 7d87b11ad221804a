"""The base of the plugin's dock widgets: :class:`PluginDock` holds the viewer, the links to its
events (released when the widget is closed, :mod:`.viewer_state`) and the scrolled content, and
titles its dock by the widget's own name."""

from __future__ import annotations

from qtpy.QtWidgets import QDockWidget, QVBoxLayout, QWidget

from .forms import fit_scroll_width, scroll_wrapped
from .viewer_state import ViewerLinks, release_on_close

PLUGIN_NAME = "napari-semfocus"


class PluginDock(QWidget):
    """A dock widget of ``viewer``. Connect to the viewer's events with ``self.links.connect``
    (and bind keys with ``self.links.bind_key``): they are undone when napari takes the widget
    out of its dock or the widget is destroyed."""

    def __init__(self, viewer, parent=None):
        super().__init__(parent)
        self.viewer = viewer
        self.links = ViewerLinks(viewer)
        release_on_close(self, self.links)

    def set_scrolled_content(self, content, min_width: int) -> None:
        """Put ``content`` into the widget inside a vertical-only scroll area
        (``self.scroll_area``, sized to the content in ``showEvent``)."""
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        self.scroll_area = scroll_wrapped(content)
        outer.addWidget(self.scroll_area)
        self.setMinimumWidth(min_width)

    def showEvent(self, event) -> None:  # noqa: N802 (Qt naming)
        super().showEvent(event)
        if hasattr(self, "scroll_area"):
            fit_scroll_width(self.scroll_area)
        short_dock_title(self)


def short_dock_title(widget) -> None:
    """Title the dock holding ``widget`` by the widget's own name: napari names a plugin's dock
    "<widget> (napari-semfocus)", which tabbed docks cut to "Score focus (na…". The dock's own
    title bar and napari's Window menu keep the full name."""
    dock = enclosing_dock(widget)
    if dock is not None:
        dock.setWindowTitle(dock.windowTitle().removesuffix(f" ({PLUGIN_NAME})"))


def enclosing_dock(widget) -> QDockWidget | None:
    """The QDockWidget holding ``widget`` (None when it is not docked)."""
    dock = widget.parentWidget()
    while dock is not None and not isinstance(dock, QDockWidget):
        dock = dock.parentWidget()
    return dock
