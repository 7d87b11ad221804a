"""The Fine-tune widget's live plot: training RMSE per batch, validation RMSE per epoch, and the
parent's validation RMSE (epoch 0) as a dotted line that an epoch must get below."""

from __future__ import annotations

import math

from qtpy.QtCore import QTimer

from .controls import ThemedPlot


class TrainingPlot(ThemedPlot):
    """Matplotlib canvas: training RMSE per batch and validation RMSE per epoch. Redraws are
    throttled (at most one per :attr:`REDRAW_MS`), so fast batches do not busy the UI thread."""

    REDRAW_MS = 250

    def __init__(self, dark: bool = True):
        super().__init__(dark, height=2.3, min_height=200)
        self.draws = 0  # redraws with new data (tests)
        self._pending = False
        self.reset()

    def reset(self) -> None:
        self.train_x, self.train_y, self.val_x, self.val_y = [], [], [], []
        ax = self.axes
        ax.clear()
        self._style("epoch", "RMSE (score points)")
        (self.train_line,) = ax.plot([], [], color="#4fa3e0", linewidth=1, alpha=0.8,
                                     label="training (batch)")
        (self.val_line,) = ax.plot([], [], color="#ffb000", marker="o", markersize=4,
                                   linewidth=1.5, label="validation")
        self._legend(loc="upper right")
        self.canvas.draw_idle()

    def add_batch(self, x: float, loss: float) -> None:
        self.train_x.append(x)
        self.train_y.append(math.sqrt(max(loss, 0.0)))
        self.train_line.set_data(self.train_x, self.train_y)
        self._rescale()

    def add_validation(self, epoch: int, rmse: float | None) -> None:
        if rmse is None:
            return
        if epoch == 0:  # the parent: the line an epoch must get below to replace it
            self.axes.axhline(rmse, color="#ffb000", linestyle=":", linewidth=1,
                              label="parent (epoch 0)")
            self._legend(loc="upper right")
        self.val_x.append(epoch)
        self.val_y.append(rmse)
        self.val_line.set_data(self.val_x, self.val_y)
        self._rescale()

    def _rescale(self) -> None:
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
