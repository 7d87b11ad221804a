"""``semfocus watch`` (issue 22): the installed program, in its own process, watches a folder
that a writer process (``tests/watch_writer.py``) fills as an acquisition does: a frame there
before the watch starts, frames written in chunks, one with a pause longer than the settle time
halfway, one renamed into place from ``.part``, a corrupt file, a file deleted half-written.
The watch is killed with SIGKILL in the middle, frames arrive while it is down, and a second
watch with the same ``--output`` finishes the table. Then every good frame has exactly one
row, whose score and worst region are those ``semfocus score`` gives for the same file; the
corrupt file has one row with its reason; the deleted file none. With OS events (and a gate,
a retake list and a report) and with ``--poll`` (stopped with Ctrl-C).
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from napari_semfocus.gate.file import Gate

from ..helpers import needs_default_model, parse_csv, run_cli, synthetic_gate
from ..watch_writer import BLURRED, GOOD, MAGNIFICATION

pytestmark = needs_default_model

SEMFOCUS = Path(sys.executable).with_name("semfocus")
WRITER = Path(__file__).resolve().parents[1] / "watch_writer.py"
WAIT_S = 240  # only against hangs: nothing here is timed
EXIT_S = 90  # the same for a watch told to stop
HEADER = "path,index,magnification,score,score_low,score_high,worst_region,error"
GATED_HEADER = "path,index,magnification,score,score_low,score_high,worst_region,accepted,error"


def wait_for(check, what: str):
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"waited {WAIT_S} s for {what}")


def rows_of(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with open(path, newline="") as fh:
        return [r for r in csv.DictReader(fh) if r.get("error") is not None]


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_watch(folder: Path, log: Path, *options) -> subprocess.Popen:
    args = [str(SEMFOCUS), "watch", str(folder), "--magnification", str(MAGNIFICATION),
            "--settle", "0.25", "--give-up", "2", *options]
    env = {**os.environ, "PYTHONFAULTHANDLER": "1"}  # a hang's stacks land in the log (ended)
    # Ctrl-C must reach it as in a terminal: a run started in the background (CI, `cmd &`)
    # inherits SIGINT ignored, and Python then installs no KeyboardInterrupt handler
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=open(log, "w"),  # noqa: SIM115
                            env=env, preexec_fn=_default_sigint)
    wait_for(lambda: "watching" in log.read_text() or proc.poll() is not None, "the watch")
    assert proc.poll() is None, log.read_text()
    return proc


def ended(proc: subprocess.Popen, log: Path) -> int:
    """The watch's exit status; one that has not ended after EXIT_S (Ctrl-C or idle: it only
    has to close its table) is aborted, so that its threads' stacks (faulthandler) are in the
    failure's log."""
    try:
        return proc.wait(EXIT_S)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)
        proc.wait(30)
        pytest.fail(f"the watch did not end within {EXIT_S} s:\n{log.read_text()}")


def write(folder: Path, phase: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(WRITER), str(folder), phase])


@pytest.mark.parametrize("mode", ["events", "poll"])
def test_watch_scores_each_complete_frame_once_through_a_kill(tmp_path, capsys, mode):
    acq, out = tmp_path / "acq", tmp_path / "scores.csv"
    acq.mkdir()
    subprocess.run([sys.executable, str(WRITER), str(acq), "backlog"], check=True)
    gated = mode == "events"
    options = ["--output", str(out)]
    if gated:
        gate = synthetic_gate(tmp_path / "gate.json")
        options += ["--gate", str(gate), "--retake", str(tmp_path / "retake.csv"),
                    "--report", str(tmp_path / "report.html"), "--no-maps"]
    else:
        options += ["--poll", "0.2"]

    first = start_watch(acq, tmp_path / "first.log", *options)
    writer = write(acq, "live")
    # killed once the backlog frame and two live ones have rows; the writer goes on meanwhile
    wait_for(lambda: len(rows_of(out)) >= 3, "three rows")
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert writer.wait(WAIT_S) == 0
    assert out.read_text().startswith((GATED_HEADER if gated else HEADER) + "\n")

    second = start_watch(acq, tmp_path / "second.log", *options,
                         *(["--until-idle", "2"] if gated else []))
    assert write(acq, "after").wait(WAIT_S) == 0
    wait_for(lambda: {r["path"] for r in rows_of(out)} >= {str(acq / n) for n in GOOD},
             "every good frame")
    if not gated:
        wait_for(lambda: any(r["error"] for r in rows_of(out)), "the corrupt file's row")
        second.send_signal(signal.SIGINT)  # Ctrl-C
    assert ended(second, tmp_path / "second.log") == 0, (tmp_path / "second.log").read_text()
    logs = (tmp_path / "first.log").read_text() + (tmp_path / "second.log").read_text()

    lines = out.read_text().splitlines()
    assert lines[0] == (GATED_HEADER if gated else HEADER)
    rows = parse_csv(out.read_text())
    names = [Path(r["path"]).name for r in rows]
    assert sorted(names) == sorted(GOOD + ["bad.png"])  # each once; none of gone.tif
    assert not any(n.endswith(".part") for n in names)
    bad = next(r for r in rows if r["path"].endswith("bad.png"))
    assert bad["score"] == "" and "does not end with its PNG end (IEND) chunk" in bad["error"]
    assert f"{acq / 'bad.png'}: ERROR" in logs

    # the scores are those of `semfocus score` on the same files
    good = {r["path"]: r for r in rows if not r["error"]}
    code, text, err = run_cli(["score", *sorted(good), "--magnification", MAGNIFICATION],
                              capsys)
    assert code == 0, err
    for want in parse_csv(text):
        got = good[want["path"]]
        assert (got["index"], got["magnification"], got["score"], got["worst_region"]) == (
            want["index"], want["magnification"], want["score"], want["worst_region"])
        assert got["error"] == ""
        assert f"{want['path']}  score {float(want['score']):.2f}" in logs
    if not gated:
        return
    # the gate: blurred frames rejected, by the gate's own rule; the retake list; the report
    gate = Gate.load(tmp_path / "gate.json")
    for path, r in good.items():
        assert r["accepted"] == str(int(float(r["score"]) >= gate.threshold))
        assert (r["accepted"] == "0") == (Path(path).name in BLURRED), (path, r["score"])
    retake = parse_csv((tmp_path / "retake.csv").read_text())
    assert sorted(Path(r["path"]).name for r in retake) == sorted([*BLURRED, "bad.png"])
    assert "gone.tif was deleted before it was scored; skipped" in logs
    page = (tmp_path / "report.html").read_text()
    assert f"Rejected frames: {len(BLURRED)}" in page
