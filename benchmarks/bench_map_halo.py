"""How much context a shared-mode trunk window needs: the focus map of real pool frames cut into
small windows (``WINDOW_PX`` 600) with a halo of H pixels, against the same map in one window.

    python benchmarks/bench_map_halo.py [--frames 6] [--halos 32 64 96 128 192 320]

Prints, per halo, the mean and the largest |difference| per tile (points), over the frames.
"""

from __future__ import annotations

import argparse
import glob

import numpy as np

import napari_semfocus.scoring.map_trunk as map_trunk
from napari_semfocus.io.images import read_frames
from napari_semfocus.scoring.scorer import FocusScorer

POOL = "../shared/data/sem-pool"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--frames", type=int, default=6)
    p.add_argument("--halos", type=int, nargs="+", default=[32, 64, 96, 128, 192, 320])
    p.add_argument("--pool", default=POOL)
    args = p.parse_args(argv)
    scorer = FocusScorer.load(None, backend="onnxruntime", precision="float32")
    files = sorted(f for f in glob.glob(f"{args.pool}/**/*.*", recursive=True)
                   if f.lower().endswith((".tif", ".png", ".jpg")))
    pick = np.random.default_rng(0).choice(len(files), args.frames, replace=False)
    diffs: dict[int, list] = {h: [] for h in args.halos}
    window, halo = map_trunk.WINDOW_PX, map_trunk.HALO_PX
    try:
        for i in pick:
            frame = read_frames(files[i])[0]
            map_trunk.WINDOW_PX = 10**6
            ref = scorer.focus_map(frame, 5000, mode="shared").scores
            map_trunk.WINDOW_PX = 600
            for h in args.halos:
                map_trunk.HALO_PX = h
                d = np.abs(scorer.focus_map(frame, 5000, mode="shared").scores - ref)
                diffs[h].append((np.nanmean(d), np.nanmax(d)))
            print(files[i].rsplit("/", 1)[-1], frame.shape, flush=True)
    finally:
        map_trunk.WINDOW_PX, map_trunk.HALO_PX = window, halo
    for h, v in diffs.items():
        v = np.array(v)
        print(f"halo {h:4d} px: mean {v[:, 0].mean():.4f}, largest {v[:, 1].max():.4f} points")


if __name__ == "__main__":
    main()
