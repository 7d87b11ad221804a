"""``semfocus map``: the TIFF grid, the CSV and the overlay picture; bad input exits 2."""

from __future__ import annotations

import csv
import io

import numpy as np
import tifffile
from PIL import Image as PILImage

from napari_semfocus._sample_data import sample_path
from napari_semfocus.cli.main import main


# ---- CLI --------------------------------------------------------------------------------------
def test_cli_map_writes_tiff_csv_and_png(tmp_path, untrained_checkpoint, capsys):

    src = sample_path("half_focused.tif")
    out, table, png = tmp_path / "map.tif", tmp_path / "map.csv", tmp_path / "overlay.png"
    rc = main(["map", str(src), "--checkpoint", str(untrained_checkpoint), "--device", "cpu",
               "--magnification", "127", "--tile", "256", "256", "--stride", "128", "128",
               "--output", str(out),
               "--csv", str(table), "--png", str(png)])
    assert rc == 0
    grid = tifffile.imread(out)
    assert grid.dtype == np.float32 and grid.shape == (4, 6)  # round(512/128), round(768/128)
    rows = list(csv.DictReader(io.StringIO(table.read_text())))
    assert list(rows[0]) == ["row", "column", "y", "x", "score", "score_low", "score_high", "certainty", "weight"]
    # a model without score intervals: its tiles have none (empty cells), not made-up ones
    assert {(r["score_low"], r["score_high"], r["certainty"]) for r in rows} == {("", "", "")}
    assert len(rows) == grid.size
    np.testing.assert_allclose([float(r["score"]) for r in rows], grid.ravel(), atol=1e-3)
    pic = np.asarray(PILImage.open(png).convert("RGB")).astype(float)
    assert pic.shape[0] > 300 and pic.shape[1] > 600 and pic.std() > 20

    rc = main(["map", str(src), "--measure", "brenner", "--csv", str(table)])
    assert rc == 0 and len(table.read_text().splitlines()) == 4 * 5 + 1
    capsys.readouterr()
    assert main(["map", str(tmp_path / "missing.tif"), "--png", str(png)]) == 2
    assert main(["map", str(src), "--measure", "brenner"]) == 2  # nothing to write
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("semfocus map: error:") for line in err)
