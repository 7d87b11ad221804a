"""Scale-out on dask (``--workers``, ``--scheduler``) and ``--resume``: the table is the one a
single process writes; an interrupted run resumed completes it without a row twice or missing;
bad addresses and foreign tables are one sentence (exit 2) and leave the output as it was."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import dask
import numpy as np
import pytest
import tifffile
from distributed import LocalCluster

from napari_semfocus.cli.main import main
from napari_semfocus.gate.calibrate import calibrate
from napari_semfocus.gate.file import Gate
from napari_semfocus.scoring.checkpoint import checkpoint_fingerprint

from ..helpers import parse_csv, run_cli, synthetic


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """Five 2-D frames and a 3-slice stack (third in the input order)."""
    root = tmp_path_factory.mktemp("scaleout")
    rng = np.random.default_rng(0)
    paths = []
    for k in range(6):
        shape = (3, 160, 200) if k == 2 else (160, 200)
        path = root / f"frame{k}.tif"
        tifffile.imwrite(path, rng.integers(0, 255, shape, dtype=np.uint8))
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def scheduler():
    """A dask cluster (one worker thread in this process) for --scheduler."""
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                      dashboard_address=":0") as cluster:
        yield cluster.scheduler_address


def _score(images, checkpoint, output, *extra):
    return ["score", *images, "--checkpoint", checkpoint, "--device", "cpu", "--precision",
            "float32", "--magnification", "5000", "--output", output, *extra]


@pytest.fixture(scope="module")
def reference(images, untrained_checkpoint, tmp_path_factory):
    """The single-process table (8 rows: the stack gives 3)."""
    out = tmp_path_factory.mktemp("reference") / "scores.csv"
    assert main([str(a) for a in _score(images, untrained_checkpoint, out)]) == 0
    return out.read_text()


def test_two_workers_write_the_single_process_table(images, untrained_checkpoint, reference,
                                                    tmp_path, capsys):
    out = tmp_path / "scores.csv"
    code, _, err = run_cli(_score(images, untrained_checkpoint, out, "--workers", "2",
                                  "--files-per-task", "2"), capsys)
    assert code == 0, err
    assert out.read_text() == reference
    assert len(parse_csv(reference)) == 8
    assert "dask LocalCluster of 2 workers, torch threads per worker: 1" in err
    assert [ln.split(": ", 1)[1] for ln in err.splitlines() if "written" in ln] == [
        "[2/6 files] partition 1/3 written", "[4/6 files] partition 2/3 written",
        "[6/6 files] partition 3/3 written"]


@pytest.mark.parametrize("where", ["this process", "scheduler"])
def test_resume_after_a_kill_completes_without_duplicates_or_gaps(
        where, images, untrained_checkpoint, reference, scheduler, tmp_path, capsys):
    out = tmp_path / "scores.csv"
    lines = reference.splitlines(keepends=True)
    cluster = ["--scheduler", scheduler] if where == "scheduler" else []
    # killed: after the stack's second slice and half of its third row; after a whole file
    for cut, skipped in ((len("".join(lines[:5])) + 9, 2), (len("".join(lines[:7])), 3)):
        out.write_text(reference[:cut])
        code, _, err = run_cli(_score(images, untrained_checkpoint, out, "--resume",
                                      "--files-per-task", "1", *cluster), capsys)
        assert code == 0, err
        assert out.read_text() == reference
        assert f"resuming: the first {skipped} of 6 files are in {out}; {6 - skipped} to go" in err
        assert err.count("written") == 6 - skipped
    # a finished table resumed: the last file is done again, the table stays the same
    code, _, err = run_cli(_score(images, untrained_checkpoint, out, "--resume"), capsys)
    assert code == 0 and out.read_text() == reference
    # no table yet: --resume starts one
    out.unlink()
    code, _, err = run_cli(_score(images, untrained_checkpoint, out, "--resume"), capsys)
    assert code == 0 and out.read_text() == reference


def test_resume_refuses_another_table_and_leaves_it(images, untrained_checkpoint, reference,
                                                     tmp_path, capsys):
    out = tmp_path / "scores.csv"
    foreign = "path,row,column\nx.tif,0,0\n"
    out.write_text(foreign)
    code, std, err = run_cli(_score(images, untrained_checkpoint, out, "--resume"), capsys)
    assert code == 2 and std == "" and out.read_text() == foreign
    assert err == (f"semfocus score: error: --resume: {out} has the columns 'path,row,column', "
                   "not this command's 'path,index,magnification,score,score_low,score_high,"
                   "worst_region'; give another --output or leave out --resume.\n")
    # rows of other inputs (or in another order)
    other = reference.replace(str(images[1]), str(images[3]))
    out.write_text(other)
    code, _, err = run_cli(_score(images, untrained_checkpoint, out, "--resume"), capsys)
    assert code == 2 and out.read_text() == other and err.count("\n") == 1
    assert f"line 3 is for {images[3]}, but input 2 is {images[1]}: the table is from another run" \
        in err
    # stdout cannot be resumed
    code, _, err = run_cli(_score(images, untrained_checkpoint, "-", "--resume"), capsys)
    assert (code, err) == (2, "semfocus score: error: --resume needs --output FILE: the table to "
                              "continue.\n")


def test_scheduler_runs_the_table_and_a_bad_address_is_one_sentence(
        images, untrained_checkpoint, reference, scheduler, tmp_path, capsys):
    out = tmp_path / "scores.csv"
    code, _, err = run_cli(_score(images, untrained_checkpoint, out, "--scheduler", scheduler),
                           capsys)
    assert code == 0, err
    assert out.read_text() == reference
    assert f"dask cluster at {scheduler}, 1 workers" in err
    before = out.read_text()
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        for address in ("tcp://127.0.0.1:1", "not an address:::"):
            code, std, err = run_cli(_score(images, untrained_checkpoint, out, "--scheduler",
                                            address), capsys)
            # a line before dask's wait (issue 28: 30 s without a word), then the sentence
            first, last = err.splitlines()
            assert code == 2 and std == ""
            assert first == (f"semfocus score: connecting to the dask scheduler at {address} "
                             "(waits up to 1s)")
            assert last.startswith(f"semfocus score: error: --scheduler {address}: no dask "
                                   "scheduler could be reached there (")
            assert out.read_text() == before  # the output is left as it was
    code, _, err = run_cli(_score(images, untrained_checkpoint, out, "--workers", "0"), capsys)
    assert (code, err) == (2, "semfocus score: error: --workers 0 is not a number of worker "
                              "processes (1 or more).\n")


def test_gate_apply_on_the_scheduler_is_the_single_process_table(
        images, untrained_checkpoint, scheduler, tmp_path, capsys):
    scores, expert = synthetic()
    model = {**checkpoint_fingerprint(untrained_checkpoint),
             "checkpoint_path": str(untrained_checkpoint.resolve())}
    gate = Gate.from_calibration(calibrate(scores, expert_scores=expert), model=model)
    gate_file = gate.save(tmp_path / "gate.json")
    args = ["gate", "apply", *images, "--gate", gate_file, "--device", "cpu", "--precision",
            "float32", "--magnification", "5000", "--output"]
    one, many = tmp_path / "one.csv", tmp_path / "many.csv"
    assert run_cli(args + [one], capsys)[0] == 0
    code, _, err = run_cli(args + [many, "--scheduler", scheduler, "--files-per-task", "4"],
                           capsys)
    assert code == 0, err
    assert many.read_text() == one.read_text()
    rows = parse_csv(one.read_text())
    assert len(rows) == 8 and rows[0]["accepted"] in ("0", "1")
    accepted = sum(r["accepted"] == "1" for r in rows)
    assert f"{accepted} accepted, {8 - accepted} rejected of 8 images/slices." in err


def test_map_of_several_files_is_one_table(images, untrained_checkpoint, scheduler, tmp_path,
                                           capsys):
    one = tmp_path / "one.csv"
    base = ["map", "--checkpoint", untrained_checkpoint, "--device", "cpu", "--precision",
            "float32", "--magnification", "5000", "--tile", "64", "64"]
    assert run_cli(base + [images[0], "--csv", one], capsys)[0] == 0
    table = tmp_path / "maps.csv"
    code, _, err = run_cli(base + [*images[:2], "--csv", table, "--scheduler", scheduler], capsys)
    assert code == 0, err
    rows = parse_csv(table.read_text())
    assert list(rows[0]) == ["path", "row", "column", "y", "x", "score", "score_low", "score_high", "certainty", "weight"]
    first = [r for r in rows if r["path"] == str(images[0])]
    assert len(first) == len(rows) // 2
    assert [{k: v for k, v in r.items() if k != "path"} for r in first] == parse_csv(one.read_text())
    code, _, err = run_cli(base + [*images[:2], "--png", tmp_path / "x.png"], capsys)
    assert (code, err) == (2, "semfocus map: error: several images (or --workers, --scheduler, "
                              "--resume) are mapped into one table: give --csv, not --output or "
                              "--png.\n")


def test_a_killed_run_resumed_completes_the_table(untrained_checkpoint, tmp_path, capsys):
    """The installed command killed (SIGKILL) while it writes, then resumed."""
    rng = np.random.default_rng(1)
    files = []
    for k in range(24):
        files.append(tmp_path / f"f{k:02d}.tif")
        tifffile.imwrite(files[-1], rng.integers(0, 255, (96, 128), dtype=np.uint8))
    ref, out = tmp_path / "ref.csv", tmp_path / "out.csv"
    assert main([str(a) for a in _score(files, untrained_checkpoint, ref)]) == 0
    cmd = [sys.executable, "-m", "napari_semfocus.cli",
           *map(str, _score(files, untrained_checkpoint, out, "--resume", "--files-per-task", "1"))]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while proc.poll() is None and time.monotonic() < deadline:
        if out.is_file() and out.read_text().count("\n") >= 3:  # the header and two rows
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.005)
    proc.wait()
    killed = out.read_text()
    assert proc.returncode == -signal.SIGKILL and killed.count("\n") < 25, killed
    code, _, err = run_cli(_score(files, untrained_checkpoint, out, "--resume"), capsys)
    assert code == 0, err
    assert out.read_text() == ref.read_text()
