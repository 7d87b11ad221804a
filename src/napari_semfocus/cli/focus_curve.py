"""``semfocus focus-curve``: best focus of a through-focus series, between slices, with an
interval, the best attainable score and an astigmatism indicator, as JSON (``--output``) and
optionally a picture of the curve (``--plot``). All numbers come from
:func:`napari_semfocus.jobs.focus_curve.focus_curve_run`, as in the Score focus widget
(docs/through-focus.md)."""

from __future__ import annotations

import json

from ..jobs.focus_curve import FocusCurveSettings, focus_curve_run
from ..progress import run_to_end
from ..scale import parse_magnification
from ..scoring.astigmatism import astigmatism_line
from ..scoring.focus_curve_plot import write_focus_curve_png
from ..scoring.through_focus import INTERVALS
from .common import add_model_args, chosen_precision, eprint, progress_printer, write_output


def register(sub) -> None:
    """Add ``focus-curve`` to the ``semfocus`` parser."""
    p = sub.add_parser("focus-curve", help="best focus of a through-focus series (stack or "
                                           "files), with an interval and an astigmatism check")
    p.add_argument("paths", nargs="+", metavar="STACK|FILES",
                   help="one stack (one slice per focus position), or several image files of "
                        "one frame each (ordered by their working distance where the files "
                        "give one)")
    p.add_argument("--step-um", type=float, default=None, metavar="S",
                   help="focus step in micrometres (slice i at z = i * S) when the metadata "
                        "gives no focus positions (default: the slice index)")
    p.add_argument("--magnification", help="magnification of every slice (default: the files' "
                                           "SEM metadata)")
    p.add_argument("--output", "-o", help="JSON file to write (default: stdout)")
    p.add_argument("--plot", help="PNG of the curve: scores, fit, best focus and its interval")
    p.add_argument("--interval", default="profile", choices=INTERVALS,
                   help="how the 90 %% interval of best focus is found (default profile "
                        "likelihood; docs/through-focus.md)")
    add_model_args(p, region_help=None)
    p.set_defaults(func=cmd_focus_curve)


def cmd_focus_curve(args) -> int:
    settings = FocusCurveSettings(tuple(args.paths), parse_magnification(args.magnification),
                                  args.step_um, args.checkpoint, args.device,
                                  chosen_precision(args), args.interval, args.batch_size,
                                  backend=args.backend)
    run = run_to_end(focus_curve_run(settings),
                     progress_printer(lambda s: f"semfocus: {s.text}", None))
    curve = run.curve
    record = {"series": run.series.name, "files": list(run.series.files),
              "model": run.model_name, **curve.to_dict()}
    write_output(json.dumps(record, indent=2) + "\n", args.output)
    if args.plot:
        write_focus_curve_png(curve, args.plot, run.series.name)
    unit = "" if curve.z_unit == "slice" else f" {curve.z_unit}"
    eprint(f"semfocus focus-curve: best focus z = {curve.best_z:.4g}{unit} "
           f"(90 % interval {curve.best_z_low:.4g} .. {curve.best_z_high:.4g}), nearest slice "
           f"{curve.best_index}, best attainable score {curve.best_score:.2f}")
    eprint(f"semfocus focus-curve: {astigmatism_line(curve.astigmatism)}")
    return 0
