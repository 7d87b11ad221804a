"""What the ``semfocus`` commands share: messages on stderr, where output goes, the input and
model options (the arithmetic precision among them), the scale-out options, and printing a job's
progress."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

from ..io.csv_stream import CsvStream
from ..io.files import write_text
from ..io.images import expand_folders
from ..jobs.distributed import MAX_FILES_PER_TASK, TASKS_PER_THREAD, Cluster, write_table
from ..jobs.inputs import FileInput, plan_files
from ..progress import Progress, Status, run_to_end
from ..scale import parse_magnification
from ..scoring import devices
from ..scoring.backends import BACKENDS
from ..scoring.devices import DEVICE_CHOICES, PRECISIONS
from ..scoring.preprocess import REGIONS

EXIT_BAD_INPUT = 2


_BAR = {"open": False}  # a progress bar (``\r``, no newline) ends the last stderr line


def eprint(msg: str) -> None:
    end_bar()
    print(msg, file=sys.stderr, flush=True)


def progress_bar(text: str) -> None:
    """``text`` over the last stderr line (``\r``, no newline): a progress bar; the next
    :func:`eprint` (an error or ``interrupted.`` among them) starts on a line of its own."""
    print(f"\r{text}", end="", file=sys.stderr, flush=True)
    _BAR["open"] = True


def end_bar() -> None:
    """End the line of a :func:`progress_bar`, if one is open."""
    if _BAR["open"]:
        _BAR["open"] = False
        print(file=sys.stderr, flush=True)


def write_output(text: str, output) -> None:
    """``text`` to the file ``output`` (atomically), or to stdout for None / '-'."""
    if output in (None, "-"):
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    write_text(output, text)


def add_inputs(p: argparse.ArgumentParser, paths_help: str = "image files (TIFF, PNG, JPEG)") -> None:
    """PATH..., --magnification | --manifest, --output."""
    p.add_argument("paths", nargs="*", metavar="PATH", help=paths_help)
    g = p.add_mutually_exclusive_group()
    g.add_argument("--magnification", help="magnification for every file")
    g.add_argument("--manifest", help="CSV with columns path,magnification")
    p.add_argument("--output", "-o", help="CSV file to write (default: stdout)")


def input_files(args, folders: bool = False) -> list[FileInput]:
    """The files of :func:`add_inputs`' options (``folders``: a folder gives its images)."""
    paths = expand_folders(args.paths) if folders else args.paths
    return plan_files(paths, parse_magnification(args.magnification), args.manifest)


def add_model_args(p, checkpoint_help="model file (.safetensors); default: the shipped model",
                   region_help="whole image (mean over tiles, default) or the paper's 240x320 (h x w) "
                               "centre crop") -> None:
    """--checkpoint, --device, --precision, --batch-size and (unless ``region_help`` is None)
    --region."""
    p.add_argument("--checkpoint", help=checkpoint_help)
    p.add_argument("--device", default="auto", choices=DEVICE_CHOICES)
    add_precision_arg(p)
    p.add_argument("--batch-size", type=int, default=32)
    if region_help is not None:
        p.add_argument("--region", default="whole", choices=REGIONS, help=region_help)


def add_precision_arg(p, backend: bool = True) -> None:
    """--precision auto|float32|bf16|int8 and --backend auto|torch|onnxruntime (commands with
    their own --device call it directly; training, ``backend=False``: no int8, no backend)."""
    if not backend:
        p.add_argument("--precision", default="auto", choices=("auto", "float32", "bf16"),
                       help="arithmetic training runs in: auto (bf16 on a CPU with bfloat16 "
                            "units, on CUDA), float32, or bf16 (default auto)")
        return
    p.add_argument("--precision", default="auto", choices=PRECISIONS,
                   help="arithmetic the model runs in: auto (on a CPU with onnxruntime: int8 "
                        "where the model passed its int8 check, else float32; fp16 on CUDA), "
                        "float32, bf16 (torch, CPUs with bfloat16 units) or int8 (onnxruntime) "
                        "(default auto)")
    p.add_argument("--backend", default="auto", choices=BACKENDS,
                   help="what runs the model: auto (onnxruntime on a CPU where it is installed, "
                        "else torch), torch, or onnxruntime (exported from the checkpoint on "
                        "first use and cached per user) (default auto)")


def chosen_precision(args) -> str:
    """``--precision``, except that bf16 asked for on a CPU without bfloat16 arithmetic runs in
    float32, with one note on stderr (the core, asked directly, refuses it instead)."""
    if (args.precision == "bf16" and not getattr(args, "scheduler", None)
            and not devices.cpu_has_bf16() and devices.resolve_device(args.device).type == "cpu"):
        eprint(f"semfocus {args.command}: note: this CPU has no bfloat16 arithmetic "
               "(avx512_bf16 / amx_bf16), so --precision bf16 runs in float32.")
        return "float32"
    return args.precision


def progress_printer(announce: Callable[[Status], str] | None = None, every: int | None = 1):
    """An ``on_update`` for :func:`~napari_semfocus.progress.run_to_end`: the line
    ``announce(status)`` once a model is loaded, and ``[k/n] name`` when an image is done
    (every ``every`` images and the last; never for ``every=None``)."""
    def show(update) -> None:
        if isinstance(update, Status) and update.model_name and announce is not None:
            eprint(announce(update))
        elif isinstance(update, Progress) and every and update.done == update.total:
            k = update.index + 1
            if k % every == 0 or k == update.count:
                eprint(f"[{k}/{update.count}] {update.name}")
    return show


PROGRESS_MIN_TILES = 1000  # maps of fewer tiles end without progress lines


def tile_progress(command: str, announce: Callable[[Status], str], steps: int = 10):
    """An ``on_update`` for one long map: the ``announce`` line once the model is loaded, then,
    for maps of at least :data:`PROGRESS_MIN_TILES` tiles, a line at every ``1/steps`` of the
    tiles with an estimate of the time left: ``semfocus map: 2,000 of 20,000 tiles (10%),
    about 95 s left``."""
    state = {"start": time.monotonic(), "shown": 0}

    def show(update) -> None:
        if isinstance(update, Status) and update.model_name:
            state["start"] = time.monotonic()
            eprint(announce(update))
        elif (isinstance(update, Progress) and update.total >= PROGRESS_MIN_TILES
              and 0 < update.done < update.total):
            step = update.done * steps // update.total
            if step > state["shown"]:
                state["shown"] = step
                left = (time.monotonic() - state["start"]) * (update.total / update.done - 1)
                eprint(f"semfocus {command}: {update.done:,} of {update.total:,} tiles "
                       f"({100 * update.done // update.total}%), about {left:.0f} s left")
    return show


# ---- scale-out: a dask cluster, and tables written as they come ----------------------------------
def add_scaleout_args(p) -> None:
    """--workers | --scheduler, --files-per-task, --resume (docs/scale-out.md)."""
    g = p.add_argument_group("scale-out (docs/scale-out.md)")
    where = g.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, default=1, metavar="N",
                       help="run on a dask LocalCluster of N worker processes on this machine "
                            "(default 1: this process)")
    where.add_argument("--scheduler", metavar="ADDRESS",
                       help="run on the dask.distributed cluster whose scheduler is at ADDRESS "
                            "(e.g. tcp://head-node:8786)")
    g.add_argument("--files-per-task", type=int, metavar="N",
                   help=f"files per dask task (default: automatic, about {TASKS_PER_THREAD} tasks "
                        f"per worker thread of at most {MAX_FILES_PER_TASK} files)")
    g.add_argument("--resume", action="store_true",
                   help="continue the table in the output file of an interrupted run: files "
                        "whose rows are there are skipped (the last one is done again)")


def scaled_out(args) -> bool:
    """Whether the command runs through :func:`run_table` (a cluster, or a resumable table)."""
    return args.workers != 1 or args.scheduler is not None or args.resume


def run_table(args, table, files, output, option: str = "--output", on_result=None) -> int:
    """Run ``table`` (a :mod:`napari_semfocus.jobs.distributed` table) over ``files`` on the
    cluster of ``args``, writing its rows to ``output`` as they come (resuming with
    ``--resume``); progress on stderr; ``on_result`` gets each partition's result. Returns 0."""
    cluster = Cluster(args.workers, args.scheduler, args.files_per_task)
    out = CsvStream(output, table.header, [f.name for f in files], args.resume, option)

    def show(update) -> None:
        if isinstance(update, Status):
            eprint(f"semfocus {args.command}: {update.text}")
        elif on_result is not None:
            on_result(update)

    with out:
        run_to_end(write_table(table, files, cluster, out), show)
    return 0

