"""The model chosen with "Use for scoring" in the Fine-tune widget (no Qt).

The Score focus and Focus map widgets call :func:`follow` when they are made; :func:`use_for_scoring`
then switches every open one (and every one opened later in this session) to that checkpoint.
Widgets are held by weak reference; one whose Qt object is gone is dropped.
"""

from __future__ import annotations

import weakref
from pathlib import Path

from ..jobs.score import MODEL_METHOD

_active: dict = {"path": None}
_followers: list[weakref.ref] = []


def follow(widget) -> None:
    """Let ``widget`` (with ``set_method(name)`` and ``set_checkpoint(path)``) follow the active
    model: at once when one has been chosen, and whenever one is chosen later."""
    _followers.append(weakref.ref(widget))
    if _active["path"] is not None:
        _apply(widget, _active["path"])


def use_for_scoring(path) -> int:
    """Make every following widget score with the model at ``path``; returns how many did."""
    _active["path"] = str(Path(path))
    done = 0
    for ref in list(_followers):
        widget = ref()
        if widget is None or not _apply(widget, _active["path"]):
            _followers.remove(ref)
        else:
            done += 1
    return done


def reset() -> None:
    """Back to the shipped default for widgets made from now on (tests)."""
    _active["path"] = None


def _apply(widget, path: str) -> bool:
    try:
        widget.set_method(MODEL_METHOD)
        widget.set_checkpoint(path)
    except RuntimeError:  # the Qt object behind the widget was deleted
        return False
    return True
