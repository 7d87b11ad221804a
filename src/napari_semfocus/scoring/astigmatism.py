"""Astigmatism indicator of a through-focus series (docs/through-focus.md).

Per frame, the anisotropy of the blur *added* relative to the series' best-focused frame, from
the power spectrum: a Gaussian-like blur of covariance S multiplies the power spectrum by
exp(-4 pi^2 f' S f), so the log ratio of a frame's spectrum to the reference frame's is a
quadratic form in the frequency f whose matrix is the blur covariance the frame has in excess
of the reference. Dividing by the reference frame's own spectrum removes the sample's
directional content (fibres, scratches, lines), the detector noise floor is subtracted first,
and only frequencies where both frames stand above their noise and the ratio has not fallen by
more than e^-3 are used (below the first zero of a disk PSF's transfer function).

Per frame: ``orientation_deg`` (the long axis, degrees from the +column axis toward the +row
axis, in [0, 180)) and ``ratio`` (long over short blur sigma, the reference blur added to both).
Across a series, astigmatism shows as the long axis turning by ~90 degrees through focus: the
anisotropy vectors (ratio - 1) * (cos 2a, sin 2a) are averaged on each side of best focus, and
half their difference (before minus after) is the series' astigmatism; a same-direction
anisotropy on both sides (what is left of the sample's own direction) cancels in it.
Astigmatism is called *likely* when that strength reaches ``LIKELY_STRENGTH`` and the mean long
axis turns by at least ``MIN_TURN_DEG`` from one side to the other (``turn_deg``): per-frame
anisotropies of round blur scatter in direction (noise, disk PSFs near focus) and could add up
to a strength without turning (benchmarks/bench_through_focus.py: round series claimed 10.6 %
with the strength alone, tuned on other series than the benchmark's).
"""

from __future__ import annotations

import numpy as np

from ..io.frames import as_frames
from ..scale import sigma_from_score

MAX_LOG_DROP = 3.0  # use frequencies where the spectrum ratio is above e^-3
SNR_MIN = 3.0  # power above the noise floor, in units of the floor
MIN_BINS = 24  # frequency bins a frame's fit needs
LIKELY_STRENGTH = 0.15  # |before - after| / 2 of the anisotropy vectors: astigmatism likely
MIN_TURN_DEG = 55.0  # ... when the mean long axis also turns by this much through focus
MIN_EXCESS_SIGMA = 1.0  # px: frames whose blur exceeds the reference's less are not used
BLOCK = 2  # spectrum bins averaged per side (less periodogram noise)


def power_spectrum(frame: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(power, fx, fy): the Hann-windowed power spectrum of a frame normalised to unit std,
    averaged over ``BLOCK`` x ``BLOCK`` bins, and the bins' frequencies (cycles per pixel)."""
    f = np.asarray(frame, dtype=np.float64)
    f = (f - f.mean()) / max(float(f.std()), 1e-12)
    h, w = f.shape
    win = np.outer(np.hanning(h), np.hanning(w))
    p = np.abs(np.fft.fftshift(np.fft.fft2(f * win))) ** 2
    fy = np.fft.fftshift(np.fft.fftfreq(h))[:, None] * np.ones((1, w))
    fx = np.ones((h, 1)) * np.fft.fftshift(np.fft.fftfreq(w))[None, :]
    hb, wb = h // BLOCK * BLOCK, w // BLOCK * BLOCK

    def block(a):
        return a[:hb, :wb].reshape(hb // BLOCK, BLOCK, wb // BLOCK, BLOCK).mean(axis=(1, 3))

    return block(p), block(fx), block(fy)


def _noise_floor(p: np.ndarray, fr: np.ndarray) -> float:
    """Median power at the highest frequencies (|f| > 0.4 cycles/px): the noise floor."""
    outer = fr > 0.4
    return float(np.median(p[outer])) if outer.any() else 0.0


def excess_blur(frame, reference) -> tuple[np.ndarray, int] | None:
    """The blur covariance (2 x 2, px^2; rows/columns: x = column, y = row) ``frame`` has in
    excess of ``reference``, and the number of spectrum bins it was fitted on; None when too
    few bins stand above the noise."""
    p, fx, fy = power_spectrum(frame)
    q, _, _ = power_spectrum(reference)
    fr = np.hypot(fx, fy)
    s_p = p - _noise_floor(p, fr)
    s_q = q - _noise_floor(q, fr)
    n_p, n_q = _noise_floor(p, fr), _noise_floor(q, fr)
    low = 2.0 / min(frame.shape)  # leave out the window's own blur of the lowest frequencies
    ok = (fr > low) & (fr < 0.45) & (s_p > SNR_MIN * n_p) & (s_q > SNR_MIN * n_q)
    ok &= (fy > 0) | ((fy == 0) & (fx > 0))  # one half-plane: the spectrum is symmetric
    # a contiguous disc of frequencies: out to the first ring where fewer than half the bins
    # stand above the noise or the ring's median ratio has fallen by MAX_LOG_DROP (a disk
    # PSF's first zero lies beyond); lone bins further out (periodic artefacts) are left out
    y_all = np.log(np.maximum(s_p, 1e-30) / np.maximum(s_q, 1e-30))
    width = BLOCK / min(frame.shape)
    ring_id = np.floor(fr / width).astype(int)
    top, start = 0.0, None
    for r in range(1, int(0.45 / width)):
        ring = ring_id == r
        half = ring & ((fy > 0) | ((fy == 0) & (fx > 0)))
        if not half.any() or fr[half].max() <= low:
            continue
        inside = ok & ring
        if inside.sum() < 0.5 * half.sum():
            break
        level = float(np.median(y_all[inside]))
        start = level if start is None else start
        if level < start - MAX_LOG_DROP:
            break
        top = (r + 1) * width
    ok &= fr < top
    if ok.sum() < MIN_BINS:
        return None
    y, x, v = y_all[ok], fx[ok], fy[ok]
    design = np.stack([np.ones_like(x), x * x, 2 * x * v, v * v], axis=1)
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    c = -coef[1:] / (4 * np.pi**2)
    return np.array([[c[0], c[1]], [c[1], c[2]]]), int(ok.sum())


def frame_anisotropy(cov: np.ndarray, reference_sigma_px: float) -> tuple[float, float]:
    """(orientation of the long axis in degrees [0, 180), long / short sigma) of the blur
    ``cov`` (excess over the reference) plus the reference's own round blur."""
    vals, vecs = np.linalg.eigh(cov)
    base = reference_sigma_px**2
    long_var = max(vals[1], 0.0) + base
    short_var = max(vals[0], 0.0) + base
    angle = float(np.degrees(np.arctan2(vecs[1, 1], vecs[0, 1]))) % 180.0
    return angle, float(np.sqrt(long_var / max(short_var, 1e-12)))


def series_astigmatism(frames, scores, z, best_z: float, s0_px: float,
                       exclude_bottom_rows: int = 0) -> dict:
    """The astigmatism record of a series: ``likely``, ``orientation_deg`` (the long axis before
    best focus, i.e. at smaller z), ``ratio`` (1 + the strength), ``strength`` and, per frame,
    ``frames``: [{index, orientation_deg, ratio}] (frames too close to focus or too blurred to
    judge are left out). ``frames``: the series' pixels (N, H, W); ``scores``: one per slice."""
    stack = as_frames(frames, "series")
    if exclude_bottom_rows:
        stack = stack[:, : stack.shape[1] - int(exclude_bottom_rows)]
    scores = np.asarray(scores, dtype=np.float64)
    z = np.asarray(z, dtype=np.float64)
    ref = int(np.argmax(np.where(np.isfinite(scores), scores, -np.inf)))
    sigma = sigma_from_score(np.clip(scores, 1.0, 10.0))
    ref_sigma = float(max(s0_px, sigma[ref] if np.isfinite(sigma[ref]) else s0_px))
    per_frame, before, after = [], [], []
    for i, frame in enumerate(stack):
        if i == ref or not np.isfinite(sigma[i]) or sigma[i] ** 2 - ref_sigma**2 \
                < MIN_EXCESS_SIGMA**2:
            continue
        fitted = excess_blur(frame, stack[ref])
        if fitted is None:
            continue
        angle, ratio = frame_anisotropy(fitted[0], ref_sigma)
        per_frame.append({"index": i, "orientation_deg": round(angle, 2),
                          "ratio": round(ratio, 4)})
        vec = (ratio - 1.0) * np.array([np.cos(np.radians(2 * angle)),
                                        np.sin(np.radians(2 * angle))])
        (before if z[i] < best_z else after).append(vec)
    if not before or not after:
        return {"likely": False, "orientation_deg": None, "ratio": None, "strength": None,
                "judged": False, "frames": per_frame,
                "note": "too few defocused frames on both sides of best focus to judge"}
    mean_before, mean_after = np.mean(before, axis=0), np.mean(after, axis=0)
    d = (mean_before - mean_after) / 2
    strength = float(np.hypot(*d))
    orientation = float(np.degrees(np.arctan2(d[1], d[0])) / 2) % 180.0
    turn = _axis_turn(mean_before, mean_after)
    likely = strength >= LIKELY_STRENGTH and turn >= MIN_TURN_DEG
    return {"likely": bool(likely), "orientation_deg": round(orientation, 1),
            "ratio": round(1.0 + strength, 3), "strength": round(strength, 4),
            "turn_deg": round(turn, 1), "judged": True, "frames": per_frame}


def _axis_turn(before: np.ndarray, after: np.ndarray) -> float:
    """Degrees in [0, 90] between the mean long axes before and after focus (anisotropy
    vectors in doubled-angle form)."""
    a = np.degrees(np.arctan2(before[1], before[0]) - np.arctan2(after[1], after[0])) / 2
    a = abs(a) % 180.0
    return float(min(a, 180.0 - a))


def astigmatism_line(record: dict) -> str:
    """One line for the widget and the CLI."""
    if not record or not record.get("judged"):
        return "Astigmatism: not judged (" + (record or {}).get("note", "no record") + ")."
    if record["likely"]:
        return (f"Astigmatism likely: long axis {record['orientation_deg']:.0f}° before focus, "
                f"turning {record['turn_deg']:.0f}° through focus (blur ratio "
                f"~{record['ratio']:.2f}).")
    if record["strength"] >= LIKELY_STRENGTH:
        return (f"No astigmatism seen (blur ratio ~{record['ratio']:.2f}, but its long axis "
                f"turns only {record['turn_deg']:.0f}° through focus: sample or noise).")
    return f"No astigmatism seen (blur ratio ~{record['ratio']:.2f}, round within the noise)."
