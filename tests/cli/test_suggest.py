"""``semfocus suggest``: the CSV contract (path, index, best first, N distinct frames) and the
refusals: an existing --output without --overwrite, an output that is an input."""

from __future__ import annotations

import numpy as np
import tifffile

from ..helpers import PLAIN_PNG, needs_default_model, parse_csv, run_cli

COLUMNS = "rank,path,index,magnification,score,score_low,score_high,informativeness"


@needs_default_model
def test_suggest_csv_contract_and_overwrite_refusal(blur_series, tmp_path, capsys):
    _, frames = blur_series
    stack = tmp_path / "stack.tif"
    tifffile.imwrite(stack, (255 * frames[:, :240, :320] / frames.max()).astype(np.uint8))
    annotations = tmp_path / "done.csv"
    annotations.write_text(f"path,slice,magnification,score\n{stack},0,6000,9\n")
    out = tmp_path / "picks.csv"
    args = ["suggest", stack, PLAIN_PNG, "--magnification", "6000", "--n", "4", "--device",
            "cpu", "--annotations", annotations, "--output", out]
    code, _, err = run_cli(args, capsys)
    assert code == 0, err
    text = out.read_text()
    assert text.splitlines()[0] == COLUMNS
    rows = parse_csv(text)
    assert [r["rank"] for r in rows] == ["1", "2", "3", "4"]
    keys = [(r["path"], int(r["index"])) for r in rows]
    assert len(set(keys)) == 4 and (str(stack), 0) not in keys  # annotated: left out
    assert {p for p, _ in keys} <= {str(stack), str(PLAIN_PNG)}
    info = [float(r["informativeness"]) for r in rows]
    assert info[0] == max(info)
    assert all(float(r["score_low"]) <= float(r["score"]) <= float(r["score_high"]) for r in rows)

    # an existing output is refused (experts fill such lists in) unless --overwrite
    out.write_text("rank,path,index,score\n1,x.tif,0,7\n")
    code, _, err = run_cli(args, capsys)
    assert code == 2 and "already exists: pass --overwrite" in err
    assert out.read_text() == "rank,path,index,score\n1,x.tif,0,7\n"
    code, _, err = run_cli([*args, "--overwrite"], capsys)
    assert code == 0, err
    assert out.read_text().startswith(COLUMNS)
    # ... and an output that is an input, always
    code, _, err = run_cli([*args[:-1], annotations, "--overwrite"], capsys)
    assert code == 2 and "refusing to overwrite an input" in err
    assert annotations.read_text().startswith("path,slice,magnification,score")
