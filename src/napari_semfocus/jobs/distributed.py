"""Many files on a Dask cluster: ``semfocus score``, ``gate apply`` and ``map`` with
``--workers N`` (a ``LocalCluster`` of N processes on this machine) or ``--scheduler ADDRESS``
(a running ``dask.distributed`` cluster), and, on one process, ``--resume``.

The files are cut into partitions of a few files (``--files-per-task``, by default about 32
per worker thread, of at most 16 files: :func:`files_per_task`); a partition is one task, and a
task runs the job a single process runs (:func:`.score.score_images`, :func:`.gate.apply_gate`,
:func:`.map.map_image`) and returns its CSV rows (formatted by :mod:`napari_semfocus.io.tables`).
Each worker process loads the model once (:func:`.score.load_scorer` keeps it per checkpoint,
device and precision). At most two partitions per worker thread are in flight; a finished one
waits for those before it, so :func:`write_table` writes the rows as they come, in the input
order, to a :class:`~napari_semfocus.io.csv_stream.CsvStream` (which also resumes). A local
cluster's workers get ``cores / N`` torch threads each, so N workers do not oversubscribe the
cores, and start without dask's ``MALLOC_TRIM_THRESHOLD_`` (it slows the model ~40 %; a
``--scheduler`` cluster whose workers have it gets a note). dask is imported lazily: napari and
the CLI start without it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import logging
import os
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import SemFocusError
from ..io.csv_stream import CsvStream
from ..io.frames import is_rgb
from ..io.images import read_image
from ..io.tables import csv_text, decisions_csv, scores_csv
from ..progress import Status, run_to_end
from ..scale import parse_magnification
from ..scoring.map_grid import CSV_COLUMNS
from .gate import ApplySettings, apply_gate, decisions_table
from .inputs import FileInput, ImageInput
from .map import MapSettings, map_image
from .score import MODEL_METHOD, ScoreSettings, score_images, score_rows

TASKS_PER_THREAD = 32  # the automatic --files-per-task aims at this many tasks per worker thread
MAX_FILES_PER_TASK = 16  # ... of at most this many files
# dask's nannies start workers with MALLOC_TRIM_THRESHOLD_=65536, which also fixes glibc's mmap
# threshold at 128 kB: every batch's tensors are then mmap'd and unmapped afresh, and a worker
# scores ~45 % slower (docs/benchmarks/scaleout.md). A LocalCluster's workers start without it.
MALLOC_TRIM = "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_"


@dataclass(frozen=True)
class Cluster:
    """Where the partitions run: this process (``workers`` 1, no scheduler), a local cluster of
    ``workers`` processes, or the cluster whose scheduler is at ``scheduler``."""

    workers: int = 1
    scheduler: str | None = None
    files_per_task: int | None = None  # None: automatic (:func:`files_per_task`)

    def __post_init__(self):
        if self.workers < 1:
            raise SemFocusError(f"--workers {self.workers} is not a number of worker processes "
                                "(1 or more).")
        if self.files_per_task is not None and self.files_per_task < 1:
            raise SemFocusError(f"--files-per-task {self.files_per_task} is not 1 or more.")


@dataclass(frozen=True)
class Partition:
    index: int  # its position among the run's partitions
    files: tuple  # FileInput


@dataclass(frozen=True)
class PartResult:
    """What a task returns: the CSV rows (without the header) of its partition's files."""

    index: int
    files: int
    rows: str
    model: str  # "model NAME on DEVICE" (where the worker ran it)


# ---- the work of one partition: the single-process jobs, as CSV rows -----------------------------
@dataclass(frozen=True)
class ScoreTable:
    """``semfocus score``'s table: :func:`.score.score_images` with ``settings`` (its images
    replaced by each partition's files)."""

    settings: ScoreSettings

    @property
    def header(self) -> str:
        return scores_csv([]).rstrip("\n")

    def __call__(self, part: Partition) -> PartResult:
        run = run_to_end(score_images(dataclasses.replace(self.settings, images=part.files)))
        return _result(part, scores_csv(score_rows(run.images)),
                       f"model {run.model_name} on {run.device_name}")


@dataclass(frozen=True)
class GateTable:
    """``semfocus gate apply``'s table: :func:`.gate.apply_gate` with ``settings``."""

    settings: ApplySettings

    @property
    def header(self) -> str:
        return decisions_csv([], [], [] if self.settings.review else None).rstrip("\n")

    def __call__(self, part: Partition) -> PartResult:
        result = run_to_end(apply_gate(dataclasses.replace(self.settings, images=part.files)))
        return _result(part, decisions_table(result.images),
                       f"model {result.model_name} on {result.device_name}")


@dataclass(frozen=True)
class MapTable:
    """``semfocus map PATH PATH...``'s table: one row per tile of every file (slice
    ``slice_index`` of a stack), the file in a leading ``path`` column; ``settings.image`` is
    replaced by each file's (:func:`map_input`)."""

    settings: MapSettings
    slice_index: int = 0

    @property
    def header(self) -> str:
        return ",".join(("path",) + CSV_COLUMNS)

    def __call__(self, part: Partition) -> PartResult:
        rows, model = [], ""
        for f in part.files:
            image = map_input(f, self.slice_index, self.settings.method)
            result = run_to_end(map_image(dataclasses.replace(self.settings, image=image)))
            lines = result.fmap.to_csv().splitlines()[1:]
            rows += [[f.name, *line.split(",")] for line in lines]
            model = f"model {result.model_name} on {result.device_name}"
        return _result(part, csv_text(self.header.split(","), rows), model)


def _result(part: Partition, table: str, model: str) -> PartResult:
    """The partition's rows: ``table`` without its header line."""
    return PartResult(part.index, len(part.files), table.split("\n", 1)[1], model)


def map_input(file: FileInput, slice_index: int, method: str) -> ImageInput:
    """The frame of ``file`` to map (slice ``slice_index`` of a stack), with its magnification:
    the one given, else (for the model) the file's SEM metadata."""
    img = read_image(file.path)
    frame = pick_slice(img.data, slice_index, file.name)
    mag = file.magnification
    if method == MODEL_METHOD and mag is None:
        mag = parse_magnification(img.magnification, f"{file.name} (file metadata)")
    # a file: its name in messages, and the scorer's own sentence for a missing magnification
    return ImageInput(file.name, frame, mag, img.databar_rows, is_rgb(frame), str(file.path),
                      from_layer=False, no_magnification="")


def pick_slice(data: np.ndarray, index: int, path) -> np.ndarray:
    """Slice ``index`` of a stack (a 2-D image or RGB frame as it is)."""
    spatial = data.ndim - (1 if is_rgb(data) else 0)
    if spatial <= 2:
        return data
    stack = data.reshape((-1,) + data.shape[-(3 if is_rgb(data) else 2):])
    if not 0 <= index < len(stack):
        raise SemFocusError(f"{path}: --slice {index} is outside the stack's {len(stack)} slices.")
    return stack[index]


# ---- running the partitions ----------------------------------------------------------------------
def files_per_task(n_files: int, threads: int) -> int:
    """The automatic ``--files-per-task``: about :data:`TASKS_PER_THREAD` tasks per worker
    thread (so that progress comes often, the last tasks even out across the workers and a
    killed run loses little), of at most :data:`MAX_FILES_PER_TASK` files, at least 1."""
    return max(1, min(MAX_FILES_PER_TASK, n_files // (TASKS_PER_THREAD * max(1, threads))))


def write_table(table: Callable[[Partition], PartResult], files: Sequence[FileInput],
                cluster: Cluster, out: CsvStream) -> Generator[Status | PartResult, None, int]:
    """Run ``table`` over the files not yet in ``out`` (its :attr:`~CsvStream.skip` leading
    ones are), partition by partition on ``cluster``, writing each partition's rows as it comes
    in the input order. Yields a :class:`Status` for the cluster, the partitions and each
    partition written, and each :class:`PartResult` (once written); returns the number of
    rows written."""
    todo = files[out.skip:]
    if out.skip:
        yield Status(f"resuming: the first {out.skip} of {len(files)} files are in {out.path}; "
                     f"{len(todo)} to go")
    written, done, models = 0, out.skip, set()
    if cluster.scheduler is not None:  # dask waits up to its connect timeout: say so first
        yield Status(f"connecting to the dask scheduler at {cluster.scheduler} (waits up to "
                     f"{_connect_timeout()})")
    with _connect(cluster) as (client, about):
        threads = 1
        if client is not None:
            yield Status(about)
            threads = sum(client.nthreads().values())
        per = cluster.files_per_task or files_per_task(len(todo), threads)
        parts = [Partition(k, tuple(todo[i:i + per]))
                 for k, i in enumerate(range(0, len(todo), per))]
        yield Status(f"{len(todo)} files in {len(parts)} tasks of up to {per} files"
                     + ("" if cluster.files_per_task else " (automatic --files-per-task)"))
        results = (table(part) for part in parts) if client is None else \
            _ordered(client, table, parts)
        for res in results:
            if res.model not in models:
                models.add(res.model)
                yield Status(res.model)
            out.write(res.rows)
            written += res.rows.count("\n")
            done += res.files
            yield Status(f"[{done}/{len(files)} files] partition {res.index + 1}/{len(parts)} "
                         "written")
            yield res
    return written


def _connect_timeout() -> str:
    """dask's connect timeout as it is set (``30s`` by default)."""
    import dask  # lazily: only a scale-out run needs it

    return str(dask.config.get("distributed.comm.timeouts.connect", "30s"))


@contextlib.contextmanager
def _connect(cluster: Cluster):
    """(a ``distributed.Client`` of the cluster, a line saying what it is); (None, "") for
    this process."""
    if cluster.scheduler is None and cluster.workers == 1:
        yield None, ""
        return
    with _client(cluster) as connected:
        yield connected


@contextlib.contextmanager
def _client(cluster: Cluster):
    """A ``distributed.Client`` of the cluster, and a line saying what it is."""
    import dask  # lazily: only a scale-out run needs it
    from distributed import Client, LocalCluster

    if cluster.scheduler is not None:
        try:
            # not set as dask's default: a client left open (or closed out of order with
            # another) would send every dask array of this process (napari's lazy layers)
            # to a scheduler that is gone
            client = Client(cluster.scheduler, set_as_default=False)  # waits the connect timeout
        except (OSError, ValueError, TypeError) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise SemFocusError(f"--scheduler {cluster.scheduler}: no dask scheduler could be "
                                f"reached there ({reason}).") from None
        with client:
            n = len(client.scheduler_info().get("workers", {}))
            yield client, (f"dask cluster at {cluster.scheduler}, {n} workers"
                           + _dashboard(client) + _malloc_note(client))
        return
    threads = str(max(1, (os.cpu_count() or 1) // cluster.workers))
    env = {name: threads for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    with dask.config.set({MALLOC_TRIM: None}), \
            LocalCluster(n_workers=cluster.workers, threads_per_worker=1, processes=True,
                         dashboard_address=":0", env=env, silence_logs=logging.ERROR) as local, \
            Client(local, set_as_default=False) as client:
        yield client, (f"dask LocalCluster of {cluster.workers} workers, torch threads per "
                       f"worker: {threads}" + _dashboard(client))


def _dashboard(client) -> str:
    if importlib.util.find_spec("bokeh") is None:
        return "; no dashboard (pip install bokeh for one)"
    return f"; dashboard {client.dashboard_link}"


def malloc_trim_threshold() -> str | None:
    """This process's ``MALLOC_TRIM_THRESHOLD_`` (run on the workers)."""
    return os.environ.get("MALLOC_TRIM_THRESHOLD_")


def _malloc_note(client) -> str:
    """A warning when the cluster's workers run with dask's ``MALLOC_TRIM_THRESHOLD_``."""
    try:
        values = set(client.run(malloc_trim_threshold).values()) - {None}
    except Exception:  # noqa: BLE001 -- e.g. workers of another version: the tasks will tell
        return ""
    if not values:
        return ""
    return (f"; note: its workers run with MALLOC_TRIM_THRESHOLD_={min(values)}, which makes "
            "the model ~40 % slower (docs/scale-out.md, 'A real cluster')")


def _ordered(client, table, parts: list[Partition]) -> Iterator[PartResult]:
    """Submit the partitions (two per worker thread in flight, so a worker always has the next
    one) and yield their results in order; a task's error (a :class:`SemFocusError` for bad
    input) is raised here."""
    from distributed import as_completed  # lazily: only a scale-out run needs it

    window = max(2, 2 * sum(client.nthreads().values()))
    waiting = iter(parts)
    running = as_completed(loop=client.loop)  # the client is not dask's default one
    for part in (p for _, p in zip(range(window), waiting, strict=False)):
        running.add(client.submit(table, part, pure=False))
    finished: dict[int, PartResult] = {}
    following = 0
    for future in running:
        res = future.result()
        finished[res.index] = res
        while following in finished:
            yield finished.pop(following)
            following += 1
        part = next(waiting, None)
        if part is not None:
            running.add(client.submit(table, part, pure=False))
