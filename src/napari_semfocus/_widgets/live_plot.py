"""The Live QC widget's plot: the score of each frame as it arrives (the one the gate's rule
compares), green when the gate accepts it, red when it rejects it (blue without a gate), and the
gate's threshold as a dashed line. Redraws are throttled (:meth:`ThemedPlot.schedule_redraw`),
so a fast backlog does not busy the UI thread."""

from __future__ import annotations

from .plots import ThemedPlot

ACCEPT, REJECT, NEUTRAL = "#2ca02c", "#d62728", "#4fa3e0"


class ScoreTimePlot(ThemedPlot):
    """Score against frame number, coloured by the gate's decision, with its threshold."""

    REDRAW_MS = 200

    def __init__(self, dark: bool = True):
        super().__init__(dark, height=2.2, min_height=180)
        self.x: list[int] = []
        self.y: list[float] = []
        self.colours: list[str] = []
        self.draws = 0  # redraws with new data (tests)
        self.reset(None)

    def reset(self, threshold: float | None, what: str = "focus score") -> None:
        """No points; the gate's ``threshold`` (None: no gate) on the score ``what``."""
        self.x, self.y, self.colours = [], [], []
        self.threshold = threshold
        ax = self.axes
        ax.clear()
        self._style("frame", f"{what} (0–10)")
        ax.set_ylim(0, 10.3)
        ax.set_xlim(0.5, 10.5)
        self.points = ax.scatter([], [], s=16, zorder=3)
        if threshold is not None:
            ax.axhline(threshold, color=REJECT, linestyle="--", linewidth=1,
                       label=f"gate threshold {threshold:.2f}")
            self._legend(loc="lower left")
        self.canvas.draw()

    def add(self, score: float, accepted: bool | None) -> None:
        """One more frame: its score and the gate's decision (None: no gate)."""
        self.x.append(len(self.x) + 1)
        self.y.append(score)
        self.colours.append(NEUTRAL if accepted is None else ACCEPT if accepted else REJECT)
        self.schedule_redraw()

    def _redraw(self) -> None:
        self.points.set_offsets(list(zip(self.x, self.y, strict=True)))
        self.points.set_color(self.colours)
        self.axes.set_xlim(0.5, max(10, len(self.x)) + 0.5)
        self.canvas.draw()
        self.draws += 1
