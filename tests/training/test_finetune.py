"""Fine-tuning on expert annotations (core and CLI): ``annotations`` and ``finetune``.

The main test teaches the shipped default model a lab whose experts score blurred images 1.5
points harsher than the project's scale, on real SEM images from the shared pool: the validation
RMSE against the experts' scores (validation images held out, split by image) must drop clearly,
and the saved checkpoint must reload and reproduce the fine-tuned model's scores.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_semfocus.errors import SemFocusError
from napari_semfocus.progress import run_to_end as drive
from napari_semfocus.scoring.checkpoint import default_model_path, load_checkpoint, read_metadata
from napari_semfocus.scoring.scorer import FocusScorer
from napari_semfocus.training.data.annotations import MIN_TRAIN, Annotation, AnnotationTable
from napari_semfocus.training.data.labelled import LabelledSet
from napari_semfocus.training.finetune import (
    Evaluated,
    Prepared,
    data_warnings,
    finetune,
    finetune_config,
)
from napari_semfocus.training.loop import BatchDone, EpochDone, Finished, TrainConfig

from ..helpers import needs_default_model


# ---- the "done when" test -------------------------------------------------------------------
@pytest.mark.slow
@needs_default_model
def test_finetune_default_model_learns_a_harsher_lab(expert_set, tmp_path):

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


@needs_default_model
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


# ---- the parent is kept unless an epoch beats it ------------------------------------------------
SMALL_VALIDATION = (
    "the validation split is too small to mean much: 10 frame(s) (fewer than 20), 2 image(s) "
    "(fewer than 3); its RMSE, and so the choice between the parent and the fine-tuned model, may "
    "not hold for other images: annotate more images or raise the validation fraction.")


@needs_default_model
def test_the_parent_is_kept_when_no_epoch_beats_it(expert_set, tmp_path):
    table, frames = expert_set
    # a learning rate far too high: every epoch is worse than the parent on validation
    config = finetune_config(epochs=1, steps_per_epoch=2, batch_size=4, lr=0.1,
                             crop_hw=(96, 128), device="cpu")
    updates = []
    result = drive(finetune(table, config, frames=frames), updates.append)
    before = result.val_rmse_before
    epochs = [u for u in updates if isinstance(u, EpochDone)]
    assert len(epochs) == 1 and epochs[0].val_rmse > before and not epochs[0].is_best
    assert updates[0].warnings == (SMALL_VALIDATION,)  # 2 held-out images, 10 frames
    assert result.trained and result.kept_parent and not result.worse_than_parent
    assert result.val_rmse_after == before and result.metadata["fine_tuning"]["kept_parent"]
    parent, _ = load_checkpoint(default_model_path())
    for k, v in parent.state_dict().items():
        assert torch.equal(result.model.state_dict()[k].cpu(), v), k
    with pytest.raises(SemFocusError) as err:
        result.save(tmp_path / "x.safetensors")
    assert str(err.value) == (f"no epoch beat the parent's validation RMSE ({before:.3f}): the "
                              f"result is the parent model itself, there is no fine-tuned model "
                              f"to save.")
    assert not (tmp_path / "x.safetensors").exists()

    # asked not to keep the parent, the best (worse) epoch is the result, and says so
    worse = drive(finetune(table, config, frames=frames, keep_parent=False))
    assert not worse.kept_parent and worse.worse_than_parent
    assert worse.val_rmse_after == pytest.approx(epochs[0].val_rmse, rel=1e-3)  # same seed


def _validation(labels, images):
    n = len(labels)
    return LabelledSet([np.zeros((8, 8), np.float32)] * n, np.array(labels, float),
                       np.full(n, 5000.0), np.array([f"img{i % images}" for i in range(n)]))


def test_a_small_validation_split_is_a_warning_that_states_the_rule():
    table = AnnotationTable(Annotation(f"img{i % 4}", i, 5000, i % 10) for i in range(40))
    assert data_warnings(table, 0.25, _validation(np.arange(10) % 5 * 2, 2)) == (SMALL_VALIDATION,)
    assert data_warnings(table, 0.25, _validation([7.0] * 30 + [8.0], 4)) == (
        "the validation split is too small to mean much: scores spread by 0.18 points (standard "
        "deviation below 1); its RMSE, and so the choice between the parent and the fine-tuned "
        "model, may not hold for other images: annotate more images or raise the validation "
        "fraction.",)
    assert data_warnings(table, 0.25, _validation(np.arange(20) % 10, 3)) == ()  # big enough
    assert data_warnings(table, 0.25) == ()  # no split given: nothing to say about it
