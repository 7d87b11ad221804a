"""``semfocus report`` (issue 22): the acquisition report of a gated table, opened in a real
headless Chromium with the network off. The page is one file: every picture is a PNG data URI
and nothing else is loaded; in the browser every picture decodes (the page's own check writes
how many into the DOM), and the screenshot shows the rejected badges in red and the thumbnails.
The screenshot is live-report.png (docs/images/ by scripts/docs_images.sh).
"""

from __future__ import annotations

import re
import shutil
import subprocess

import cv2
import numpy as np
import pytest
import tifffile

from ..helpers import needs_default_model, parse_csv, run_cli, synthetic_gate
from ..watch_writer import BLURRED, MAGNIFICATION, frame

pytestmark = needs_default_model

SCREENSHOT = "live-report.png"
NAMES = ("f01.tif", "f02.tif", "f03.tif", "f05.tif", "f06.tif")
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run")
REJECT_RGB = (214, 39, 40)  # the report's "rejected" badge and threshold (#d62728)


def chromium(tmp_path, *args) -> subprocess.CompletedProcess:
    """Headless Chromium with a fresh profile, no network services, ``args`` after the flags."""
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.skip("chromium is not installed (scripts/system_packages.sh installs it)")
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    return subprocess.run([exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=120)


def test_report_is_one_offline_file_that_chromium_renders(tmp_path, capsys, screenshot_dir):
    acq = tmp_path / "acq"
    acq.mkdir()
    for name in NAMES:
        tifffile.imwrite(acq / name, frame(name))
    gate = synthetic_gate(tmp_path / "gate.json")
    table, page = tmp_path / "decisions.csv", tmp_path / "report.html"
    code, _, err = run_cli(["gate", "apply", acq, "--gate", gate, "--magnification",
                            MAGNIFICATION, "--output", table], capsys)
    assert code == 0, err
    rejected = sorted(r["path"] for r in parse_csv(table.read_text()) if r["accepted"] == "0")
    assert [p.rsplit("/", 1)[1] for p in rejected] == sorted(BLURRED)
    before = table.read_bytes()

    code, _, err = run_cli(["report", table, "--output", page, "--gate", gate], capsys)
    assert code == 0, err
    assert table.read_bytes() == before  # the input is not touched
    text = page.read_text()
    sources = re.findall(r'src="([^"]*)"', text)
    # 2 plots, then thumbnail + focus map of each rejected card and each of the lowest cards
    assert len(sources) == 2 + 2 * (len(BLURRED) + len(NAMES))
    assert all(s.startswith("data:image/png;base64,") for s in sources)
    assert not re.search(r"(href|src)=\"?(https?:|//|file:)", text) and "<link" not in text
    assert f"Rejected frames: {len(BLURRED)}" in text
    assert f"{gate.name}: " in text and "Model SHA-256" in text
    for path in rejected:
        assert path in text

    dom = chromium(tmp_path, "--virtual-time-budget=5000", "--dump-dom", page.as_uri())
    assert f'data-pictures="{len(sources)}/{len(sources)}"' in dom.stdout, dom.stderr[-2000:]

    shot = screenshot_dir / SCREENSHOT
    run = chromium(tmp_path, "--window-size=1100,1500", "--hide-scrollbars",
                   f"--screenshot={shot}", page.as_uri())
    assert shot.is_file(), run.stderr[-2000:]
    rgb = cv2.cvtColor(cv2.imread(str(shot)), cv2.COLOR_BGR2RGB).astype(int)
    assert rgb.shape[:2] == (1500, 1100) and rgb.std() > 20
    red = np.all(np.abs(rgb - REJECT_RGB) <= 12, axis=-1)
    assert red.sum() > 200  # the badges and the threshold lines
    grey = (np.ptp(rgb, axis=-1) <= 3) & (rgb[..., 0] > 20) & (rgb[..., 0] < 235)
    assert grey.sum() > 20_000  # the SEM thumbnails
