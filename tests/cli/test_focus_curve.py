"""``semfocus focus-curve`` (issue 23): the JSON keys, z from the metadata (a stack's per-slice
defocus, each file's working distance), --step-um, the refusal sentence and the --plot PNG; and
the API, ``FocusScorer.focus_curve``. On the focus-series sample (slice 4 in focus, 80 um
steps) and 240 x 320 crops of it (one model tile per slice, to keep the model calls few)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile

from napari_semfocus._sample_data import FOCUS_SERIES, load_sample

from ..helpers import needs_default_model, run_cli

pytestmark = needs_default_model
KEYS = {"best_z", "best_z_low", "best_z_high", "best_index", "best_score", "z_unit",
        "astigmatism"}


@pytest.fixture(scope="module")
def sample():
    return load_sample(FOCUS_SERIES)


def crop_files(folder, sample, slices, wd=True):
    """One 240 x 320 TIFF per slice, with the working distance (mm) it was taken at."""
    paths = []
    for i in slices:
        meta = {"magnification": sample.metadata["magnification"]}
        if wd:
            meta["working_distance_mm"] = 13.0 + sample.metadata["defocus_um"][i] / 1000.0
        path = folder / f"wd_{i:02d}.tif"
        tifffile.imwrite(path, sample.data[i, 72:312, 96:416], metadata=meta)
        paths.append(path)
    return paths


def test_stack_json_and_plot(tmp_path, capsys, sample):
    out, png = tmp_path / "fit.json", tmp_path / "curve.png"
    code, _, err = run_cli(["focus-curve", sample.path, "--device", "cpu", "--output", out,
                            "--plot", png], capsys)
    assert code == 0, err
    fit = json.loads(out.read_text())
    assert KEYS <= set(fit)
    assert fit["z_unit"] == "um" and fit["z_source"] == "metadata defocus_um"
    assert fit["z"] == sample.metadata["defocus_um"]
    assert abs(fit["best_z"]) <= 40.0  # within half a step of the slice made sharpest
    assert fit["best_z_low"] < fit["best_z"] < fit["best_z_high"]
    assert fit["best_index"] == sample.metadata["in_focus_index"]
    assert 8.0 < fit["best_score"] <= 10.0
    assert {"likely", "orientation_deg", "ratio"} <= set(fit["astigmatism"])
    assert fit["astigmatism"]["likely"] is False
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
    assert "best focus z = " in err and "um" in err


def test_files_ordered_by_working_distance(tmp_path, capsys, sample):
    paths = crop_files(tmp_path, sample, [6, 2, 4, 1, 7, 3, 5])  # any order
    code, out, err = run_cli(["focus-curve", *paths, "--device", "cpu", "--step-um", "7"],
                             capsys)
    assert code == 0, err
    fit = json.loads(out)
    assert fit["z_source"] == "metadata working_distance_mm of each file"
    assert fit["z"] == sorted(fit["z"]) and fit["z"][0] == pytest.approx(13000.0 - 240.0)
    assert fit["files"] == [str(p) for p in sorted(paths)]
    assert abs(fit["best_z"] - 13000.0) <= 40.0
    assert fit["files"][fit["best_index"]].endswith("wd_04.tif")


def test_step_um_and_the_one_sided_refusal(tmp_path, capsys, sample):
    paths = crop_files(tmp_path, sample, [5, 6, 7, 8, 9], wd=False)  # all beyond focus
    code, out, err = run_cli(["focus-curve", *paths, "--device", "cpu", "--step-um", "80",
                              "-o", tmp_path / "fit.json"], capsys)
    assert code == 2 and not (tmp_path / "fit.json").exists()
    assert err.strip().endswith("best focus is beyond the first slice (z = 0 um): the scores "
                                "rise toward smaller z all the way, so extend the series to "
                                "smaller z.")


def test_api_focus_curve_with_z(default_scorer, sample):
    frames = sample.data[1:8, 72:312, 96:416]
    z = np.asarray(sample.metadata["defocus_um"][1:8])
    curve = default_scorer.focus_curve(frames[::-1], sample.metadata["magnification"],
                                       z=z[::-1])  # any order: sorted by z
    assert np.all(np.diff(curve.z) > 0)
    assert abs(curve.best_z) <= 40.0 and curve.best_index == 3
    assert curve.to_dict()["astigmatism"]["likely"] is False
