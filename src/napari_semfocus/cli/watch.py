"""``semfocus watch`` (live acquisition QC) and ``semfocus report`` (the acquisition report).

    semfocus watch DIR [--output CSV] [--gate FILE] [--retake CSV] [--report FILE.html]
                   [--until-idle S] [--poll S] [--recursive] [--pattern GLOB]...
    semfocus report SCORES.csv --output report.html [--gate FILE] [--no-maps]

The watch runs :func:`napari_semfocus.jobs.watch.watch_to_table`, which writes each frame's
rows as they come (:class:`~napari_semfocus.io.csv_stream.CsvStream`, continued when
``--output`` already holds a watch's table: frames there are not scored again); one line per
frame on stderr. Ctrl-C (or SIGTERM) stops it with the table complete; ``--report`` is written then.
The report is :func:`napari_semfocus.jobs.report.build_report`.
"""

from __future__ import annotations

import signal
from contextlib import contextmanager
from pathlib import Path

from ..errors import SemFocusError
from ..gate.file import SCORE_RULES, Gate, resolve_checkpoint
from ..io.arrivals import DEFAULT_PATTERNS
from ..io.csv_stream import CsvStream
from ..io.files import write_text
from ..io.tables import watch_columns
from ..jobs.report import ReportSettings, build_report, read_score_table
from ..jobs.watch import (
    FrameScored,
    FrameSkipped,
    WatchSettings,
    check_folder,
    watch_to_table,
    write_retake,
)
from ..progress import Status, run_to_end
from ..scale import parse_magnification
from .common import add_model_args, add_precision_arg, chosen_precision, eprint
from .gate import RULE_HELP


def register(sub) -> None:
    """Add ``watch`` and ``report`` to the ``semfocus`` parser."""
    p = sub.add_parser("watch", help="score the frames of a folder as they are written "
                                     "(live acquisition QC)")
    p.add_argument("path", metavar="DIR", help="the folder the microscope writes into")
    p.add_argument("--recursive", action="store_true", help="also watch its subfolders")
    p.add_argument("--pattern", action="append", metavar="GLOB",
                   help=f"file names to score (repeatable; default {' '.join(DEFAULT_PATTERNS)})")
    p.add_argument("--magnification", help="magnification for every frame (default: each "
                                           "file's SEM metadata)")
    p.add_argument("--output", "-o", help="CSV table of the scores (default: stdout); an "
                                          "existing one is continued")
    p.add_argument("--gate", help="gate file: accept or reject each frame (adds 'accepted')")
    p.add_argument("--rule", choices=SCORE_RULES, help=RULE_HELP)
    p.add_argument("--retake", help="CSV of the frames to retake: rejected or unreadable "
                                    "(needs --gate)")
    p.add_argument("--report", help="HTML acquisition report written when the watch stops")
    p.add_argument("--no-maps", action="store_true", help="no focus maps in the report")
    p.add_argument("--until-idle", type=float, metavar="SECONDS",
                   help="stop after this long without a new frame")
    p.add_argument("--poll", type=float, metavar="SECONDS",
                   help="look for new files every SECONDS instead of using file-system events "
                        "(network shares)")
    p.add_argument("--settle", type=float, default=0.25, metavar="SECONDS",
                   help="a file is complete once unchanged this long and whole (default 0.25)")
    p.add_argument("--give-up", type=float, default=5.0, metavar="SECONDS",
                   help="an unreadable file unchanged this long gets an error row (default 5)")
    add_model_args(p, checkpoint_help="model file; default: the gate's model or the shipped "
                                      "one", region_help=None)
    p.set_defaults(func=cmd_watch)

    p = sub.add_parser("report", help="one self-contained HTML report of a score table")
    p.add_argument("path", metavar="SCORES.csv",
                   help="table of semfocus watch, score or gate apply")
    p.add_argument("--output", "-o", required=True, help="HTML file to write")
    p.add_argument("--gate", help="the gate the frames were judged by (threshold, SHA-256)")
    p.add_argument("--checkpoint", help="the model that scored (default: the gate's or the "
                                        "shipped one)")
    p.add_argument("--no-maps", action="store_true", help="no focus maps on the cards")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))
    add_precision_arg(p)
    p.set_defaults(func=cmd_report)


def _positive(args, option: str, allow_zero: bool = False) -> None:
    value = getattr(args, option.lstrip("-").replace("-", "_"))
    if value is not None and not (value >= 0 if allow_zero else value > 0):
        raise SemFocusError(f"{option} {value:g} is not a number of seconds above 0.")


def _gate(args) -> Gate | None:
    if not args.gate:
        if args.rule is not None:
            raise SemFocusError("--rule is the rule of a gate: give --gate FILE.")
        return None
    gate = Gate.load(args.gate)
    if args.rule is not None and args.rule != gate.score_rule:
        raise SemFocusError(
            f"gate file {args.gate} was calibrated for the rule {gate.score_rule}, not "
            f"{args.rule}: calibrate a gate with --rule {args.rule}.")
    return gate


@contextmanager
def _sigterm_stops():
    """SIGTERM stops the watch as Ctrl-C does (the table stays complete)."""
    def stop(signum, frame):
        raise KeyboardInterrupt
    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def cmd_watch(args) -> int:
    for option in ("--poll", "--give-up", "--until-idle"):
        _positive(args, option, allow_zero=option == "--until-idle")
    _positive(args, "--settle", allow_zero=True)
    check_folder(args.path)
    gate = _gate(args)
    if args.retake and gate is None:
        raise SemFocusError("--retake lists the frames the gate rejects: give --gate FILE.")
    checkpoint = resolve_checkpoint(gate, args.checkpoint) if gate else args.checkpoint
    checkpoint = None if checkpoint is None else str(checkpoint)
    columns = watch_columns(gate is not None)
    out = CsvStream(args.output, ",".join(columns), None, resume=args.output is not None)
    rows = out.kept_rows()
    settings = WatchSettings(
        args.path, tuple(args.pattern or DEFAULT_PATTERNS), args.recursive,
        parse_magnification(args.magnification), checkpoint, args.device,
        chosen_precision(args), args.batch_size, gate, args.poll, args.settle, args.give_up,
        args.until_idle, done=tuple(out.kept), backend=args.backend)
    if out.kept:
        eprint(f"semfocus watch: continuing {args.output}: {len(out.kept)} frames there are "
               "not scored again")

    def show(update) -> None:
        if isinstance(update, Status):
            eprint(f"semfocus watch: {update.text}")
        elif isinstance(update, FrameSkipped):
            eprint(f"semfocus watch: note: {update.name} was {update.reason}; skipped.")
        elif isinstance(update, FrameScored):  # its rows are in the table already
            new = [dict(zip(columns, cells, strict=True))
                   for cells in update.cells(gate is not None)]
            rows.extend(new)
            for line in update.lines():
                eprint(line)
            if args.retake and (update.rejected or update.error):
                write_retake(args.retake, columns, rows)

    run = None
    with out, _sigterm_stops():
        try:
            run = run_to_end(watch_to_table(settings, table=out), show)
        except KeyboardInterrupt:
            eprint("semfocus watch: stopping (interrupted); the table is complete.")
    if args.retake:
        write_retake(args.retake, columns, rows)
    if run is not None:
        eprint(f"semfocus watch: stopped after {args.until_idle:g} s without a new frame: "
               f"{run.scored} frames scored, {run.rejected} rejected, {run.errors} errors.")
    if args.report:
        model = None if run is None else {"name": run.model_name, "sha256": run.model_sha256}
        write_text(args.report, _report_page(args, ReportSettings(
            tuple(rows), args.path, ".", gate, checkpoint, model, not args.no_maps,
            args.device, settings.precision, backend=args.backend)))
        eprint(f"semfocus watch: report written to {args.report}")
    return 0


def _report_page(args, settings: ReportSettings) -> str:
    """The report's HTML, progress on stderr."""
    return run_to_end(build_report(settings), lambda u: isinstance(u, Status) and eprint(
        f"semfocus {args.command}: {u.text}"))


def cmd_report(args) -> int:
    rows = read_score_table(args.path)
    gate = Gate.load(args.gate) if args.gate else None
    checkpoint = args.checkpoint
    if gate is not None and checkpoint is None:
        resolved = resolve_checkpoint(gate)
        checkpoint = None if resolved is None else str(resolved)
    page = _report_page(args, ReportSettings(
        tuple(rows), args.path, str(Path(args.path).parent), gate, checkpoint, None,
        not args.no_maps, args.device, chosen_precision(args), backend=args.backend))
    write_text(args.output, page)
    eprint(f"semfocus report: {len(rows)} rows; report written to {args.output}")
    return 0
