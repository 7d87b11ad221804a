"""``--precision float32|bf16|auto`` on the commands that run the model: the choice reaches the
model (the device line names it) and bf16 asked for on a CPU without bfloat16 arithmetic runs in
float32 with one note."""

from __future__ import annotations

import pytest

from napari_semfocus._sample_data import sample_path
from napari_semfocus.cli.main import build_parser
from napari_semfocus.scoring import devices

from ..helpers import run_cli

SAMPLE = sample_path("half_focused.tif")


def _score(checkpoint, precision, capsys):
    return run_cli(["score", SAMPLE, "--checkpoint", checkpoint, "--device", "cpu",
                    "--magnification", "5000", "--precision", precision], capsys)


@pytest.mark.parametrize("precision", ["float32", "bf16"])
def test_score_runs_in_the_precision_asked_for(untrained_checkpoint, precision, monkeypatch,
                                               capsys):
    monkeypatch.setattr(devices, "cpu_has_bf16", lambda: True)  # torch runs bf16 on any CPU
    code, out, err = _score(untrained_checkpoint, precision, capsys)
    assert code == 0, err
    assert f"threads, {precision})" in err and "note:" not in err
    assert len(out.splitlines()) == 2


def test_bf16_without_cpu_support_falls_back_to_float32_with_a_note(untrained_checkpoint,
                                                                     monkeypatch, capsys):
    monkeypatch.setattr(devices, "cpu_has_bf16", lambda: False)
    code, out, err = _score(untrained_checkpoint, "bf16", capsys)
    assert code == 0, err
    notes = [line for line in err.splitlines() if "note:" in line]
    assert notes == ["semfocus score: note: this CPU has no bfloat16 arithmetic (avx512_bf16 / "
                     "amx_bf16), so --precision bf16 runs in float32."]
    assert "threads, float32)" in err
    # auto on such a CPU is float32 without a note
    code, out, err = _score(untrained_checkpoint, "auto", capsys)
    assert code == 0 and "threads, float32)" in err and "note:" not in err


def test_map_honours_precision(untrained_checkpoint, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(devices, "cpu_has_bf16", lambda: False)
    code, _, err = run_cli(["map", SAMPLE, "--checkpoint", untrained_checkpoint, "--device", "cpu",
                            "--magnification", "5000", "--precision", "bf16",
                            "--csv", tmp_path / "map.csv"], capsys)
    assert code == 0, err
    assert "semfocus map: note: this CPU has no bfloat16" in err and "threads, float32)" in err


@pytest.mark.parametrize("argv", [
    ["score", "x.tif"], ["map", "x.tif"], ["gate", "calibrate", "--manifest", "m.csv", "-o", "g"],
    ["gate", "apply", "x.tif", "--gate", "g.json"], ["evaluate", "--manifest", "m.csv"],
    ["train", "--dataset", "d", "--out", "o"],
], ids=lambda a: " ".join(a[:2]))
def test_every_model_command_takes_precision(argv):
    parser = build_parser()
    assert parser.parse_args(argv).precision == "auto"
    assert parser.parse_args(argv + ["--precision", "float32"]).precision == "float32"
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args(argv + ["--precision", "fp8"])
    assert exit_info.value.code == 2
