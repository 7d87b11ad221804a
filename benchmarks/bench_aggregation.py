"""Whole-image aggregation rules compared on frames where the rule matters (issue 12).

For each frame the shipped model scores every 240 x 320 tile once; the tile scores are then
aggregated by three rules:

- ``mean``: the plain mean of the tiles (v3 and before);
- ``contrast``: weights min(1, std(tile) / (0.5 std(frame))) (the focus map's old certainty);
- ``structure``: :mod:`napari_semfocus.aggregate` (the rule shipped from v4).

Frames (720 x 960, 3 x 3 tiles, magnification 5,000x, detector noise added):
- ``sparse``: sharp or blurred objects on a corner / band / third of the frame (scene kind
  ``sparse``), flat substrate elsewhere; label = the blur's label;
- ``corner``: a 240 x 320 corner of sample (pool image or scene), the rest substrate; the
  reference is the score of that corner cut out alone;
- ``halves``: two structured halves at different blur; must land between the halves' scores;
- ``full``: sample over the whole frame (every rule should agree here).

    python benchmarks/bench_aggregation.py [--checkpoint FILE] [--n 24] [--output docs/benchmarks/aggregation.md]
"""

from __future__ import annotations

import argparse
import time

import cv2
import numpy as np

from napari_semfocus.progress import run_to_end
from napari_semfocus.scale import label_for_added_blur
from napari_semfocus.scoring import aggregate
from napari_semfocus.scoring.preprocess import normalise, region_windows
from napari_semfocus.scoring.scorer import FocusScorer
from napari_semfocus.training.data import degrade, scenes
from napari_semfocus.training.data.scene_builders import fractal_noise

H, W, MAG = 720, 960, 5000.0
RULES = ("mean", "contrast", "structure")


def aggregate_all(scorer, frame) -> dict:
    """The frame's score by each rule, from one pass of the model over its tiles."""
    scores, weights, _noise = run_to_end(scorer.tiles_iter(frame, MAG))
    scores, weights = scores[0], weights[0]
    norm = normalise(frame.astype(np.float32))
    ref = 0.5 * float(norm.std())
    contrast = np.array([min(1.0, float(w.cut(norm).std()) / ref) if ref > 0 else 0.0
                         for w in region_windows(norm.shape)])
    return {"mean": float(scores.mean()),
            "contrast": aggregate.weighted_score(scores, contrast + 1e-6),
            "structure": aggregate.weighted_score(scores, weights)}


def noisy(img, rng):
    noise = degrade.NoiseSettings(dose=float(np.exp(rng.uniform(np.log(30), np.log(1000)))),
                                  read_sigma=0.01, line_sigma=0.0, line_gain_sigma=0.0)
    return (np.clip(degrade.add_noise(img, noise, rng), 0, 1) * 255).astype(np.uint8)


def substrate(rng):
    return (np.float32(rng.uniform(0.15, 0.4)) + 0.015 * fractal_noise((H, W), rng)).astype(np.float32)


def blur(img, sigma):
    return img if sigma <= 0 else cv2.GaussianBlur(img, (0, 0), sigma)


def run(scorer, n: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    errs = {k: {r: [] for r in RULES} for k in ("sparse", "corner", "full")}
    halves_between = {r: 0 for r in RULES}
    for _ in range(n):
        sigma = float(rng.choice([0.0, 0.0, 1.0, 2.0, 4.0]))
        label = label_for_added_blur(sigma)
        # sparse scene
        img = 0.1 + 0.8 * scenes.render_scene("sparse", (H, W), rng)
        agg = aggregate_all(scorer, noisy(blur(img, sigma), rng))
        for r in RULES:
            errs["sparse"][r].append(agg[r] - label)
        # sample in one corner: reference = the corner alone
        kind = scenes.SCENE_KINDS[int(rng.integers(len(scenes.SCENE_KINDS)))]
        frame = substrate(rng)
        frame[:240, :320] = 0.1 + 0.8 * scenes.render_scene(kind, (240, 320), rng)
        frame = noisy(blur(frame, sigma), rng)
        ref = scorer.score(frame[:240, :320], MAG)[0]
        agg = aggregate_all(scorer, frame)
        for r in RULES:
            errs["corner"][r].append(agg[r] - ref)
        # full frame of sample
        full = noisy(blur(0.1 + 0.8 * scenes.render_scene(kind, (H, W), rng), sigma), rng)
        agg = aggregate_all(scorer, full)
        for r in RULES:
            errs["full"][r].append(agg[r] - label)
        # two halves, one blurred more
        base = 0.1 + 0.8 * scenes.render_scene("balls", (H, W), rng)
        half = np.concatenate([blur(base, sigma)[:, : W // 2], blur(base, sigma + 4)[:, W // 2 :]], 1)
        half = noisy(half, rng)
        a, b = scorer.score(half[:, : W // 2], MAG)[0], scorer.score(half[:, W // 2 :], MAG)[0]
        agg = aggregate_all(scorer, half)
        for r in RULES:
            halves_between[r] += int(min(a, b) - 0.05 <= agg[r] <= max(a, b) + 0.05)
    out = {k: {r: {"rmse": float(np.sqrt(np.mean(np.square(v)))), "bias": float(np.mean(v))}
               for r, v in d.items()} for k, d in errs.items()}
    out["halves_between"] = {r: f"{halves_between[r]}/{n}" for r in RULES}
    return out


def markdown(res: dict, n: int, model: str, seconds: float) -> str:
    lines = [f"# Whole-image aggregation rules ({model}, {n} frames of each kind)", "",
             "`python benchmarks/bench_aggregation.py` (720 x 960 frames, 3 x 3 tiles, 5,000x, "
             "detector noise). RMSE (bias) in score points: `sparse` and `full` against the "
             "frame's label, `corner` against the score of the sample corner cut out alone; "
             "`halves`: how often the frame's score lies between its two halves' scores.", "",
             "| rule | sparse | corner | full | halves between |", "|---|---|---|---|---|"]
    for r in RULES:
        cells = [f"{res[k][r]['rmse']:.2f} ({res[k][r]['bias']:+.2f})" for k in ("sparse", "corner", "full")]
        lines.append(f"| {r} | " + " | ".join(cells) + f" | {res['halves_between'][r]} |")
    lines += ["", f"{seconds:.0f} s on this machine's CPU.", ""]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint")
    p.add_argument("--n", type=int, default=24)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--output")
    a = p.parse_args()
    scorer = FocusScorer.from_checkpoint(a.checkpoint) if a.checkpoint else FocusScorer.default()
    t = time.time()
    res = run(scorer, a.n, a.seed)
    text = markdown(res, a.n, scorer.name, time.time() - t)
    print(text)
    if a.output:
        with open(a.output, "w") as fh:
            fh.write(text)


if __name__ == "__main__":
    main()
