"""What the process needs before torch is imported: importing torch beside napari's OpenGL
without a crash (the LLVM guard) and without freezing napari's window (the quiet import).

**The LLVM guard.** napari's canvas makes Mesa (llvmpipe, radeonsi...) load the system's ``libLLVM`` into the process.
torchvision imports ``torch._dynamo``, which imports ``triton`` when it is installed (the Linux
torch wheels pull it in), and triton's ``libtriton`` carries its own LLVM: loaded after Mesa's, its
LLVM symbols bind to the wrong copy and the interpreter dies with SIGSEGV (seen with Mesa's
libLLVM-15 and triton 3.x; the same clash is known between triton and other LLVM users). Importing
torch *before* the viewer opens avoids it, but a plugin only runs once the viewer is up.

Root cause: Mesa's ``libLLVM`` is loaded first and its symbols are global, so the LLVM inside
``libtriton`` binds to Mesa's copy. Loading triton with ``RTLD_DEEPBIND`` makes its libraries bind
to their own symbols first: then triton imports beside Mesa without a crash (checked under Xvfb
with Mesa's llvmpipe, and ``torch.compile`` still works after it).

So :func:`napari_semfocus.scoring.model.build_trunk`, the place that imports torchvision
(whose ``torch._dynamo`` imports triton at import time), does it inside
:func:`triton_import_guarded`: when another LLVM is already mapped and triton is installed but
not yet imported, triton is imported first with ``RTLD_DEEPBIND`` and stays usable by everyone
(other plugins, ``torch.compile``). Only if that import fails (or
``NAPARI_SEMFOCUS_TRITON_DEEPBIND=0`` is set) is ``import triton`` made to raise ImportError, and
then only during the guarded import: afterwards the previous ``sys.modules`` entry is put back
and torch's cached "is triton installed" answer is forgotten. In a process without a system LLVM
(the CLI, a script) nothing is done.

**The quiet import.** The first model run in a napari where torch was never imported imports it
in a worker thread. Two parts of that import hold the GIL for 100-250 ms at a time while napari's
event loop waits: Python's ``dlopen`` of the big extension libraries (``torch._C`` pulls in
libtorch_cpu/cuda, ~0.9 GB; triton's libtriton, 0.5 GB) and full cycle collections set off by the
~300,000 objects the import creates. :func:`import_torch_quietly`, which the widgets' workers call
before their job, first loads those very files with ``dlopen`` through ctypes (which releases the
GIL), with the flags the import itself will use, so the import's own ``dlopen`` a moment later
finds them loaded; then it imports torch and torchvision (inside the LLVM guard) with automatic
cycle collection paused. Same libraries, same flags, same order: only the waiting moves off the
GIL.
"""

from __future__ import annotations

import ctypes
import gc
import glob
import importlib
import importlib.util
import logging
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)
_ABSENT = object()
DEEPBIND_ENV = "NAPARI_SEMFOCUS_TRITON_DEEPBIND"


def foreign_llvm_loaded(maps_path: str = "/proc/self/maps") -> bool:
    """True when a shared LLVM library (not triton's) is mapped into this process (Linux)."""
    try:
        maps = Path(maps_path).read_text(errors="replace")
    except OSError:
        return False
    return any("libLLVM" in line and "triton" not in line for line in maps.splitlines())


def triton_import_needs_blocking() -> bool:
    """True when importing triton now could crash the process: Linux, triton not yet imported,
    and a system LLVM already mapped."""
    if not sys.platform.startswith("linux") or sys.modules.get("triton") is not None:
        return False
    return foreign_llvm_loaded()


def import_triton_deep_bound() -> bool:
    """Import triton with ``RTLD_DEEPBIND`` (its LLVM binds to itself, not to Mesa's); True when
    it is imported. Not on request (``NAPARI_SEMFOCUS_TRITON_DEEPBIND=0``), nor where the flag
    does not exist."""
    flag = getattr(os, "RTLD_DEEPBIND", None)
    if flag is None or os.environ.get(DEEPBIND_ENV, "1") == "0":
        return False
    if importlib.util.find_spec("triton") is None:
        return False
    previous = sys.getdlopenflags()
    sys.setdlopenflags(os.RTLD_NOW | flag)
    try:
        importlib.import_module("triton")
    except Exception as exc:  # noqa: BLE001 - any failure: fall back to the scoped block
        log.info("napari-semfocus: triton could not be imported beside the system LLVM (%s)", exc)
        for name in [m for m in sys.modules if m == "triton" or m.startswith("triton.")]:
            del sys.modules[name]
        return False
    finally:
        sys.setdlopenflags(previous)
    _forget_torch_triton_check()
    return True


@contextmanager
def triton_import_guarded() -> Iterator[str]:
    """Wrap the first torch / torchvision import. Yields what was done: "nothing" (no system
    LLVM, or triton already imported), "deepbind" (triton imported first with ``RTLD_DEEPBIND``,
    usable by all) or "blocked" (``import triton`` raises ImportError inside the block only; on
    leaving, ``sys.modules["triton"]`` is what it was before and torch's cached triton check is
    cleared)."""
    if not triton_import_needs_blocking():
        yield "nothing"
        return
    if import_triton_deep_bound():
        yield "deepbind"
        return
    previous = sys.modules.get("triton", _ABSENT)
    sys.modules["triton"] = None  # import triton -> ImportError; torch runs without it
    log.info("napari-semfocus: a system LLVM (Mesa OpenGL) is loaded; triton is kept out of "
             "this import of torchvision to avoid an LLVM symbol clash (models run eagerly).")
    try:
        yield "blocked"
    finally:
        if sys.modules.get("triton", _ABSENT) is None:
            if previous is _ABSENT:
                del sys.modules["triton"]
            else:
                sys.modules["triton"] = previous
        _forget_torch_triton_check()


def _forget_torch_triton_check() -> None:
    """torch caches ``has_triton_package()`` (False while blocked): clear it so that later users
    of torch (``torch.compile``, other plugins) look for triton again."""
    triton_utils = sys.modules.get("torch.utils._triton")
    check = getattr(triton_utils, "has_triton_package", None)
    if check is not None and hasattr(check, "cache_clear"):
        check.cache_clear()


# ---- the quiet import ------------------------------------------------------------------------------
_GC_LOCK = threading.RLock()
_GC_STATE = {"paused": 0, "resume": False}


def dlopen_releasing_gil(path: str, flags: int) -> bool:
    """``dlopen(path, flags)`` through ctypes (the GIL is released during the call); True when
    the library is loaded. The handle is kept: extension libraries are never unloaded."""
    dlopen = ctypes.CDLL(None).dlopen
    dlopen.restype, dlopen.argtypes = ctypes.c_void_p, (ctypes.c_char_p, ctypes.c_int)
    return bool(dlopen(path.encode(), int(flags)))


@contextmanager
def collection_paused():
    """No automatic cycle collection inside (nested and thread-safe); on leaving the outermost,
    the new objects go to the oldest generation without a pass and collection resumes."""
    with _GC_LOCK:
        if _GC_STATE["paused"] == 0:
            _GC_STATE["resume"] = gc.isenabled()
            gc.disable()
        _GC_STATE["paused"] += 1
    try:
        yield
    finally:
        with _GC_LOCK:
            _GC_STATE["paused"] -= 1
            if _GC_STATE["paused"] == 0:
                if gc.get_freeze_count() == 0:  # nobody else froze objects: ours to undo
                    gc.freeze()
                    gc.unfreeze()
                if _GC_STATE["resume"]:
                    gc.enable()


def _package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    return Path(spec.origin).parent if spec is not None and spec.origin else None


def torch_libraries(deepbind_triton: bool) -> list[tuple[str, int]]:
    """(file, dlopen flags) of the libraries the first ``import torch, torchvision`` loads, in
    the order it loads them: triton's (with ``RTLD_DEEPBIND`` when the LLVM guard will import it
    so), torch's global dependencies (``RTLD_GLOBAL``, as torch's ``_load_global_deps``), then the
    extension modules ``torch._C`` and ``torchvision._C`` with the import's own flags."""
    out: list[tuple[str, int]] = []
    triton = _package_dir("triton") if deepbind_triton else None
    if triton is not None:
        out += [(p, os.RTLD_NOW | os.RTLD_DEEPBIND)
                for p in sorted(glob.glob(str(triton / "_C" / "libtriton*.so")))]
    torch_dir = _package_dir("torch")
    if torch_dir is not None:
        out += [(p, os.RTLD_GLOBAL | os.RTLD_NOW)
                for p in sorted(glob.glob(str(torch_dir / "lib" / "libtorch_global_deps.so")))]
        out += [(p, sys.getdlopenflags()) for p in sorted(glob.glob(str(torch_dir / "_C.*so")))]
    vision = _package_dir("torchvision")
    if vision is not None:
        out += [(p, sys.getdlopenflags()) for p in sorted(glob.glob(str(vision / "_C*.so")))]
    return out


def import_torch_quietly() -> str:
    """Import torch and torchvision without holding the GIL through their library loads or
    running full cycle collections inside (see the module docstring); returns "already" when
    torch was imported, else what the LLVM guard did. Linux only loads ahead; elsewhere this is
    a plain guarded import."""
    if sys.modules.get("torch") is not None and sys.modules.get("torchvision") is not None:
        return "already"
    if sys.platform.startswith("linux"):
        deepbind = (triton_import_needs_blocking() and os.environ.get(DEEPBIND_ENV, "1") != "0"
                    and getattr(os, "RTLD_DEEPBIND", None) is not None)
        for path, flags in torch_libraries(deepbind):
            dlopen_releasing_gil(path, flags)
    with collection_paused(), triton_import_guarded() as done:
        # imported lazily: this function is the widgets' first import of torch
        import torch  # noqa: F401
        import torchvision  # noqa: F401  (lazily, as torch above)
    return done
