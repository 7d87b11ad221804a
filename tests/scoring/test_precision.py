"""Arithmetic precision: bf16 autocast only where the CPU has bfloat16 units, float32 elsewhere
and on request, and bf16 scores agree with float32 on real frames (<= 0.05 points)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from napari_semfocus.errors import SemFocusError
from napari_semfocus.scoring import devices
from napari_semfocus.scoring.scorer import FocusScorer

from ..helpers import ZEISS_FILE, blur, needs_default_model

CPU = torch.device("cpu")


def test_auto_follows_the_cpu_flag(monkeypatch):
    monkeypatch.setattr(devices, "cpu_has_bf16", lambda: True)
    assert devices.resolve_precision(CPU, "auto") == "bf16"
    assert devices.resolve_precision(CPU, "float32") == "float32"
    monkeypatch.setattr(devices, "cpu_has_bf16", lambda: False)
    assert devices.resolve_precision(CPU, "auto") == "float32"
    with pytest.raises(SemFocusError, match="this CPU has no bfloat16 arithmetic"):
        devices.resolve_precision(CPU, "bf16")
    with pytest.raises(SemFocusError, match="precision 'fp8' is not one of auto, float32, bf16"):
        devices.resolve_precision(CPU, "fp8")


def test_device_name_reports_the_precision(monkeypatch):
    monkeypatch.setattr(devices, "cpu_has_bf16", lambda: False)
    from napari_semfocus.scoring.model import FocusNet

    scorer = FocusScorer(FocusNet("resnet18"), {}, device="cpu")
    assert scorer.precision == "float32"
    assert scorer.device_name == f"cpu ({torch.get_num_threads()} threads, float32)"


def test_cpu_flag_read_from_cpuinfo():
    info = Path("/proc/cpuinfo")
    flags = info.read_text() if info.is_file() else ""
    assert devices.cpu_has_bf16() == ("avx512_bf16" in flags or "amx_bf16" in flags)


@needs_default_model
@pytest.mark.skipif(not devices.cpu_has_bf16(), reason="this CPU has no bf16 arithmetic")
def test_bf16_scores_agree_with_float32_on_real_frames(pool_image):
    from napari_semfocus.io.images import read_image

    zeiss = read_image(ZEISS_FILE)
    frames = [pool_image[:480, :640], blur(pool_image, 3.0)[:480, :640],
              np.asarray(zeiss.data)[: 480, :640].astype(np.float32)]
    fp32 = FocusScorer.default(device="cpu", precision="float32")
    bf16 = FocusScorer.default(device="cpu", precision="bf16")
    a = fp32.score(np.stack(frames), 5000)
    b = bf16.score(np.stack(frames), 5000)
    assert np.max(np.abs(a - b)) <= 0.05, (a, b)
    fa = fp32.focus_map(frames[0], 5000).scores
    fb = bf16.focus_map(frames[0], 5000).scores
    assert np.nanmax(np.abs(fa - fb)) <= 0.1, np.nanmax(np.abs(fa - fb))


def test_the_head_runs_in_float32_under_autocast():
    from napari_semfocus.scoring.model import FocusNet

    torch.manual_seed(0)
    model = FocusNet("resnet18").eval()
    feats, m = torch.randn(64, model.feature_dim), torch.rand(64)
    with torch.no_grad():
        plain = model.score_features(feats, m)
        with devices.autocast(CPU, "bf16"):
            cast = model.score_features(feats, m)
    assert cast.dtype == torch.float32
    assert torch.equal(cast, plain)  # not rounded to the bf16 grid
