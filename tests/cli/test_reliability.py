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


# ---- train --out: an earlier run's checkpoints are not replaced silently ----------------------
def test_train_refuses_a_folder_with_checkpoints_without_resume_or_overwrite(files, capsys):
    out = files / "run"
    out.mkdir()
    best = out / "best.safetensors"
    shutil.copy(files / "m.safetensors", best)
    before = sha(best)
    code, _, err = run_cli(["train", "--dataset", files / "nowhere", "--out", out], capsys)
    assert code == 2
    assert err.strip() == (f"semfocus train: error: --out {out} already holds best.safetensors "
                           f"of an earlier run: pass --resume to continue it or --overwrite to "
                           f"replace it.")
    assert sha(best) == before


def test_train_out_that_is_a_file_is_one_sentence(files, capsys):
    target = files / "gate.json"
    before = sha(target)
    code, _, err = run_cli(["train", "--dataset", files / "nowhere", "--out", target], capsys)
    assert code == 2
    assert err.strip() == f"semfocus train: error: --out {target} is a file, not a folder."
    assert sha(target) == before


def test_train_overwrite_gets_past_the_folder_check(files, capsys):
    out = files / "run"
    out.mkdir()
    shutil.copy(files / "m.safetensors", out / "last.safetensors")
    code, _, err = run_cli(["train", "--dataset", files / "nowhere", "--out", out, "--overwrite"],
                           capsys)
    assert code == 2  # past the folder check, on to the missing dataset: one sentence
    assert err.strip() == (f"semfocus train: error: --dataset {files / 'nowhere'} is not a "
                           f"folder written by make-dataset (it lacks train_images.npy).")


# ---- checkpoint headers are validated, in one sentence -------------------------------------
def _with_header(src, dst, edit):
    """Copy checkpoint ``src`` to ``dst`` with its metadata changed by ``edit`` (a dict -> the
    new JSON value of the header)."""
    import json

    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    with safe_open(str(src), framework="pt") as f:
        meta = json.loads(f.metadata()["semfocus"])
    save_file(load_file(str(src)), str(dst), metadata={"semfocus": json.dumps(edit(meta))})


def _set(path, value):
    def edit(meta):
        *parents, last = path.split(".")
        d = meta
        for key in parents:
            d = d[key]
        d[last] = value
        return meta
    return edit


HEADERS = [
    (_set("input.tile_hw", [1, 1]), "an invalid input.tile_hw [1, 1] in its metadata (expected "
                                    "two whole numbers from 32 to 2048)"),
    (_set("input.tile_hw", [0, 0]), "an invalid input.tile_hw [0, 0] in its metadata (expected "
                                    "two whole numbers from 32 to 2048)"),
    (_set("input.tile_hw", [240, 100000]), "an invalid input.tile_hw [240, 100000] in its "
                                           "metadata (expected two whole numbers from 32 to 2048)"),
    (_set("input.tile_hw", [-240, 320]), "an invalid input.tile_hw [-240, 320]"),
    (_set("input.tile_hw", "240x320"), "an invalid input.tile_hw '240x320'"),
    (_set("input.tile_hw", [240.5, 320]), "an invalid input.tile_hw [240.5, 320]"),
    (_set("architecture", ["FocusNet"]), "an invalid architecture ['FocusNet'] in its metadata "
                                         "(expected an object)"),
    (_set("architecture.name", "ResNet"), "an invalid architecture.name 'ResNet'"),
    (_set("architecture.backbone", ["resnet18"]), "names an unknown backbone ['resnet18']."),
    (_set("architecture.use_magnification", "yes"),
     "an invalid architecture.use_magnification 'yes' in its metadata (expected true or false)"),
    (_set("architecture.output_margin", "0.5"),
     "an invalid architecture.output_margin '0.5' in its metadata (expected a number from 0 to "
     "10)"),
    # issue 28: 1e308 passed (finite, >= 0) and every score was NaN with exit code 0
    (_set("architecture.output_margin", 1e308),
     "an invalid architecture.output_margin 1e+308 in its metadata (expected a number from 0 to "
     "10)."),
    (_set("architecture.head_hidden", [512, 64]),
     "an invalid architecture.head_hidden [512, 64] in its metadata (a FocusNet-mobilenet_v3_small "
     "has [256, 64])."),
    (_set("architecture.feature_dim", 1e9),
     "an invalid architecture.feature_dim 1000000000.0 in its metadata (a "
     "FocusNet-mobilenet_v3_small has 576)."),
    (_set("input.channels", 1), "an invalid input.channels 1 in its metadata (expected 3, what "
                                "this version feeds the model)."),
    (_set("input.normalisation.scale", 1e30), "an invalid input.normalisation"),
    (_set("score_range", [0, 100]), "an invalid score_range [0, 100] in its metadata"),
    (_set("magnification_encoding", "log10(M)"), "an invalid magnification_encoding 'log10(M)'"),
    (_set("architecture.output_margin", float("nan")), "an invalid architecture.output_margin nan"),
    (_set("architecture.output_margin", -1), "an invalid architecture.output_margin -1"),
    (_set("format_version", "1"), "an invalid format_version '1' in its metadata (expected one "
                                  "of 1)"),
    (_set("format_version", 7), "has format version 7, newer than this napari-semfocus reads (1); "
                                "please upgrade."),
    (_set("input", [240, 320]), "an invalid input [240, 320] in its metadata (expected an object)"),
    (lambda meta: [meta], "has damaged metadata (a JSON list, not an object)."),
    (lambda meta: "FocusNet", "has damaged metadata (a JSON str, not an object)."),
]


@pytest.mark.parametrize("edit, sentence", HEADERS, ids=[h[1][:40] for h in HEADERS])
def test_a_bad_checkpoint_header_is_one_sentence_naming_the_field(files, capsys, edit, sentence):
    bad = files / "bad.safetensors"
    _with_header(files / "m.safetensors", bad, edit)
    hashes = {p: sha(p) for p in files.iterdir() if p.is_file()}
    code, out, err = run_cli(["score", files / "img.tif", "--magnification", "5000",
                              "--checkpoint", bad, "--device", "cpu"], capsys)
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"semfocus score: error: checkpoint {bad} ")
    assert sentence in lines[0]
    assert {p: sha(p) for p in files.iterdir() if p.is_file()} == hashes


# ---- one sentence where a traceback used to be ------------------------------------------------
@pytest.fixture
def odd_files(tmp_path, untrained_checkpoint):
    shutil.copy(untrained_checkpoint, tmp_path / "m.safetensors")
    rng = np.random.default_rng(1)
    tifffile.imwrite(tmp_path / "strmag.tif", rng.integers(0, 255, (256, 320), dtype=np.uint8),
                     metadata={"magnification": "abc"})
    tifffile.imwrite(tmp_path / "two.tif", rng.integers(0, 255, (256, 320, 2), dtype=np.uint8))
    (tmp_path / "latin.csv").write_bytes("path,magnification,label\nök.tif,5000,8\n"
                                         .encode("latin-1"))
    return tmp_path


SENTENCES = [
    (["score", "{d}/strmag.tif", "--device", "cpu", "--checkpoint", "{d}/m.safetensors"],
     "semfocus score: error: {d}/strmag.tif (file metadata): magnification 'abc' is not a "
     "positive number (for example 5000, 5k or 5,000x)."),
    (["measure", "{d}/strmag.tif", "--measure", "tenengrad"],
     "semfocus measure: error: {d}/strmag.tif (file metadata): magnification 'abc' is not a "
     "positive number (for example 5000, 5k or 5,000x)."),
    (["map", "{d}/strmag.tif", "--device", "cpu", "-o", "{d}/out.tif",
      "--checkpoint", "{d}/m.safetensors"],
     "semfocus map: error: {d}/strmag.tif (file metadata): magnification 'abc' is not a "
     "positive number (for example 5000, 5k or 5,000x)."),
    (["score", "--manifest", "{d}/latin.csv"],
     "semfocus score: error: manifest {d}/latin.csv is not UTF-8 text; save it as UTF-8 CSV."),
    (["score", "{d}/two.tif", "--magnification", "5000", "--device", "cpu",
      "--checkpoint", "{d}/m.safetensors"],
     "semfocus score: error: {d}/two.tif has shape (256, 320, 2): 2 channels is neither "
     "greyscale nor RGB; give one channel or an RGB image."),
    (["score", "{d}/two.tif", "--magnification", "nan"],
     "semfocus score: error: Magnification 'nan' is not a positive number (for example 5000, "
     "5k or 5,000x)."),
    (["gate", "calibrate", "--manifest", "{d}/latin.csv", "--accept-score", "nan",
      "-o", "{d}/g.json"],
     "semfocus gate: error: --accept-score nan is not a number."),
]


@pytest.mark.parametrize("argv, sentence", SENTENCES, ids=[" ".join(s[0][:2]) for s in SENTENCES])
def test_bad_input_is_exactly_one_sentence(odd_files, capsys, argv, sentence):
    d = str(odd_files)
    hashes = {p: sha(p) for p in odd_files.iterdir()}
    code, out, err = run_cli([a.format(d=d) for a in argv], capsys)
    assert code == 2 and out == ""
    assert err.strip().splitlines() == [sentence.format(d=d)]
    assert {p: sha(p) for p in odd_files.iterdir()} == hashes


# ---- wrong or silent results ------------------------------------------------------------------
def test_duplicate_manifest_rows_are_refused_naming_the_row(files, capsys):
    (files / "dup.csv").write_text("path,magnification\nimg.tif,5000\n./img.tif,8000\n")
    code, out, err = run_cli(["score", "--manifest", files / "dup.csv", "--device", "cpu"], capsys)
    assert code == 2 and out == ""
    assert err.strip() == (f"semfocus score: error: manifest {files / 'dup.csv'} line 3 repeats "
                           f"the image of line 2 ({files / 'img.tif'}); list each image once.")


@pytest.mark.parametrize("mag, clipped", [("1e12", "1e+06"), ("1e-9", "100")])
def test_a_magnification_outside_the_encodable_range_warns(files, capsys, mag, clipped):
    code, out, err = run_cli(["score", files / "img.tif", "--magnification", mag,
                              "--checkpoint", files / "m.safetensors", "--device", "cpu"], capsys)
    assert code == 0, err
    shown = f"{float(mag):g}"
    assert (f"semfocus score: warning: {files / 'img.tif'}: magnification {shown} is outside the "
            f"range the model encodes (100-1e+06x); it is scored as {clipped}x.") in err


@pytest.mark.parametrize("shape", [(16, 16), (180, 240)])
def test_a_frame_smaller_than_a_tile_is_mapped_as_it_is_scored(files, capsys, shape):
    """16 x 16 used to be refused ("the data bar covers the whole frame"); 180 x 240 gave an
    all-NaN map and a traceback, later a 2 x 2 grid of parts of the frame: now one tile, the
    score ``score`` gives, and the overlay picture."""
    small = files / "small.tif"
    tifffile.imwrite(small, np.random.default_rng(2).integers(0, 255, shape, dtype=np.uint8))
    ckpt = files / "m.safetensors"
    code, out, err = run_cli(["score", small, "--magnification", "5000", "--checkpoint", ckpt,
                              "--device", "cpu"], capsys)
    assert code == 0, err
    score = float(out.strip().splitlines()[1].split(",")[3])
    code, _, err = run_cli(["map", small, "--magnification", "5000", "--checkpoint", ckpt,
                            "--device", "cpu", "--csv", files / "small.csv",
                            "--png", files / "small.png"], capsys)
    assert code == 0, err
    rows = (files / "small.csv").read_text().strip().splitlines()
    assert len(rows) == 2 and float(rows[1].split(",")[4]) == pytest.approx(score, abs=1e-3)
    assert (files / "small.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_float64_beyond_float32_is_one_sentence_in_score_and_map(files, capsys):
    huge = files / "huge.tif"
    tifffile.imwrite(huge, np.random.default_rng(3).random((256, 320)) * 1e300)
    hashes = {p: sha(p) for p in files.iterdir()}
    for command in ("score", "map"):
        code, out, err = run_cli([command, huge, "--magnification", "5000", "--device", "cpu",
                                  "--checkpoint", files / "m.safetensors", "-o",
                                  files / "out.csv"], capsys)
        assert code == 2 and out == ""
        assert err.strip().splitlines() == [
            f"semfocus {command}: error: {huge} holds values beyond +-3.4e+38, the float32 range "
            f"scoring works in; scale the data down."]
    assert {p: sha(p) for p in files.iterdir()} == hashes  # nothing written, nothing changed


def test_a_tiff_with_pages_of_different_sizes_warns_and_scores_page_1(files, capsys):
    pages = files / "pages.tif"
    rng = np.random.default_rng(4)
    tifffile.imwrite(pages, rng.integers(0, 255, (256, 320), dtype=np.uint8), metadata=None)
    for shape in [(128, 160), (256, 320), (64, 80)]:
        tifffile.imwrite(pages, rng.integers(0, 255, shape, dtype=np.uint8), append=True,
                         metadata=None)
    code, out, err = run_cli(["score", pages, "--magnification", "5000", "--device", "cpu",
                              "--checkpoint", files / "m.safetensors"], capsys)
    assert code == 0, err
    assert [line for line in err.splitlines() if "warning" in line] == [
        f"semfocus score: warning: {pages} holds pages of different sizes: only those of page "
        f"1's size (256 x 320) are read, 2 other pages are not (128 x 160, 64 x 80); save them "
        f"as separate files to score them."]
    assert [r.split(",")[1] for r in out.strip().splitlines()[1:]] == ["0", "1"]  # pages 1, 3
