"""Gate calibration against scoring the same frames (issue 27, item 7: "calibration on 20 frames
of 1024 x 688 took 67 s; scoring them takes a few").

Calibration is scoring plus a threshold search, so its time should be the scoring time plus a
little. In one process, with the model loaded once before the clock starts, this alternates
``jobs.gate.calibrate_gate`` and ``jobs.score.score_images`` on the same labelled frames (20
crops of 1024 x 688 from the test suite's real pool frames, blurred to labels 10 .. 4) and
reports the median of each and their ratio (a ratio, so a busy machine shifts both alike).

    python benchmarks/bench_gate_calibration.py [--repeats 3] [--output docs/benchmarks/gate.md]
"""

from __future__ import annotations

import argparse
import csv
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from napari_semfocus.io.images import read_image
from napari_semfocus.jobs.gate import CalibrateSettings, calibrate_gate
from napari_semfocus.jobs.inputs import FileInput
from napari_semfocus.jobs.score import MODEL_METHOD, ScoreSettings, load_scorer, score_images
from napari_semfocus.progress import run_to_end
from napari_semfocus.scale import label_for_added_blur
from napari_semfocus.scoring.devices import cpu_model_name

REPO = Path(__file__).resolve().parents[1]
POOL = REPO / "tests" / "data" / "sem-pool"
SOURCES = ("fibresem/test.tif", "lungcells_lacunarity/DC_v2__CS_DCs_2500x_A.tif",
           "sem2surface/P33_scale1_detectorA.tif", "soil_sem/soil_1_after_nacetyl.tif")
SIGMAS = (0.0, 1.0, 2.0, 4.0, 8.0)
HW = (688, 1024)


def make_frames(root: Path) -> Path:
    """20 PNGs of 1024 x 688 and their manifest (path, magnification, label, series)."""
    rows = []
    for k, rel in enumerate(SOURCES):
        img = read_image(POOL / rel)
        data = np.asarray(img.data, np.float32)
        data = data[: data.shape[0] - img.databar_rows]
        if data.shape[0] < HW[0] or data.shape[1] < HW[1]:
            f = max(HW[0] / data.shape[0], HW[1] / data.shape[1])
            data = cv2.resize(data, None, fx=f, fy=f, interpolation=cv2.INTER_CUBIC)
        data = data[: HW[0], : HW[1]]
        lo, hi = np.percentile(data, [0.5, 99.5])
        data = np.clip((data - lo) / max(hi - lo, 1e-6) * 255, 0, 255)
        for sigma in SIGMAS:
            frame = data if sigma == 0 else cv2.GaussianBlur(data, (0, 0), sigma)
            name = f"f{k}_{sigma:g}.png"
            cv2.imwrite(str(root / name), frame.astype(np.uint8))
            rows.append((name, 5000, f"{label_for_added_blur(sigma):.2f}", f"s{k}"))
    manifest = root / "manifest.csv"
    with open(manifest, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(("path", "magnification", "label", "series"))
        w.writerows(rows)
    return manifest


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--output", type=Path, default=None)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        manifest = make_frames(root)
        with open(manifest, newline="") as fh:
            files = tuple(FileInput(r["path"], root / r["path"], float(r["magnification"]))
                          for r in csv.DictReader(fh))
        t0 = time.perf_counter()
        load_scorer(None, "auto", "auto")  # the model loaded (cached) before either clock
        load_s = time.perf_counter() - t0
        cal_s, score_s = [], []
        for _ in range(args.repeats):
            t = time.perf_counter()
            result = run_to_end(calibrate_gate(CalibrateSettings(manifest=str(manifest))))
            cal_s.append(time.perf_counter() - t)
            t = time.perf_counter()
            run_to_end(score_images(ScoreSettings(files, MODEL_METHOD)))
            score_s.append(time.perf_counter() - t)
    cal, score = statistics.median(cal_s), statistics.median(score_s)
    lines = [
        "# Gate calibration against scoring the same frames",
        "",
        f"`python benchmarks/bench_gate_calibration.py --repeats {args.repeats}` on {cpu_model_name()} "
        "(2 cores). 20 frames of 1024 x 688 (4 real pool frames x 5 blurs), the shipped model "
        f"in the automatic precision, loaded once before timing ({load_s:.1f} s).",
        "",
        "| step | median (s) | runs (s) |",
        "|---|---|---|",
        f"| `calibrate_gate` (score + threshold) | {cal:.2f} | "
        f"{', '.join(f'{v:.2f}' for v in cal_s)} |",
        f"| `score_images` | {score:.2f} | {', '.join(f'{v:.2f}' for v in score_s)} |",
        "",
        f"Calibration / scoring: **{cal / score:.2f}x** (threshold {result.gate.threshold:.3f}).",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.output:
        args.output.write_text(text)


if __name__ == "__main__":
    main()
