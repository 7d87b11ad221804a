"""The dock widgets' plots: :class:`ThemedPlot` (a matplotlib canvas in napari's dark or light
colours) and :class:`TrainingPlot`, the Fine-tune widget's live plot (training RMSE per batch,
validation RMSE per epoch, and the parent's validation RMSE, epoch 0, as a dotted line that an
epoch must get below)."""

from __future__ import annotations

import math

from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from qtpy.QtCore import QTimer

from .forms import plot_colors


class ThemedPlot:
    """A matplotlib figure with one axes on a Qt canvas, in napari's dark or light colours
    (``_fg`` / ``_bg``). :meth:`schedule_redraw` calls ``_redraw`` (a subclass's) at most once
    per :attr:`REDRAW_MS`, so fast updates do not busy the UI thread; its timer belongs to the
    canvas and dies with it, so a redraw never reaches a closed widget (matplotlib's
    ``draw_idle`` would)."""

    REDRAW_MS = 250

    def __init__(self, dark: bool, height: float, min_height: int):
        self._fg, self._bg = plot_colors(dark)
        # fixed margins: matplotlib's tight layout measured every label on each redraw, about
        # 60 % of a redraw's time on the UI thread
        self.figure = Figure(figsize=(3.4, height), dpi=100, facecolor=self._bg)
        self.figure.subplots_adjust(left=0.19, right=0.97, bottom=0.2, top=0.95)
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setMinimumHeight(min_height)
        self.axes = self.figure.add_subplot(111)
        self._timer = QTimer(self.canvas)
        self._timer.setSingleShot(True)
        self._timer.setInterval(self.REDRAW_MS)
        self._timer.timeout.connect(self._redraw)

    def schedule_redraw(self) -> None:
        """Redraw within :attr:`REDRAW_MS` (once, however often this is called meanwhile)."""
        if not self._timer.isActive():
            self._timer.start()

    def _redraw(self) -> None:
        self.canvas.draw()

    def _style(self, xlabel: str, ylabel: str) -> None:
        """Colours of the axes, ticks and labels."""
        ax = self.axes
        ax.set_facecolor(self._bg)
        for spine in ax.spines.values():
            spine.set_color(self._fg)
        ax.tick_params(colors=self._fg, labelsize=8)
        ax.set_xlabel(xlabel, color=self._fg, fontsize=9)
        ax.set_ylabel(ylabel, color=self._fg, fontsize=9)

    def _legend(self, **kwargs) -> None:
        legend = self.axes.legend(fontsize=7, facecolor=self._bg, edgecolor=self._fg, **kwargs)
        for text in legend.get_texts():
            text.set_color(self._fg)


class TrainingPlot(ThemedPlot):
    """Matplotlib canvas: training RMSE per batch and validation RMSE per epoch. Redraws are
    throttled (:meth:`ThemedPlot.schedule_redraw`)."""

    def __init__(self, dark: bool = True):
        super().__init__(dark, height=2.3, min_height=200)
        self.draws = 0  # redraws with new data (tests)
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
        ax.set_ylim(0, 1)  # RMSE is never negative: no empty plot around 0
        self.canvas.draw()

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
        self.schedule_redraw()

    def _redraw(self) -> None:
        self.axes.relim()
        self.axes.autoscale_view(scaley=False)
        top = max(self.train_y + self.val_y, default=1.0)
        self.axes.set_ylim(0, 1.08 * top if top > 0 else 1.0)
        self.canvas.draw()
        self.draws += 1
