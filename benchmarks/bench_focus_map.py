"""Focus-map cost: the shared-trunk map versus cutting and scoring every overlapping tile, and
the time to score the same frame once as non-overlapping tiles, in the same run.

Default: a 1536 x 2048 frame (a real-looking random texture), 240 x 320 tiles at half-tile stride,
the shipped FocusNet-resnet18 (with its map head) in the automatic backend and precision
(``--backend``, ``--precision``: :mod:`napari_semfocus.scoring.backends`). The target (issue 15): the half-tile-stride map
costs no more than 1.0x the single non-overlapping pass. ``--mosaic N`` also maps an
N x N uint8 frame in a child process and reports its peak resident memory.

    python benchmarks/bench_focus_map.py [--height 1536 --width 2048] [--device auto]
        [--repeats 2] [--backend auto] [--precision auto] [--mosaic 16000]
        [--output docs/benchmarks/focus-map.md]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import numpy as np
import torch

from napari_semfocus.scoring.scorer import FocusScorer

TARGET = 1.0  # half-tile-stride map / one non-overlapping pass (issue 15)

def test_frame(h: int, w: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    small = rng.standard_normal((h // 8 + 1, w // 8 + 1)).astype(np.float32)
    import cv2

    big = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    big += 0.3 * rng.standard_normal((h, w)).astype(np.float32)
    return np.clip(128 + 40 * big, 0, 255).astype(np.uint8)


def timed(fn, scorer, repeats: int) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        if scorer.device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if scorer.device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return best


def mosaic_peak(n: int, device: str) -> str:
    """Peak resident memory (GB) of mapping an n x n uint8 frame, measured in a child process."""
    code = (
        "import resource, numpy as np, torch\n"
        "from napari_semfocus.scoring.model import FocusNet\n"
        "from napari_semfocus.scoring.scorer import FocusScorer\n"
        f"img = np.random.default_rng(0).integers(0, 255, ({n}, {n}), dtype=np.uint8)\n"
        "net = FocusNet('resnet18'); net.attach_map_head()\n"
        f"s = FocusScorer(net, device={device!r})\n"
        "m = s.focus_map(img, 5000.0)\n"
        "gpu = torch.cuda.max_memory_allocated() / 1e9 if torch.cuda.is_available() else 0\n"
        "print(m.shape, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, gpu)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    shape, rss, gpu = out.stdout.strip().rsplit(" ", 2)
    return f"{n} x {n} uint8 mosaic: grid {shape}, peak RSS {float(rss):.2f} GB, " \
           f"peak GPU memory {float(gpu):.2f} GB"


def main(argv=None) -> str:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--height", type=int, default=1536)
    p.add_argument("--width", type=int, default=2048)
    p.add_argument("--device", default="auto")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--precision", default="auto", help="auto, float32, bf16, int8")
    p.add_argument("--backend", default="auto", help="auto, torch, onnxruntime")
    p.add_argument("--mosaic", type=int, default=0, help="also map an N x N mosaic (peak memory)")
    p.add_argument("--output")
    args = p.parse_args(argv)
    scorer = FocusScorer.load(None, device=args.device, precision=args.precision,
                              backend=args.backend)
    frame = test_frame(args.height, args.width)
    mag = 5000.0
    t_shared = timed(lambda: scorer.focus_map(frame, mag, mode="shared"), scorer, args.repeats)
    t_crop = timed(lambda: scorer.focus_map(frame, mag, mode="crop"), scorer, args.repeats)
    t_single = timed(lambda: scorer.score(frame, mag, region="whole"), scorer, args.repeats)
    grid = scorer.focus_map(frame, mag).shape
    lines = [
        f"Frame {args.height} x {args.width}, tiles 240 x 320, stride 120 x 160 (grid {grid[0]} x "
        f"{grid[1]}), {scorer.device_name}, best of {args.repeats}; the cores were shared with "
        f"other work (load average {os.getloadavg()[0]:.1f}).",
        "",
        "| what | seconds | / single pass |",
        "|---|---|---|",
        f"| single pass, non-overlapping tiles (`score`) | {t_single:.3f} | 1.00 |",
        f"| focus map, shared trunk | {t_shared:.3f} | {t_shared / t_single:.2f} |",
        f"| focus map, crop every overlapping tile | {t_crop:.3f} | {t_crop / t_single:.2f} |",
        "",
        f"Shared map is {t_crop / t_shared:.1f}x faster than cropping every tile; "
        f"target shared / single <= {TARGET}: "
        f"{'met' if t_shared <= TARGET * t_single else 'NOT met'}.",
    ]
    if args.mosaic:
        lines += ["", mosaic_peak(args.mosaic, args.device)]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as fh:
            fh.write(text)
    return text


if __name__ == "__main__":
    main()
