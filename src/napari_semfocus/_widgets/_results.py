"""Result views of the Score focus widget: a sortable score table with CSV export (the CLI's
columns) and a focus-curve plot (score against slice, best slice marked)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from qtpy.QtCore import Qt
from qtpy.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem

from ._common import LayerScores

TABLE_COLUMNS = ("layer", "slice", "magnification", "score")
TABLE_HEADERS = ("Layer", "Slice", "Mag.", "Score")


class _NumberItem(QTableWidgetItem):
    """A table cell that sorts by its number, not its text."""

    def __init__(self, value: float | None, text: str):
        super().__init__(text)
        self._value = -np.inf if value is None else float(value)
        self.setData(Qt.ItemDataRole.UserRole, self._value)

    def __lt__(self, other):
        if isinstance(other, _NumberItem):
            return self._value < other._value
        return super().__lt__(other)


class ScoreTable(QTableWidget):
    """One row per (layer, slice): layer, slice, magnification, score. Click a header to sort."""

    def __init__(self, parent=None):
        super().__init__(0, len(TABLE_COLUMNS), parent)
        self.setHorizontalHeaderLabels(list(TABLE_HEADERS))
        self.horizontalHeaderItem(2).setToolTip("Magnification used for the score")
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.verticalHeader().setVisible(False)
        header = self.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.setSortingEnabled(True)
        self.setMinimumHeight(140)
        self._results: list[LayerScores] = []

    def set_results(self, results: Sequence[LayerScores], score_format: str = "{:.2f}") -> None:
        """Show ``results``; ``score_format`` formats the score cells (sorting uses the numbers)."""
        self._results = list(results)
        self.setSortingEnabled(False)
        rows = [(r, i, s) for r in self._results for i, s in enumerate(r.scores)]
        self.setRowCount(len(rows))
        for row, (res, i, score) in enumerate(rows):
            self.setItem(row, 0, QTableWidgetItem(res.layer_name))
            self.setItem(row, 1, _NumberItem(i, str(i)))
            mag = res.magnification
            self.setItem(row, 2, _NumberItem(mag, "" if mag is None else f"{mag:g}"))
            self.setItem(row, 3, _NumberItem(score, score_format.format(score)))
        self.setSortingEnabled(True)

    def rows(self) -> list[tuple[str, int, float | None, float]]:
        """(layer, slice, magnification, score) in the order shown (after any sorting)."""
        out = []
        for row in range(self.rowCount()):
            layer = self.item(row, 0).text()
            idx = int(self.item(row, 1).data(Qt.ItemDataRole.UserRole))
            mag = self.item(row, 2).data(Qt.ItemDataRole.UserRole)
            score = float(self.item(row, 3).data(Qt.ItemDataRole.UserRole))
            out.append((layer, idx, None if mag == -np.inf else float(mag), score))
        return out

    def csv_text(self) -> str:
        """The table as CSV with the CLI's columns ``path,index,magnification,score``: ``path``
        is the file the layer was read from, or the layer name for layers without a file."""
        from ..batch import ScoreRow, rows_to_csv

        paths = {r.layer_name: (r.path or r.layer_name) for r in self._results}
        rows = [ScoreRow(paths.get(layer, layer), idx, mag, score)
                for layer, idx, mag, score in self.rows()]
        return rows_to_csv(rows)


class FocusCurvePlot:
    """Matplotlib canvas: score against slice for each stack, best slice marked."""

    def __init__(self, dark: bool = True):
        from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
        from matplotlib.figure import Figure

        self._fg = "#d6d6d6" if dark else "#202020"
        self._bg = "#262930" if dark else "#ffffff"
        self.figure = Figure(figsize=(3.4, 2.4), dpi=100, facecolor=self._bg, layout="tight")
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setMinimumHeight(220)
        self.axes = self.figure.add_subplot(111)
        self.clear()

    def _style(self, ylabel: str) -> None:
        ax = self.axes
        ax.set_facecolor(self._bg)
        for spine in ax.spines.values():
            spine.set_color(self._fg)
        ax.tick_params(colors=self._fg, labelsize=8)
        ax.set_xlabel("slice", color=self._fg, fontsize=9)
        ax.set_ylabel(ylabel, color=self._fg, fontsize=9)

    def clear(self) -> None:
        self.axes.clear()
        self._style("focus score")
        self._placeholder("Score a stack (e.g. a focus series)\nto see its focus curve here.")
        self.canvas.draw()

    def _placeholder(self, text: str) -> None:
        ax = self.axes
        ax.set_xticks([])
        ax.set_yticks([])
        ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes,
                color=self._fg, fontsize=8, alpha=0.8)

    def plot(self, results: Sequence[LayerScores], ylabel: str, score_range=None) -> None:
        """Curves of all results with more than one slice; the best slice marked per curve."""
        ax = self.axes
        ax.clear()
        self._style(ylabel)
        curves = [r for r in results if len(r.scores) >= 2]
        for res in curves:
            x = np.arange(len(res.scores))
            (line,) = ax.plot(x, res.scores, marker="o", markersize=3.5, linewidth=1.5,
                              label=res.layer_name)
            best = res.best_index
            ax.axvline(best, color=line.get_color(), linestyle="--", linewidth=1, alpha=0.7)
            ax.plot([best], [res.scores[best]], marker="*", markersize=13, color="#ffcc00",
                    markeredgecolor=self._fg, linestyle="none")
            ax.annotate(f"best: slice {best}", (best, res.scores[best]),
                        textcoords="offset points", xytext=(6, -12), color=self._fg, fontsize=8)
        if not curves:
            self._placeholder("Single frames have no focus curve:\nsee the table below.")
        else:
            from matplotlib.ticker import MaxNLocator

            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            if score_range is not None:
                ax.set_ylim(*score_range)
        if len(curves) > 1:
            legend = ax.legend(fontsize=7, facecolor=self._bg, edgecolor=self._fg)
            for text in legend.get_texts():
                text.set_color(self._fg)
        self.canvas.draw()
