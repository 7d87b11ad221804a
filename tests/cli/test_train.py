"""``semfocus train --annotations``: the Fine-tune widget's job from the command line."""

from __future__ import annotations

import numpy as np
import tifffile

from napari_semfocus.cli.main import main
from napari_semfocus.jobs import finetune as ft
from napari_semfocus.scoring.checkpoint import default_model_path, read_metadata

from ..helpers import needs_default_model


# ---- the command line runs the same code --------------------------------------------------------
@needs_default_model
def test_cli_train_annotations_runs_finetune_and_writes_a_checkpoint(expert_set, tmp_path,
                                                                     monkeypatch, capsys):
    table, frames = expert_set
    folder = tmp_path / "imgs"
    folder.mkdir()
    lines = ["path,magnification,score,slice"]
    for image in table.images()[:3]:  # 3 images, each a TIFF stack of its 5 blurred copies
        rows = [r for r in table.rows if r.layer == image]
        stack = np.stack([frames[r.key] for r in rows])
        stack = np.round(255 * (stack - stack.min()) / np.ptp(stack)).astype(np.uint8)
        name = image.replace("/", "_") + ".tif"
        tifffile.imwrite(folder / name, stack)
        lines += [f"{name},{r.magnification:g},{r.score:.4g},{r.slice}" for r in rows]
    (folder / "scores.csv").write_text("\n".join(lines) + "\n")
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
    meta = read_metadata(out / "best.safetensors")
    assert meta["provenance"]["parent"] == default_model_path().name
    assert meta["provenance"]["annotations"]["file"] == str((folder / "scores.csv").resolve())
    assert meta["provenance"]["annotations"]["count"] == 15
    ft_meta = meta["fine_tuning"]
    assert ft_meta["val_rmse_before"] > 0 and ft_meta["val_rmse_after"] > 0
    assert len(ft_meta["validation_images"]) == 1 and ft_meta["train_frames"] == 10


def test_cli_bad_annotations_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("path,score\na.png,5\n")
    code = main(["train", "--annotations", str(bad), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and str(bad) in err and "magnification" in err
