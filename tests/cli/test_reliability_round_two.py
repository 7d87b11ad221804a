"""Reliability, round two (issue 28): the cases a bad-input sweep still broke, each refused
before any work in one sentence naming the input, with every input file unchanged; and one
case of each kind through the installed ``semfocus`` in a subprocess
(benchmarks/sweep_reliability.py runs them all, docs/reliability.md lists them)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile

from napari_semfocus.cli.common import eprint, progress_bar
from napari_semfocus.errors import BrokenModelError, SemFocusError

from ..helpers import run_cli

SEMFOCUS = Path(sys.executable).with_name("semfocus")
BIG = (512, 534)  # a frame whose 32 x 32 map at stride 1 has 273,408 tiles


def sha(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def hashes(folder: Path) -> dict:
    return {p: sha(p) for p in sorted(folder.rglob("*")) if p.is_file()}


def _copy_checkpoint(src, dst, header=None, tensors=None):
    """``src`` to ``dst`` with its JSON header changed by ``header(meta)`` and its tensors by
    ``tensors(state)``."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    with safe_open(str(src), framework="pt") as f:
        meta = json.loads(f.metadata()["semfocus"])
    state = load_file(str(src))
    if header:
        header(meta)
    if tensors:
        tensors(state)
    save_file(state, str(dst), metadata={"semfocus": json.dumps(meta)})


def _overflow(state):
    """Finite weights whose output is NaN (inf * 0 in the head): only the scores show it."""
    state["head.0.bias"].fill_(3e38)
    state["head.2.weight"].fill_(3e38)
    state["head.4.weight"].fill_(0.0)


@pytest.fixture
def d(tmp_path, untrained_checkpoint):
    """Images (96 x 128, 12 of them in many/), annotations, a checkpoint and broken copies."""
    rng = np.random.default_rng(0)
    tifffile.imwrite(tmp_path / "img.tif", rng.integers(0, 255, (96, 128), dtype=np.uint8))
    tifffile.imwrite(tmp_path / "big.tif", rng.integers(0, 255, BIG, dtype=np.uint8))
    (tmp_path / "many").mkdir()
    (tmp_path / "folder").mkdir()
    for i in range(12):
        tifffile.imwrite(tmp_path / "many" / f"f{i:02d}.tif",
                         rng.integers(0, 255, (96, 128), dtype=np.uint8))
    rows = "".join(f"many/f{i:02d}.tif,5000,{i % 10}\n" for i in range(12))
    (tmp_path / "ann.csv").write_text("path,magnification,score\n" + rows)
    (tmp_path / "neg.csv").write_text("path,magnification,label\n" + "".join(
        f"many/f{i:02d}.tif,5000,{i % 5}\n" for i in range(12)))
    ckpt = tmp_path / "m.safetensors"
    shutil.copy(untrained_checkpoint, ckpt)
    _copy_checkpoint(ckpt, tmp_path / "margin.safetensors",
                     header=lambda m: m["architecture"].update(output_margin=1e308))
    _copy_checkpoint(ckpt, tmp_path / "overflow.safetensors", tensors=_overflow)
    return tmp_path


def refused(argv, d, capsys, sentence, after_model_load=False):
    """``semfocus ARGV`` exits 2 with exactly ``sentence`` on stderr (nothing before it: no
    work was started; ``after_model_load``: the line naming the model may come first) and
    leaves every file of ``d`` as it was."""
    before = hashes(d)
    code, out, err = run_cli([str(a).format(d=d) for a in argv], capsys)
    assert (code, out) == (2, ""), err
    lines = err.splitlines()
    if after_model_load:
        assert len(lines) == 2 and lines[0].startswith("semfocus: model m.safetensors on cpu")
    assert lines[-1:] == [sentence.format(d=d)] and len(lines) == 1 + after_model_load
    assert hashes(d) == before


CK = ["--checkpoint", "{d}/m.safetensors", "--device", "cpu"]
MAG = ["--magnification", "5000"]


# ---- 1. outputs that cannot be written: refused before any scoring --------------------------
@pytest.mark.parametrize("argv, sentence", [
    (["score", "{d}/img.tif", *MAG, *CK, "-o", "{d}/folder"],
     "semfocus score: error: --output {d}/folder is a folder; name a file to write."),
    (["score", "{d}/img.tif", *MAG, *CK, "--resume", "-o", "{d}/folder"],
     "semfocus score: error: --output {d}/folder is a folder; name a file to write."),
    (["score", "{d}/img.tif", *MAG, *CK, "-o", "{d}/img.tif/x.csv"],
     "semfocus score: error: --output {d}/img.tif/x.csv cannot be written: {d}/img.tif is a "
     "file, not a folder."),
    (["map", "{d}/img.tif", *MAG, *CK, "--csv", "{d}/folder"],
     "semfocus map: error: --csv {d}/folder is a folder; name a file to write."),
    (["map", "{d}/img.tif", *MAG, *CK, "--png", "{d}/ann.csv/m.png"],
     "semfocus map: error: --png {d}/ann.csv/m.png cannot be written: {d}/ann.csv is a file, "
     "not a folder."),
    (["map", "{d}/img.tif", *MAG, *CK, "--png", "{d}/m.png", "--colormap", "nosuchmap"],
     "semfocus map: error: --colormap 'nosuchmap' is not one of matplotlib's colormaps (for "
     "example magma, viridis, gray)."),
    (["gate", "calibrate", "--manifest", "{d}/neg.csv", *CK, "-o", "{d}/folder"],
     "semfocus gate: error: --output {d}/folder is a folder; name a file to write."),
    (["make-dataset", "--pool", "{d}/many", "--out", "{d}/img.tif"],
     "semfocus make-dataset: error: --out {d}/img.tif is a file, not a folder."),
    (["make-dataset", "--pool", "{d}/many", "--out", "{d}/img.tif/ds"],
     "semfocus make-dataset: error: --out {d}/img.tif/ds cannot be made: {d}/img.tif is a file, "
     "not a folder."),
    (["compare", "--dataset", "{d}/many", "--out", "{d}/img.tif"],
     "semfocus compare: error: --out {d}/img.tif is a file, not a folder."),
], ids=["score folder", "score --resume folder", "score under a file", "map --csv folder",
        "map --png under a file", "map --colormap", "calibrate folder", "make-dataset file",
        "make-dataset under a file", "compare file"])
def test_an_output_that_cannot_be_written_is_refused_before_any_work(d, capsys, argv, sentence):
    refused(argv, d, capsys, sentence)


def test_an_output_in_a_folder_without_write_permission_is_refused(d, capsys, monkeypatch):
    locked = d / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    if os.geteuid() == 0:  # root may write anywhere: the permission as a user would have it
        real_access = os.access
        monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if Path(p) == locked
                            else real_access(p, mode, **kw))
    try:
        refused(["score", "{d}/img.tif", *MAG, *CK, "-o", "{d}/locked/s.csv"], d, capsys,
                "semfocus score: error: --output {d}/locked/s.csv cannot be written: no "
                "permission to write in {d}/locked.")
    finally:
        locked.chmod(0o755)


def test_gate_apply_onto_a_folder_is_refused_before_any_work(d, capsys):
    from napari_semfocus.gate.calibrate import calibrate
    from napari_semfocus.gate.file import Gate
    from napari_semfocus.scoring.checkpoint import checkpoint_fingerprint

    rng = np.random.default_rng(1)
    expert = rng.uniform(0, 10, 200)
    Gate.from_calibration(calibrate(expert + rng.normal(0, 1, 200), expert_scores=expert),
                          model=checkpoint_fingerprint(d / "m.safetensors")).save(d / "g.json")
    refused(["gate", "apply", "{d}/img.tif", *MAG, "--gate", "{d}/g.json", *CK, "-o",
             "{d}/folder"], d, capsys,
            "semfocus gate: error: --output {d}/folder is a folder; name a file to write.")


# ---- 2. a model whose scores are not finite: refused, named by its file ---------------------
BROKEN = ("semfocus {cmd}: error: the model {d}/overflow.safetensors gives nan scores, so it is "
          "broken (a damaged or edited checkpoint); use another model.")


@pytest.mark.parametrize("argv", [
    ["score", "{d}/img.tif", *MAG, "-o", "{d}/s.csv"],
    ["map", "{d}/img.tif", *MAG, "--csv", "{d}/s.csv"],
    ["train", "--annotations", "{d}/ann.csv", "--out", "{d}/run", "--epochs", "1", "--init"],
], ids=["score", "map", "train --init"])
def test_a_model_that_gives_nan_scores_is_refused_in_one_sentence(d, capsys, argv):
    """Finite weights, NaN scores: exit 0 with a table of nan before; fine-tuning from it said
    "loss became nan ... (learning rate too high?)"."""
    argv = [*argv, "{d}/overflow.safetensors"] if argv[-1] == "--init" else \
        [*argv, "--checkpoint", "{d}/overflow.safetensors"]
    before = hashes(d)
    code, out, err = run_cli([a.format(d=d) for a in [*argv, "--device", "cpu"]], capsys)
    assert (code, out) == (2, "")
    assert err.splitlines()[-1] == BROKEN.format(cmd=argv[0], d=d)
    assert "learning rate" not in err
    assert hashes(d) == before  # no table of NaN, no fine-tuned model
    assert not (d / "s.csv").exists() and not (d / "run" / "best.safetensors").exists()


def test_the_api_raises_broken_model_error_naming_the_file(d):
    from napari_semfocus import FocusScorer

    scorer = FocusScorer.load(d / "overflow.safetensors", device="cpu")
    frame = tifffile.imread(d / "img.tif")
    for call in (lambda: scorer.score(frame, 5000), lambda: scorer.focus_map(frame, 5000)):
        with pytest.raises(BrokenModelError) as err:
            call()
        assert str(err.value) == (f"the model {d / 'overflow.safetensors'} gives nan scores, so "
                                  "it is broken (a damaged or edited checkpoint); use another "
                                  "model.")


def test_fine_tuning_from_a_model_with_output_margin_1e308_blames_the_model(d, capsys):
    refused(["train", "--annotations", "{d}/ann.csv", "--out", "{d}/run", "--device", "cpu",
             "--init", "{d}/margin.safetensors"], d, capsys,
            "semfocus train: error: checkpoint {d}/margin.safetensors has an invalid "
            "architecture.output_margin 1e+308 in its metadata (expected a number from 0 to "
            "10).")


# ---- 4. repeated images: one rule for manifests and annotations CSVs -----------------------
def test_an_annotations_csv_that_scores_an_image_twice_is_refused_naming_both_lines(d, capsys):
    """9 and 3 for the same image: the later row was trained on without a word."""
    (d / "dup.csv").write_text("path,magnification,score\nmany/f00.tif,5000,9\n"
                               "many/f01.tif,5000,5\n./many/f00.tif,5000,3\n")
    refused(["train", "--annotations", "{d}/dup.csv", "--out", "{d}/run", "--device", "cpu"], d,
            capsys, "semfocus train: error: annotations file {d}/dup.csv line 4 repeats the "
                    "image of line 2 ({d}/many/f00.tif); list each image once.")


def test_annotations_of_two_slices_of_one_stack_are_two_images(d):
    from napari_semfocus.training.data.annotations import AnnotationTable

    tifffile.imwrite(d / "stack.tif", np.zeros((2, 96, 128), np.uint8))
    (d / "slices.csv").write_text("path,slice,magnification,score\nstack.tif,0,5000,9\n"
                                  "stack.tif,1,5000,3\n")
    assert [r.score for r in AnnotationTable.load_csv(d / "slices.csv").rows] == [9, 3]
    (d / "slices.csv").write_text("path,slice,magnification,score\nstack.tif,1,5000,9\n"
                                  "stack.tif,1,5000,3\n")
    with pytest.raises(SemFocusError, match=r"line 3 repeats the image of line 2 \(.*stack.tif, "
                                        r"slice 1\); list each image once\.$"):
        AnnotationTable.load_csv(d / "slices.csv")


# ---- 5. unbounded maps: refused beyond the bound, progress and an estimate below it ----------
def test_a_map_beyond_the_tile_bound_is_refused_before_any_tile_is_scored(d, capsys):
    """It ran for minutes without a word. The bound is checked where the grid is made
    (scoring.focus_map), once the model is loaded."""
    refused(["map", "{d}/big.tif", *MAG, *CK, "--csv", "{d}/m.csv", "--tile", "32", "32",
             "--stride", "1", "1", "--mode", "crop"], d, capsys,
            "semfocus map: error: {d}/big.tif: a map of 512 x 534 tiles (273,408, stride 1 x 1) "
            "is more than a focus map takes (100,000 tiles); use a larger stride or tile.",
            after_model_load=True)


def test_a_long_map_shows_progress_with_an_estimate(d, capsys):
    code, _, err = run_cli(["map", d / "big.tif", *MAG, "--measure", "tenengrad", "--csv",
                            d / "m.csv", "--tile", "32", "32", "--stride", "8", "8"], capsys)
    assert code == 0, err
    progress = [ln for ln in err.splitlines() if " tiles (" in ln]
    assert progress, err
    pattern = re.compile(r"semfocus map: [\d,]+ of 4,288 tiles \((\d+)%\), about \d+ s left")
    percents = [int(pattern.fullmatch(ln).group(1)) for ln in progress]
    assert percents == sorted(percents) and len(set(percents)) == len(percents)
    assert len((d / "m.csv").read_text().splitlines()) == 4288 + 1


@pytest.mark.parametrize("argv, sentence", [
    (["--tile", "8", "8"], "semfocus map: error: --tile 8 8 is too small; use at least 32 32 "
                           "(pixels, height and width)."),
    (["--stride", "0", "4"], "semfocus map: error: --stride 0 4 is not two whole numbers of at "
                             "least 1 (pixels, height and width)."),
])
def test_map_tile_and_stride_below_their_least_are_one_sentence(d, capsys, argv, sentence):
    refused(["map", "{d}/img.tif", *MAG, *CK, "--csv", "{d}/m.csv", *argv], d, capsys, sentence)


# ---- 6. sentences that said something false, and numbers taken silently ---------------------
@pytest.mark.parametrize("argv, sentence", [
    (["score", "{d}/folder", *MAG, *CK],
     "semfocus score: error: {d}/folder is a folder, not a file."),
    (["score", "--manifest", "{d}/folder", *CK],
     "semfocus score: error: manifest {d}/folder is a folder, not a file."),
    (["score", "{d}/img.tif", *MAG, "--checkpoint", "{d}/folder", "--device", "cpu"],
     "semfocus score: error: checkpoint {d}/folder is a folder, not a file."),
    (["gate", "apply", "{d}/img.tif", *MAG, "--gate", "{d}/folder", *CK],
     "semfocus gate: error: gate file {d}/folder is a folder, not a file."),
    (["train", "--annotations", "{d}/folder", "--out", "{d}/run"],
     "semfocus train: error: annotations file {d}/folder is a folder, not a file."),
    (["train", "--annotations", "{d}/ann.csv", "--out", "{d}/run", "--init", "{d}/folder"],
     "semfocus train: error: checkpoint {d}/folder is a folder, not a file."),
    (["evaluate", "--manifest", "{d}/folder", *CK],
     "semfocus evaluate: error: manifest {d}/folder is a folder, not a file."),
    (["make-dataset", "--pool", "{d}/img.tif", "--out", "{d}/run"],
     "semfocus make-dataset: error: {d}/img.tif is a file, not a folder; give the pool's "
     "folder."),
], ids=["score path", "--manifest", "--checkpoint", "--gate", "--annotations", "--init",
        "evaluate --manifest", "--pool a file"])
def test_a_folder_given_for_a_file_is_not_called_missing(d, capsys, argv, sentence):
    refused(argv, d, capsys, sentence)


def test_calibration_with_only_rejected_images_says_below_the_accept_score(d, capsys):
    """It said "all 12 are to be rejected (expert score >= 7)", after scoring every image;
    now before the model is loaded, naming the manifest."""
    refused(["gate", "calibrate", "--manifest", "{d}/neg.csv", *CK, "-o", "{d}/g.json"], d,
            capsys, "semfocus gate: error: manifest {d}/neg.csv: calibration needs images of "
                    "both classes, but all 12 are to be rejected (expert score < 7).")


@pytest.mark.parametrize("argv, sentence", [
    (["score", "{d}/img.tif", *MAG, *CK, "--batch-size", "0"],
     "semfocus score: error: --batch-size 0 is not a whole number of at least 1."),
    (["score", "{d}/img.tif", *MAG, *CK, "--batch-size", "-4"],
     "semfocus score: error: --batch-size -4 is not a whole number of at least 1."),
    (["map", "{d}/img.tif", *MAG, *CK, "--csv", "{d}/m.csv", "--slice", "-1"],
     "semfocus map: error: --slice -1 is not a whole number of at least 0."),
    (["score", "{d}/img.tif", *MAG, *CK, "--files-per-task", "0", "-o", "{d}/s.csv"],
     "semfocus score: error: --files-per-task 0 is not a whole number of at least 1."),
    (["train", "--annotations", "{d}/ann.csv", "--out", "{d}/run", "--epochs", "0"],
     "semfocus train: error: --epochs 0 is not a whole number of at least 1."),
    (["train", "--annotations", "{d}/ann.csv", "--out", "{d}/run", "--seed", "-1"],
     "semfocus train: error: --seed -1 is not a whole number of at least 0."),
    (["make-dataset", "--pool", "{d}/many", "--out", "{d}/run", "--n-train", "0"],
     "semfocus make-dataset: error: --n-train 0 is not a whole number of at least 1."),
    (["train", "--annotations", "{d}/ann.csv", "--out", "{d}/run", "--output-margin", "1e308"],
     "semfocus train: error: --output-margin 1e+308 is not a number from 0 to 10."),
    (["train", "--annotations", "{d}/ann.csv", "--out", "{d}/run", "--lr", "inf"],
     "semfocus train: error: learning rate inf is not a finite number above 0."),
    (["train", "--annotations", "{d}/ann.csv", "--out", "{d}/run", "--lr", "nan"],
     "semfocus train: error: learning rate nan is not a finite number above 0."),
    (["train", "--annotations", "{d}/ann.csv", "--out", "{d}/run", "--trunk-lr-factor", "nan"],
     "semfocus train: error: trunk learning-rate factor nan is not a finite number above 0."),
], ids=["score --batch-size 0", "score --batch-size -4", "map --slice -1",
        "--files-per-task 0", "--epochs 0", "--seed -1", "--n-train 0", "--output-margin",
        "--lr inf", "--lr nan", "--trunk-lr-factor nan"])
def test_numbers_that_were_taken_silently_are_one_sentence(d, capsys, argv, sentence):
    refused(argv, d, capsys, sentence)


def test_an_error_after_a_progress_bar_starts_a_line_of_its_own(capsys):
    """``train --lr inf`` printed its error at the end of the progress bar's line."""
    progress_bar("epoch 1 [#    ] 1/20 loss 11.077")
    eprint("semfocus train: error: x.")
    eprint("next")
    assert capsys.readouterr().err == ("\repoch 1 [#    ] 1/20 loss 11.077\n"
                                       "semfocus train: error: x.\nnext\n")


# ---- one case of each kind through the installed program --------------------------------------
def _tampered_gate(d: Path) -> Path:
    from napari_semfocus.gate.calibrate import calibrate
    from napari_semfocus.gate.file import Gate
    from napari_semfocus.scoring.checkpoint import checkpoint_fingerprint

    rng = np.random.default_rng(1)
    expert = rng.uniform(0, 10, 200)
    Gate.from_calibration(calibrate(expert + rng.normal(0, 1, 200), expert_scores=expert),
                          model=checkpoint_fingerprint(d / "m.safetensors")).save(d / "g.json")
    data = json.loads((d / "g.json").read_text())
    data["region"] = "centre"  # was applied: centre scores against a whole-frame threshold
    (d / "g.json").write_text(json.dumps(data, indent=2))
    return d / "g.json"


SUBPROCESS = [
    (["score", "{d}/img.tif", *MAG, *CK, "-o", "{d}/folder"],
     "semfocus score: error: --output {d}/folder is a folder; name a file to write."),
    (["score", "{d}/img.tif", *MAG, "--checkpoint", "{d}/margin.safetensors", "--device", "cpu"],
     "semfocus score: error: checkpoint {d}/margin.safetensors has an invalid "
     "architecture.output_margin 1e+308 in its metadata (expected a number from 0 to 10)."),
    (["score", "{d}/img.tif", *MAG, "--checkpoint", "{d}/overflow.safetensors", "--device",
      "cpu"], BROKEN.format(cmd="score", d="{d}")),
    (["gate", "apply", "{d}/img.tif", *MAG, "--gate", "{d}/g.json", *CK],
     "semfocus gate: error: gate file {d}/g.json does not match its signature, so it was edited "
     "after calibration (threshold, rule, region, model, accept rule, figures or curve); "
     "calibrate the gate again."),
    (["train", "--annotations", "{d}/dup.csv", "--out", "{d}/run"],
     "semfocus train: error: annotations file {d}/dup.csv line 3 repeats the image of line 2 "
     "({d}/img.tif); list each image once."),
    (["map", "{d}/big.tif", *MAG, *CK, "--csv", "{d}/m.csv", "--tile", "32", "32", "--stride",
      "1", "1", "--mode", "crop"],
     "semfocus map: error: {d}/big.tif: a map of 512 x 534 tiles (273,408, stride 1 x 1) is more "
     "than a focus map takes (100,000 tiles); use a larger stride or tile."),
    (["gate", "apply", "{d}/img.tif", *MAG, "--gate", "{d}/folder", *CK],
     "semfocus gate: error: gate file {d}/folder is a folder, not a file."),
    (["score", "{d}/img.tif", *MAG, *CK, "--batch-size", "0"],
     "semfocus score: error: --batch-size 0 is not a whole number of at least 1."),
]


@pytest.mark.slow
def test_the_installed_program_refuses_one_case_of_each_kind(d):
    """Issue 28's kinds, each through ``semfocus`` in a child process: an output folder, a
    tampered checkpoint header, a model of NaN scores, a tampered gate file, a repeated
    annotation, an unbounded map, a folder for a file, a batch size of 0."""
    _tampered_gate(d)
    (d / "dup.csv").write_text("path,magnification,score\nimg.tif,5000,9\nimg.tif,5000,3\n")
    before = hashes(d)
    for argv, sentence in SUBPROCESS:
        proc = subprocess.run([str(SEMFOCUS), *[a.format(d=d) for a in argv]],
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 2 and proc.stdout == "", proc.stderr
        assert "Traceback" not in proc.stderr
        assert proc.stderr.splitlines()[-1] == sentence.format(d=d)
    assert hashes(d) == before
