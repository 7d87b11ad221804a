"""Training and fine-tuning FocusNet: one loop for ``semfocus train``, the Fine-tune widget and
the tests.

:func:`train` is a generator of typed updates (:class:`BatchDone`, :class:`EpochDone`,
:class:`Finished`), so a CLI can print a progress bar and a widget can relay them from a worker
thread. ``should_stop()`` is checked between batches; the best model by validation RMSE is kept.
After every epoch ``last.safetensors`` (+ optimiser state) and ``best.safetensors`` are written
atomically to ``out_dir``; ``resume=True`` continues from ``last``. torch (and safetensors'
torch functions) are imported inside the functions that train, so that the widgets can import
the update types and :class:`TrainConfig` without loading torch.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..errors import BrokenModelError, SemFocusError
from ..scoring.checkpoint import load_checkpoint, save_checkpoint
from ..scoring.devices import autocast, resolve_device, resolve_precision
from ..scoring.preprocess import TILE_HW, to_model_input
from ..scoring.scorer import FocusScorer
from .data.labelled import LabelledSet, sample_batch
from .run_folder import remove_stale_temporaries, resume_state, save_optimiser

OPTIMISERS = ("sgd", "adamw")
SELECTIONS = ("best", "last")  # the result: the best epoch on validation, or the last epoch
MIN_CROP_PX = 32  # one feature cell of the trunk
# pixels in one training batch: a step takes ~400 bytes per pixel in bf16 on a CPU, ~600 in
# float32 (measured with resnet18, 4 x 480 x 640), so at most 6-10 GB; the paper's batch
# (32 x 240 x 320) is 2.5 MP
MAX_BATCH_PIXELS = 16_000_000


@dataclass
class TrainConfig:
    epochs: int = 10
    steps_per_epoch: int | None = None  # default: one pass over the training frames
    batch_size: int = 32
    lr: float = 2e-4
    optimiser: str = "sgd"  # the paper's SGD (momentum 0.9) or AdamW
    momentum: float = 0.9
    weight_decay: float = 1e-4
    schedule: str = "cosine"  # "cosine" (with warm-up) or "constant"
    warmup_steps: int = 0
    crop_hw: tuple = TILE_HW  # the paper's 240 x 320 (h x w) random crops
    small_crop_hw: tuple | None = None  # smaller crops for the first epochs (faster on CPU)
    small_crop_epochs: int = 0
    flips: bool = True
    freeze_trunk: bool = False  # the trunk's weights and batch-norm statistics stay as they are
    unfreeze_last: int = 0  # with freeze_trunk: its last this many blocks train (resnet: 1 = layer4)
    trunk_lr_factor: float = 1.0  # the trained trunk's learning rate, relative to the head's
    loss: str = "mse"  # "mse" or "huber"
    # "best": the epoch with the lowest validation RMSE; "last": the last epoch (the end of the
    # schedule), so that a small validation split only decides between it and the parent
    select: str = "best"
    device: str = "auto"
    precision: str = "auto"  # bf16 autocast where the CPU has it (devices.resolve_precision)
    seed: int = 0
    val_max_frames: int | None = 400

    def __post_init__(self):
        if self.optimiser not in OPTIMISERS:
            raise SemFocusError(f"optimiser {self.optimiser!r} is not one of {', '.join(OPTIMISERS)}.")
        for name in ("epochs", "batch_size"):
            if int(getattr(self, name)) < 1:
                raise SemFocusError(f"{name} must be at least 1.")
        if not (math.isfinite(self.lr) and self.lr > 0):  # inf trained one step, then NaN
            raise SemFocusError(f"learning rate {self.lr:g} is not a finite number above 0.")
        if self.select not in SELECTIONS:
            raise SemFocusError(f"select {self.select!r} is not one of {', '.join(SELECTIONS)}.")
        if not (math.isfinite(self.trunk_lr_factor) and self.trunk_lr_factor > 0):
            raise SemFocusError(f"trunk learning-rate factor {self.trunk_lr_factor:g} is not a "
                                "finite number above 0.")
        if int(self.unfreeze_last) < 0:
            raise SemFocusError(f"unfreeze_last {self.unfreeze_last} is not at least 0.")
        self.crop_hw = tuple(self.crop_hw)
        self.small_crop_hw = tuple(self.small_crop_hw) if self.small_crop_hw else None
        for crop in filter(None, (self.crop_hw, self.small_crop_hw)):
            if len(crop) != 2 or min(crop) < MIN_CROP_PX:
                raise SemFocusError(f"crop {' x '.join(map(str, crop))} is not a height and width "
                                    f"of at least {MIN_CROP_PX} pixels.")
            if int(self.batch_size) * crop[0] * crop[1] > MAX_BATCH_PIXELS:
                raise SemFocusError(
                    f"a batch of {self.batch_size} crops of {crop[0]} x {crop[1]} pixels is "
                    f"{self.batch_size * crop[0] * crop[1] / 1e6:.0f} MP, more than training "
                    f"takes ({MAX_BATCH_PIXELS / 1e6:.0f} MP); use smaller crops or batches.")

    def check_crops(self, train_set: LabelledSet) -> None:
        """Refuse crops larger than every training frame (and than the default tile, which
        small frames are padded to): such a crop is padding, memory spent on nothing."""
        hs, ws = zip(*{np.shape(im)[-2:] for im in train_set.images}, strict=True)
        lim = (max(max(hs), TILE_HW[0]), max(max(ws), TILE_HW[1]))
        for crop in filter(None, (self.crop_hw, self.small_crop_hw)):
            if crop[0] > lim[0] or crop[1] > lim[1]:
                raise SemFocusError(f"crop {crop[0]} x {crop[1]} is larger than the training "
                                    f"frames (at most {max(hs)} x {max(ws)}); use a crop of at "
                                    f"most {lim[0]} x {lim[1]} pixels.")


@dataclass
class BatchDone:
    epoch: int
    step: int
    steps: int
    loss: float


def stop_point(batch: BatchDone | None, epochs_done: int) -> str:
    """Where a stop ended training: "stopped at batch 5 of 20 of epoch 1" (the last batch that
    ran), or "stopped after N whole epoch(s)" when it came between epochs."""
    if batch is None or batch.step >= batch.steps:
        return f"stopped after {epochs_done} whole epoch(s)"
    return f"stopped at batch {batch.step} of {batch.steps} of epoch {batch.epoch + 1}"


@dataclass
class EpochDone:
    epoch: int
    epochs: int
    train_loss: float
    val_rmse: float | None
    is_best: bool
    seconds: float


@dataclass
class Finished:
    best_path: Path | None
    best_val_rmse: float | None
    initial_val_rmse: float | None
    history: list = field(default_factory=list)
    stopped: bool = False
    kept_initial: bool = False  # no epoch beat the model as given (train's parent_val_rmse)


def evaluate_rmse(model, data: LabelledSet, device, max_frames: int | None = None,
                 batch_size: int = 32, precision: str = "auto") -> float:
    """RMSE of the model on ``data``, each frame scored as users score it (:func:`predict_frames`)."""
    preds, labels = predict_frames(model, data, device, max_frames, batch_size, precision)
    return float(np.sqrt(np.mean((preds - labels) ** 2)))


def predict_frames(model, data: LabelledSet, device, max_frames=None, batch_size: int = 32,
                   precision: str = "auto"):
    """Scores of (the first ``max_frames`` of) a labelled set, and their labels.

    Every frame is scored by :meth:`FocusScorer.score` (whole frame, structure-weighted tiles,
    the flat-tile rule, the same autocast): the number training picks its best model on is the
    number users see. Frames of one shape are scored together."""
    n = len(data) if not max_frames else min(len(data), max_frames)
    scorer = FocusScorer(model, {}, device=device, precision=precision)
    by_shape: dict = {}
    for i in range(n):
        by_shape.setdefault(np.shape(data.images[i]), []).append(i)
    preds = np.empty(n, dtype=np.float64)
    for idx in by_shape.values():
        for s in range(0, len(idx), batch_size):
            part = idx[s : s + batch_size]
            stack = np.stack([np.asarray(data.images[i]) for i in part])
            preds[part] = scorer.score(stack, data.magnifications[part], batch_size=batch_size)
    return preds, data.labels[:n].astype(np.float64)


def train(model, train_set: LabelledSet, val_set: LabelledSet | None, config: TrainConfig,
          out_dir=None, metadata: dict | None = None, resume: bool = False,
          should_stop: Callable[[], bool] = lambda: False,
          parent_val_rmse: float | None = None) -> Iterator:
    """Train ``model`` in place; yields updates and ends with :class:`Finished`.

    ``parent_val_rmse`` (fine-tuning): the validation RMSE of ``model`` as given, measured by the
    caller. It is epoch 0, the best to beat: only an epoch with a lower RMSE replaces it, and when
    none does the model ends as it was given (``Finished.kept_initial``).

    A map head (:attr:`FocusNet.map_head`, distilled for the weights as given) is taken off
    first: training changes the trunk and head it was distilled for, so the trained model has
    none (its focus maps score every tile's crop) unless it ends as it was given."""
    import torch  # lazily, as the module docstring says

    config.check_crops(train_set)  # before any work
    map_head = _take_map_head(model)
    device = resolve_device(config.device)
    # CUDA trains in bf16 autocast (no loss scaling needed); the CPU in bf16 where it has it
    precision = "bf16" if device.type == "cuda" else resolve_precision(device, config.precision)
    torch.manual_seed(config.seed)
    model.to(device).to(memory_format=torch.channels_last)
    params = _param_groups(model, config)
    if config.optimiser == "sgd":
        opt = torch.optim.SGD(params, lr=config.lr, momentum=config.momentum,
                              weight_decay=config.weight_decay)
    else:
        opt = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    steps = int(config.steps_per_epoch or max(1, math.ceil(len(train_set) / config.batch_size)))
    total_steps = steps * config.epochs
    out_dir = Path(out_dir) if out_dir else None
    meta = dict(metadata or {})
    meta["training"] = {**asdict(config), "train_frames": len(train_set),
                        "val_frames": 0 if val_set is None else len(val_set)}

    if out_dir:
        remove_stale_temporaries(out_dir)
    parent_state = None if parent_val_rmse is None else _state_copy(model)
    start_epoch, history, best = 0, [], math.inf
    if resume and out_dir and (out_dir / "last.safetensors").is_file():
        start_epoch, history, best = resume_state(model, opt, out_dir, device)
    elif parent_val_rmse is not None:
        best = float(parent_val_rmse)
    initial = parent_val_rmse
    if initial is None and val_set is not None and start_epoch == 0:
        initial = evaluate_rmse(model, val_set, device, config.val_max_frames,
                                precision=config.precision)
    best_path = out_dir / "best.safetensors" if out_dir else None
    best_state = None
    stopped = False
    for epoch in range(start_epoch, config.epochs):
        t0 = time.time()
        model.train()
        if config.freeze_trunk:
            model.trunk.eval()  # keep the trunk's batch-norm statistics as they were
        crop = (config.small_crop_hw if config.small_crop_hw and epoch < config.small_crop_epochs
                else config.crop_hw)
        rng = np.random.default_rng([config.seed, epoch])
        losses = []
        for step in range(steps):
            if should_stop():
                stopped = True
                break
            lr = _lr_at(config, epoch * steps + step, total_steps)
            for g in opt.param_groups:
                g["lr"] = lr * g.get("lr_factor", 1.0)
            idx = rng.integers(0, len(train_set), config.batch_size)
            tiles, mags, labels = sample_batch(train_set, idx, crop, rng, config.flips)
            loss = _step(model, opt, tiles, mags, labels, device, precision, config.loss)
            if not math.isfinite(loss) and epoch == start_epoch and step == 0:
                # computed before any update: the model as it came, not the learning rate
                source = getattr(model, "source", None)
                raise BrokenModelError(
                    f"training stopped: the loss was {loss} at the first step, before any "
                    f"update, so the model{' ' + source if source else ''} gives non-finite "
                    "scores (a damaged or edited checkpoint); use another model.")
            if not math.isfinite(loss):
                raise SemFocusError(
                    f"training stopped: the loss became {loss} at epoch {epoch + 1}, step "
                    f"{step + 1} (learning rate {lr:g} too high?); no model of this epoch was "
                    f"saved.")
            losses.append(loss)
            yield BatchDone(epoch, step + 1, steps, loss)
        if not losses:
            break
        try:
            val = None if val_set is None else evaluate_rmse(model, val_set, device,
                                                             config.val_max_frames,
                                                             precision=config.precision)
        except BrokenModelError:  # training broke the model, not its file: said below
            val = float("nan")
        if val is not None and not math.isfinite(val):
            raise SemFocusError(f"training stopped: the validation RMSE became {val} at epoch "
                                f"{epoch + 1}; no model of this epoch was saved.")
        # with select "last" only the last epoch (or the one stopped) may replace the parent
        candidate = config.select == "best" or stopped or epoch == config.epochs - 1
        is_best = candidate and (val is None or val < best)
        if is_best:
            best = val if val is not None else best
            best_state = _state_copy(model)
        record = {"epoch": epoch + 1, "train_loss": float(np.mean(losses)), "val_rmse": val,
                  "crop_hw": list(crop), "seconds": round(time.time() - t0, 1)}
        history.append(record)
        if out_dir:
            meta_epoch = {**meta, "history": history, "initial_val_rmse": initial,
                          "metrics": {"val_rmse": val, "best_val_rmse": None if best == math.inf else best}}
            # the optimiser state first, then the model: a run killed in between resumes
            # from the model's own epoch (its history), never from a model behind its state
            save_optimiser(opt, out_dir, epoch + 1, history, best)
            save_checkpoint(model, out_dir / "last.safetensors", meta_epoch)
            if is_best:
                save_checkpoint(model, best_path, meta_epoch)
        yield EpochDone(epoch + 1, config.epochs, record["train_loss"], val, is_best, record["seconds"])
        if stopped:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    elif start_epoch and best_path is not None and best_path.is_file():
        # resumed and no epoch beat the saved best: the result is that best, not the last model
        model.load_state_dict(load_checkpoint(best_path)[0].state_dict())
        best_state = {}  # the saved best is the result
    elif parent_state is not None:
        model.load_state_dict(parent_state)  # no epoch beat the model as given: it is the result
    model.eval()
    kept_initial = parent_state is not None and best_state is None
    if kept_initial and map_head is not None:  # the model as given: its map head fits again
        model.map_head, model.map_head_of, model.map_head_info = map_head
        model.map_head.to(next(model.parameters()).device)
    yield Finished(best_path if (out_dir and best_state is not None) else None,
                   None if best == math.inf else best, initial, history, stopped,
                   kept_initial=kept_initial)


def _take_map_head(model):
    """Remove the model's map head; returns ``(head, distilled_for, info)`` or None."""
    head = getattr(model, "map_head", None)
    if head is None:
        return None
    taken = (head, model.map_head_of, model.map_head_info)
    model.drop_map_head()
    return taken


def _param_groups(model, config: TrainConfig) -> list[dict]:
    """The optimiser's parameter groups: the trunk's trained parameters (with ``freeze_trunk``,
    only those of its last ``unfreeze_last`` blocks) at ``trunk_lr_factor`` times the learning
    rate, the rest of the model at the learning rate. Frozen parameters get no gradient."""
    trunk = list(model.trunk.children())
    frozen = trunk[: len(trunk) - int(config.unfreeze_last)] if config.freeze_trunk else []
    for block in frozen:
        for p in block.parameters():
            p.requires_grad_(False)
    trunk_ids = {id(p) for p in model.trunk.parameters()}
    body = [p for p in model.trunk.parameters() if p.requires_grad]
    rest = [p for p in model.parameters() if p.requires_grad and id(p) not in trunk_ids]
    return [g for g in ({"params": rest, "lr_factor": 1.0},
                        {"params": body, "lr_factor": float(config.trunk_lr_factor)}) if g["params"]]


def _state_copy(model) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _step(model, opt, tiles, mags, labels, device, precision: str, loss_kind: str) -> float:
    import torch  # lazily, as the module docstring says

    x = to_model_input(tiles).to(device, non_blocking=True)
    m = torch.from_numpy(mags).to(device)
    y = torch.from_numpy(np.asarray(labels, dtype=np.float32)).to(device)
    opt.zero_grad(set_to_none=True)
    with autocast(device, precision):
        pred = model(x, m)
    pred = pred.float()
    loss = (torch.nn.functional.huber_loss(pred, y, delta=1.0) if loss_kind == "huber"
            else torch.nn.functional.mse_loss(pred, y))
    loss.backward()
    opt.step()
    return float(loss.detach())


def _lr_at(config: TrainConfig, step: int, total: int) -> float:
    if config.schedule == "constant":
        return config.lr
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    t = (step - config.warmup_steps) / max(1, total - config.warmup_steps)
    return config.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(1.0, t))))
