"""Real SEM frames as published (no blur or noise added), judged by eye: crisp, soft, noisy or
empty, each with the score range a microscopist would accept (``benchmarks/real_frames.csv``).

None of these frames is in the training data: the soil and axon frames belong to sample types
held out of training, the vendor files (JEOL, Tescan, Thermo, Zeiss) come from another
repository, and the pool frames marked so were excluded from training as not sharp. ``crop`` is
``y0:y1 x0:x1`` of a frame (for the empty regions). Paths are relative to ``shared/data``.

    python benchmarks/real_frames.py [--checkpoint FILE] [--output docs/eval/real-frames.md]

tests/ checks the same ranges with the shipped model.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

from napari_semfocus import FocusScorer
from napari_semfocus.io.frames import as_frames
from napari_semfocus.io.images import read_image

HERE = Path(__file__).resolve().parent
MANIFEST = HERE / "real_frames.csv"
DATA = HERE.parents[1] / "shared" / "data"


def read_rows(manifest=MANIFEST) -> list[dict]:
    with open(manifest, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def load_frame(row: dict, data_dir=DATA) -> np.ndarray:
    """The frame of a row (grey, data bar cut, cropped when the row says so)."""
    img = read_image(Path(data_dir) / row["path"])
    frame = as_frames(img.data, row["path"])[0]
    frame = frame[: frame.shape[0] - int(img.databar_rows or 0)]
    if row.get("crop"):
        (y0, y1), (x0, x1) = (tuple(int(v) for v in part.split(":")) for part in row["crop"].split())
        frame = frame[y0:y1, x0:x1]
    return frame


def score_rows(scorer, rows, data_dir=DATA) -> list[float]:
    return [float(scorer.score(load_frame(r, data_dir), float(r["magnification"]))[0]) for r in rows]


def markdown(rows, scores, model: str) -> str:
    ok = [float(r["low"]) <= s <= float(r["high"]) for r, s in zip(rows, scores, strict=True)]
    lines = [f"# Real frames judged by eye ({model}: {sum(ok)} of {len(ok)} in range)", "",
             "| frame | M | judged | accepted range | score | in range | note |",
             "|---|---|---|---|---|---|---|"]
    for r, s, good in zip(rows, scores, ok, strict=True):
        name = Path(r["path"]).name + (f" [{r['crop']}]" if r["crop"] else "")
        lines.append(f"| {name} | {float(r['magnification']):g} | {r['judged']} | "
                     f"{r['low']}-{r['high']} | {s:.2f} | {'yes' if good else '**no**'} | {r['note']} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint")
    p.add_argument("--output")
    a = p.parse_args()
    scorer = FocusScorer.from_checkpoint(a.checkpoint) if a.checkpoint else FocusScorer.default()
    rows = read_rows()
    text = markdown(rows, score_rows(scorer, rows), scorer.name)
    print(text)
    if a.output:
        Path(a.output).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
