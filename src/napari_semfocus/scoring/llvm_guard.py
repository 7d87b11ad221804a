"""Importing torch inside napari without a segfault on Linux with Mesa OpenGL.

napari's canvas makes Mesa (llvmpipe, radeonsi...) load the system's ``libLLVM`` into the process.
torchvision imports ``torch._dynamo``, which imports ``triton`` when it is installed (the Linux
torch wheels pull it in), and triton's ``libtriton`` carries its own LLVM: loaded after Mesa's, its
LLVM symbols bind to the wrong copy and the interpreter dies with SIGSEGV (seen with Mesa's
libLLVM-15 and triton 3.x; the same clash is known between triton and other LLVM users). Importing
torch *before* the viewer opens avoids it, but a plugin only runs once the viewer is up.

Root cause: Mesa's ``libLLVM`` is loaded first and its symbols are global, so the LLVM inside
``libtriton`` binds to Mesa's copy. Loading triton with ``RTLD_DEEPBIND`` makes its libraries bind
to their own symbols first: then triton imports beside Mesa without a crash (checked under Xvfb
with Mesa's llvmpipe, and ``torch.compile`` still works after it).

So :func:`napari_semfocus.scoring.model.build_trunk`, the one place that imports torchvision
(whose ``torch._dynamo`` imports triton at import time), does it inside
:func:`triton_import_guarded`: when another LLVM is already mapped and triton is installed but
not yet imported, triton is imported first with ``RTLD_DEEPBIND`` and stays usable by everyone
(other plugins, ``torch.compile``). Only if that import fails (or
``NAPARI_SEMFOCUS_TRITON_DEEPBIND=0`` is set) is ``import triton`` made to raise ImportError, and
then only during the guarded import: afterwards the previous ``sys.modules`` entry is put back
and torch's cached "is triton installed" answer is forgotten. In a process without a system LLVM
(the CLI, a script) nothing is done.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import sys
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
