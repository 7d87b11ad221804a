"""Shared fixtures: the real SEM pool (shared/ beside the clone), blurred copies of a real image,
and a FocusNet trained for a few steps on them (real torch, no mocks)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

# torch/torchvision first: imported after a napari viewer has loaded Mesa's LLVM, triton's own
# LLVM would clash with it (see napari_semfocus._widgets._llvm_guard).
import torch  # noqa: F401
import torchvision  # noqa: F401

POOL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "sem-pool"
FEI_FILE = POOL / "lungcells_lacunarity" / "DC_v2__CS_DCs_12000x_A.tif"
ZEISS_FILE = POOL / "fibresem" / "test.tif"
PLAIN_PNG = POOL / "deepsem" / "125nm_03_cropped.png"


def need_pool():
    if not POOL.is_dir():
        pytest.skip(f"the shared SEM pool is not at {POOL}")


@pytest.fixture(scope="session")
def pool_image() -> np.ndarray:
    """A real sharp SEM frame (FEI, data bar cropped), area-downscaled 2x, float32."""
    need_pool()
    from napari_semfocus.io.images import read_image

    img = read_image(FEI_FILE)
    data = img.data[: img.data.shape[0] - img.databar_rows].astype(np.float32)
    return cv2.resize(data, (data.shape[1] // 2, data.shape[0] // 2), interpolation=cv2.INTER_AREA)


def blur(image: np.ndarray, sigma: float) -> np.ndarray:
    return image if sigma <= 0 else cv2.GaussianBlur(image, (0, 0), sigma)


@pytest.fixture(scope="session")
def blur_series(pool_image):
    """(sigmas, frames): one real image blurred with increasing Gaussian sigma (pixels)."""
    sigmas = [0.0, 1.0, 2.0, 4.0, 8.0]
    return sigmas, np.stack([blur(pool_image, s) for s in sigmas])


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory, pool_image):
    """A FocusNet-resnet18 trained for a few dozen steps on blurred crops of one real image."""

    from napari_semfocus.scale import label_for_added_blur
    from napari_semfocus.scoring.model import FocusNet
    from napari_semfocus.training.data.labelled import LabelledSet
    from napari_semfocus.training.loop import TrainConfig, train

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
    out = tmp_path_factory.mktemp("tiny-model")
    config = TrainConfig(epochs=2, steps_per_epoch=30, batch_size=16, lr=2e-3, optimiser="adamw",
                         crop_hw=(96, 128), val_max_frames=16)
    updates = list(train(model, data, data.subset(np.arange(16)), config, out))
    return out / "best.safetensors", updates


@pytest.fixture
def errors(monkeypatch):
    """Messages passed to napari's show_error (the widgets' error path)."""
    shown: list[str] = []
    import napari.utils.notifications as notifications

    monkeypatch.setattr(notifications, "show_error", lambda msg, *a, **k: shown.append(str(msg)))
    return shown
