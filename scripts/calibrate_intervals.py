"""Calibrate the score intervals of a model (issue 24) and measure their coverage.

Scores the validation frames of a ``semfocus make-dataset`` folder (pool sources and scene seeds
never trained on), splits them by series into a calibration half and a test half, fits an
:class:`~napari_semfocus.scoring.intervals.IntervalModel` per feature (none, predicted score,
noise, both) on the calibration half and reports, on the test half, the coverage of the interval
overall, per magnification band, sample type, noise bin and on no-sample frames, and the mean
width; then the real frames judged by eye (``benchmarks/real_frames.csv``: the interval meets
the judged range). The feature kept is the one that holds >= 0.7 in every group with the
narrowest intervals. ``--write`` saves a copy of the model with the interval, fitted on all the
frames (both folders with ``--test``), in its metadata.

    python scripts/calibrate_intervals.py --dataset DIR [--test DIR] [--checkpoint FILE]
        [--level 0.8] [--output docs/intervals.md] [--write model-with-intervals.safetensors]

``--test DIR``: calibrate on every frame of ``--dataset`` and test on every frame of another
``make-dataset`` folder (another seed: other series, scenes and noise draws), instead of halves
of one. ``--feature NAME``: fit only that binning.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import numpy as np

from napari_semfocus import FocusScorer
from napari_semfocus.io.images import read_image
from napari_semfocus.progress import run_to_end
from napari_semfocus.scale import parse_magnification
from napari_semfocus.scoring.aggregate import weighted_score
from napari_semfocus.scoring.checkpoint import load_checkpoint, model_file, save_checkpoint
from napari_semfocus.scoring.devices import cpu_model_name
from napari_semfocus.scoring.intervals import FEATURES, IntervalModel

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
import real_frames  # noqa: E402  (the frames judged by eye, benchmarks/real_frames.py)

MIN_GROUP = 30  # groups with fewer test frames are listed but too small to judge coverage on
BANDS = ((0, 1e3, "<1k"), (1e3, 1e4, "1k-10k"), (1e4, 5e4, "10k-50k"), (5e4, np.inf, ">=50k"))


def band(mag: float) -> str:
    return next(name for lo, hi, name in BANDS if lo <= mag < hi)


def score_dataset(scorer: FocusScorer, val_dir: Path) -> list[dict]:
    """Every validation frame with its label, prediction, noise and groups."""
    with open(val_dir / "manifest.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    for k, r in enumerate(rows):
        r["pred"], r["noise"] = score_one(scorer, read_image(val_dir / r["path"]).data,
                                          float(r["magnification"]))
        r["label"], r["mag"] = float(r["label"]), float(r["magnification"])
        if k % 100 == 0:
            print(f"scored {k}/{len(rows)}", file=sys.stderr)
    return rows


def score_one(scorer: FocusScorer, frame, magnification: float, databar_rows: int = 0):
    """(score, noise) of a frame as scoring computes them (the noise of its tiles)."""
    tiles = run_to_end(scorer.tiles_iter(frame, magnification,
                                         exclude_bottom_rows=databar_rows))
    return (float(weighted_score(tiles.scores[0], tiles.weights[0])),
            float(tiles.frame_noise()[0]))


def split_halves(rows, seed: int) -> tuple[list, list]:
    """Calibration and test halves, whole series on one side (zero frames one by one)."""
    keys = sorted({r["series"] if r["series"] != "zero" else f"zero-{r['path']}" for r in rows})
    chosen = set(np.random.default_rng(seed).permutation(keys)[: len(keys) // 2])
    key = lambda r: r["series"] if r["series"] != "zero" else f"zero-{r['path']}"  # noqa: E731
    return [r for r in rows if key(r) in chosen], [r for r in rows if key(r) not in chosen]


def fit(rows, feature: str, level: float) -> IntervalModel:
    pred = np.array([r["pred"] for r in rows])
    return IntervalModel.fit(pred, [r["label"] for r in rows], level, feature,
                             [r["noise"] for r in rows])


def evaluate(model: IntervalModel, rows) -> dict:
    pred = np.array([r["pred"] for r in rows])
    low, high = model.bounds(pred, [r["noise"] for r in rows])
    true = np.array([r["label"] for r in rows])
    inside = (true >= low) & (true <= high)
    width = high - low
    noise_edges = np.quantile([r["noise"] for r in rows], [0.25, 0.5, 0.75])
    groups: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(rows):
        groups[f"band {band(r['mag'])}"].append(i)
        groups[f"type {r['sample_type']}"].append(i)
        groups[f"noise q{int(np.searchsorted(noise_edges, r['noise'])) + 1}"].append(i)
        if r["label"] == 0:
            groups["no sample"].append(i)
    table = {g: (float(inside[ix].mean()), float(width[ix].mean()), len(ix))
             for g, ix in sorted(groups.items())}
    return {"coverage": float(inside.mean()), "width": float(width.mean()), "groups": table,
            "worst": min(c for c, _, n in table.values() if n >= MIN_GROUP)}


def judged_frames(scorer: FocusScorer, model: IntervalModel) -> tuple[int, int, list]:
    """How many real frames judged by eye get an interval that meets the judged range."""
    rows = real_frames.read_rows()
    hits, lines = 0, []
    for r in rows:
        pred, noise = score_one(scorer, real_frames.load_frame(r),
                                parse_magnification(r["magnification"]))
        low, high = (float(v[0]) for v in model.bounds([pred], [noise]))
        ok = high >= float(r["low"]) and low <= float(r["high"])
        hits += ok
        lines.append(f"| {Path(r['path']).name[:40]} | {r['judged']} | {r['low']}-{r['high']} | "
                     f"{pred:.2f} | {low:.2f}-{high:.2f} | {'yes' if ok else 'no'} |")
    return hits, len(rows), lines


def describe_calibration(datasets: list[Path], frames: int, ev: dict) -> dict:
    """What the interval was calibrated on, for the checkpoint's metadata (no local paths)."""
    seeds = [json.loads((d / "dataset.json").read_text()).get("seed")
             if (d / "dataset.json").is_file() else None for d in datasets]
    return {"frames": frames, "source": "semfocus make-dataset validation frames (the pool's "
            "validation split, fast-scan noise included)",
            "seed": seeds[0] if len(seeds) == 1 else seeds,
            "test_coverage": round(ev["coverage"], 4),
            "script": "scripts/calibrate_intervals.py"}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", type=Path, required=True)
    p.add_argument("--test", type=Path, default=None)
    p.add_argument("--feature", choices=FEATURES, default=None,
                   help="only this feature (default: each, and keep the best)")
    p.add_argument("--checkpoint", default=None)
    p.add_argument("--level", type=float, default=0.8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--output", type=Path, default=None)
    p.add_argument("--write", type=Path, default=None)
    args = p.parse_args(argv)
    path = model_file(args.checkpoint)
    scorer = FocusScorer.load(args.checkpoint)
    rows = score_dataset(scorer, args.dataset / "val")
    if args.test:
        cal, test = rows, score_dataset(scorer, args.test / "val")
        how = (f"{len(cal)} validation frames of `make-dataset` to calibrate ({args.dataset.name}) "
               f"and {len(test)} of another seed to test ({args.test.name})")
    else:
        cal, test = split_halves(rows, args.seed)
        how = (f"{len(rows)} validation frames of `make-dataset`, split by series: {len(cal)} to "
               f"calibrate, {len(test)} to test")
    features = [args.feature] if args.feature else FEATURES
    results = {f: (fit(cal, f, args.level), None) for f in features}
    results = {f: (m, evaluate(m, test)) for f, (m, _) in results.items()}
    ok = [f for f, (_, e) in results.items() if e["worst"] >= 0.7]
    chosen = (min(ok, key=lambda f: results[f][1]["width"]) if ok
              else max(results, key=lambda f: results[f][1]["worst"]))
    model, ev = results[chosen]
    hits, n_judged, judged_lines = judged_frames(scorer, model)
    lines = [
        f"# Score intervals ({args.level:.0%}): coverage measured",
        "",
        f"`python scripts/calibrate_intervals.py --dataset {args.dataset}"
        + (f" --test {args.test}" if args.test else "") + f" --level {args.level}` "
        f"with {path.name} on {cpu_model_name()} ({scorer.device_name}). {how} (pool sources and "
        f"scene seeds never trained on, fast-scan noise included).",
        "",
        f"| feature | coverage | mean width | worst group of >= {MIN_GROUP} frames |",
        "|---|---|---|---|",
        *(f"| {f} | {e['coverage']:.3f} | {e['width']:.2f} | {e['worst']:.3f} |"
          for f, (_, e) in results.items()),
        "",
        f"Kept: **{chosen}** ("
        + (f"the narrowest whose every group of >= {MIN_GROUP} frames keeps >= 0.7" if ok else
           f"no feature keeps >= 0.7 in every group of >= {MIN_GROUP} frames: the one with the "
           "best worst group")
        + f"; bins {', '.join(f'{x:.3g}' for x in model.edges) or 'none'}).",
        "",
        f"| group ({'test set' if args.test else 'test half'}) | coverage | mean width | frames |",
        "|---|---|---|---|",
        *(f"| {g} | {c:.3f} | {w:.2f} | {n} |" for g, (c, w, n) in ev["groups"].items()),
        "",
        f"Real frames judged by eye: the interval meets the judged range for {hits} of "
        f"{n_judged}.",
        "",
        "| frame | judged | range | score | interval | meets |",
        "|---|---|---|---|---|---|",
        *judged_lines,
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.output:
        args.output.write_text(text)
    if args.write:
        final = fit(cal + test, chosen, args.level)
        final = replace(final, calibration=describe_calibration(
            [args.dataset, *([args.test] if args.test else [])], len(cal) + len(test), ev))
        net, meta = load_checkpoint(path)
        meta["interval"] = final.as_dict()
        save_checkpoint(net, args.write, meta, half=meta.get("weights_dtype") == "float16")
        print(f"written {args.write}", file=sys.stderr)


if __name__ == "__main__":
    main()
