"""The ``semfocus`` CLI contract: CSV columns, rows per slice, magnification sources, exit codes."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import tifffile

from napari_semfocus.scale import magnification_error

from ..helpers import FEI_FILE, PLAIN_PNG, parse_csv, run_cli


@pytest.fixture()
def stack_file(tmp_path, blur_series):
    _, frames = blur_series
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, (255 * frames / frames.max()).astype(np.uint8))
    return path


def test_score_csv_contract_stack_and_metadata(tiny_checkpoint, stack_file, capsys):
    ck = tiny_checkpoint[0]
    code, out, err = run_cli(["score", stack_file, FEI_FILE, "--checkpoint", ck,
                              "--device", "cpu", "--magnification", "4000"], capsys)
    assert code == 0, err
    assert out.splitlines()[0] == "path,index,magnification,score,score_low,score_high,worst_region"
    rows = parse_csv(out)
    assert {(r["score_low"], r["score_high"]) for r in rows} == {("", "")}  # no intervals
    assert [r["index"] for r in rows] == ["0", "1", "2", "3", "4", "0"]
    assert all(0.0 <= float(r["worst_region"]) <= 10.0 for r in rows)
    assert {r["magnification"] for r in rows} == {"4000"}
    scores = [float(r["score"]) for r in rows[:5]]
    assert scores[0] > scores[4]
    assert "model best.safetensors on cpu" in err
    # without --magnification: the FEI file's own metadata gives it
    code, out, err = run_cli(["score", FEI_FILE, "--checkpoint", ck, "--device", "cpu"], capsys)
    assert code == 0, err
    (row,) = parse_csv(out)
    assert float(row["magnification"]) == pytest.approx(12000, rel=0.01)


def test_score_manifest_and_output_file(tiny_checkpoint, stack_file, tmp_path, capsys):
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,magnification,comment\nstack.tif,2500,x\n")
    out_csv = tmp_path / "out" / "scores.csv"
    code, out, err = run_cli(["score", "--manifest", manifest, "--checkpoint", tiny_checkpoint[0],
                              "--device", "cpu", "--output", out_csv], capsys)
    assert code == 0, err
    rows = parse_csv(out_csv.read_text())
    assert len(rows) == 5 and {r["magnification"] for r in rows} == {"2500"}
    assert str(rows[0]["path"]).endswith("stack.tif")


def test_missing_magnification_fails_naming_file(tiny_checkpoint, stack_file, capsys):
    code, out, err = run_cli(["score", stack_file, "--checkpoint", tiny_checkpoint[0]], capsys)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "stack.tif" in err and "no magnification" in err


def test_bad_inputs_exit_2(tiny_checkpoint, tmp_path, capsys):
    bad = tmp_path / "broken.tif"
    bad.write_bytes(b"II*\x00garbage")
    code, _, err = run_cli(["score", bad, "--magnification", "1000", "--checkpoint",
                            tiny_checkpoint[0]], capsys)
    assert code == 2 and "broken.tif" in err and "not a readable TIFF" in err
    code, _, err = run_cli(["score", tmp_path / "nope.png", "--magnification", "1000"], capsys)
    assert code == 2 and "nope.png: no such file" in err
    corrupt = tmp_path / "model.safetensors"
    corrupt.write_bytes(b"not a model")
    ok = tmp_path / "ok.tif"
    tifffile.imwrite(ok, np.zeros((64, 64), np.uint8))
    code, _, err = run_cli(["score", ok, "--magnification", "1000", "--checkpoint", corrupt], capsys)
    assert code == 2 and "model.safetensors" in err and "not a readable safetensors" in err


def test_measure_csv(stack_file, capsys):
    code, out, err = run_cli(["measure", stack_file, PLAIN_PNG, "--measure", "tenengrad"], capsys)
    assert code == 0, err
    rows = parse_csv(out)
    assert out.splitlines()[0] == "path,index,magnification,score"
    assert len(rows) == 6 and rows[5]["magnification"] == ""
    values = [float(r["score"]) for r in rows[:5]]
    assert values == sorted(values, reverse=True)


def test_console_script_runs():
    exe = "semfocus"
    res = subprocess.run([sys.executable, "-m", "napari_semfocus.cli", "--help"],
                         capture_output=True, text=True)
    assert res.returncode == 0 and "score" in res.stdout and "measure" in res.stdout
    assert exe


def test_magnification_written_as_in_the_widgets(stack_file, capsys):
    """The CLI takes what the widgets take ("5k", "5,000x", "12.5 kX") and refuses the same
    values with the same sentence."""
    for text, value in (("5k", "5000"), ("5,000x", "5000"), ("12.5 kX", "12500")):
        code, out, err = run_cli(["measure", stack_file, "--measure", "brenner",
                                  "--magnification", text], capsys)
        assert code == 0, err
        assert {r["magnification"] for r in parse_csv(out)} == {value}
    code, out, err = run_cli(["score", stack_file, "--magnification", "a lot"], capsys)
    assert code == 2 and out == ""
    assert err == f"semfocus score: error: {magnification_error('a lot')}\n"
