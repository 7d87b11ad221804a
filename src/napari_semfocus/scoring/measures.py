"""Classical focus measures, one number per 2-D frame, with the same calling shape as
``FocusScorer.score``: ``measure(image_or_stack, "brenner") -> (N,) array``.

Larger means sharper for every measure here. They depend on brightness and contrast (that is
why the paper's absolute variance does badly); ``evaluation`` maps them to the 0-10 scale with
an isotonic fit when comparing them with the model.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..errors import SemFocusError
from ..io.frames import as_frames


def absolute_variance(f: np.ndarray) -> float:
    """Mean absolute deviation from the mean (Yang et al.'s classical baseline)."""
    return float(np.mean(np.abs(f - f.mean())))


def normalised_variance(f: np.ndarray) -> float:
    """Variance divided by the mean intensity."""
    mu = float(f.mean())
    return float(f.var() / mu) if abs(mu) > 1e-12 else 0.0


def laplacian_variance(f: np.ndarray) -> float:
    """Variance of the 3x3 Laplacian."""
    return float(cv2.Laplacian(f, cv2.CV_32F, ksize=3).var())


def tenengrad(f: np.ndarray) -> float:
    """Mean squared Sobel gradient magnitude."""
    gx = cv2.Sobel(f, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(f, cv2.CV_32F, 0, 1, ksize=3)
    return float(np.mean(gx * gx + gy * gy))


def brenner(f: np.ndarray) -> float:
    """Mean squared difference of pixels two apart, along x and y."""
    dx = f[:, 2:] - f[:, :-2]
    dy = f[2:, :] - f[:-2, :]
    return float((np.mean(dx * dx) + np.mean(dy * dy)) / 2.0)


def vollath_f4(f: np.ndarray) -> float:
    """Vollath's F4 autocorrelation measure, per pixel, along x and y."""
    fx = float(np.mean(f[:, :-1] * f[:, 1:]) - np.mean(f[:, :-2] * f[:, 2:]))
    fy = float(np.mean(f[:-1, :] * f[1:, :]) - np.mean(f[:-2, :] * f[2:, :]))
    return (fx + fy) / 2.0


MEASURES = {
    "absolute_variance": absolute_variance,
    "normalised_variance": normalised_variance,
    "laplacian_variance": laplacian_variance,
    "tenengrad": tenengrad,
    "brenner": brenner,
    "vollath_f4": vollath_f4,
}


def measure(image, name: str, exclude_bottom_rows: int = 0, label: str = "image") -> np.ndarray:
    """Classical focus measure ``name`` of every frame of ``image`` (2-D, stack or RGB)."""
    if name not in MEASURES:
        raise SemFocusError(f"focus measure {name!r} is not one of {', '.join(MEASURES)}.")
    frames = as_frames(image, label)
    if exclude_bottom_rows:
        frames = frames[:, : frames.shape[1] - int(exclude_bottom_rows)]
    fn = MEASURES[name]
    return np.array([fn(np.ascontiguousarray(f)) for f in frames], dtype=np.float64)
