"""``semfocus train --annotations``: the Fine-tune widget's job from the command line."""

from __future__ import annotations

import numpy as np
import tifffile

from napari_semfocus.cli.main import main
from napari_semfocus.jobs import finetune as ft
from napari_semfocus.scoring.checkpoint import default_model_path, read_metadata
from napari_semfocus.training.finetune import FINETUNE_DEFAULTS, FineTuneResult

from ..helpers import needs_default_model

SMALL_VALIDATION = ("semfocus train: warning: the validation split is too small to mean much: 5 "
                    "frame(s) (fewer than 20), 1 image(s) (fewer than 3); its RMSE, and so the "
                    "choice between the parent and the fine-tuned model, may not hold for other "
                    "images: annotate more images or raise the validation fraction.")


def write_scores(expert_set, folder):
    """3 images of the expert set, each a TIFF stack of its 5 blurred copies, and scores.csv."""
    table, frames = expert_set
    folder.mkdir()
    lines = ["path,magnification,score,slice"]
    for image in table.images()[:3]:
        rows = [r for r in table.rows if r.layer == image]
        stack = np.stack([frames[r.key][0] for r in rows])
        stack = np.round(255 * (stack - stack.min()) / np.ptp(stack)).astype(np.uint8)
        name = image.replace("/", "_") + ".tif"
        tifffile.imwrite(folder / name, stack)
        lines += [f"{name},{r.magnification:g},{r.score:.4g},{r.slice}" for r in rows]
    (folder / "scores.csv").write_text("\n".join(lines) + "\n")
    return folder / "scores.csv"


# ---- the command line runs the same code --------------------------------------------------------
@needs_default_model
def test_cli_train_annotations_runs_finetune_and_writes_a_checkpoint(expert_set, tmp_path,
                                                                     monkeypatch, capsys):
    folder = tmp_path / "imgs"
    write_scores(expert_set, folder)
    calls = []
    real = ft.finetune
    monkeypatch.setattr(ft, "finetune", lambda *a, **k: calls.append(k) or real(*a, **k))
    out = tmp_path / "run"
    code = main(["train", "--annotations", str(folder / "scores.csv"), "--init", "default",
                 "--out", str(out), "--epochs", "1", "--steps-per-epoch", "2", "--batch-size", "2",
                 "--crop", "96", "128", "--lr", "1e-3", "--optimiser", "adamw", "--freeze-trunk",
                 "--val-fraction", "0.34", "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert len(calls) == 1 and calls[0]["init"] == "default"
    assert "validation RMSE before fine-tuning" in err and "fine-tuned model:" in err
    assert SMALL_VALIDATION in err.splitlines()  # one image of 5 frames held out
    # too few to recalibrate the score interval: the parent's, widened, and the line says so
    (note,) = [ln for ln in err.splitlines() if ln.startswith("semfocus train: note:")]
    assert note.startswith("semfocus train: note: score intervals: the validation split (5 "
                           "frame(s)) is too small to calibrate a 80% interval (it needs 21")
    meta = read_metadata(out / "best.safetensors")
    assert meta["provenance"]["parent"] == default_model_path().name
    assert meta["provenance"]["annotations"]["file"] == str((folder / "scores.csv").resolve())
    assert meta["provenance"]["annotations"]["count"] == 15
    ft_meta = meta["fine_tuning"]
    assert ft_meta["val_rmse_before"] > 0 and ft_meta["val_rmse_after"] > 0
    assert len(ft_meta["validation_images"]) == 1 and ft_meta["train_frames"] == 10
    assert ft_meta["interval_note"] in note and meta["interval"]["calibration"]["widened_by"] > 0


def test_cli_bad_annotations_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("path,score\na.png,5\n")
    code = main(["train", "--annotations", str(bad), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and str(bad) in err and "magnification" in err


@needs_default_model
def test_cli_keeps_the_parent_when_no_epoch_beats_it_and_says_so(expert_set, tmp_path, capsys):
    scores = write_scores(expert_set, tmp_path / "imgs")
    out = tmp_path / "run"
    code = main(["train", "--annotations", str(scores), "--out", str(out), "--epochs", "1",
                 "--steps-per-epoch", "2", "--batch-size", "2", "--crop", "96", "128",
                 "--lr", "0.2", "--val-fraction", "0.34", "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 0, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("kept the parent: the last epoch's validation RMSE "), last
    assert last.endswith(f"so the result is the parent model {default_model_path().name} and no "
                         f"fine-tuned model was written."), last
    assert not (out / "best.safetensors").exists()  # no worse model one step from use


def test_cli_fine_tuning_defaults_are_the_widgets(tmp_path, monkeypatch, capsys):
    """Left out, the recipe options of train --annotations take FINETUNE_DEFAULTS (the Fine-tune
    widget's); given, they win."""
    configs = []

    def fake_finetune(table, config, **kw):
        configs.append(config)
        return FineTuneResult(None, {}, None, None, trained=False, stopped=False)
        yield  # a generator, as finetune is

    monkeypatch.setattr(ft, "finetune", fake_finetune)
    csv = tmp_path / "scores.csv"
    csv.write_text("path,magnification,score\n" + "".join(f"a{i}.png,5000,{i}\n" for i in range(8)))
    assert main(["train", "--annotations", str(csv), "--out", str(tmp_path / "o")]) == 0
    assert capsys.readouterr().err.strip().endswith("nothing was trained.")
    c = configs[0]
    for name, value in FINETUNE_DEFAULTS.items():  # every default, the trunk's included
        assert getattr(c, name) == value, name
    assert main(["train", "--annotations", str(csv), "--out", str(tmp_path / "o2"), "--lr", "3e-4",
                 "--no-freeze-trunk", "--optimiser", "sgd", "--unfreeze-last", "2",
                 "--trunk-lr-factor", "0.5", "--select", "best"]) == 0
    c = configs[1]
    assert (c.lr, c.freeze_trunk, c.optimiser, c.unfreeze_last, c.trunk_lr_factor, c.select) == (
        3e-4, False, "sgd", 2, 0.5, "best")
