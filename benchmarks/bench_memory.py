"""Peak memory of ``semfocus map --png`` on a very large frame (issue 16 item 5).

Writes an N x N uint8 TIFF (a real-looking random texture, magnification in its metadata) into a
temporary folder, runs the real ``semfocus map`` command on it in a child process (TIFF grid, CSV
and overlay PNG) and reads the child's peak resident set size from ``os.wait4`` (the kernel's
``ru_maxrss`` of that one process). Each size is run with the model (the shipped model, or
``--checkpoint``) and/or a classical measure. The target: <= 3 GB at 20,000 x 20,000.

``--baseline-src DIR`` also runs the sizes up to ``--baseline-max-size`` with the package in DIR
(``src/`` of an earlier commit, e.g. ``git archive COMMIT src | tar -x -C DIR/..``, put first on
PYTHONPATH): a before / after ratio on the same machine. The code before issue 16 needed about
56 bytes per pixel (22.4 GB at 20,000 x 20,000), so its sizes are kept small.

    python benchmarks/bench_memory.py [--size 20000 ...] [--method model|tenengrad ...]
        [--checkpoint FILE] [--baseline-src DIR [--baseline-max-size 8000]]
        [--output docs/benchmarks/memory.md]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import tifffile

TARGET_GB = 3.0
SEMFOCUS = Path(sys.executable).with_name("semfocus")


def write_frame(path: Path, n: int) -> None:
    """An n x n uint8 TIFF of smooth structure plus noise, written band by band."""
    rng = np.random.default_rng(0)
    band = 2048
    small = rng.standard_normal((band // 8 + 1, n // 8 + 1)).astype(np.float32)
    texture = cv2.resize(small, (n, band), interpolation=cv2.INTER_CUBIC)

    def bands():
        for y in range(0, n, band):
            rows = min(band, n - y)
            noisy = texture[:rows] + 0.3 * rng.standard_normal((rows, n)).astype(np.float32)
            yield np.clip(128 + 40 * noisy, 0, 255).astype(np.uint8)

    tifffile.imwrite(path, bands(), shape=(n, n), dtype=np.uint8,
                     metadata={"magnification": 5000.0})


def peak_of(argv: list[str], src: str | None = None) -> tuple[float, float, int, str]:
    """(peak RSS in GB, wall seconds, exit code, last stderr line) of one child process, run
    with the package in ``src`` when given."""
    env = dict(os.environ, PYTHONPATH=src) if src else None
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=env)
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    last = err.strip().splitlines()[-1] if err.strip() else ""
    return usage.ru_maxrss / 1e6, time.perf_counter() - t0, proc.returncode, last


def main(argv=None) -> str:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--size", type=int, nargs="+", default=[20000])
    p.add_argument("--method", nargs="+", default=["model", "tenengrad"],
                   help="'model' and/or a classical measure name")
    p.add_argument("--checkpoint", help="model file (default: the shipped model)")
    p.add_argument("--baseline-src", help="src/ folder of the code to compare with")
    p.add_argument("--baseline-max-size", type=int, default=8000)
    p.add_argument("--output")
    args = p.parse_args(argv)
    codes = [("now", None)] + ([("before", args.baseline_src)] if args.baseline_src else [])
    rows = []
    with tempfile.TemporaryDirectory(prefix="semfocus-bench-memory-") as tmp:
        for n in args.size:
            image = Path(tmp) / f"frame-{n}.tif"
            write_frame(image, n)
            for method in args.method:
                cmd = [str(SEMFOCUS), "map", str(image), "--device", "cpu",
                       "-o", f"{tmp}/map.tif", "--csv", f"{tmp}/map.csv", "--png", f"{tmp}/map.png"]
                if method != "model":
                    cmd += ["--measure", method]
                elif args.checkpoint:
                    cmd += ["--checkpoint", args.checkpoint]
                for code, src in codes:
                    if src and n > args.baseline_max_size:
                        continue
                    gb, secs, status, last = peak_of(cmd, src)
                    rows.append((n, method, code, gb, secs, status))
                    print(f"{n} x {n} {method} ({code}): peak RSS {gb:.2f} GB, {secs:.0f} s, "
                          f"exit {status}: {last}", flush=True)
            image.unlink()
    lines = [
        "`semfocus map FRAME --png P --csv C -o T --device cpu` on generated uint8 frames "
        "(magnification 5,000x in the TIFF); peak resident memory of the child process "
        f"(`ru_maxrss`), target <= {TARGET_GB:g} GB.",
        "",
        "| frame | method | code | peak RSS (GB) | / target | bytes per pixel | wall (s) | exit |",
        "|---|---|---|---|---|---|---|---|",
    ]
    lines += [f"| {n} x {n} ({n * n / 1e6:.0f} MP) | {m} | {c} | {gb:.2f} | {gb / TARGET_GB:.2f} "
              f"| {gb * 1e9 / (n * n):.1f} | {s:.0f} | {e} |" for n, m, c, gb, s, e in rows]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    return text


if __name__ == "__main__":
    main()
