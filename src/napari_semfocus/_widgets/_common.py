"""Helpers shared by the dock widgets: which layers can be scored, what their metadata says,
slices of stacks, the plain settings snapshot handed to worker threads, notifications, small Qt
builders and file dialogs. The run / cancel plumbing of a worker thread (``WorkerMixin``) and the
themed plot canvas are in :mod:`._controls`, the layer pickers in :mod:`._layer_list`.

Nothing here does numerical work; the worker side (``_score_job``) never touches Qt.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import SemFocusError

MODEL_METHOD = "model"
DEFAULT_MODEL, CHECKPOINT_MODEL = "default", "checkpoint"  # the model combo's choices
MODEL_FILES = "Model files (*.safetensors);;All files (*)"
NOTE_STYLE = "color: #9aa0a6;"
WARN_STYLE = "color: #f0a030;"


# ---- layers and their metadata (no Qt) ---------------------------------------------------
def image_layers(viewer) -> list:
    """The viewer's Image layers, in layer-list order."""
    from napari.layers import Image

    return [layer for layer in viewer.layers if isinstance(layer, Image)]


def layer_array(layer):
    """The layer's array (the full-resolution level of a multiscale layer)."""
    return layer.data[0] if layer.multiscale else layer.data


def lead_shape(layer) -> tuple:
    """Shape of the slice axes of an image layer (() for a 2-D image or ``None``)."""
    if layer is None:
        return ()
    return tuple(int(n) for n in np.shape(layer_array(layer))[: layer.ndim - 2])


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


def shown_slice(viewer, layer) -> tuple[int, ...]:
    """Index on the slice axes of ``layer`` of the slice the viewer shows (() for a 2-D image)."""
    lead = lead_shape(layer)
    if not lead:
        return ()
    point = layer.world_to_data(viewer.dims.point[-layer.ndim:])
    return tuple(min(max(int(round(float(v))), 0), n - 1) for v, n in zip(point, lead, strict=False))


def go_to_slice(viewer, layer, index: int) -> None:
    """Move the viewer's sliders to slice ``index`` (flat, row-major) of ``layer``."""
    offset = viewer.dims.ndim - layer.ndim
    for axis, i in enumerate(np.unravel_index(int(index), lead_shape(layer))):
        world = float(layer.translate[axis] + layer.scale[axis] * int(i))
        viewer.dims.set_point(offset + axis, world)


def parse_magnification(text: str, example: str = "") -> float | None:
    """'5000', '5,000', '5k', '5.72 K X' -> float; '' -> None; otherwise raises SemFocusError
    ("Magnification '…' is not a positive number<example>.")."""
    from ..io.sem_metadata import parse_zeiss_magnification

    clean = (text or "").strip().replace(",", "").replace("×", "x")
    if not clean:
        return None
    try:
        value = float(clean)
    except ValueError:
        value = parse_zeiss_magnification(clean if clean.lower().endswith("x") else clean + " x")
    if value is None or not np.isfinite(value) or value <= 0:
        raise SemFocusError(f"Magnification {text.strip()!r} is not a positive number{example}.")
    return float(value)


def existing_checkpoint(text: str) -> str | None:
    """The checkpoint path typed in a field (None when empty); SemFocusError when there is no
    such file."""
    text = (text or "").strip()
    if text and not Path(text).is_file():
        raise SemFocusError(f"Checkpoint {text} does not exist.")
    return text or None


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


def layer_input(layer, magnification: float | None, data=None) -> LayerInput:
    """The :class:`LayerInput` of an image layer with ``magnification``; ``data`` replaces the
    layer's full-resolution array (e.g. by one frame of it)."""
    return LayerInput(name=layer.name, data=layer_array(layer) if data is None else data,
                      magnification=magnification, databar_rows=layer_databar_rows(layer),
                      rgb=bool(layer.rgb), path=layer_source_path(layer))


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


def note_label(text: str = "", tip: str | None = None, style: str = ""):
    """A word-wrapped QLabel, with a tooltip and a style sheet when given."""
    from qtpy.QtWidgets import QLabel

    label = QLabel(text)
    label.setWordWrap(True)
    if tip is not None:
        label.setToolTip(tip)
    if style:
        label.setStyleSheet(style)
    return label


def row_widget(*widgets, stretch: int | None = None):
    """A QWidget holding ``widgets`` side by side without margins; the one at index ``stretch``
    takes the spare width."""
    from qtpy.QtWidgets import QHBoxLayout, QWidget

    row = QWidget()
    layout = QHBoxLayout(row)
    layout.setContentsMargins(0, 0, 0, 0)
    for i, widget in enumerate(widgets):
        layout.addWidget(widget, 1 if i == stretch else 0)
    return row


def spin_box(lo: int, hi: int, value: int, step: int = 1):
    """A QSpinBox from ``lo`` to ``hi`` showing ``value``."""
    from qtpy.QtWidgets import QSpinBox

    box = QSpinBox()
    box.setRange(lo, hi)
    box.setSingleStep(step)
    box.setValue(value)
    return box


def double_spin_box(lo: float, hi: float, value: float, step: float,
                    decimals: int | None = None):
    """A QDoubleSpinBox from ``lo`` to ``hi`` showing ``value`` (Qt's 2 decimals by default)."""
    from qtpy.QtWidgets import QDoubleSpinBox

    box = QDoubleSpinBox()
    if decimals is not None:
        box.setDecimals(decimals)
    box.setRange(lo, hi)
    box.setSingleStep(step)
    box.setValue(value)
    return box


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
    is cut off at the right; call it once styles are applied (e.g. from ``showEvent``).

    The widget holding the area gets at least that minimum width too: an explicit, smaller
    ``setMinimumWidth`` on it would otherwise let its dock stay narrower than the area."""
    content = area.widget()
    width = content.minimumSizeHint().width() + area.verticalScrollBar().sizeHint().width()
    width += 2 * area.frameWidth() + 2
    area.setMinimumWidth(width)
    owner = area.parentWidget()
    if owner is not None and owner.minimumWidth() < width:
        owner.setMinimumWidth(width)


def compact_combo(combo, chars: int = 12):
    """Let a combo box shrink below its longest item (it shows the item elided)."""
    from qtpy.QtWidgets import QComboBox

    combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    combo.setMinimumContentsLength(chars)
    return combo


def combo_box(items: Sequence = (), chars: int = 12):
    """A :func:`compact_combo` holding ``items``: texts, or (text, data) pairs."""
    from qtpy.QtWidgets import QComboBox

    combo = compact_combo(QComboBox(), chars)
    for item in items:
        combo.addItem(*((item,) if isinstance(item, str) else item))
    return combo


def method_combo():
    """The focus model or one of the classical measures (data: ``MODEL_METHOD`` or its name)."""
    from ..scoring.measures import MEASURES

    return combo_box([("FocusNet model (score 0–10)", MODEL_METHOD)]
                     + [(f"{name} (classical measure)", name) for name in MEASURES])


def model_combo():
    """The shipped model or a checkpoint file (data: ``DEFAULT_MODEL`` / ``CHECKPOINT_MODEL``)."""
    return combo_box([("Default model (shipped)", DEFAULT_MODEL),
                      ("Checkpoint file…", CHECKPOINT_MODEL)])


def dark_theme() -> bool:
    """Whether napari shows a dark theme (also when its settings cannot be read)."""
    try:
        from napari.settings import get_settings

        return get_settings().appearance.theme != "light"
    except Exception:
        return True


def plot_colors(dark: bool) -> tuple[str, str]:
    """Foreground and background colour of the plots in napari's dark or light theme."""
    return ("#d6d6d6", "#262930") if dark else ("#202020", "#ffffff")


def format_magnification(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def names(items: Sequence) -> str:
    return ", ".join(f"'{n}'" for n in items)


# ---- files ---------------------------------------------------------------------------------
def ask_save_path(parent, path, caption: str, default: str, file_filter: str):
    """``path`` as a Path, or the file the user picks in a save dialog (None when cancelled)."""
    if path is None:
        from qtpy.QtWidgets import QFileDialog

        path, _ = QFileDialog.getSaveFileName(parent, caption, default, file_filter)
        if not path:
            return None
    return Path(path)


def ask_open_path(parent, caption: str, file_filter: str, directory: str = "") -> str | None:
    """The existing file the user picks in an open dialog (None when cancelled)."""
    from qtpy.QtWidgets import QFileDialog

    path, _ = QFileDialog.getOpenFileName(parent, caption, directory, file_filter)
    return path or None


def browse_into(parent, edit, caption: str, file_filter: str) -> None:
    """Put the path of the file the user picks into the line edit ``edit`` (kept when cancelled)."""
    path = ask_open_path(parent, caption, file_filter)
    if path:
        edit.setText(path)


def write_text_file(path, text: str) -> None:
    """Write an export atomically (temp file + rename), like every file the core writes."""
    from ..scoring.checkpoint import atomic_write

    atomic_write(Path(path), lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
