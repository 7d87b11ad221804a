"""The bad-input sweep of issue 28: every ``semfocus`` command against odd images, magnification
text, outputs onto inputs or folders, cut and foreign ``--resume`` tables, bad annotation CSVs,
tampered checkpoints and gate files, unbounded maps, bad counts, and Ctrl-C during a run.

Each case runs ``napari_semfocus.cli.main.main(ARGV)`` in this process (stdout and stderr
captured, an alarm after ``--timeout`` seconds); the two Ctrl-C cases run ``python -m
napari_semfocus.cli`` in a child process and send it SIGINT. A case fails as

- ``traceback``: an exception left ``main`` (or a child printed a traceback);
- ``hang``: it ran past ``--timeout`` seconds;
- ``silent_nan``: exit 0 with ``nan`` or ``inf`` in a score column of a CSV it wrote;
- ``tampered_accepted``: a tampered model or gate file (or other input to refuse) gave exit 0;
- ``input_changed``: a file of the fixture folder changed (SHA-256 before and after);
- ``bad_sentence``: a refusal that is not one line ``semfocus COMMAND: error: ...`` (argparse's
  usage lines aside), or a sentence that says something false (a folder reported as missing,
  ``>= 7`` for images that are all below 7);
- ``refused_good_input``: exit 2 for input that should be scored;
- ``partial_output``: Ctrl-C left an output file (a ``--resume`` table: a cut row).

Which package is swept is whichever ``napari_semfocus`` comes first on ``sys.path``: for a
before / after count, run it with ``PYTHONPATH`` at ``src/`` of an earlier commit (``git archive
COMMIT src | tar -x -C DIR``). The fixtures are made with that package too (an untrained
mobilenet_v3_small checkpoint, 96 x 128 frames), so the sweep takes a few minutes on a CPU.

    python benchmarks/sweep_reliability.py [--timeout 60] [--only SUBSTRING] [--skip-interrupt]
        [--output summary.md]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import tifffile

KINDS = ("traceback", "hang", "silent_nan", "tampered_accepted", "input_changed", "bad_sentence",
         "refused_good_input", "partial_output")


class Hang(Exception):
    pass


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
    (d / "cut.csv").write_text("path,index,magnification,score,worst_region\n"
                               f"{d / 'many' / 'f00.tif'},0,5000,5.1,4.9\n{d / 'many'}/f0")
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
    (d / "g_text.json").write_text("{not json")


# ---- cases ------------------------------------------------------------------------------------
OK, REFUSE = "ok", "refuse"
CK = ["--checkpoint", "{d}/m.safetensors", "--device", "cpu"]
MAG = ["--magnification", "5000"]
MANY = [f"{{d}}/many/f{i:02d}.tif" for i in range(12)]


def case(name, argv, expect, forbid=(), outputs=()):
    return {"name": name, "argv": argv, "expect": expect, "forbid": tuple(forbid),
            "outputs": tuple(outputs)}


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
                                           "-o", out], REFUSE),
        case("score finite weights, NaN scores", ["score", "{d}/img.tif", *MAG, "--checkpoint",
                                                  "{d}/overflow.safetensors", "--device", "cpu",
                                                  "-o", out], REFUSE),
        case("map finite weights, NaN scores", ["map", "{d}/img.tif", *MAG, "--checkpoint",
                                                "{d}/overflow.safetensors", "--device", "cpu",
                                                "--csv", out], REFUSE),
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
    return c


# ---- running ----------------------------------------------------------------------------------
def fingerprints(d: Path) -> dict:
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(d.rglob("*"))
            if p.is_file() and not {"out", "run"} & set(p.relative_to(d).parts)}


def prepare(d: Path) -> None:
    """Per-case state: an empty output folder, fresh copies of the tables --resume continues."""
    shutil.rmtree(d / "out", ignore_errors=True)
    shutil.rmtree(d / "run", ignore_errors=True)
    (d / "out").mkdir()
    shutil.copy(d / "cut.csv", d / "out" / "resume.csv")
    shutil.copy(d / "foreign.csv", d / "out" / "foreign_copy.csv")


def non_finite_scores(path: Path) -> bool:
    import csv

    if not path.is_file() or path.suffix != ".csv":
        return False
    rows = list(csv.DictReader(io.StringIO(path.read_text())))
    return any(str(r.get(k, "")).strip().lower() in ("nan", "inf", "-inf")
               for r in rows for k in ("score", "worst_region"))


def run_case(c: dict, d: Path, timeout: float) -> tuple[list[str], str]:
    from napari_semfocus.cli.main import main

    argv = [a.replace("{d}", str(d)) for a in c["argv"]]
    prepare(d)
    before = fingerprints(d)
    out, err = io.StringIO(), io.StringIO()

    def alarm(*_):
        raise Hang()

    old = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    code, escaped = None, None
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv)
    except Hang:
        escaped = "hang"
    except SystemExit as exc:  # argparse
        code = exc.code
    except BaseException as exc:  # noqa: BLE001 - a traceback is what the sweep looks for
        escaped = f"{type(exc).__name__}: {str(exc)[:150]}"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    text = err.getvalue()
    fails = []
    if escaped == "hang":
        fails.append("hang")
    elif escaped:
        fails.append("traceback")
    if fingerprints(d) != before:
        fails.append("input_changed")
    if code == 0 and c["expect"] == REFUSE:
        fails.append("tampered_accepted")
    if code == 2 and c["expect"] == OK:
        fails.append("refused_good_input")
    if code == 0 and any(non_finite_scores(Path(o.replace("{d}", str(d))))
                         for o in c["outputs"]):
        fails.append("silent_nan")
    if code == 2:  # progress lines may come first; the error is one line, the last
        errors = [ln for ln in text.splitlines() if ": error: " in ln]
        last = (text.strip().splitlines() or [""])[-1]
        if (len(errors) != 1 or errors[0] != last or not last.startswith("semfocus ")
                or any(f in text for f in c["forbid"])):
            fails.append("bad_sentence")
    detail = escaped or (text.strip().splitlines() or [""])[-1][:200]
    return fails, f"exit {code}: {detail}"


def run_interrupt(d: Path, resume: bool, timeout: float) -> tuple[list[str], str]:
    """``semfocus score`` of 12 files in a child process, SIGINT after its first progress line:
    exit 130, no traceback, no output file (or, with --resume, a table of whole rows)."""
    out = d / "out" / "interrupted.csv"
    prepare(d)
    before = fingerprints(d)
    argv = [sys.executable, "-m", "napari_semfocus.cli", "score",
            *[f.replace("{d}", str(d)) for f in MANY], *MAG,
            "--checkpoint", str(d / "m.safetensors"), "--device", "cpu", "-o", str(out)]
    if resume:
        argv.append("--resume")
    proc = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    start, err = time.monotonic(), []
    fails = []
    for line in proc.stderr:
        err.append(line)
        if line.startswith("[") or (resume and line.startswith("semfocus score: ")):
            proc.send_signal(signal.SIGINT)
            break
        if time.monotonic() - start > timeout:
            break
    try:
        rest = proc.communicate(timeout=timeout)[1]
    except subprocess.TimeoutExpired:
        proc.kill()
        rest = proc.communicate()[1]
        fails.append("hang")
    text = "".join(err) + rest
    if "Traceback" in text:
        fails.append("traceback")
    if fingerprints(d) != before:
        fails.append("input_changed")
    if out.is_file():
        data = out.read_text()
        if not resume or (data and not data.endswith("\n")):
            fails.append("partial_output")
    if proc.returncode != 130:
        text += f" (not interrupted: exit {proc.returncode})"
    return fails, f"exit {proc.returncode}: {text.strip().splitlines()[-1][:200] if text else ''}"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--timeout", type=float, default=60.0)
    p.add_argument("--only", help="run the cases whose name holds this text")
    p.add_argument("--skip-interrupt", action="store_true", help="leave out the Ctrl-C cases")
    p.add_argument("--output", help="write the summary (Markdown) here too")
    args = p.parse_args(argv)
    import napari_semfocus

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        make_fixtures(d)
        todo = [c for c in cases() if not args.only or args.only in c["name"]]
        for c in todo:
            t = time.monotonic()
            fails, detail = run_case(c, d, args.timeout)
            results.append((c["name"], fails, detail, time.monotonic() - t))
            print(f"{'FAIL ' + ','.join(fails) if fails else 'ok':<28} {c['name']:<38} "
                  f"{detail[:110]}", flush=True)
        if not args.skip_interrupt and not args.only:
            for resume in (False, True):
                name = f"Ctrl-C during score{' --resume' if resume else ''}"
                fails, detail = run_interrupt(d, resume, args.timeout)
                results.append((name, fails, detail, 0.0))
                print(f"{'FAIL ' + ','.join(fails) if fails else 'ok':<28} {name:<38} {detail}")
    counts = Counter(k for _, fails, _, _ in results for k in fails)
    failed = sum(1 for _, fails, _, _ in results if fails)
    lines = [f"Swept `{Path(napari_semfocus.__file__).parent}`: {len(results)} cases, "
             f"{failed} failing.", "", "| failure | cases |", "|---|---|"]
    lines += [f"| {k} | {counts.get(k, 0)} |" for k in KINDS]
    lines += ["", "Failing cases:", ""]
    lines += [f"- {name}: {', '.join(fails)} ({detail})" for name, fails, detail, _ in results
              if fails] or ["- none"]
    summary = "\n".join(lines) + "\n"
    print("\n" + summary)
    if args.output:
        Path(args.output).write_text(summary)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
