"""The panels of the Acceptance gate widget: the gate in use (file, figures, precision-recall
plot), calibration, apply, and the decisions (rejected-slice list and a sortable table).

The ``build_*`` functions make one panel and set its controls as attributes of the widget ``w``
(as Qt Designer's ``setupUi`` does), so the widget and scripts reach them by the same names;
the widget connects the signals.
"""

from __future__ import annotations

from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from qtpy.QtCore import Qt
from qtpy.QtGui import QColor
from qtpy.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)
from superqt import QCollapsible

from ..gate.calibrate import DEFAULT_TARGET_PRECISION
from ..gate.file import RULE_LABELS, gated_scores
from ..gate.labels import DEFAULT_ACCEPT_SCORE
from ..gate.plot import plot_pr_curve
from ..gate.review import DECISIONS
from .forms import (
    NOTE_STYLE,
    combo_box,
    dark_theme,
    double_spin_box,
    form_row,
    note_label,
    plot_colors,
    row_widget,
    with_tip,
)
from .layer_list import LayerChecklist
from .results import NumberItem, SortableTable

ACCEPT_BG = QColor(40, 160, 80, 90)
REJECT_BG = QColor(220, 60, 60, 110)
REVIEW_BG = QColor(230, 170, 30, 110)
TABLE_HEADERS = ("Slice", "Score", "Interval", "Worst", "Decision", "Layer")
DECISION_TEXT = {"accept": "accepted", "reject": "rejected", "review": "review"}


# ---- the panels -------------------------------------------------------------------------------
def build_gate_box(w) -> QGroupBox:
    """The gate in use: file and Load…, its summary, the PR plot, Save gate…"""
    box = QGroupBox("Gate")
    form = QFormLayout(box)
    w.gate_edit = with_tip(QLineEdit(), "Gate file (JSON) written by this widget or by "
                                        "'semfocus gate calibrate'.")
    w.gate_edit.setPlaceholderText("gate.json")
    w.load_button = with_tip(QPushButton("Load…"), "Load a gate file.")
    form.addRow("Gate file", row_widget(w.gate_edit, w.load_button))
    w.gate_label = note_label("No gate: load a gate file or calibrate one below.",
                              "The threshold in use and its figures on the calibration data.",
                              NOTE_STYLE)
    form.addRow(w.gate_label)
    w.pr_plot = PRPlot(dark_theme())
    w.figure, w.canvas = w.pr_plot.figure, w.pr_plot.canvas
    form.addRow(w.canvas)
    w.save_gate_button = with_tip(QPushButton("Save gate…"),
                                  "Write the calibrated gate to a JSON file.")
    w.save_gate_button.setEnabled(False)
    form.addRow(w.save_gate_button)
    return box


def build_calibrate_section(w) -> QCollapsible:
    """Calibration from a labelled manifest (collapsible: not needed once a gate file exists)."""
    w.calibrate_section = with_tip(
        QCollapsible("Calibrate from labelled images", expandedIcon="▼", collapsedIcon="▶"),
        "Choose the threshold on labelled images (expert scores or accept/reject labels).")
    cal = QWidget()
    cform = QFormLayout(cal)
    w.manifest_edit = QLineEdit()
    w.manifest_edit.setPlaceholderText("manifest.csv")
    w.manifest_browse = with_tip(QPushButton("Browse…"), "Choose the manifest CSV.")
    form_row(cform, "Manifest", row_widget(w.manifest_edit, w.manifest_browse), (
        "CSV with a path column (relative to the CSV's folder), the label column and "
        "optionally magnification (else from each file's metadata)."))
    w.label_column_edit = QLineEdit("label")
    form_row(cform, "Label column", w.label_column_edit, (
        "Expert scores (numbers: acceptable when >= Accept score) or accept/reject words."))
    w.accept_spin = double_spin_box(0.0, 10.0, DEFAULT_ACCEPT_SCORE, 0.5)
    form_row(cform, "Accept score", w.accept_spin, (
        "An image is acceptable when its expert score is at least this (1 for 0/1 labels)."))
    w.precision_spin = double_spin_box(0.5, 1.0, DEFAULT_TARGET_PRECISION, 0.01, decimals=3)
    form_row(cform, "Target precision", w.precision_spin, (
        "Fraction of accepted images that must be acceptable. The gate takes the threshold "
        "reaching it with the highest recall. After a calibration, changing it re-chooses "
        "the threshold at once (no rescoring)."))
    w.rule_combo = combo_box([("Whole score", "whole"),
                              ("Worst informative region", "worst-region")], chars=16)
    form_row(cform, "Gate on", w.rule_combo, (
        "The score compared with the threshold: the whole-frame score, or the score of the "
        "frame's worst informative region (the lowest-scoring quarter of the tiles that show "
        "sample), which rejects frames partly out of focus. Kept in the gate file. After a "
        "calibration, changing it re-chooses the threshold at once (no rescoring)."))
    w.hold_out_spin = double_spin_box(0.0, 0.9, 0.0, 0.1)
    w.hold_out_spin.setSpecialValueText("none")
    form_row(cform, "Hold out", w.hold_out_spin, (
        "Fraction of the groups (focus series: the manifest's series column, else each file) "
        "kept out of the calibration: the threshold is chosen on the others and the gate's "
        "figures are also counted on these held-out images (honest figures). 0: none."))
    w.checkpoint_edit = QLineEdit()
    w.checkpoint_edit.setPlaceholderText("empty: the shipped model / the gate's model")
    form_row(cform, "Model", w.checkpoint_edit, (
        "Checkpoint (.safetensors) to calibrate with; empty = the shipped default model. "
        "Applying uses the gate's own model (this file when given)."))
    w.calibrate_button = with_tip(QPushButton("Calibrate"), (
        "Score the manifest's images (worker thread) and choose the threshold."))
    cform.addRow(w.calibrate_button)
    w.calibrate_section.addWidget(cal)
    w.calibrate_section.expand(animate=False)
    return w.calibrate_section


def build_apply_box(w) -> QGroupBox:
    """The layers to accept/reject, Reuse scores, and the run controls (``JobRunner``)."""
    box = QGroupBox("Apply to image layers")
    alay = QVBoxLayout(box)
    w.layer_list = LayerChecklist(w.links, (
        "Tick the image layers to accept/reject: one decision per 2-D image or stack slice."), 64)
    alay.addWidget(w.layer_list)
    w.reuse_check = with_tip(QCheckBox("Reuse scores already in the layer"), (
        "Use the scores Score focus stored in the layer when they come from the gate's model "
        "(same model file, by name and SHA-256, and region, one per slice); otherwise the layer "
        "is scored."))
    w.reuse_check.setChecked(True)
    alay.addWidget(w.reuse_check)
    w.review_check = with_tip(QCheckBox("Review band: a person looks where the interval "
                                        "straddles the threshold"), (
        "Accept a frame only when its whole score's interval (score_low..score_high) lies at or "
        "above the threshold, reject it when the interval lies below, and mark it 'review' when "
        "the interval straddles the threshold. Needs a whole-score gate and a model with score "
        "intervals."))
    alay.addWidget(w.review_check)
    w.add_run_controls(alay, "Apply gate", "Score the ticked layers and accept/reject "
                        "each image or slice.", "Stop after the current batch.")
    return box


def build_decisions_box(w) -> QGroupBox:
    """Summary, the rejected slices (Next rejected, Export CSV…) and the decisions table."""
    box = QGroupBox("Decisions")
    rlay = QVBoxLayout(box)
    w.summary_label = note_label()
    rlay.addWidget(w.summary_label)
    rlay.addWidget(QLabel("Rejected and review slices (click to go there):"))
    w.rejected_list = with_tip(QListWidget(), "Click a rejected image/slice to show it.")
    w.rejected_list.setMaximumHeight(110)
    rlay.addWidget(w.rejected_list)
    buttons = QHBoxLayout()
    w.next_button = with_tip(QPushButton("Next rejected"),
                             "Go to the next rejected slice (wraps around).")
    w.export_button = with_tip(QPushButton("Export CSV…"), (
        "Save the decisions as CSV: path (the layer's file, or its name), index (slice), "
        "magnification, score, score_low, score_high, worst_region, accepted (1/0), and with the "
        "review band decision (accept/reject/review) — the columns of 'semfocus gate apply'."))
    buttons.addWidget(w.next_button)
    buttons.addWidget(w.export_button)
    rlay.addLayout(buttons)
    w.table = with_tip(DecisionTable(), "Score and decision per layer and slice.")
    rlay.addWidget(w.table)
    return box


# ---- the views --------------------------------------------------------------------------------
def fill_rejected_list(list_widget: QListWidget, results, rule: str) -> None:
    """One item per rejected (or, with the review band, review) image/slice of ``results``
    with the score the gate ``rule`` compared; its data is (layer name, slice)."""
    list_widget.clear()
    for res in results:
        gated = gated_scores(rule, res.scores, res.worst_region)
        for i in res.rejected_slices:
            why = f"{RULE_LABELS[rule]} {gated[i]:.2f}"
            if res.decisions is not None:
                low, high = res.bounds[0][i], res.bounds[1][i]
                why = f"{res.decisions[i]}: {why}, interval {low:.2f}–{high:.2f}"
            text = (f"{res.name}: slice {i} ({why})" if len(res.scores) > 1
                    else f"{res.name} ({why})")
            item = QListWidgetItem(text)
            item.setData(Qt.ItemDataRole.UserRole, (res.name, i))
            list_widget.addItem(item)


class DecisionTable(SortableTable):
    """One row per (layer, slice): slice, score, its interval, worst region, decision
    (accepted / rejected / review), layer (rows tinted). Sortable."""

    def __init__(self, parent=None):
        # sorted by slice at first, as scored
        super().__init__(TABLE_HEADERS, stretch=5, min_height=160, sort_by=0, parent=parent)
        for col in (2, 4):  # the interval "6.31–8.04" and the decision, in full
            self.horizontalHeader().setSectionResizeMode(
                col, QHeaderView.ResizeMode.ResizeToContents)

    def set_results(self, results) -> None:
        self.setSortingEnabled(False)
        rows = [(r, i) for r in results for i in range(len(r.scores))]
        self.setRowCount(len(rows))
        for row, (res, i) in enumerate(rows):
            ok = bool(res.accepted[i])
            decision = res.decisions[i] if res.decisions is not None else (
                "accept" if ok else "reject")
            worst = None if res.worst_region is None else float(res.worst_region[i])
            low = None if res.bounds is None else float(res.bounds[0][i])
            span = "" if res.bounds is None else f"{low:.2f}–{res.bounds[1][i]:.2f}"
            cells = [NumberItem(i, str(i)), NumberItem(res.scores[i], f"{res.scores[i]:.2f}"),
                     NumberItem(low, span),
                     NumberItem(worst, "" if worst is None else f"{worst:.2f}"),
                     NumberItem(DECISIONS.index(decision), DECISION_TEXT[decision]),
                     QTableWidgetItem(res.name)]
            tint = {"accept": ACCEPT_BG, "reject": REJECT_BG, "review": REVIEW_BG}[decision]
            for col, item in enumerate(cells):
                item.setBackground(tint)
                self.setItem(row, col, item)
        self.setSortingEnabled(True)

    def rows(self) -> list[tuple[str, int, float, bool, float]]:
        """(layer, slice, score, accepted, worst region) in the order shown."""
        role = Qt.ItemDataRole.UserRole
        return [(self.item(r, 5).text(), int(self.item(r, 0).data(role)),
                 float(self.item(r, 1).data(role)), self.decision(r) == "accept",
                 float(self.item(r, 3).data(role))) for r in range(self.rowCount())]

    def decision(self, row: int) -> str:
        """accept, reject or review: the decision shown in ``row``."""
        return DECISIONS[int(self.item(row, 4).data(Qt.ItemDataRole.UserRole))]


class PRPlot:
    """Matplotlib canvas with the precision-recall curve of a calibration or a gate file (the
    core's plot, as written by ``semfocus gate calibrate --plot``), or a placeholder text."""

    PLACEHOLDER = "Calibrate to see the precision-recall curve."

    def __init__(self, dark: bool = True):
        self.dark = dark
        self.figure = Figure(figsize=(3.4, 2.6), dpi=100)
        self.canvas = with_tip(FigureCanvasQTAgg(self.figure), (
            "Precision-recall curve of the calibration images: the dot is the gate, the dashed "
            "line the target precision."))
        self.canvas.setMinimumHeight(220)
        self.placeholder()

    def placeholder(self, text: str = PLACEHOLDER) -> None:
        fg, bg = plot_colors(self.dark)
        self.figure.clear()
        self.figure.set_facecolor(bg)
        ax = self.figure.add_subplot(1, 1, 1)
        ax.set_axis_off()
        ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True, color=fg, fontsize=8,
                transform=ax.transAxes)
        self.canvas.draw()
        self.canvas.setVisible(text != self.PLACEHOLDER)  # no empty plot before there is a gate

    def show(self, source, held_out=None, score_name: str | None = None) -> None:
        """The curve of ``source`` (a Calibration or a Gate) with the ``held_out`` figures when
        given, ``score_name`` the score the gate compares; the placeholder for None."""
        if source is None:
            self.placeholder()
            return
        plot_pr_curve(source, figure=self.figure, dark=self.dark, compact=True, held_out=held_out,
                      score_name=score_name)
        self.canvas.setVisible(True)
        self.canvas.draw()
