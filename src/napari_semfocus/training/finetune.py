"""Fine-tuning a focus model on expert annotations: the one implementation behind the Fine-tune
widget and ``semfocus train --annotations CSV`` (no Qt).

:func:`finetune` is a generator: it loads the parent model (the shipped default or a checkpoint
file), builds a :class:`~.data.labelled.LabelledSet` from the annotations, splits it by
image (never by crop), yields :class:`Prepared` and :class:`Evaluated` (validation RMSE of the
parent), then every update of :func:`.loop.train` (``BatchDone``,
``EpochDone``, ``Finished``), and returns a :class:`FineTuneResult` holding the best model and
the metadata of its checkpoint: the parent model, the annotations used, the validation RMSE
before and after. :meth:`FineTuneResult.save` writes it atomically (safetensors + metadata).

The parent is epoch 0: an epoch replaces it only with a lower validation RMSE on the same split,
and when none does the result *is* the parent (``kept_parent``; nothing to save). The defaults
(:func:`finetune_config`) were chosen with ``benchmarks/bench_finetune.py``.

    >>> gen = finetune(AnnotationTable.load_csv("scores.csv"), TrainConfig(epochs=5, lr=1e-3))
    >>> result = run_to_end(gen, print)                  # napari_semfocus.progress.run_to_end
    >>> result.save("my-lab.safetensors")
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..errors import SemFocusError
from ..scoring.checkpoint import load_checkpoint, model_file, read_metadata, save_checkpoint
from ..scoring.checkpoint_schema import check_output_margin
from ..scoring.devices import describe_device, resolve_device
from .data.annotations import MIN_TRAIN, AnnotationTable
from .loop import Finished, TrainConfig, evaluate_rmse, train
from .recalibrate import frame_scores, needs_fallback, recalibrate, shift_frames

MIN_STEPS_PER_EPOCH = 20  # small annotation sets: an epoch is still at least this many batches

# The fine-tuning recipe of ``semfocus train --annotations`` and the Fine-tune widget (one place;
# docs/fine-tuning.md gives the benchmark that chose it): AdamW on the head and the trunk's last
# block (layer4) at a fifth of the head's learning rate, the rest of the trunk and every
# batch-norm statistic frozen; the last epoch (the end of the cosine schedule) is the result when
# it beats the parent on validation (a split of a few images is too noisy to pick an epoch).
FINETUNE_DEFAULTS = {"epochs": 10, "optimiser": "adamw", "lr": 5e-4, "batch_size": 16,
                     "freeze_trunk": True, "unfreeze_last": 1, "trunk_lr_factor": 0.2,
                     "select": "last", "crop_hw": (240, 320), "flips": True}
VAL_FRACTION = 0.25  # share of the annotated images held out to validate


def finetune_config(**settings) -> TrainConfig:
    """The :class:`TrainConfig` of fine-tuning: :data:`FINETUNE_DEFAULTS`, then ``settings``
    (those given as None keep the default)."""
    given = {k: v for k, v in settings.items() if v is not None}
    return TrainConfig(**{**FINETUNE_DEFAULTS, **given})


@dataclass(frozen=True)
class Prepared:
    """Data and model are ready; training is about to start."""

    parent: str
    device_name: str
    train_frames: int
    val_frames: int
    train_images: tuple[str, ...]
    val_images: tuple[str, ...]
    steps_per_epoch: int
    warnings: tuple[str, ...] = ()  # why the validation figures will mean little (see data_warnings)


@dataclass(frozen=True)
class Evaluated:
    """Validation RMSE of the parent model (None without a validation split)."""

    val_rmse: float | None


@dataclass
class FineTuneResult:
    model: object  # the best FocusNet (in eval mode); the parent's weights when nothing ran
    metadata: dict
    val_rmse_before: float | None
    val_rmse_after: float | None
    trained: bool  # at least one batch ran
    stopped: bool
    history: list = field(default_factory=list)
    kept_parent: bool = False  # no epoch beat the parent on validation: the model is the parent

    @property
    def why_parent_kept(self) -> str:
        """Why the parent was kept, in the words of the selection rule used: "the last epoch's
        validation RMSE L did not beat the parent's B" (select "last"), or "no epoch beat the
        parent's validation RMSE B (best epoch X)" (select "best")."""
        b = self.val_rmse_before
        if self.metadata.get("training", {}).get("select") == "last" and self.history:
            return (f"the last epoch's validation RMSE {self.history[-1]['val_rmse']:.3f} did not "
                    f"beat the parent's {b:.3f}")
        best = min((h["val_rmse"] for h in self.history), default=b)
        return f"no epoch beat the parent's validation RMSE {b:.3f} (best epoch {best:.3f})"

    @property
    def interval_note(self) -> str | None:
        """Why the model's score interval is not calibrated on its own validation split (the
        parent's widened, or none), or None when it is (:mod:`.recalibrate`)."""
        return self.metadata.get("fine_tuning", {}).get("interval_note")

    @property
    def worse_than_parent(self) -> bool:
        """The model scored worse than its parent on validation (only without keep_parent)."""
        b, a = self.val_rmse_before, self.val_rmse_after
        return a is not None and b is not None and a > b

    def save(self, path) -> Path:
        """Write the model and its metadata to ``path`` (.safetensors), atomically."""
        if not self.trained:
            raise SemFocusError("nothing was trained: there is no fine-tuned model to save.")
        if self.kept_parent:
            raise SemFocusError(f"{self.why_parent_kept}: the result is the parent model "
                                f"itself, there is no fine-tuned model to save.")
        return save_checkpoint(self.model, path, self.metadata)


def load_parent(init: str = "default", backbone: str = "resnet18", use_magnification: bool = True,
                output_margin: float | None = None):
    """``(model, info)`` for ``init``: 'default' (the shipped model), a checkpoint path, or
    'scratch' (an untrained FocusNet of ``backbone``); ``output_margin`` overrides the model's
    (see :class:`~napari_semfocus.scoring.model.FocusNet`)."""
    if init == "scratch":
        from ..scoring.model import FocusNet  # lazily: it imports torch (see loop's docstring)

        model, info = FocusNet(backbone, use_magnification=use_magnification), {"parent": None}
    else:
        path = model_file(init)
        model, meta = load_checkpoint(path)
        info = {"parent": path.name, "parent_path": str(path),
                "parent_version": meta.get("model_version"), "parent_metrics": meta.get("metrics")}
    if output_margin is not None:
        model.output_margin = check_output_margin(output_margin)
    return model, info


# A validation split below any of these says little about other images (docs/fine-tuning.md)
MIN_VAL_FRAMES = 20
MIN_VAL_IMAGES = 3
MIN_VAL_SPREAD = 1.0  # standard deviation of the validation scores, in score points


def data_warnings(annotations: AnnotationTable, val_fraction: float,
                  validation=None) -> tuple[str, ...]:
    """Sentences for annotations that train but cannot validate: one score for every frame
    (nothing to rank, an RMSE that says nothing), every frame from one image (the validation
    split is by image, so there is none), or a ``validation`` split (the LabelledSet held out)
    too small to mean much: fewer than :data:`MIN_VAL_FRAMES` frames or :data:`MIN_VAL_IMAGES`
    images, or scores spread less than :data:`MIN_VAL_SPREAD`. The CLI prints them; the widget
    shows them."""
    out = []
    scores = {float(r.score) for r in annotations.rows}
    if len(annotations) >= 2 and len(scores) == 1:
        out.append(f"all {len(annotations)} annotations have the same score "
                   f"({scores.pop():g}): the model cannot learn to tell sharp from blurred "
                   f"from them.")
    if len(annotations.images()) < 2 and val_fraction > 0:
        out.append(f"all {len(annotations)} annotations come from one image: there is no "
                   f"validation split (it is by image), so the best model is not chosen on "
                   f"held-out images.")
    if validation is not None:
        out += _small_validation(validation)
    return tuple(out)


def _small_validation(validation) -> list[str]:
    n, k = len(validation), len(set(validation.groups.tolist()))
    spread = float(np.std(validation.labels))
    small = ([f"{n} frame(s) (fewer than {MIN_VAL_FRAMES})"] if n < MIN_VAL_FRAMES else []) + (
        [f"{k} image(s) (fewer than {MIN_VAL_IMAGES})"] if k < MIN_VAL_IMAGES else []) + (
        [f"scores spread by {spread:.2f} points (standard deviation below {MIN_VAL_SPREAD:g})"]
        if spread < MIN_VAL_SPREAD else [])
    if not small:
        return []
    return [f"the validation split is too small to mean much: {', '.join(small)}; its RMSE, and "
            f"so the choice between the parent and the fine-tuned model, may not hold for other "
            f"images: annotate more images or raise the validation fraction."]


def split(data, val_fraction: float, seed: int = 0):
    """(train, validation or None): by image; no validation below two images or fraction 0."""
    if val_fraction <= 0 or len(np.unique(data.groups)) < 2:
        return data, None
    return data.split_by_group(val_fraction, seed=seed)


def finetune(annotations: AnnotationTable, config: TrainConfig, init: str = "default",
             val_fraction: float = VAL_FRACTION, frames: Mapping | None = None, out_dir=None,
             resume: bool = False, source=None, should_stop: Callable[[], bool] = lambda: False,
             backbone: str = "resnet18", use_magnification: bool = True,
             output_margin: float | None = None,
             keep_parent: bool = True) -> Generator[object, None, FineTuneResult]:
    """Fine-tune ``init`` on ``annotations`` (frames of open layers in ``frames``, the rest read
    from their files); ``source``: the CSV the annotations came from (for the metadata).
    ``out_dir``: where ``train`` keeps last/best checkpoints each epoch (None: memory only).
    ``keep_parent``: the parent's validation RMSE is the best to beat (False: the best epoch is
    the result even when it is worse than the parent)."""
    if len(annotations) < MIN_TRAIN:
        raise SemFocusError(f"only {len(annotations)} annotation(s): fine-tuning needs at least "
                            f"{MIN_TRAIN}.")
    if not 0 <= val_fraction < 1:
        raise SemFocusError(f"validation fraction {val_fraction} is not in [0, 1).")
    device = resolve_device(config.device)
    data = annotations.labelled_set(frames)
    train_set, val_set = split(data, val_fraction, config.seed)
    model, parent = load_parent(init, backbone, use_magnification, output_margin)
    if not config.steps_per_epoch:
        steps = max(MIN_STEPS_PER_EPOCH, math.ceil(len(train_set) / config.batch_size))
        config = TrainConfig(**{**asdict(config), "steps_per_epoch": steps})
    val_images = () if val_set is None else tuple(sorted(set(val_set.groups.tolist())))
    train_images = tuple(sorted(set(train_set.groups.tolist())))
    yield Prepared(parent["parent"] or "scratch", describe_device(device), len(train_set),
                   0 if val_set is None else len(val_set), train_images, val_images,
                   int(config.steps_per_epoch), data_warnings(annotations, val_fraction, val_set))
    before = None
    if val_set is not None:
        model.to(device)
        before = evaluate_rmse(model, val_set, device, config.val_max_frames)
    yield Evaluated(before)
    parent_interval = (read_metadata(parent["parent_path"]).get("interval")
                       if parent.get("parent_path") else None)
    parent_scores = (frame_scores(model, data, device, shift_frames(data))[0]
                     if parent_interval and needs_fallback(parent_interval, val_set) else None)

    provenance = {"kind": "fine-tune", **parent,
                  "annotations": annotations.describe(source)}
    finished = None
    for update in train(model, train_set, val_set, config, out_dir, {"provenance": provenance},
                        resume=resume, should_stop=should_stop,
                        parent_val_rmse=before if keep_parent else None):
        if isinstance(update, Finished):
            finished = update
        yield update
    history = list(finished.history) if finished else []
    trained = bool(history)
    after = finished.best_val_rmse if (finished and trained and val_set is not None) else None
    kept = bool(trained and finished.kept_initial)
    model.eval()
    # the parent kept: its own interval; else recalibrated (or the parent's widened, with a note)
    recal = (recalibrate(model, val_set, device, parent_interval, parent_scores, data)
             if trained and not kept else None)
    metadata = {
        "provenance": provenance,
        "fine_tuning": {
            "val_rmse_before": before, "val_rmse_after": after, "stopped": bool(finished and finished.stopped),
            "kept_parent": kept, "keep_parent": keep_parent,
            "validation_fraction": val_fraction, "training_images": list(train_images),
            "validation_images": list(val_images), "train_frames": len(train_set),
            "val_frames": 0 if val_set is None else len(val_set),
            "interval_note": recal.note if recal else None,
        },
        "training": asdict(config),
        "history": history,
        "initial_val_rmse": before,
        "metrics": {"val_rmse": after, "best_val_rmse": after},
    }
    if recal and recal.interval:
        metadata["interval"] = recal.interval
    return FineTuneResult(model, metadata, before, after, trained,
                          bool(finished and finished.stopped), history, kept)
