"""``semfocus gate``: calibrate an acceptance gate on labelled images, and apply it.

    semfocus gate calibrate --manifest CSV --target-precision 0.95 --output gate.json [--plot pr.png]
                            [--rule whole|worst-region]
    semfocus gate apply PATH... --gate gate.json [--output decisions.csv] [--review]

Both are the jobs of the Acceptance gate widget (:mod:`napari_semfocus.jobs.gate`); images are
read and scored as ``semfocus score`` does.
"""

from __future__ import annotations

import csv
import io
from dataclasses import replace

import numpy as np

from ..errors import SemFocusError
from ..gate.calibrate import DEFAULT_TARGET_PRECISION, check_target
from ..gate.file import SCORE_RULES, Gate, resolve_checkpoint
from ..gate.labels import DEFAULT_ACCEPT_SCORE
from ..gate.plot import plot_pr_curve
from ..gate.review import DECISIONS, review_summary
from ..io.files import write_text
from ..io.tables import labelled_scores_csv
from ..jobs.distributed import GateTable
from ..jobs.gate import (
    ApplySettings,
    CalibrateSettings,
    CalibrationScored,
    apply_gate,
    calibrate_gate,
    decisions_table,
)
from ..progress import run_to_end
from .common import (
    add_inputs,
    add_model_args,
    add_scaleout_args,
    chosen_precision,
    eprint,
    input_files,
    progress_printer,
    run_table,
    scaled_out,
    write_output,
)

RULE_HELP = ("the score the gate compares with its threshold: whole (the whole-frame score, "
             "default) or worst-region (the frame's worst informative region: rejects frames "
             "partly out of focus); kept in the gate file and used by apply")


def register(sub) -> None:
    """Add ``gate calibrate`` and ``gate apply`` to the ``semfocus`` parser."""
    gate = sub.add_parser("gate", help="accept/reject images at a chosen precision (calibrate, apply)")
    gsub = gate.add_subparsers(dest="gate_command", required=True)

    p = gsub.add_parser("calibrate", help="choose the threshold that reaches a target precision")
    p.add_argument("--manifest", required=True,
                   help="CSV with path and the label column (magnification optional: else from "
                        "the file's metadata); paths relative to the manifest's folder")
    p.add_argument("--target-precision", type=float, default=DEFAULT_TARGET_PRECISION,
                   help="target precision in (0, 1] (default 0.95)")
    p.add_argument("--output", "-o", required=True, help="gate file to write (JSON)")
    p.add_argument("--label-column", default="label",
                   help="column with expert scores (numbers) or accept/reject words "
                        "(default: label)")
    p.add_argument("--accept-score", type=float, default=DEFAULT_ACCEPT_SCORE,
                   help="expert score from which an image is acceptable (default 7; 1 for 0/1 "
                        "labels)")
    p.add_argument("--best-effort", action="store_true",
                   help="when the target is not reachable, write the gate of the highest "
                        "precision reached (flagged) instead of failing")
    p.add_argument("--hold-out", type=float, metavar="FRACTION",
                   help="calibrate on the other groups only and report the figures on this "
                        "fraction of the groups (e.g. 0.5)")
    p.add_argument("--group-column", default="series",
                   help="column naming the group (focus series) for --hold-out (default "
                        "series; one group per file where missing)")
    p.add_argument("--seed", type=int, default=0, help="shuffles the groups for --hold-out")
    p.add_argument("--plot", help="PNG of the precision-recall curve with the chosen point")
    p.add_argument("--scores", help="also write the model's scores as CSV (path,index,"
                                    "magnification,score,worst_region,label,acceptable)")
    p.add_argument("--rule", default="whole", choices=SCORE_RULES, help=RULE_HELP)
    add_model_args(p, region_help="scoring region, kept in the gate file and used by apply")
    p.set_defaults(func=cmd_calibrate)

    p = gsub.add_parser("apply", help="accept or reject images, stack slices and folders")
    add_inputs(p, paths_help="image files, stacks or folders of images (TIFF, PNG, JPEG)")
    p.add_argument("--gate", required=True, help="gate file written by 'semfocus gate calibrate'")
    p.add_argument("--rule", choices=SCORE_RULES,
                   help="the gate file's rule is used; given, it must be that rule")
    p.add_argument("--review", action="store_true",
                   help="review band: accept a frame when its whole score's interval lies at "
                        "or above the threshold, reject it when it lies below, and send it to "
                        "review (a person looks) when it straddles the threshold; adds the "
                        "column decision (accept/reject/review; accepted is 1 for accept only). "
                        "Needs a whole-score gate and a model with score intervals")
    add_model_args(p, checkpoint_help="model file; default: the gate's model (the shipped one, or "
                                      "the file it was calibrated with)", region_help=None)
    add_scaleout_args(p)
    p.set_defaults(func=cmd_apply)


# ---- calibrate ------------------------------------------------------------------------------
def cmd_calibrate(args) -> int:
    check_target(args.target_precision)
    if not np.isfinite(args.accept_score):
        raise SemFocusError(f"--accept-score {args.accept_score} is not a number.")
    if args.hold_out is not None and not 0 < args.hold_out < 1:
        raise SemFocusError(f"--hold-out {args.hold_out} is not between 0 and 1.")
    settings = CalibrateSettings(
        args.manifest, args.target_precision, args.accept_score, args.label_column, args.group_column,
        args.hold_out, args.seed, args.best_effort, args.checkpoint, args.device, args.region,
        args.batch_size, chosen_precision(args), args.rule, backend=args.backend)
    printer = progress_printer(lambda s: f"semfocus gate: {s.text}", every=50)

    def show(update) -> None:
        if isinstance(update, CalibrationScored):
            if args.scores:  # written before the threshold is chosen (also when that fails)
                write_text(args.scores, labelled_scores_csv(update.rows, update.labels,
                                                            update.acceptable))
        else:
            printer(update)

    result = run_to_end(calibrate_gate(settings), show)
    cal, gate, check = result.calibration, result.gate, result.check
    gate.save(args.output)
    if args.plot:
        plot_pr_curve(cal, args.plot, held_out=result.held_out, score_name=gate.rule_label)
    print(f"gate: {args.output}")
    print(f"model: {result.model_name} (sha256 {gate.model['sha256'][:12]})")
    print(f"accept rule: {_rule_text(cal.accept_rule)}")
    print(f"threshold: accept when {gate.rule_score} >= {cal.threshold:.4f}")
    reached = "reached" if cal.target_reached else "NOT reached (best effort)"
    print(f"target precision: {cal.target_precision:g} ({reached} on the calibration images)")
    print(f"calibration: {cal.figures.summary()}")
    if check is not None:
        print(f"held out ({len(check.held_out_groups)} of {len(set(result.groups))} groups, "
              f"not used for the threshold): {check.held_out.summary()}")
    if gate.review is not None:
        print(f"review band ({gate.review['interval_level']:g} intervals; apply --review):")
        print(review_summary(gate.review))
    else:
        print("review band: none (" + ("a worst-region gate has no interval" if
              gate.score_rule != "whole" else f"the model {result.model_name} has no score "
              "intervals") + ")")
    return 0


def _rule_text(rule: dict) -> str:
    if rule["kind"] == "expert_score":
        return f"acceptable when {rule['column']} >= {rule['accept_score']:g}"
    return f"accept/reject labels in {rule['column']}"


# ---- apply ----------------------------------------------------------------------------------
def cmd_apply(args) -> int:
    gate = Gate.load(args.gate)
    if args.rule is not None and args.rule != gate.score_rule:
        raise SemFocusError(
            f"gate file {args.gate} was calibrated for the rule {gate.score_rule}, not "
            f"{args.rule}: calibrate a gate with --rule {args.rule}.")
    plan = input_files(args, folders=True)
    checkpoint = resolve_checkpoint(gate, args.checkpoint)
    settings = ApplySettings(gate, tuple(plan), None,
                             None if checkpoint is None else str(checkpoint), args.device,
                             args.batch_size, chosen_precision(args), args.review,
                             backend=args.backend)
    if scaled_out(args):
        return _apply_table(args, settings)
    result = run_to_end(apply_gate(settings), progress_printer(
        lambda s: f"semfocus gate: model {s.model_name} on {s.device_name}, gate {args.gate}: "
                  f"accept when {gate.rule_score} >= {gate.threshold:.4f}"))
    table = decisions_table(result.images)
    write_output(table, args.output)
    _report(_count(table))
    return 0


def _apply_table(args, settings: ApplySettings) -> int:
    """``gate apply`` on a dask cluster or resumed: the decisions written as they come."""
    counts: dict = {}
    table = GateTable(replace(settings, images=()))

    def add(part) -> None:
        for key, n in _count(table.header + "\n" + part.rows).items():
            counts[key] = counts.get(key, 0) + n

    run_table(args, table, settings.images, args.output, on_result=add)
    _report(counts)
    return 0


def _count(table: str) -> dict:
    """How many rows of a decisions table are accepted, rejected (and sent to review)."""
    rows = list(csv.DictReader(io.StringIO(table)))
    if rows and "decision" in rows[0]:
        return {d: sum(r["decision"] == d for r in rows) for d in DECISIONS}
    accepted = sum(r["accepted"] == "1" for r in rows)
    return {"accept": accepted, "reject": len(rows) - accepted}


def _report(counts: dict) -> None:
    review = f", {counts['review']} to review" if "review" in counts else ""
    eprint(f"semfocus gate apply: {counts.get('accept', 0)} accepted, {counts.get('reject', 0)} "
           f"rejected{review} of {sum(counts.values())} images/slices.")
