"""Scale-out cost: ``semfocus score`` over many small files in one process against a 2-worker
dask LocalCluster (``--workers 2``), both run as the command a user types, in one run.

N files (default 2,000) of 480 x 640 uint8 (a blurred random texture, a different one per file)
are written to a temporary folder and listed in a manifest with their magnification. Each
configuration runs twice: on all N files and on a few (``--small``) files; the difference gives
the steady throughput (files/s); the small run shows the fixed cost (Python, torch, the model,
the cluster's start). On a machine with C cores, one process runs torch on C threads and each of W
workers on C / W threads. ``--control`` adds one process on one torch thread, which tells
whether a difference comes from dask or from torch's threads; ``--side-by-side`` two 1-thread
processes at once on either half of the files, without dask (the most the cores give: here 2x
one 1-thread process, while torch's second thread gives ~1.3x); ``--dask-malloc-trim`` the
cluster with dask's ``MALLOC_TRIM_THRESHOLD_`` in its workers, as it ran before. The CSVs of
all runs are compared (the same table is expected).

    python benchmarks/bench_scaleout.py [--files 2000] [--small 40] [--workers 2]
        [--files-per-task N] [--control] [--side-by-side] [--dask-malloc-trim]
        [--output docs/benchmarks/scaleout.md]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import tifffile

SHAPE = (480, 640)


def make_files(folder: Path, n: int) -> Path:
    """``n`` TIFFs and ``manifest.csv`` (path,magnification) in ``folder``."""
    rng = np.random.default_rng(0)
    lines = ["path,magnification"]
    for k in range(n):
        small = rng.standard_normal((SHAPE[0] // 6, SHAPE[1] // 6)).astype(np.float32)
        frame = cv2.resize(small, SHAPE[::-1], interpolation=cv2.INTER_CUBIC)
        frame = cv2.GaussianBlur(frame, (0, 0), float(rng.uniform(0.3, 4.0)))
        frame = np.clip(128 + 40 * frame + 8 * rng.standard_normal(SHAPE), 0, 255)
        name = f"frame{k:05d}.tif"
        tifffile.imwrite(folder / name, frame.astype(np.uint8))
        lines.append(f"{name},5000")
    manifest = folder / "manifest.csv"
    manifest.write_text("\n".join(lines) + "\n")
    return manifest


def run_score(manifest: Path, output: Path, extra: list[str], log: Path, env: dict,
              side_by_side: bool = False) -> float:
    """Wall seconds of ``semfocus score --manifest MANIFEST --output OUTPUT EXTRA`` with ``env``
    added to the environment; ``side_by_side``: two such commands at once, on either half of
    the manifest, their tables joined into ``output``."""
    env = dict(os.environ, **env)
    lines = manifest.read_text().splitlines(True)
    halves = [manifest] if not side_by_side else []
    if side_by_side:
        middle = 1 + (len(lines) - 1) // 2
        for k, rows in enumerate((lines[1:middle], lines[middle:])):
            halves.append(manifest.with_name(f"{manifest.stem}-half{k}.csv"))
            halves[-1].write_text(lines[0] + "".join(rows))
    outputs = [output] if not side_by_side else [output.with_suffix(f".{k}.csv") for k in (0, 1)]
    t0 = time.perf_counter()
    with open(log, "w") as err:
        procs = [subprocess.Popen([sys.executable, "-m", "napari_semfocus.cli", "score",
                                   "--manifest", str(m), "--output", str(o), *extra],
                                  stdout=subprocess.DEVNULL, stderr=err, env=env)
                 for m, o in zip(halves, outputs, strict=True)]
        codes = [proc.wait() for proc in procs]
    seconds = time.perf_counter() - t0
    if any(codes):
        raise SystemExit(f"semfocus score failed ({codes}); see {log}")
    if side_by_side:
        tables = [o.read_text().splitlines(True) for o in outputs]
        output.write_text("".join(tables[0] + tables[1][1:]))
    return seconds


def main(argv=None) -> str:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--files", type=int, default=2000)
    p.add_argument("--small", type=int, default=40)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--files-per-task", type=int, help="default: the command's automatic choice")
    p.add_argument("--control", action="store_true",
                   help="also one process on one torch thread (is a gain the threads' doing?)")
    p.add_argument("--side-by-side", action="store_true",
                   help="also two 1-thread processes at once on either half of the files, no "
                        "dask (how far do the cores scale?)")
    p.add_argument("--dask-malloc-trim", action="store_true",
                   help="also the cluster with dask's MALLOC_TRIM_THRESHOLD_=65536 in its "
                        "workers (as before the cluster started them without it)")
    p.add_argument("--output")
    args = p.parse_args(argv)
    cores = os.cpu_count() or 1
    cluster = (["--workers", str(args.workers)]
               + (["--files-per-task", str(args.files_per_task)] if args.files_per_task else []))
    one = {"OMP_NUM_THREADS": "1"}
    configs = [(f"one process ({cores} torch threads)", [], {}, False),
               (f"LocalCluster, {args.workers} workers ({max(1, cores // args.workers)} torch "
                "threads each)", cluster, {}, False)]
    if args.control:
        configs.append(("one process (1 torch thread)", [], one, False))
    if args.side_by_side:
        configs.append(("two 1-thread processes side by side, half the files each (no dask)",
                        [], one, True))
    if args.dask_malloc_trim:
        configs.append(("LocalCluster as before: workers with MALLOC_TRIM_THRESHOLD_=65536",
                        cluster, {"MALLOC_TRIM_THRESHOLD_": "65536"}, False))
    with tempfile.TemporaryDirectory(prefix="semfocus-scaleout-") as tmp:
        tmp = Path(tmp)
        (tmp / "all").mkdir()
        manifest = make_files(tmp / "all", args.files)
        small = tmp / "all" / "small.csv"
        small.write_text("".join(manifest.read_text().splitlines(True)[: args.small + 1]))
        times, tables = [], []
        load_before = os.getloadavg()[0]
        for k, (name, extra, env, pair) in enumerate(configs):
            t_small = run_score(small, tmp / f"{k}-small.csv", extra, tmp / f"{k}-small.log",
                                env, pair)
            t_all = run_score(manifest, tmp / f"{k}.csv", extra, tmp / f"{k}.log", env, pair)
            times.append((t_small, t_all, (args.files - args.small) / (t_all - t_small)))
            tables.append((tmp / f"{k}.csv").read_text())
            print(name, times[-1], flush=True)
        same = len(set(tables)) == 1
        load = (load_before, os.getloadavg()[0])
        device = next(ln for ln in (tmp / "0.log").read_text().splitlines()
                      if " on " in ln).split(" on ", 1)[1]
        per = re.search(r"tasks of up to (\d+) files", (tmp / "1.log").read_text())
        per = f"{per[1] if per else '?'} files per dask task (" + (
            "--files-per-task" if args.files_per_task else "automatic") + ")"
    one_all, one_rate = times[0][1], times[0][2]
    cl_all, cl_rate = times[1][1], times[1][2]
    lines = [
        f"{args.files} files of {SHAPE[0]} x {SHAPE[1]} uint8, `semfocus score --manifest` "
        f"(default model, auto precision: {device} in one process), {cores} cores "
        f"shared with other work while measured (load average {load[0]:.1f} before, {load[1]:.1f} "
        f"after); {per}.",
        "",
        f"| run | {args.small} files, s | {args.files} files, s | steady files/s | "
        f"{args.files} files / one process |",
        "|---|---|---|---|---|",
        *(f"| {name} | {t_small:.1f} | {t_all:.1f} | {rate:.2f} | {t_all / one_all:.2f} |"
          for (name, *_), (t_small, t_all, rate) in zip(configs, times, strict=True)),
        "",
        f"Overhead of the cluster on {args.files} files: {100 * (cl_all / one_all - 1):+.1f} % "
        f"wall time (target <= +10 %: {'met' if cl_all <= 1.10 * one_all else 'NOT met'}); "
        f"steady throughput {cl_rate / one_rate:.2f}x one process. "
        f"CSVs of all runs identical: {'yes' if same else 'NO'}.",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    return text


if __name__ == "__main__":
    main()
