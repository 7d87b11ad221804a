"""One prediction path: validation during training, `semfocus evaluate`, the CLI and the scorer
give the same number for the same frame (the flat-tile rule, the structure-weighted tiles and
the autocast included)."""

from __future__ import annotations

import numpy as np
import tifffile

from napari_semfocus.scoring.checkpoint import load_checkpoint
from napari_semfocus.scoring.scorer import FocusScorer
from napari_semfocus.training.data.labelled import LabelledSet
from napari_semfocus.training.evaluation import evaluate_manifest
from napari_semfocus.training.loop import predict_frames

from ..helpers import blur, parse_csv, run_cli


def test_training_validation_cli_and_evaluate_agree(tmp_path, pool_image, untrained_checkpoint,
                                                    capsys):
    rng = np.random.default_rng(0)
    frames = [pool_image[:300, :400], blur(pool_image, 4.0)[:300, :400],
              np.full((300, 400), 90.0, np.float32),  # uniform: 0 by the flat-tile rule
              (100 + 30 * rng.standard_normal((300, 400))).astype(np.float32)]
    mags = np.array([5000.0, 5000.0, 800.0, 20000.0])
    labels = np.array([9.0, 4.0, 0.0, 0.0])
    scorer = FocusScorer.from_checkpoint(untrained_checkpoint, device="cpu")
    direct = np.array([scorer.score(f, m)[0] for f, m in zip(frames, mags, strict=True)])

    model, _ = load_checkpoint(untrained_checkpoint)
    during_training, lab = predict_frames(model, LabelledSet(frames, labels, mags, np.arange(4)),
                                          "cpu")
    np.testing.assert_allclose(during_training, direct, atol=1e-6)
    np.testing.assert_array_equal(lab, labels)
    assert direct[2] == 0.0

    rows = ["path,magnification,label"]
    for i, (f, m, y) in enumerate(zip(frames, mags, labels, strict=True)):
        tifffile.imwrite(tmp_path / f"f{i}.tif", f)
        rows.append(f"f{i}.tif,{m},{y}")
    (tmp_path / "manifest.csv").write_text("\n".join(rows) + "\n")
    code, out, _ = run_cli(["score", *[tmp_path / f"f{i}.tif" for i in range(4)],
                            "--manifest", tmp_path / "manifest.csv",
                            "--checkpoint", untrained_checkpoint, "--device", "cpu"], capsys)
    assert code == 0
    cli = np.array([float(r["score"]) for r in parse_csv(out)])
    np.testing.assert_allclose(cli, direct, atol=1e-3)  # the CSV keeps 4 decimals

    report = evaluate_manifest(scorer, tmp_path / "manifest.csv", classical=False)
    rmse = float(np.sqrt(np.mean((direct - labels) ** 2)))
    assert abs(report["methods"]["model"]["rmse"] - rmse) < 1e-9
