"""Frames worth annotating (issue 24, item 4): the one implementation behind ``semfocus
suggest`` and the Fine-tune widget's "Suggest frames" (no Qt).

Every candidate frame (each slice of each image, less the ones already annotated) is scored once
by the model as users score it; the same pass keeps the trunk's pooled features of its tiles
(their structure-weighted mean is the frame's feature vector, L2-normalised). A frame's
*informativeness* (:func:`informativeness`) grows with its interval's width and with how close
its score lies to the threshold (the gate's, else :data:`DEFAULT_THRESHOLD`):

    info = (w / median w) * w / (w + |score - threshold|),   w = score_high - score_low

(1 x the relative width on the threshold, half of it one interval width away). A model without
an interval uses twice its tiles' score spread for ``w``.

The picks (:func:`stratified_pick`) cover the score range: the candidates are cut into N strata
of equal count along their predicted score, and each stratum gives one frame, the one that
maximises ``info * distance (features) to the nearest frame picked so far``, so the picks follow
the scores' distribution as a random draw does (without its clumps), and within each part of the
scale take the informative frame that is least like the others (not a copy, not a neighbouring
slice). Picking by informativeness alone sent every pick to the middle of the scale and was
worse than random picks at teaching a lab's scale (docs/benchmarks/suggest.md). The order is a
greedy weighted farthest-point traversal of the picks (:func:`pick`): best first.
"""

from __future__ import annotations

import threading
from collections.abc import Generator, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import SemFocusError
from ..gate.labels import DEFAULT_ACCEPT_SCORE
from ..progress import CANCELLED, Progress, relay
from ..scoring.aggregate import weighted_score

#: without a gate: the gate's default accept score (frames scoring >= 7 are acceptable), where a
#: facility's accept / reject decision is made
DEFAULT_THRESHOLD = DEFAULT_ACCEPT_SCORE
SUGGEST_COLUMNS = ("rank", "path", "index", "magnification", "score", "score_low", "score_high",
                   "informativeness")


@dataclass(frozen=True)
class Candidate:
    """A scored frame that could be annotated: where it is, its score and interval, and its
    feature vector (L2-normalised)."""

    name: str  # the layer's name, or the file as the user gave it
    index: int  # the slice (flat; 0 for a 2-D image)
    path: str | None
    magnification: float | None
    score: float
    low: float
    high: float
    features: np.ndarray

    @property
    def key(self) -> tuple[str, int]:
        return self.name, self.index


@dataclass(frozen=True)
class Suggestion:
    """A picked frame, best first (``rank`` 1 is the first to annotate)."""

    rank: int
    candidate: Candidate
    informativeness: float

    def csv_row(self) -> list:
        c = self.candidate
        return [self.rank, c.path or c.name, c.index,
                "" if c.magnification is None else f"{c.magnification:g}", f"{c.score:.3f}",
                f"{c.low:.3f}", f"{c.high:.3f}", f"{self.informativeness:.4f}"]


def informativeness(score, low, high, threshold: float = DEFAULT_THRESHOLD) -> np.ndarray:
    """Per frame: ``(w / median w) * w / (w + |score - threshold|)`` (module docstring)."""
    score, low, high = (np.asarray(v, dtype=np.float64) for v in (score, low, high))
    w = np.maximum(high - low, 1e-6)
    return (w / max(float(np.median(w)), 1e-6)) * w / (w + np.abs(score - float(threshold)))


def pick(features: np.ndarray, info: np.ndarray, n: int, start: Sequence[int] = ()) -> list[int]:
    """Indices of ``n`` rows of ``features`` (distinct, in order of picking, ``start`` first):
    greedy weighted farthest-point on Euclidean distance, each next row maximising ``info *
    distance to the nearest row picked``; ties (all distances 0: copies) go to the more
    informative row."""
    feats = np.asarray(features, dtype=np.float64)
    info = np.asarray(info, dtype=np.float64)
    n = min(int(n), len(info))
    chosen = [int(i) for i in start][:n] or ([int(np.argmax(info))] if n > 0 else [])
    if not chosen:
        return []
    nearest = np.min([np.linalg.norm(feats - feats[i], axis=1) for i in chosen], axis=0)
    while len(chosen) < n:
        gain = info * nearest
        gain[chosen] = -np.inf
        best = int(np.argmax(gain))
        if gain[best] <= 0:  # only copies of picked frames are left: the most informative
            rest = np.full(len(info), -np.inf)
            free = np.setdiff1d(np.arange(len(info)), chosen)
            rest[free] = info[free]
            best = int(np.argmax(rest))
        chosen.append(best)
        nearest = np.minimum(nearest, np.linalg.norm(feats - feats[best], axis=1))
    return chosen


def stratified_pick(scores: np.ndarray, features: np.ndarray, info: np.ndarray,
                    n: int) -> list[int]:
    """Indices of ``n`` rows, one per stratum of the predicted score (``n`` strata of equal
    count, so the picks follow the scores' distribution as a random draw does, without its
    clumps); within a stratum the row maximising ``info * distance to the nearest row picked``
    (the first: the most informative row of the most informative stratum). A stratum holding
    only copies of rows picked is skipped and :func:`pick` fills the place. Returned in the
    order of :func:`pick` over the chosen rows (best first)."""
    info = np.asarray(info, dtype=np.float64)
    feats = np.asarray(features, dtype=np.float64)
    n = min(int(n), len(info))
    if n <= 0:
        return []
    strata = np.array_split(np.argsort(np.asarray(scores), kind="stable"), n)
    strata.sort(key=lambda rows: -float(info[rows].max()))
    chosen: list[int] = []
    nearest = np.ones(len(info))  # distance to the nearest row picked (none yet: no weight)
    for rows in strata:
        gain = info[rows] * nearest[rows]
        if gain.max() <= 0:
            continue
        best = int(rows[int(np.argmax(gain))])
        distance = np.linalg.norm(feats - feats[best], axis=1)
        nearest = distance if not chosen else np.minimum(nearest, distance)
        chosen.append(best)
    chosen = pick(feats, info, n, start=chosen)
    order = pick(feats[chosen], info[chosen], n)
    return [chosen[i] for i in order]


def suggest(candidates: Sequence[Candidate], n: int, threshold: float | None = None,
            annotated: Iterable = ()) -> list[Suggestion]:
    """The ``n`` candidates worth annotating, best first (:func:`stratified_pick`);
    ``annotated``: keys ``(name, index)`` or ``(path, index)`` of frames already annotated
    (left out)."""
    done = {(str(a), int(i)) for a, i in annotated}
    free = [c for c in candidates if c.key not in done and (c.path is None or not (
        {(c.path, c.index), (str(Path(c.path).resolve()), c.index)} & done))]
    if not free:
        raise SemFocusError("every frame given is annotated already: there is nothing to "
                            "suggest.")
    thr = DEFAULT_THRESHOLD if threshold is None else float(threshold)
    info = informativeness([c.score for c in free], [c.low for c in free],
                           [c.high for c in free], thr)
    order = stratified_pick(np.array([c.score for c in free]),
                            np.stack([c.features for c in free]), info, n)
    return [Suggestion(k + 1, free[i], float(info[i])) for k, i in enumerate(order)]


def score_candidates(scorer, images: Sequence, cancel: threading.Event | None = None,
                     batch_size: int = 32) -> Generator[Progress, None, list[Candidate] | None]:
    """Score every slice of ``images`` (:class:`~napari_semfocus.jobs.inputs.ImageInput` or
    ``FileInput``) once: score, interval and feature vector per frame (None when cancelled)."""
    out: list[Candidate] = []
    for k, item in enumerate(images):
        image = item.load()
        data = image.frames()
        image.check_magnification(scorer)
        tiles_steps = scorer.tiles_iter(data, image.magnification, batch_size=batch_size,
                                        exclude_bottom_rows=image.databar_rows, name=image.label)
        value = yield from relay(_with_features(scorer, tiles_steps), cancel, image.name, k,
                                 len(images))
        if value is CANCELLED:
            return None
        tiles, feats = value
        scores = np.array([weighted_score(s, w) for s, w in zip(tiles.scores, tiles.weights,
                                                                strict=True)])
        bounds = scorer.bounds(scores, tiles.frame_noise())
        if bounds is None:  # a model without an interval: twice the tiles' spread
            spread = np.nanstd(tiles.scores, axis=1)
            bounds = (scores - spread, scores + spread)
        for i, s in enumerate(scores):
            w = tiles.weights[i] / max(float(np.sum(tiles.weights[i])), 1e-12)
            f = w @ feats[i]
            out.append(Candidate(image.name, i, image.path, image.magnification, float(s),
                                 float(bounds[0][i]), float(bounds[1][i]),
                                 f / max(float(np.linalg.norm(f)), 1e-12)))
    return out


def _with_features(scorer, tiles_steps):
    """``tiles_iter``'s steps with the trunk's pooled features of every tile kept (whichever
    backend runs the trunk: its engine's ``pooled`` is recorded while the steps run): returns
    (TileScores, features (frames, tiles, C))."""
    kept: list = []
    engine = scorer.engine
    trunk = engine.pooled

    def recorded(tiles):
        feats = trunk(tiles)
        kept.append(feats.detach().float().flatten(1).cpu().numpy())
        return feats

    engine.pooled = recorded  # this engine, for these steps only
    try:
        tiles = yield from tiles_steps
    finally:
        del engine.pooled  # the class's method again
    feats = np.concatenate(kept).astype(np.float64)
    return tiles, feats.reshape(*tiles.scores.shape, feats.shape[-1])


def suggestions_csv(suggestions: Sequence[Suggestion]) -> list[list]:
    """The rows of ``semfocus suggest``'s CSV (:data:`SUGGEST_COLUMNS`), best first."""
    return [s.csv_row() for s in suggestions]
