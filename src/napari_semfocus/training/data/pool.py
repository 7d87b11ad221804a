"""A pool of sharp SEM micrographs that labelled examples are made from: a folder of images and
a manifest CSV describing them (``semfocus make-dataset --pool DIR [--manifest CSV]``).

:func:`load_pool` reads the manifest and every image through
:func:`~napari_semfocus.io.images.read_image`, turns it grey
(:func:`~napari_semfocus.io.frames.as_frames`), cuts the data bar away and attaches a
magnification, a sample type, the smallest area-downscale factor that makes it sharp and a
*group*: files that show one field of view (several detectors, a crop, before/after a
correction) or one specimen share a group, so a train/validation split by group never leaks a
field.

The manifest's columns (only ``path`` is required; see pool-curation/README.md for the project's own):

- ``path``: the image, relative to the pool folder; its first folder is the sample type;
- ``databar_rows_bottom``: rows of the instrument's data bar to cut at the bottom (default 0);
- ``magnification``: used where the file's SEM metadata has none (after the old FEI "SFEG"
  header and ``mag_or_hfw`` / ``pixel_size``: "5.72 K X", "45kx", "HFW 138 um", "89.9 nm",
  turned into M with the doc's 127 mm convention);
- ``group``: the field-of-view group (default: the path);
- ``min_factor``: the smallest downscale that makes the frame sharp (default
  :data:`DEFAULT_MIN_FACTOR`);
- ``excluded``: why the frame is not a sharp source (empty: it is one);
- ``split``: ``val`` keeps the frame for validation only (default ``train``).

:class:`Source` and :func:`cut_window` give the data generator its windows: a downscaled cut-out
with a margin, preferring windows with visible structure.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import tifffile

from ...errors import SemFocusError
from ...io.frames import as_frames, without_databar
from ...io.images import read_image
from ...io.sem_metadata import parse_zeiss_magnification
from ...scale import magnification_from_pixel_size

# Smallest area-downscale factor that makes a frame sharp (sigma <= ~0.6 px) where the manifest
# gives none: originals may be slightly soft.
DEFAULT_MIN_FACTOR = 1.3


@dataclass
class PoolImage:
    """One pool micrograph, grey, data bar removed, intensities scaled to [0, 1]."""

    path: str  # relative to the pool folder (the manifest's path) = the source id
    sample_type: str  # the folder
    group: str  # field-of-view group: split by this
    data: np.ndarray  # float32 (H, W) in [0, 1]
    magnification: float
    magnification_source: str  # "metadata", "fei-sfeg", "manifest", "folder default"
    bit_depth: int
    min_factor: float = DEFAULT_MIN_FACTOR  # smallest downscale that makes it sharp
    excluded: str = ""  # reason, or "" for a sharp source
    split: str = "train"  # "val": validation only

def read_pool_manifest(pool_dir, manifest=None) -> list[dict]:
    """The rows of the pool's manifest (``manifest``, default ``pool_dir/manifest.csv``) as
    they are (text)."""
    if Path(pool_dir).is_file():
        raise SemFocusError(f"{pool_dir} is a file, not a folder; give the pool's folder.")
    if not Path(pool_dir).is_dir():
        raise SemFocusError(f"{pool_dir} does not exist; give the pool's folder.")
    path = Path(manifest) if manifest is not None else Path(pool_dir) / "manifest.csv"
    if not path.is_file():
        raise SemFocusError(f"{path}: no such manifest; a pool is a folder of images with a "
                            "manifest.csv (path, magnification, ...).")
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if rows and "path" not in rows[0]:
        raise SemFocusError(f"{path}: the manifest has no 'path' column.")
    return rows


def _sfeg_magnification(path: Path) -> float | None:
    """Magnification from the old FEI SFEG header (``Vector.Magnification``), if any."""
    if path.suffix.lower() not in (".tif", ".tiff"):
        return None
    try:
        with tifffile.TiffFile(path) as tif:
            vec = (tif.fei_metadata or {}).get("Vector", {})
            mag = float(vec.get("Magnification", 0) or 0)
    except Exception:
        return None
    return mag if mag > 0 else None


_LEN = {"nm": 1e-9, "um": 1e-6, "µm": 1e-6, "mm": 1e-3}


def _manifest_magnification(row: dict, width_px: int) -> float | None:
    text = (row.get("mag_or_hfw") or "").strip()
    m = re.match(r"^([0-9.]+)\s*k\s*x", text, re.I)
    if m:  # "45kx (from filename)"
        return float(m.group(1)) * 1e3
    mag = parse_zeiss_magnification(text) if text else None
    if mag:
        return mag
    m = re.match(r"^HFW\s+([0-9.]+)\s*(nm|um|µm|mm)", text)
    if m:
        return magnification_from_pixel_size(float(m.group(1)) * _LEN[m.group(2)] / width_px,
                                              width_px)
    m = re.match(r"^([0-9.]+)\s*(nm|um|µm)", (row.get("pixel_size") or "").strip())
    if m:
        return magnification_from_pixel_size(float(m.group(1)) * _LEN[m.group(2)], width_px)
    return None


def _to_unit(grey: np.ndarray, dtype) -> tuple[np.ndarray, int]:
    if np.issubdtype(dtype, np.integer):
        bits = 16 if np.iinfo(dtype).max > 255 else 8
        return grey / float(2**bits - 1), bits
    lo, hi = float(grey.min()), float(grey.max())
    return (grey - lo) / max(hi - lo, 1e-12), 32


def load_pool_image(pool_dir, row: dict) -> PoolImage:
    """One manifest ``row``'s image, grey, without its data bar, in [0, 1]."""
    pool_dir = Path(pool_dir)
    rel = row["path"]
    img = read_image(pool_dir / rel)
    grey = without_databar(as_frames(img.data, name=rel)[0],
                           int(row.get("databar_rows_bottom") or 0))
    data, bits = _to_unit(grey, img.data.dtype)
    width = int(img.data.shape[1])
    mag, how = img.magnification, "metadata"
    if not mag:
        mag, how = _sfeg_magnification(pool_dir / rel), "fei-sfeg"
    if not mag:
        mag, how = _manifest_magnification(row, width), "manifest"
    if not mag and (row.get("magnification") or "").strip():
        mag, how = float(row["magnification"]), "manifest magnification"
    if not mag:
        raise SemFocusError(f"{rel}: no magnification in the file or the manifest.")
    return PoolImage(path=rel, sample_type=rel.split("/")[0], group=row.get("group") or rel,
                     data=np.ascontiguousarray(data, dtype=np.float32),
                     magnification=float(mag), magnification_source=how, bit_depth=bits,
                     min_factor=float(row.get("min_factor") or DEFAULT_MIN_FACTOR),
                     excluded=row.get("excluded") or "", split=row.get("split") or "train")


def load_pool(pool_dir, include_excluded: bool = False, manifest=None) -> list[PoolImage]:
    """All pool images in manifest order (without the excluded ones unless asked)."""
    rows = read_pool_manifest(pool_dir, manifest)
    return [load_pool_image(pool_dir, row) for row in rows
            if include_excluded or not row.get("excluded")]


# ---- sources of examples: windows at a downscale ------------------------------------------------
CONTENT_MIN = 0.06  # smoothed-window std / source range below which a window counts as empty


class Source:
    """A sharp source: pool image (known M) or procedural scene (M drawn per example)."""

    def __init__(self, source, sample_type, series, data, magnification, min_factor, kind):
        self.source, self.sample_type, self.series = source, sample_type, series
        self.data = np.ascontiguousarray(data, dtype=np.float32)
        self.magnification, self.min_factor, self.kind = magnification, min_factor, kind
        lo, hi = np.percentile(self.data[::2, ::2], [0.5, 99.5])
        self.range = max(float(hi - lo), 1e-3)

    @classmethod
    def from_pool(cls, p) -> Source:
        return cls(p.path, p.sample_type, p.group, p.data, p.magnification, p.min_factor, "pool")

    def max_factor(self, size_hw) -> float:
        return min(self.data.shape[0] / size_hw[0], self.data.shape[1] / size_hw[1])


def usable_sources(sources, size_hw) -> list[Source]:
    """Sources big enough to give a sharp window (downscaled by at least their min factor)."""
    return [s for s in sources if s.max_factor(size_hw) >= s.min_factor]


def content(window: np.ndarray, source_range: float) -> float:
    """Structure in a window: std of its Gaussian-smoothed (sigma 2 px) version / source range."""
    return float(cv2.GaussianBlur(window, (0, 0), 2.0).std()) / source_range


def cut_window(src: Source, factor: float, size_hw, margin: int, rng, tries: int = 8):
    """Area-downscale by ``factor`` a window of ``size_hw`` plus up to ``margin`` px around it
    (as far as the image reaches); prefers windows with content. -> (region, (oy, ox))."""
    H, W = src.data.shape
    h, w = size_hw
    Hd, Wd = max(h, int(H / factor)), max(w, int(W / factor))
    best = None
    for _ in range(tries):
        y, x = int(rng.integers(0, Hd - h + 1)), int(rng.integers(0, Wd - w + 1))
        y0, x0 = max(0, y - margin), max(0, x - margin)
        y1, x1 = min(Hd, y + h + margin), min(Wd, x + w + margin)
        crop = src.data[int(round(y0 * factor)) : min(H, int(round(y1 * factor))),
                        int(round(x0 * factor)) : min(W, int(round(x1 * factor)))]
        if crop.shape == (y1 - y0, x1 - x0):
            region = crop.copy()
        else:
            region = cv2.resize(crop, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA)
        off = (y - y0, x - x0)
        c = content(region[off[0] : off[0] + h, off[1] : off[1] + w], src.range)
        if c >= CONTENT_MIN:
            return region, off
        if best is None or c > best[0]:
            best = (c, region, off)
    return best[1], best[2]


def contact_sheet(images, labels, path, width: int = 1600, columns: int = 10,
                  marks=None) -> Path:
    """Save a grid of small thumbnails with a label under each (8-bit PNG).

    ``images`` are 2-D arrays (any range: each is stretched by its 0.5/99.5 percentiles);
    ``marks`` is an optional list of booleans: marked thumbnails get a red frame and cross.
    """
    cell_w = width // columns
    thumbs = []
    for img in images:
        a = np.asarray(img, dtype=np.float32)
        lo, hi = np.percentile(a, [0.5, 99.5])
        a = np.clip((a - lo) / max(hi - lo, 1e-6) * 255, 0, 255).astype(np.uint8)
        h = max(1, round(a.shape[0] * cell_w / a.shape[1]))
        t = cv2.resize(a, (cell_w, h), interpolation=cv2.INTER_AREA)
        thumbs.append((t // 8) * 8 + 4)  # 32 grey levels: a much smaller PNG, same look
    cell_h = max(t.shape[0] for t in thumbs) + 26
    rows = -(-len(thumbs) // columns)
    sheet = np.full((rows * cell_h, columns * cell_w, 3), 255, np.uint8)
    for i, (t, text) in enumerate(zip(thumbs, labels, strict=True)):
        y, x = (i // columns) * cell_h, (i % columns) * cell_w
        sheet[y : y + t.shape[0], x : x + cell_w] = t[..., None]
        if marks is not None and marks[i]:
            cv2.rectangle(sheet, (x + 1, y + 1), (x + cell_w - 2, y + t.shape[0] - 2),
                          (0, 0, 255), 3)
            cv2.line(sheet, (x, y), (x + cell_w - 1, y + t.shape[0] - 1), (0, 0, 255), 2)
        for k, line in enumerate(str(text).split("\n")[:2]):
            cv2.putText(sheet, line[:26], (x + 2, y + t.shape[0] + 10 + 11 * k),
                        cv2.FONT_HERSHEY_SIMPLEX, 0.33, (0, 0, 0), 1, cv2.LINE_AA)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), sheet, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    return path


def pool_contact_sheet(pool_dir, path, manifest=None) -> Path:
    """The sheet used to judge the pool: every image, numbered, with its sample type, its
    magnification and its min downscale factor; excluded frames crossed out in red."""
    images = load_pool(pool_dir, include_excluded=True, manifest=manifest)
    labels = [f"{i} {p.path.split('/')[-1][:20]}\n{p.sample_type[:9]} {p.magnification:.0f}x "
              f"f{p.min_factor:g}" + (" EXCL" if p.excluded else "") for i, p in enumerate(images)]
    return contact_sheet([p.data for p in images], labels, path, columns=12,
                         marks=[bool(p.excluded) for p in images])

