"""Result views of the Score focus widget: a sortable score table with CSV export (the CLI's
columns) and a focus-curve plot (score against slice, best slice marked); the sortable read-only
table and its number cells serve the Acceptance gate's decisions table too."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.ticker import MaxNLocator
from qtpy.QtCore import Qt
from qtpy.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem

from ..io.tables import MEASURE_COLUMNS, SCORE_COLUMNS, scores_csv
from ..jobs.score import ImageScores
from ..scoring.astigmatism import astigmatism_line
from ..scoring.focus_curve_plot import draw_focus_curve, z_label
from .plots import ThemedPlot

TABLE_HEADERS = ("Layer", "Slice", "Mag.", "Score", "Worst")  # short: the Layer column gets the width


class NumberItem(QTableWidgetItem):
    """A table cell that sorts by its number, not its text."""

    def __init__(self, value: float | None, text: str):
        super().__init__(text)
        self._value = -np.inf if value is None else float(value)
        self.setData(Qt.ItemDataRole.UserRole, self._value)

    def __lt__(self, other):
        if isinstance(other, NumberItem):
            return self._value < other._value
        return super().__lt__(other)


class SortableTable(QTableWidget):
    """A read-only table selecting whole rows, sorted by a click on a column header; column
    ``stretch`` takes the spare width, ``sort_by`` (when given) is sorted on first."""

    def __init__(self, headers, stretch: int, min_height: int, sort_by: int | None = None,
                 parent=None):
        super().__init__(0, len(headers), parent)
        self.setHorizontalHeaderLabels(list(headers))
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.verticalHeader().setVisible(False)
        header = self.horizontalHeader()
        # the number columns as wide as their header (or a 5-digit number) needs; column
        # ``stretch`` (a name) takes the rest, so it is not squeezed to "..." in a narrow dock
        metrics = header.fontMetrics()
        for col, text in enumerate(headers):
            if col != stretch:
                header.setSectionResizeMode(col, QHeaderView.ResizeMode.Interactive)
                header.resizeSection(col, 10 + max(metrics.horizontalAdvance(text),
                                                   metrics.horizontalAdvance("0000")))
        header.setSectionResizeMode(stretch, QHeaderView.ResizeMode.Stretch)
        if sort_by is not None:
            header.setSortIndicator(sort_by, Qt.SortOrder.AscendingOrder)
        self.setSortingEnabled(True)
        self.setMinimumHeight(min_height)
        self.setTextElideMode(Qt.TextElideMode.ElideMiddle)  # long layer names keep both ends


class ScoreTable(SortableTable):
    """One row per (layer, slice): layer, slice, magnification, score (with its interval when the
    model has one) and the score of the worst informative region (empty for a classical
    measure). Click a header to sort."""

    def __init__(self, parent=None):
        super().__init__(TABLE_HEADERS, stretch=0, min_height=140, parent=parent)
        # the score and its interval, "9.47 (8.7–10.0)", in full
        self.horizontalHeader().setSectionResizeMode(3, QHeaderView.ResizeMode.ResizeToContents)
        self.horizontalHeaderItem(2).setToolTip("Magnification used for the score")
        self.horizontalHeaderItem(3).setToolTip(
            "The score and, in brackets, where the true score lies for 80 % of frames (the "
            "model's interval; wider for noisy frames)")
        self.horizontalHeaderItem(4).setToolTip(
            "Score of the worst informative region: the lowest-scoring quarter of the tiles "
            "that show sample (a partly blurred frame scores low here)")
        self._results: list[ImageScores] = []

    def set_results(self, results: Sequence[ImageScores], score_format: str = "{:.2f}") -> None:
        """Show ``results``; ``score_format`` formats the score cells (sorting uses the numbers)."""
        self._results = list(results)
        self.setSortingEnabled(False)
        rows = [(r, i, s) for r in self._results for i, s in enumerate(r.scores)]
        self.setRowCount(len(rows))
        for row, (res, i, score) in enumerate(rows):
            worst = None if res.worst_region is None else float(res.worst_region[i])
            self.setItem(row, 0, QTableWidgetItem(res.name))
            self.setItem(row, 1, NumberItem(i, str(i)))
            mag = res.magnification
            self.setItem(row, 2, NumberItem(mag, "" if mag is None else f"{mag:g}"))
            text = score_format.format(score)
            if res.low is not None:  # the interval, one decimal: "9.47 (8.7–10.0)"
                text += f" ({res.low[i]:.1f}–{res.high[i]:.1f})"
            self.setItem(row, 3, NumberItem(score, text))
            self.setItem(row, 4, NumberItem(worst, "" if worst is None
                                            else score_format.format(worst)))
        self.setSortingEnabled(True)

    def rows(self) -> list[tuple[str, int, float | None, float, float | None]]:
        """(layer, slice, magnification, score, worst region or None) in the order shown
        (after any sorting)."""
        out = []
        for row in range(self.rowCount()):
            layer = self.item(row, 0).text()
            idx = int(self.item(row, 1).data(Qt.ItemDataRole.UserRole))
            mag = self.item(row, 2).data(Qt.ItemDataRole.UserRole)
            score = float(self.item(row, 3).data(Qt.ItemDataRole.UserRole))
            worst = float(self.item(row, 4).data(Qt.ItemDataRole.UserRole))
            out.append((layer, idx, None if mag == -np.inf else float(mag), score,
                        None if worst == -np.inf else worst))
        return out

    def csv_text(self) -> str:
        """The table as CSV with the CLI's columns, in the order shown: ``semfocus score``'s
        (:data:`~napari_semfocus.io.tables.SCORE_COLUMNS`), or ``semfocus measure``'s for a
        classical measure; ``path`` is the file the layer was read from, or the layer name for
        layers without a file."""
        by_key = {(res.name, row.index): row for res in self._results
                  for row in res.rows(res.path or res.name)}
        rows = [by_key[(layer, idx)] for layer, idx, *_ in self.rows()]
        model = all(r.worst_region is not None for r in self._results)
        return scores_csv(rows, SCORE_COLUMNS if model else MEASURE_COLUMNS)


class FocusCurvePlot(ThemedPlot):
    """Matplotlib canvas: score against slice for each stack, best slice marked; a stack with a
    fitted through-focus curve: score against z, the fitted curve, best focus z0 with its
    interval and the best attainable score (:func:`~..scoring.focus_curve_plot.draw_focus_curve`)."""

    def __init__(self, dark: bool = True):
        super().__init__(dark, height=2.4, min_height=220)
        self.clear()

    def clear(self) -> None:
        self.axes.clear()
        self._style("slice", "focus score")
        self._placeholder("Score a stack (e.g. a focus series)\nto see its focus curve here.")
        self.canvas.draw()

    def _placeholder(self, text: str) -> None:
        ax = self.axes
        ax.set_xticks([])
        ax.set_yticks([])
        ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes,
                color=self._fg, fontsize=8, alpha=0.8)

    def plot(self, results: Sequence[ImageScores], ylabel: str, score_range=None) -> None:
        """Curves of all results with more than one slice; the best slice marked per curve."""
        ax = self.axes
        ax.clear()
        self._style("slice", ylabel)
        curves = [r for r in results if len(r.scores) >= 2]
        fitted = [r for r in curves if r.focus_curve is not None]
        # one z axis: fitted curves in another unit than the first are named in the widget's
        # best-focus lines only
        fitted = [r for r in fitted if r.focus_curve.z_unit == fitted[0].focus_curve.z_unit]
        if fitted:  # the fitted curves, on their z axis
            for k, res in enumerate(fitted):
                draw_focus_curve(ax, res.focus_curve, f"C{k}", self._fg,
                                 res.name if len(fitted) > 1 else None, _bounds(res))
            self._style(z_label(fitted[0].focus_curve), ylabel)
            curves = [r for r in curves if r.focus_curve is None and
                      fitted[0].focus_curve.z_unit == "slice"]
        for res in curves:
            x = np.arange(len(res.scores))
            (line,) = ax.plot(x, res.scores, marker="o", markersize=3.5, linewidth=1.5,
                              label=res.name)
            if res.low is not None:  # where the true score lies (the model's interval)
                ax.fill_between(x, res.low, res.high, color=line.get_color(), alpha=0.18,
                                linewidth=0)
            best = res.best_index
            ax.axvline(best, color=line.get_color(), linestyle="--", linewidth=1, alpha=0.7)
            ax.plot([best], [res.scores[best]], marker="*", markersize=13, color="#ffcc00",
                    markeredgecolor=self._fg, linestyle="none")
            ax.annotate(f"best: slice {best}", (best, res.scores[best]),
                        textcoords="offset points", xytext=(6, -12), color=self._fg, fontsize=8)
        if not curves and not fitted:
            self._placeholder("Single frames have no focus curve:\nsee the table below.")
        else:
            ax.xaxis.set_major_locator(MaxNLocator(nbins=5, integer=not fitted))
            if score_range is not None:
                ax.set_ylim(*score_range)
        if len(curves) + len(fitted) > 1:
            self._legend()
        self.canvas.draw()


def _bounds(res: ImageScores):
    """The slices' score intervals (low, high), or None."""
    return None if res.low is None else (res.low, res.high)


def focus_text(res: ImageScores) -> str:
    """The widget's line on a stack's fitted best focus and astigmatism (or why not fitted)."""
    curve = res.focus_curve
    if curve is None:
        return f"No focus curve: {res.focus_curve_note}"
    unit = "" if curve.z_unit == "slice" else f" {curve.z_unit}"
    return (f"'{res.name}': best focus z = {curve.best_z:.4g}{unit} (90 % interval "
            f"{curve.best_z_low:.4g} .. {curve.best_z_high:.4g}), nearest slice "
            f"{curve.best_index}; best attainable score {curve.best_score:.2f}. "
            + astigmatism_line(curve.astigmatism))
