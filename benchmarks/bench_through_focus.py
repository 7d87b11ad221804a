"""Through-focus assistant on synthetic series from pool frames (issue 23).

Each series: one pool frame (area-downscaled by 2, so sharp: sigma 0.5 px; a 240 x 320 crop, or
a *sparse* frame: the crop inside a few blobs covering ~25 % of the frame, flat substrate
elsewhere), 7-21 slices at uneven steps (each 0.7-1.3 of the nominal step), best focus z0
uniform between slices (at least two slices on either side), blur sigma(z) =
sqrt(s0^2 + (k (z - z0))^2) with s0 in [0.5, 1] px and k in [0.6, 2.0] px per step, a Gaussian
or a uniform-disk PSF (radius 2 sigma), fresh Poisson + Gaussian detector noise per slice at a
random dose. *Astigmatic* series: two line foci at z0 -+ d, the long axis before focus at a
random orientation, d such that the long/short blur ratio three steps from z0 is 1.5-2.5
(d = 3 (r - 1) / (r + 1) steps). Every slice is scored by the shipped model (magnification
5,000x) and the curve fitted by :func:`napari_semfocus.scoring.focus_curve.curve_from_scores`.

    nice -n 10 python benchmarks/bench_through_focus.py [--round 200] [--astigmatic 100]
        [--bootstrap 60] [--output docs/benchmarks/through-focus.md] [--json rows.json]
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import time
from pathlib import Path

import cv2
import numpy as np

from napari_semfocus.io.focus_positions import FocusPositions
from napari_semfocus.io.images import read_frames
from napari_semfocus.scoring.astigmatism import LIKELY_STRENGTH, MIN_TURN_DEG
from napari_semfocus.scoring.focus_curve import curve_from_scores
from napari_semfocus.scoring.scorer import FocusScorer

REPO = Path(__file__).resolve().parents[1]
POOL = REPO.parent / "shared" / "data" / "sem-pool"
H, W, MAG = 240, 320, 5000.0


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def pool_frames(pool: Path, rng) -> list[np.ndarray]:
    """Sharp 480 x 640 (or smaller) grey frames: every pool file, downscaled by 2."""
    rows = list(csv.DictReader(open(pool / "manifest.csv")))
    out = []
    for r in rows:
        try:
            f = read_frames(pool / r["path"])[0]
        except Exception:
            continue
        h, w = f.shape[0] // 2, f.shape[1] // 2
        if h < H or w < W:
            continue
        small = cv2.resize(f[: 2 * h, : 2 * w], (w, h), interpolation=cv2.INTER_AREA)
        lo, hi = np.percentile(small, [0.5, 99.5])
        if hi - lo < 1e-6:
            continue
        out.append(np.clip((small - lo) / (hi - lo), 0, 1).astype(np.float32))
    return out


def crop(frame, rng, sparse: bool) -> np.ndarray:
    y = rng.integers(0, frame.shape[0] - H + 1)
    x = rng.integers(0, frame.shape[1] - W + 1)
    c = frame[y : y + H, x : x + W].copy()
    if not sparse:
        return c
    mask = np.zeros((H, W), np.float32)
    for _ in range(rng.integers(2, 5)):
        cy, cx, r = rng.integers(0, H), rng.integers(0, W), rng.integers(30, 70)
        cv2.circle(mask, (int(cx), int(cy)), int(r), 1.0, -1)
    mask = cv2.GaussianBlur(mask, (0, 0), 1.0)
    return (float(np.median(c)) * (1 - mask) + c * mask).astype(np.float32)


def psf(sa: float, sb: float, theta_deg: float, kind: str) -> np.ndarray:
    """Elliptical PSF: std ``sb`` along ``theta_deg`` (from +column toward +row), ``sa`` across."""
    r = int(np.ceil(4.5 * max(sa, sb, 0.6))) + 1
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1].astype(np.float64)
    t = np.radians(theta_deg)
    u = xx * np.cos(t) + yy * np.sin(t)  # along theta
    v = -xx * np.sin(t) + yy * np.cos(t)
    if kind == "gauss":
        k = np.exp(-0.5 * ((u / max(sb, 0.3)) ** 2 + (v / max(sa, 0.3)) ** 2))
    else:
        # supersampled uniform ellipse of semi-axes 2 sigma (a disk of radius r: sigma = r/2)
        s = 4
        yy2, xx2 = np.mgrid[-r : r + 1 : 1 / s, -r : r + 1 : 1 / s][:, : (2 * r + 1) * s,
                                                                       : (2 * r + 1) * s]
        u2 = xx2 * np.cos(t) + yy2 * np.sin(t)
        v2 = -xx2 * np.sin(t) + yy2 * np.cos(t)
        inside = (u2 / (2 * max(sb, 0.3))) ** 2 + (v2 / (2 * max(sa, 0.3))) ** 2 <= 1
        k = inside.reshape(2 * r + 1, s, 2 * r + 1, s).mean(axis=(1, 3))
    return (k / k.sum()).astype(np.float32)


def make_series(frames, rng, astigmatic: bool):
    n = int(rng.integers(7, 22))
    z = np.concatenate([[0.0], np.cumsum(rng.uniform(0.7, 1.3, n - 1))])
    z0 = float(rng.uniform(z[2], z[n - 3]))
    s0, k = float(rng.uniform(0.5, 1.0)), float(rng.uniform(0.6, 2.0))
    kind = "gauss" if rng.random() < 0.5 else "disk"
    sparse = rng.random() < 0.3
    theta = float(rng.uniform(0, 180))
    ratio = float(rng.uniform(1.5, 2.5)) if astigmatic else 1.0
    d = 3 * (ratio - 1) / (ratio + 1)
    base = crop(frames[int(rng.integers(len(frames)))], rng, sparse)
    dose = float(np.exp(rng.uniform(np.log(20), np.log(300))))
    stack = []
    for zi in z:
        # the axis across theta focuses first (at z0 - d): before focus the long axis is theta
        s_across = float(np.hypot(s0, k * (zi - (z0 - d))))
        s_along = float(np.hypot(s0, k * (zi - (z0 + d))))
        added = [np.sqrt(max(s**2 - 0.25, 0.0)) for s in (s_across, s_along)]
        img = cv2.filter2D(base, -1, psf(added[0], added[1], theta, kind),
                           borderType=cv2.BORDER_REFLECT)
        noisy = rng.poisson(np.clip(img, 0, 1) * dose) / dose + rng.normal(0, 0.01, img.shape)
        stack.append(np.clip(noisy * 255, 0, 255).astype(np.uint8))
    truth = {"n": n, "z0": z0, "step": float(np.mean(np.diff(z))), "kind": kind,
             "sparse": sparse, "astigmatic": astigmatic, "theta": theta, "ratio": ratio}
    return np.stack(stack), z, truth


def angle_error(a: float, b: float) -> float:
    d = abs(a - b) % 180.0
    return min(d, 180.0 - d)


def run(scorer, frames, rng, n_series: int, astigmatic: bool, n_boot: int) -> list[dict]:
    out = []
    for i in range(n_series):
        stack, z, truth = make_series(frames, rng, astigmatic)
        t0 = time.perf_counter()
        scores = scorer.score(stack, MAG)
        t1 = time.perf_counter()
        pos = FocusPositions(tuple(z), "um", "benchmark")
        row = dict(truth)
        try:
            curve = curve_from_scores(stack, scores, pos, "series")
        except Exception as exc:  # a refusal counts as a miss
            row.update(refused=str(exc))
            out.append(row)
            continue
        t2 = time.perf_counter()
        ast = curve.astigmatism
        row.update(refused="", err_steps=abs(curve.best_z - truth["z0"]) / truth["step"],
                   covered=curve.best_z_low <= truth["z0"] <= curve.best_z_high,
                   width_steps=(curve.best_z_high - curve.best_z_low) / truth["step"],
                   likely=bool(ast.get("likely")), orientation=ast.get("orientation_deg"),
                   strength=ast.get("strength"), turn=ast.get("turn_deg"), score_s=t1 - t0, fit_s=t2 - t1)
        if i < n_boot:
            b = curve_from_scores(None, scores, pos, "series", interval="bootstrap")
            row["boot_covered"] = b.best_z_low <= truth["z0"] <= b.best_z_high
        if astigmatic and row["orientation"] is not None:
            row["orientation_err"] = angle_error(row["orientation"], truth["theta"])
        out.append(row)
        print(f"{'astig' if astigmatic else 'round'}: err "
              f"{row['err_steps']:.3f} step, covered {row['covered']}, likely {row['likely']}"
              f" {row.get('orientation_err', '')}", flush=True)
    return out


def summary(rows: list[dict]) -> dict:
    fitted = [r for r in rows if not r["refused"]]
    err = np.array([r["err_steps"] for r in fitted])
    boot = [r["boot_covered"] for r in fitted if "boot_covered" in r]
    orient = [r["orientation_err"] for r in fitted if r.get("likely") and "orientation_err" in r]
    return {"series": len(rows), "refused": len(rows) - len(fitted),
            "median_err_steps": float(np.median(err)) if err.size else float("nan"),
            "p90_err_steps": float(np.quantile(err, 0.9)) if err.size else float("nan"),
            "coverage_profile": float(np.mean([r["covered"] for r in fitted])),
            "coverage_bootstrap": float(np.mean(boot)) if boot else float("nan"),
            "n_bootstrap": len(boot),
            "median_width_steps": float(np.median([r["width_steps"] for r in fitted])),
            "astigmatism_claimed": float(np.mean([r["likely"] for r in fitted])),
            "median_orientation_err": float(np.median(orient)) if orient else float("nan"),
            "fit_s": float(np.median([r["fit_s"] for r in fitted])),
            "score_s": float(np.median([r["score_s"] for r in fitted]))}


def by(rows, key, value):
    return [r for r in rows if r[key] == value]


def report(round_rows, astig_rows, seconds: float) -> str:
    lines = [
        "# Through-focus benchmark (issue 23)", "",
        "`nice -n 10 python benchmarks/bench_through_focus.py` — synthetic series from pool "
        "frames (see the script's docstring), scored by the shipped model on the CPU "
        f"({cpu_name()}, 2 cores shared with other work), {seconds / 60:.1f} min in all.", "",
        "| series | n | refused | median abs z0 error (steps) | 90th pct (steps) | "
        "90 % interval covers (profile) | (bootstrap, n) | median interval width (steps) | "
        "astigmatism claimed | median orientation error (deg) |",
        "|---|---|---|---|---|---|---|---|---|---|"]
    groups = [("round, all", round_rows), ("round, Gaussian PSF", by(round_rows, "kind", "gauss")),
              ("round, disk PSF", by(round_rows, "kind", "disk")),
              ("round, sparse frames", by(round_rows, "sparse", True)),
              ("astigmatic, all", astig_rows)]
    for name, rows in groups:
        if not rows:
            continue
        s = summary(rows)
        lines.append(
            f"| {name} | {s['series']} | {s['refused']} | {s['median_err_steps']:.3f} | "
            f"{s['p90_err_steps']:.3f} | {s['coverage_profile']:.1%} | "
            f"{s['coverage_bootstrap']:.1%} ({s['n_bootstrap']}) | "
            f"{s['median_width_steps']:.2f} | {s['astigmatism_claimed']:.1%} | "
            f"{s['median_orientation_err']:.1f} |")
    lines += ["", "Astigmatism claimed at other thresholds of the strength (shipped: "
              f"{LIKELY_STRENGTH}), with the long axis turning by >= {MIN_TURN_DEG:g} deg "
              "(shipped) and by the strength alone:", "",
              "| threshold | round series claimed | astigmatic found | round, strength alone | "
              "astigmatic, strength alone |", "|---|---|---|---|---|"]

    def claimed(r, t, turn):
        return (r.get("strength") or 0) >= t and (r.get("turn") or 0) >= turn

    for t in (0.1, 0.15, 0.2, 0.25, 0.3, 0.4):
        rate = [np.mean([claimed(r, t, turn) for r in rows if not r["refused"]])
                if rows else float("nan")
                for turn in (MIN_TURN_DEG, 0.0) for rows in (round_rows, astig_rows)]
        lines.append(f"| {t:g} | {rate[0]:.1%} | {rate[1]:.1%} | {rate[2]:.1%} | {rate[3]:.1%} |")
    s = summary(round_rows)
    lines += ["", f"Median time per series on that CPU: scoring {s['score_s']:.2f} s "
              f"(the model, {H} x {W} frames), fit + astigmatism {s['fit_s']:.3f} s.", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--round", type=int, default=200)
    p.add_argument("--astigmatic", type=int, default=100)
    p.add_argument("--bootstrap", type=int, default=60, help="series also fitted with the "
                   "bootstrap interval (slower)")
    p.add_argument("--seed", type=int, default=23)
    p.add_argument("--pool", type=Path, default=POOL)
    p.add_argument("--output", type=Path, default=REPO / "docs" / "benchmarks" /
                   "through-focus.md")
    p.add_argument("--json", type=Path, default=None, help="also write every series' row here")
    args = p.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    start = time.perf_counter()
    frames = pool_frames(args.pool, rng)
    scorer = FocusScorer.load(device="cpu")
    # round and astigmatic series interleaved, so that a stopped run is still a fair sample
    kinds = [False] * args.round + [True] * args.astigmatic
    kinds = [kinds[i] for i in rng.permutation(len(kinds))]
    rows = []
    for i, astigmatic in enumerate(kinds):
        rows += run(scorer, frames, rng, 1, astigmatic, 1 if i < args.bootstrap else 0)
        if (i + 1) % 20 == 0 or i + 1 == len(kinds):
            text = report(by(rows, "astigmatic", False), by(rows, "astigmatic", True),
                          time.perf_counter() - start)
            args.output.write_text(text)
            if args.json is not None:
                args.json.write_text(json.dumps(rows, indent=1))
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
