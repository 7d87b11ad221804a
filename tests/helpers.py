"""What the tests share (no fixtures: those are in conftest.py): where the real SEM files are
(tests/data: a small copy of the pool and the vendor files), the skip when the shipped model is
missing, blurring, running the CLI, synthetic gate
scores and their direct count, a fake pool, and the user's layers before and after a widget ran."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import cv2
import numpy as np
import pytest
from sklearn.metrics import confusion_matrix, f1_score, precision_score, recall_score

from napari_semfocus.cli.main import main
from napari_semfocus.io.images import read_image
from napari_semfocus.scale import label_for_added_blur
from napari_semfocus.scoring.checkpoint import default_model_path
from napari_semfocus.training.data import scenes

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data"
POOL = DATA / "sem-pool"  # 14 real micrographs of the pool, one or more per folder (README.md)
VENDOR_FILES = DATA / "vendor-files"
FEI_FILE = POOL / "lungcells_lacunarity" / "DC_v2__CS_DCs_12000x_A.tif"
ZEISS_FILE = POOL / "fibresem" / "test.tif"
PLAIN_PNG = POOL / "deepsem" / "125nm_03_cropped.png"

needs_default_model = pytest.mark.skipif(
    not default_model_path().is_file(),
    reason=f"the shipped default model is not installed ({default_model_path().name})",
)


def blur(image: np.ndarray, sigma: float) -> np.ndarray:
    return image if sigma <= 0 else cv2.GaussianBlur(image, (0, 0), sigma)


# ---- the command line -----------------------------------------------------------------------------
def run_cli(args, capsys):
    """``semfocus ARGS`` in this process: (exit code, stdout, stderr)."""
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def parse_csv(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


# ---- gate: synthetic scores and the figures counted directly --------------------------------------
MODEL = {"name": "test-model.safetensors", "sha256": "ab" * 32, "hash_of": "file"}
# labelled images for gate calibration (the labelled_folder fixture): blur -> labels
LABELLED_SIGMAS = (0.0, 0.75, 1.25, 2.0, 3.0, 5.0)  # labels 10, 8.7, 7.9, 6.9, 6.1, 5.0
LABELLED_POOL_FILES = ("lungcells_lacunarity/DC_v2__CS_DCs_12000x_A.tif",
                       "lungcells_lacunarity/DC_v2__CS_DCs_8000x_A.tif",
                       "lungcells_lacunarity/DC_v2__CS_DCs_2500x_B.tif")


def synthetic(n=600, noise=1.2, seed=0):
    """Expert scores uniform on 0-10 and model scores = expert + Gaussian noise."""
    rng = np.random.default_rng(seed)
    expert = rng.uniform(0, 10, n)
    return expert + rng.normal(0, noise, n), expert


def direct_count(scores, acceptable, threshold):
    """Everything the gate reports, counted here without the module under test."""
    accepted = np.asarray(scores) >= threshold
    return {
        "precision": precision_score(acceptable, accepted),
        "recall": recall_score(acceptable, accepted),
        "f1_weighted": f1_score(acceptable, accepted, average="weighted"),
        "matrix": confusion_matrix(acceptable, accepted, labels=[False, True]),
        "n": len(accepted),
    }


def assert_matches_direct_count(figures, scores, acceptable, threshold):
    want = direct_count(scores, acceptable, threshold)
    assert figures.precision == pytest.approx(want["precision"], abs=1e-12)
    assert figures.recall == pytest.approx(want["recall"], abs=1e-12)
    assert figures.f1_weighted == pytest.approx(want["f1_weighted"], abs=1e-12)
    np.testing.assert_array_equal(figures.confusion.matrix(), want["matrix"])
    assert figures.n == want["n"]


def labelled_frames(root: Path, pool_files=LABELLED_POOL_FILES, sigmas=LABELLED_SIGMAS,
                    crop=(slice(0, 240), slice(0, 320)), prefix: str = "img"):
    """PNGs in ``root`` of real SEM frames (2x downscaled, cropped) blurred by ``sigmas``, named
    ``<prefix><file>_<blur>.png``: (rows ``(name, magnification, label, series)``, the 8-bit
    frames of the first file)."""
    rows, first = [], []
    for k, rel in enumerate(pool_files):
        img = read_image(POOL / rel)
        data = img.data[: img.data.shape[0] - img.databar_rows].astype(np.float32)
        data = cv2.resize(data, (data.shape[1] // 2, data.shape[0] // 2),
                          interpolation=cv2.INTER_AREA)[crop]
        lo, hi = np.percentile(data, [0.5, 99.5])
        for j, sigma in enumerate(sigmas):
            frame = np.clip(255 * (blur(data, sigma) - lo) / (hi - lo), 0, 255).astype(np.uint8)
            name = f"{prefix}{k}_{j}.png"
            cv2.imwrite(str(root / name), frame)
            rows.append((name, img.magnification / 2, float(label_for_added_blur(sigma)), f"s{k}"))
            if k == 0:
                first.append(frame)
    return rows, first


def write_manifest(path: Path, rows, header=("path", "magnification", "label", "series")) -> Path:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


# ---- a fake pool for dataset tests ----------------------------------------------------------------
SIZE = (64, 80)


def make_fake_pool(root: Path) -> Path:
    """Pool folder like the real one: a sample type and a file kept for validation (the
    manifest's ``split``), training files."""
    files = [
        ("soil_sem/soil_a.png", "val"),
        ("soil_sem/soil_b.png", "val"),
        ("deepsem/130nm_21_cropped.png", "val"),
        ("deepsem/125nm_03_cropped.png", "train"),
        ("deepsem/135nm_07_cropped.png", "train"),
        ("fibresem/x1.png", "train"),
        ("fibresem/x2.png", ""),  # empty: train
    ]
    rows = []
    for i, (rel, split) in enumerate(files):
        img = scenes.render_scene(scenes.SCENE_KINDS[i % 7], (180, 230), np.random.default_rng(i))
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / rel), (img * 255).astype(np.uint8))
        rows.append({"path": rel, "mag_or_hfw": "5.00 K X", "databar_rows_bottom": 0,
                     "split": split})
    with open(root / "manifest.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["path", "mag_or_hfw", "databar_rows_bottom", "split"])
        w.writeheader()
        w.writerows(rows)
    return root


# ---- widgets ---------------------------------------------------------------------------------------
def docked_viewer(make_napari_viewer, widget_class, dock_name: str, samples=(), size=(1500, 1000)):
    """A shown viewer of ``size`` with the plugin's ``samples`` open and a new ``widget_class``
    docked on the right: (viewer, widget)."""
    viewer = make_napari_viewer(show=True)
    viewer.window.resize(*size)
    for key in samples:
        viewer.open_sample("napari-semfocus", key)
    widget = widget_class(viewer)
    viewer.window.add_dock_widget(widget, name=dock_name, area="right")
    return viewer, widget


def layer_snapshot(viewer) -> dict:
    """A copy of every layer's data and metadata, by name."""
    return {layer.name: (np.array(layer.data, copy=True), dict(layer.metadata))
            for layer in viewer.layers}


def assert_layers_unchanged(viewer, before: dict, absent_keys=()) -> None:
    """Same layers, same data, same metadata keys (and none of ``absent_keys``) as ``before``."""
    assert [layer.name for layer in viewer.layers] == list(before)
    for layer in viewer.layers:
        data, meta = before[layer.name]
        np.testing.assert_array_equal(layer.data, data)
        assert not set(absent_keys) & layer.metadata.keys()
        assert layer.metadata.keys() == meta.keys()


def check_screenshot(image, path: Path, min_hw=(600, 1000)) -> np.ndarray:
    """A screenshot of the viewer window that was written to ``path`` and is not blank: the
    canvas and the dock widget side both show content."""
    assert path.is_file() and path.stat().st_size > 10_000
    rgb = np.asarray(image)[..., :3].astype(float)
    assert rgb.shape[0] >= min_hw[0] and rgb.shape[1] >= min_hw[1]
    assert rgb.std() > 20  # not blank
    assert rgb[:, int(rgb.shape[1] * 0.7):].std() > 15  # the dock widget side shows content too
    return rgb


class EventLoopTicks:
    """A QTimer ticking every ``interval_ms`` on the UI thread while the ``with`` block runs:
    the longest gap between two ticks is the longest the event loop was stalled (a frozen
    window). Use ``mark()`` to time a stretch of the block."""

    def __init__(self, interval_ms: int = 10):
        import time

        from qtpy.QtCore import QTimer

        self.clock = time.perf_counter
        self.ticks: list[float] = []
        self.timer = QTimer()
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(lambda: self.ticks.append(self.clock()))

    def __enter__(self):
        self.timer.start()
        return self

    def __exit__(self, *exc):
        self.timer.stop()

    def mark(self) -> float:
        return self.clock()

    def gaps_ms(self, start: float = 0.0, end: float = float("inf")) -> np.ndarray:
        """Gaps between the ticks in [start, end] (ms)."""
        ticks = np.asarray([t for t in self.ticks if start <= t <= end])
        return 1000 * np.diff(ticks)

    def longest_gap_ms(self, start: float = 0.0, end: float = float("inf")) -> float:
        gaps = self.gaps_ms(start, end)
        return float(gaps.max()) if gaps.size else float("inf")


# ---- live QC (semfocus watch) ----------------------------------------------------------------------
def synthetic_gate(path: Path) -> Path:
    """A gate file for the shipped model calibrated on synthetic scores (threshold about 7.8):
    sharp frames pass, frames blurred by 3 px or more do not."""
    from napari_semfocus.gate.calibrate import calibrate
    from napari_semfocus.gate.file import Gate
    from napari_semfocus.scoring.checkpoint import checkpoint_fingerprint

    scores, expert = synthetic(n=400, noise=0.6, seed=3)
    cal = calibrate(scores, acceptable=expert >= 7.5, target_precision=0.95)
    Gate.from_calibration(cal, model=checkpoint_fingerprint(None)).save(path)
    return path
