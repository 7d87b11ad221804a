"""The labelled-data generator: PSFs and labels follow the scale, blur really blurs, the split
never leaks a source image, generation is deterministic, zero frames are zeros."""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import pytest

from napari_semfocus.io.images import read_image
from napari_semfocus.scale import label_for_added_blur, score_from_sigma
from napari_semfocus.scoring.preprocess import normalise
from napari_semfocus.training.data import dataset as ds
from napari_semfocus.training.data import degrade, scenes
from napari_semfocus.training.data.pool import load_pool, read_pool_manifest
from napari_semfocus.training.data.zero_frames import ZERO_KINDS, zero_frame

from ...helpers import POOL, SIZE, make_fake_pool


def second_moment_sigma(k):
    """Independent check of the doc's sigma: sqrt(mean of the x and y variances)."""
    k = np.asarray(k, np.float64) / np.sum(k)
    y = np.arange(k.shape[0]) - (k.shape[0] - 1) / 2
    x = np.arange(k.shape[1]) - (k.shape[1] - 1) / 2
    py, px = k.sum(1), k.sum(0)
    vy = (py * y**2).sum() - (py * y).sum() ** 2
    vx = (px * x**2).sum() - (px * x).sum() ** 2
    return np.sqrt((vx + vy) / 2)


def raw_grad_energy(img):
    f = np.asarray(img, np.float64)
    return float(np.mean(np.diff(f, axis=1) ** 2) + np.mean(np.diff(f, axis=0) ** 2))


def grad_energy(img):
    f = normalise(np.asarray(img, np.float32))
    return float(np.mean(np.diff(f, axis=1) ** 2) + np.mean(np.diff(f, axis=0) ** 2))


# ---- PSFs and labels ------------------------------------------------------------------------------
@pytest.mark.parametrize("s", [0.7, 1.0, 2.0, 4.0, 12.0])
def test_gaussian_sigma_and_label(s):
    k, sigma = degrade.gaussian_psf(s)
    assert sigma == pytest.approx(s, rel=0.01)
    assert label_for_added_blur(sigma) == pytest.approx(label_for_added_blur(s), abs=0.02)
    assert label_for_added_blur(s) == pytest.approx(score_from_sigma(np.hypot(0.5, s)))


@pytest.mark.parametrize("r", [2.0, 4.0, 8.0, 20.0])
def test_disk_sigma_is_half_radius(r):
    k, sigma = degrade.disk_psf(r)
    # r / 2, plus what binning the disk into pixels adds (~1/12 px^2): 6 % at r = 2, <1 % at 8
    assert sigma == pytest.approx(np.sqrt(r**2 / 4 + 1 / 12), rel=0.02)
    assert sigma == pytest.approx(r / 2, rel=0.06 if r < 4 else 0.015)
    assert sigma == pytest.approx(second_moment_sigma(k), rel=1e-4)


def test_elliptical_sigma_is_rms_of_axes_at_any_angle():
    for angle in (0.0, 0.7, 2.0):
        k, sigma = degrade.elliptical_psf(4.0, 2.0, angle)
        assert sigma == pytest.approx(np.sqrt((16 + 4) / 2), rel=0.02)
        assert sigma == pytest.approx(second_moment_sigma(k), rel=1e-4)


@pytest.mark.parametrize("kind", degrade.PSF_KINDS)
@pytest.mark.parametrize("target", [1.5, 3.0, 9.0])
def test_make_psf_reports_measured_sigma(kind, target):
    k, sigma = degrade.make_psf(kind, target, np.random.default_rng(3))
    assert k.sum() == pytest.approx(1.0, abs=1e-5)
    assert sigma == pytest.approx(second_moment_sigma(k), rel=0.01)
    assert sigma == pytest.approx(target, rel=0.05)


def test_blur_applies_the_kernel():
    impulse = np.zeros((81, 81), np.float32)
    impulse[40, 40] = 1.0
    for kind in degrade.PSF_KINDS:
        k, sigma = degrade.make_psf(kind, 4.0, np.random.default_rng(0))
        out = degrade.blur(impulse, k)
        assert out.sum() == pytest.approx(1.0, abs=1e-3)
        assert second_moment_sigma(out) == pytest.approx(sigma, rel=0.01)


def test_sigma_draws_cover_the_score_range():
    rng = np.random.default_rng(0)
    labels = np.array([label_for_added_blur(degrade.draw_sigma_added(rng)) for _ in range(4000)])
    hist, _ = np.histogram(labels, bins=9, range=(1, 10))
    assert hist.min() > 0.07 * len(labels)  # roughly uniform in score
    assert (labels == 1.0).mean() > 0.05  # some far beyond sigma = 32 px
    assert (labels == 10.0).mean() > 0.03  # some exactly sharp


# ---- blur really happens ------------------------------------------------------------------------
def _scene_source(kind="crystals"):
    img = scenes.render_scene(kind, (2 * SIZE[0], 2 * SIZE[1]), np.random.default_rng(5))
    return ds.Source("scene-test", "synthetic-test", "scene-test", img, None, 1.0, "scene")


def test_scene_is_sharp_and_deterministic():
    a = scenes.render_scene("balls", (96, 128), np.random.default_rng(1))
    b = scenes.render_scene("balls", (96, 128), np.random.default_rng(1))
    assert np.array_equal(a, b) and a.dtype == np.float32 and 0 <= a.min() and a.max() <= 1
    k, _ = degrade.gaussian_psf(1.0)
    assert grad_energy(a) > 1.5 * grad_energy(degrade.blur(a, k))


def test_series_labels_fall():
    src = _scene_source()
    for index in range(4):
        spec = {"series": "s", "index": index, "source": 0, "mag_lo": 1e3, "mag_hi": 1e4}
        out = list(ds.series_examples(spec, [src], SIZE, seed=7))
        labels = [m["label"] for _, m in out]
        assert len(out) == len(ds.VAL_LEVELS)
        assert labels[0] == 10.0 and labels[-1] == 1.0
        assert all(a > b for a, b in zip(labels, labels[1:], strict=False))
        assert len({m["magnification"] for _, m in out}) == 1
        assert len({(m["psf"], m["bit_depth"]) for _, m in out[1:]}) == 1


@pytest.mark.parametrize("noise", [(float("inf"), 0.0), (300.0, 0.01), (30.0, 0.03)])
def test_series_gradient_energy_falls_with_label(monkeypatch, noise):
    settings = degrade.NoiseSettings(dose=noise[0], read_sigma=noise[1], line_sigma=0.0,
                                     line_gain_sigma=0.0)
    monkeypatch.setattr(degrade.NoiseSettings, "random", staticmethod(lambda rng: settings))
    src = _scene_source()
    for index in range(3):
        spec = {"series": "s", "index": index, "source": 0, "mag_lo": 1e3, "mag_hi": 1e4}
        out = list(ds.series_examples(spec, [src], SIZE, seed=3))
        # same brightness/contrast and noise settings along a series: raw energies compare
        e = [raw_grad_energy(img) for img, _ in out]
        if noise[0] == float("inf"):
            assert all(a > b for a, b in zip(e, e[1:], strict=False))
        else:
            assert e[0] > e[3] > e[-1]


def test_higher_label_has_more_gradient_energy_without_noise():
    src = _scene_source("fibres")
    region, off = ds.cut_window(src, 1.0, SIZE, 40, np.random.default_rng(0))
    prev = None
    for s in (0.0, 1.0, 2.0, 4.0, 8.0):
        k = np.ones((1, 1), np.float32) if s == 0 else degrade.gaussian_psf(s)[0]
        win = degrade.blur(region, k)[off[0] : off[0] + SIZE[0], off[1] : off[1] + SIZE[1]]
        e = grad_energy(win)
        if prev is not None:
            assert e < prev
        prev = e


# ---- zero frames --------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ZERO_KINDS)
def test_zero_frames_hold_no_structure(kind):
    img, k = zero_frame((128, 160), np.random.default_rng(2), kind)
    assert k == kind and img.shape == (128, 160)
    smooth = cv2.GaussianBlur(img, (0, 0), 4.0)
    assert smooth.std() < 0.05  # nothing but noise and at most a gentle shading
    q, meta = ds.zero_example((32, 40), np.random.default_rng(1), 8)
    assert meta["label"] == 0.0 and q.dtype == np.uint8


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    pool = make_fake_pool(tmp_path_factory.mktemp("pool"))
    out = tmp_path_factory.mktemp("ds")
    kw = dict(n_train=48, n_val=40, seed=11, size_hw=SIZE, n_train_scenes=3)
    paths = ds.make_dataset(pool, out / "a", workers=1, **kw)
    paths_b = ds.make_dataset(pool, out / "b", workers=2, **kw)
    return paths, paths_b


def _csv(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_split_never_leaks_a_source(tiny):
    paths, _ = tiny
    train = _csv(paths["train_meta"])
    val = _csv(paths["val_manifest"])
    train_src = {r["source"] for r in train if r["kind"] != "zero"}
    val_src = {r["source"] for r in val if r["series"] != "zero"}
    assert train_src and val_src and not (train_src & val_src)
    assert not {r["series"] for r in train} & {r["source"] for r in val}
    assert not any(r["sample_type"] == "soil_sem" for r in train)  # split "val" in the manifest
    assert "deepsem/130nm_21_cropped.png" in val_src
    assert any(r["sample_type"] == "soil_sem" for r in val)


def test_train_cache_and_val_files(tiny):
    paths, _ = tiny
    arr = np.load(paths["train_images"], mmap_mode="r")
    train = _csv(paths["train_meta"])
    assert arr.dtype == np.uint16 and arr.shape == (48,) + SIZE and len(train) == 48
    for r, img in zip(train, arr, strict=True):
        assert 0.0 <= float(r["label"]) <= 10.0 and float(r["magnification"]) > 0
        if r["bit_depth"] == "8":
            assert img.max() <= 255
        if r["kind"] == "zero":
            assert float(r["label"]) == 0.0
        else:
            assert float(r["label"]) == pytest.approx(label_for_added_blur(float(r["sigma_added"])),
                                                      abs=1e-4)
    val = _csv(paths["val_manifest"])
    assert list(val[0])[:6] == ["path", "magnification", "label", "series", "sample_type", "source"]
    folder = Path(paths["val_manifest"]).parent
    assert len({r["path"] for r in val}) == len(val)  # one file per row, none overwritten
    assert len(list(folder.glob("*.png")) + list(folder.glob("*.tif"))) == len(val)
    for r in val:
        im = read_image(folder / r["path"])
        assert im.data.shape == SIZE and float(r["magnification"]) > 0
        assert (r["series"] == "zero") == (float(r["label"]) == 0.0)
    series = {}
    for r in val:
        series.setdefault(r["series"], []).append(float(r["label"]))
    for name, labels in series.items():
        if name != "zero":
            assert len(labels) == len(ds.VAL_LEVELS) and labels == sorted(labels, reverse=True)


def test_same_seed_same_data_whatever_the_workers(tiny):
    a, b = tiny
    assert np.array_equal(np.load(a["train_images"]), np.load(b["train_images"]))
    assert _csv(a["train_meta"]) == _csv(b["train_meta"])
    assert _csv(a["val_manifest"]) == _csv(b["val_manifest"])
    va, vb = Path(a["val_manifest"]).parent, Path(b["val_manifest"]).parent
    for r in _csv(a["val_manifest"])[:12]:
        assert np.array_equal(read_image(va / r["path"]).data, read_image(vb / r["path"]).data)


# ---- the real pool (when the shared folder is there) ----------------------------------------------
def test_real_pool_split_is_by_group_and_holds_out_a_type():
    images = load_pool(POOL)
    excluded = {r["path"] for r in read_pool_manifest(POOL) if r["excluded"]}
    assert excluded and not {im.path for im in images} & excluded
    assert all(im.magnification > 0 and im.data.dtype == np.float32 for im in images)
    train, val = ds.split_pool(images)
    assert not {im.group for im in train} & {im.group for im in val}
    held_out = {"soil_sem", "axondeepseg_sem"}  # whole sample types kept for validation
    assert not {im.sample_type for im in train} & held_out
    assert {im.sample_type for im in val} >= held_out
    crop = next(im for im in images if im.path == "fibresem/test2-2.tif")
    assert crop.group == "fibresem/test2.tif" and crop.magnification > 0  # from its field
    bar = next(im for im in images if im.path.startswith("lungcells_lacunarity/"))
    assert bar.data.shape == (1024, 1536)  # 79-row FEI data bar cut away
