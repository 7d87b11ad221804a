"""Fixtures and cases of the bad-input sweep (benchmarks/sweep_reliability.py, issue 28): the
files every case reads (images, tables, a checkpoint, a gate file and broken copies of each),
the command-line cases (``semfocus ARGV`` and what it must do), the interrupted runs and the
Python API cases."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import tifffile

from napari_semfocus.io.tables import SCORE_COLUMNS


# ---- fixtures ---------------------------------------------------------------------------------
def _header(src: Path, dst: Path, edit) -> None:
    """Copy checkpoint ``src`` to ``dst`` with its JSON header changed by ``edit(meta)``."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    with safe_open(str(src), framework="pt") as f:
        meta = json.loads(f.metadata()["semfocus"])
    edit(meta)
    save_file(load_file(str(src)), str(dst), metadata={"semfocus": json.dumps(meta)})


def _tensors(src: Path, dst: Path, edit) -> None:
    """Copy checkpoint ``src`` to ``dst`` with its tensors changed by ``edit(state)``."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    with safe_open(str(src), framework="pt") as f:
        header = f.metadata()
    state = load_file(str(src))
    edit(state)
    save_file(state, str(dst), metadata=header)


def _gate(d: Path, name: str, edit=None) -> Path:
    data = json.loads((d / "gate.json").read_text())
    if edit is not None:
        edit(data)
    (d / name).write_text(json.dumps(data, indent=2))
    return d / name


def make_fixtures(d: Path) -> None:
    """Images, tables, a checkpoint and a gate file (and broken copies of each) in ``d``."""
    import torch

    from napari_semfocus.gate.calibrate import calibrate
    from napari_semfocus.gate.file import Gate
    from napari_semfocus.scoring.checkpoint import checkpoint_fingerprint, save_checkpoint
    from napari_semfocus.scoring.model import FocusNet

    rng = np.random.default_rng(0)
    img = lambda shape, dt=np.uint8: rng.integers(0, 255, shape).astype(dt)  # noqa: E731
    tifffile.imwrite(d / "img.tif", img((96, 128)), metadata={"magnification": 5000})
    tifffile.imwrite(d / "img2.tif", img((96, 128)), metadata={"magnification": 5000})
    tifffile.imwrite(d / "stack.tif", img((3, 96, 128)))
    tifffile.imwrite(d / "tiny.tif", img((8, 8)))
    tifffile.imwrite(d / "line.tif", img((1, 4000)))
    tifffile.imwrite(d / "two.tif", img((96, 128, 2)))
    tifffile.imwrite(d / "nan.tif", np.full((96, 128), np.nan, np.float32))
    tifffile.imwrite(d / "huge.tif", rng.random((96, 128)) * 1e300)
    tifffile.imwrite(d / "flat.tif", np.full((96, 128), 7, np.uint8))
    tifffile.imwrite(d / "strmag.tif", img((96, 128)), metadata={"magnification": "abc"})
    tifffile.imwrite(d / "bool.tif", img((96, 128)) > 128)
    tifffile.imwrite(d / "big.tif", img((512, 534)))
    (d / "empty.tif").write_bytes(b"")
    (d / "text.tif").write_text("not an image\n")
    (d / "cut.tif").write_bytes((d / "img.tif").read_bytes()[:300])
    (d / "folder").mkdir()
    shutil.copy(d / "img.tif", d / "folder" / "a.tif")
    (d / "nofile").mkdir()  # a folder given where a file is expected
    (d / "many").mkdir()
    for i in range(12):
        tifffile.imwrite(d / "many" / f"f{i:02d}.tif", img((96, 128)))
    (d / "list.csv").write_text("path,magnification,label\nimg.tif,5000,8\nimg2.tif,5k,3\n")
    (d / "dup.csv").write_text("path,magnification,label\nimg.tif,5000,8\n./img.tif,5000,3\n")
    (d / "latin.csv").write_bytes("path,magnification\nök.tif,5000\n".encode("latin-1"))
    (d / "neg.csv").write_text("path,magnification,label\n" + "".join(
        f"many/f{i:02d}.tif,5000,{i % 5}\n" for i in range(12)))
    (d / "ann.csv").write_text("path,magnification,score\n" + "".join(
        f"many/f{i:02d}.tif,5000,{i % 10}\n" for i in range(12)))
    (d / "ann_dup.csv").write_text("path,magnification,score\n" + "".join(
        f"many/f{i:02d}.tif,5000,{i % 10}\n" for i in range(12)) + "many/f00.tif,5000,3\n")
    (d / "ann_score.csv").write_text("path,magnification,score\nimg.tif,5000,11\n")
    (d / "ann_nan.csv").write_text("path,magnification,score\nimg.tif,5000,nan\n")
    (d / "ann_cols.csv").write_text("file,mag\nimg.tif,5000\n")
    (d / "foreign.csv").write_text("a,b,c\n1,2,3\n")
    (d / "cut.csv").write_text(",".join(SCORE_COLUMNS) + "\n"
                               f"{d / 'many' / 'f00.tif'},0,5000,5.1,4.6,5.9,4.9\n{d / 'many'}/f0")
    torch.manual_seed(0)
    ckpt = d / "m.safetensors"
    save_checkpoint(FocusNet("mobilenet_v3_small"), ckpt)
    _header(ckpt, d / "margin.safetensors",
            lambda m: m["architecture"].update(output_margin=1e308))
    _header(ckpt, d / "tile1.safetensors", lambda m: m["input"].update(tile_hw=[1, 1]))
    _header(ckpt, d / "tilebig.safetensors", lambda m: m["input"].update(tile_hw=[240, 99999]))
    _tensors(ckpt, d / "nanw.safetensors",
             lambda s: s["head.0.weight"].fill_(float("nan")))

    def overflow(s):  # finite weights whose output is NaN: inf * 0 in the head
        s["head.0.bias"].fill_(3e38)
        s["head.2.weight"].fill_(3e38)
        s["head.4.weight"].fill_(0.0)
    _tensors(ckpt, d / "overflow.safetensors", overflow)
    (d / "cut.safetensors").write_bytes(ckpt.read_bytes()[:5000])
    (d / "text.safetensors").write_text("{}")
    rng2 = np.random.default_rng(1)
    expert = rng2.uniform(0, 10, 200)
    gate = Gate.from_calibration(calibrate(expert + rng2.normal(0, 1, 200),
                                           expert_scores=expert),
                                 model=checkpoint_fingerprint(ckpt))
    gate.save(d / "gate.json")
    _gate(d, "g_region.json", lambda g: g.update(region="centre"))
    _gate(d, "g_threshold.json", lambda g: g.update(threshold=-5))
    _gate(d, "g_rule.json", lambda g: g.update(rule="accepted when worst_region >= threshold"))
    _gate(d, "g_accept.json", lambda g: g["accept_rule"].update(accept_score=2.0))
    _gate(d, "g_target.json", lambda g: g.update(target_precision=0.5))
    _gate(d, "g_model.json", lambda g: g["model"].update(sha256="cd" * 32))
    _gate(d, "g_nosig.json", lambda g: g.pop("signature", None))  # (none before version 2)
    _gate(d, "g_version.json", lambda g: g.update(format_version=9))
    (d / "g_text.json").write_text("{not json")
    (d / "g_cut.json").write_bytes((d / "gate.json").read_bytes()[:200])
    (d / "g_list.json").write_text("[1, 2]")
    _header(ckpt, d / "foreign.safetensors", lambda m: m.update(format="other-tool"))
    _header(ckpt, d / "headhidden.safetensors",
            lambda m: m["architecture"].update(head_hidden=[512, 64]))
    (d / "nolabel.csv").write_text("path,magnification\nimg.tif,5000\nimg2.tif,5000\n")
    (d / "ann_empty.csv").write_text("path,magnification,score\n")


# ---- cases ------------------------------------------------------------------------------------
OK, REFUSE = "ok", "refuse"
CK = ["--checkpoint", "{d}/m.safetensors", "--device", "cpu"]
MAG = ["--magnification", "5000"]
MANY = [f"{{d}}/many/f{i:02d}.tif" for i in range(12)]


def case(name, argv, expect, forbid=(), outputs=(), setup=()):
    """``semfocus ARGV`` ({d}: the fixture folder) must end as ``expect`` (OK: exit 0, REFUSE:
    exit 2 and one sentence), its stderr without any text of ``forbid`` (false sentences),
    the score columns of ``outputs`` finite; ``setup``: (fixture, path) copies made first (the
    folders ``out`` and ``run`` are emptied before each case)."""
    return {"name": name, "argv": argv, "expect": expect, "forbid": tuple(forbid),
            "outputs": tuple(outputs), "setup": tuple(setup)}


def cases() -> list[dict]:
    out = "{d}/out/o.csv"
    c = [
        # images
        case("score good", ["score", "{d}/img.tif", *MAG, *CK, "-o", out], OK, outputs=[out]),
        case("score stack", ["score", "{d}/stack.tif", *MAG, *CK, "-o", out], OK, outputs=[out]),
        case("score 8x8", ["score", "{d}/tiny.tif", *MAG, *CK], REFUSE),
        case("score 1x4000", ["score", "{d}/line.tif", *MAG, *CK], REFUSE),
        case("score (H,W,2)", ["score", "{d}/two.tif", *MAG, *CK], REFUSE),
        case("score all-NaN float", ["score", "{d}/nan.tif", *MAG, *CK], REFUSE),
        case("score float64 1e300", ["score", "{d}/huge.tif", *MAG, *CK], REFUSE),
        case("score constant", ["score", "{d}/flat.tif", *MAG, *CK, "-o", out], OK,
             outputs=[out]),
        case("score bool", ["score", "{d}/bool.tif", *MAG, *CK, "-o", out], REFUSE),
        case("score empty file", ["score", "{d}/empty.tif", *MAG, *CK], REFUSE),
        case("score text as tif", ["score", "{d}/text.tif", *MAG, *CK], REFUSE),
        case("score cut tif", ["score", "{d}/cut.tif", *MAG, *CK], REFUSE),
        case("score missing", ["score", "{d}/none.tif", *MAG, *CK], REFUSE),
        case("score folder as file", ["score", "{d}/nofile", *MAG, *CK], REFUSE,
             forbid=["no such file", "does not exist"]),
        case("score text magnification in file", ["score", "{d}/strmag.tif", *CK], REFUSE),
        case("measure cut tif", ["measure", "{d}/cut.tif", *MAG, "--measure", "tenengrad"],
             REFUSE),
        case("measure constant", ["measure", "{d}/flat.tif", *MAG, "--measure", "tenengrad",
                                  "-o", out], OK),
    ]
    for mag, expect in (("5k", OK), ("5,000x", OK), ("12.5 kX", OK), ("abc", REFUSE),
                        ("-5", REFUSE), ("0", REFUSE), ("nan", REFUSE), ("inf", REFUSE),
                        ("1e12", OK), ("", OK)):  # "": the file's own, 5000
        c.append(case(f"score --magnification {mag!r}", ["score", "{d}/img.tif",
                 "--magnification", mag, *CK, "-o", out], expect,
                 outputs=[out] if expect == OK else []))
    c += [
        # outputs onto inputs, folders, paths under a file
        case("score -o the image", ["score", "{d}/img.tif", *MAG, *CK, "-o", "{d}/img.tif"],
             REFUSE),
        case("score -o a folder", ["score", "{d}/img.tif", *MAG, *CK, "-o", "{d}/folder"],
             REFUSE),
        case("score -o under a file", ["score", "{d}/img.tif", *MAG, *CK, "-o",
                                       "{d}/img.tif/x.csv"], REFUSE),
        case("score --resume -o a folder", ["score", "{d}/img.tif", *MAG, *CK, "--resume",
                                            "-o", "{d}/folder"], REFUSE),
        case("score -o the manifest", ["score", "--manifest", "{d}/list.csv", *CK, "-o",
                                       "{d}/list.csv"], REFUSE),
        case("map --png the image", ["map", "{d}/img.tif", *MAG, *CK, "--png", "{d}/img.tif"],
             REFUSE),
        case("map --csv a folder", ["map", "{d}/img.tif", *MAG, *CK, "--csv", "{d}/folder"],
             REFUSE),
        case("gate apply -o a folder", ["gate", "apply", "{d}/img.tif", *MAG, "--gate",
                                        "{d}/gate.json", *CK, "-o", "{d}/folder"], REFUSE),
        case("gate apply -o under a file", ["gate", "apply", "{d}/img.tif", *MAG, "--gate",
                                            "{d}/gate.json", *CK, "-o", "{d}/gate.json/x"],
             REFUSE),
        case("evaluate good", ["evaluate", "--manifest", "{d}/list.csv", *CK, "--no-classical",
                               "--output", "{d}/out/report"], OK),
        # --resume
        case("score --resume a cut table", ["score", *MANY[:3], *MAG, *CK, "--resume", "-o",
                                            "{d}/out/resume.csv"], OK,
             outputs=["{d}/out/resume.csv"]),
        case("score --resume a foreign table", ["score", "{d}/img.tif", *MAG, *CK, "--resume",
                                                "-o", "{d}/out/foreign_copy.csv"], REFUSE),
        # manifests and annotations
        case("score duplicate manifest", ["score", "--manifest", "{d}/dup.csv", *CK], REFUSE),
        case("score latin-1 manifest", ["score", "--manifest", "{d}/latin.csv", *CK], REFUSE),
        case("score manifest folder", ["score", "--manifest", "{d}/nofile", *CK], REFUSE,
             forbid=["does not exist"]),
        case("train duplicate annotations", ["train", "--annotations", "{d}/ann_dup.csv",
                                             "--out", "{d}/run", "--init", "{d}/m.safetensors",
                                             "--epochs", "1"], REFUSE),
        case("train annotation score 11", ["train", "--annotations", "{d}/ann_score.csv",
                                           "--out", "{d}/run"], REFUSE),
        case("train annotation score nan", ["train", "--annotations", "{d}/ann_nan.csv",
                                            "--out", "{d}/run"], REFUSE),
        case("train annotations without columns", ["train", "--annotations",
                                                   "{d}/ann_cols.csv", "--out", "{d}/run"],
             REFUSE),
        case("train annotations folder", ["train", "--annotations", "{d}/nofile", "--out",
                                          "{d}/run"], REFUSE, forbid=["does not exist"]),
        # checkpoints
        case("score output_margin 1e308", ["score", "{d}/img.tif", *MAG, "--checkpoint",
                                           "{d}/margin.safetensors", "--device", "cpu",
                                           "-o", out], REFUSE, outputs=[out]),
        case("score finite weights, NaN scores", ["score", "{d}/img.tif", *MAG, "--checkpoint",
                                                  "{d}/overflow.safetensors", "--device", "cpu",
                                                  "-o", out], REFUSE, outputs=[out]),
        case("map finite weights, NaN scores", ["map", "{d}/img.tif", *MAG, "--checkpoint",
                                                "{d}/overflow.safetensors", "--device", "cpu",
                                                "--csv", out], REFUSE, outputs=[out]),
        case("train from output_margin 1e308", ["train", "--annotations", "{d}/ann.csv",
                                                "--out", "{d}/run", "--init",
                                                "{d}/margin.safetensors", "--device", "cpu"],
             REFUSE),
        case("train from NaN-score model", ["train", "--annotations", "{d}/ann.csv", "--out",
                                            "{d}/run", "--init", "{d}/overflow.safetensors",
                                            "--device", "cpu", "--epochs", "1"], REFUSE,
             forbid=["learning rate"]),
        case("score tile_hw [1, 1]", ["score", "{d}/img.tif", *MAG, "--checkpoint",
                                      "{d}/tile1.safetensors", "--device", "cpu"], REFUSE),
        case("score tile_hw 99999", ["score", "{d}/img.tif", *MAG, "--checkpoint",
                                     "{d}/tilebig.safetensors", "--device", "cpu"], REFUSE),
        case("score NaN weights", ["score", "{d}/img.tif", *MAG, "--checkpoint",
                                   "{d}/nanw.safetensors", "--device", "cpu"], REFUSE),
        case("score cut checkpoint", ["score", "{d}/img.tif", *MAG, "--checkpoint",
                                      "{d}/cut.safetensors", "--device", "cpu"], REFUSE),
        case("score JSON as checkpoint", ["score", "{d}/img.tif", *MAG, "--checkpoint",
                                          "{d}/text.safetensors", "--device", "cpu"], REFUSE),
        case("score checkpoint folder", ["score", "{d}/img.tif", *MAG, "--checkpoint",
                                         "{d}/nofile", "--device", "cpu"], REFUSE,
             forbid=["does not exist"]),
        # gate files
        case("gate apply good", ["gate", "apply", "{d}/img.tif", *MAG, "--gate",
                                 "{d}/gate.json", *CK, "-o", out], OK, outputs=[out]),
    ]
    for name in ("region", "threshold", "rule", "accept", "target", "text"):
        c.append(case(f"gate apply tampered {name}", ["gate", "apply", "{d}/img.tif", *MAG,
                      "--gate", f"{{d}}/g_{name}.json", *CK, "-o", out], REFUSE))
    c += [
        case("gate apply gate folder", ["gate", "apply", "{d}/img.tif", *MAG, "--gate",
                                        "{d}/nofile", *CK], REFUSE, forbid=["does not exist"]),
        case("gate calibrate only negatives", ["gate", "calibrate", "--manifest", "{d}/neg.csv",
                                               *CK, "-o", "{d}/out/g.json"], REFUSE,
             forbid=[">= 7"]),
        case("gate calibrate --accept-score nan", ["gate", "calibrate", "--manifest",
                                                   "{d}/neg.csv", "--accept-score", "nan", *CK,
                                                   "-o", "{d}/out/g.json"], REFUSE),
        # maps
        case("map good", ["map", "{d}/img.tif", *MAG, *CK, "--csv", out, "--png",
                          "{d}/out/m.png"], OK, outputs=[out]),
        case("map --colormap nosuchmap", ["map", "{d}/img.tif", *MAG, *CK, "--png",
                                          "{d}/out/m.png", "--colormap", "nosuchmap"], REFUSE),
        case("map --alpha 2", ["map", "{d}/img.tif", *MAG, *CK, "--png", "{d}/out/m.png",
                               "--alpha", "2"], REFUSE),
        case("map tile 32 stride 1 crop", ["map", "{d}/big.tif", *MAG, *CK, "--csv", out,
                                           "--tile", "32", "32", "--stride", "1", "1",
                                           "--mode", "crop"], REFUSE),
        case("map tile 5000", ["map", "{d}/big.tif", *MAG, *CK, "--csv", out, "--tile",
                               "5000", "5000"], OK, outputs=[out]),
        case("map tile 8", ["map", "{d}/img.tif", *MAG, *CK, "--csv", out, "--tile", "8", "8"],
             REFUSE),
        case("map stride 0", ["map", "{d}/img.tif", *MAG, *CK, "--csv", out, "--stride", "0",
                              "0"], REFUSE),
        case("map --slice -1", ["map", "{d}/stack.tif", *MAG, *CK, "--csv", out, "--slice",
                                "-1"], REFUSE),
        case("map --slice 9", ["map", "{d}/stack.tif", *MAG, *CK, "--csv", out, "--slice",
                               "9"], REFUSE),
        # counts
        case("score --batch-size 0", ["score", "{d}/img.tif", *MAG, *CK, "--batch-size", "0"],
             REFUSE),
        case("score --batch-size -4", ["score", "{d}/img.tif", *MAG, *CK, "--batch-size", "-4"],
             REFUSE),
        case("gate apply --batch-size 0", ["gate", "apply", "{d}/img.tif", *MAG, "--gate",
                                           "{d}/gate.json", *CK, "--batch-size", "0"], REFUSE),
        case("score --files-per-task 0", ["score", "{d}/img.tif", *MAG, *CK,
                                          "--files-per-task", "0", "-o", out], REFUSE),
        case("train --batch-size 0", ["train", "--annotations", "{d}/ann.csv", "--out",
                                      "{d}/run", "--batch-size", "0"], REFUSE),
        case("train --output-margin 1e308", ["train", "--annotations", "{d}/ann.csv", "--out",
                                             "{d}/run", "--output-margin", "1e308"], REFUSE),
        case("train --out a file", ["train", "--annotations", "{d}/ann.csv", "--out",
                                    "{d}/img.tif"], REFUSE),
        case("evaluate manifest folder", ["evaluate", "--manifest", "{d}/nofile", *CK], REFUSE,
             forbid=["does not exist"]),
    ]
    return c + more_cases() + microscope_cases()


def more_cases() -> list[dict]:
    """Every command and option the first list leaves out: make-dataset, compare, the training
    numbers, more tampered files, more outputs that cannot be written."""
    out = "{d}/out/o.csv"
    ann = ["train", "--annotations", "{d}/ann.csv", "--out", "{d}/run"]
    c = [
        # make-dataset and compare
        case("make-dataset --pool missing", ["make-dataset", "--pool", "{d}/none", "--out",
                                             "{d}/run"], REFUSE),
        case("make-dataset --pool a file", ["make-dataset", "--pool", "{d}/img.tif", "--out",
                                            "{d}/run"], REFUSE, forbid=["no manifest.csv"]),
        case("make-dataset --pool without manifest", ["make-dataset", "--pool", "{d}/many",
                                                      "--out", "{d}/run"], REFUSE),
        case("make-dataset --out a file", ["make-dataset", "--pool", "{d}/many", "--out",
                                           "{d}/img.tif"], REFUSE),
        case("make-dataset --out under a file", ["make-dataset", "--pool", "{d}/many", "--out",
                                                 "{d}/img.tif/ds"], REFUSE),
        case("make-dataset --n-train 0", ["make-dataset", "--pool", "{d}/many", "--out",
                                          "{d}/run", "--n-train", "0"], REFUSE),
        case("make-dataset --n-val -3", ["make-dataset", "--pool", "{d}/many", "--out",
                                         "{d}/run", "--n-val", "-3"], REFUSE),
        case("make-dataset --seed -1", ["make-dataset", "--pool", "{d}/many", "--out",
                                        "{d}/run", "--seed", "-1"], REFUSE),
        case("compare --dataset missing", ["compare", "--dataset", "{d}/none", "--out",
                                           "{d}/run"], REFUSE),
        case("compare --dataset a file", ["compare", "--dataset", "{d}/img.tif", "--out",
                                          "{d}/run"], REFUSE),
        case("compare unknown candidate", ["compare", "--dataset", "{d}/many", "--out",
                                           "{d}/run", "--candidates", "foo"], REFUSE),
        case("compare --out a file", ["compare", "--dataset", "{d}/many", "--out",
                                      "{d}/img.tif"], REFUSE),
        case("compare --epochs 0", ["compare", "--dataset", "{d}/many", "--out", "{d}/run",
                                    "--epochs", "0"], REFUSE),
        # training numbers and folders
        case("train --lr nan", [*ann, "--lr", "nan"], REFUSE),
        case("train --lr inf", [*ann, "--lr", "inf"], REFUSE),
        case("train --lr -1", [*ann, "--lr", "-1"], REFUSE),
        case("train --val-fraction 2", [*ann, "--val-fraction", "2"], REFUSE),
        case("train --val-fraction nan", [*ann, "--val-fraction", "nan"], REFUSE),
        case("train --trunk-lr-factor nan", [*ann, "--trunk-lr-factor", "nan"], REFUSE),
        case("train --trunk-lr-factor -1", [*ann, "--trunk-lr-factor", "-1"], REFUSE),
        case("train --crop 8 8", [*ann, "--crop", "8", "8"], REFUSE),
        case("train --crop 5000 5000", [*ann, "--crop", "5000", "5000"], REFUSE),
        case("train --output-margin nan", [*ann, "--output-margin", "nan"], REFUSE),
        case("train --epochs 0", [*ann, "--epochs", "0"], REFUSE),
        case("train --seed -1", [*ann, "--seed", "-1"], REFUSE),
        case("train --init missing", [*ann, "--init", "{d}/none.safetensors"], REFUSE),
        case("train --init a folder", [*ann, "--init", "{d}/nofile"], REFUSE,
             forbid=["does not exist"]),
        case("train --init a cut checkpoint", [*ann, "--init", "{d}/cut.safetensors"], REFUSE),
        case("train --init NaN weights", [*ann, "--init", "{d}/nanw.safetensors"], REFUSE),
        case("train --out under a file", ["train", "--annotations", "{d}/ann.csv", "--out",
                                          "{d}/img.tif/run"], REFUSE),
        case("train --out with an earlier run", [*ann], REFUSE,
             setup=[("m.safetensors", "run/best.safetensors")]),
        case("train --resume a cut last", [*ann, "--resume", "--epochs", "1"], REFUSE,
             setup=[("cut.safetensors", "run/last.safetensors")]),
        case("train no annotation rows", ["train", "--annotations", "{d}/ann_empty.csv",
                                          "--out", "{d}/run"], REFUSE),
        case("train --annotations missing", ["train", "--annotations", "{d}/none.csv",
                                             "--out", "{d}/run"], REFUSE),
        case("train --dataset missing", ["train", "--dataset", "{d}/none", "--out", "{d}/run"],
             REFUSE),
        # checkpoints and gate files, more tampering
        case("score foreign checkpoint format", ["score", "{d}/img.tif", *MAG, "--checkpoint",
                                                 "{d}/foreign.safetensors", "--device", "cpu"],
             REFUSE),
        case("score head_hidden edited", ["score", "{d}/img.tif", *MAG, "--checkpoint",
                                          "{d}/headhidden.safetensors", "--device", "cpu"],
             REFUSE),
        case("map output_margin 1e308", ["map", "{d}/img.tif", *MAG, "--checkpoint",
                                         "{d}/margin.safetensors", "--device", "cpu", "--csv",
                                         out], REFUSE, outputs=[out]),
        case("evaluate finite weights, NaN scores", ["evaluate", "--manifest", "{d}/list.csv",
                                                     "--checkpoint", "{d}/overflow.safetensors",
                                                     "--device", "cpu", "--no-classical",
                                                     "--output", "{d}/out/r"], REFUSE),
        case("gate calibrate NaN-score model", ["gate", "calibrate", "--manifest", "{d}/list.csv",
                                                "--checkpoint", "{d}/overflow.safetensors",
                                                "--device", "cpu", "-o", "{d}/out/g.json"],
             REFUSE),
        case("gate apply NaN-score model", ["gate", "apply", "{d}/img.tif", *MAG, "--gate",
                                            "{d}/gate.json", "--checkpoint",
                                            "{d}/overflow.safetensors", "--device", "cpu",
                                            "-o", out], REFUSE),
        case("gate apply another model", ["gate", "apply", "{d}/img.tif", *MAG, "--gate",
                                          "{d}/gate.json", "--checkpoint",
                                          "{d}/headhidden.safetensors", "--device", "cpu"],
             REFUSE),
    ]
    for name in ("model", "nosig", "version", "cut", "list"):
        c.append(case(f"gate apply tampered {name}", ["gate", "apply", "{d}/img.tif", *MAG,
                      "--gate", f"{{d}}/g_{name}.json", *CK, "-o", out], REFUSE))
    c += [
        case("gate apply missing gate", ["gate", "apply", "{d}/img.tif", *MAG, "--gate",
                                         "{d}/none.json", *CK], REFUSE),
        case("gate apply --resume a score table", ["gate", "apply", "{d}/img.tif", *MAG,
                                                   "--gate", "{d}/gate.json", *CK, "--resume",
                                                   "-o", "{d}/out/resume.csv"], REFUSE),
        case("gate calibrate --target-precision 2", ["gate", "calibrate", "--manifest",
                                                     "{d}/list.csv", *CK, "--target-precision",
                                                     "2", "-o", "{d}/out/g.json"], REFUSE),
        case("gate calibrate --target-precision nan", ["gate", "calibrate", "--manifest",
                                                       "{d}/list.csv", *CK, "--target-precision",
                                                       "nan", "-o", "{d}/out/g.json"], REFUSE),
        case("gate calibrate without labels", ["gate", "calibrate", "--manifest",
                                               "{d}/nolabel.csv", *CK, "-o", "{d}/out/g.json"],
             REFUSE),
        case("gate calibrate -o a folder", ["gate", "calibrate", "--manifest", "{d}/neg.csv",
                                            *CK, "-o", "{d}/folder"], REFUSE),
        case("gate calibrate --plot under a file", ["gate", "calibrate", "--manifest",
                                                    "{d}/neg.csv", *CK, "-o", "{d}/out/g.json",
                                                    "--plot", "{d}/img.tif/p.png"], REFUSE),
        case("gate calibrate --scores the manifest", ["gate", "calibrate", "--manifest",
                                                      "{d}/neg.csv", *CK, "-o", "{d}/out/g.json",
                                                      "--scores", "{d}/neg.csv"], REFUSE),
        # maps, more
        case("map --alpha nan", ["map", "{d}/img.tif", *MAG, *CK, "--png", "{d}/out/m.png",
                                 "--alpha", "nan"], REFUSE),
        case("map unknown --measure", ["map", "{d}/img.tif", *MAG, "--measure", "foo", "--csv",
                                       out], REFUSE),
        case("map two images to -o", ["map", "{d}/img.tif", "{d}/img2.tif", *MAG, *CK, "-o",
                                      "{d}/out/m.tif"], REFUSE),
        case("map a folder as a file", ["map", "{d}/nofile", *MAG, *CK, "--csv", out], REFUSE,
             forbid=["no such file"]),
        case("map all-NaN float", ["map", "{d}/nan.tif", *MAG, *CK, "--csv", out], REFUSE),
        case("map empty file", ["map", "{d}/empty.tif", *MAG, *CK, "--csv", out], REFUSE),
        case("map bool", ["map", "{d}/bool.tif", *MAG, *CK, "--csv", out], REFUSE),
        case("map -o a folder", ["map", "{d}/img.tif", *MAG, *CK, "-o", "{d}/folder"], REFUSE),
        case("map --png a folder", ["map", "{d}/img.tif", *MAG, *CK, "--png", "{d}/folder"],
             REFUSE),
        case("map --csv under a file", ["map", "{d}/img.tif", *MAG, *CK, "--csv",
                                        "{d}/img.tif/x.csv"], REFUSE),
        case("map --resume a cut table", ["map", *MANY[:2], *MAG, *CK, "--resume", "--csv",
                                          "{d}/out/resume.csv"], REFUSE),
        case("map --workers 0", ["map", "{d}/img.tif", *MAG, *CK, "--workers", "0", "--csv",
                                 out], REFUSE),
        case("map tile 32 stride 4 (12,000 tiles)", ["map", "{d}/big.tif", *MAG, *CK, "--csv",
                                                     out, "--tile", "32", "32", "--stride", "4",
                                                     "4"], OK, outputs=[out]),
        # score and measure, more
        case("score --workers 0", ["score", "{d}/img.tif", *MAG, *CK, "--workers", "0", "-o",
                                   out], REFUSE),
        case("score --scheduler junk", ["score", "{d}/img.tif", *MAG, *CK, "--scheduler",
                                        "junk", "-o", out], REFUSE),
        case("score --scheduler nobody there", ["score", "{d}/img.tif", *MAG, *CK,
                                                "--scheduler", "tcp://127.0.0.1:1", "-o", out],
             REFUSE),
        case("score --resume without -o", ["score", "{d}/img.tif", *MAG, *CK, "--resume"],
             REFUSE),
        case("gate apply a folder without images", ["gate", "apply", "{d}/nofile", *MAG,
                                                    "--gate", "{d}/gate.json", *CK], REFUSE),
        case("gate apply a folder of images", ["gate", "apply", "{d}/many", *MAG, "--gate",
                                               "{d}/gate.json", *CK, "-o", out], OK,
             outputs=[out]),
        case("score a CSV as an image", ["score", "{d}/list.csv", *MAG, *CK], REFUSE),
        case("score manifest without columns", ["score", "--manifest", "{d}/foreign.csv", *CK],
             REFUSE),
        case("score empty manifest", ["score", "--manifest", "{d}/empty.tif", *CK], REFUSE),
        case("score --device cuda (none here)", ["score", "{d}/img.tif", *MAG, "--checkpoint",
                                                 "{d}/m.safetensors", "--device", "cuda"],
             REFUSE),
        case("score --region centre", ["score", "{d}/img.tif", *MAG, *CK, "--region", "centre",
                                       "-o", out], OK, outputs=[out]),
        case("measure -o a folder", ["measure", "{d}/img.tif", *MAG, "--measure", "tenengrad",
                                     "-o", "{d}/folder"], REFUSE),
        case("measure a folder as a file", ["measure", "{d}/nofile", *MAG, "--measure",
                                            "tenengrad"], REFUSE, forbid=["no such file"]),
        case("measure all-NaN float", ["measure", "{d}/nan.tif", *MAG, "--measure",
                                       "tenengrad"], REFUSE),
        case("measure -o the image", ["measure", "{d}/img.tif", *MAG, "--measure", "tenengrad",
                                      "-o", "{d}/img.tif"], REFUSE),
        case("evaluate --output under a file", ["evaluate", "--manifest", "{d}/list.csv", *CK,
                                                "--no-classical", "--output",
                                                "{d}/img.tif/r"], REFUSE),
        case("evaluate duplicate manifest", ["evaluate", "--manifest", "{d}/dup.csv", *CK],
             REFUSE),
        case("evaluate output_margin 1e308", ["evaluate", "--manifest", "{d}/list.csv",
                                              "--checkpoint", "{d}/margin.safetensors",
                                              "--device", "cpu", "--no-classical", "--output",
                                              "{d}/out/r"], REFUSE),
    ]
    return c


def microscope_cases() -> list[dict]:
    """The commands used at the microscope: watch, report, focus-curve."""
    out = "{d}/out/o.csv"
    watch = ["watch", "{d}/many", *MAG, *CK, "--until-idle", "2", "--settle", "0.2"]
    return [
        case("watch good", [*watch, "--output", out], OK, outputs=[out]),
        case("watch a missing folder", ["watch", "{d}/none", *MAG, *CK, "--until-idle", "1"],
             REFUSE),
        case("watch a file", ["watch", "{d}/img.tif", *MAG, *CK, "--until-idle", "1"], REFUSE),
        case("watch --output a folder", [*watch, "--output", "{d}/folder"], REFUSE),
        case("watch --output under a file", [*watch, "--output", "{d}/img.tif/o.csv"], REFUSE),
        case("watch --retake a folder", [*watch, "--retake", "{d}/folder"], REFUSE),
        case("watch --gate missing", [*watch, "--gate", "{d}/none.json"], REFUSE),
        case("watch --gate edited threshold", [*watch, "--gate", "{d}/g_threshold.json"],
             REFUSE),
        case("watch --gate not JSON", [*watch, "--gate", "{d}/g_text.json"], REFUSE),
        case("watch --checkpoint cut", ["watch", "{d}/many", *MAG, "--checkpoint",
                                        "{d}/cut.safetensors", "--until-idle", "1"], REFUSE),
        case("watch --poll -1", [*watch, "--poll", "-1"], REFUSE),
        case("watch --settle nan", [*watch[:-2], "--settle", "nan"], REFUSE),
        case("report a missing table", ["report", "{d}/none.csv", "--output",
                                        "{d}/out/r.html"], REFUSE),
        case("report a foreign table", ["report", "{d}/foreign.csv", "--output",
                                        "{d}/out/r.html"], REFUSE),
        case("report a cut table", ["report", "{d}/cut.csv", "--no-maps", "--output",
                                    "{d}/out/r.html"], OK),
        case("report --output a folder", ["report", "{d}/cut.csv", "--output", "{d}/folder"],
             REFUSE),
        case("report --output the table", ["report", "{d}/cut.csv", "--output", "{d}/cut.csv"],
             REFUSE),
        case("focus-curve a missing stack", ["focus-curve", "{d}/none.tif", *MAG, *CK], REFUSE),
        case("focus-curve one frame", ["focus-curve", "{d}/img.tif", *MAG, *CK], REFUSE),
        case("focus-curve --step-um 0", ["focus-curve", "{d}/stack.tif", *MAG, *CK,
                                         "--step-um", "0"], REFUSE),
        case("focus-curve --step-um nan", ["focus-curve", "{d}/stack.tif", *MAG, *CK,
                                           "--step-um", "nan"], REFUSE),
        case("focus-curve --output the stack", ["focus-curve", "{d}/stack.tif", *MAG, *CK,
                                                "--output", "{d}/stack.tif"], REFUSE),
        case("focus-curve --plot a folder", ["focus-curve", "{d}/stack.tif", *MAG, *CK,
                                             "--plot", "{d}/folder"], REFUSE),
    ]


# ---- runs stopped from outside: (name, argv, signal, when, output, table) ---------------------
# ``when``: a line of stderr that starts with it is the moment to send the signal; ``table``:
# the output is a --resume table (whole rows may stay), else it must not exist afterwards
def interrupts() -> list[dict]:
    score = ["score", *MANY, *MAG, "--checkpoint", "{d}/m.safetensors", "--device", "cpu"]
    mp = ["map", "{d}/big.tif", *MAG, "--checkpoint", "{d}/m.safetensors", "--device", "cpu",
          "--tile", "32", "32", "--stride", "3", "3", "--mode", "crop"]
    train = ["train", "--annotations", "{d}/ann.csv", "--out", "{d}/run", "--init",
             "{d}/m.safetensors", "--device", "cpu", "--epochs", "50"]
    return [
        {"name": "Ctrl-C during score", "argv": [*score, "-o", "{d}/out/i.csv"],
         "signal": "SIGINT", "when": "[", "output": "{d}/out/i.csv", "table": False},
        {"name": "Ctrl-C during score --resume", "argv": [*score, "--resume", "--files-per-task", "1", "-o",
                                                          "{d}/out/i.csv"],
         "signal": "SIGINT", "when": "semfocus score: ", "output": "{d}/out/i.csv",
         "table": True},
        {"name": "SIGKILL during score", "argv": [*score, "-o", "{d}/out/i.csv"],
         "signal": "SIGKILL", "when": "[", "output": "{d}/out/i.csv", "table": False},
        {"name": "SIGKILL during score --resume", "argv": [*score, "--resume", "--files-per-task", "1", "-o",
                                                           "{d}/out/i.csv"],
         "signal": "SIGKILL", "when": "semfocus score: [", "output": "{d}/out/i.csv",
         "table": True},
        {"name": "Ctrl-C during map (progress lines)", "argv": [*mp, "--csv", "{d}/out/i.csv"],
         "signal": "SIGINT", "when": "semfocus map: ", "output": "{d}/out/i.csv",
         "table": False},
        {"name": "Ctrl-C during train", "argv": train, "signal": "SIGINT", "when": "epoch 1 [",
         "output": None, "table": False},
    ]


# ---- the Python API: (name, call(d) -> None); a call must raise SemFocusError, one line -------
def api_cases() -> list[tuple]:
    from napari_semfocus import FocusScorer
    from napari_semfocus.gate.file import Gate
    from napari_semfocus.io.images import read_image
    from napari_semfocus.io.manifest import read_manifest
    from napari_semfocus.scoring.checkpoint import load_checkpoint
    from napari_semfocus.training.data.annotations import AnnotationTable

    def frame(d, name="img.tif"):
        return tifffile.imread(d / name)

    def scorer(d, name="m.safetensors"):
        return FocusScorer.load(d / name, device="cpu")

    return [
        ("FocusScorer.load output_margin 1e308", lambda d: scorer(d, "margin.safetensors")),
        ("FocusScorer.score, NaN-score model",
         lambda d: scorer(d, "overflow.safetensors").score(frame(d), 5000)),
        ("FocusScorer.focus_map, NaN-score model",
         lambda d: scorer(d, "overflow.safetensors").focus_map(frame(d), 5000)),
        ("FocusScorer.score batch_size 0", lambda d: scorer(d).score(frame(d), 5000,
                                                                     batch_size=0)),
        ("FocusScorer.score batch_size 2.5", lambda d: scorer(d).score(frame(d), 5000,
                                                                       batch_size=2.5)),
        ("FocusScorer.focus_map 273,000 tiles",
         lambda d: scorer(d).focus_map(frame(d, "big.tif"), 5000, tile=(32, 32), stride=(1, 1),
                                       mode="crop")),
        ("FocusScorer.focus_map tile 8", lambda d: scorer(d).focus_map(frame(d), 5000,
                                                                       tile=(8, 8))),
        ("FocusScorer.score text magnification", lambda d: scorer(d).score(frame(d), "abc")),
        ("Gate.load tampered region", lambda d: Gate.load(d / "g_region.json")),
        ("Gate.load without signature", lambda d: Gate.load(d / "g_nosig.json")),
        ("Gate.load a folder", lambda d: Gate.load(d / "nofile")),
        ("AnnotationTable.load_csv repeated image",
         lambda d: AnnotationTable.load_csv(d / "ann_dup.csv")),
        ("read_manifest a folder", lambda d: read_manifest(d / "nofile")),
        ("read_manifest repeated image", lambda d: read_manifest(d / "dup.csv")),
        ("load_checkpoint a folder", lambda d: load_checkpoint(d / "nofile")),
        ("load_checkpoint head_hidden edited", lambda d: load_checkpoint(
            d / "headhidden.safetensors")),
        ("read_image a folder", lambda d: read_image(d / "nofile")),
        ("read_image a cut TIFF", lambda d: read_image(d / "cut.tif")),
    ]

