"""What the plugin's widgets share about one napari viewer, and the links that tie a widget to
its viewer until the widget is closed.

:class:`ViewerState` is one evented object per viewer (psygnal, as napari itself uses): the model
chosen with "Use for scoring" in the Fine-tune widget. Score focus and Focus map subscribe to it
when they are made (and take the model already chosen); widgets of another viewer are not
touched (:func:`follow_model_choice`). :func:`state_of` finds or makes a viewer's state (held while the viewer lives).

:class:`ViewerLinks` records the callbacks a widget connects to its viewer's events and the key
it binds, and undoes them all in :meth:`ViewerLinks.release`; :func:`release_on_close` calls it
when napari takes the widget out of its dock (napari's ``remove_dock_widget`` un-parents the
widget; the dock's close button does the same) or when the widget is destroyed.
"""

from __future__ import annotations

import weakref
from pathlib import Path

from psygnal import Signal
from qtpy.QtCore import QEvent, QObject

from ..jobs.score import MODEL_METHOD

_states: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _real_viewer(viewer):
    """napari hands plugins a proxy of the viewer; one state per real viewer."""
    return getattr(viewer, "__wrapped__", viewer)


class ViewerState:
    """The plugin's shared state of one viewer: the model used for scoring (``None``: the
    shipped default). ``model_changed(path)`` is emitted when it changes."""

    model_changed = Signal(str)

    def __init__(self):
        self.model_path: str | None = None

    def use_model(self, path) -> int:
        """Score with the model at ``path`` in every widget of this viewer (now and later);
        returns how many open widgets follow the choice."""
        self.model_path = str(Path(path))
        self.model_changed.emit(self.model_path)
        return len(self.model_changed)


def follow_model_choice(widget) -> None:
    """Let ``widget`` (a :class:`.dock.PluginDock` with ``set_method`` and ``set_checkpoint``)
    score with the model chosen for its viewer: the one chosen already, and any chosen later
    (until the widget is closed)."""
    state = state_of(widget.viewer)

    def use(path: str) -> None:
        widget.set_method(MODEL_METHOD)
        widget.set_checkpoint(path)

    if state.model_path is not None:
        use(state.model_path)
    widget.links.connect(state.model_changed, use)


def state_of(viewer) -> ViewerState:
    """The :class:`ViewerState` of ``viewer`` (made on first use)."""
    real = _real_viewer(viewer)
    state = _states.get(real)
    if state is None:
        state = _states[real] = ViewerState()
    return state


class ViewerLinks:
    """Connections from a viewer's events to one widget, undone together by :meth:`release`."""

    def __init__(self, viewer):
        self.viewer = viewer
        self._connections: list[tuple[object, object]] = []
        self._keys: list[tuple[str, object]] = []
        self._on_release: list = []
        self.released = False

    def connect(self, emitter, callback) -> None:
        """``emitter.connect(callback)`` (a napari event emitter or a psygnal signal instance),
        disconnected on release."""
        emitter.connect(callback)
        self._connections.append((emitter, callback))

    def bind_key(self, key: str, callback) -> None:
        """Bind ``key`` on the viewer to ``callback``; on release the key is unbound if it is
        still this callback's (another widget may have taken it since)."""
        self.viewer.bind_key(key, callback, overwrite=True)
        self._keys.append((key, callback))

    def when_released(self, callback) -> None:
        """Call ``callback()`` on release (e.g. to stop the widget's running job)."""
        self._on_release.append(callback)

    def release(self) -> None:
        """Disconnect every callback and unbind the keys, then call the ``when_released``
        callbacks (once; later calls do nothing)."""
        if self.released:
            return
        self.released = True
        for emitter, callback in self._connections:
            try:
                emitter.disconnect(callback)
            except (RuntimeError, TypeError, ValueError):  # already gone with its viewer
                pass
        for key, callback in self._keys:
            # bind_key(key, None) unbinds and returns what was bound: put back another's
            other = self.viewer.bind_key(key, None, overwrite=True)
            if other is not None and other is not callback:
                self.viewer.bind_key(key, other, overwrite=True)
        self._connections.clear()
        self._keys.clear()
        for callback in self._on_release:
            callback()


class _ReleaseOnUnparent(QObject):
    """Event filter: release the links when the widget loses its parent after having had one."""

    def __init__(self, widget, links: ViewerLinks):
        super().__init__(widget)
        self._links = links
        self._had_parent = widget.parent() is not None

    def eventFilter(self, obj, event):  # noqa: N802 (Qt naming)
        if event.type() == QEvent.Type.ParentChange:
            if obj.parent() is not None:
                self._had_parent = True
            elif self._had_parent:
                self._links.release()
        return False


def release_on_close(widget, links: ViewerLinks) -> None:
    """Release ``links`` when ``widget`` is taken out of its dock or destroyed."""
    widget.installEventFilter(_ReleaseOnUnparent(widget, links))
    widget.destroyed.connect(lambda *_: links.release())
