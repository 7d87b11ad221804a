"""The Fine-tune widget's live plot: training RMSE per batch, validation RMSE per epoch."""

from __future__ import annotations

import math


class TrainingPlot:
    """Matplotlib canvas: training RMSE per batch and validation RMSE per epoch. Redraws are
    throttled (at most one per :attr:`REDRAW_MS`), so fast batches do not busy the UI thread."""

    REDRAW_MS = 250

    def __init__(self, dark: bool = True):
        from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
        from matplotlib.figure import Figure

        self._fg = "#d6d6d6" if dark else "#202020"
        self._bg = "#262930" if dark else "#ffffff"
        self.figure = Figure(figsize=(3.4, 2.3), dpi=100, facecolor=self._bg, layout="tight")
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setMinimumHeight(200)
        self.axes = self.figure.add_subplot(111)
        self.draws = 0  # redraws with new data (tests)
        self._pending = False
        self.reset()

    def reset(self) -> None:
        self.train_x, self.train_y, self.val_x, self.val_y = [], [], [], []
        ax = self.axes
        ax.clear()
        ax.set_facecolor(self._bg)
        for spine in ax.spines.values():
            spine.set_color(self._fg)
        ax.tick_params(colors=self._fg, labelsize=8)
        ax.set_xlabel("epoch", color=self._fg, fontsize=9)
        ax.set_ylabel("RMSE (score points)", color=self._fg, fontsize=9)
        (self.train_line,) = ax.plot([], [], color="#4fa3e0", linewidth=1, alpha=0.8,
                                     label="training (batch)")
        (self.val_line,) = ax.plot([], [], color="#ffb000", marker="o", markersize=4,
                                   linewidth=1.5, label="validation")
        legend = ax.legend(fontsize=7, facecolor=self._bg, edgecolor=self._fg, loc="upper right")
        for text in legend.get_texts():
            text.set_color(self._fg)
        self.canvas.draw_idle()

    def add_batch(self, x: float, loss: float) -> None:
        self.train_x.append(x)
        self.train_y.append(math.sqrt(max(loss, 0.0)))
        self.train_line.set_data(self.train_x, self.train_y)
        self._rescale()

    def add_validation(self, epoch: int, rmse: float | None) -> None:
        if rmse is None:
            return
        self.val_x.append(epoch)
        self.val_y.append(rmse)
        self.val_line.set_data(self.val_x, self.val_y)
        self._rescale()

    def _rescale(self) -> None:
        from qtpy.QtCore import QTimer

        if not self._pending:
            self._pending = True
            QTimer.singleShot(self.REDRAW_MS, self._redraw)

    def _redraw(self) -> None:
        self._pending = False
        self.axes.relim()
        self.axes.autoscale_view(scaley=False)
        top = max(self.train_y + self.val_y, default=1.0)
        self.axes.set_ylim(0, 1.08 * top if top > 0 else 1.0)
        self.canvas.draw_idle()
        self.draws += 1
