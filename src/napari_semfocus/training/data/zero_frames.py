"""Frames with no sample (score 0, docs/focus-score-scale.md): noise fields, flat white, black
and grey frames, low-dose Poisson fields, scan-line noise and slow charging gradients under
noise, with the detector noise of :mod:`.degrade`."""

from __future__ import annotations

import cv2
import numpy as np

from .degrade import NoiseSettings, add_noise

ZERO_KINDS = ("noise", "white", "black", "grey", "lowdose", "scanlines", "charging", "dark")
ZERO_WEIGHTS = (0.22, 0.08, 0.08, 0.08, 0.18, 0.12, 0.12, 0.12)


def zero_frame(shape_hw, rng: np.random.Generator, kind: str | None = None) -> tuple[np.ndarray,
                                                                                     str]:
    """A frame with no sample (label 0), float32 in [0, 1]: (image, kind).

    Kinds (:data:`ZERO_KINDS`): ``noise`` (detector noise over a grey level), ``white``,
    ``black``, ``grey`` (flat frames, a little noise), ``lowdose`` (Poisson fields at 0.3-5
    counts per pixel: a beam blanked or a very fast scan), ``dark`` (sparse single counts on
    black, 0.005-0.3 counts per pixel: the dark surround of a field, a closed aperture),
    ``scanlines`` (row-offset / row-gain
    noise dominating, as with a noisy scan generator) and ``charging`` (a slow gradient over the
    whole frame, less than a cycle across, under noise)."""
    kind = kind or ZERO_KINDS[int(rng.choice(len(ZERO_KINDS), p=ZERO_WEIGHTS))]
    H, W = int(shape_hw[0]), int(shape_hw[1])
    if kind == "white":
        level = rng.uniform(0.93, 1.0)
    elif kind == "black":
        level = rng.uniform(0.0, 0.06)
    elif kind == "lowdose":
        level = rng.uniform(0.1, 1.0)
    elif kind == "dark":
        level = rng.uniform(0.005, 0.3)  # counts per pixel at dose 1
    else:
        level = rng.uniform(0.1, 0.9)
    img = np.full((H, W), level, np.float32)
    if kind == "charging":
        yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
        a = rng.uniform(0, 2 * np.pi)
        u = (np.cos(a) * (xx / W - 0.5) + np.sin(a) * (yy / H - 0.5))
        ramp = u + rng.uniform(-1.5, 1.5) * u * u  # linear or slightly curved
        img += (rng.uniform(0.05, 0.4) * ramp / max(float(np.ptp(ramp)), 1e-6)).astype(np.float32)
    if kind in ("noise", "charging"):
        noise = NoiseSettings(
            dose=float(np.exp(rng.uniform(np.log(1.0), np.log(300.0)))),
            read_sigma=float(rng.uniform(0.005, 0.15)),
            line_sigma=float(rng.uniform(0, 0.03)) if rng.random() < 0.4 else 0,
            line_gain_sigma=0.0,
        )
    elif kind == "dark":
        noise = NoiseSettings(dose=1.0, read_sigma=float(rng.uniform(0.0, 0.02)),
                              line_sigma=0.0, line_gain_sigma=0.0)
    elif kind == "lowdose":
        noise = NoiseSettings(dose=float(np.exp(rng.uniform(np.log(0.3), np.log(5.0)))) / level,
                              read_sigma=float(rng.uniform(0.0, 0.01)), line_sigma=0.0,
                              line_gain_sigma=0.0)
    elif kind == "scanlines":
        noise = NoiseSettings(dose=float(np.exp(rng.uniform(np.log(20.0), np.log(5000.0)))),
                              read_sigma=float(rng.uniform(0.0, 0.03)),
                              line_sigma=float(rng.uniform(0.02, 0.12)),
                              line_gain_sigma=float(rng.uniform(0.0, 0.1)))
    else:
        noise = NoiseSettings(
            dose=float("inf") if rng.random() < 0.5
            else float(np.exp(rng.uniform(np.log(50.0), np.log(5000.0)))),
            read_sigma=float(rng.uniform(0.0, 0.02)),
            line_sigma=0.0,
            line_gain_sigma=0.0,
        )
    out = add_noise(img, noise, rng)
    if kind in ("noise", "scanlines") and rng.random() < 0.3:
        # detector bandwidth: noise a little correlated along the scan line
        out = cv2.GaussianBlur(out, (0, 0), sigmaX=rng.uniform(0.3, 1.2), sigmaY=0.3)
    if kind == "noise" and rng.random() < 0.3:
        # a faint shading, below the noise
        yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
        a = rng.uniform(0, 2 * np.pi)
        ramp = np.cos(a) * xx / W + np.sin(a) * yy / H
        out += (rng.uniform(0.0, 0.7) * float(out.std()) * ramp).astype(np.float32)
    return out, kind
