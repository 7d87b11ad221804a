"""Writing files safely, and fingerprints of files.

Every file napari-semfocus writes (checkpoints, gate files, CSV, JSON, TIFF, PNG) goes through
:func:`atomic_write`: it is written to a temporary file in the target folder and renamed into
place, so an interrupted write never leaves a broken file behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from ..errors import SemFocusError

_HASHES: dict = {}


def existing_file(path, what: str = "", error=SemFocusError) -> Path:
    """``path`` as a :class:`Path` when it names a file; else one sentence (an ``error``):
    ``WHAT PATH does not exist.`` or ``WHAT PATH is a folder, not a file.`` (without ``what``,
    as images are named: ``PATH: no such file.``). The one check of every file a command reads,
    so that a folder given for a file is never reported as missing."""
    p = Path(path)
    if p.is_file():
        return p
    name = f"{what} {path}" if what else str(path)
    if p.is_dir():
        raise error(f"{name} is a folder, not a file.")
    raise error(f"{name} does not exist." if what else f"{path}: no such file.")


def writable_file(path, what: str) -> None:
    """Raise :class:`SemFocusError` (naming ``what``, e.g. ``--output out.csv``) when ``path``
    cannot be written as a file: it is a folder, a folder on its way is a file, or the folder it
    would go in is not writable. Checked before any work, so that a run never ends in a
    traceback from the final rename (:func:`atomic_write` makes missing folders)."""
    p = Path(path)
    if p.is_dir():
        raise SemFocusError(f"{what} is a folder; name a file to write.")
    parent = existing_parent(p)
    if not parent.is_dir():
        raise SemFocusError(f"{what} cannot be written: {parent} is a file, not a folder.")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise SemFocusError(f"{what} cannot be written: no permission to write in {parent}.")


def existing_parent(path) -> Path:
    """The nearest folder above ``path`` that exists (or the file that stands in its way)."""
    parent = Path(path).parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    return parent


def atomic_write(path, write: Callable[[str], object]) -> Path:
    """Call ``write(tmp_path)`` and rename the result onto ``path`` (same folder, atomic)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_text(path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def write_report(prefix, data: dict, markdown: str) -> None:
    """A report as ``PREFIX.json`` (``data``, indented) and ``PREFIX.md`` (``markdown``)."""
    prefix = Path(prefix)
    write_text(prefix.with_suffix(".json"), json.dumps(data, indent=2))
    write_text(prefix.with_suffix(".md"), markdown)


def file_sha256(path) -> str:
    """SHA-256 of a file (remembered per path, size and modification time)."""
    path = Path(path)
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _HASHES:
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        _HASHES[key] = h.hexdigest()
    return _HASHES[key]
