"""Fine-tuning on expert annotations (core and CLI): ``annotations`` and ``finetune``.

The main test teaches the shipped default model a lab whose experts score blurred images 1.5
points harsher than the project's scale, on real SEM images from the shared pool: the validation
RMSE against the experts' scores (validation images held out, split by image) must drop clearly,
and the saved checkpoint must reload and reproduce the fine-tuned model's scores.
"""

from __future__ import annotations

import csv
import io

import cv2
import numpy as np
import pytest

from napari_semfocus.errors import SemFocusError
from napari_semfocus.scale import label_for_added_blur
from napari_semfocus.scoring.scorer import default_model_path
from napari_semfocus.training.data.annotations import (
    CSV_COLUMNS,
    MIN_TRAIN,
    Annotation,
    AnnotationTable,
)
from napari_semfocus.training.finetune import Evaluated, Prepared, drive, finetune
from napari_semfocus.training.loop import BatchDone, EpochDone, Finished, TrainConfig

from .conftest import POOL, need_pool

SIGMAS = (0.0, 2.0, 4.0, 8.0, 16.0)  # added blur (px) -> project labels 10, 6.9, 5.5, 4.0, 2.5
HARSHER = 1.5  # the lab's experts: 1.5 points lower on blurred images
needs_default = pytest.mark.skipif(not default_model_path().is_file(),
                                   reason="the shipped default model is not installed")


def expert_score(sigma: float) -> float:
    """The lab's scale: the project's label, 1.5 points harsher on blurred images (< 9)."""
    label = float(label_for_added_blur(sigma))
    return label if label >= 9 else max(0.0, label - HARSHER)


@pytest.fixture(scope="module")
def expert_set():
    """(table, frames): 8 real pool images (one per sample folder, sharp after their downscale),
    each with 5 blurred copies scored on the lab's harsher scale."""
    need_pool()
    from napari_semfocus.training.data.pool import EXCLUDED, load_pool_image, read_manifest

    first = {}
    for row in read_manifest(POOL):
        if row["path"] not in EXCLUDED:
            first.setdefault(row["path"].split("/")[0], row)
    table, frames = AnnotationTable(), {}
    for row in list(first.values())[:8]:
        img = load_pool_image(POOL, row)
        f = max(2.0, img.min_factor)
        d = cv2.resize(img.data, (int(img.data.shape[1] / f), int(img.data.shape[0] / f)),
                       interpolation=cv2.INTER_AREA)
        h, w = min(d.shape[0], 288), min(d.shape[1], 384)
        y, x = (d.shape[0] - h) // 2, (d.shape[1] - w) // 2
        d = d[y : y + h, x : x + w]
        for k, sigma in enumerate(SIGMAS):
            frames[(img.path, k)] = d if sigma == 0 else cv2.GaussianBlur(d, (0, 0), sigma)
            table.add(Annotation(img.path, k, img.magnification, expert_score(sigma)))
    assert len(table) == 40 and len(table.images()) == 8
    return table, frames


# ---- the "done when" test -------------------------------------------------------------------
@pytest.mark.slow
@needs_default
def test_finetune_default_model_learns_a_harsher_lab(expert_set, tmp_path):
    import torch

    from napari_semfocus.scoring.checkpoint import load_checkpoint, read_metadata
    from napari_semfocus.scoring.scorer import FocusScorer

    torch.set_num_threads(1)
    table, frames = expert_set
    config = TrainConfig(epochs=2, steps_per_epoch=10, batch_size=8, lr=2e-3, optimiser="adamw",
                         crop_hw=(240, 320), flips=True, freeze_trunk=True, device="cpu", seed=0)
    updates = []
    result = drive(finetune(table, config, init="default", val_fraction=0.25, frames=frames),
                   updates.append)

    prepared = updates[0]
    assert isinstance(prepared, Prepared) and prepared.parent == default_model_path().name
    assert (prepared.train_frames, prepared.val_frames) == (30, 10)  # 6 and 2 images, all slices
    assert not set(prepared.train_images) & set(prepared.val_images)  # split by image
    assert isinstance(updates[1], Evaluated)
    assert sum(isinstance(u, BatchDone) for u in updates) == 20
    assert [u.epoch for u in updates if isinstance(u, EpochDone)] == [1, 2]
    assert isinstance(updates[-1], Finished)

    before, after = result.val_rmse_before, result.val_rmse_after
    print(f"validation RMSE against the experts: before {before:.3f}, after {after:.3f} "
          f"({after / before:.2f}x)")
    assert updates[1].val_rmse == pytest.approx(before)
    assert updates[-1].initial_val_rmse == pytest.approx(before)  # same value as train()'s own
    assert before > 0.9  # the default model does not know this lab's scale
    assert after < 0.7 * before  # ... and fine-tuning teaches it

    path = result.save(tmp_path / "harsh-lab.safetensors")
    meta = read_metadata(path)
    prov = meta["provenance"]
    assert prov["parent"] == default_model_path().name and prov["kind"] == "fine-tune"
    ann = prov["annotations"]
    assert ann["count"] == 40 and ann["images"] == 8 and len(ann["rows"]) == 40
    assert set(ann["rows"][0]) == {"layer", "slice", "magnification", "score", "path"}
    ft = meta["fine_tuning"]
    assert ft["val_rmse_before"] == pytest.approx(before)
    assert ft["val_rmse_after"] == pytest.approx(after)
    assert sorted(ft["validation_images"]) == sorted(prepared.val_images)
    assert meta["training"]["freeze_trunk"] is True and len(meta["history"]) == 2
    assert not list(tmp_path.glob(".*.tmp"))  # written atomically, nothing left behind

    # the checkpoint reproduces the in-memory model
    stack = np.stack([frames[key] for key in list(frames)[:5]])
    mag = table.rows[0].magnification
    in_memory = FocusScorer(result.model, device="cpu").score(stack, mag)
    reloaded = FocusScorer.from_checkpoint(path, device="cpu")
    np.testing.assert_allclose(reloaded.score(stack, mag), in_memory, atol=1e-4)
    model, _ = load_checkpoint(path)
    for k, v in result.model.state_dict().items():
        assert torch.equal(model.state_dict()[k], v.cpu()), k
    # the parent is untouched
    parent = FocusScorer.default(device="cpu").score(stack, mag)
    assert np.abs(parent - in_memory).max() > 0.3


@needs_default
def test_stop_ends_after_the_current_batch_and_keeps_the_model(expert_set):
    table, frames = expert_set
    config = TrainConfig(epochs=3, steps_per_epoch=10, batch_size=2, lr=1e-3, optimiser="adamw",
                         crop_hw=(96, 128), freeze_trunk=True, device="cpu")
    batches = []
    gen = finetune(table, config, val_fraction=0.25, frames=frames,
                   should_stop=lambda: len(batches) >= 3)
    result = drive(gen, lambda u: batches.append(u) if isinstance(u, BatchDone) else None)
    assert len(batches) == 3  # the stop was seen before the 4th batch
    assert result.stopped and result.trained and len(result.history) == 1
    assert result.val_rmse_after is not None and result.metadata["fine_tuning"]["stopped"]


def test_stop_before_any_batch_has_nothing_to_save(expert_set, tmp_path):
    table, frames = expert_set
    config = TrainConfig(epochs=1, steps_per_epoch=2, batch_size=2, device="cpu")
    result = drive(finetune(table, config, frames=frames, val_fraction=0, should_stop=lambda: True))
    assert not result.trained and result.stopped
    with pytest.raises(SemFocusError, match="nothing was trained"):
        result.save(tmp_path / "x.safetensors")
    assert not (tmp_path / "x.safetensors").exists()


def test_too_few_annotations_are_refused():
    table = AnnotationTable(Annotation("a", i, 5000, 5) for i in range(MIN_TRAIN - 1))
    with pytest.raises(SemFocusError, match=f"at least {MIN_TRAIN}"):
        next(finetune(table, TrainConfig(epochs=1)))


# ---- the annotation table ---------------------------------------------------------------------
def test_add_replaces_same_slice_edit_remove():
    t = AnnotationTable()
    assert t.add(Annotation("series", 4, 5000, 9.5)) == 0
    assert t.add(Annotation("series", 5, 5000, 7)) == 1
    assert t.add(Annotation("series", 4, 5000, 8)) == 0  # same (layer, slice): replaced
    assert [(r.slice, r.score) for r in t] == [(4, 8.0), (5, 7.0)]
    t.set_score(1, 6.5)
    assert t.rows[1].score == 6.5
    with pytest.raises(SemFocusError, match="between 0 and 10"):
        t.set_score(1, 11)
    t.remove([0])
    assert [r.slice for r in t] == [5]
    with pytest.raises(SemFocusError, match="magnification"):
        Annotation("x", 0, 0, 5)


def test_csv_round_trip_exact_columns(tmp_path):
    t = AnnotationTable([Annotation("SEM focus series", 4, 5720, 9.5, "/data/series.tif"),
                         Annotation("my, layer", 0, 120000, 3.25)])
    path = t.save_csv(tmp_path / "ann.csv")
    text = path.read_text(encoding="utf-8")
    assert text.splitlines()[0] == "layer,slice,magnification,score,path"
    assert tuple(next(csv.reader(io.StringIO(text)))) == CSV_COLUMNS
    back = AnnotationTable.load_csv(path)
    assert [(r.layer, r.slice, r.magnification, r.score, r.path) for r in back] == [
        ("SEM focus series", 4, 5720.0, 9.5, "/data/series.tif"),
        ("my, layer", 0, 120000.0, 3.25, None)]
    assert not list(tmp_path.glob(".*.tmp"))


def test_folder_of_images_and_csv(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "images"
    folder.mkdir()
    import tifffile

    cv2.imwrite(str(folder / "a.png"), rng.integers(0, 255, (64, 80), dtype=np.uint8))
    tifffile.imwrite(folder / "stack.tif", rng.integers(0, 255, (3, 64, 80), dtype=np.uint8))
    csv_path = tmp_path / "scores.csv"  # elsewhere: paths are relative to the image folder
    csv_path.write_text("path,magnification,score,index\na.png,2000,7.5,\nstack.tif,800,3,2\n")
    t = AnnotationTable.load_csv(csv_path, image_folder=folder)
    assert [(r.layer, r.slice, r.score) for r in t] == [("a.png", 0, 7.5), ("stack.tif", 2, 3.0)]
    assert t.rows[1].path == str((folder / "stack.tif").resolve())
    data = t.labelled_set()
    assert [f.shape for f in data.images] == [(64, 80), (64, 80)]
    np.testing.assert_array_equal(data.images[1], tifffile.imread(folder / "stack.tif")[2])
    assert list(data.groups) == [r.path for r in t]  # one group per image file
    # a layer that is open replaces the file's frame
    own = rng.random((50, 60)).astype(np.float32)
    assert t.labelled_set({("a.png", 0): own}).images[0] is not None
    np.testing.assert_array_equal(t.labelled_set({("a.png", 0): own}).images[0], own)


def test_labelled_set_groups_by_image_so_the_split_is_by_image():
    frames = {("series", i): np.random.default_rng(i).random((40, 50)) for i in range(6)}
    frames.update({("other", i): np.random.default_rng(9 + i).random((40, 50)) for i in range(3)})
    t = AnnotationTable(Annotation(layer, i, 5000, i) for layer, i in frames)
    data = t.labelled_set(frames)
    assert set(data.groups) == {"series", "other"}
    train_set, val_set = data.split_by_group(0.5, seed=0)
    assert set(train_set.groups).isdisjoint(val_set.groups)
    assert len(train_set) + len(val_set) == 9
    with pytest.raises(SemFocusError, match="not open and no image file"):
        AnnotationTable([Annotation("gone", 0, 5000, 5)]).labelled_set({})


def test_summary_spread_and_warnings():
    t = AnnotationTable()
    s = t.summary()
    assert s.count == 0 and not s.can_train and not s.can_validate
    for i, (score, mag) in enumerate([(9.5, 500), (8, 5000), (1, 20000), (5, 80000), (10, 5000)]):
        t.add(Annotation("series", i, mag, score))
    s = t.summary()
    assert dict(s.score_bins) == {"0–2": 1, "2–4": 0, "4–6": 1, "6–8": 0, "8–10": 3}
    assert dict(s.magnification_bands) == {"<1k": 1, "1k–10k": 2, "10k–50k": 1, "≥50k": 1}
    assert any("Too few to train" in w for w in s.warnings)
    assert any("Too few to validate" in w for w in s.warnings)
    for i in range(5):
        t.add(Annotation("other", i, 5000, 6))
    s = t.summary()
    assert s.can_train and s.can_validate and s.warnings == []
    assert s.text().startswith("10 annotations of 2 images.")


@pytest.mark.parametrize("content, problem", [
    ("layer,slice,score\nx,0,5\n", "lacks the column(s) magnification"),
    ("slice,magnification,score\n0,5000,5\n", "lacks the column(s) layer or path"),
    ("layer,slice,magnification,score\nx,0,5000,great\n", "line 2: score 'great' is not a number"),
    ("layer,slice,magnification,score\nx,0,5000,12\n", "line 2: score 12.0 is not between 0 and 10"),
    ("layer,slice,magnification,score\nx,0,-5,5\n", "line 2: magnification"),
    ("layer,slice,magnification,score\nx,1.5,5000,5\n", "slice 1.5 is not a whole number"),
    ("layer,slice,magnification,score\n", "has no rows"),
    (b"\x89PNG\r\n\x1a\n\x00\xff\xfe", "is not a readable CSV text file"),
    (None, "does not exist"),
])
def test_bad_csv_gives_one_sentence_naming_the_file(tmp_path, content, problem):
    path = tmp_path / "bad.csv"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises(SemFocusError) as err:
        AnnotationTable.load_csv(path)
    message = str(err.value)
    assert str(path) in message and problem in message
    assert "\n" not in message and message.endswith(".") and message.count(". ") == 0


# ---- the command line runs the same code --------------------------------------------------------
@needs_default
def test_cli_train_annotations_runs_finetune_and_writes_a_checkpoint(expert_set, tmp_path,
                                                                     monkeypatch, capsys):
    import tifffile

    import napari_semfocus.training.finetune as ft
    from napari_semfocus.cli.main import main
    from napari_semfocus.scoring.checkpoint import read_metadata

    table, frames = expert_set
    folder = tmp_path / "imgs"
    folder.mkdir()
    lines = ["path,magnification,score,slice"]
    for image in table.images()[:3]:  # 3 images, each a TIFF stack of its 5 blurred copies
        rows = [r for r in table.rows if r.layer == image]
        stack = np.stack([frames[r.key] for r in rows])
        stack = np.round(255 * (stack - stack.min()) / np.ptp(stack)).astype(np.uint8)
        name = image.replace("/", "_") + ".tif"
        tifffile.imwrite(folder / name, stack)
        lines += [f"{name},{r.magnification:g},{r.score:.4g},{r.slice}" for r in rows]
    (folder / "scores.csv").write_text("\n".join(lines) + "\n")
    calls = []
    real = ft.finetune
    monkeypatch.setattr(ft, "finetune", lambda *a, **k: calls.append(k) or real(*a, **k))
    out = tmp_path / "run"
    code = main(["train", "--annotations", str(folder / "scores.csv"), "--init", "default",
                 "--out", str(out), "--epochs", "1", "--steps-per-epoch", "2", "--batch-size", "2",
                 "--crop", "96", "128", "--lr", "1e-3", "--optimiser", "adamw", "--freeze-trunk",
                 "--val-fraction", "0.34", "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert len(calls) == 1 and calls[0]["init"] == "default"
    assert "validation RMSE before fine-tuning" in err and "fine-tuned model:" in err
    meta = read_metadata(out / "best.safetensors")
    assert meta["provenance"]["parent"] == default_model_path().name
    assert meta["provenance"]["annotations"]["file"] == str((folder / "scores.csv").resolve())
    assert meta["provenance"]["annotations"]["count"] == 15
    ft_meta = meta["fine_tuning"]
    assert ft_meta["val_rmse_before"] > 0 and ft_meta["val_rmse_after"] > 0
    assert len(ft_meta["validation_images"]) == 1 and ft_meta["train_frames"] == 10


def test_cli_bad_annotations_exit_2(tmp_path, capsys):
    from napari_semfocus.cli.main import main

    bad = tmp_path / "bad.csv"
    bad.write_text("path,score\na.png,5\n")
    code = main(["train", "--annotations", str(bad), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and str(bad) in err and "magnification" in err
