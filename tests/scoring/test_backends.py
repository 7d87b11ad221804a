"""The inference backends below the scorer (scoring/backends.py, scoring/onnx_cache.py): ONNX
Runtime float32 equals PyTorch float32 on real frames and maps, int8 keeps the scale on the
validation frames, the cache follows the checkpoint's SHA-256 and rebuilds a damaged file,
a missing onnxruntime is one sentence (and ``auto`` falls back), the CLI takes ``--backend``.
The shipped model is exported once per session into a temporary cache."""

from __future__ import annotations

import shutil
import sys
import warnings
from types import SimpleNamespace

import numpy as np
import pytest
import tifffile

from napari_semfocus.errors import SemFocusError, SemFocusWarning
from napari_semfocus.io.files import file_sha256
from napari_semfocus.jobs.inputs import ImageInput
from napari_semfocus.progress import run_to_end
from napari_semfocus.scoring.backends import BACKEND_ENV, ORT_MISSING, resolve_backend
from napari_semfocus.scoring.checkpoint import load_checkpoint, save_checkpoint
from napari_semfocus.scoring.onnx_cache import AGREEMENT, cache_file
from napari_semfocus.scoring.scorer import FocusScorer
from napari_semfocus.training.data.pool import load_pool_image, read_pool_manifest
from napari_semfocus.training.suggest import score_candidates

from ..helpers import POOL, needs_default_model, parse_csv, run_cli

CPU = SimpleNamespace(type="cpu")


def write_frame(path, frame):
    """``frame`` as an 8-bit TIFF (its full range): a file for the command line."""
    lo, hi = float(frame.min()), float(frame.max())
    tifffile.imwrite(path, np.round(255 * (frame - lo) / (hi - lo)).astype(np.uint8))
    return path


@pytest.fixture(scope="session")
def onnx_cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("xdg-cache")


@pytest.fixture
def cache_env(onnx_cache_dir, monkeypatch):
    """The per-user cache in the session's temporary folder, ``auto`` unset."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(onnx_cache_dir))
    monkeypatch.delenv(BACKEND_ENV, raising=False)
    return onnx_cache_dir


@pytest.fixture(scope="session")
def scorers(onnx_cache_dir):
    """The shipped model: torch float32, onnxruntime float32 and int8 (exported once)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(onnx_cache_dir))
        return {"torch": FocusScorer.default("cpu", "float32", backend="torch"),
                "float32": FocusScorer.default("cpu", "float32", backend="onnxruntime"),
                "int8": FocusScorer.default("cpu", "int8", backend="onnxruntime")}


@needs_default_model
def test_onnxruntime_float32_equals_torch_float32_on_real_frames_and_maps(scorers, blur_series):
    _, frames = blur_series  # a real frame, sharp to blurred
    frames = frames[::2, :480, :640]  # sigma 0, 2, 8
    torch_scores = scorers["torch"].score(frames, 6000)
    ort_scores = scorers["float32"].score(frames, 6000)
    assert scorers["float32"].backend == "onnxruntime" and scorers["torch"].backend == "torch"
    assert torch_scores[0] - torch_scores[-1] > 3  # real frames across the scale
    np.testing.assert_allclose(ort_scores, torch_scores, atol=1e-3)
    for mode in ("crop", "shared"):  # crops in batches; the trunk over windows of any size
        a = scorers["torch"].focus_map(frames[0], 6000, stride=(120, 160), mode=mode)
        b = scorers["float32"].focus_map(frames[0], 6000, stride=(120, 160), mode=mode)
        assert a.scores.shape == b.scores.shape and a.scores.size >= 9
        np.testing.assert_allclose(b.scores, a.scores, atol=1e-3)


@needs_default_model
def test_int8_keeps_the_scale_on_the_validation_frames(scorers):
    info = scorers["int8"].engine.info
    assert info["passed"] == "1" and float(info["agreement_mean"]) <= AGREEMENT[0]
    assert scorers["int8"].precision == "int8"
    diffs = []
    for row in read_pool_manifest(POOL):
        if row["split"] != "val":
            continue
        img = load_pool_image(POOL, row)
        a = scorers["float32"].score(img.data, img.magnification, region="centre")
        b = scorers["int8"].score(img.data, img.magnification, region="centre")
        diffs.append(abs(b[0] - a[0]))
    assert len(diffs) == 5
    assert np.mean(diffs) <= AGREEMENT[0] and np.max(diffs) <= AGREEMENT[1]


def test_the_cache_follows_the_checkpoint_hash(untrained_checkpoint, cache_env, tmp_path,
                                               pool_image):
    path = tmp_path / "model.safetensors"
    shutil.copy(untrained_checkpoint, path)
    first_sha = file_sha256(path)
    first = FocusScorer.load(path, "cpu", "float32", backend="onnxruntime")
    frame = pool_image[:240, :320]
    before = first.score(frame, 5000)
    model, _ = load_checkpoint(path)
    save_checkpoint(model, path, {"note": "same weights, another file"})  # a new SHA-256
    second_sha = file_sha256(path)
    assert second_sha != first_sha
    second = FocusScorer.load(path, "cpu", "float32", backend="onnxruntime")
    assert second.engine.info["checkpoint_sha256"] == second_sha
    assert cache_file(first_sha, "float32").is_file() and cache_file(second_sha, "float32").is_file()
    np.testing.assert_allclose(second.score(frame, 5000), before, atol=1e-5)
    # a file whose record names another checkpoint is rebuilt, not trusted
    shutil.copy(cache_file(second_sha, "float32"), cache_file(first_sha, "float32"))
    shutil.copy(untrained_checkpoint, path)
    again = FocusScorer.load(path, "cpu", "float32", backend="onnxruntime")
    assert again.engine.info["checkpoint_sha256"] == first_sha


def test_a_corrupt_cache_file_is_rebuilt(untrained_checkpoint, cache_env, pool_image):
    sha = file_sha256(untrained_checkpoint)
    cache_file(sha, "float32").parent.mkdir(parents=True, exist_ok=True)
    cache_file(sha, "float32").write_bytes(b"half an ONNX file")
    with pytest.warns(SemFocusWarning, match="preparing the model for ONNX Runtime on this CPU, "
                      "once per model"):  # the user is told why the first score waits
        scorer = FocusScorer.load(untrained_checkpoint, "cpu", "float32", backend="onnxruntime")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # from the cache: nothing to say
        FocusScorer.load(untrained_checkpoint, "cpu", "float32", backend="onnxruntime")
    ref = FocusScorer.load(untrained_checkpoint, "cpu", "float32", backend="torch")
    frame = pool_image[:240, :320]
    np.testing.assert_allclose(scorer.score(frame, 5000), ref.score(frame, 5000), atol=1e-3)
    assert cache_file(sha, "float32").stat().st_size > 1000
    assert scorer.engine.info["checkpoint_sha256"] == sha


def test_without_onnxruntime_one_sentence_and_auto_is_torch(monkeypatch, capsys, tmp_path,
                                                             untrained_checkpoint, pool_image):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime fails
    monkeypatch.delenv(BACKEND_ENV, raising=False)
    with pytest.raises(SemFocusError) as err:
        resolve_backend("onnxruntime", CPU, "auto", True)
    assert str(err.value) == ORT_MISSING and ORT_MISSING.count(". ") == 0
    assert resolve_backend("auto", CPU, "auto", True) == ("torch", "auto")
    src = write_frame(tmp_path / "frame.tif", pool_image[:240, :320])
    code, _, err_text = run_cli(["score", src, "--checkpoint", untrained_checkpoint,
                                 "--magnification", "5000", "--backend", "onnxruntime"], capsys)
    assert code == 2 and err_text.strip().splitlines() == [f"semfocus score: error: {ORT_MISSING}"]


def test_auto_rule(monkeypatch):
    monkeypatch.delenv(BACKEND_ENV, raising=False)
    assert resolve_backend("auto", CPU, "auto", True) == ("onnxruntime", "auto")
    assert resolve_backend("auto", CPU, "bf16", True) == ("torch", "bf16")
    assert resolve_backend("auto", CPU, "auto", False) == ("torch", "auto")  # no file: training
    assert resolve_backend("auto", SimpleNamespace(type="cuda"), "auto", True) == ("torch", "auto")
    for bad in [("torch", CPU, "int8"), ("onnxruntime", SimpleNamespace(type="cuda"), "auto"),
                ("onnxruntime", CPU, "bf16"), ("tensorrt", CPU, "auto")]:
        with pytest.raises(SemFocusError):
            resolve_backend(*bad, True)
    monkeypatch.setenv(BACKEND_ENV, "torch")
    assert resolve_backend("auto", CPU, "auto", True) == ("torch", "auto")
    monkeypatch.setenv(BACKEND_ENV, "onnxruntime")  # where it can run: training keeps torch
    assert resolve_backend("auto", CPU, "float32", False) == ("torch", "float32")


@needs_default_model
def test_score_and_map_commands_take_backend(scorers, cache_env, tmp_path, capsys, pool_image):
    src = write_frame(tmp_path / "frame.tif", pool_image[:480, :640])
    frame = tifffile.imread(src)
    code, out, _ = run_cli(["score", src, "--magnification", "6000", "--device", "cpu",
                            "--backend", "onnxruntime", "--precision", "float32"], capsys)
    assert code == 0
    want = scorers["torch"].score(frame, 6000)[0]
    assert abs(float(parse_csv(out)[0]["score"]) - want) < 1e-3
    table = tmp_path / "map.csv"
    code, _, err = run_cli(["map", src, "--magnification", "6000", "--device", "cpu",
                            "--backend", "onnxruntime", "--precision", "int8", "--csv", table],
                           capsys)
    assert code == 0 and "int8" in err and "onnxruntime" in err
    assert len(parse_csv(table.read_text())) > 0


@needs_default_model
def test_suggest_reads_the_features_through_either_backend(scorers, blur_series):
    """Frames worth annotating use the trunk's features from whichever backend runs it."""
    _, frames = blur_series
    stack = ImageInput("series", frames[::2, :480, :640], 6000.0)
    found = {}
    for name in ("torch", "float32"):
        found[name] = run_to_end(score_candidates(scorers[name], [stack]))
    assert [c.index for c in found["float32"]] == list(range(len(stack.data)))
    for a, b in zip(found["torch"], found["float32"], strict=True):
        assert abs(a.score - b.score) <= 1e-3
        assert a.features.shape == b.features.shape and a.features.size >= 256
        np.testing.assert_allclose(b.features, a.features, atol=1e-4)
    sharp, blurred = found["float32"][0], found["float32"][-1]
    assert sharp.score - blurred.score > 3 and np.linalg.norm(sharp.features - blurred.features) > 0.1
