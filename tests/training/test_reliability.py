"""Broken models are never saved or loaded as valid, and a training folder stays consistent
(docs/reliability.md): non-finite loss stops training with no ``best`` written, ``best`` only
ever holds the best validated model, NaN weights are refused on saving and loading, stale
temporaries of a killed run are removed, and ``last`` never runs ahead of its optimiser state."""

from __future__ import annotations

import hashlib
import shutil

import numpy as np
import pytest
import torch

from napari_semfocus.errors import CheckpointError, SemFocusError
from napari_semfocus.scoring.checkpoint import load_checkpoint, save_checkpoint
from napari_semfocus.scoring.model import FocusNet
from napari_semfocus.training import loop
from napari_semfocus.training.data.labelled import LabelledSet
from napari_semfocus.training.loop import EpochDone, Finished, TrainConfig, train


def sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tiny_set(n=8):
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (96, 128)).astype(np.uint8) for _ in range(n)]
    return LabelledSet(frames, np.linspace(0, 10, n), np.full(n, 5000.0), np.arange(n) % 4)


def config(**kw):
    base = dict(epochs=1, steps_per_epoch=2, batch_size=2, lr=1e-3, optimiser="adamw",
                crop_hw=(64, 64), val_max_frames=4, device="cpu", precision="float32")
    return TrainConfig(**{**base, **kw})


def run(out, epochs=1, resume=False, **kw):
    torch.manual_seed(0)
    data = tiny_set()
    model = FocusNet("mobilenet_v3_small")
    return model, list(train(model, data, data.subset(np.arange(4)), config(epochs=epochs, **kw),
                             out, resume=resume))


def test_non_finite_loss_stops_training_and_writes_no_best(tmp_path):
    with pytest.raises(SemFocusError, match=r"^training stopped: the loss became (nan|inf)"):
        run(tmp_path, epochs=2, lr=1e9, steps_per_epoch=6)
    assert not (tmp_path / "best.safetensors").exists()
    assert not (tmp_path / "last.safetensors").exists()


def test_a_model_that_scores_nan_from_the_start_is_blamed_not_the_learning_rate(tmp_path):
    """Issue 28: finite weights whose output is NaN (an overflow in the head) said "learning
    rate too high?" when trained without a validation set (none to evaluate first)."""
    from napari_semfocus.errors import BrokenModelError

    good = tmp_path / "good.safetensors"
    torch.manual_seed(0)
    save_checkpoint(FocusNet("mobilenet_v3_small"), good)
    model, _ = load_checkpoint(good)
    with torch.no_grad():
        model.head[0].bias.fill_(3e38)
        model.head[2].weight.fill_(3e38)
        model.head[4].weight.fill_(0.0)
    with pytest.raises(BrokenModelError) as err:
        list(train(model, tiny_set(), None, config(lr=1e-3), tmp_path / "run"))
    assert str(err.value) == (f"training stopped: the loss was nan at the first step, before "
                              f"any update, so the model {good} gives non-finite scores (a "
                              "damaged or edited checkpoint); use another model.")
    assert not (tmp_path / "run" / "best.safetensors").exists()


def test_a_model_with_nan_weights_is_not_saved(tmp_path):
    model = FocusNet("mobilenet_v3_small")
    with torch.no_grad():
        next(model.parameters())[0] = float("nan")
    path = tmp_path / "m.safetensors"
    with pytest.raises(SemFocusError, match="the model is broken"):
        save_checkpoint(model, path)
    assert not path.exists() and not list(tmp_path.iterdir())


def test_a_checkpoint_with_nan_weights_does_not_load(tmp_path):
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    good = tmp_path / "good.safetensors"
    save_checkpoint(FocusNet("mobilenet_v3_small"), good)
    with safe_open(str(good), framework="pt") as f:
        header = f.metadata()
    tensors = load_file(str(good))
    name = next(k for k, v in tensors.items() if v.is_floating_point())
    tensors[name][...] = float("nan")
    bad = tmp_path / "bad.safetensors"
    save_file(tensors, str(bad), metadata=header)
    with pytest.raises(CheckpointError, match=f"^checkpoint {bad} is broken: 1 of"):
        load_checkpoint(bad)


def test_resume_with_no_better_epoch_keeps_best_and_returns_it(tmp_path, monkeypatch):
    run(tmp_path, epochs=1)
    best = tmp_path / "best.safetensors"
    before = sha(best)
    best_model, best_meta = load_checkpoint(best)
    monkeypatch.setattr(loop, "evaluate_rmse", lambda *a, **k: 99.0)  # every later epoch worse
    model, updates = run(tmp_path, epochs=2, resume=True)
    assert sha(best) == before
    finished = updates[-1]
    assert isinstance(finished, Finished)
    assert finished.best_path == best
    assert finished.best_val_rmse == pytest.approx(best_meta["metrics"]["best_val_rmse"])
    for k, v in best_model.state_dict().items():  # the result is the best model, not the last
        assert torch.equal(model.state_dict()[k].cpu(), v), k


def test_stale_temporaries_of_a_killed_run_are_removed(tmp_path):
    stale = [tmp_path / ".best.safetensors.k1ll3d.tmp",
             tmp_path / ".last-optimiser.safetensors.x.tmp"]
    for p in stale:
        p.write_bytes(b"half a model")
    keep = tmp_path / ".notes.tmp"
    keep.write_text("not ours")
    run(tmp_path, epochs=1)
    assert not any(p.exists() for p in stale) and keep.exists()
    assert not list(tmp_path.glob(".*safetensors*.tmp"))


def test_last_never_resumes_ahead_of_its_model(tmp_path):
    """Killed between writing the optimiser state (epoch 2) and the model (still epoch 1):
    resuming trains epoch 2 again instead of skipping it."""
    run(tmp_path, epochs=1)
    epoch1 = tmp_path / "epoch1.safetensors"
    shutil.copy(tmp_path / "last.safetensors", epoch1)
    run(tmp_path, epochs=2, resume=True)
    shutil.copy(epoch1, tmp_path / "last.safetensors")  # the state is an epoch ahead
    _, updates = run(tmp_path, epochs=2, resume=True)
    assert [u.epoch for u in updates if isinstance(u, EpochDone)] == [2]


# ---- fine-tuning data that cannot validate: a warning from the core (CLI and widget) ----------
def _stack_annotations(folder, scores):
    """One TIFF stack (one image) with a slice per score, and its annotations CSV."""
    import tifffile

    rng = np.random.default_rng(0)
    stack = rng.integers(0, 255, (len(scores), 96, 128), dtype=np.uint8)
    tifffile.imwrite(folder / "one.tif", stack)
    lines = ["path,magnification,score,slice"]
    lines += [f"one.tif,5000,{s:g},{k}" for k, s in enumerate(scores)]
    (folder / "scores.csv").write_text("\n".join(lines) + "\n")
    return folder / "scores.csv"


def test_data_warnings_name_identical_scores_and_a_single_image(tmp_path):
    from napari_semfocus.training.data.annotations import AnnotationTable
    from napari_semfocus.training.finetune import data_warnings

    same = AnnotationTable.load_csv(_stack_annotations(tmp_path, [7] * 8))
    assert data_warnings(same, 0.25) == (
        "all 8 annotations have the same score (7): the model cannot learn to tell sharp from "
        "blurred from them.",
        "all 8 annotations come from one image: there is no validation split (it is by image), "
        "so the best model is not chosen on held-out images.")
    spread = AnnotationTable.load_csv(_stack_annotations(tmp_path, range(8)))
    assert data_warnings(spread, 0.25) == (data_warnings(same, 0.25)[1],)
    assert data_warnings(spread, 0.0) == ()


def test_cli_fine_tuning_on_data_that_cannot_validate_warns(tmp_path, capsys):
    from napari_semfocus.cli.main import main

    csv_path = _stack_annotations(tmp_path, [7] * 8)
    code = main(["train", "--annotations", str(csv_path), "--init", "scratch", "--backbone",
                 "mobilenet_v3_small", "--out", str(tmp_path / "run"), "--epochs", "1",
                 "--steps-per-epoch", "1", "--batch-size", "2", "--crop", "64", "64",
                 "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 0, err
    warnings = [line for line in err.splitlines() if line.startswith("semfocus train: warning:")]
    assert warnings == [
        "semfocus train: warning: all 8 annotations have the same score (7): the model cannot "
        "learn to tell sharp from blurred from them.",
        "semfocus train: warning: all 8 annotations come from one image: there is no validation "
        "split (it is by image), so the best model is not chosen on held-out images."]


# ---- crops: bounded up front, never killed for memory (issue 16 item 5) ------------------------
@pytest.mark.parametrize("kw, sentence", [
    ({"crop_hw": (16, 64)}, "crop 16 x 64 is not a height and width of at least 32 pixels."),
    ({"small_crop_hw": (64, 8)}, "crop 64 x 8 is not a height and width of at least 32 pixels."),
    ({"crop_hw": (5000, 5000), "batch_size": 32},
     "a batch of 32 crops of 5000 x 5000 pixels is 800 MP, more than training takes (16 MP); "
     "use smaller crops or batches."),
])
def test_crops_too_small_or_too_large_for_memory_are_one_sentence(kw, sentence):
    with pytest.raises(SemFocusError) as exc:
        config(**kw)
    assert str(exc.value) == sentence


def test_a_crop_larger_than_the_training_frames_is_refused_before_any_work(tmp_path):
    with pytest.raises(SemFocusError) as exc:
        run(tmp_path, crop_hw=(400, 200))  # the frames are 96 x 128; 240 x 320 is padded
    assert str(exc.value) == ("crop 400 x 200 is larger than the training frames (at most 96 x "
                              "128); use a crop of at most 240 x 320 pixels.")
    assert list(tmp_path.iterdir()) == []
    run(tmp_path, crop_hw=(240, 320))  # up to the default tile: small frames are padded


@pytest.mark.parametrize("crop, batch, sentence", [
    (("5000", "5000"), "32", "a batch of 32 crops of 5000 x 5000 pixels is 800 MP, more than "
                             "training takes (16 MP); use smaller crops or batches."),
    (("2000", "2000"), "2", "crop 2000 x 2000 is larger than the training frames (at most 96 x "
                            "128); use a crop of at most 240 x 320 pixels."),
])
def test_cli_train_with_a_crop_too_large_is_one_sentence(tmp_path, capsys, crop, batch, sentence):
    from napari_semfocus.cli.main import main

    csv_path = _stack_annotations(tmp_path, range(8))
    code = main(["train", "--annotations", str(csv_path), "--init", "scratch", "--backbone",
                 "mobilenet_v3_small", "--out", str(tmp_path / "run"), "--epochs", "1",
                 "--batch-size", batch, "--crop", *crop, "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip().splitlines()[-1] == f"semfocus train: error: {sentence}"
    assert not list((tmp_path / "run").glob("*.safetensors"))
