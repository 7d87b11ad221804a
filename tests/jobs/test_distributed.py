"""The scale-out runner's own choices (jobs/distributed.py): the automatic files per task, rows
written in the input order when tasks finish out of order, the LocalCluster's workers started
without dask's MALLOC_TRIM_THRESHOLD_, and the note about a cluster whose workers have it."""

from __future__ import annotations

import os
import time
from types import SimpleNamespace

import pytest
from distributed import LocalCluster

from napari_semfocus.io.csv_stream import CsvStream
from napari_semfocus.jobs import distributed as D
from napari_semfocus.progress import Status, run_to_end


@pytest.fixture(scope="module")
def scheduler():
    """A dask cluster of 2 worker threads in this process."""
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                      dashboard_address=":0") as cluster:
        yield cluster.scheduler_address


def rows_table(part: D.Partition) -> D.PartResult:
    """A table without a model: one row per file; the first partitions finish last."""
    time.sleep(0.05 if part.index < 2 else 0.0)
    rows = "".join(f"{f.name},{len(f.name)}\n" for f in part.files)
    return D.PartResult(part.index, len(part.files), rows, "model fake on nothing")


def _files(n):
    return [SimpleNamespace(name=f"f{k:04d}.tif") for k in range(n)]


def _run(files, cluster, path):
    statuses = []
    with CsvStream(path, "path,length", [f.name for f in files]) as out:
        written = run_to_end(D.write_table(rows_table, files, cluster, out),
                             lambda u: statuses.append(u.text) if isinstance(u, Status) else None)
    return written, statuses


def test_automatic_files_per_task_grows_with_the_files_and_shrinks_with_the_threads():
    f = D.files_per_task
    assert f(0, 2) == f(5, 2) == f(5, 1) == 1
    sizes = [f(n, 2) for n in (10, 100, 500, 1000, 2000, 10**6)]
    assert sizes == sorted(sizes) and sizes[0] == 1 and sizes[-1] == D.MAX_FILES_PER_TASK
    assert f(1000, 8) < f(1000, 2) < f(1000, 1) and f(1000, 0) == f(1000, 1)
    # each worker thread gets at least TASKS_PER_THREAD tasks until the tasks reach the cap
    for n, threads in ((640, 2), (1000, 2), (2000, 2), (3000, 4), (100, 1)):
        per = f(n, threads)
        assert per == D.MAX_FILES_PER_TASK or -(-n // per) >= D.TASKS_PER_THREAD * threads
        assert per == 1 or -(-n // (per + 1)) < D.TASKS_PER_THREAD * threads * 2


def test_one_process_cuts_the_files_automatically_and_writes_them_in_order(tmp_path):
    files = _files(200)
    written, statuses = _run(files, D.Cluster(), tmp_path / "t.csv")
    per = D.files_per_task(200, 1)
    tasks = -(-200 // per)
    assert written == 200 and per > 1
    assert f"200 files in {tasks} tasks of up to {per} files (automatic --files-per-task)" \
        in statuses
    assert (tmp_path / "t.csv").read_text() == "path,length\n" + "".join(
        f"{f.name},{len(f.name)}\n" for f in files)
    assert sum("written" in s for s in statuses) == tasks
    # given, it is used as it is
    _, statuses = _run(files, D.Cluster(files_per_task=7), tmp_path / "u.csv")
    assert "200 files in 29 tasks of up to 7 files" in statuses


def test_a_cluster_counts_its_threads_and_writes_in_order_when_tasks_finish_out_of_order(
        scheduler, tmp_path):
    files = _files(300)
    written, statuses = _run(files, D.Cluster(scheduler=scheduler), tmp_path / "t.csv")
    per = D.files_per_task(300, 2)  # the cluster's 2 threads, not this process's 1
    assert per != D.files_per_task(300, 1)
    assert f"300 files in {-(-300 // per)} tasks of up to {per} files (automatic " \
           "--files-per-task)" in statuses
    assert written == 300
    assert (tmp_path / "t.csv").read_text() == "path,length\n" + "".join(
        f"{f.name},{len(f.name)}\n" for f in files)
    done = [int(s.split("/")[0][1:]) for s in statuses if s.endswith("written")]
    assert done == sorted(done) and done[-1] == 300


def test_local_cluster_workers_start_without_dask_malloc_trim_threshold(monkeypatch):
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    with D._client(D.Cluster(workers=2)) as (client, about):
        values = client.run(D.malloc_trim_threshold)
        threads = max(1, (os.cpu_count() or 1) // 2)
        assert about.startswith(f"dask LocalCluster of 2 workers, torch threads per worker: "
                                f"{threads}")
    assert len(values) == 2 and set(values.values()) == {None}
    assert "MALLOC_TRIM_THRESHOLD_" not in os.environ  # nor set in this process


def test_a_scheduler_whose_workers_trim_malloc_gets_a_note(scheduler, monkeypatch):
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    with D._client(D.Cluster(scheduler=scheduler)) as (_, about):
        assert "note" not in about
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "65536")  # the in-process worker's environment
    with D._client(D.Cluster(scheduler=scheduler)) as (_, about):
        assert about.endswith("; note: its workers run with MALLOC_TRIM_THRESHOLD_=65536, which "
                              "makes the model ~40 % slower (docs/scale-out.md, 'A real "
                              "cluster')")


def test_a_run_left_open_does_not_take_over_the_dask_arrays_of_this_process(scheduler, tmp_path):
    """A scale-out run's client is not dask's default: while a run is suspended (an abandoned
    generator, a widget's worker) and after it, a dask array here computes on this process, as
    napari's lazy layers do (CI failed on four such layers after a client was left as default)."""
    import dask
    import dask.array as da

    before = dask.config.get("scheduler", None)
    files = _files(20)
    with CsvStream(tmp_path / "t.csv", "path,length", [f.name for f in files]) as out:
        run = D.write_table(rows_table, files, D.Cluster(scheduler=scheduler), out)
        statuses = [next(run).text for _ in range(2)]
        assert statuses[1].startswith(f"dask cluster at {scheduler}")  # the client is open
        assert dask.config.get("scheduler", None) == before
        assert int(da.ones(10, chunks=5).sum().compute()) == 10
        run.close()
    assert dask.config.get("scheduler", None) == before
