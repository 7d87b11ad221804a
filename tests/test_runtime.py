"""Importing torchvision beside a system LLVM (napari's Mesa OpenGL): triton is imported with
RTLD_DEEPBIND, so it works beside Mesa; blocked, only for that import, where that fails (issue 14,
item 8: ``sys.modules["triton"] = None`` used to stay for the whole napari process)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap

import pytest

from napari_semfocus import runtime as llvm_guard


def test_llvm_guard_blocks_triton_only_when_needed(tmp_path, monkeypatch):
    maps = tmp_path / "maps"
    maps.write_text("7f0 r-xp 0 08:01 1 /usr/lib/x86_64-linux-gnu/libLLVM-15.so.1\n")
    assert llvm_guard.foreign_llvm_loaded(str(maps))
    maps.write_text("7f0 r-xp 0 08:01 1 /venv/site-packages/triton/_C/libtriton.so\n")
    assert not llvm_guard.foreign_llvm_loaded(str(maps))
    assert not llvm_guard.foreign_llvm_loaded(str(tmp_path / "missing"))
    triton = object()
    monkeypatch.setitem(sys.modules, "triton", triton)  # already imported: nothing to do
    monkeypatch.setattr(llvm_guard, "foreign_llvm_loaded", lambda: True)
    with llvm_guard.triton_import_guarded() as done:
        assert done == "nothing" and sys.modules["triton"] is triton
    assert sys.modules["triton"] is triton


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the guard acts on Linux only")
def test_the_fallback_block_ends_with_the_import_it_protects(monkeypatch):
    monkeypatch.delitem(sys.modules, "triton", raising=False)
    monkeypatch.setattr(llvm_guard, "foreign_llvm_loaded", lambda: True)
    monkeypatch.setattr(llvm_guard, "import_triton_deep_bound", lambda: False)
    with llvm_guard.triton_import_guarded() as done:
        assert done == "blocked"
        with pytest.raises(ImportError):
            import triton  # noqa: F401
    assert "triton" not in sys.modules  # as before: not imported, not blocked


SCRIPT = textwrap.dedent("""
    import importlib.util, sys
    import numpy as np
    {setup}
    from napari_semfocus.scoring.model import FocusNet
    from napari_semfocus.scoring.scorer import FocusScorer
    assert "torchvision" not in sys.modules
    scorer = FocusScorer(FocusNet("resnet18"), {{}}, device="cpu", precision="float32")
    scorer.score(np.random.default_rng(0).random((64, 80)), 3000)
    assert "torchvision" in sys.modules
    entry = sys.modules.get("triton", "absent")
    print("triton entry:", "None" if entry is None else "absent" if entry == "absent" else "module")
    import torch.utils._triton as tt
    if importlib.util.find_spec("triton") is not None:
        print("torch sees triton:", tt.has_triton_package())
        import triton
        print("triton imported", flush=True)
    {teardown}
""")
FAKE_LLVM = ("from napari_semfocus import runtime as llvm_guard\n"
             "llvm_guard.foreign_llvm_loaded = lambda maps_path=None: True")
HAS_TRITON = importlib.util.find_spec("triton") is not None


def _run(setup: str, teardown: str = "", env=None):
    script = SCRIPT.format(setup=setup, teardown=teardown)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=300, env=env)
    assert run.returncode == 0, f"exit {run.returncode}: {run.stderr[-3000:]}"
    return run.stdout


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the guard acts on Linux only")
@pytest.mark.parametrize("deepbind", ["1", "0"])
def test_scorer_leaves_triton_usable(deepbind):
    """A fresh process (this one imported torchvision already), a system LLVM reported: the
    scorer is built and used, then triton is neither blocked nor hidden from torch; with
    NAPARI_SEMFOCUS_TRITON_DEEPBIND=0 it was blocked for the torchvision import only."""
    out = _run(FAKE_LLVM, env={**os.environ, llvm_guard.DEEPBIND_ENV: deepbind})
    if HAS_TRITON:
        assert f"triton entry: {'module' if deepbind == '1' else 'absent'}" in out
        assert "torch sees triton: True" in out and "triton imported" in out
    else:
        assert "triton entry: absent" in out


@pytest.mark.gui
@pytest.mark.skipif(not HAS_TRITON, reason="triton is not installed")
def test_triton_imports_beside_napari_mesa_llvm():
    """The real case: a napari viewer on screen (Mesa's libLLVM mapped, as under Xvfb), then the
    scorer, then ``import triton`` in the same process: no crash (a plain ``import triton``
    there dies with SIGSEGV), and triton is a real module for other plugins."""
    setup = ("import napari\nviewer = napari.Viewer(show=True)\n"
             "viewer.add_image(np.zeros((32, 32)))\n"
             "from qtpy.QtWidgets import QApplication\nQApplication.processEvents()\n"
             "from napari_semfocus import runtime as llvm_guard\n"
             "print('system llvm:', llvm_guard.foreign_llvm_loaded())")
    out = _run(setup, teardown="viewer.close()")
    if "system llvm: True" not in out:
        pytest.skip("no system LLVM mapped by the viewer here (no Mesa llvmpipe)")
    assert "triton entry: module" in out and "triton imported" in out
