"""Live QC speed and memory (issue 22 item 5): the real ``semfocus watch`` against a simulated
acquisition of 2048 x 1536 uint16 TIFF frames.

The installed program runs in a child process (``semfocus watch DIR --output CSV
--magnification 3250``, file-system events or ``--poll``, no focus map, the default 0.25 s
settle time). This process is the microscope: it writes frame k at ``start + k / rate`` (the
file written in one piece, then closed) and notes the time of its last byte; a thread tails the
CSV and notes when each frame's row is there (both on this process's monotonic clock). The
latency of a frame is row time - last-byte time. The watch's resident memory (``VmRSS`` of
``/proc/PID/status``) is read when the row of frame 50 and of the last frame arrive; the backlog
(frames written without a row yet) is read before each write. Frames are the SEM sample resized
to 2048 x 1536, each shifted and with its own noise (no two alike). The targets: median latency
<= 1.0 s; at 2 frames/s for 500 frames the backlog does not grow and the memory grows by <= 50 MB
from frame 50 to frame 500.

    python benchmarks/bench_watch.py [--frames 500] [--rate 2] [--poll S] [--shape H W]
        [--label NAME]
        [--output docs/benchmarks/live-qc.md]   # appends one row per run to the table there
"""

from __future__ import annotations

import argparse
import csv
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from io import BytesIO
from pathlib import Path

import cv2
import numpy as np
import tifffile

SEMFOCUS = Path(sys.executable).with_name("semfocus")
SAMPLE = Path(__file__).resolve().parents[1] / "sample_data" / "sem_image.tif"
SHAPE = (1536, 2048)
MAGNIFICATION = 3250
MEMORY_AT = 50  # memory growth is measured from this frame's row to the last one's
TARGET_LATENCY_S, TARGET_GROWTH_MB = 1.0, 50.0


def frames(shape=SHAPE, n_distinct: int = 8) -> list[bytes]:
    """``n_distinct`` TIFF files (bytes) of uint16 frames of ``shape`` (height, width)."""
    base = cv2.resize(tifffile.imread(SAMPLE).astype(np.float32), shape[::-1],
                      interpolation=cv2.INTER_CUBIC)
    rng = np.random.default_rng(0)
    out = []
    for k in range(n_distinct):
        shifted = np.roll(base, (7 * k, 11 * k), axis=(0, 1))
        noisy = shifted * 257 + rng.normal(0, 300, shape)
        buf = BytesIO()
        tifffile.imwrite(buf, np.clip(noisy, 0, 65535).astype(np.uint16))
        out.append(buf.getvalue())
    return out


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


class TableTail(threading.Thread):
    """Reads the watch's CSV as it grows: the time each frame's row appeared, the watch's
    memory when rows number ``MEMORY_AT`` and ``last``, and its CPU time at the first and the
    last row."""

    def __init__(self, path: Path, pid: int, last: int):
        super().__init__(daemon=True)
        self.path, self.pid, self.last = path, pid, last
        self.seen: dict[str, float] = {}
        self.errors: list[str] = []
        self.memory: dict[int, float] = {}
        self.cpu: dict[int, float] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        buf = ""
        while not self.path.exists() and not self.stop.is_set():
            time.sleep(0.005)
        with open(self.path, encoding="utf-8") as fh:
            while not self.stop.is_set():
                chunk = fh.read()
                now = time.monotonic()
                buf += chunk
                *lines, buf = buf.split("\n")
                for line in lines:
                    cells = next(csv.reader([line]))
                    if cells[0] == "path":
                        continue
                    self.seen.setdefault(Path(cells[0]).name, now)
                    if cells[-1]:
                        self.errors.append(line)
                    k = len(self.seen)
                    if k in (MEMORY_AT, self.last) and k not in self.memory:
                        self.memory[k] = rss_mb(self.pid)
                    if k in (1, self.last) and k not in self.cpu:
                        self.cpu[k] = cpu_s(self.pid)
                if not chunk:
                    time.sleep(0.005)


def run(n: int, rate: float, poll: float | None, shape=SHAPE) -> dict:
    data = frames(shape)
    with tempfile.TemporaryDirectory() as tmp:
        acq, table, log = Path(tmp) / "acq", Path(tmp) / "scores.csv", Path(tmp) / "watch.log"
        acq.mkdir()
        args = [str(SEMFOCUS), "watch", str(acq), "--output", str(table), "--magnification",
                str(MAGNIFICATION), "--device", "cpu"] + (["--poll", str(poll)] if poll else [])
        with open(log, "w") as err:
            proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=err)
        while "watching" not in log.read_text():
            if proc.poll() is not None:
                raise RuntimeError(log.read_text())
            time.sleep(0.05)
        rss_idle = rss_mb(proc.pid)
        tail = TableTail(table, proc.pid, n)
        tail.start()
        written: dict[str, float] = {}
        backlog: list[int] = []
        start = time.monotonic() + 0.5
        for k in range(n):
            time.sleep(max(0.0, start + k / rate - time.monotonic()))
            backlog.append(len(written) - len(tail.seen))
            name = f"frame_{k:04d}.tif"
            with open(acq / name, "wb") as fh:
                fh.write(data[k % len(data)])
            written[name] = time.monotonic()
        deadline = time.monotonic() + 120
        while len(tail.seen) < n and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        end_backlog = len(written) - len(tail.seen)
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=60)
        tail.stop.set()
        tail.join()
    lat = [tail.seen[name] - t for name, t in written.items() if name in tail.seen]
    return {
        "frames": n, "rate": rate, "shape": shape, "mode": f"poll {poll:g} s" if poll else "events",
        "rows": len(tail.seen), "errors": len(tail.errors), "exit": code,
        "median": statistics.median(lat), "p90": float(np.percentile(lat, 90)), "max": max(lat),
        "first50": statistics.median(lat[:50]), "last50": statistics.median(lat[-50:]),
        "max_backlog": max(backlog), "end_backlog": end_backlog, "rss_idle": rss_idle,
        "rss_at": tail.memory.get(MEMORY_AT), "rss_end": tail.memory.get(n),
        "cpu_per_frame": (tail.cpu[n] - tail.cpu[1]) / (n - 1) if len(tail.cpu) == 2 else None,
    }


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


def row(r: dict, label: str) -> str:
    growth = (None if r["rss_at"] is None or r["rss_end"] is None
              else r["rss_end"] - r["rss_at"])
    cpu = "-" if r["cpu_per_frame"] is None else f"{r['cpu_per_frame']:.2f}"
    mem = "-" if growth is None else f"{r['rss_at']:.0f} -> {r['rss_end']:.0f} ({growth:+.1f})"
    size = f"{r['shape'][1]} x {r['shape'][0]}"
    return (f"| {label} | {r['mode']} | {size} | {r['frames']} @ {r['rate']:g}/s | {r['rows']} "
            f"({r['errors']} errors) | {r['median']:.2f} | {r['p90']:.2f} | {r['max']:.2f} | "
            f"{r['first50']:.2f} / {r['last50']:.2f} | {r['max_backlog']} / {r['end_backlog']} | "
            f"{mem} | {cpu} |")


HEADER = (
    "| run | mode | frame | frames | rows | median latency (s) | p90 (s) | max (s) | median first / "
    "last 50 (s) | backlog max / end | RSS frame 50 -> last (MB, growth) | watch CPU s / frame |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=500)
    p.add_argument("--rate", type=float, default=2.0, help="frames per second")
    p.add_argument("--poll", type=float, help="run the watch with --poll SECONDS")
    p.add_argument("--shape", type=int, nargs=2, default=SHAPE, metavar=("HEIGHT", "WIDTH"),
                   help="frame size in pixels (default 1536 2048)")
    p.add_argument("--label", default="", help="name of the run in the table")
    p.add_argument("--output", help="markdown file: the table's row is appended")
    a = p.parse_args()
    load = os.getloadavg()[0]
    r = run(a.frames, a.rate, a.poll, tuple(a.shape))
    threads = os.environ.get("OMP_NUM_THREADS", "unset")
    label = a.label or (f"{cpu_name()}, {os.cpu_count()} cores, OMP_NUM_THREADS={threads}, "
                        f"load {load:.1f}")
    line = row(r, label)
    print(HEADER)
    print(line)
    print(f"exit code of the watch after Ctrl-C: {r['exit']}; idle RSS {r['rss_idle']:.0f} MB")
    if a.output:
        with open(a.output, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")


if __name__ == "__main__":
    main()
