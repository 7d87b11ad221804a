"""A CSV table written while a long run goes on, and continued after an interruption
(``semfocus score / gate apply / map`` with ``--workers``, ``--scheduler`` or ``--resume``).

Rows come in blocks (a few input files each), always in the input order, and each block is
written and flushed as it comes: a run that is killed leaves a table whose rows are those of
the first inputs, the last of them possibly cut short. ``--resume`` reads that table back: its
header must be the command's own and the files its rows name (first column) must be the first
inputs, in order; otherwise one sentence, and the file is left as it is. The rows of the last
file named (which the kill may have cut, with a half-written line) are dropped and that file is
done again; the files before it are skipped. So a finished table, interrupted or not, is the
one a single process writes: no row twice, none missing, in the input order.

``names=None`` is for inputs not known in advance (``semfocus watch``: frames as they arrive):
the rows may name files in any order, each file's rows together, one block per file written in
one piece. Every complete line is kept, except that when the last line was cut the rows of the
file it names are dropped (that file is done again); :attr:`kept` lists the files kept.
"""

from __future__ import annotations

import csv
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from ..errors import SemFocusError


class CsvStream:
    """Append blocks of CSV rows to ``path`` (None or '-': stdout; given as ``option``) under
    the line ``header``; with ``resume``, keep the rows of :attr:`skip` leading inputs (named
    ``names``) already there. Use as a context manager."""

    def __init__(self, path, header: str, names: Sequence[str] | None, resume: bool = False,
                 option: str = "--output"):
        self.path = None if path in (None, "-") else Path(path)
        self.header = header
        self.option = option
        self.skip = 0  # leading inputs whose rows are kept
        self.kept: list[str] = []  # the files whose rows are kept, in the table's order
        self._fh = None  # opened at the first write: a run that fails first leaves no trace
        self._keep = None  # bytes of the table to keep (None: write it afresh)
        if resume and self.path is None:
            raise SemFocusError(f"--resume needs {option} FILE: the table to continue.")
        if resume and self.path.is_file():
            self._keep = self._rows_to_keep(names)

    def _rows_to_keep(self, names: Sequence[str]) -> int | None:
        """The byte length of the table to keep (None: start afresh), after checking it."""
        option = self.option
        # a watch always continues its table: no --resume to leave out
        lead, leave_out = (("--resume", " or leave out --resume") if names is not None
                           else ("resuming", ""))
        data = self.path.read_bytes()
        lines = data.splitlines(keepends=True)
        cut = bool(lines) and not lines[-1].endswith(b"\n")
        if cut:
            lines.pop()  # cut by the kill
        if not lines:
            return None
        try:
            text = [line.decode("utf-8") for line in lines]
        except UnicodeDecodeError:
            raise SemFocusError(f"{lead}: {self.path} is not a UTF-8 CSV table; give another "
                                f"{option}{leave_out}.") from None
        got = text[0].rstrip("\r\n").lstrip("\ufeff")
        if got != self.header:
            raise SemFocusError(f"{lead}: {self.path} has the columns '{got}', not this "
                                f"command's '{self.header}'; give another {option}{leave_out}.")
        offset = len(lines[0])
        starts: list[int] = []  # where each input's rows begin
        previous = None
        seen: set[str] = set()
        for lineno, line in enumerate(text[1:], start=2):
            name = next(csv.reader([line]), [""])[0]
            if name != previous:
                k = len(starts)
                if names is None:
                    if name in seen:
                        raise SemFocusError(
                            f"{lead}: {self.path} line {lineno} is for {name}, whose rows "
                            "are not together: the table is not one this command wrote; give "
                            f"another {option}.")
                elif k >= len(names) or names[k] != name:
                    expected = (f"input {k + 1} is {names[k]}" if k < len(names)
                                else f"there are only {len(names)} inputs")
                    raise SemFocusError(
                        f"--resume: {self.path} line {lineno} is for {name}, but {expected}: "
                        "the table is from another run; give the same inputs in the same order, "
                        f"or another {option}.")
                starts.append(offset)
                self.kept.append(name)
                seen.add(name)
                previous = name
            offset += len(lines[lineno - 1])
        if not starts:
            return offset
        if names is None and not cut:
            return offset
        self.kept.pop()
        self.skip = len(starts) - 1  # the last file named may be incomplete: done again
        return starts[-1]

    def kept_rows(self) -> list[dict]:
        """The rows kept from the table being continued (those of :attr:`kept`), as dicts."""
        if not self.kept:
            return []
        keep = set(self.kept)
        with open(self.path, newline="", encoding="utf-8") as fh:
            return [r for r in csv.DictReader(fh) if r.get(self.header.split(",")[0]) in keep]

    def write(self, rows: str) -> None:
        """Append ``rows`` (CSV lines, each ending in a line break) and flush them."""
        if self._fh is None:
            self._open()
        self._fh.write(rows)
        self._fh.flush()

    def _open(self) -> None:
        if self.path is None:
            self._fh = sys.stdout
        elif self._keep is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.path, "w", encoding="utf-8", newline="")  # noqa: SIM115
        else:
            os.truncate(self.path, self._keep)
            self._fh = open(self.path, "a", encoding="utf-8", newline="")  # noqa: SIM115
            return
        self._fh.write(self.header + "\n")

    def close(self, completed: bool = True) -> None:
        """Close the file; a ``completed`` run that wrote nothing still writes the header."""
        if self._fh is None and completed:
            self._open()
        if self._fh not in (None, sys.stdout):
            self._fh.close()

    def __enter__(self) -> CsvStream:
        return self

    def __exit__(self, kind, value, traceback) -> None:
        self.close(completed=kind is None)
