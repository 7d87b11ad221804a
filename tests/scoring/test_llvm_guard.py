"""Importing torchvision beside a system LLVM: triton is blocked only when it has to be."""

from __future__ import annotations

import sys

from napari_semfocus.scoring import llvm_guard


def test_llvm_guard_blocks_triton_only_when_needed(tmp_path, monkeypatch):
    maps = tmp_path / "maps"
    maps.write_text("7f0 r-xp 0 08:01 1 /usr/lib/x86_64-linux-gnu/libLLVM-15.so.1\n")
    assert llvm_guard.foreign_llvm_loaded(str(maps))
    maps.write_text("7f0 r-xp 0 08:01 1 /venv/site-packages/triton/_C/libtriton.so\n")
    assert not llvm_guard.foreign_llvm_loaded(str(maps))
    assert not llvm_guard.foreign_llvm_loaded(str(tmp_path / "missing"))
    monkeypatch.setitem(sys.modules, "triton", object())  # already imported: nothing to do
    assert llvm_guard.guard_triton_import() is False
