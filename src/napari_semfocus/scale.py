"""The focus score scale and the magnification encoding.

Everything here follows ``docs/focus-score-scale.md`` (a copy of the project's shared definition):
a score in [0, 10], a fixed function of the Gaussian-equivalent blur ``sigma`` in pixels, and the
magnification fed to the model as ``clip((log10(M) - 2) / 4, 0, 1)``.
"""

from __future__ import annotations

import numpy as np

SCORE_MIN = 0.0
SCORE_MAX = 10.0
SHARP_SIGMA_PX = 0.5  # sigma of a well-focused micrograph, in pixels
POLAROID_WIDTH_M = 0.127  # reference display width (Polaroid 545) for magnification <-> pixel size


def score_from_sigma(sigma_px):
    """Focus score of an image whose point-spread function has std ``sigma_px`` (pixels)."""
    sigma = np.maximum(np.asarray(sigma_px, dtype=np.float64), 1e-12)
    score = np.clip(10.0 - 1.5 * np.log2(sigma / SHARP_SIGMA_PX), 1.0, 10.0)
    return score if score.ndim else float(score)


def sigma_from_score(score):
    """Inverse of :func:`score_from_sigma` on the open range (1, 10]."""
    s = np.asarray(score, dtype=np.float64)
    sigma = SHARP_SIGMA_PX * np.power(2.0, (10.0 - s) / 1.5)
    return sigma if sigma.ndim else float(sigma)


def label_for_added_blur(sigma_added_px):
    """Label of a sharp image blurred by a PSF of std ``sigma_added_px``: sigma adds in quadrature."""
    sigma = np.sqrt(SHARP_SIGMA_PX**2 + np.square(np.asarray(sigma_added_px, dtype=np.float64)))
    return score_from_sigma(sigma)


def encode_magnification(magnification):
    """Model input for magnification M: 100x -> 0, 1,000,000x -> 1, log scale, clipped."""
    m = np.asarray(magnification, dtype=np.float64)
    if np.any(~np.isfinite(m)) or np.any(m <= 0):
        raise ValueError(f"magnification must be a positive number, got {magnification!r}")
    enc = np.clip((np.log10(m) - 2.0) / 4.0, 0.0, 1.0)
    return enc if enc.ndim else float(enc)


def magnification_from_pixel_size(pixel_size_m: float, width_px: int) -> float:
    """Magnification from the pixel size (metres) and image width, with the 127 mm convention."""
    if not (pixel_size_m > 0 and width_px > 0):
        raise ValueError("pixel size and image width must be positive")
    return POLAROID_WIDTH_M / (pixel_size_m * width_px)


def pixel_size_from_magnification(magnification: float, width_px: int) -> float:
    """Pixel size in metres for magnification M and image width, with the 127 mm convention."""
    if not (magnification > 0 and width_px > 0):
        raise ValueError("magnification and image width must be positive")
    return POLAROID_WIDTH_M / (magnification * width_px)
