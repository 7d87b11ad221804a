"""The reliability guarantees of the command line (docs/reliability.md): outputs never overwrite
inputs, and bad input ends in exit code 2 with one sentence on stderr and every input file
unchanged (sha256 before and after)."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile

from ..helpers import run_cli

SEMFOCUS = Path(sys.executable).with_name("semfocus")


def sha(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture
def files(tmp_path, untrained_checkpoint):
    """An image, a manifest listing it, a gate file and a checkpoint in one folder."""
    img = tmp_path / "img.tif"
    rng = np.random.default_rng(0)
    tifffile.imwrite(img, rng.integers(0, 255, (256, 320), dtype=np.uint8))
    (tmp_path / "list.csv").write_text("path,magnification,label\nimg.tif,5000,8\n")
    (tmp_path / "gate.json").write_text("{}\n")
    ckpt = tmp_path / "m.safetensors"
    shutil.copy(untrained_checkpoint, ckpt)
    return tmp_path


def check_refused(code, err, out_option, out_path, in_what, in_path, command, hashes):
    assert code == 2, err
    lines = err.strip().splitlines()
    assert lines == [f"semfocus {command}: error: --{out_option} {out_path} is the {in_what} "
                     f"{in_path}: refusing to overwrite an input; choose another output file."]
    for path, digest in hashes.items():
        assert sha(path) == digest, f"{path} changed"


CASES = [
    # (argv with {d} for the folder, output option, output, what, input)
    (["score", "{d}/img.tif", "--magnification", "5000", "-o", "{d}/img.tif"],
     "output", "{d}/img.tif", "input image", "{d}/img.tif"),
    (["score", "{d}", "--magnification", "5000", "-o", "{d}/./img.tif"],
     "output", "{d}/./img.tif", "input image", "{d}/img.tif"),
    (["score", "--manifest", "{d}/list.csv", "--output", "{d}/list.csv"],
     "output", "{d}/list.csv", "manifest", "{d}/list.csv"),
    (["score", "{d}/img.tif", "--magnification", "5000", "--checkpoint", "{d}/m.safetensors",
      "-o", "{d}/m.safetensors"],
     "output", "{d}/m.safetensors", "checkpoint", "{d}/m.safetensors"),
    (["measure", "--manifest", "{d}/list.csv", "--measure", "tenengrad", "-o", "{d}/img.tif"],
     "output", "{d}/img.tif", "input image", "{d}/img.tif"),
    (["map", "{d}/img.tif", "--magnification", "5000", "--png", "{d}/img.tif"],
     "png", "{d}/img.tif", "input image", "{d}/img.tif"),
    (["map", "{d}/img.tif", "--magnification", "5000", "--csv", "{d}/m.safetensors",
      "--checkpoint", "{d}/m.safetensors"],
     "csv", "{d}/m.safetensors", "checkpoint", "{d}/m.safetensors"),
    (["gate", "calibrate", "--manifest", "{d}/list.csv", "--checkpoint", "{d}/m.safetensors",
      "-o", "{d}/m.safetensors"],
     "output", "{d}/m.safetensors", "checkpoint", "{d}/m.safetensors"),
    (["gate", "calibrate", "--manifest", "{d}/list.csv", "-o", "{d}/g2.json",
      "--scores", "{d}/img.tif"],
     "scores", "{d}/img.tif", "input image", "{d}/img.tif"),
    (["gate", "calibrate", "--manifest", "{d}/list.csv", "-o", "{d}/g2.json",
      "--plot", "{d}/list.csv"],
     "plot", "{d}/list.csv", "manifest", "{d}/list.csv"),
    (["gate", "apply", "{d}/img.tif", "--magnification", "5000", "--gate", "{d}/gate.json",
      "-o", "{d}/gate.json"],
     "output", "{d}/gate.json", "gate file", "{d}/gate.json"),
    (["evaluate", "--manifest", "{d}/list.json", "--output", "{d}/list"],
     "output", "{d}/list.json", "manifest", "{d}/list.json"),
]


@pytest.mark.parametrize("argv, option, out, what, inp", CASES,
                         ids=[" ".join(c[0][:2]) + f" --{c[1]}" for c in CASES])
def test_an_output_that_names_an_input_is_refused_before_any_work(files, capsys, argv, option,
                                                                  out, what, inp):
    (files / "list.json").write_text("path,magnification,label\nimg.tif,5000,8\n")
    hashes = {p: sha(p) for p in files.iterdir() if p.is_file()}
    d = str(files)
    code, _, err = run_cli([a.format(d=d) for a in argv], capsys)
    check_refused(code, err, option, out.format(d=d), what, inp.format(d=d), argv[0], hashes)


def test_the_real_entry_point_refuses_to_write_over_the_image(files):
    img = files / "img.tif"
    before = sha(img)
    proc = subprocess.run([str(SEMFOCUS), "score", str(img), "--magnification", "5000",
                           "-o", str(img)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (f"semfocus score: error: --output {img} is the input image "
                                   f"{img}: refusing to overwrite an input; choose another "
                                   f"output file.")
    assert sha(img) == before


def test_a_symlink_to_an_input_is_the_same_file(files, capsys):
    link = files / "link.tif"
    link.symlink_to(files / "img.tif")
    before = sha(files / "img.tif")
    code, _, err = run_cli(["map", files / "img.tif", "--magnification", "5000",
                            "-o", link], capsys)
    assert code == 2 and f"--output {link} is the input image {files / 'img.tif'}" in err
    assert sha(files / "img.tif") == before
