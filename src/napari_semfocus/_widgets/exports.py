"""Saving a widget's results: ask for a file where none is given, write, say where."""

from __future__ import annotations

from pathlib import Path

from ..io.files import write_text
from .forms import ask_save_path


def save_text(widget, path, text: str, caption: str, default: str, file_filter: str,
              what: str) -> Path | None:
    """Write ``text`` to ``path`` (asks for a file when ``None``) and say "<what> written to
    <path>." on ``widget.status_label``; returns the path (None when cancelled)."""
    path = ask_save_path(widget, path, caption, default, file_filter)
    if path is not None:
        write_text(path, text)
        widget.status_label.setText(f"{what} written to {path}.")
    return path
