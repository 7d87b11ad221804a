"""Drawing a fitted focus curve with matplotlib (no Qt): the scores per slice, the fitted
hyperbola on the score scale, best focus z0 with its interval (a shaded band) and the best
attainable score. The CLI's ``--plot`` PNG and the Score focus widget's curve draw with
:func:`draw_focus_curve`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from ..io.files import atomic_write
from .astigmatism import astigmatism_line
from .through_focus import FocusCurve

NOTE_GID = "focus-curve-numbers"


def z_label(curve: FocusCurve) -> str:
    return "slice" if curve.z_unit == "slice" else f"focus z ({curve.z_unit}, {curve.z_source})"


def draw_focus_curve(ax, curve: FocusCurve, color: str = "C0", fg: str = "black",
                     label: str | None = None, bounds=None) -> None:
    """The curve of ``curve`` on the axes ``ax`` (the axes are not cleared). ``label`` (several
    curves on one axes): the legend names the series' points only. ``bounds``: the slices'
    score intervals (low, high), drawn as error bars."""
    z = curve.z
    hide = "_" if label else ""  # matplotlib leaves labels starting with "_" out of the legend
    lo_z, hi_z = float(z.min()), float(z.max())
    pad = 0.04 * (hi_z - lo_z)
    fine = np.linspace(lo_z - pad, hi_z + pad, 400)
    used = curve.weights > 0.05
    if bounds is not None:
        ax.vlines(z, bounds[0], bounds[1], color=color, linewidth=1, alpha=0.45,
                  label=hide + "score interval")
    ax.plot(z[used], curve.scores[used], "o", color=color, markersize=4, label=label or "slices")
    if (~used).any():
        ax.plot(z[~used], curve.scores[~used], "x", color=color, markersize=5, alpha=0.7,
                label=hide + "left out / outlier")
    ax.plot(fine, curve.curve(fine), "-", color=color, linewidth=1.4, alpha=0.9,
            label=hide + "fit sqrt(s0² + (k (z - z0))²)")
    low = curve.best_z_low if np.isfinite(curve.best_z_low) else lo_z - pad
    high = curve.best_z_high if np.isfinite(curve.best_z_high) else hi_z + pad
    ax.axvspan(low, high, color="#ffcc00", alpha=0.25, linewidth=0,
               label=f"{hide}{curve.level:.0%} interval of z0")
    ax.axvline(curve.best_z, color="#ffcc00", linewidth=1.2)
    ax.axhline(curve.best_score, color=fg, linestyle=":", linewidth=0.9, alpha=0.7)
    unit = "" if curve.z_unit == "slice" else f" {curve.z_unit}"
    # the numbers at the bottom of the axes, below the curve (each further curve's above)
    n_notes = sum(t.get_gid() == NOTE_GID for t in ax.texts)
    ax.text(0.5, 0.03 + 0.15 * n_notes,
            f"{label + ': ' if label else ''}z0 = {curve.best_z:.4g}{unit} "
            f"[{_fmt(curve.best_z_low)}, {_fmt(curve.best_z_high)}]\n"
            f"best attainable score {curve.best_score:.2f}", transform=ax.transAxes, ha="center",
            va="bottom", color=color if label else fg, fontsize=7, gid=NOTE_GID)


def _fmt(v: float) -> str:
    return f"{v:.4g}" if np.isfinite(v) else ("-inf" if v < 0 else "inf")


def write_focus_curve_png(curve: FocusCurve, path, title: str = "") -> Path:
    """The curve as a PNG (about 800 x 500 pixels), written atomically."""
    fig = Figure(figsize=(6.4, 4.0), dpi=125)
    ax = fig.add_subplot(1, 1, 1)
    draw_focus_curve(ax, curve)
    ax.set_xlabel(z_label(curve))
    ax.set_ylabel("focus score (0-10)")
    ax.set_ylim(0, 10.3)
    ax.legend(fontsize=7, loc="upper left")
    ax.set_title((f"{title}\n" if title else "") + astigmatism_line(curve.astigmatism),
                 fontsize=8)
    fig.tight_layout()
    return atomic_write(Path(path), lambda tmp: fig.savefig(tmp, format="png"))
