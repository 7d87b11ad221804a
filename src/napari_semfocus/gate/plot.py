"""Acceptance gate, the picture: precision against recall with the gate's point, of a
calibration or of the curve recorded in a gate file (``semfocus gate calibrate --plot``, the
Acceptance gate widget)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from ..io.files import atomic_write
from .calibrate import Calibration, Figures


def plot_pr_curve(source, path=None, title: str | None = None,
                  held_out: Figures | None = None, figure=None, dark: bool = False,
                  compact: bool = False, score_name: str | None = None):
    """Precision against recall with the gate's point and the target precision marked, of a
    :class:`Calibration` or a :class:`~.file.Gate` (its recorded curve);
    written as PNG to ``path`` when given (matplotlib's Agg backend, no display). ``figure``:
    draw into this matplotlib figure (e.g. a widget's canvas); ``compact``: small fonts, no
    title; ``score_name``: what the gate compares, in the legend (default: a Gate's rule,
    "score" for a Calibration). Returns the figure."""
    if isinstance(source, Calibration):
        f = source.figures
        recall, precision = source.curve.recall, source.curve.precision
        n, n_acc = source.curve.n, source.curve.n_acceptable
        point = (f.recall, f.precision, f.f1_weighted)
    else:
        cal = source.calibration
        curve = source.pr_curve or {"recall": [], "precision": []}
        recall, precision = np.asarray(curve["recall"]), np.asarray(curve["precision"])
        n, n_acc = cal.get("n") or 0, cal.get("n_acceptable") or 0
        point = (cal.get("recall"), cal.get("precision"), cal.get("f1_weighted"))
    target, threshold = source.target_precision, source.threshold
    if score_name is None:
        score_name = "score" if isinstance(source, Calibration) else source.rule_label
    fg, bg = ("#d6d6d6", "#262930") if dark else ("#202020", "#ffffff")
    fig = figure if figure is not None else Figure(figsize=(5.6, 4.2), dpi=120)
    fig.clear()
    fig.set_facecolor(bg)
    ax = fig.add_subplot(1, 1, 1)
    ax.set_facecolor(bg)
    if len(recall):
        ax.plot(recall, precision, color="#3b82f6", linewidth=1.6,
                label="calibration images (one point per threshold)")
    ax.axhline(target, color="#ef4444", linestyle="--", linewidth=1,
               label=f"target precision {target:g}")
    if point[0] is not None and point[1] is not None:
        ax.plot([point[0]], [point[1]], marker="o", markersize=9, color="#f59e0b",
                markeredgecolor=fg, linestyle="none",
                label=f"gate: {score_name} >= {threshold:.2f}\n"
                      f"P {point[1]:.3f}, R {point[0]:.3f}, wF1 {point[2]:.3f}")
    if held_out is not None and held_out.precision is not None:
        ax.plot([held_out.recall], [held_out.precision], marker="s", markersize=8,
                color="#10b981", markeredgecolor=fg, linestyle="none",
                label=f"held out: P {held_out.precision:.3f}, R {held_out.recall:.3f}, "
                      f"wF1 {held_out.f1_weighted:.3f}")
    lows = [n_acc / n if n else 0.0, target] + ([float(np.min(precision))] if len(precision) else [])
    if held_out is not None and held_out.precision is not None:
        lows.append(held_out.precision)
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(max(0.0, min(lows) - 0.05), 1.01)
    small = 7 if compact else 9
    ax.set_xlabel("recall" if compact else "recall (acceptable images accepted)", color=fg,
                  fontsize=small)
    ax.set_ylabel("precision" if compact else "precision (accepted images acceptable)",
                  color=fg, fontsize=small)
    for spine in ax.spines.values():
        spine.set_color(fg)
    ax.tick_params(colors=fg, labelsize=small)
    ax.grid(alpha=0.25)
    legend = ax.legend(loc="lower left", fontsize=6 if compact else 8, facecolor=bg,
                       edgecolor=fg, framealpha=0.85)
    for text in legend.get_texts():
        text.set_color(fg)
    if not compact:
        ax.set_title(title or f"Precision-recall of the focus score ({n} images, "
                              f"{n_acc} acceptable)", color=fg, fontsize=10)
    fig.tight_layout()
    if path is not None:
        atomic_write(Path(path), lambda tmp: fig.savefig(tmp, format="png", facecolor=bg))
    return fig
