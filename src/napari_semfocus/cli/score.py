"""``semfocus score`` and ``semfocus measure``: one CSV row per 2-D image or stack slice
(:func:`napari_semfocus.jobs.score.score_images`, as the Score focus widget):
``path,index,magnification,score,score_low,score_high,worst_region`` (a measure: the first
four).
``--workers`` / ``--scheduler`` / ``--resume`` score the files in partitions on a dask cluster
and write the rows as they come (:mod:`napari_semfocus.jobs.distributed`): the same table."""

from __future__ import annotations

import dataclasses

from ..io.tables import MEASURE_COLUMNS, scores_csv
from ..jobs.distributed import ScoreTable
from ..jobs.score import MODEL_METHOD, ScoreSettings, score_images, score_rows
from ..progress import run_to_end
from ..scoring.measures import MEASURES
from .common import (
    add_inputs,
    add_model_args,
    add_scaleout_args,
    chosen_precision,
    input_files,
    progress_printer,
    run_table,
    scaled_out,
    write_output,
)


def register(sub) -> None:
    """Add ``score`` and ``measure`` to the ``semfocus`` parser."""
    p = sub.add_parser("score", help="score images and stacks with the focus model")
    add_inputs(p)
    add_model_args(p)
    add_scaleout_args(p)
    p.set_defaults(func=cmd_score)

    p = sub.add_parser("measure", help="classical focus measures in the same CSV shape")
    add_inputs(p)
    p.add_argument("--measure", required=True, choices=sorted(MEASURES))
    p.set_defaults(func=cmd_measure)


def cmd_score(args) -> int:
    settings = ScoreSettings(tuple(input_files(args)), MODEL_METHOD, args.checkpoint, args.device,
                             args.region, args.batch_size, chosen_precision(args),
                             backend=args.backend)
    if scaled_out(args):
        table = ScoreTable(dataclasses.replace(settings, images=()))
        return run_table(args, table, settings.images, args.output)
    run = run_to_end(score_images(settings), progress_printer(lambda s: f"semfocus: {s.text}"))
    write_output(scores_csv(score_rows(run.images)), args.output)
    return 0


def cmd_measure(args) -> int:
    settings = ScoreSettings(tuple(input_files(args)), method=args.measure)
    run = run_to_end(score_images(settings), progress_printer())
    write_output(scores_csv(score_rows(run.images), MEASURE_COLUMNS), args.output)
    return 0
