"""Outputs never overwrite inputs: before a ``semfocus`` command does any work, every file it
would write (``--output``, ``--csv``, ``--png``, ``--scores``, ``--plot``, a report prefix's
``.json``/``.md``) is compared with every file it reads (images, folders' images, the images a
manifest lists, the manifest, the gate file, annotations, the checkpoint in use or the shipped
model); a match is refused in one sentence naming both. An output that cannot be written (a
folder, a path under a file, a folder without write permission) is refused too, as are the
numbers that would otherwise be taken silently (``--batch-size 0``): every check here runs before
the command loads a model or reads an image.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

from ..errors import SemFocusError, check_whole_number
from ..io.files import existing_parent, writable_file
from ..io.images import expand_folders
from ..scoring.checkpoint import default_model_path
from ..scoring.checkpoint_schema import check_output_margin

OUTPUT_OPTIONS = ("output", "csv", "png", "scores", "plot", "retake", "report")
# whole-number options and their least value (argparse only checks that they are integers);
# --workers has its own sentence (jobs.distributed.Cluster), checked before any work as well
COUNT_OPTIONS = {"batch_size": 1, "files_per_task": 1, "epochs": 1,
                 "steps_per_epoch": 1, "val_max_frames": 1, "n_train": 1, "n_val": 1,
                 "slice": 0, "warmup_steps": 0, "small_crop_epochs": 0, "unfreeze_last": 0,
                 "seed": 0, "n": 1}
# commands whose --output is a path prefix: they write PREFIX.json and PREFIX.md
PREFIX_COMMANDS = ("evaluate", "compare")
MODEL_COMMANDS = ("score", "map", "gate", "evaluate", "train", "watch", "report", "suggest")


def check_args(args) -> None:
    """Everything checked before a command does any work: :func:`check_counts`,
    :func:`check_outputs` and :func:`check_out_folder`."""
    check_counts(args)
    check_outputs(args)
    check_out_folder(args)


def check_counts(args) -> None:
    """Refuse a whole-number option below its least value (:data:`COUNT_OPTIONS`), and an
    output margin a model cannot have."""
    for option, least in COUNT_OPTIONS.items():
        value = getattr(args, option, None)
        if value is not None:
            check_whole_number(value, "--" + option.replace("_", "-"), least)
    if getattr(args, "output_margin", None) is not None:
        check_output_margin(args.output_margin, "--output-margin")


def check_outputs(args) -> None:
    """Raise :class:`SemFocusError` when an output of ``args`` is one of its inputs, or cannot
    be written as a file."""
    outputs = _outputs(args)
    if not outputs:
        return
    inputs = _inputs(args)
    for option, out in outputs:
        for what, inp in inputs:
            if same_file(out, inp):
                raise SemFocusError(f"--{option} {out} is the {what} {inp}: refusing to "
                                    f"overwrite an input; choose another output file.")
    for option, out in outputs:
        writable_file(out, f"--{option} {out}")


def check_out_folder(args) -> None:
    """Refuse an ``--out`` folder (``train``, ``compare``, ``make-dataset``) that is a file or
    lies under one: ``make-dataset`` ended in a ``NotADirectoryError`` traceback."""
    out = getattr(args, "out", None)
    if out is None:
        return
    p = Path(out)
    if p.exists() and not p.is_dir():
        raise SemFocusError(f"--out {out} is a file, not a folder.")
    parent = existing_parent(p)
    if not parent.is_dir():
        raise SemFocusError(f"--out {out} cannot be made: {parent} is a file, not a folder.")


def same_file(a, b) -> bool:
    """Whether paths ``a`` and ``b`` name the same file (links and ``..`` followed)."""
    try:
        if os.path.exists(a) and os.path.exists(b):
            return os.path.samefile(a, b)
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return False


def _outputs(args) -> list[tuple[str, str]]:
    out = []
    for option in OUTPUT_OPTIONS:
        value = getattr(args, option, None)
        if value in (None, "", "-"):
            continue
        if option == "output" and getattr(args, "command", None) in PREFIX_COMMANDS:
            out += [(option, str(Path(value).with_suffix(s))) for s in (".json", ".md")]
        else:
            out.append((option, str(value)))
    return out


def _inputs(args) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    paths = list(getattr(args, "paths", None) or [])
    if getattr(args, "path", None):
        paths.append(args.path)
    for p in paths:
        found.append(("input image", str(p)))
        if Path(p).is_dir():
            try:
                found += [("input image", f) for f in expand_folders([p])]
            except SemFocusError:
                pass
    for option, what in (("manifest", "manifest"), ("gate", "gate file"),
                         ("annotations", "annotations file"), ("checkpoint", "checkpoint")):
        value = getattr(args, option, None)
        if value:
            found.append((what, str(value)))
    for option in ("manifest", "annotations"):
        if getattr(args, option, None):
            found += [("input image", p) for p in _listed_paths(getattr(args, option))]
    init = getattr(args, "init", None)
    if init not in (None, "scratch", "default"):
        found.append(("checkpoint", str(init)))
    if getattr(args, "command", None) in MODEL_COMMANDS and not getattr(args, "checkpoint", None):
        found.append(("checkpoint", str(default_model_path())))
    return found


def _listed_paths(table) -> list[str]:
    """The ``path`` column of a manifest or annotations CSV, against its folder (nothing when
    it cannot be read: the command itself says why)."""
    try:
        with open(table, newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error):
        return []
    base = Path(table).parent
    return [str(base / r["path"].strip()) for r in rows if (r.get("path") or "").strip()]
