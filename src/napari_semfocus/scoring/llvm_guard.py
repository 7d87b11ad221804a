"""Importing torch inside napari without a segfault on Linux with Mesa OpenGL.

napari's canvas makes Mesa (llvmpipe, radeonsi...) load the system's ``libLLVM`` into the process.
torchvision imports ``torch._dynamo``, which imports ``triton`` when it is installed (the Linux
torch wheels pull it in), and triton's ``libtriton`` carries its own LLVM: loaded after Mesa's, its
LLVM symbols bind to the wrong copy and the interpreter dies with SIGSEGV (seen with Mesa's
libLLVM-15 and triton 3.x; the same clash is known between triton and other LLVM users). Importing
torch *before* the viewer opens avoids it, but a plugin only runs once the viewer is up.

napari-semfocus runs its models eagerly and never needs triton (it is only used by
``torch.compile``), so :func:`napari_semfocus.scoring.model.build_trunk`, the one place that
imports torchvision, first calls :func:`guard_triton_import` (torch itself does not import
triton): when another LLVM is already mapped and triton is not yet imported, ``import triton`` is
made to raise ImportError for this process (torch then treats triton as absent) instead of
crashing it. In a process without a system LLVM (the CLI, a script) it does nothing.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

log = logging.getLogger(__name__)


def foreign_llvm_loaded(maps_path: str = "/proc/self/maps") -> bool:
    """True when a shared LLVM library (not triton's) is mapped into this process (Linux)."""
    try:
        maps = Path(maps_path).read_text(errors="replace")
    except OSError:
        return False
    return any("libLLVM" in line and "triton" not in line for line in maps.splitlines())


def guard_triton_import() -> bool:
    """Block ``import triton`` for this process if importing it now could crash it; returns
    True when it was blocked. Call before the first torch / torchvision import in the GUI."""
    if not sys.platform.startswith("linux") or "triton" in sys.modules:
        return False
    if not foreign_llvm_loaded():
        return False
    sys.modules["triton"] = None  # import triton -> ImportError; torch runs without it
    log.warning("napari-semfocus: a system LLVM (Mesa OpenGL) is loaded, so triton is disabled "
                "in this napari session to avoid an LLVM symbol clash; models run without it.")
    return True
