"""Helpers shared by the dock widgets: which layers can be scored, what their metadata says,
the plain settings snapshot handed to worker threads, notifications, and small Qt builders.

Nothing here does numerical work; the worker side (``_score_job``) never touches Qt.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

MODEL_METHOD = "model"


# ---- layers and their metadata (no Qt) ---------------------------------------------------
def image_layers(viewer) -> list:
    """The viewer's Image layers, in layer-list order."""
    from napari.layers import Image

    return [layer for layer in viewer.layers if isinstance(layer, Image)]


def layer_magnification(layer) -> float | None:
    """Magnification the SEM reader or the sample data put into ``layer.metadata``."""
    value = (layer.metadata or {}).get("magnification")
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if np.isfinite(value) and value > 0 else None


def layer_databar_rows(layer) -> int:
    """Rows of the data bar at the bottom of the layer's frames (0 when none is known)."""
    try:
        return max(0, int((layer.metadata or {}).get("databar_rows") or 0))
    except (TypeError, ValueError):
        return 0


def layer_source_path(layer) -> str | None:
    """The file a layer was read from, where known."""
    path = (layer.metadata or {}).get("path")
    if not path:
        source = getattr(layer, "source", None)
        path = getattr(source, "path", None)
    return str(path) if path else None


def parse_magnification(text: str) -> float | None:
    """'5000', '5,000', '5k', '5.72 K X' -> float; '' -> None; raises ValueError otherwise."""
    from ..sem_metadata import parse_zeiss_magnification

    text = (text or "").strip().replace(",", "").replace("×", "x")
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        value = parse_zeiss_magnification(text if text.lower().endswith("x") else text + " x")
    if value is None or not np.isfinite(value) or value <= 0:
        raise ValueError(text)
    return float(value)


# ---- the settings snapshot handed to the worker -------------------------------------------
@dataclass(frozen=True)
class LayerInput:
    """One layer to score, captured on the UI thread (the array is not copied)."""

    name: str
    data: object  # the layer's array (numpy, dask, ...)
    magnification: float | None
    databar_rows: int
    rgb: bool = False
    path: str | None = None

    @property
    def n_slices(self) -> int:
        shape = tuple(np.shape(self.data))
        spatial = len(shape) - (1 if self.rgb else 0)
        return int(np.prod(shape[: spatial - 2])) if spatial > 2 else 1


@dataclass(frozen=True)
class ScoreSettings:
    """Everything a scoring run needs, read from the widget once before the worker starts."""

    layers: tuple[LayerInput, ...]
    method: str = MODEL_METHOD  # "model" or a name in measures.MEASURES
    checkpoint: str | None = None  # None = the shipped default model
    device: str = "auto"
    region: str = "whole"
    batch_size: int = 32


@dataclass
class LayerScores:
    """Scores of one layer, one per slice (one for a 2-D image)."""

    layer_name: str
    scores: np.ndarray
    magnification: float | None
    databar_rows: int
    path: str | None = None

    @property
    def best_index(self) -> int:
        return int(np.argmax(self.scores))


@dataclass
class RunResult:
    """What a finished run returns to the UI thread."""

    settings: ScoreSettings
    layers: list[LayerScores] = field(default_factory=list)
    model_name: str = ""
    device_name: str = ""
    cancelled: bool = False


# ---- notifications -------------------------------------------------------------------------
def notify_error(message: str) -> None:
    from napari.utils.notifications import show_error

    show_error(message)


def notify_info(message: str) -> None:
    from napari.utils.notifications import show_info

    show_info(message)


# ---- small Qt builders ---------------------------------------------------------------------
def with_tip(widget, tip: str):
    """Set ``tip`` as the tooltip of ``widget`` and return the widget."""
    widget.setToolTip(tip)
    return widget


def form_row(layout, label: str, widget, tip: str) -> None:
    """Add ``label: widget`` to a QFormLayout, both carrying the tooltip."""
    from qtpy.QtWidgets import QLabel

    lab = with_tip(QLabel(label), tip)
    layout.addRow(lab, with_tip(widget, tip))


def scroll_wrapped(content):
    """A QScrollArea around ``content`` that scrolls vertically on small screens."""
    from qtpy.QtCore import Qt
    from qtpy.QtWidgets import QFrame, QScrollArea

    area = QScrollArea()
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    area.setWidget(content)
    return area


def fit_scroll_width(area) -> None:
    """Make a scroll area (no horizontal scrolling) wide enough for its content, so that nothing
    is cut off at the right; call it once styles are applied (e.g. from ``showEvent``)."""
    content = area.widget()
    width = content.minimumSizeHint().width() + area.verticalScrollBar().sizeHint().width()
    area.setMinimumWidth(width + 2 * area.frameWidth() + 2)


def compact_combo(combo, chars: int = 12):
    """Let a combo box shrink below its longest item (it shows the item elided)."""
    from qtpy.QtWidgets import QComboBox

    combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    combo.setMinimumContentsLength(chars)
    return combo


def format_magnification(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def names(items: Sequence) -> str:
    return ", ".join(f"'{n}'" for n in items)
