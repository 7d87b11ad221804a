"""The ``semfocus`` command line. Every subcommand calls the same core functions as the widgets.

Exit codes: 0 success, 2 bad input (one line on stderr naming the input and the problem).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .. import __version__
from ..errors import SemFocusError

EXIT_BAD_INPUT = 2


def _eprint(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _write_text(text: str, output) -> None:
    if output in (None, "-"):
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    from ..scoring.checkpoint import atomic_write

    atomic_write(Path(output), lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def _add_inputs(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="*", metavar="PATH", help="image files (TIFF, PNG, JPEG)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--magnification", type=float, help="magnification for every file")
    g.add_argument("--manifest", help="CSV with columns path,magnification")
    p.add_argument("--output", "-o", help="CSV file to write (default: stdout)")


def cmd_score(args) -> int:
    from ..scoring.batch import plan_inputs, rows_to_csv, score_files
    from ..scoring.scorer import FocusScorer

    plan = plan_inputs(args.paths, args.magnification, args.manifest)
    scorer = (FocusScorer.from_checkpoint(args.checkpoint, device=args.device) if args.checkpoint
              else FocusScorer.default(device=args.device))
    announced = []

    def score_fn(data, mag, databar, name):
        if not announced:  # after the first file's checks, so a bad input prints one line only
            _eprint(f"semfocus: model {scorer.name} on {scorer.device_name}")
            announced.append(True)
        return scorer.score(data, mag, region=args.region, batch_size=args.batch_size,
                            exclude_bottom_rows=databar, name=name)

    rows = score_files(plan, score_fn, _eprint, need_magnification=scorer.needs_magnification)
    _write_text(rows_to_csv(rows), args.output)
    return 0


def cmd_measure(args) -> int:
    from ..scoring.batch import plan_inputs, rows_to_csv, score_files
    from ..scoring.measures import measure

    plan = plan_inputs(args.paths, args.magnification, args.manifest)

    def score_fn(data, mag, databar, name):
        return measure(data, args.measure, exclude_bottom_rows=databar, label=name)

    rows = score_files(plan, score_fn, _eprint, need_magnification=False)
    _write_text(rows_to_csv(rows, value_name="score"), args.output)
    return 0


def add_model_args(p, checkpoint_help="model file (.safetensors); default: the shipped model",
                   region_help="whole image (mean over tiles, default) or the paper's 320x240 "
                               "centre crop") -> None:
    """--checkpoint, --device, --batch-size and (unless ``region_help`` is None) --region."""
    from ..scoring.devices import DEVICE_CHOICES
    from ..scoring.preprocess import REGIONS

    p.add_argument("--checkpoint", help=checkpoint_help)
    p.add_argument("--device", default="auto", choices=DEVICE_CHOICES)
    p.add_argument("--batch-size", type=int, default=32)
    if region_help is not None:
        p.add_argument("--region", default="whole", choices=REGIONS, help=region_help)


def build_parser() -> argparse.ArgumentParser:
    from ..scoring.measures import MEASURES

    parser = argparse.ArgumentParser(
        prog="semfocus", description="Focus scores (0-10) for SEM images.")
    parser.add_argument("--version", action="version", version=f"napari-semfocus {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("score", help="score images and stacks with the focus model")
    _add_inputs(p)
    add_model_args(p)
    p.set_defaults(func=cmd_score)

    p = sub.add_parser("measure", help="classical focus measures in the same CSV shape")
    _add_inputs(p)
    p.add_argument("--measure", required=True, choices=sorted(MEASURES))
    p.set_defaults(func=cmd_measure)

    for register in _extra_commands():
        register(sub)
    return parser


def _extra_commands():
    """Subcommands that live beside their core modules (training, evaluation, datasets...)."""
    from . import gate as cli_gate
    from . import map as cli_map
    from . import model as cli_model

    return [cli_model.register, cli_map.register, cli_gate.register]


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except SemFocusError as exc:
        _eprint(f"semfocus {args.command}: error: {exc}")
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        _eprint(f"semfocus {args.command}: interrupted.")
        return 130


if __name__ == "__main__":
    sys.exit(main())
