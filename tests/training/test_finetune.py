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
from napari_semfocus.training.finetune import Evaluated, Prepared, finetune
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
