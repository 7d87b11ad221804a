"""The focus score scale, and magnifications: how users write them, how they are checked, and how
the model takes them.

Everything here follows ``docs/focus-score-scale.md`` (a copy of the project's shared definition):
a score in [0, 10], a fixed function of the Gaussian-equivalent blur ``sigma`` in pixels, and the
magnification fed to the model as ``clip((log10(M) - 2) / 4, 0, 1)``. A magnification is read
from text in one place (:func:`parse_magnification`: ``5000``, ``5,000x``, ``5k``, ``12.5 kX``)
and refused with one sentence (:func:`magnification_error`), for the CLI and the widgets alike.
"""

from __future__ import annotations

import re

import numpy as np

from .errors import SemFocusError

SCORE_MIN = 0.0
SCORE_MAX = 10.0
SHARP_SIGMA_PX = 0.5  # sigma of a well-focused micrograph, in pixels
POLAROID_WIDTH_M = 0.127  # reference display width (Polaroid 545) for magnification <-> pixel size
MAGNIFICATION_EXAMPLES = "for example 5000, 5k or 5,000x"
_MAGNIFICATION_TEXT = re.compile(r"^\s*([0-9.]+)\s*([kKmM]?)\s*([xX]?)\s*$")


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


# ---- magnification --------------------------------------------------------------------------
def magnification_error(value, where: str | None = None) -> SemFocusError:
    """The one sentence for a magnification that is not a positive number, e.g.
    "Magnification 'a lot' is not a positive number (for example 5000, 5k or 5,000x)." or, with
    ``where``, "<where>: magnification '…' is not a positive number (…)."."""
    shown = value.strip() if isinstance(value, str) else value
    head = f"{where}: magnification" if where else "Magnification"
    return SemFocusError(f"{head} {shown!r} is not a positive number ({MAGNIFICATION_EXAMPLES}).")


def magnification_from_text(text, require_x: bool = False) -> float | None:
    """'5000', '5e3', '5,000x', '5k', '5.72 K X', '12.5 kX', '250 X' -> the number (k = 1,000,
    M = 1,000,000); None when ``text`` is not written so (or lacks the X when ``require_x``, as
    in Zeiss metadata)."""
    clean = str(text).replace(",", "").replace("×", "x")
    if not require_x:
        try:
            return float(clean)  # 5000, 5e3
        except ValueError:
            pass
    m = _MAGNIFICATION_TEXT.match(clean)
    if not m or (require_x and not m.group(3)):
        return None
    try:
        number = float(m.group(1))
    except ValueError:
        return None
    return number * {"": 1.0, "k": 1e3, "m": 1e6}[m.group(2).lower()]


def parse_magnification(value, where: str | None = None, required: bool = False) -> float | None:
    """A magnification as users give it (a number, or text for :func:`magnification_from_text`)
    -> float; empty text or None -> None (unless ``required``). Anything else, or a value that
    is not a positive finite number, raises :func:`magnification_error`."""
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise magnification_error("" if value is None else value, where)
        return None
    if isinstance(value, str):
        number = magnification_from_text(value)
    elif isinstance(value, bool):
        number = None
    else:
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = None
    if number is None or not np.isfinite(number) or number <= 0:
        raise magnification_error(value, where)
    return float(number)


def check_magnifications(values, where: str | None = None) -> np.ndarray:
    """Magnifications as a float64 array; all must be positive and finite (else
    :func:`magnification_error` naming them)."""
    m = np.asarray(values, dtype=np.float64)
    if np.any(~np.isfinite(m)) or np.any(m <= 0):
        raise magnification_error(values, where)
    return m


MAG_ENCODABLE = (100.0, 1e6)  # magnifications outside are clipped by encode_magnification


def encode_magnification(magnification):
    """Model input for magnification M: 100x -> 0, 1,000,000x -> 1, log scale, clipped."""
    m = check_magnifications(magnification)
    enc = np.clip((np.log10(m) - 2.0) / 4.0, 0.0, 1.0)
    return enc if enc.ndim else float(enc)


def magnification_from_pixel_size(pixel_size_m: float, width_px: int) -> float:
    """Magnification from the pixel size (metres) and image width, with the 127 mm convention."""
    if not (pixel_size_m > 0 and width_px > 0):
        raise ValueError("pixel size and image width must be positive")
    return POLAROID_WIDTH_M / (pixel_size_m * width_px)
