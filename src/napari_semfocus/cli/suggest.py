"""``semfocus suggest``: the frames worth annotating next, best first, as a CSV
``rank,path,index,magnification,score,score_low,score_high,informativeness``
(:func:`napari_semfocus.jobs.suggest.suggest_job`, as the Fine-tune widget's "Suggest frames").
An existing ``--output`` is refused unless ``--overwrite`` (experts fill such lists in); an
output that is one of the inputs is refused always (:mod:`.guard`)."""

from __future__ import annotations

from pathlib import Path

from ..errors import SemFocusError
from ..io.tables import csv_text
from ..jobs.suggest import SuggestSettings, suggest_job
from ..progress import run_to_end
from ..training.data.annotations import AnnotationTable
from ..training.suggest import DEFAULT_THRESHOLD, SUGGEST_COLUMNS, suggestions_csv
from .common import (
    add_inputs,
    add_model_args,
    chosen_precision,
    eprint,
    input_files,
    progress_printer,
    write_output,
)


def register(sub) -> None:
    """Add ``suggest`` to the ``semfocus`` parser."""
    p = sub.add_parser("suggest", help="the frames worth annotating next, best first")
    add_inputs(p, "image files or folders (TIFF, PNG, JPEG); every slice of a stack is a frame")
    p.add_argument("--n", type=int, required=True, help="how many frames to suggest")
    add_model_args(p, region_help=None)
    g = p.add_mutually_exclusive_group()
    g.add_argument("--gate", help="gate file: suggest frames near its threshold")
    g.add_argument("--threshold", type=float,
                   help=f"suggest frames near this score (default {DEFAULT_THRESHOLD:g}, the "
                        "gate's default accept score)")
    p.add_argument("--annotations", help="annotations CSV: frames in it are not suggested")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --output")
    p.set_defaults(func=cmd_suggest)


def cmd_suggest(args) -> int:
    if args.output not in (None, "-") and Path(args.output).exists() and not args.overwrite:
        raise SemFocusError(f"--output {args.output} already exists: pass --overwrite to "
                            f"replace it (frames annotated in it would be lost).")
    if args.threshold is not None and not 0 <= args.threshold <= 10:
        raise SemFocusError(f"--threshold {args.threshold:g} is not a score between 0 and 10.")
    annotated = ()
    if args.annotations:
        table = AnnotationTable.load_csv(args.annotations)
        annotated = tuple((str(Path(r.path).resolve()) if r.path else r.layer, r.slice)
                          for r in table)
    files = input_files(args, folders=True)
    settings = SuggestSettings(tuple(files), args.n, args.checkpoint, args.device,
                               chosen_precision(args), args.threshold, args.gate,
                               annotated, args.batch_size)
    picks = run_to_end(suggest_job(settings), progress_printer(lambda s: f"semfocus: {s.text}"))
    write_output(csv_text(SUGGEST_COLUMNS, suggestions_csv(picks)), args.output)
    if len(picks) < args.n:
        eprint(f"semfocus suggest: note: only {len(picks)} unannotated frame(s) given, fewer "
               f"than --n {args.n}.")
    return 0
