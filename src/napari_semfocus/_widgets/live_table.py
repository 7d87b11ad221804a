"""The Live QC widget's frame table: one row per scored frame (slice) as it arrives, newest at
the bottom and scrolled into view: the file, its score, its worst region and the decision
("accept", "retake" when the gate rejects it, "unreadable" when it has no score). A click on a
row asks for that frame to be shown (``on_pick(name)``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from qtpy.QtCore import Qt
from qtpy.QtGui import QBrush, QColor
from qtpy.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem

from .live_plot import ACCEPT, REJECT

COLUMNS = ("frame", "score", "worst", "decision")
ACCEPTED, RETAKE, UNREADABLE = "accept", "retake", "unreadable"
USER_ROLE = Qt.ItemDataRole.UserRole


class FrameTable(QTableWidget):
    """Scores of the frames of a live watch, one row per frame (slice)."""

    def __init__(self, on_pick: Callable[[str], None]):
        super().__init__(0, len(COLUMNS))
        self.setHorizontalHeaderLabels(COLUMNS)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.verticalHeader().setDefaultSectionSize(20)
        header = self.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for k in range(1, len(COLUMNS)):
            header.setSectionResizeMode(k, QHeaderView.ResizeMode.ResizeToContents)
        self.setMinimumHeight(170)
        self.cellClicked.connect(lambda row, _col: on_pick(self.item(row, 0).data(USER_ROLE)))

    def add(self, name: str, score: float | None, worst: float | None, decision: str) -> None:
        """One more row: file ``name``, its scores (None: no score) and its decision."""
        row = self.rowCount()
        self.insertRow(row)
        cells = (Path(name).name, _number(score), _number(worst), decision)
        for col, text in enumerate(cells):
            item = QTableWidgetItem(text)
            if col:
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self.setItem(row, col, item)
        self.item(row, 0).setData(USER_ROLE, name)
        self.item(row, 0).setToolTip(name)
        if decision != "":
            colour = ACCEPT if decision == ACCEPTED else REJECT
            self.item(row, 3).setForeground(QBrush(QColor(colour)))
        self.scrollToBottom()

    def clear_rows(self) -> None:
        self.setRowCount(0)

    def column_texts(self, col: int) -> list[str]:
        """The texts of column ``col`` (tests)."""
        return [self.item(row, col).text() for row in range(self.rowCount())]


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"
