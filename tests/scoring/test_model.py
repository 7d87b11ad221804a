"""FocusNet and its files: shapes, the score range and margin, checkpoints and their errors."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from napari_semfocus.errors import CheckpointError
from napari_semfocus.scoring.checkpoint import load_checkpoint, read_metadata, save_checkpoint
from napari_semfocus.scoring.model import FocusNet


def test_model_shapes_and_range():

    for backbone in ("resnet18", "mobilenet_v3_small"):
        model = FocusNet(backbone).eval()
        out = model(torch.randn(3, 3, 96, 128), torch.tensor([0.1, 0.5, 0.9]))
        assert out.shape == (3,) and torch.all((out >= 0) & (out <= 10))
    no_mag = FocusNet("resnet18", use_magnification=False).eval()
    assert no_mag.head[0].in_features == 512
    assert FocusNet("resnet18").head[0].in_features == 513


def test_output_margin_reaches_the_ends_of_the_scale():

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


    path = save_checkpoint(FocusNet("mobilenet_v3_small", output_margin=0.25), tmp_path / "m.safetensors")
    assert load_checkpoint(path)[0].output_margin == 0.25
    # a v1 file (written before the margin existed) has no such key and keeps 10 * sigmoid
    meta = read_metadata(path)
    del meta["architecture"]["output_margin"]
    old = tmp_path / "v1.safetensors"
    save_file(load_file(str(path)), str(old), metadata={"semfocus": json.dumps(meta)})
    assert load_checkpoint(old)[0].output_margin == 0.0


def test_checkpoint_roundtrip_and_errors(tmp_path):

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


    save_file(load_file(str(other)), str(bad), metadata={"semfocus": json.dumps(meta_json)})
    with pytest.raises(CheckpointError, match="does not fit a FocusNet-resnet18"):
        load_checkpoint(bad)
