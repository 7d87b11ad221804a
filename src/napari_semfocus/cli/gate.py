"""``semfocus gate``: calibrate an acceptance gate on labelled images, and apply it.

    semfocus gate calibrate --manifest CSV --precision 0.95 --output gate.json [--plot pr.png]
    semfocus gate apply PATH... --gate gate.json [--output decisions.csv]

All decisions come from :mod:`napari_semfocus.gate` and :mod:`~napari_semfocus.gate_file` (as in
the Acceptance gate widget); images are read and scored by :mod:`napari_semfocus.batch` (as
``semfocus score``).
"""

from __future__ import annotations

import sys
from pathlib import Path

from ..errors import SemFocusError


def register(sub) -> None:
    """Add ``gate calibrate`` and ``gate apply`` to the ``semfocus`` parser."""
    from ..gate.calibrate import DEFAULT_TARGET_PRECISION
    from ..gate.labels import DEFAULT_ACCEPT_SCORE
    from .main import _add_inputs, add_model_args

    gate = sub.add_parser("gate", help="accept/reject images at a chosen precision (calibrate, apply)")
    gsub = gate.add_subparsers(dest="gate_command", required=True)

    p = gsub.add_parser("calibrate", help="choose the threshold that reaches a target precision")
    p.add_argument("--manifest", required=True,
                   help="CSV with path and the label column (magnification optional: else from "
                        "the file's metadata); paths relative to the manifest's folder")
    p.add_argument("--precision", type=float, default=DEFAULT_TARGET_PRECISION,
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
                                    "magnification,score,label,acceptable)")
    add_model_args(p, region_help="scoring region, kept in the gate file and used by apply")
    p.set_defaults(func=cmd_calibrate)

    p = gsub.add_parser("apply", help="accept or reject images, stack slices and folders")
    _add_inputs(p)  # PATH..., --magnification | --manifest, --output
    for action in p._actions:
        if action.dest == "paths":
            action.help = "image files, stacks or folders of images (TIFF, PNG, JPEG)"
    p.add_argument("--gate", required=True, help="gate file written by 'semfocus gate calibrate'")
    add_model_args(p, checkpoint_help="model file; default: the gate's model (the shipped one, or "
                                      "the file it was calibrated with)", region_help=None)
    p.set_defaults(func=cmd_apply)


def _eprint(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _load_scorer(checkpoint, device):
    from ..scoring.scorer import FocusScorer

    return (FocusScorer.from_checkpoint(checkpoint, device=device) if checkpoint
            else FocusScorer.default(device=device))


# ---- calibrate ------------------------------------------------------------------------------
def cmd_calibrate(args) -> int:
    import numpy as np

    from ..gate.calibrate import calibrate, check_target, held_out_check
    from ..gate.file import Gate
    from ..gate.labels import (
        labels_from_column,
        read_calibration_manifest,
        score_calibration_images,
    )
    from ..gate.plot import plot_pr_curve

    check_target(args.precision)
    if args.hold_out is not None and not 0 < args.hold_out < 1:
        raise SemFocusError(f"--hold-out {args.hold_out} is not between 0 and 1.")
    plan, label_texts, groups = read_calibration_manifest(args.manifest, args.label_column,
                                                          args.group_column)
    try:
        acceptable, rule = labels_from_column(label_texts, args.accept_score, args.label_column)
    except SemFocusError as exc:
        raise SemFocusError(f"manifest {args.manifest}: {exc}") from None
    scorer = _load_scorer(args.checkpoint, args.device)
    _eprint(f"semfocus gate: model {scorer.name} on {scorer.device_name}, {len(plan)} images")
    steps = score_calibration_images(plan, scorer, args.region, args.batch_size)
    while True:
        try:
            done, total = next(steps)
        except StopIteration as stop:
            rows = stop.value
            break
        if done % 50 == 0 or done == total:
            _eprint(f"[{done}/{total}] {plan[done - 1][0]}")
    scores = np.array([r.score for r in rows])
    if args.scores:
        _write_scores(args.scores, rows, label_texts, acceptable)

    held = None
    if args.hold_out is not None:
        check = held_out_check(scores, acceptable, groups, args.precision, args.hold_out,
                               args.seed, best_effort=args.best_effort, accept_rule=rule)
        cal, held = check.calibration, check.held_out
        held_info = check.as_dict()["held_out"]
        held_info.update({"fraction": args.hold_out, "seed": args.seed,
                          "group_column": args.group_column,
                          "n_groups": len(check.held_out_groups)})
    else:
        cal, held_info = calibrate(scores, acceptable=acceptable,
                                   target_precision=args.precision,
                                   best_effort=args.best_effort, accept_rule=rule), None
    gate = Gate.from_calibration(cal, scorer, region=args.region,
                                 source=str(Path(args.manifest).resolve()), held_out=held_info)
    gate.save(args.output)
    if args.plot:
        plot_pr_curve(cal, args.plot, held_out=held)
    print(f"gate: {args.output}")
    print(f"model: {scorer.name} (sha256 {gate.model['sha256'][:12]})")
    print(f"accept rule: {_rule_text(rule)}")
    print(f"threshold: accept when score >= {cal.threshold:.4f}")
    reached = "reached" if cal.target_reached else "NOT reached (best effort)"
    print(f"target precision: {cal.target_precision:g} ({reached} on the calibration images)")
    print(f"calibration: {cal.figures.summary()}")
    if held is not None:
        print(f"held out ({len(check.held_out_groups)} of {len(set(groups))} groups, "
              f"not used for the threshold): {held.summary()}")
    return 0


def _rule_text(rule: dict) -> str:
    if rule["kind"] == "expert_score":
        return f"acceptable when {rule['column']} >= {rule['accept_score']:g}"
    return f"accept/reject labels in {rule['column']}"


def _write_scores(path, rows, labels, acceptable) -> None:
    import csv
    import io

    from ..scoring.checkpoint import atomic_write

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["path", "index", "magnification", "score", "label", "acceptable"])
    for r, lab, ok in zip(rows, labels, acceptable, strict=True):
        w.writerow(r.as_csv() + [lab, int(ok)])
    text = buf.getvalue()
    atomic_write(Path(path), lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


# ---- apply ----------------------------------------------------------------------------------
def expand_folders(paths) -> list[str]:
    """Files as given; a folder gives its image files (TIFF, PNG, JPEG; not its subfolders),
    sorted by name."""
    from ..io.images import IMAGE_SUFFIXES

    out = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            files = sorted(f for f in path.iterdir()
                           if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
            if not files:
                raise SemFocusError(f"{p}: the folder holds no TIFF, PNG or JPEG images.")
            out.extend(str(f) for f in files)
        else:
            out.append(str(p))
    return out


def cmd_apply(args) -> int:
    from ..gate.file import Gate, decisions_csv, model_fingerprint, resolve_checkpoint
    from ..scoring.batch import plan_inputs, score_files
    from .main import _write_text

    gate = Gate.load(args.gate)
    plan = plan_inputs(expand_folders(args.paths), args.magnification, args.manifest)
    checkpoint = resolve_checkpoint(gate, args.checkpoint)
    scorer = _load_scorer(checkpoint, args.device)
    gate.check_model(model_fingerprint(scorer))
    announced = []

    def score_fn(data, mag, databar, name):
        if not announced:
            _eprint(f"semfocus gate: model {scorer.name} on {scorer.device_name}, gate "
                    f"{args.gate}: accept when score >= {gate.threshold:.4f}")
            announced.append(True)
        return scorer.score(data, mag, region=gate.region, batch_size=args.batch_size,
                            exclude_bottom_rows=databar, name=name)

    rows = score_files(plan, score_fn, _eprint, need_magnification=scorer.needs_magnification)
    accepted = gate.apply([r.score for r in rows])
    _write_text(decisions_csv(rows, accepted), args.output)
    _eprint(f"semfocus gate apply: {int(accepted.sum())} accepted, "
            f"{int((~accepted).sum())} rejected of {len(rows)} images/slices.")
    return 0
