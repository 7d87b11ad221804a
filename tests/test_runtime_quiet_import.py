"""The widgets' workers' quiet import of torch (``runtime.import_torch_quietly``): the same
libraries are loaded with the same ``dlopen`` flags (the LLVM guard's RTLD_DEEPBIND for triton
included), no full cycle collection runs inside the import, collection is back on afterwards and
nothing is left frozen, and the model still scores. Each case is a fresh process (this one
imported torch)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="the libraries are loaded ahead on Linux only")
HAS_TRITON = importlib.util.find_spec("triton") is not None

CHILD = textwrap.dedent("""
    import gc, json, os, sys
    import numpy as np
    from napari_semfocus import runtime
    runtime.foreign_llvm_loaded = lambda maps_path=None: True  # as beside Mesa: deep-bind triton
    calls = []
    full = []
    gc.callbacks.append(lambda phase, info: full.append(1)
                        if phase == "start" and info["generation"] == 2 else None)
    assert "torch" not in sys.modules
    flags = sys.getdlopenflags()
    if sys.argv[1] == "quiet":
        real = runtime.dlopen_releasing_gil
        def recording(path, flags):
            loaded = real(path, flags)
            calls.append((path, flags, loaded))
            return loaded
        runtime.dlopen_releasing_gil = recording
        runtime.import_torch_quietly()
    from napari_semfocus.scoring.model import FocusNet
    from napari_semfocus.scoring.scorer import FocusScorer
    import torch
    torch.manual_seed(0)  # the same untrained weights in both processes
    scorer = FocusScorer(FocusNet("resnet18"), {}, device="cpu", precision="float32")
    collections = len(full)
    score = scorer.score(np.random.default_rng(0).random((64, 80)), 3000)
    maps = open("/proc/self/maps").read().split()
    libs = sorted({p for p in maps if p.startswith("/") and ".so" in p and
                   any(k in p for k in ("torch", "triton", "nvidia"))})
    print(json.dumps({"calls": calls, "full_collections": collections, "default_flags": flags,
                      "gc_enabled": gc.isenabled(), "frozen": gc.get_freeze_count(),
                      "torch_c": torch._C.__file__, "libs": libs, "score": float(score[0]),
                      "triton": sys.modules.get("triton") is not None}))
""")


def run_child(mode: str) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, mode], capture_output=True, text=True,
                         timeout=300, env={**os.environ, "NAPARI_SEMFOCUS_TRITON_DEEPBIND": "1"})
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_quiet_import_loads_the_same_libraries_without_a_full_collection():
    plain, quiet = run_child("plain"), run_child("quiet")
    # the same shared libraries end up mapped, and the model scores the same
    assert quiet["libs"] == plain["libs"] and quiet["libs"]
    assert quiet["score"] == pytest.approx(plain["score"], abs=1e-6)
    # torch._C's file was loaded first, GIL released, with the import's own flags
    assert all(loaded for _p, _f, loaded in quiet["calls"]), quiet["calls"]
    calls = {os.path.realpath(p): f for p, f, _loaded in quiet["calls"]}
    assert calls[os.path.realpath(quiet["torch_c"])] == quiet["default_flags"]
    if HAS_TRITON:  # triton's library: with llvm_guard's RTLD_DEEPBIND, as the import uses
        (triton_flags,) = [f for p, f in calls.items() if p.endswith("libtriton.so")]
        assert triton_flags & os.RTLD_DEEPBIND and quiet["triton"] and plain["triton"]
    # the plain import runs full collections of the heap; the quiet one none, and leaves the
    # collector as it found it
    assert plain["full_collections"] > 0 and quiet["full_collections"] == 0
    assert quiet["gc_enabled"] and quiet["frozen"] == 0


def test_collection_paused_nests_and_restores(monkeypatch):
    import gc

    from napari_semfocus import runtime as quiet_import

    assert gc.isenabled()
    with quiet_import.collection_paused():
        with quiet_import.collection_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer pause still holds
        made = [[] for _ in range(1000)]
    assert gc.isenabled() and gc.get_freeze_count() == 0
    assert gc.get_count()[0] < len(made)  # moved to the oldest generation, not left young
    gc.disable()  # collection that was off stays off
    try:
        with quiet_import.collection_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
