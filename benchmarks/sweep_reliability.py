"""The bad-input sweep of issue 28: every ``semfocus`` command against odd images, magnification
text, outputs onto inputs or folders or under files, cut and foreign ``--resume`` tables, bad
annotation CSVs, tampered checkpoints and gate files, unbounded maps, bad counts and numbers,
Ctrl-C and SIGKILL during a run, and the Python API with the same inputs (the cases and their
fixtures: benchmarks/sweep_cases.py).

Each command-line case runs ``napari_semfocus.cli.main.main(ARGV)`` in this process (stdout and
stderr captured, each stderr write timed, an alarm after ``--timeout`` seconds); the interrupted
runs start ``python -m napari_semfocus.cli`` in a child process and send it SIGINT or SIGKILL
once it has printed a given line. A case fails as

- ``traceback``: an exception left ``main`` or the API call (other than ``SemFocusError``), or a
  child printed a traceback;
- ``hang``: it ran past ``--timeout`` seconds;
- ``silent_wait``: more than ``--quiet`` seconds passed without a line on stderr (progress or
  the end);
- ``silent_nan``: exit 0 with ``nan`` or ``inf`` in a score column of a CSV it wrote;
- ``tampered_accepted``: a tampered model or gate file (or other input to refuse) gave exit 0;
- ``input_changed``: a file of the fixture folder changed (SHA-256 before and after);
- ``bad_sentence``: a refusal that is not one line ``semfocus COMMAND: error: ...`` (progress
  lines before it aside) naming the input (a path, option or value of the command line), or
  that says something false (a folder reported as missing, ``>= 7`` for images that are all
  below 7), or a Python warning on stderr;
- ``refused_good_input``: exit 2 for input that should be worked on;
- ``partial_output``: an interrupted run left an output file (a ``--resume`` table: a cut row).

Ctrl-C must end in exit 130 and ``semfocus COMMAND: interrupted.`` on a line of its own (else
``bad_sentence``).

Which package is swept is whichever ``napari_semfocus`` comes first on ``sys.path``: for a
before / after count, run it with ``PYTHONPATH`` at ``src/`` of an earlier commit (``git archive
COMMIT src | tar -x -C DIR``). The fixtures are made with that package too (an untrained
mobilenet_v3_small checkpoint, 96 x 128 frames), so the sweep takes a few minutes on a CPU.

    python benchmarks/sweep_reliability.py [--timeout 90] [--quiet 20] [--only SUBSTRING]
        [--skip-interrupt] [--output summary.md]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sweep_cases import OK, REFUSE, api_cases, cases, interrupts, make_fixtures  # noqa: E402

KINDS = ("traceback", "hang", "silent_wait", "silent_nan", "tampered_accepted", "input_changed",
         "bad_sentence", "refused_good_input", "partial_output")
# words of a command line that name no input (the sentence must name something else)
GENERIC = {"score", "measure", "map", "gate", "apply", "calibrate", "train", "evaluate",
           "compare", "make-dataset", "cpu", "--device", "--checkpoint"}


class Hang(Exception):
    pass


class TimedText(io.TextIOBase):
    """A stderr that keeps the text and the longest wait between two writes."""

    def __init__(self):
        self.parts: list[str] = []
        self.last = time.monotonic()
        self.longest = 0.0

    def write(self, text: str) -> int:
        self.tick()
        self.parts.append(text)
        return len(text)

    def tick(self) -> None:
        now = time.monotonic()
        self.longest, self.last = max(self.longest, now - self.last), now

    def getvalue(self) -> str:
        return "".join(self.parts)


# ---- running ----------------------------------------------------------------------------------
def fingerprints(d: Path) -> dict:
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(d.rglob("*"))
            if p.is_file() and not {"out", "run"} & set(p.relative_to(d).parts)}


def prepare(d: Path, setup=()) -> None:
    """Per-case state: empty output folders, fresh copies of the tables --resume continues, and
    the case's own copies."""
    for name in ("out", "run"):
        shutil.rmtree(d / name, ignore_errors=True)
        (d / name).mkdir()
    shutil.copy(d / "cut.csv", d / "out" / "resume.csv")
    shutil.copy(d / "foreign.csv", d / "out" / "foreign_copy.csv")
    for src, dst in setup:
        shutil.copy(d / src, d / dst)


def non_finite_scores(path: Path) -> bool:
    import csv

    if not path.is_file() or path.suffix != ".csv":
        return False
    rows = list(csv.DictReader(io.StringIO(path.read_text())))
    return any(str(r.get(k, "")).strip().lower() in ("nan", "inf", "-inf")
               for r in rows for k in ("score", "worst_region"))


def names_input(sentence: str, argv: list[str]) -> bool:
    """Whether ``sentence`` names a path, option or value of ``argv`` (beyond the command)."""
    words = {a for a in argv if a not in GENERIC and len(a) >= 2}
    words |= {Path(a).name for a in words if "/" in a}
    words |= {a.lstrip("-").replace("-", " ") for a in words if a.startswith("--")}  # Option
    for a in argv:  # a number as Python writes it back ("2" -> "2.0", "1e308" -> "1e+308")
        try:
            words |= {f"{float(a):g}", str(float(a))}
        except ValueError:
            pass
    return any(w.lower() in sentence.lower() for w in words)


def judge_refusal(text: str, argv: list[str], forbid) -> bool:
    """Whether stderr ``text`` ends in one good sentence: the one ``: error: `` line, the last,
    naming the input, with none of the ``forbid`` texts."""
    errors = [ln for ln in text.splitlines() if ": error: " in ln]
    last = (text.strip().splitlines() or [""])[-1]
    return (len(errors) == 1 and errors[0] == last and last.startswith("semfocus ")
            and names_input(last.split(": error: ", 1)[1], argv)
            and not any(f in text for f in forbid))


PY_WARNING = re.compile(r"^\S+:\d+: \w*Warning: |^\w*Warning: ", re.M)


def run_case(c: dict, d: Path, timeout: float, quiet: float) -> tuple[list[str], str]:
    from napari_semfocus.cli.main import main

    argv = [a.replace("{d}", str(d)) for a in c["argv"]]
    prepare(d, c["setup"])
    before = fingerprints(d)
    out, err = io.StringIO(), TimedText()

    def alarm(*_):
        raise Hang()

    old = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    code, escaped = None, None
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv)
    except Hang:
        escaped = "hang"
    except SystemExit as exc:  # argparse
        code = exc.code
    except BaseException as exc:  # noqa: BLE001 - a traceback is what the sweep looks for
        escaped = f"{type(exc).__name__}: {str(exc)[:150]}"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    err.tick()
    text = err.getvalue()
    fails = []
    if escaped == "hang":
        fails.append("hang")
    elif escaped:
        fails.append("traceback")
    elif err.longest > quiet:
        fails.append("silent_wait")
    if fingerprints(d) != before:
        fails.append("input_changed")
    if code == 0 and c["expect"] == REFUSE:
        fails.append("tampered_accepted")
    if code == 2 and c["expect"] == OK:
        fails.append("refused_good_input")
    if code == 0 and any(non_finite_scores(Path(o.replace("{d}", str(d))))
                         for o in c["outputs"]):
        fails.append("silent_nan")
    if (code == 2 and not judge_refusal(text, argv, c["forbid"])) or PY_WARNING.search(text):
        fails.append("bad_sentence")
    detail = escaped or (text.strip().splitlines() or [""])[-1][:300]
    return fails, f"exit {code}: {detail}"


def run_interrupt(c: dict, d: Path, timeout: float) -> tuple[list[str], str]:
    """``c["argv"]`` in a child process, ``c["signal"]`` once a stderr line starts with
    ``c["when"]``: no traceback, no input changed, no output file (a --resume table: whole
    rows), and after SIGINT exit 130 with ``semfocus COMMAND: interrupted.`` on its own line."""
    prepare(d)
    before = fingerprints(d)
    argv = [sys.executable, "-m", "napari_semfocus.cli",
            *[a.replace("{d}", str(d)) for a in c["argv"]]]
    proc = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    start, err, sent = time.monotonic(), [], False
    fails = []
    for line in proc.stderr:  # a progress bar (\r, no newline) is read as one line with its end
        err.append(line)
        if any(part.startswith(c["when"]) for part in line.split("\r")):
            proc.send_signal(getattr(signal, c["signal"]))
            sent = True
            break
        if time.monotonic() - start > timeout:
            break
    try:
        rest = proc.communicate(timeout=timeout)[1]
    except subprocess.TimeoutExpired:
        proc.kill()
        rest = proc.communicate()[1]
        fails.append("hang")
    text = "".join(err) + rest
    if "Traceback" in text:
        fails.append("traceback")
    if fingerprints(d) != before:
        fails.append("input_changed")
    output = c["output"] and Path(c["output"].replace("{d}", str(d)))
    if output and output.is_file():
        data = output.read_text()
        if not c["table"] or (data and not data.endswith("\n")):
            fails.append("partial_output")
    command = c["argv"][0]
    if c["signal"] == "SIGINT" and (proc.returncode != 130 or f"semfocus {command}: interrupted."
                                    not in text.splitlines()):  # \r ends a line here too
        fails.append("bad_sentence")
    if not sent:
        text += f" (never saw a line starting {c['when']!r})"
    last = text.strip().splitlines()[-1][:300] if text.strip() else ""
    return fails, f"exit {proc.returncode}: {last}"


def run_api(call, d: Path, timeout: float) -> tuple[list[str], str]:
    """``call(d)`` must raise :class:`SemFocusError` with one line naming its input."""
    from napari_semfocus.errors import SemFocusError

    prepare(d)
    before = fingerprints(d)

    def alarm(*_):
        raise Hang()

    old = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    fails, detail = [], ""
    try:
        call(d)
        fails.append("tampered_accepted")
        detail = "returned"
    except Hang:
        fails.append("hang")
        detail = "hang"
    except SemFocusError as exc:
        detail = f"{type(exc).__name__}: {exc}"
        if "\n" in str(exc):
            fails.append("bad_sentence")
    except Exception as exc:  # noqa: BLE001
        fails.append("traceback")
        detail = f"{type(exc).__name__}: {str(exc)[:150]}"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    if fingerprints(d) != before:
        fails.append("input_changed")
    return fails, detail[:300]


def command_of(name: str) -> str:
    word = name.split()[0]
    if word in ("gate", "Ctrl-C", "SIGKILL"):
        return " ".join(name.split()[:2]) if word == "gate" else "interrupted runs"
    return "Python API" if "." in word or "_" in word else word


def commands() -> list[str]:
    """Every command of ``semfocus`` (``gate apply``, not ``gate``)."""
    import argparse as ap

    from napari_semfocus.cli.main import build_parser

    def subs(parser):
        return next((a.choices for a in parser._actions if isinstance(a, ap._SubParsersAction)),
                    {})
    found = []
    for name, sub in subs(build_parser()).items():
        found += [f"{name} {s}" for s in subs(sub)] or [name]
    return found


def summary(results: list, where: str, seconds: float) -> str:
    counts = Counter(k for *_, fails, _ in results for k in fails)
    failed = sum(1 for *_, fails, _ in results if fails)
    swept = {command_of(name) for name, *_ in results}
    unswept = [c for c in commands() if c not in swept]
    lines = [f"Swept `{where}`: {len(results)} cases, {failed} failing ({seconds:.0f} s).", "",
             "Commands without a case: " + (", ".join(f"`{c}`" for c in unswept) or "none")
             + ".", "", "| failure | cases |", "|---|---|"]
    lines += [f"| {k} | {counts.get(k, 0)} |" for k in KINDS]
    per: dict = {}
    for name, _, fails, _ in results:
        n, f = per.get(command_of(name), (0, 0))
        per[command_of(name)] = (n + 1, f + bool(fails))
    lines += ["", "| command | cases | failing |", "|---|---|---|"]
    lines += [f"| {cmd} | {n} | {f} |" for cmd, (n, f) in per.items()]
    lines += ["", "| case | expected | result | what it said (last line) |", "|---|---|---|---|"]
    for name, expect, fails, detail in results:
        said = " ".join(detail.split()).replace("|", "\\|")  # one table row
        lines.append(f"| {name} | {expect} | {', '.join(fails) or 'ok'} | {said} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--timeout", type=float, default=90.0)
    p.add_argument("--quiet", type=float, default=20.0,
                   help="the longest a case may run without a line on stderr (seconds)")
    p.add_argument("--only", help="run the cases whose name holds this text")
    p.add_argument("--skip-interrupt", action="store_true", help="leave out the interrupted runs")
    p.add_argument("--output", help="write the summary (Markdown) here too")
    args = p.parse_args(argv)
    import dask

    import napari_semfocus

    dask.config.set({"distributed.comm.timeouts.connect": "5s"})  # the unreachable scheduler
    results, t0 = [], time.monotonic()

    def show(name, fails, detail):
        print(f"{'FAIL ' + ','.join(fails) if fails else 'ok':<28} {name:<40} {detail[:120]}",
              flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        make_fixtures(d)
        pick = [c for c in cases() if not args.only or args.only in c["name"]]
        for c in pick:
            fails, detail = run_case(c, d, args.timeout, args.quiet)
            results.append((c["name"], c["expect"], fails, detail.replace(str(d), "D")))
            show(c["name"], fails, detail)
        for c in interrupts() if not args.skip_interrupt else []:
            if not args.only or args.only in c["name"]:
                fails, detail = run_interrupt(c, d, args.timeout)
                results.append((c["name"], f"{c['signal']}: no traceback, no output", fails,
                                detail.replace(str(d), "D")))
                show(c["name"], fails, detail)
        for name, call in api_cases():
            if not args.only or args.only in name:
                fails, detail = run_api(call, d, args.timeout)
                results.append((name, "SemFocusError", fails, detail.replace(str(d), "D")))
                show(name, fails, detail)
    text = summary(results, str(Path(napari_semfocus.__file__).parent),
                   time.monotonic() - t0)
    print("\n" + text)
    if args.output:
        Path(args.output).write_text(text)
    return 1 if any(fails for _, _, fails, _ in results) else 0


if __name__ == "__main__":
    sys.exit(main())
