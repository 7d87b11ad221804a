"""The gate's review band on held-out series (issue 24, item 3), at several target precisions.

Reads what ``semfocus gate calibrate --hold-out 0.5 --scores SCORES.csv`` wrote (the model's
scores and their intervals, once; nothing is scored again) and the calibration manifest (its
``series`` groups), splits the groups as ``gate calibrate --hold-out 0.5 --seed 0`` does
(:func:`napari_semfocus.gate.calibrate.held_out_check`), chooses the threshold on one half for
each target and counts on the other, held-out, half: the plain gate's precision and recall, and
the review band's precision of the automatic accepts, their recall and the fraction sent to
review (:func:`napari_semfocus.gate.review.review_figures`). At the default target (0.95) the
figures are those ``gate calibrate`` printed and stored in the gate file.

    semfocus make-dataset --pool ../shared/data/sem-pool --manifest pool-curation/sem-pool-manifest.csv \\
        --out DS --n-train 16 --n-val 400 --seed 23
    semfocus gate calibrate --manifest DS/val/manifest.csv --hold-out 0.5 --output gate.json \\
        --scores scores.csv
    python benchmarks/bench_review_band.py --scores scores.csv --manifest DS/val/manifest.csv \\
        [--targets 0.9 0.95 0.98]
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

from napari_semfocus.gate.calibrate import format_figure, held_out_check
from napari_semfocus.gate.labels import read_calibration_manifest
from napari_semfocus.gate.review import review_figures


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scores", required=True, help="gate calibrate --scores CSV")
    ap.add_argument("--manifest", required=True, help="the calibration manifest (series)")
    ap.add_argument("--targets", type=float, nargs="+", default=[0.9, 0.95, 0.98])
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    with open(args.scores, newline="") as fh:
        rows = list(csv.DictReader(fh))
    images, _, groups = read_calibration_manifest(args.manifest, "label", "series")
    if [Path(p).name for p, _ in images] != [Path(r["path"]).name for r in rows]:
        raise SystemExit("the scores CSV is not of this manifest's images, in its order")
    col = lambda k: np.array([float(r[k]) for r in rows])  # noqa: E731
    scores, low, high = col("score"), col("score_low"), col("score_high")
    acceptable = np.array([r["acceptable"] == "1" for r in rows])
    print(f"{len(rows)} frames, {len(set(groups))} groups, {int(acceptable.sum())} acceptable; "
          f"held-out half: groups shuffled with seed {args.seed}\n")
    print("| target | held out | threshold | plain gate: precision | recall | review band: precision of "
          "automatic accepts | recall of automatic accepts | to review | acceptable frames "
          "rejected: plain / band |")
    print("|---|---|---|---|---|---|---|---|---|")
    for target in args.targets:
        for swap in (False, True):  # the second fold: the halves exchanged
            _row(target, swap, args.seed, scores, low, high, acceptable, groups)
    return 0


def _row(target, swap, seed, scores, low, high, acceptable, groups) -> None:
    check = held_out_check(scores, acceptable, groups, target, 0.5, seed, best_effort=True,
                           swap=swap)
    t, held = check.calibration.threshold, check.held_out_index
    plain = check.held_out
    band = review_figures(t, low[held], high[held], acceptable[held])
    flag = "" if check.calibration.target_reached else " (not reached)"
    print(f"| {target:g}{flag} | {'second' if swap else 'first'} half | {t:.3f} | "
          f"{format_figure(plain.precision)} | {format_figure(plain.recall)} | "
          f"{format_figure(band.precision)} | {format_figure(band.recall)} | "
          f"{band.fraction_review:.1%} ({band.review}/{band.n}) | "
          f"{plain.confusion.fn} / {band.rejected_good} |")


if __name__ == "__main__":
    raise SystemExit(main())
