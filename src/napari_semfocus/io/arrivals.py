"""Files arriving in a folder, handed on once they are completely written (``semfocus watch``,
the Live QC widget).

A file is *completely written* when all three hold:

1. its size and modification time have not changed for ``settle`` seconds of this machine's
   clock (the writer's clock is never compared, so a share whose clock is off does not matter);
2. it is whole by its format (:func:`incomplete_reason`): a TIFF whose every page's data lies
   inside the file, a PNG that ends with its IEND chunk, a JPEG that ends with its end-of-image
   marker (a cut JPEG decodes without an error, grey at the bottom);
3. it reads as an image (the caller tries, and calls :meth:`Arrivals.retry` when it cannot).

A file that is still not whole or readable after ``give_up`` seconds without a change is handed
on as broken (:meth:`Arrivals.retry` returns True), once. Names are matched by ``patterns``
(case-insensitive; hidden files, e.g. temporaries, never match), so ``frame.tif.part`` renamed
to ``frame.tif`` arrives once, under its final name.

New files are found by one code path, :meth:`Arrivals.ready`: file-system events from watchdog
(inotify, FSEvents, ReadDirectoryChangesW) name candidates at once, and a scan of the folder
(at start for the backlog, then every ``poll`` seconds, or every :data:`RESCAN_S` seconds as a
safety net when events are used) finds the rest. With ``poll`` set no events are used: for
network shares, where inotify does not fire.
"""

from __future__ import annotations

import fnmatch
import os
import queue
import time
from dataclasses import dataclass
from pathlib import Path

import tifffile
from watchdog.events import FileSystemEventHandler
from watchdog.observers import Observer

DEFAULT_PATTERNS = ("*.tif", "*.tiff", "*.png", "*.jpg", "*.jpeg")
RESCAN_S = 10.0  # with events: a full scan this often, for events the OS dropped
PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"


def incomplete_reason(path) -> str | None:
    """Why the file at ``path`` is not whole by its format (None: it is)."""
    path = Path(path)
    suffix = path.suffix.lower()
    size = path.stat().st_size
    if size == 0:
        return "is empty"
    if suffix == ".png":
        with open(path, "rb") as fh:
            fh.seek(max(0, size - 64))
            tail = fh.read()
        return None if tail.endswith(PNG_END) else "does not end with its PNG end (IEND) chunk"
    if suffix in (".jpg", ".jpeg"):
        with open(path, "rb") as fh:
            fh.seek(max(0, size - 64))
            tail = fh.read().rstrip(b"\x00")
        return None if tail.endswith(b"\xff\xd9") else "does not end with its JPEG end marker"
    if suffix in (".tif", ".tiff"):
        try:
            with tifffile.TiffFile(path) as tif:
                for page in tif.pages:
                    ends = [o + n for o, n in zip(page.dataoffsets, page.databytecounts,
                                                  strict=False)]
                    if ends and max(ends) > size:
                        return f"holds {max(ends) - size} bytes fewer than its TIFF pages need"
        except Exception as exc:  # a cut header or page directory
            return f"is not a readable TIFF ({str(exc).splitlines()[0][:80] or 'cut'})"
    return None


@dataclass
class _Pending:
    path: str
    signature: tuple[int, int]  # (size, mtime_ns)
    since: float  # when this signature was first seen (monotonic)
    next_try: float = 0.0  # after a failed read: not before this time


class _Events(FileSystemEventHandler):
    """watchdog's events as paths in a queue (created, modified, closed, moved: the new name)."""

    def __init__(self, sink: queue.SimpleQueue):
        self.sink = sink

    def on_any_event(self, event) -> None:
        if event.is_directory:
            return
        if event.event_type in ("created", "modified", "closed"):
            self.sink.put(event.src_path)
        elif event.event_type == "moved":
            self.sink.put(event.dest_path)


class Arrivals:
    """The completely written new files of ``folder`` that match ``patterns`` and are not in
    ``done`` (names as :meth:`name` gives them). Use as a context manager; :meth:`ready` gives
    (name, path) pairs to try, :meth:`finished` / :meth:`retry` say how it went."""

    def __init__(self, folder, patterns=DEFAULT_PATTERNS, recursive: bool = False,
                 settle: float = 0.25, give_up: float = 5.0, poll: float | None = None,
                 done=(), clock=time.monotonic):
        self.folder = str(folder)
        self.patterns = tuple(p.lower() for p in patterns)
        self.recursive = recursive
        self.settle, self.give_up, self.poll = settle, give_up, poll
        self.clock = clock
        self.done = set(done)
        self.pending: dict[str, _Pending] = {}
        self.gone: list[str] = []  # files deleted before they were handed on (to report)
        self._noted: set[str] = set()  # names reported gone (once each)
        self.backlog: list[str] = []  # names found by the first scan, oldest first
        self.last_activity = clock()
        self._events: queue.SimpleQueue = queue.SimpleQueue()
        self._observer = None
        self._next_scan = 0.0

    # -- start / stop --
    def __enter__(self) -> Arrivals:
        if self.poll is None:  # events first, so that nothing written during the scan is missed
            self._observer = Observer()
            self._observer.schedule(_Events(self._events), self.folder, recursive=self.recursive)
            self._observer.start()
        self.backlog = self._scan()
        self._next_scan = self.clock() + (self.poll or RESCAN_S)
        return self

    def __exit__(self, *exc) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
            self._observer = None

    # -- names --
    def name(self, path: str) -> str:
        """How a file is named (in the CSV): the folder as given joined with its path in it."""
        return os.path.normpath(os.path.join(self.folder, os.path.relpath(path, self.folder)))

    def matches(self, path: str) -> bool:
        base = os.path.basename(path)
        return not base.startswith(".") and any(fnmatch.fnmatchcase(base.lower(), p)
                                                for p in self.patterns)

    # -- finding files --
    def _scan(self) -> list[str]:
        """Add the matching files not done and not pending; return their names, oldest first."""
        found = []
        for root, dirs, files in os.walk(self.folder):
            dirs[:] = sorted(d for d in dirs if not d.startswith(".")) if self.recursive else []
            for f in files:
                path = os.path.join(root, f)
                if self.matches(path) and self.name(path) not in self.done:
                    try:
                        found.append((os.stat(path).st_mtime_ns, self.name(path), path))
                    except OSError:
                        continue  # deleted meanwhile
        new = []
        for _, name, path in sorted(found):
            if self._add(path):
                new.append(name)
        return new

    def _add(self, path: str) -> bool:
        name = self.name(path)
        if name in self.done or name in self.pending or not self.matches(path):
            return False
        try:
            st = os.stat(path)
        except OSError:
            return False
        self.pending[name] = _Pending(path, (st.st_size, st.st_mtime_ns), self.clock())
        self.last_activity = self.clock()
        return True

    def wait(self, timeout: float) -> None:
        """Block until an event arrives or ``timeout`` seconds pass."""
        try:
            path = self._events.get(timeout=max(timeout, 0.0))
        except queue.Empty:
            return
        self._events.put(path)  # handled by ready()

    def ready(self) -> list[tuple[str, str]]:
        """(name, path) of the pending files that have settled and are whole, oldest first;
        files deleted meanwhile go to :attr:`gone`."""
        while True:
            try:
                path = self._events.get_nowait()
            except queue.Empty:
                break
            name = self.name(path)
            if self._add(path):
                continue
            if name in self.pending:
                self.last_activity = self.clock()
            elif name not in self.done and self.matches(path) and not os.path.exists(path):
                self._note_gone(name)  # announced, but deleted before it was looked at
        now = self.clock()
        if now >= self._next_scan:
            self._scan()
            self._next_scan = now + (self.poll or RESCAN_S)
        out = []
        for name, p in list(self.pending.items()):
            if not self._settled(name, p, now) or now < p.next_try:
                continue
            try:
                broken = incomplete_reason(p.path)
            except OSError:
                self._drop_gone(name)
                continue
            if broken is None or now - p.since >= self.give_up:
                out.append((name, p.path))
        return out

    def _settled(self, name: str, p: _Pending, now: float) -> bool:
        try:
            st = os.stat(p.path)
        except OSError:
            self._drop_gone(name)
            return False
        signature = (st.st_size, st.st_mtime_ns)
        if signature != p.signature:
            p.signature, p.since = signature, now
            self.last_activity = now
            return False
        return now - p.since >= self.settle

    def _drop_gone(self, name: str) -> None:
        del self.pending[name]
        self._note_gone(name)

    def _note_gone(self, name: str) -> None:
        if name not in self._noted:
            self._noted.add(name)
            self.gone.append(name)

    def take_gone(self) -> list[str]:
        gone, self.gone = self.gone, []
        return gone

    # -- outcomes --
    def unchanged(self, name: str) -> bool:
        """Whether the file is as it was when :meth:`ready` handed it on (not written since)."""
        p = self.pending[name]
        try:
            st = os.stat(p.path)
        except OSError:
            return False
        return (st.st_size, st.st_mtime_ns) == p.signature

    def broken_reason(self, name: str) -> str | None:
        """The format's reason the file is not whole (None: it is, or it is gone)."""
        try:
            return incomplete_reason(self.pending[name].path)
        except OSError:
            return None

    def finished(self, name: str) -> None:
        """The file was handled (scored, or recorded as broken): never hand it on again."""
        self.pending.pop(name, None)
        self.done.add(name)
        self.last_activity = self.clock()

    def retry(self, name: str) -> bool:
        """The file could not be read: keep waiting for it, or (True) give up on it now that it
        has not changed for ``give_up`` seconds."""
        p = self.pending[name]
        p.next_try = self.clock() + self.settle
        return self.clock() - p.since >= self.give_up

    def idle_for(self) -> float:
        """Seconds since the last new or changed file (0 while any is pending)."""
        return 0.0 if self.pending else self.clock() - self.last_activity
