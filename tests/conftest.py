"""Fixtures the tests share: a real SEM frame (tests/data) and blurred copies of it,
models (a FocusNet trained for a few steps, an untrained one, the shipped one), labelled data
(expert annotations, a labelled image folder for the gate), where screenshots go, and the
widgets' error notifications. Helpers without state are in :mod:`tests.helpers`."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import cv2
import napari.utils.notifications as notifications
import numpy as np
import pytest
import tifffile

# torch/torchvision first: imported after a napari viewer has loaded Mesa's LLVM, triton's own
# LLVM would clash with it (see napari_semfocus.scoring.llvm_guard).
import torch
import torchvision  # noqa: F401
from benchmarks.harsher_lab import lab_annotations
from filelock import FileLock

from napari_semfocus.io.images import read_image
from napari_semfocus.scale import label_for_added_blur
from napari_semfocus.scoring.checkpoint import save_checkpoint
from napari_semfocus.scoring.model import FocusNet
from napari_semfocus.scoring.scorer import FocusScorer
from napari_semfocus.training.data.labelled import LabelledSet
from napari_semfocus.training.data.pool import load_pool_image, read_pool_manifest
from napari_semfocus.training.loop import TrainConfig, train

from .helpers import (
    FEI_FILE,
    POOL,
    blur,
    labelled_frames,
    write_manifest,
)

# ``auto`` means torch in the suite: with onnxruntime, every checkpoint a test writes would be
# exported to ONNX (and int8-calibrated) on first use; tests/scoring/test_backends.py tests that
# backend on purpose. Run the suite with SEMFOCUS_BACKEND=onnxruntime to put every test on it.
os.environ.setdefault("SEMFOCUS_BACKEND", "torch")

#: set to a folder (scripts/docs_images.sh sets docs/images) to keep the screenshots the GUI
#: tests take; by default they go to each test's temporary folder
SCREENSHOTS_ENV = "SEMFOCUS_SCREENSHOTS"


@pytest.fixture
def screenshot_dir(tmp_path) -> Path:
    """Where a GUI test writes its screenshots: a temporary folder, or the folder named by
    ``$SEMFOCUS_SCREENSHOTS`` when the documentation images are made on purpose."""
    folder = os.environ.get(SCREENSHOTS_ENV)
    return Path(folder) if folder else tmp_path


# ---- real images ----------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def pool_image() -> np.ndarray:
    """A real sharp SEM frame (FEI, data bar cropped), area-downscaled 2x, float32."""
    img = read_image(FEI_FILE)
    data = img.data[: img.data.shape[0] - img.databar_rows].astype(np.float32)
    return cv2.resize(data, (data.shape[1] // 2, data.shape[0] // 2), interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="session")
def blur_series(pool_image):
    """(sigmas, frames): one real image blurred with increasing Gaussian sigma (pixels)."""
    sigmas = [0.0, 1.0, 2.0, 4.0, 8.0]
    return sigmas, np.stack([blur(pool_image, s) for s in sigmas])


# ---- models ---------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory, pool_image, worker_id):
    """A FocusNet-resnet18 trained for a few dozen steps on blurred crops of one real image:
    ``(best checkpoint, the training's updates)``. Trained once per test run: with several
    test processes (pytest-xdist) the first trains it and the others load it, under a lock."""
    if worker_id == "master":  # one process: its own folder
        return _train_tiny(tmp_path_factory.mktemp("tiny-model"), pool_image)
    root = tmp_path_factory.getbasetemp().parent / "tiny-model"  # shared by this run's workers
    root.mkdir(exist_ok=True)
    with FileLock(str(root / ".lock")):
        done = root / "updates.pickle"
        if not done.is_file():
            updates = _train_tiny(root, pool_image)[1]
            done.write_bytes(pickle.dumps(updates))
        return root / "best.safetensors", pickle.loads(done.read_bytes())


def _train_tiny(out: Path, pool_image):
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    frames, labels = [], []
    for _ in range(48):
        sigma = float(rng.choice([0.0, 0.0, 1.0, 3.0, 6.0, 12.0]))
        y, x = rng.integers(0, pool_image.shape[0] - 160), rng.integers(0, pool_image.shape[1] - 200)
        frames.append(blur(pool_image, sigma)[y : y + 160, x : x + 200])
        labels.append(label_for_added_blur(sigma))
    data = LabelledSet(frames, np.array(labels), np.full(48, 5000.0), np.arange(48) % 8)
    model = FocusNet("resnet18")
    config = TrainConfig(epochs=2, steps_per_epoch=30, batch_size=16, lr=2e-3, optimiser="adamw",
                         crop_hw=(96, 128), val_max_frames=16)
    updates = list(train(model, data, data.subset(np.arange(16)), config, out))
    return out / "best.safetensors", updates


@pytest.fixture(scope="session")
def untrained_checkpoint(tmp_path_factory) -> Path:
    """An untrained, small FocusNet checkpoint: exercises the model path, not its accuracy."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("models") / "untrained-focusnet.safetensors"
    save_checkpoint(FocusNet("mobilenet_v3_small", use_magnification=True), path)
    return path


@pytest.fixture(scope="session")
def default_scorer() -> FocusScorer:
    """The shipped model on the CPU (use with ``helpers.needs_default_model``)."""
    return FocusScorer.default(device="cpu")


# ---- labelled data --------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def expert_set():
    """(table, frames): 8 real pool images (one per sample folder, sharp after their downscale),
    each with 5 blurred copies scored on a lab's scale 1.5 points harsher than the project's."""
    first = {}
    for row in read_pool_manifest(POOL):
        if not row["excluded"]:
            first.setdefault(row["path"].split("/")[0], row)
    table, frames = lab_annotations(load_pool_image(POOL, row) for row in list(first.values())[:8])
    assert len(table) == 40 and len(table.images()) == 8
    return table, frames


@pytest.fixture(scope="session")
def labelled_folder(tmp_path_factory):
    """PNGs of three real SEM frames (2x downscaled, 240 x 320 crops) blurred by
    ``helpers.LABELLED_SIGMAS``, with a manifest path,magnification,label,series and a stack TIFF
    of one series in ``stacks/``: (folder, manifest rows)."""

    root = tmp_path_factory.mktemp("labelled")
    rows, stack = labelled_frames(root)
    write_manifest(root / "manifest.csv", rows)
    stack_dir = root / "stacks"
    stack_dir.mkdir()
    tifffile.imwrite(stack_dir / "series0.tif", np.stack(stack),
                     metadata={"magnification": rows[0][1]})
    return root, rows


# ---- widgets --------------------------------------------------------------------------------------
@pytest.fixture
def errors(monkeypatch):
    """Messages passed to napari's show_error (the widgets' error path)."""
    shown: list[str] = []

    monkeypatch.setattr(notifications, "show_error", lambda msg, *a, **k: shown.append(str(msg)))
    return shown
