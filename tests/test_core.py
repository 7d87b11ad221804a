"""Core (no Qt): scale, magnification encoding, preparation, measures, model, checkpoints."""

from __future__ import annotations

import numpy as np
import pytest

from napari_semfocus.errors import CheckpointError, SemFocusError
from napari_semfocus.scale import (
    encode_magnification,
    label_for_added_blur,
    magnification_from_pixel_size,
    score_from_sigma,
)
from napari_semfocus.scoring.measures import MEASURES, measure
from napari_semfocus.scoring.preprocess import as_frames, normalise, region_windows


def test_score_scale_table():
    sigmas = [0.5, 1, 2, 4, 8, 16, 32, 100]
    assert np.allclose(score_from_sigma(sigmas), [10, 8.5, 7, 5.5, 4, 2.5, 1, 1])
    assert label_for_added_blur(0.0) == pytest.approx(10.0)
    assert label_for_added_blur(np.sqrt(1 - 0.25)) == pytest.approx(8.5)


def test_magnification_encoding():
    assert encode_magnification(100) == 0.0
    assert encode_magnification(1_000_000) == 1.0
    assert encode_magnification(10_000) == pytest.approx(0.5)
    assert encode_magnification(10) == 0.0 and encode_magnification(1e8) == 1.0
    assert magnification_from_pixel_size(127e-3 / 1000 / 1000, 1000) == pytest.approx(1000)
    with pytest.raises(ValueError):
        encode_magnification(0)


def test_prepare_any_dtype_and_rgb():
    rng = np.random.default_rng(0)
    base = rng.random((64, 80)).astype(np.float32)
    u8 = (base * 255).astype(np.uint8)
    u16 = (base * 65535).astype(np.uint16)
    rgb = np.repeat(u8[..., None], 3, axis=2)
    assert as_frames(u8).shape == (1, 64, 80)
    assert as_frames(rgb).shape == (1, 64, 80)
    assert as_frames(np.stack([u16, u16, u16, u16])).shape == (4, 64, 80)
    # brightness/contrast do not change the normalised image
    a, b = normalise(u8.astype(np.float32)), normalise(3.0 * u8.astype(np.float32) + 100)
    assert np.allclose(a, b, atol=1e-4)
    assert np.allclose(normalise(u16), normalise(u8), atol=0.05)
    assert not normalise(np.full((32, 32), 7.0)).any()
    with pytest.raises(SemFocusError, match="shape"):
        as_frames(np.zeros((2, 3, 4, 5, 6)))


def test_regions_cover_frame():
    wins = region_windows((1000, 1500), "whole")
    covered = np.zeros((1000, 1500), bool)
    for w in wins:
        assert (w.h, w.w) == (240, 320)
        covered[w.y : w.y + w.h, w.x : w.x + w.w] = True
    assert covered.all()
    (c,) = region_windows((1000, 1500), "centre")
    assert (c.y, c.x, c.h, c.w) == (380, 590, 240, 320)
    (small,) = region_windows((100, 120), "whole")
    assert (small.h, small.w) == (100, 120)


@pytest.mark.parametrize("name", sorted(MEASURES))
def test_classical_measures_fall_with_blur(name, blur_series):
    sigmas, frames = blur_series
    values = measure(frames, name)
    assert values.shape == (len(sigmas),)
    assert np.all(np.diff(values) < 0), f"{name} does not fall monotonically with blur: {values}"


def test_model_shapes_and_range():
    import torch

    from napari_semfocus.scoring.model import FocusNet

    for backbone in ("resnet18", "mobilenet_v3_small"):
        model = FocusNet(backbone).eval()
        out = model(torch.randn(3, 3, 96, 128), torch.tensor([0.1, 0.5, 0.9]))
        assert out.shape == (3,) and torch.all((out >= 0) & (out <= 10))
    no_mag = FocusNet("resnet18", use_magnification=False).eval()
    assert no_mag.head[0].in_features == 512
    assert FocusNet("resnet18").head[0].in_features == 513


def test_output_margin_reaches_the_ends_of_the_scale():
    import torch

    from napari_semfocus.scoring.model import FocusNet

    model = FocusNet("mobilenet_v3_small", output_margin=0.5)
    feats = torch.zeros(3, model.feature_dim)
    last = model.head[-1]
    with torch.no_grad():
        last.weight.zero_()
        for z, want_train, want_eval in ((-20.0, -0.5, 0.0), (0.0, 5.0, 5.0), (20.0, 10.5, 10.0)):
            last.bias.fill_(z)
            model.train()
            assert model.score_features(feats, torch.zeros(3))[0].item() == pytest.approx(want_train, abs=1e-4)
            model.eval()
            assert model.score_features(feats, torch.zeros(3))[0].item() == pytest.approx(want_eval, abs=1e-4)
        # 10 is reached at a finite logit with the margin; a plain 10 * sigmoid (margin 0) never does
        last.bias.fill_(3.1)
        assert model.score_features(feats, torch.zeros(3))[0].item() == 10.0
        model.output_margin = 0.0
        assert model.score_features(feats, torch.zeros(3))[0].item() < 9.6


def test_checkpoint_keeps_the_output_margin(tmp_path):
    import json

    from safetensors.torch import load_file, save_file

    from napari_semfocus.scoring.checkpoint import load_checkpoint, read_metadata, save_checkpoint
    from napari_semfocus.scoring.model import FocusNet

    path = save_checkpoint(FocusNet("mobilenet_v3_small", output_margin=0.25), tmp_path / "m.safetensors")
    assert load_checkpoint(path)[0].output_margin == 0.25
    # a v1 file (written before the margin existed) has no such key and keeps 10 * sigmoid
    meta = read_metadata(path)
    del meta["architecture"]["output_margin"]
    old = tmp_path / "v1.safetensors"
    save_file(load_file(str(path)), str(old), metadata={"semfocus": json.dumps(meta)})
    assert load_checkpoint(old)[0].output_margin == 0.0


def test_checkpoint_roundtrip_and_errors(tmp_path):
    import torch
    from safetensors.torch import save_file

    from napari_semfocus.scoring.checkpoint import load_checkpoint, read_metadata, save_checkpoint
    from napari_semfocus.scoring.model import FocusNet

    model = FocusNet("resnet18").eval()
    path = save_checkpoint(model, tmp_path / "m.safetensors", {"provenance": {"test": True}})
    meta = read_metadata(path)
    assert meta["architecture"]["backbone"] == "resnet18"
    assert meta["magnification_encoding"].startswith("clip")
    assert meta["input"]["tile_hw"] == [240, 320]
    loaded, _ = load_checkpoint(path)
    x, m = torch.randn(2, 3, 64, 64), torch.tensor([0.2, 0.7])
    with torch.no_grad():
        assert torch.allclose(model(x, m), loaded(x, m))
    assert not list(tmp_path.glob(".*.tmp"))  # atomic write leaves no temp file

    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(b"\x00\x01garbage" * 10)
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        load_checkpoint(corrupt)
    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(3)}, str(foreign))
    with pytest.raises(CheckpointError, match="not a napari-semfocus model"):
        load_checkpoint(foreign)
    other = save_checkpoint(FocusNet("mobilenet_v3_small"), tmp_path / "mb.safetensors")
    with pytest.raises(CheckpointError, match="not the FocusNet-resnet18"):
        load_checkpoint(other, expected_backbone="resnet18")
    # metadata claiming resnet18 over mobilenet weights: another architecture's weights
    bad = tmp_path / "mismatch.safetensors"
    meta_json = read_metadata(other)
    meta_json["architecture"]["backbone"] = "resnet18"
    import json

    from safetensors.torch import load_file

    save_file(load_file(str(other)), str(bad), metadata={"semfocus": json.dumps(meta_json)})
    with pytest.raises(CheckpointError, match="does not fit a FocusNet-resnet18"):
        load_checkpoint(bad)


def test_trained_model_scores_sharper_higher(tiny_checkpoint, blur_series):
    from napari_semfocus import FocusScorer
    from napari_semfocus.training.loop import BatchDone, Finished

    path, updates = tiny_checkpoint
    losses = [u.loss for u in updates if isinstance(u, BatchDone)]
    assert np.mean(losses[-10:]) < np.mean(losses[:10])
    assert isinstance(updates[-1], Finished) and updates[-1].best_path == path
    scorer = FocusScorer.from_checkpoint(path, device="cpu")
    assert scorer.device_name.startswith("cpu")
    sigmas, frames = blur_series
    scores = scorer.score(frames, magnification=5000, batch_size=8)
    assert scores.shape == (len(sigmas),)
    assert np.all((scores >= 0) & (scores <= 10))
    assert scores[0] > scores[2] > scores[4], scores
    centre = scorer.score(frames[0], 5000, region="centre")
    assert centre.shape == (1,)


def test_scorer_errors(tiny_checkpoint, blur_series):
    from napari_semfocus import FocusScorer

    scorer = FocusScorer.from_checkpoint(tiny_checkpoint[0], device="cpu")
    frame = blur_series[1][0]
    with pytest.raises(SemFocusError, match="no magnification given"):
        scorer.score(frame, None, name="frame.tif")
    with pytest.raises(SemFocusError, match="positive"):
        scorer.score(frame, -5)
    with pytest.raises(SemFocusError, match="region"):
        scorer.score(frame, 5000, region="middle")
    with pytest.raises(SemFocusError, match="not available"):
        FocusScorer.from_checkpoint(tiny_checkpoint[0], device="cuda:7")


def test_atomic_write_gives_usual_file_mode(tmp_path):
    import os

    from napari_semfocus.scoring.checkpoint import atomic_write

    target = tmp_path / "out.csv"
    atomic_write(target, lambda tmp: open(tmp, "w").write("a,b\n"))
    umask = os.umask(0)
    os.umask(umask)
    assert target.read_text() == "a,b\n"
    assert (target.stat().st_mode & 0o777) == (0o666 & ~umask)
