"""An interval with every score: where the true score lies for a chosen share of frames.

Split conformal prediction (Vovk et al.; Angelopoulos & Bates, "A gentle introduction to
conformal prediction", 2021): on a calibration set the model never trained on, the signed errors
``true - predicted`` are collected, and the interval of a new frame is ``[predicted + lower,
predicted + upper]`` with ``lower`` / ``upper`` the errors' ``(1 - level) / 2`` and
``(1 + level) / 2`` quantiles (finite-sample corrected). When calibration and new frames are
exchangeable, the true score lies inside for at least ``level`` of new frames.

The errors are not alike everywhere: :class:`IntervalModel` keeps one pair of quantiles per bin
of a feature known at scoring time (Mondrian conformal prediction: the coverage holds within each
bin, not only on average, so frames where the model errs more get wider intervals instead of
too narrow ones): the predicted score itself, the frame's noise (:func:`noise_level`), both
(``score+noise``: each score bin split at its own calibration frames' median noise, so that the
noisy half of a score bin, where the model errs more, gets its own wider interval) or none.
Which feature keeps the coverage in every band and sample type with the narrowest intervals is
measured by
``scripts/calibrate_intervals.py`` (docs/intervals.md). The model travels in the checkpoint's
metadata (``metadata["interval"]``, :meth:`IntervalModel.as_dict`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from ..errors import SemFocusError
from ..io.frames import as_frames

DEFAULT_LEVEL = 0.8
FEATURES = ("none", "score", "noise", "score+noise")
MIN_PER_BIN = 60  # fewer calibration frames than this in a bin: too few for its quantiles
SCORE_RANGE = (0.0, 10.0)


def conformal_bounds(errors: np.ndarray, level: float) -> tuple[float, float]:
    """The (lower, upper) quantiles of signed ``errors`` for a central interval of ``level``,
    with the split-conformal finite-sample correction (rank ceil((n + 1) q))."""
    e = np.sort(np.asarray(errors, dtype=np.float64))
    n = len(e)
    if n == 0:
        raise ValueError("no calibration errors")
    alpha = (1.0 - level) / 2.0
    k_lo = int(np.floor((n + 1) * alpha + 1e-9))  # 1-based rank of the lower bound
    k_hi = int(np.ceil((n + 1) * (1.0 - alpha) - 1e-9))
    lower = e[k_lo - 1] if k_lo >= 1 else -np.inf
    upper = e[k_hi - 1] if k_hi <= n else np.inf
    return float(lower), float(upper)


# a calibration set is "too small" when the coverage it gives is likely to fall this far short
COVERAGE_SLACK = 0.1  # ... below the level (0.7 for an 80 % interval: the floor per group)
SHORT_CHANCE = 0.1  # ... with more than this chance


def conformal_ranks(n: int, level: float) -> tuple[int, int]:
    """The 1-based ranks (lower, upper) of :func:`conformal_bounds` among ``n`` sorted errors
    (0 or n + 1: off the ends, an unbounded side)."""
    alpha = (1.0 - level) / 2.0
    return (int(math.floor((n + 1) * alpha + 1e-9)), int(math.ceil((n + 1) * (1 - alpha) - 1e-9)))


def short_coverage_chance(n: int, level: float, slack: float = COVERAGE_SLACK) -> float:
    """The chance that an interval calibrated on ``n`` exchangeable frames covers less than
    ``level - slack`` of new frames. With ranks (k_lo, k_hi) the coverage is
    Beta(k, n + 1 - k), k = k_hi - k_lo (Vovk 2012; Angelopoulos & Bates 2021, sec. 3.2), and
    P(Beta(k, n + 1 - k) < x) = P(Binomial(n, x) >= k). 1.0 when a rank falls off the ends."""
    k_lo, k_hi = conformal_ranks(n, level)
    if n < 1 or k_lo < 1 or k_hi > n:
        return 1.0
    k, x = k_hi - k_lo, level - slack
    log = lambda j: (math.lgamma(n + 1) - math.lgamma(j + 1) - math.lgamma(n - j + 1)  # noqa: E731
                     + j * math.log(x) + (n - j) * math.log1p(-x))
    return float(min(1.0, sum(math.exp(log(j)) for j in range(k, n + 1))))


@functools.cache
def min_calibration_frames(level: float, slack: float = COVERAGE_SLACK,
                           chance: float = SHORT_CHANCE, upto: int = 500) -> int:
    """The fewest calibration frames from which on the interval is never "too small": its
    coverage falls below ``level - slack`` with at most ``chance`` for this many frames and
    every larger number (the chance saw-tooths with the ranks; 21 at 80 %)."""
    short = [n for n in range(1, upto + 1) if short_coverage_chance(n, level, slack) > chance]
    return (max(short) + 1) if short else 1


def bin_edges(values: np.ndarray, min_per_bin: int = MIN_PER_BIN, max_bins: int = 5
              ) -> tuple[float, ...]:
    """Inner edges splitting ``values`` into at most ``max_bins`` equally filled bins of at
    least ``min_per_bin`` values each (none when there are too few)."""
    v = np.asarray(values, dtype=np.float64)
    n_bins = int(min(max_bins, len(v) // max(1, min_per_bin)))
    if n_bins <= 1:
        return ()
    edges = np.quantile(v, np.linspace(0, 1, n_bins + 1)[1:-1])
    return tuple(float(x) for x in np.unique(edges))


@dataclass(frozen=True)
class IntervalModel:
    """Per bin of ``feature``: the signed error quantiles that make a ``level`` interval."""

    level: float
    feature: str  # one of FEATURES
    edges: tuple[float, ...]  # inner bin edges of the feature (empty: one bin)
    lower: tuple[float, ...]  # per bin: the lower error quantile (<= 0 mostly)
    upper: tuple[float, ...]  # per bin: the upper error quantile
    counts: tuple[int, ...]  # calibration frames per bin
    calibration: dict = field(default_factory=dict)  # what the calibration set was
    # score+noise: per score bin, the noise that splits it in two (the bins are then
    # (score bin 0, quieter), (score bin 0, noisier), (score bin 1, quieter), ...)
    noise_edges: tuple[float, ...] = ()

    @property
    def needs_noise(self) -> bool:
        """Whether :meth:`bounds` reads the frames' noise."""
        return self.feature in ("noise", "score+noise")

    @classmethod
    def fit(cls, predicted, true, level: float = DEFAULT_LEVEL, feature: str = "none",
            feature_values=None, calibration: dict | None = None,
            min_per_bin: int = MIN_PER_BIN) -> IntervalModel:
        """Calibrate on frames with ``predicted`` and ``true`` scores (and their
        ``feature_values`` unless the feature is ``none``)."""
        check_level(level)
        if feature not in FEATURES:
            raise SemFocusError(f"interval feature {feature!r} is not one of {', '.join(FEATURES)}.")
        pred = np.asarray(predicted, dtype=np.float64)
        errors = np.asarray(true, dtype=np.float64) - pred
        values = _feature(feature, pred, feature_values)
        split = feature == "score+noise"
        edges = (bin_edges(values, min_per_bin * (2 if split else 1)) if feature != "none"
                 else ())
        bins = np.searchsorted(edges, values, side="right")
        groups = [bins == b for b in range(len(edges) + 1)]
        noise_edges: tuple[float, ...] = ()
        if split:  # each score bin in two at its median noise (too few frames: both halves alike)
            noise = np.asarray(feature_values, dtype=np.float64)
            noise_edges = tuple(float(np.median(noise[g])) for g in groups)
            groups = [half for g, cut in zip(groups, noise_edges, strict=True)
                      for half in ((g & (noise <= cut), g & (noise > cut))
                                   if g.sum() >= 2 * min_per_bin else (g, g))]
        lower, upper, counts = [], [], []
        for g in groups:
            lo, hi = conformal_bounds(errors[g], level)
            lower.append(lo)
            upper.append(hi)
            counts.append(int(g.sum()))
        return cls(level, feature, edges, tuple(lower), tuple(upper), tuple(counts),
                   dict(calibration or {}), noise_edges)

    def _bins(self, pred: np.ndarray, feature_values) -> np.ndarray:
        bins = np.searchsorted(self.edges, _feature(self.feature, pred, feature_values),
                               side="right")
        if self.feature == "score+noise":
            if feature_values is None:
                raise SemFocusError("the interval needs the frames' noise.")
            noise = np.asarray(feature_values, dtype=np.float64)
            bins = 2 * bins + (noise > np.asarray(self.noise_edges)[bins])
        return bins

    def bounds(self, predicted, feature_values=None) -> tuple[np.ndarray, np.ndarray]:
        """(low, high) for ``predicted`` scores (and their ``feature_values``), within 0-10 and
        holding the score."""
        pred = np.asarray(predicted, dtype=np.float64)
        bins = self._bins(pred, feature_values)
        # the interval always holds the score itself (a bin whose errors all lie on one side
        # would otherwise give an interval beside the score: wider, never narrower)
        low = np.minimum(pred + np.asarray(self.lower)[bins], pred)
        high = np.maximum(pred + np.asarray(self.upper)[bins], pred)
        return np.clip(low, *SCORE_RANGE), np.clip(high, *SCORE_RANGE)

    def widened(self, by: float, note: dict) -> IntervalModel:
        """The same bins, each side ``by`` points wider; ``note`` (why) joins the calibration."""
        return replace(self, lower=tuple(x - by for x in self.lower),
                       upper=tuple(x + by for x in self.upper),
                       calibration={**self.calibration, **note})

    def as_dict(self) -> dict:
        """Plain JSON for a checkpoint's metadata."""
        return {"level": self.level, "feature": self.feature, "edges": list(self.edges),
                "lower": list(self.lower), "upper": list(self.upper),
                "counts": list(self.counts), "calibration": self.calibration,
                "noise_edges": list(self.noise_edges),
                "method": "split conformal, signed errors, one pair of quantiles per bin"}

    @classmethod
    def from_dict(cls, d: dict) -> IntervalModel:
        """From :meth:`as_dict`'s JSON; one sentence naming what is wrong otherwise."""
        try:
            model = cls(float(d["level"]), str(d["feature"]), tuple(map(float, d["edges"])),
                        tuple(map(float, d["lower"])), tuple(map(float, d["upper"])),
                        tuple(map(int, d["counts"])), dict(d.get("calibration") or {}),
                        tuple(map(float, d.get("noise_edges") or ())))
        except (KeyError, TypeError, ValueError) as exc:
            raise SemFocusError(f"the model's interval metadata is broken ({exc}).") from None
        split = model.feature == "score+noise"
        n = (len(model.edges) + 1) * (2 if split else 1)
        if (model.feature not in FEATURES or not (len(model.lower) == len(model.upper) == n)
                or len(model.noise_edges) != (len(model.edges) + 1 if split else 0)):
            raise SemFocusError("the model's interval metadata is broken (feature or bins).")
        return model


def check_level(level: float) -> float:
    """``level`` if it is a share strictly between 0 and 1, else one sentence."""
    if not 0.0 < float(level) < 1.0:
        raise SemFocusError(f"interval level {level} is not between 0 and 1 (e.g. 0.8).")
    return float(level)


def _feature(feature: str, predicted: np.ndarray, values) -> np.ndarray:
    if feature == "none":
        return np.zeros_like(predicted)
    if feature in ("score", "score+noise"):
        return predicted
    if values is None:
        raise SemFocusError(f"the interval needs the frames' {feature}.")
    return np.asarray(values, dtype=np.float64)


def noise_level(image: np.ndarray | Sequence, column_step: int = 2) -> np.ndarray:
    """Per frame: the noise's std relative to the frame's contrast range (0.5-99.5 %), from the
    median absolute difference between neighbouring rows (across the scan lines, where a fast
    scan's smear does not hide it; structure adds little to a median), on every
    ``column_step``-th column (the contrast range on a grid of ``min(column_step, 4)``).
    Focus maps use 8 for their overlapping tiles: 5x faster per tile, the same interval bin as
    the default for 97.5 % of 2,814 tiles of 61 pool frames (median difference 0.6 %)."""
    return np.asarray([frame_noise(f, column_step) for f in as_frames(image)])


def frame_noise(f: np.ndarray, column_step: int = 2) -> float:
    """:func:`noise_level` of one 2-D float frame, taken as it is (no checks, no copy)."""
    ps = min(column_step, 4)
    d = np.diff(f[:, ::column_step], axis=0)
    mad = float(np.median(np.abs(d - np.median(d))))
    lo, hi = np.percentile(f[::ps, ::ps], [0.5, 99.5])
    return 1.4826 * mad / np.sqrt(2.0) / max(float(hi - lo), 1e-6)
