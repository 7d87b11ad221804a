"""Importing torch (and torchvision, triton) in a worker thread without freezing napari's window.

The first model run in a napari where torch was never imported imports it in the worker thread.
Python code yields the GIL every few milliseconds, but two parts of that import hold it for
100-250 ms at a time, and the UI thread (napari's event loop) waits for it:

* **loading the big shared libraries**: Python's import of an extension module calls ``dlopen``
  with the GIL held (``torch._C`` pulls in libtorch_cpu and libtorch_cuda, ~0.9 GB; ``triton``'s
  libtriton is 0.5 GB). ctypes' own ``CDLL`` holds it too on Python 3.11;
* **the cycle collector**: the import creates ~300,000 objects, which sets off full collections
  of the whole heap (napari's and torch's objects, 80-190 ms each) in the middle of it.

:func:`acquire` (the widgets call it while a worker runs; :func:`release` takes it back) adds a
finder to ``sys.meta_path`` that changes neither what is imported nor how:

* for an extension module of torch, torchvision or triton it first calls ``dlopen`` on the very
  file the import will load, with the flags the import will use (``sys.getdlopenflags()`` at that
  moment, so also llvm_guard's ``RTLD_DEEPBIND`` for triton), through ctypes' foreign-function
  call, which releases the GIL while the libraries load and relocate. The import's own
  ``dlopen`` a moment later finds the object loaded (same path) and returns at once. Same
  library, same symbols, same order: the finder returns the spec the other finders give.
* while the top package (``torch``, ``torchvision``, ``triton``) executes, automatic cycle
  collection is paused; afterwards the objects it made are moved to the oldest generation without
  a pass over them (``gc.freeze()`` + ``gc.unfreeze()``, only when nothing else froze objects) and
  collection resumes. Nothing is left out of collection: cycles made meanwhile are collected by
  the next full collection, as before.
"""

from __future__ import annotations

import ctypes
import gc
import importlib.machinery
import sys
import threading
from contextlib import contextmanager

HEAVY_PACKAGES = ("torch", "torchvision", "triton")
_LOCK = threading.RLock()
_STATE = {"paused": 0, "resume": False, "holders": 0}


def _heavy(fullname: str) -> bool:
    return fullname.split(".", 1)[0] in HEAVY_PACKAGES


def dlopen_releasing_gil(path: str, flags: int) -> bool:
    """``dlopen(path, flags)`` through ctypes (the GIL is released during the call); True when
    the library is loaded. The handle is kept: extension modules are never unloaded."""
    libc = ctypes.CDLL(None)
    dlopen = libc.dlopen
    dlopen.restype, dlopen.argtypes = ctypes.c_void_p, (ctypes.c_char_p, ctypes.c_int)
    return bool(dlopen(path.encode(), int(flags)))


@contextmanager
def collection_paused():
    """No automatic cycle collection inside (nested and thread-safe); on leaving the outermost,
    the new objects go to the oldest generation without a pass and collection resumes."""
    with _LOCK:
        if _STATE["paused"] == 0:
            _STATE["resume"] = gc.isenabled()
            gc.disable()
        _STATE["paused"] += 1
    try:
        yield
    finally:
        with _LOCK:
            _STATE["paused"] -= 1
            if _STATE["paused"] == 0:
                if gc.get_freeze_count() == 0:  # nobody else froze objects: ours to undo
                    gc.freeze()
                    gc.unfreeze()
                if _STATE["resume"]:
                    gc.enable()


class QuietImportFinder:
    """A ``sys.meta_path`` finder for torch, torchvision and triton: finds their modules with the
    finders after it, loads extension modules' libraries with the GIL released, and pauses cycle
    collection while a top package executes (see the module docstring)."""

    def find_spec(self, fullname, path=None, target=None):
        if not _heavy(fullname):
            return None
        spec = self._next_spec(fullname, path, target)
        if spec is None or spec.loader is None:
            return spec
        if isinstance(spec.loader, importlib.machinery.ExtensionFileLoader) and spec.origin:
            dlopen_releasing_gil(spec.origin, sys.getdlopenflags())
        elif "." not in fullname and hasattr(spec.loader, "exec_module"):
            run = spec.loader.exec_module  # this spec's own loader instance

            def exec_module(module, run=run):
                with collection_paused():
                    run(module)

            spec.loader.exec_module = exec_module
        return spec

    def _next_spec(self, fullname, path, target):
        """The spec the finders after this one give (what the import would use without it)."""
        finders = sys.meta_path
        after = finders[finders.index(self) + 1:] if self in finders else finders
        for finder in after:
            find = getattr(finder, "find_spec", None)
            spec = find(fullname, path, target) if find is not None else None
            if spec is not None:
                return spec
        return None

    def invalidate_caches(self) -> None:
        """Nothing cached here (the finders after it keep their own caches)."""


def acquire() -> None:
    """Put the finder first on ``sys.meta_path`` while at least one caller holds it (Linux only,
    where ``dlopen`` is). The widgets hold it while a worker runs, so it is there for the worker's
    first import of torch and gone when no job of ours runs: other plugins' imports are left
    alone."""
    if not sys.platform.startswith("linux"):
        return
    with _LOCK:
        _STATE["holders"] += 1
        if not any(isinstance(f, QuietImportFinder) for f in sys.meta_path):
            sys.meta_path.insert(0, QuietImportFinder())


def release() -> None:
    """Undo one :func:`acquire`; the last one takes the finder off ``sys.meta_path``."""
    if not sys.platform.startswith("linux"):
        return
    with _LOCK:
        _STATE["holders"] = max(0, _STATE["holders"] - 1)
        if _STATE["holders"] == 0:
            # a new list: an import running in another thread goes on over the one it holds
            # (taking an element out of that one would make it skip the next finder)
            sys.meta_path = [f for f in sys.meta_path if not isinstance(f, QuietImportFinder)]
