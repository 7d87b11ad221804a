"""Through-focus series: best focus between slices, with an interval (docs/through-focus.md).

Between 1 and 10 the focus score is a fixed function of the blur sigma in pixels
(docs/focus-score-scale.md), and defocus blur grows linearly with the distance from focus, so
the slices of a through-focus series follow

    sigma(z) = sqrt(s0^2 + (k (z - z0))^2)

:func:`fit_focus_curve` maps each slice's score back to sigma (:func:`~..scale.sigma_from_score`)
and fits z0 (best focus), s0 (the least blur reachable: as a score, the *best attainable score*)
and k (blur per unit of z). The residuals are measured in score units (a fixed step of log
sigma), robustly (a Cauchy loss: an outlying slice counts little), each slice weighted by the
caller's certainty where there is one. Scores at the ends of the scale only bound sigma: a
slice scoring >= 9.75 says sigma <= sigma(9.75), one scoring <= 1.25 says sigma >= sigma(1.25)
(a censored slice adds a residual only when the curve crosses its bound); a slice scoring below
1 shows no sample and is left out. The 90 % interval of z0 is the profile-likelihood interval
(the weighted residual sum of squares with z0 held fixed, F-test with 1 and n - 3 degrees of
freedom), or, on request, a residual bootstrap; ``benchmarks/bench_through_focus.py`` measures
how often each covers the true z0.

Refusals (one :class:`~..errors.SemFocusError` sentence): fewer than 4 slices with structure,
and a series all on one side of focus ("best focus is beyond the first/last slice").
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import optimize, special

from ..errors import SemFocusError
from ..scale import score_from_sigma, sigma_from_score

MIN_SLICES = 4  # with structure, to fit three parameters and judge them
NO_SAMPLE_BELOW = 1.0  # a score below: no sample (score 0 by the scale), left out
FLOOR = 1.25  # scores at or below: sigma only bounded from below (sigma >= 29 px)
CEILING = 9.75  # scores at or above: sigma only bounded from above (sigma <= 0.56 px)
LOSS_SCALE = 0.5  # score units: residuals well above this count less and less (Cauchy loss)
LEVEL = 0.90  # of the interval of z0
SCORE_PER_LN_SIGMA = 1.5 / np.log(2.0)
INTERVALS = ("profile", "bootstrap")


@dataclass
class FocusCurve:
    """A fitted through-focus curve. ``z`` in ``z_unit``; ``best_z_low`` / ``best_z_high``: the
    interval of ``best_z`` at ``level`` (an infinite end: the data do not bound it there)."""

    z: np.ndarray
    scores: np.ndarray
    weights: np.ndarray  # per slice, after the robust loss (0: left out)
    best_z: float
    best_z_low: float
    best_z_high: float
    s0_px: float
    k_px_per_unit: float
    residual: float  # weighted RMS of the score residuals
    z_unit: str = "slice"
    z_source: str = "slice index"
    interval: str = "profile"
    level: float = LEVEL
    astigmatism: dict = field(default_factory=dict)

    @property
    def best_score(self) -> float:
        """The best attainable score: the score of the least blur, s0."""
        return float(score_from_sigma(self.s0_px))

    @property
    def best_index(self) -> int:
        """The slice nearest to best focus."""
        return int(np.argmin(np.abs(self.z - self.best_z)))

    def sigma(self, z) -> np.ndarray:
        z = np.asarray(z, dtype=np.float64)
        return np.hypot(self.s0_px, self.k_px_per_unit * (z - self.best_z))

    def curve(self, z) -> np.ndarray:
        """The fitted score at ``z`` (the hyperbola, on the score scale)."""
        return score_from_sigma(self.sigma(z))

    def to_dict(self) -> dict:
        """The JSON record (``semfocus focus-curve --output``)."""
        def num(v):
            return float(v) if np.isfinite(v) else None

        return {
            "best_z": num(self.best_z), "best_z_low": num(self.best_z_low),
            "best_z_high": num(self.best_z_high), "interval_level": self.level,
            "interval_method": self.interval, "best_index": self.best_index,
            "best_score": round(self.best_score, 4), "s0_px": num(self.s0_px),
            "k_px_per_unit": num(self.k_px_per_unit), "residual": num(self.residual),
            "z_unit": self.z_unit, "z_source": self.z_source,
            "z": [float(v) for v in self.z], "scores": [float(v) for v in self.scores],
            "weights": [round(float(v), 4) for v in self.weights],
            "astigmatism": self.astigmatism,
        }


# ---- residuals ----------------------------------------------------------------------------------
def _model_scores(params, z) -> np.ndarray:
    """Unclipped score of sigma(z) for params (z0, ln s0, ln k)."""
    z0, ls0, lk = params
    ls0, lk = np.clip(ls0, -20.0, 20.0), np.clip(lk, -40.0, 40.0)
    ln_sigma = 0.5 * np.log(np.exp(2 * ls0) + np.exp(2 * lk) * (z - z0) ** 2)
    return 10.0 - SCORE_PER_LN_SIGMA * (ln_sigma - np.log(0.5))


def _residuals(params, z, obs, low, high, sw) -> np.ndarray:
    """Score residuals (model - observed) times sqrt(weight); censored slices one-sided."""
    r = _model_scores(params, z) - obs
    r = np.where(high, np.minimum(r, 0.0), r)  # observed >= CEILING: a higher model is fine
    r = np.where(low, np.maximum(r, 0.0), r)  # observed <= FLOOR: a lower model is fine
    return r * sw


class _Problem:
    """The data of one fit: z, scores, censoring and prior weights of the slices used."""

    def __init__(self, z, scores, weights):
        self.z, self.obs, self.prior = z, scores, weights
        self.low = scores <= FLOOR
        self.high = scores >= CEILING
        self.obs_c = np.clip(scores, FLOOR, CEILING)

    def fit(self, start, sw=None, z0=None):
        """Least squares from ``start`` (z0, ln s0, ln k); ``z0`` given: held fixed. With ``sw``
        (sqrt weights) the plain weighted fit, else the robust one with the prior weights."""
        robust = sw is None
        sw = np.sqrt(self.prior) if robust else sw
        args = (self.z, self.obs_c, self.low, self.high, sw)
        loss = "cauchy" if robust else "linear"
        if z0 is None:
            res = optimize.least_squares(_residuals, start, args=args, loss=loss,
                                         f_scale=LOSS_SCALE, x_scale="jac")
            return res.x, res
        res = optimize.least_squares(lambda p: _residuals((z0, *p), *args), start[1:],
                                     loss=loss, f_scale=LOSS_SCALE, x_scale="jac")
        return np.array([z0, *res.x]), res

    def starts(self):
        """Starting points: z0 at the four best-scoring slices and between neighbours of them."""
        sigma = sigma_from_score(self.obs_c)
        zs = np.sort(self.z)
        top = np.sort(self.z[np.argsort(-(self.obs * self.prior))[:4]])
        cands = np.concatenate([top, (top[1:] + top[:-1]) / 2])
        span = max(float(np.ptp(zs)), 1e-12)
        for z0 in cands:
            s0 = max(float(sigma.min()), 0.3)
            d = np.abs(self.z - z0)
            far = d > 0.25 * span
            k = np.median(np.sqrt(np.maximum(sigma[far] ** 2 - s0**2, 0.01)) / d[far]) \
                if far.any() else 4.0 / span
            yield np.array([z0, np.log(s0), np.log(max(k, 1e-9))])


def fit_focus_curve(scores, z=None, weights=None, z_unit: str = "slice",
                    z_source: str = "slice index", name: str = "series",
                    interval: str = "profile", level: float = LEVEL,
                    rng: np.random.Generator | int | None = 0) -> FocusCurve:
    """Fit sigma(z) = sqrt(s0^2 + (k (z - z0))^2) to a series' scores (one per slice, in the
    order of ``z``; ``z`` default: the slice index). ``weights``: per-slice certainty in [0, 1].
    Raises :class:`SemFocusError` (naming ``name``) for series that cannot be fitted."""
    scores = np.asarray(scores, dtype=np.float64).ravel()
    n = scores.size
    z = np.arange(n, dtype=np.float64) if z is None else np.asarray(z, dtype=np.float64).ravel()
    check_z(z, n, name)
    prior = np.ones(n) if weights is None else np.clip(np.asarray(weights, np.float64), 0, 1)
    if interval not in INTERVALS:
        raise SemFocusError(f"interval {interval!r} is not one of {', '.join(INTERVALS)}.")
    used = np.isfinite(scores) & (scores >= NO_SAMPLE_BELOW) & (prior > 0)
    informative = used & (scores > FLOOR)
    if informative.sum() < MIN_SLICES:
        raise SemFocusError(
            f"{name}: only {int(informative.sum())} of {n} slices show enough structure to judge "
            f"focus (a score above {FLOOR:g}); a focus curve needs at least {MIN_SLICES}.")
    prob = _Problem(z[used], scores[used], prior[used])
    best = min((prob.fit(s)[1] for s in prob.starts()), key=lambda r: r.cost)
    params = best.x
    _refuse_one_sided(params[0], z[informative], scores[informative], z_unit, name)
    # robust weights of the final fit (Cauchy: 1 / (1 + (r/c)^2)), times the prior
    r = _residuals(params, prob.z, prob.obs_c, prob.low, prob.high, np.ones(prob.z.size))
    w_used = prob.prior / (1.0 + (r / LOSS_SCALE) ** 2)
    sw = np.sqrt(w_used)
    rss = float(np.sum((r * sw) ** 2))
    dof = max(float(np.sum(w_used)) - 3.0, 1.0)
    if interval == "profile":
        low, high = _profile_interval(prob, params, sw, rss, dof, level)
    else:
        low, high = _bootstrap_interval(prob, params, sw, r, level, rng)
    weights_out = np.zeros(n)
    weights_out[used] = w_used
    residual = float(np.sqrt(rss / max(np.sum(w_used), 1e-12)))
    return FocusCurve(z=z, scores=scores, weights=weights_out, best_z=float(params[0]),
                      best_z_low=low, best_z_high=high, s0_px=float(np.exp(params[1])),
                      k_px_per_unit=float(np.exp(params[2])), residual=residual, z_unit=z_unit,
                      z_source=z_source, interval=interval, level=level)


def check_z(z: np.ndarray, n: int, name: str) -> None:
    """z must have one finite value per slice, all different."""
    if z.size != n:
        raise SemFocusError(f"{name}: {z.size} focus positions given for {n} slices.")
    if not np.all(np.isfinite(z)):
        raise SemFocusError(f"{name}: the focus positions are not all finite numbers.")
    if np.unique(z).size != n:
        raise SemFocusError(f"{name}: two slices have the same focus position; a focus curve "
                            "needs one slice per position.")


def _refuse_one_sided(z0, z, scores, z_unit, name) -> None:
    """All slices on one side of focus: say which way best focus lies."""
    first, last = float(z.min()), float(z.max())
    if first <= z0 <= last:
        return
    unit = "" if z_unit == "slice" else f" {z_unit}"
    where, edge, way = (("first", first, "smaller") if z0 < first else ("last", last, "larger"))
    label = f"slice {edge:g}" if z_unit == "slice" else f"z = {edge:g}{unit}"
    raise SemFocusError(
        f"{name}: best focus is beyond the {where} slice ({label}): the scores rise toward "
        f"{way} z all the way, so extend the series to {way} z.")


# ---- intervals ----------------------------------------------------------------------------------
def _profile_interval(prob: _Problem, params, sw, rss, dof, level):
    """z0 where the profile's F statistic reaches its ``level`` quantile, on either side."""
    threshold = float(special.fdtri(1, dof, level))
    scale = max(rss / dof, 1e-6)
    warm = {"x": params}

    def excess(z0):
        x, res = prob.fit(warm["x"], sw=sw, z0=z0)
        return (2 * res.cost - rss) / scale - threshold

    span = float(np.ptp(prob.z))
    step = span / max(prob.z.size - 1, 1) / 4
    ends = []
    for direction in (-1.0, 1.0):
        inner, outer = params[0], params[0]
        end = np.inf * direction
        for _ in range(40):  # walk out in growing steps until the profile crosses
            outer = inner + direction * step * (1.5 ** _)
            if abs(outer - params[0]) > 2 * span:
                break
            warm["x"] = params
            if excess(outer) > 0:
                warm["x"] = params
                end = optimize.brentq(excess, inner, outer, xtol=step * 1e-3) \
                    if excess(inner) < 0 else outer
                break
            inner = outer
        ends.append(float(end))
    return ends[0], ends[1]


def _bootstrap_interval(prob: _Problem, params, sw, r, level, rng, n_boot: int = 200):
    """Percentile interval of z0 over residual-bootstrap refits (weighted residuals resampled)."""
    rng = np.random.default_rng(rng)
    fitted = _model_scores(params, prob.z)
    keep = sw > np.sqrt(0.05)
    pool = (r * sw)[keep]
    pool = pool - pool.mean()
    z0s = []
    for _ in range(n_boot):
        noise = rng.choice(pool, size=prob.z.size) / np.maximum(sw, 0.2)
        sim = _Problem(prob.z, np.clip(fitted - noise, NO_SAMPLE_BELOW, 10.0), prob.prior)
        x, _res = sim.fit(params)
        z0s.append(x[0])
    a = (1 - level) / 2
    low, high = np.quantile(z0s, [a, 1 - a])
    return float(low), float(high)
