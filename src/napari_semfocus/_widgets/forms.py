"""The small Qt pieces of the dock widgets' forms: notifications, tooltipped fields, combo boxes
(method, model), spin boxes, scroll areas, plot colours and file dialogs. The base of the docks
is :mod:`.dock`, running a job :mod:`.job_runner`, the plots :mod:`.plots`, saving results
:mod:`.exports`, the viewer's shared state :mod:`.viewer_state`, the layer pickers in :mod:`.layer_list`, the layers as job inputs in :mod:`.layers`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from napari.settings import get_settings
from napari.utils import notifications
from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QScrollArea,
    QSpinBox,
    QTableWidget,
    QWidget,
)
from superqt import QCollapsible

from ..errors import SemFocusError
from ..jobs.score import MODEL_METHOD
from ..scoring.backends import BACKENDS
from ..scoring.measures import MEASURES

DEFAULT_MODEL, CHECKPOINT_MODEL = "default", "checkpoint"  # the model combo's choices
MODEL_FILES = "Model files (*.safetensors);;All files (*)"
NOTE_STYLE = "color: #9aa0a6;"
WARN_STYLE = "color: #f0a030;"


def existing_checkpoint(text: str) -> str | None:
    """The checkpoint path typed in a field (None when empty); SemFocusError when there is no
    such file."""
    text = (text or "").strip()
    if text and not Path(text).is_file():
        raise SemFocusError(f"Checkpoint {text} does not exist.")
    return text or None


# ---- notifications -------------------------------------------------------------------------
def notify_error(message: str) -> None:
    """A one-sentence error in napari's notifications."""
    notifications.show_error(message)


def notify_info(message: str) -> None:
    notifications.show_info(message)


def notify_warning(message: str) -> None:
    """A warning in napari's notifications (the work goes on)."""
    notifications.show_warning(message)


# ---- small Qt builders ---------------------------------------------------------------------
def with_tip(widget, tip: str):
    """Set ``tip`` as the tooltip of ``widget`` and return the widget."""
    widget.setToolTip(tip)
    return widget


def form_row(layout, label: str, widget, tip: str) -> None:
    """Add ``label: widget`` to a QFormLayout, both carrying the tooltip."""
    lab = with_tip(QLabel(label), tip)
    layout.addRow(lab, with_tip(widget, tip))


def note_label(text: str = "", tip: str | None = None, style: str = ""):
    """A word-wrapped QLabel, with a tooltip and a style sheet when given."""
    label = QLabel(text)
    label.setWordWrap(True)
    if tip is not None:
        label.setToolTip(tip)
    if style:
        label.setStyleSheet(style)
    return label


def rows_table(headers: Sequence[str], tip: str, stretch: int, min_height: int,
               editable: bool = True):
    """A table of whole-row selection without row numbers, its columns sized to their
    contents except ``stretch``, which takes the rest of the width."""
    table = with_tip(QTableWidget(0, len(headers)), tip)
    table.setHorizontalHeaderLabels(list(headers))
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    if not editable:
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.verticalHeader().setVisible(False)
    header = table.horizontalHeader()
    header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    header.setSectionResizeMode(stretch, QHeaderView.ResizeMode.Stretch)
    table.setMinimumHeight(min_height)
    return table


def row_widget(*widgets, stretch: int | None = None):
    """A QWidget holding ``widgets`` side by side without margins; the one at index ``stretch``
    takes the spare width."""
    row = QWidget()
    layout = QHBoxLayout(row)
    layout.setContentsMargins(0, 0, 0, 0)
    for i, widget in enumerate(widgets):
        layout.addWidget(widget, 1 if i == stretch else 0)
    return row


def spin_box(lo: int, hi: int, value: int, step: int = 1):
    """A QSpinBox from ``lo`` to ``hi`` showing ``value``."""
    box = QSpinBox()
    box.setRange(lo, hi)
    box.setSingleStep(step)
    box.setValue(value)
    return box


def double_spin_box(lo: float, hi: float, value: float, step: float,
                    decimals: int | None = None):
    """A QDoubleSpinBox from ``lo`` to ``hi`` showing ``value`` (Qt's 2 decimals by default)."""
    box = QDoubleSpinBox()
    if decimals is not None:
        box.setDecimals(decimals)
    box.setRange(lo, hi)
    box.setSingleStep(step)
    box.setValue(value)
    return box


def scroll_wrapped(content):
    """A QScrollArea around ``content`` that scrolls vertically on small screens."""
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


def advanced_section(tip: str, title: str = "Advanced settings"):
    """A folded section for rarely changed settings: (the QCollapsible, the form inside)."""
    section = with_tip(QCollapsible(title, expandedIcon="▼", collapsedIcon="▶"), tip)
    content = QWidget()
    form = QFormLayout(content)
    section.addWidget(content)
    return section, form


def compact_combo(combo, chars: int = 12):
    """Let a combo box shrink below its longest item (it shows the item elided)."""
    combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    combo.setMinimumContentsLength(chars)
    return combo


def combo_box(items: Sequence = (), chars: int = 12):
    """A :func:`compact_combo` holding ``items``: texts, or (text, data) pairs."""
    combo = compact_combo(QComboBox(), chars)
    for item in items:
        combo.addItem(*((item,) if isinstance(item, str) else item))
    return combo


def backend_row(form):
    """The Backend row of a form (auto | torch | onnxruntime, :mod:`~..scoring.backends`);
    returns its combo box."""
    combo = combo_box(BACKENDS)
    form_row(form, "Backend", combo, (
        "What runs the model: auto uses ONNX Runtime on a CPU where it is installed (int8 when "
        "the model passed its int8 check, else float32; exported from the model on first use "
        "and cached), PyTorch on a GPU; torch or onnxruntime force one."))
    return combo


def method_combo():
    """The focus model or one of the classical measures (data: ``MODEL_METHOD`` or its name)."""
    return combo_box([("FocusNet model (score 0–10)", MODEL_METHOD)]
                     + [(f"{name} (classical measure)", name) for name in MEASURES])


def select_method(combo, method: str) -> None:
    """Choose ``method`` (``"model"`` or a classical measure's name) in a :func:`method_combo`."""
    index = combo.findData(method)
    if index < 0:
        raise ValueError(f"unknown method {method!r}")
    combo.setCurrentIndex(index)


def model_combo():
    """The shipped model or a checkpoint file (data: ``DEFAULT_MODEL`` / ``CHECKPOINT_MODEL``)."""
    return combo_box([("Default model (shipped)", DEFAULT_MODEL),
                      ("Checkpoint file…", CHECKPOINT_MODEL)])


def dark_theme() -> bool:
    """Whether napari shows a dark theme (also when its settings cannot be read)."""
    try:
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
        path, _ = QFileDialog.getSaveFileName(parent, caption, default, file_filter)
        if not path:
            return None
    return Path(path)


def ask_open_path(parent, caption: str, file_filter: str, directory: str = "") -> str | None:
    """The existing file the user picks in an open dialog (None when cancelled)."""
    path, _ = QFileDialog.getOpenFileName(parent, caption, directory, file_filter)
    return path or None


def browse_into(parent, edit, caption: str, file_filter: str) -> None:
    """Put the path of the file the user picks into the line edit ``edit`` (kept when cancelled)."""
    path = ask_open_path(parent, caption, file_filter)
    if path:
        edit.setText(path)
