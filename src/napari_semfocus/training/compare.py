"""Architecture comparison: train candidate FocusNets with one recipe on one dataset and
compare validation accuracy, acceptance-gate figures, speed, size and memory.

A candidate is a backbone name (``resnet18``, ``mobilenet_v3_small``, ...) or ``<backbone>/no-mag``
for the same network without the magnification input. Each is trained from scratch into
``OUT/<candidate>/`` (an existing ``best.safetensors`` there is reused with ``reuse=True``, so an
interrupted comparison continues), then judged on the whole validation set (centre 240 x 320
crop, the paper's test protocol). Speed and memory are measured in a fresh subprocess per
candidate so that one model's allocations do not inflate the next one's figure.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from ..errors import SemFocusError
from ..gate.calibrate import format_figure, held_out_check
from ..io.files import write_report as write_report_files
from ..scoring.checkpoint import load_checkpoint
from ..scoring.model import BACKBONES, FocusNet, count_parameters
from ..scoring.scorer import FocusScorer
from .evaluation import metrics
from .loop import Finished, predict_frames, train

NO_MAG = "/no-mag"


def parse_candidate(name: str) -> tuple[str, bool]:
    """``"resnet18/no-mag"`` -> ``("resnet18", False)``; checks the backbone exists."""
    backbone, use_mag = (name[: -len(NO_MAG)], False) if name.endswith(NO_MAG) else (name, True)
    if backbone not in BACKBONES:
        raise SemFocusError(f"candidate {name!r}: backbone {backbone!r} is not one of {', '.join(BACKBONES)}.")
    return backbone, use_mag


def images_per_second(model, device: str = "cpu", batch: int = 32, batches: int = 3,
                      tile_hw=(240, 320), precision: str = "auto") -> float:
    """Scoring throughput of ``model`` through :class:`FocusScorer` (batch of random tiles,
    one warm-up batch, then ``batches`` timed ones)."""
    scorer = FocusScorer(model, device=device, precision=precision)
    tiles = np.random.default_rng(0).standard_normal((batch, *tile_hw)).astype(np.float32)
    mags = np.full(batch, 0.5, np.float32)
    scorer.predict(tiles, mags)
    sync = torch.cuda.synchronize if scorer.device.type == "cuda" else (lambda: None)
    sync()
    t0 = time.perf_counter()
    for _ in range(batches):
        scorer.predict(tiles, mags)
    sync()
    return batch * batches / (time.perf_counter() - t0)


def measure_speed_memory(candidate: str, device: str = "cpu", batch: int = 32, batches: int = 3) -> dict:
    """Images/s and peak memory of scoring with an (untrained) candidate, in a subprocess.

    CPU memory is the subprocess's peak resident set (``VmHWM``, which starts afresh at exec,
    unlike ``ru_maxrss``, which Linux carries over from the parent) minus its resident set before
    the model was built (weights + activations + allocator); CUDA memory is
    ``max_memory_allocated``."""
    out = subprocess.run([sys.executable, "-m", __name__, candidate, device, str(batch),
                          str(batches)], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SemFocusError(f"speed measurement of {candidate} on {device} failed: "
                            f"{out.stderr.strip().splitlines()[-1] if out.stderr.strip() else out.returncode}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _speed_memory(candidate: str, device: str, batch: int, run_dir: Path, reuse: bool) -> dict:
    """:func:`measure_speed_memory`, kept in ``run_dir`` beside the model: a run that reuses
    the model reuses its figures for the same device and batch (a fresh process each costs
    seconds)."""
    kept = run_dir / f"speed-{device}-batch{batch}.json"
    if reuse and kept.is_file():
        try:
            return json.loads(kept.read_text())
        except (OSError, ValueError):
            pass  # measured again below
    sm = measure_speed_memory(candidate, device, batch=batch)
    kept.write_text(json.dumps(sm))
    return sm


def status_mb(key: str) -> float:
    """A memory figure of this process from /proc/self/status (Linux), in MB; NaN elsewhere."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return float(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def main(argv=None) -> None:
    """``python -m napari_semfocus.training.compare CANDIDATE DEVICE BATCH BATCHES``: the speed
    and memory of one candidate measured in this (fresh) process, as one JSON line."""
    cand, dev, batch, batches = (argv or sys.argv[1:])[:4]
    base = status_mb("VmRSS")
    backbone, use_mag = parse_candidate(cand)
    ips = images_per_second(FocusNet(backbone, use_magnification=use_mag), dev, int(batch),
                            int(batches))
    peak = status_mb("VmHWM")
    gpu = torch.cuda.max_memory_allocated() / 2**20 if dev == "cuda" else None
    print(json.dumps({"images_per_s": ips, "memory_mb": gpu if gpu is not None else peak - base}))


def pareto_front(rows: list[dict], lower: str = "rmse", higher: str = "cpu_images_per_s") -> list[bool]:
    """For each row, whether no other row is at least as good on both ``lower`` (smaller is
    better) and ``higher`` (larger is better) and strictly better on one."""
    flags = []
    for r in rows:
        dominated = any(
            o is not r and o[lower] <= r[lower] and o[higher] >= r[higher]
            and (o[lower] < r[lower] or o[higher] > r[higher])
            for o in rows
        )
        flags.append(not dominated)
    return flags


def compare(candidates, train_set, val_set, config, out_dir, gate_precision: float = 0.95,
            accept_score: float = 7.0, reuse: bool = True, log=print,
            speed_batch: int = 32) -> dict:
    """Train (or reuse) each candidate, then measure it (speed: batches of ``speed_batch``
    240 x 320 tiles); returns the report dict."""
    out_dir = Path(out_dir)
    device_names = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    rows = []
    for cand in candidates:
        backbone, use_mag = parse_candidate(cand)
        run_dir = out_dir / cand.replace("/", "-")
        best = run_dir / "best.safetensors"
        t0 = time.time()
        if reuse and best.is_file():
            log(f"{cand}: reusing {best}")
            model, _ = load_checkpoint(best)
            train_seconds = None
        else:
            model = FocusNet(backbone, use_magnification=use_mag)
            meta = {"provenance": {"parent": None, "comparison": str(out_dir)}}
            for upd in train(model, train_set, val_set, config, run_dir, meta):
                if isinstance(upd, Finished):
                    log(f"{cand}: best validation RMSE {upd.best_val_rmse}")
            train_seconds = round(time.time() - t0, 1)
        dev = torch.device("cpu")
        model.to(dev)
        pred, label = predict_frames(model, val_set, dev)
        m = metrics(pred, label, val_set.magnifications, val_set.groups)
        row = {"candidate": cand, "backbone": backbone, "magnification_input": use_mag,
               "rmse": m["rmse"], "bands": {k: v["rmse"] for k, v in m["bands"].items()},
               "spearman_within_series": m["spearman_within_series"],
               "auc": m["auc_sharp_vs_blurred"], "zero_frames": m["zero_frames_mean_score"],
               "parameters": count_parameters(model), "train_seconds": train_seconds}
        row.update(_gate_figures(pred, label, val_set.groups, gate_precision, accept_score))
        for dname in device_names:
            sm = _speed_memory(cand, dname, speed_batch, run_dir, reuse=train_seconds is None)
            row[f"{dname}_images_per_s"] = sm["images_per_s"]
            row[f"{dname}_memory_mb"] = sm["memory_mb"]
        rows.append(row)
        log(f"{cand}: RMSE {row['rmse']:.3f}, {row['cpu_images_per_s']:.1f} img/s on CPU")
    for row, on_front in zip(rows, pareto_front(rows), strict=True):
        row["pareto"] = on_front
    return {"candidates": rows, "recipe": asdict(config), "train_frames": len(train_set),
            "val_frames": len(val_set), "gate_precision": gate_precision, "accept_score": accept_score,
            "devices": device_names, "speed_batch": speed_batch}


def _gate_figures(pred, label, groups, precision: float, accept_score: float) -> dict:
    """Gate calibrated on half of the validation groups, measured on the other half."""
    check = held_out_check(pred, label >= accept_score, groups, precision, best_effort=True)
    return {"gate_threshold": check.calibration.threshold,
            "gate_precision": check.held_out.precision, "gate_recall": check.held_out.recall,
            "gate_f1_weighted": check.held_out.f1_weighted}


def report_markdown(report: dict) -> str:
    _f = format_figure
    devs = report["devices"]
    head = (["candidate", "RMSE", "rho", "gate precision", "gate recall", "params (M)"]
            + [f"{d.upper()} img/s" for d in devs] + [f"{d.upper()} memory (MB)" for d in devs]
            + ["Pareto"])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in report["candidates"]:
        cells = [r["candidate"], f"{r['rmse']:.3f}", _f(r["spearman_within_series"]),
                 _f(r["gate_precision"]), _f(r["gate_recall"]), f"{r['parameters'] / 1e6:.1f}"]
        cells += [f"{r[f'{d}_images_per_s']:.1f}" for d in devs]
        cells += [f"{r[f'{d}_memory_mb']:.0f}" for d in devs]
        cells.append("**yes**" if r["pareto"] else "")
        lines.append("| " + " | ".join(cells) + " |")
    rec = report["recipe"]
    lines.append("")
    lines.append(
        f"Same data and recipe for all, from scratch: {report['train_frames']} training frames, "
        f"{rec['epochs'] * rec['steps_per_epoch']} steps of batch {rec['batch_size']} "
        f"({rec['epochs']} x {rec['steps_per_epoch']}), {rec['optimiser']} lr {rec['lr']}, "
        f"{' x '.join(map(str, rec['small_crop_hw'] or rec['crop_hw']))} crops; validation: {report['val_frames']} frames "
        f"of held-out source images, centre 240 x 320 crop. Gate: threshold for precision "
        f"{report['gate_precision']} (accept = label >= {report['accept_score']}) calibrated on half of the "
        "validation series, precision/recall measured on the other half. Pareto: not beaten on both RMSE "
        "and CPU images/s by another candidate."
    )
    return "\n".join(lines) + "\n"


def write_report(report: dict, prefix) -> str:
    """Write PREFIX.json and PREFIX.md (when a prefix is given); return the Markdown."""
    text = report_markdown(report)
    if prefix:
        write_report_files(prefix, report, text)
    return text


if __name__ == "__main__":
    main()
