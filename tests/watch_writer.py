"""A simulated acquisition for the ``semfocus watch`` tests, run as its own process:

    python tests/watch_writer.py FOLDER PHASE

writes the frames of PHASE (see :data:`PHASES`) into FOLDER as acquisition software does: in
chunks with pauses (one pause longer than the watch's settle time), renamed into place from
``.part``, a corrupt file, a file deleted before it is complete. Frames are 240 x 320 uint16
crops of the SEM sample, some blurred (those a gate rejects). ``frame(name)`` gives the pixels.
"""

from __future__ import annotations

import io
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import tifffile

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data" / "sem_image.tif"
MAGNIFICATION = 3250  # the sample's
BLURRED = {"f02.tif": 4.0, "f05.tif": 3.0}  # sigma in pixels; the other frames are sharp
# (kind, name): "plain" written at once, "chunks" in 8 chunks 50 ms apart, "pause" with a
# 0.7 s pause halfway, "rename" as NAME.part then renamed, "corrupt" garbage that never
# completes, "deleted" half a frame deleted after 0.8 s
PHASES = {
    "backlog": [("plain", "f00.tif")],
    "live": [("deleted", "gone.tif"), ("chunks", "f01.tif"), ("pause", "f02.tif"),
             ("rename", "f03.tif"), ("corrupt", "bad.png"), ("chunks", "f04.tif"),
             ("chunks", "f05.tif")],
    "after": [("rename", "f06.tif")],
}
GOOD = ["f00.tif", "f01.tif", "f02.tif", "f03.tif", "f04.tif", "f05.tif", "f06.tif"]


def frame(name: str, shape=(240, 320)) -> np.ndarray:
    """The pixels of frame ``name``: a crop of the sample (its place set by the name), blurred
    for the names in :data:`BLURRED`, scaled to 16 bits."""
    data = tifffile.imread(SAMPLE).astype(np.float32)
    k = sum(name.encode()) % 7
    y, x = 20 + 25 * k, 30 + 40 * k
    crop = data[y: y + shape[0], x: x + shape[1]]
    if name in BLURRED:
        crop = cv2.GaussianBlur(crop, (0, 0), BLURRED[name])
    return np.clip(crop * 257, 0, 65535).astype(np.uint16)


def tiff_bytes(name: str, shape=(240, 320)) -> bytes:
    buf = io.BytesIO()
    tifffile.imwrite(buf, frame(name, shape))
    return buf.getvalue()


def write_chunks(path: Path, data: bytes, chunks: int = 8, pause: float = 0.05,
                 long_pause_at: int | None = None, long_pause: float = 0.7) -> None:
    """Write ``data`` to ``path`` in ``chunks`` pieces, flushed, ``pause`` seconds apart (and
    ``long_pause`` after piece ``long_pause_at``)."""
    step = -(-len(data) // chunks)
    with open(path, "wb") as fh:
        for k in range(chunks):
            fh.write(data[k * step: (k + 1) * step])
            fh.flush()
            time.sleep(long_pause if k == long_pause_at else pause)


def write(folder: Path, kind: str, name: str) -> None:
    path = folder / name
    if kind == "plain":
        path.write_bytes(tiff_bytes(name))
    elif kind == "chunks":
        write_chunks(path, tiff_bytes(name))
    elif kind == "pause":
        write_chunks(path, tiff_bytes(name), long_pause_at=3)
    elif kind == "rename":
        part = folder / (name + ".part")
        write_chunks(part, tiff_bytes(name))
        os.rename(part, path)
    elif kind == "corrupt":
        path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8)
    elif kind == "deleted":
        data = tiff_bytes(name)
        path.write_bytes(data[: len(data) // 2])
        time.sleep(0.8)
        path.unlink()
    else:
        raise ValueError(kind)


def main(folder: str, phase: str) -> None:
    for kind, name in PHASES[phase]:
        write(Path(folder), kind, name)
        time.sleep(0.1)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
