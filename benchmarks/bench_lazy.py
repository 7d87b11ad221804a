"""Lazy arrays: a 2,000 x 1024 x 1024 uint8 stack scored and a 20,000 x 20,000 uint8 mosaic mapped
through dask, each in its own process, with that process's peak resident memory (VmHWM).

Both are written once as uncompressed TIFFs in ``--tmp`` (tifffile; 2 GB and 400 MB) and opened
lazily: a dask array over a reader that ``pread``s the rows / slices each chunk needs from the
file (no memory map, whose pages would count as resident). The shipped model, ``auto`` precision.

- stack: ``FocusScorer.score`` of the dask stack (chunks of one slice), images/s and peak RSS
  (target <= 1.5 GB); a second process scores the first ``--check`` slices in memory (numpy) and
  lazily: equal scores, and the lazy/in-memory throughput ratio. ``--stack-seconds`` stops the
  full run early on a busy machine (the slices done and the RSS over them are reported).
- mosaic: ``FocusScorer.focus_map`` of the dask mosaic (chunks of 1000 x 1300 px, not aligned with
  the tiles), seconds and peak RSS (target <= 2 GB); a crop of 4096 x 4096 px at (5003, 7011)
  (for 20,000 px; :func:`crop_of` otherwise) mapped in memory (numpy) and through dask: the
  largest score difference (target <= 0.01).

    .venv/bin/python benchmarks/bench_lazy.py [--parts stack,mosaic] [--slices 2000]
        [--size 20000] [--tmp /tmp/semfocus-lazy] [--output docs/benchmarks/lazy.md]

The temporary files are deleted at the end (``--keep`` keeps them).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import cv2
import dask.array as da
import numpy as np
import tifffile

from napari_semfocus.scoring.focus_map import focus_map
from napari_semfocus.scoring.scorer import FocusScorer

HW = (1024, 1024)
MAG = 5000.0


# ---- the files and their lazy opening ---------------------------------------------------------
class PreadArray:
    """A uint8 array stored contiguously in a file at ``offset``, read with ``os.preadv`` per
    request: rows along the first axis in blocks of about 4 MB, each cut to the columns asked
    for at once (a window of a mosaic does not hold whole 20,000 px rows); a strided first axis
    reads only the rows it needs."""

    def __init__(self, path: Path, shape, offset: int):
        self.fd = os.open(path, os.O_RDONLY)
        self.shape, self.dtype, self.ndim = tuple(shape), np.dtype(np.uint8), len(shape)
        self.offset, self.row = offset, int(np.prod(shape[1:]))

    def __getitem__(self, key):
        key = key if isinstance(key, tuple) else (key,)
        first, rest = key[0], (slice(None), *key[1:])
        one = not isinstance(first, slice)  # an integer: that row, its axis dropped
        rows = range(*(slice(first, first + 1) if one else first).indices(self.shape[0]))
        per = max(1, 4 * 2**20 // self.row) if rows.step == 1 else 1
        tail = np.empty((1, *self.shape[1:]), np.uint8)[rest].shape[1:]
        out = np.empty((len(rows), *tail), dtype=np.uint8)
        buf = np.empty((per, *self.shape[1:]), dtype=np.uint8)
        for k in range(0, len(rows), per):
            m = min(per, len(rows) - k)
            if rows.step == 1:
                os.preadv(self.fd, [buf[:m].reshape(-1)], self.offset + rows[k] * self.row)
            else:
                os.preadv(self.fd, [buf[:1].reshape(-1)], self.offset + rows[k] * self.row)
            out[k : k + m] = buf[:m][rest]
        return out[0] if one else out


def open_lazy(path: Path, chunks) -> da.Array:
    """The TIFF's one contiguous series as a dask array (nothing read but the header)."""
    with tifffile.TiffFile(path) as tf:
        series = tf.series[0]
        shape, offset = series.shape, series.dataoffset
    return da.from_array(PreadArray(path, shape, offset), chunks=chunks, lock=False)


def texture(hw, seed=0) -> np.ndarray:
    """A float32 random texture with structure from 1 to ~20 px."""
    rng = np.random.default_rng(seed)
    coarse = cv2.resize(rng.standard_normal((hw[0] // 16, hw[1] // 16)).astype(np.float32),
                        (hw[1], hw[0]), interpolation=cv2.INTER_CUBIC)
    return coarse + 0.8 * cv2.GaussianBlur(rng.standard_normal(hw).astype(np.float32), (0, 0), 1)


def to_u8(f: np.ndarray) -> np.ndarray:
    return np.clip(128 + 40 * f / f.std(), 0, 255).astype(np.uint8)


def write_stack(path: Path, n: int) -> None:
    """A through-focus series: blur 0 at the middle slice, up to 6 px at the ends (50 levels)."""
    base = texture(HW)
    levels = [to_u8(cv2.GaussianBlur(base, (0, 0), s) if s else base)
              for s in np.linspace(0, 6, 50)]
    out = tifffile.memmap(path, shape=(n, *HW), dtype=np.uint8, bigtiff=True)
    for z in range(n):
        out[z] = levels[min(49, int(round(49 * abs(z - n / 2) / (n / 2))))]
    out.flush()
    del out


def write_mosaic(path: Path, size: int) -> None:
    """2,000 px blocks of one texture, each blurred by one of five amounts (0-4 px)."""
    block = 2000
    base = texture((block, block), seed=1)
    variants = [to_u8(cv2.GaussianBlur(base, (0, 0), s) if s else base) for s in range(5)]
    out = tifffile.memmap(path, shape=(size, size), dtype=np.uint8, bigtiff=True)
    for i in range(0, size, block):
        for j in range(0, size, block):
            v = variants[(i // block + 2 * (j // block)) % 5]
            out[i : i + block, j : j + block] = v[: size - i, : size - j]
    out.flush()
    del out


def peak_rss_gb() -> float:
    """This process's peak resident memory: VmHWM (Linux). Not ru_maxrss: a child started by
    fork + exec inherits its parent's peak there (the parent that wrote a 2 GB file)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 2**20  # kB -> GB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


# ---- the measurements, each in a child process --------------------------------------------------
def run_for(steps, seconds: float):
    """Drive a generator of (done, total) steps for at most ``seconds``: (done, total, its
    return value or None when stopped early, seconds taken)."""
    t0, done, total, value = time.perf_counter(), 0, 1, None
    try:
        while True:
            done, total = next(steps)
            if time.perf_counter() - t0 > seconds:
                steps.close()
                break
    except StopIteration as stop:
        value = stop.value
    return done, total, value, time.perf_counter() - t0


def child_stack(path: Path, seconds: float) -> dict:
    scorer = FocusScorer.default()
    x = open_lazy(path, (1, *HW))
    rss_loaded = peak_rss_gb()
    done, total, scores, dt = run_for(scorer.score_iter(x, MAG, batch_size=32), seconds)
    slices = done * len(x) // total
    return {"device": scorer.device_name, "slices": slices, "of": len(x), "seconds": dt,
            "images_per_s": slices / dt, "rss_gb": peak_rss_gb(), "rss_model_gb": rss_loaded,
            "score_range": None if scores is None else [float(scores.min()), float(scores.max())]}


def child_stack_check(path: Path, n: int) -> dict:
    """The first n slices in memory and lazily: same scores? throughput of each (best of 2)."""
    scorer = FocusScorer.default()
    n = int(n)
    x = open_lazy(path, (1, *HW))[:n]
    mem = np.asarray(x)
    scorer.score(mem[:2], MAG)  # warm-up
    times = {"numpy": [], "dask": []}
    for _ in range(2):
        for kind, data in (("numpy", mem), ("dask", x)):
            t0 = time.perf_counter()
            scores = scorer.score(data, MAG)
            times[kind].append(time.perf_counter() - t0)
            if kind == "numpy":
                ref = scores
            else:
                same = bool(np.array_equal(scores, ref))
    return {"n": n, "equal": same, "max_diff": float(np.max(np.abs(scores - ref))),
            "numpy_images_per_s": n / min(times["numpy"]), "dask_images_per_s": n / min(times["dask"])}


def child_mosaic(path: Path, seconds: float) -> dict:
    """Map the mosaic window by window (stopping after ``seconds`` on a busy machine)."""
    scorer = FocusScorer.default()
    x = open_lazy(path, (1000, 1300))
    rss_loaded = peak_rss_gb()
    done, total, _, dt = run_for(focus_map(scorer, x, MAG), seconds)
    return {"device": scorer.device_name, "tiles": done, "of": total, "seconds": dt,
            "tiles_per_s": done / dt, "rss_gb": peak_rss_gb(), "rss_model_gb": rss_loaded}


def crop_of(size: int) -> tuple[int, int, int]:
    """(y, x, side) of the crop mapped both ways: off the block and chunk grids."""
    return size // 4 + 3, size // 3 + 344, min(4096, size // 3)


def child_crop(path: Path) -> dict:
    scorer = FocusScorer.default()
    full = open_lazy(path, (1000, 1300))
    y, x0, n = crop_of(full.shape[0])
    lazy = full[y : y + n, x0 : x0 + n]
    in_memory = scorer.focus_map(np.asarray(lazy), MAG)
    chunked = scorer.focus_map(lazy, MAG)
    diff = np.abs(in_memory.scores - chunked.scores)
    return {"crop": [y, x0, n], "grid": list(in_memory.shape),
            "same_grid": in_memory.summary() == chunked.summary(),
            "max_diff": float(np.nanmax(diff)), "equal": bool(np.array_equal(
                in_memory.scores, chunked.scores, equal_nan=True))}


CHILDREN = {"stack": child_stack, "stack-check": child_stack_check, "mosaic": child_mosaic,
            "crop": child_crop}


def run_child(kind: str, *args) -> dict:
    """Run one measurement in a fresh process; its JSON result (peak RSS is its own)."""
    cmd = [sys.executable, __file__, "--child", kind, *map(str, args)]
    print("running", " ".join(cmd[2:]), file=sys.stderr, flush=True)
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    result = json.loads(out.strip().splitlines()[-1])
    print(json.dumps(result), file=sys.stderr, flush=True)
    return result


# ---- the report -----------------------------------------------------------------------------------
def report(results: dict, args) -> str:
    lines = ["# Lazy stacks and mosaics (dask)", "",
             "`benchmarks/bench_lazy.py` (command below). Each figure comes from its own process; "
             "peak RSS is that process's VmHWM (model, torch and data together). This "
             "machine: 2 CPU cores **shared with other jobs while it ran**, so the absolute "
             "speeds are low and noisy; the ratios and memory figures are what carries over.", "",
             f"    .venv/bin/python benchmarks/bench_lazy.py --parts {args.parts} --slices "
             f"{args.slices} --size {args.size} --stack-seconds {args.stack_seconds:g} "
             f"--mosaic-seconds {args.mosaic_seconds:g}", ""]
    if "stack" in results:
        s, c = results["stack"], results["stack-check"]
        same = "identical" if c["equal"] else f"max diff {c['max_diff']:.2g}"
        whole = s["slices"] == s["of"]
        lines += ["## A lazily loaded stack", "",
                  f"{s['of']:,} x {HW[0]} x {HW[1]} uint8 ({s['of'] * HW[0] * HW[1] / 1e9:.1f} GB "
                  "TIFF), opened as a dask array with one slice per chunk, scored with "
                  f"`FocusScorer.score` on {s['device']}.", "",
                  "| measure | value | target |", "|---|---|---|",
                  f"| slices scored | {s['slices']:,} of {s['of']:,}"
                  f"{'' if whole else ' (stopped at the time limit)'} | all |",
                  f"| peak RSS | {s['rss_gb']:.2f} GB (model loaded: {s['rss_model_gb']:.2f} GB) "
                  "| <= 1.5 GB |",
                  f"| peak RSS / size of the stack | {s['rss_gb'] / (s['of'] * HW[0] * HW[1] / 2**30):.2f} | |",
                  f"| images/s (1024 x 1024, 20 tiles each) | {s['images_per_s']:.2f} | |",
                  f"| first {c['n']} slices, lazy vs in memory | scores "
                  f"{same}; "
                  f"{c['dask_images_per_s'] / c['numpy_images_per_s']:.2f}x the in-memory "
                  f"throughput ({c['dask_images_per_s']:.2f} vs {c['numpy_images_per_s']:.2f} "
                  "images/s) | equal |", ""]
    if "mosaic" in results:
        m = results["mosaic"]
        whole = m["tiles"] == m["of"]
        lines += ["## A mosaic mapped through dask", "",
                  f"{args.size:,} x {args.size:,} uint8 ({args.size ** 2 / 1e9:.1f} GB TIFF), a dask "
                  "array in chunks of 1000 x 1300 px (not aligned with the 240 x 320 tiles), mapped "
                  f"with `FocusScorer.focus_map` (shared trunk, half-tile stride) on {m['device']}.", "",
                  "| measure | value | target |", "|---|---|---|",
                  f"| tiles mapped | {m['tiles']:,} of {m['of']:,}"
                  f"{'' if whole else ' (stopped at the time limit)'} in {m['seconds']:.0f} s "
                  f"({m['tiles_per_s']:.1f} tiles/s) | all |",
                  f"| peak RSS | {m['rss_gb']:.2f} GB (model loaded: {m['rss_model_gb']:.2f} GB) "
                  "| <= 2 GB |", ""]
    if "crop" in results:
        k = results["crop"]
        lines += ["| measure | value | target |", "|---|---|---|",
                  f"| crop {k['crop'][2]} x {k['crop'][2]} at ({k['crop'][0]}, {k['crop'][1]}): "
                  f"in memory vs through dask | same grid: {k['same_grid']}; largest score "
                  f"difference {k['max_diff']:.2g} ({'identical' if k['equal'] else 'not identical'}) "
                  "| <= 0.01 |", ""]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--parts", default="stack,mosaic")
    p.add_argument("--slices", type=int, default=2000)
    p.add_argument("--size", type=int, default=20000)
    p.add_argument("--check", type=int, default=32, help="slices compared in memory vs lazily")
    p.add_argument("--stack-seconds", type=float, default=float("inf"))
    p.add_argument("--mosaic-seconds", type=float, default=float("inf"))
    p.add_argument("--tmp", type=Path, default=Path("/tmp/semfocus-lazy"))
    p.add_argument("--output", type=Path)
    p.add_argument("--keep", action="store_true")
    p.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        kind, rest = args.child[0], args.child[1:]
        fn = CHILDREN[kind]
        result = fn(Path(rest[0]), *(float(v) for v in rest[1:]))
        print(json.dumps(result))
        return
    args.tmp.mkdir(parents=True, exist_ok=True)
    results = {}
    try:
        if "mosaic" in args.parts or "crop" in args.parts:
            path = args.tmp / "mosaic.tif"
            write_mosaic(path, args.size)
            if "crop" in args.parts:
                results["crop"] = run_child("crop", path)
            if "mosaic" in args.parts:
                results["mosaic"] = run_child("mosaic", path, args.mosaic_seconds)
        if "stack" in args.parts:
            path = args.tmp / "stack.tif"
            write_stack(path, args.slices)
            results["stack-check"] = run_child("stack-check", path, args.check)
            results["stack"] = run_child("stack", path, args.stack_seconds)
    finally:
        if not args.keep:
            shutil.rmtree(args.tmp, ignore_errors=True)
    text = report(results, args)
    print(text)
    if args.output:
        args.output.write_text(text + "\n")


if __name__ == "__main__":
    main()
