"""Sample data: small, installed, with the metadata the widget needs, and blurred as documented."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import tifffile

from napari_semfocus import _sample_data
from napari_semfocus.io.databar import detect_databar_rows
from napari_semfocus.scale import score_from_sigma
from napari_semfocus.scoring.measures import measure

from ..helpers import POOL, REPO

SAMPLE_FILES = (_sample_data.FOCUS_SERIES, _sample_data.SEM_IMAGE, _sample_data.HALF_FOCUSED)


def test_sample_files_are_small_and_documented():
    folder = _sample_data.sample_dir()
    sizes = [(folder / name).stat().st_size for name in SAMPLE_FILES]
    assert sum(sizes) < 4e6
    attribution = (folder / "ATTRIBUTION.md").read_text(encoding="utf-8")
    for source in ("SEM_Images_Lacunarity", "sem2surface", "MIT", "BSD-3-Clause"):
        assert source in attribution


def test_focus_series_layer_and_ground_truth():
    (data, kwargs, kind), *rest = _sample_data.focus_series()
    assert kind == "image" and not rest  # no data bar in the series
    meta = kwargs["metadata"]
    assert data.dtype == np.uint8 and data.ndim == 3 and data.shape[0] == 11
    assert 512 <= data.shape[2] <= 768
    assert meta["magnification"] > 0 and meta["pixel_size_m"] > 0
    assert kwargs["scale"] == pytest.approx((1.0, meta["pixel_size_um"], meta["pixel_size_um"]))
    focus = meta["in_focus_index"]
    assert focus == 4 != data.shape[0] // 2  # deliberately not the middle slice
    sigma = np.array(meta["sigma_px"])
    assert int(np.argmin(sigma)) == focus and sigma[focus] == pytest.approx(0.5)
    # the documented defocus model reproduces every slice's sigma and expected score
    p_nm = meta["pixel_size_m"] * 1e9
    r_nm = meta["alpha_mrad"] * 1e-3 * np.abs(meta["defocus_um"]) * 1e3
    assert sigma == pytest.approx(np.sqrt(0.25 + (r_nm / (2 * p_nm)) ** 2), rel=1e-3)
    assert meta["expected_scores"] == pytest.approx(score_from_sigma(sigma), abs=1e-3)
    # and the pixels are blurred accordingly: sharpest at the in-focus slice, falling away
    sharpness = measure(data, "tenengrad")
    assert int(np.argmax(sharpness)) == focus
    for d in (1, 2, 3):
        assert sharpness[focus - d] < sharpness[focus - d + 1]
        assert sharpness[focus + d] < sharpness[focus + d - 1]


def test_sem_image_has_metadata_and_a_visible_data_bar():
    layers = _sample_data.sem_image()
    (data, kwargs, kind), (rects, bar_kwargs, bar_kind) = layers
    meta = kwargs["metadata"]
    assert kind == "image" and bar_kind == "shapes"
    assert data.ndim == 2 and 512 <= data.shape[1] <= 768
    assert meta["magnification"] > 0 and meta["pixel_size_m"] > 0
    assert meta["databar_rows"] == 39
    assert abs(detect_databar_rows(data) - meta["databar_rows"]) <= 1
    assert rects[0][:, 0].min() == pytest.approx(data.shape[0] - 39 - 0.5)
    assert "excluded" in bar_kwargs["features"]["note"][0]


def test_half_focused_frame_is_sharp_left_and_soft_right():
    (data, kwargs, _), = _sample_data.half_focused()
    meta = kwargs["metadata"]
    assert meta["sharp_side"] == "left" and meta["magnification"] > 0
    w = data.shape[1]
    left, right = data[:, : w // 2 - 40], data[:, w // 2 + 40 :]
    assert measure(left, "tenengrad")[0] > 3 * measure(right, "tenengrad")[0]
    assert meta["expected_scores"]["left"] > meta["expected_scores"]["right"] + 3


def test_samples_are_found_in_the_checkout_top_level_folder():
    """In a source checkout (editable install) the samples are the repository's top-level
    sample_data/; tests/test_packaging.py checks that a built wheel carries them in the package."""
    folder = _sample_data.sample_dir()
    assert folder.resolve() == REPO / "sample_data"
    assert all((folder / name).is_file() for name in SAMPLE_FILES)


@pytest.mark.slow
def test_make_samples_regenerates_the_shipped_files(tmp_path):
    script = REPO / "scripts" / "make_samples.py"
    run = subprocess.run([sys.executable, str(script), "--pool", str(POOL), "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    for name in SAMPLE_FILES:
        with tifffile.TiffFile(tmp_path / name) as new, \
                tifffile.TiffFile(_sample_data.sample_dir() / name) as old:
            np.testing.assert_array_equal(new.asarray(), old.asarray())
            assert new.shaped_metadata[0] == old.shaped_metadata[0]
