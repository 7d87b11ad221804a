"""``semfocus compare``: the architecture table (trained for a few steps on a tiny dataset)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from napari_semfocus.cli.main import main
from napari_semfocus.errors import SemFocusError
from napari_semfocus.scoring.model import FocusNet, count_parameters
from napari_semfocus.training.compare import pareto_front, parse_candidate
from napari_semfocus.training.data import dataset as ds

from ..helpers import SIZE, make_fake_pool


def test_pareto_front_marks_the_undominated():
    rows = [
        {"rmse": 1.0, "cpu_images_per_s": 10.0},  # front: most accurate
        {"rmse": 2.0, "cpu_images_per_s": 50.0},  # front: fastest
        {"rmse": 2.0, "cpu_images_per_s": 9.0},  # beaten by the first on both
        {"rmse": 1.5, "cpu_images_per_s": 20.0},  # front: in between
        {"rmse": 1.5, "cpu_images_per_s": 20.0},  # a tie is not domination
    ]
    assert pareto_front(rows) == [True, True, False, True, True]


def test_candidate_names():
    assert parse_candidate("resnet50") == ("resnet50", True)
    assert parse_candidate("resnet18/no-mag") == ("resnet18", False)
    with pytest.raises(SemFocusError, match="backbone 'vgg16' is not one of"):
        parse_candidate("vgg16/no-mag")


@pytest.mark.slow
def test_compare_trains_each_candidate_and_writes_the_table(tmp_path, capsys):
    paths = ds.make_dataset(make_fake_pool(tmp_path / "pool"), tmp_path / "ds", n_train=32, n_val=40,
                            seed=3, size_hw=SIZE, n_train_scenes=2, workers=1)
    folder = Path(paths["val_manifest"]).parent.parent
    args = ["compare", "--dataset", str(folder), "--out", str(tmp_path / "runs"),
            "--candidates", "mobilenet_v3_small", "resnet18/no-mag", "--epochs", "1",
            "--steps-per-epoch", "2", "--batch-size", "4", "--crop", "48", "64", "--lr", "1e-3",
            "--optimiser", "adamw", "--device", "cpu", "--output", str(tmp_path / "cmp"),
            "--speed-batch", "4"]
    assert main(args) == 0
    report = json.loads((tmp_path / "cmp.json").read_text())
    rows = {r["candidate"]: r for r in report["candidates"]}
    assert set(rows) == {"mobilenet_v3_small", "resnet18/no-mag"} and report["speed_batch"] == 4
    assert rows["resnet18/no-mag"]["magnification_input"] is False
    assert rows["resnet18/no-mag"]["parameters"] == count_parameters(FocusNet("resnet18", False))
    assert rows["mobilenet_v3_small"]["parameters"] < rows["resnet18/no-mag"]["parameters"]
    for r in rows.values():
        assert 0 <= r["rmse"] <= 10 and r["cpu_images_per_s"] > 0 and r["cpu_memory_mb"] > 0
        assert r["train_seconds"] > 0
        assert (tmp_path / "runs" / r["candidate"].replace("/", "-") / "best.safetensors").is_file()
    assert [r["pareto"] for r in report["candidates"]] == pareto_front(report["candidates"])
    md = (tmp_path / "cmp.md").read_text()
    assert md.splitlines()[0].startswith("| candidate | RMSE | rho | gate precision | gate recall |")
    assert md == capsys.readouterr().out.rstrip("\n") + "\n"

    # a second run reuses the trained models instead of training again
    assert main(args) == 0
    again = json.loads((tmp_path / "cmp.json").read_text())
    assert all(r["train_seconds"] is None for r in again["candidates"])
    assert [r["rmse"] for r in again["candidates"]] == [r["rmse"] for r in report["candidates"]]
    for key in ("cpu_images_per_s", "cpu_memory_mb"):  # and its speed figures
        assert [r[key] for r in again["candidates"]] == [r[key] for r in report["candidates"]]


def test_compare_rejects_an_unknown_candidate_before_training(tmp_path, capsys):
    assert main(["compare", "--dataset", str(tmp_path), "--out", str(tmp_path / "r"),
                 "--candidates", "resnet18", "alexnet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("semfocus compare: error: candidate 'alexnet': backbone 'alexnet' is not one of "
                   "resnet18, resnet34, resnet50, mobilenet_v3_small, mobilenet_v3_large, efficientnet_b0.")
    assert not (tmp_path / "r").exists()
