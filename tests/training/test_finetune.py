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
    FineTuneResult,
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
    stack = np.stack([frames[key][0] for key in list(frames)[:5]])
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
    assert str(err.value) == (f"the last epoch's validation RMSE {epochs[0].val_rmse:.3f} did "
                              f"not beat the parent's {before:.3f}: the result is the parent "
                              f"model itself, there is no fine-tuned model to save.")
    assert not (tmp_path / "x.safetensors").exists()

    # asked not to keep the parent, the best (worse) epoch is the result, and says so
    worse = drive(finetune(table, config, frames=frames, keep_parent=False))
    assert not worse.kept_parent and worse.worse_than_parent
    assert worse.val_rmse_after == pytest.approx(epochs[0].val_rmse, rel=1e-3)  # same seed


def test_why_the_parent_was_kept_follows_the_selection_rule():
    """select "last": an earlier epoch may have beaten the parent without being used, so the
    sentence names the last epoch; select "best": no epoch beat it, and the best is given."""
    history = [{"val_rmse": 0.9}, {"val_rmse": 1.4}]

    def result(select):
        return FineTuneResult(model=None, metadata={"training": {"select": select}},
                              val_rmse_before=1.0, val_rmse_after=1.0, trained=True,
                              stopped=False, history=history, kept_parent=True)

    assert result("last").why_parent_kept == (
        "the last epoch's validation RMSE 1.400 did not beat the parent's 1.000")
    assert result("best").why_parent_kept == (
        "no epoch beat the parent's validation RMSE 1.000 (best epoch 0.900)")


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


# ---- which parameters fine-tuning trains --------------------------------------------------------
def _random_set(n=8, seed=0):
    rng = np.random.default_rng(seed)
    return LabelledSet([rng.random((96, 128), dtype=np.float32) for _ in range(n)],
                       np.linspace(0, 10, n), np.full(n, 5000.0),
                       np.array([f"img{i % 4}" for i in range(n)]))


def _trained(config):
    """A scratch FocusNet before and after ``config``'s steps on random frames (no validation)."""
    from napari_semfocus.scoring.model import FocusNet
    from napari_semfocus.training.loop import train

    torch.manual_seed(0)
    model = FocusNet("resnet18")
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    for _ in train(model, _random_set(), None, config):
        pass
    return before, model.state_dict()


def _adamw_config(lr: float, factor: float, steps: int, freeze_trunk: bool) -> TrainConfig:
    """AdamW at a constant rate without weight decay, so that a parameter moves at most its
    rate per step; layer4 trained (unfreeze_last=1) at ``factor`` times the head's rate."""
    return TrainConfig(epochs=1, steps_per_epoch=steps, batch_size=2, lr=lr, optimiser="adamw",
                       schedule="constant", weight_decay=0.0, crop_hw=(64, 64),
                       freeze_trunk=freeze_trunk, unfreeze_last=1, trunk_lr_factor=factor,
                       device="cpu", precision="float32")


def test_unfreeze_last_trains_only_the_last_block_and_the_head_at_their_rates():
    lr, factor, steps = 1e-3, 0.01, 3
    before, after = _trained(_adamw_config(lr, factor, steps, freeze_trunk=True))
    change = {k: float((after[k].float() - v.float()).abs().max()) for k, v in before.items()}
    stats = ("running_mean", "running_var", "num_batches_tracked")
    for k, c in change.items():
        if k.endswith(stats):  # batch-norm statistics stay, in the trained block too
            assert c == 0, k
        elif k.startswith("trunk.7."):  # layer4: trained, each step at most lr * factor (AdamW)
            assert c <= steps * lr * factor * 1.01, k
        elif k.startswith("trunk."):  # the blocks before it: frozen
            assert c == 0, k
    layer4 = [c for k, c in change.items() if k.startswith("trunk.7.") and not k.endswith(stats)]
    head = [c for k, c in change.items() if k.startswith("head.")]
    assert min(layer4) > 0 and max(layer4) < 0.1 * max(head)


def test_without_freeze_trunk_the_whole_trunk_trains_at_its_factor():
    lr, factor, steps = 1e-3, 0.1, 2
    before, after = _trained(_adamw_config(lr, factor, steps, freeze_trunk=False))
    weights = [k for k in before if k.startswith("trunk.") and k.endswith(".weight")]
    change = {k: float((after[k] - before[k]).abs().max()) for k in weights}
    assert all(0 < c <= steps * lr * factor * 1.01 for c in change.values()), change
    assert after["trunk.1.running_mean"].ne(before["trunk.1.running_mean"]).any()  # trunk in train mode


def test_bad_trunk_settings_are_refused():
    with pytest.raises(SemFocusError,
                       match=r"^trunk learning-rate factor 0 is not a finite number above 0\.$"):
        TrainConfig(trunk_lr_factor=0)
    with pytest.raises(SemFocusError, match="unfreeze_last"):
        TrainConfig(unfreeze_last=-1)


@pytest.mark.parametrize("parent_rmse", [1e9, 0.0])
def test_select_last_lets_only_the_last_epoch_replace_the_parent(parent_rmse, tmp_path):
    from napari_semfocus.scoring.model import FocusNet
    from napari_semfocus.training.loop import train

    torch.manual_seed(0)
    model = FocusNet("resnet18")
    parent = {k: v.detach().clone() for k, v in model.state_dict().items()}
    config = TrainConfig(epochs=3, steps_per_epoch=1, batch_size=2, lr=1e-3, optimiser="adamw",
                         crop_hw=(64, 64), freeze_trunk=True, select="last", device="cpu")
    updates = list(train(model, _random_set(), _random_set(4, seed=1), config, tmp_path,
                         parent_val_rmse=parent_rmse))
    epochs = [u for u in updates if isinstance(u, EpochDone)]
    finished = updates[-1]
    last, _ = load_checkpoint(tmp_path / "last.safetensors")
    if parent_rmse:  # every epoch beats this parent, yet only the last one is chosen
        assert [e.is_best for e in epochs] == [False, False, True]
        assert not finished.kept_initial and finished.best_val_rmse == epochs[-1].val_rmse
        expected = last.state_dict()
    else:  # the last epoch does not beat it: the parent is the result, no best.safetensors
        assert not any(e.is_best for e in epochs) and finished.kept_initial
        assert not (tmp_path / "best.safetensors").exists()
        expected = parent
    for k, v in model.state_dict().items():
        assert torch.equal(v.cpu(), expected[k].cpu()), k
    with pytest.raises(SemFocusError, match="select"):
        TrainConfig(select="first")
