"""The ``semfocus`` command line: the parser and the exit codes. Every subcommand calls the same
jobs and core functions as the widgets.

Exit codes: 0 success, 2 bad input (one line on stderr naming the input and the problem).
"""

from __future__ import annotations

import argparse
import sys
import warnings

from .. import __version__
from ..errors import SemFocusError, SemFocusWarning
from . import focus_curve, focus_map, gate, model, score, suggest, watch
from .common import EXIT_BAD_INPUT, end_bar, eprint
from .guard import check_args


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="semfocus", description="Focus scores (0-10) for SEM images.")
    parser.add_argument("--version", action="version", version=f"napari-semfocus {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for register in (score.register, model.register, focus_map.register, gate.register,
                     watch.register, focus_curve.register, suggest.register):
        register(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    default_showwarning, warnings.showwarning = (warnings.showwarning,
                                                 _warning_printer(args.command))
    try:
        check_args(args)  # before any work: counts, and outputs never overwrite inputs
        return int(args.func(args) or 0)
    except SemFocusError as exc:
        eprint(f"semfocus {args.command}: error: {exc}")
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        eprint(f"semfocus {args.command}: interrupted.")
        return 130
    finally:
        end_bar()
        warnings.showwarning = default_showwarning


def _warning_printer(command: str):
    """``warnings.showwarning`` for the CLI: a :class:`SemFocusWarning` as one line
    ``semfocus COMMAND: warning: sentence``; other warnings as Python prints them."""
    default = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, SemFocusWarning):
            eprint(f"semfocus {command}: warning: {message}")
        else:
            default(message, category, filename, lineno, file, line)
    return show


if __name__ == "__main__":
    sys.exit(main())
