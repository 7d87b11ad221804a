"""Files: atomic writes, SEM images read without changing their metadata."""

from __future__ import annotations

import os

import numpy as np
import tifffile

from napari_semfocus.io.files import atomic_write
from napari_semfocus.io.images import read_image


def test_atomic_write_gives_usual_file_mode(tmp_path):

    target = tmp_path / "out.csv"
    atomic_write(target, lambda tmp: open(tmp, "w").write("a,b\n"))
    umask = os.umask(0)
    os.umask(umask)
    assert target.read_text() == "a,b\n"
    assert (target.stat().st_mode & 0o777) == (0o666 & ~umask)


def test_reading_the_data_bar_height_leaves_the_metadata_as_read(tmp_path):
    """A file without a data-bar height in its metadata: the bar is detected on demand, the
    image's metadata is not changed by asking."""
    rng = np.random.default_rng(1)
    frame = rng.integers(40, 200, (200, 240), dtype=np.uint8)
    frame[-40:] = 0  # a black strip with some text at the bottom
    frame[-30:-20, 20:120:3] = 255
    path = tmp_path / "barred.tif"
    tifffile.imwrite(path, frame, metadata={"magnification": 3000})
    img = read_image(path)
    before = dict(img.metadata)
    assert img.databar_rows == 40 and img.databar_source == "detected"
    assert img.metadata == before
