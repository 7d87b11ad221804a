"""Coverage of the shipped model's score intervals on frames it was neither trained nor
calibrated on (issue 24): whole frames, and the tiles of focus maps.

``--frames DIR``: a ``semfocus make-dataset`` folder of another seed than the interval's
calibration (the shipped one: seeds 11 and 13, its metadata says); every validation frame is
scored as ``score`` does and its interval checked against the label, overall and per
magnification band, sample type, noise quartile and on the no-sample frames (the groups of
``scripts/calibrate_intervals.py``).

``--tiles DIR``: a ``make-dataset`` folder of larger frames (``size_hw=(512, 672)``: 4 x 4 tiles at
the default stride); every frame is mapped (``--mode``) and each tile's interval is checked against
the frame's label (a frame's blur is uniform, so every tile of it has the frame's label). Tiles
are reported all together and by their structure weight (``FocusMap.weight``): a tile of empty
substrate in a frame that shows sample has no focus of its own to score.

    python benchmarks/bench_interval_coverage.py --frames DS --tiles DS-512 [--checkpoint FILE]
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from napari_semfocus import FocusScorer
from napari_semfocus.io.images import read_image
from napari_semfocus.scoring.checkpoint import model_file
from napari_semfocus.scoring.devices import cpu_model_name

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from calibrate_intervals import MIN_GROUP, band, evaluate, score_dataset  # noqa: E402

WEIGHT_BINS = ((0.0, 0.25, "weight < 0.25"), (0.25, 0.5, "weight 0.25-0.5"),
               (0.5, 1.01, "weight >= 0.5"))


def frame_section(scorer: FocusScorer, folder: Path) -> list[str]:
    rows = score_dataset(scorer, folder / "val")
    ev = evaluate(scorer.interval, rows)
    return [f"## Whole frames: {len(rows)} validation frames of `{folder.name}`", "",
            f"Coverage **{ev['coverage']:.3f}** at a mean width of {ev['width']:.2f} points; "
            f"worst group of >= {MIN_GROUP} frames {ev['worst']:.3f}.", "",
            "| group | coverage | mean width | frames |", "|---|---|---|---|",
            *(f"| {g} | {c:.3f} | {w:.2f} | {n} |" for g, (c, w, n) in ev["groups"].items()), ""]


def map_tiles(scorer: FocusScorer, folder: Path, mode: str) -> list[dict]:
    """Every scored tile of every validation frame: label, score, interval, weight, groups."""
    with open(folder / "val" / "manifest.csv", newline="") as fh:
        frames = list(csv.DictReader(fh))
    tiles = []
    for k, r in enumerate(frames):
        image = read_image(folder / "val" / r["path"]).data
        fmap = scorer.focus_map(image, float(r["magnification"]), mode=mode)
        ok = np.isfinite(fmap.scores)
        for s, lo, hi, w in zip(fmap.scores[ok], fmap.low[ok], fmap.high[ok], fmap.weight[ok],
                                strict=True):
            tiles.append({"label": float(r["label"]), "score": float(s), "low": float(lo),
                          "high": float(hi), "weight": float(w), "frame": k,
                          "band": band(float(r["magnification"])), "type": r["sample_type"]})
        if k % 100 == 0:
            print(f"mapped {k}/{len(frames)}", file=sys.stderr)
    return tiles


def tile_groups(tiles: list[dict]) -> dict[str, tuple[float, float, int, int]]:
    """group -> (coverage, mean width, tiles, frames)."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for t in tiles:
        groups["all tiles"].append(t)
        if t["label"] == 0:
            groups["no sample"].append(t)
            continue
        groups[next(name for lo, hi, name in WEIGHT_BINS if lo <= t["weight"] < hi)].append(t)
        if t["weight"] >= 0.5:
            groups[f"weight >= 0.5, band {t['band']}"].append(t)
            groups[f"weight >= 0.5, type {t['type']}"].append(t)
            groups[f"weight >= 0.5, label {int(t['label'])}"].append(t)
    out = {}
    for g, ts in groups.items():
        inside = [t["low"] <= t["label"] <= t["high"] for t in ts]
        out[g] = (float(np.mean(inside)), float(np.mean([t["high"] - t["low"] for t in ts])),
                  len(ts), len({t["frame"] for t in ts}))
    return out


def tile_section(scorer: FocusScorer, folder: Path, mode: str) -> list[str]:
    tiles = map_tiles(scorer, folder, mode)
    table = tile_groups(tiles)
    order = ["all tiles", "no sample", *(name for _, _, name in WEIGHT_BINS)]
    rest = sorted(g for g in table if g not in order)
    err = np.array([t["score"] - t["label"] for t in tiles if t["label"] > 0 and t["weight"] >= 0.5])
    return [f"## Focus-map tiles: {len(tiles)} tiles of {len({t['frame'] for t in tiles})} "
            f"frames of `{folder.name}` (mode {mode})", "",
            f"Tiles with structure weight >= 0.5 in frames that show sample: score - label "
            f"mean {err.mean():+.2f}, RMSE {np.sqrt((err ** 2).mean()):.2f} points.", "",
            "| tiles | coverage | mean width | tiles | frames |", "|---|---|---|---|---|",
            *(f"| {g} | {table[g][0]:.3f} | {table[g][1]:.2f} | {table[g][2]} | {table[g][3]} |"
              for g in [*order, *rest] if g in table), ""]


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=Path, help="a make-dataset folder: whole-frame coverage")
    p.add_argument("--tiles", type=Path, help="a make-dataset folder of larger frames: tiles")
    p.add_argument("--mode", default="crop", choices=["crop", "shared"])
    p.add_argument("--checkpoint", default=None)
    p.add_argument("--output", type=Path)
    a = p.parse_args(argv)
    scorer = FocusScorer.load(a.checkpoint)
    if scorer.interval is None:
        p.error(f"{scorer.name} carries no score intervals.")
    cal = scorer.interval.calibration or {}
    lines = ["# Score intervals on frames never calibrated on (issue 24)", "",
             "`python benchmarks/bench_interval_coverage.py"
             + (f" --frames {a.frames}" if a.frames else "")
             + (f" --tiles {a.tiles} --mode {a.mode}" if a.tiles else "")
             + f"`: {model_file(a.checkpoint).name}, its {scorer.interval.level:.0%} interval "
             f"(binned by {scorer.interval.feature}; calibrated on {cal.get('frames', '?')} "
             f"frames of make-dataset seed {cal.get('seed', '?')}), on {cpu_model_name()} "
             f"({scorer.device_name}).", ""]
    if a.frames:
        lines += frame_section(scorer, a.frames)
    if a.tiles:
        lines += tile_section(scorer, a.tiles, a.mode)
    text = "\n".join(lines)
    print(text)
    if a.output:
        a.output.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
