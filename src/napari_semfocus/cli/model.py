"""``semfocus`` subcommands about models: make-dataset, train (and fine-tune: the job of the
Fine-tune widget), evaluate, compare."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from ..errors import SemFocusError, check_whole_number
from ..jobs.finetune import FineTuneSettings, finetune_job
from ..progress import run_to_end
from ..scoring.devices import DEVICE_CHOICES
from ..scoring.model import BACKBONES
from ..scoring.scorer import FocusScorer
from ..training.compare import compare, parse_candidate
from ..training.compare import write_report as write_comparison
from ..training.data.annotations import AnnotationTable
from ..training.data.dataset import make_dataset
from ..training.data.labelled import LabelledSet
from ..training.evaluation import evaluate_manifest
from ..training.evaluation import write_report as write_evaluation
from ..training.finetune import (
    FINETUNE_DEFAULTS,
    VAL_FRACTION,
    Evaluated,
    Prepared,
    finetune_config,
    load_parent,
)
from ..training.loop import (
    OPTIMISERS,
    SELECTIONS,
    BatchDone,
    EpochDone,
    Finished,
    TrainConfig,
    train,
)
from ..training.run_folder import check_out_dir
from .common import add_precision_arg, chosen_precision, eprint, progress_bar


def register(sub) -> None:
    """Add this module's subcommands to the ``semfocus`` parser."""
    p = sub.add_parser("make-dataset", help="make labelled training/validation data from SEM images")
    p.add_argument("--pool", required=True, help="folder of sharp SEM images with manifest.csv")
    p.add_argument("--manifest", default=None,
                   help="the pool's manifest CSV, if not DIR/manifest.csv (columns: path, and "
                        "optionally magnification, databar_rows_bottom, group, min_factor, "
                        "excluded, split)")
    p.add_argument("--out", required=True)
    p.add_argument("--n-train", type=int, default=12000)
    p.add_argument("--n-val", type=int, default=800)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_make_dataset)

    p = sub.add_parser("train", help="train or fine-tune a focus model")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--dataset", help="folder written by make-dataset")
    src.add_argument("--annotations", help="CSV with path,magnification,score (fine-tuning)")
    p.add_argument("--init", default=None,
                   help="'scratch', 'default' (the shipped model) or a checkpoint file "
                        "(default: scratch with --dataset, default with --annotations)")
    p.add_argument("--backbone", default="resnet18", choices=BACKBONES)
    p.add_argument("--no-magnification", action="store_true", help="train without the magnification input")
    p.add_argument("--output-margin", type=float,
                   help="score = (10 + 2 margin) sigmoid(z) - margin, clipped to 0..10 when scoring "
                        "(default: 0.5 from scratch, the init model's own otherwise)")
    p.add_argument("--out", required=True, help="folder for last/best checkpoints")
    add_recipe_args(p)
    p.add_argument("--freeze-trunk", action=argparse.BooleanOptionalAction,
                   help="keep the trunk (its batch-norm statistics too) except its last "
                        "--unfreeze-last blocks (default: with --annotations, "
                        f"{'yes' if FINETUNE_DEFAULTS['freeze_trunk'] else 'no'}; otherwise no)")
    p.add_argument("--unfreeze-last", type=int, metavar="N",
                   help="with --freeze-trunk: train the trunk's last N blocks all the same, with "
                        "its batch-norm statistics kept (resnet: 1 = layer4; default: with "
                        f"--annotations, {FINETUNE_DEFAULTS['unfreeze_last']}; otherwise 0)")
    p.add_argument("--trunk-lr-factor", type=float, metavar="F",
                   help="the trained trunk's learning rate is F times --lr (default: with "
                        f"--annotations, {FINETUNE_DEFAULTS['trunk_lr_factor']:g}; "
                        f"otherwise 1)")
    p.add_argument("--select", choices=SELECTIONS,
                   help="the result: 'best' epoch on validation or the 'last' epoch (either only "
                        "when it beats the parent) (default: with --annotations, "
                        f"{FINETUNE_DEFAULTS['select']}; otherwise best)")
    p.add_argument("--keep-parent", action=argparse.BooleanOptionalAction, default=True,
                   help="with --annotations: the parent stays the result unless the epoch "
                        "--select picks beats its validation RMSE (default: yes)")
    p.add_argument("--val-fraction", type=float, default=VAL_FRACTION,
                   help=f"with --annotations: share of the images held out (default {VAL_FRACTION:g})")
    p.add_argument("--val-max-frames", type=int, default=400)
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.safetensors")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the checkpoints an earlier run left in OUT")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="RMSE, Spearman, AUC of a model and the classical measures")
    p.add_argument("--manifest", required=True, help="CSV with path,magnification,label[,series]")
    p.add_argument("--checkpoint", help="model file; default: the shipped model")
    p.add_argument("--device", default="auto", choices=DEVICE_CHOICES)
    add_precision_arg(p)
    p.add_argument("--no-classical", action="store_true", help="skip the classical measures")
    p.add_argument("--output", help="report path prefix: writes PREFIX.json and PREFIX.md")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("compare", help="train candidate backbones with one recipe and tabulate them")
    p.add_argument("--dataset", required=True, help="folder written by make-dataset")
    p.add_argument("--out", required=True, help="folder for each candidate's checkpoints")
    p.add_argument("--candidates", nargs="+", default=[*BACKBONES, "resnet18/no-mag"],
                   help="backbones; BACKBONE/no-mag is the network without the magnification input")
    add_recipe_args(p)
    p.add_argument("--val-max-frames", type=int, default=None,
                   help="judge on a fixed random subset of the validation frames")
    p.add_argument("--target-precision", type=float, default=0.95, help="gate target precision")
    p.add_argument("--accept-score", type=float, default=7.0, help="gate: acceptable when label >= this")
    p.add_argument("--retrain", action="store_true", help="train again even where OUT/<candidate> has a model")
    p.add_argument("--speed-batch", type=int, default=32,
                   help="tiles per batch when measuring images/s and memory (default 32)")
    p.add_argument("--output", help="report path prefix: writes PREFIX.json and PREFIX.md")
    p.set_defaults(func=cmd_compare)


def add_recipe_args(p) -> None:
    """The training-recipe options shared by ``train`` and ``compare``; those left out take
    :class:`TrainConfig`'s defaults, or :data:`FINETUNE_DEFAULTS` when fine-tuning."""
    base, ft = TrainConfig(), FINETUNE_DEFAULTS

    def default(name, show=lambda v: v):
        return f"default {show(getattr(base, name))}; fine-tuning: {show(ft[name])}"

    p.add_argument("--epochs", type=int, help=default("epochs"))
    p.add_argument("--steps-per-epoch", type=int)
    p.add_argument("--batch-size", type=int, help=default("batch_size"))
    p.add_argument("--lr", type=float, help=default("lr", lambda v: f"{v:g}"))
    p.add_argument("--optimiser", choices=OPTIMISERS, help=default("optimiser"))
    p.add_argument("--warmup-steps", type=int, default=0)
    p.add_argument("--crop", type=int, nargs=2, metavar=("H", "W"),
                   help=default("crop_hw", lambda v: " x ".join(map(str, v))))
    p.add_argument("--small-crop", type=int, nargs=2, metavar=("H", "W"))
    p.add_argument("--small-crop-epochs", type=int, default=0)
    p.add_argument("--device", default="auto", choices=DEVICE_CHOICES)
    add_precision_arg(p, backend=False)
    p.add_argument("--seed", type=int, default=0)


def recipe_from_args(args, make=TrainConfig, **extra):
    """A :class:`TrainConfig` from the options added by :func:`add_recipe_args`, made by
    ``make`` (:class:`TrainConfig`, or :func:`finetune_config` for fine-tuning's defaults) from
    the options given (None: left out) and ``extra``."""
    given = dict(
        epochs=args.epochs, steps_per_epoch=args.steps_per_epoch, batch_size=args.batch_size,
        lr=args.lr, optimiser=args.optimiser, warmup_steps=args.warmup_steps, crop_hw=args.crop,
        small_crop_hw=args.small_crop, small_crop_epochs=args.small_crop_epochs,
        device=args.device, precision=chosen_precision(args), seed=args.seed)
    return make(**{k: v for k, v in given.items() if v is not None}, **extra)


def trunk_options(args) -> dict:
    """``--unfreeze-last``, ``--trunk-lr-factor`` and ``--select``, those given."""
    given = dict(unfreeze_last=args.unfreeze_last, trunk_lr_factor=args.trunk_lr_factor,
                 select=args.select)
    return {k: v for k, v in given.items() if v is not None}


def _dataset_sets(folder, val_max_frames=None, seed=0):
    """Training cache and validation manifest of a make-dataset folder."""
    folder = Path(folder)
    needed = ("train_images.npy", "train_meta.csv", "val/manifest.csv")
    missing = [n for n in needed if not (folder / n).is_file()]
    if missing:
        raise SemFocusError(f"--dataset {folder} is not a folder written by make-dataset "
                            f"(it lacks {missing[0]}).")
    train_set = LabelledSet.from_cache(folder)
    val_set = LabelledSet.from_manifest(Path(folder) / "val" / "manifest.csv")
    return train_set, _val_subset(val_set, val_max_frames, seed)


def _val_subset(val_set, max_frames, seed):
    """A fixed random subset of at most ``max_frames`` validation frames (all when None)."""
    if not max_frames or len(val_set) <= max_frames:
        return val_set
    pick = np.random.default_rng(seed).permutation(len(val_set))[:max_frames]
    return val_set.subset(np.sort(pick))


def cmd_make_dataset(args) -> int:
    paths = make_dataset(args.pool, args.out, n_train=args.n_train, n_val=args.n_val,
                         seed=args.seed, manifest=args.manifest)
    for k, v in paths.items():
        print(f"{k}: {v}", file=sys.stderr)
    return 0


def cmd_train(args) -> int:
    check_out_dir(args.out, args.resume, args.overwrite)
    if args.annotations:  # fine-tuning on expert scores: the same code as the Fine-tune widget
        return cmd_finetune(args)
    train_set, val_set = _dataset_sets(args.dataset, args.val_max_frames, args.seed)
    data_info = {"dataset": str(args.dataset)}
    model, parent = load_parent(args.init or "scratch", args.backbone, not args.no_magnification,
                                args.output_margin)
    config = recipe_from_args(args, freeze_trunk=bool(args.freeze_trunk),
                              val_max_frames=args.val_max_frames, **trunk_options(args))
    meta = {"provenance": {**parent, **data_info}}
    print(f"semfocus train: {len(train_set)} training frames, {len(val_set)} validation frames",
          file=sys.stderr)
    for upd in train(model, train_set, val_set, config, args.out, meta, resume=args.resume):
        _print_update(upd)
    return 0


def _print_update(upd) -> None:
    """Progress of ``train`` / ``finetune`` on stderr."""
    if isinstance(upd, BatchDone):
        bar = "#" * int(30 * upd.step / upd.steps)
        progress_bar(f"epoch {upd.epoch + 1} [{bar:<30}] {upd.step}/{upd.steps} loss "
                     f"{upd.loss:.3f}")
    elif isinstance(upd, EpochDone):
        val = "n/a" if upd.val_rmse is None else f"{upd.val_rmse:.3f}"
        eprint(f"epoch {upd.epoch}/{upd.epochs}: train loss {upd.train_loss:.3f}, "
               f"val RMSE {val}{' (best)' if upd.is_best else ''}, {upd.seconds:.0f} s")
    elif isinstance(upd, Finished):
        print(f"best model: {upd.best_path} (val RMSE {upd.best_val_rmse}; "
              f"before training {upd.initial_val_rmse})", file=sys.stderr)


def cmd_finetune(args) -> int:
    """``train --annotations CSV``: :func:`napari_semfocus.jobs.finetune.finetune_job`, the job
    of the Fine-tune widget; the fine-tuned model (with its provenance) is OUT/best.safetensors."""
    table = AnnotationTable.load_csv(args.annotations)
    config = recipe_from_args(args, finetune_config, freeze_trunk=args.freeze_trunk,
                              val_max_frames=args.val_max_frames, **trunk_options(args))

    def show(upd):
        if isinstance(upd, Prepared):
            print(f"semfocus train: fine-tuning {upd.parent} on {len(table)} annotations: "
                  f"{upd.train_frames} training frames ({len(upd.train_images)} images), "
                  f"{upd.val_frames} validation frames ({len(upd.val_images)} images), "
                  f"{upd.device_name}", file=sys.stderr)
            for warning in upd.warnings:
                print(f"semfocus train: warning: {warning}", file=sys.stderr)
        elif isinstance(upd, Evaluated):
            val = "n/a" if upd.val_rmse is None else f"{upd.val_rmse:.3f}"
            print(f"validation RMSE before fine-tuning: {val}", file=sys.stderr)
        elif not isinstance(upd, Finished):  # the last line says what the result is
            _print_update(upd)

    settings = FineTuneSettings(
        table, config, init=args.init or "default", val_fraction=args.val_fraction,
        out_dir=args.out, resume=args.resume, source=str(Path(args.annotations).resolve()),
        backbone=args.backbone, use_magnification=not args.no_magnification,
        output_margin=args.output_margin, keep_parent=args.keep_parent)
    result = run_to_end(finetune_job(settings), show)
    eprint(finetune_outcome(result, args.out))
    if result.trained and not result.kept_parent and result.interval_note:
        eprint(f"semfocus train: note: score intervals: {result.interval_note}")
    return 0


def finetune_outcome(result, out_dir) -> str:
    """Save the fine-tuned model as OUT/best.safetensors, unless nothing was trained or the
    parent was kept, and say so in one line with the validation figures."""
    if not result.trained:
        return "nothing was trained."
    b, a = result.val_rmse_before, result.val_rmse_after
    parent = result.metadata["provenance"]["parent"] or "scratch"
    if result.kept_parent:
        return (f"kept the parent: {result.why_parent_kept}, so the result is the parent "
                f"model {parent} and no fine-tuned model was written.")
    path = result.save(Path(out_dir) / "best.safetensors")
    if a is None:
        return f"fine-tuned model: {path} (no validation images: not compared with the parent)"
    worse = (f"; warning: WORSE than the parent {parent} on validation (kept because of "
             f"--no-keep-parent)" if result.worse_than_parent else "")
    return (f"fine-tuned model: {path} (validation RMSE {b:.3f} before, {a:.3f} after"
            f"{worse})")


def cmd_evaluate(args) -> int:
    scorer = FocusScorer.load(args.checkpoint, device=args.device,
                              precision=chosen_precision(args), backend=args.backend)
    report = evaluate_manifest(scorer, args.manifest, classical=not args.no_classical)
    text = write_evaluation(report, args.output)
    print(text)
    return 0


def cmd_compare(args) -> int:
    for cand in args.candidates:
        parse_candidate(cand)  # fail before any training
    train_set, val_set = _dataset_sets(args.dataset, args.val_max_frames, args.seed)
    config = recipe_from_args(args, val_max_frames=None)
    report = compare(args.candidates, train_set, val_set, config, args.out, args.target_precision,
                     args.accept_score, reuse=not args.retrain,
                     log=lambda msg: print(msg, file=sys.stderr, flush=True),
                     speed_batch=check_whole_number(args.speed_batch, "--speed-batch"))
    print(write_comparison(report, args.output))
    return 0
