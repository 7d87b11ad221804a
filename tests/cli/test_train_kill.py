"""``semfocus train`` killed with SIGKILL (docs/reliability.md, issue 16 "done when"): a real run of
the installed program on a tiny dataset is killed mid-run, as soon as it is writing a checkpoint
after its first ``best`` exists; ``best`` and ``last`` then load, their stored figures are the
figures of the weights they hold, and the next run (``--resume``) leaves no temporary file."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile

from napari_semfocus.cli.main import main
from napari_semfocus.scoring.checkpoint import load_checkpoint
from napari_semfocus.training.data.labelled import LabelledSet
from napari_semfocus.training.loop import evaluate_rmse

SEMFOCUS = Path(sys.executable).with_name("semfocus")
SIGMAS = (0.0, 1.0, 2.0, 4.0)


def frame(rng, sigma):
    noise = rng.integers(0, 255, (96, 128)).astype(np.float32)
    return np.clip(cv2.GaussianBlur(noise, (0, 0), sigma) if sigma else noise, 0, 255
                   ).astype(np.uint8)


def tiny_dataset(folder: Path) -> Path:
    """The three files ``train --dataset`` reads (as make-dataset writes them): 16 training
    frames in ``train_images.npy`` + ``train_meta.csv``, 4 validation frames in ``val/``."""
    rng = np.random.default_rng(0)
    folder.mkdir()
    sigmas = [SIGMAS[k % 4] for k in range(16)]
    np.save(folder / "train_images.npy", np.stack([frame(rng, s) for s in sigmas]))
    with open(folder / "train_meta.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["label", "magnification", "source"])
        w.writerows([10 - 1.5 * s, 5000, f"src{k % 3}"] for k, s in enumerate(sigmas))
    (folder / "val").mkdir()
    rows = ["path,magnification,label"]
    for k, s in enumerate(SIGMAS):
        tifffile.imwrite(folder / "val" / f"v{k}.tif", frame(rng, s))
        rows.append(f"v{k}.tif,5000,{10 - 1.5 * s}")
    (folder / "val" / "manifest.csv").write_text("\n".join(rows) + "\n")
    return folder


def temporaries(out: Path) -> list[str]:
    return sorted(n for n in os.listdir(out) if n.endswith(".tmp"))


def check_figures(out: Path, val: LabelledSet) -> list[dict]:
    """best and last load; each one's stored validation RMSE is the RMSE of its weights; best
    holds the lowest RMSE of its history, which is the start of last's. Returns last's history."""
    best, best_meta = load_checkpoint(out / "best.safetensors")
    last, last_meta = load_checkpoint(out / "last.safetensors")
    history = last_meta["history"]
    assert [h["epoch"] for h in history] == list(range(1, len(history) + 1))
    assert last_meta["metrics"]["val_rmse"] == history[-1]["val_rmse"]
    best_history = best_meta["history"]
    assert best_history == history[: len(best_history)]
    rmses = [h["val_rmse"] for h in best_history]
    assert best_meta["metrics"]["val_rmse"] == best_meta["metrics"]["best_val_rmse"] == min(rmses)
    for model, meta in ((best, best_meta), (last, last_meta)):
        measured = evaluate_rmse(model, val, "cpu", precision="float32")
        assert measured == pytest.approx(meta["metrics"]["val_rmse"], rel=1e-4, abs=1e-5)
    return history


def test_a_killed_training_run_leaves_loadable_consistent_checkpoints(tmp_path):
    data, out = tiny_dataset(tmp_path / "data"), tmp_path / "run"
    args = ["train", "--dataset", str(data), "--out", str(out), "--init", "scratch",
            "--backbone", "mobilenet_v3_small", "--steps-per-epoch", "1", "--batch-size", "2",
            "--crop", "64", "64", "--lr", "1e-3", "--optimiser", "adamw", "--device", "cpu",
            "--precision", "float32"]
    with open(tmp_path / "stderr.txt", "w") as log:
        proc = subprocess.Popen([str(SEMFOCUS), *args, "--epochs", "1000"],
                                stdout=subprocess.DEVNULL, stderr=log)
    try:
        deadline = time.monotonic() + 300  # a few seconds on an idle machine
        while proc.poll() is None and time.monotonic() < deadline:  # kill during a write
            names = os.listdir(out) if out.is_dir() else []
            if "best.safetensors" in names and temporaries(out):
                break
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, (tmp_path / "stderr.txt").read_text()[-2000:]

    val = LabelledSet.from_manifest(data / "val" / "manifest.csv")
    epochs = len(check_figures(out, val))
    # the next run cleans what the killed one left and goes on from its last model
    assert main([*args, "--resume", "--epochs", str(epochs + 1)]) == 0
    assert temporaries(out) == []
    assert len(check_figures(out, val)) == epochs + 1
