"""The pool of real SEM micrographs that labelled examples are made from (``shared/data/sem-pool``).

:func:`load_pool` reads ``manifest.csv`` and every image through
:func:`~napari_semfocus.io.images.read_image`, turns it grey
(:func:`~napari_semfocus.io.frames.as_frames`), crops the data bar away (the manifest's
``databar_rows_bottom``, corrected in :data:`DATABAR_OVERRIDE` where the sheet showed it wrong)
and attaches a magnification, a sample type (the folder), the smallest area-downscale factor that
makes it sharp (:data:`MIN_FACTOR`) and a *group* (:func:`group_of`): files that show one field of
view (several detectors, a crop, before/after a correction) or one specimen share a group, so a
train/validation split by group never leaks a field.

Magnification, in order of preference:

1. the file's SEM metadata as :func:`~napari_semfocus.io.images.read_image` reports it (FEI: MagCanvasRealWidth/HFW,
   Zeiss: its own "Mag");
2. the old FEI "SFEG" TIFF header (``Vector.Magnification``), which ``sem_metadata`` does not parse
   yet (the ``nanoballs_sio2`` files);
3. the manifest: a magnification ("5.72 K X", "45kx (from filename)"), or an HFW / pixel size turned
   into M with the doc's 127 mm convention (:func:`scale.magnification_from_pixel_size`);
4. :data:`FOLDER_MAGNIFICATION`: a plausible value for folders that publish none (see comments).

:data:`EXCLUDED` lists the frames that are not sharp enough to be a "score 10" source; they were
chosen by eye on ``docs/images/pool-contact-sheet.png`` (:func:`pool_contact_sheet`) and on 1:1
and zoomed crops. :class:`Source` and :func:`cut_window` give the data generator its windows: a
downscaled cut-out with a margin, preferring windows with visible structure.
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
from ...io.frames import as_frames
from ...io.images import read_image
from ...io.sem_metadata import parse_zeiss_magnification
from ...scale import magnification_from_pixel_size

# Plausible magnifications for files whose folder publishes none (no metadata, nothing in the
# manifest). A rough value is enough: the doc notes that M is only a rough pixel size anyway, and
# the model sees M on a log scale. Values were judged from the visible feature sizes.
FOLDER_MAGNIFICATION = {
    # GaAs nanowire arrays, tilted view; the file names give the wire diameter (125-170 nm) and
    # the wires are ~4-5 px wide at 1:1 -> ~30 nm/px, HFW ~30 um on 1024 px -> ~4,000-5,000x
    # (127 mm convention).
    "deepsem": 5_000.0,
    # Lift-out / lamella / TEM-grid frames from an electron beam; the same repository's frames
    # that carry metadata have HFW 300 um (423x); the others show lamellae / trenches of
    # ~10-20 um in a ~100 um field -> ~1,000x.
    "fibsem_openfibsem": 1_000.0,
    # BSE cross-sections of environmental barrier coatings (whole layer stack of ~100-200 um in
    # view, pores of a few um): ~500x.
    "nasa_micronet/EBC": 500.0,
    # Ni-superalloy gamma/gamma-prime microstructure (precipitates ~0.3-1 um, 512 px frames):
    # ~5,000x. (The Super2 files carry their magnification in their names; see the manifest.)
    "nasa_micronet/Super1": 5_000.0,
    # NFFA-EUROPE SEM dataset, "particles" class: sub-micron particles; ~20,000x.
    "saemi_nffa": 20_000.0,
}

# Frames that share one field of view with another file: same group, same side of every split.
SAME_FIELD = {
    "fibresem/test2-2.tif": "fibresem/test2.tif",  # a 684 x 684 crop of test2.tif
}
_GROUP_PATTERNS = (
    # three BSE detectors of one field: ..._A_05.tif / ..._detectorA.tif
    (re.compile(r"^(sem2surface/.*?)(?:detector)?[ABC](?:_\d+)?\.tif$"), "{}"),
    # the same FIB-SEM field at the start, baseline and corrected stages
    (re.compile(r"^(fibsem_openfibsem/scratch_figure_(?:old|openfibsem)_)"), "{}"),
    # EBC cross-sections: frames of one specimen (date_sample)
    (re.compile(r"^nasa_micronet/EBC1_(?:train|test|val)_(?:S\d+_)?(\d{6}_\d+)"),
     "nasa_micronet/EBC1_{}"),
    # superalloy: frames of one spot (0 and 180 degrees)
    (re.compile(r"^nasa_micronet/Super1_(?:train|test|val)_(spot\d+)"), "nasa_micronet/Super1_{}"),
)

# Rows to cut at the bottom where the manifest's databar_rows_bottom is wrong (seen on the sheet).
DATABAR_OVERRIDE = {
    # old FEI XL data box (text on black, rows H-63..H-18) laid over the image
    **{f"nanoballs_sio2/{n}.TIF": 64 for n in (
        "R5_K3K4Me3_SiO2_2-2", "R5_K3K4Me3_SiO2_2-4", "R5_K3K4Me3_SiO2_3-1",
        "R5_K3K4Me3_SiO2_3-5", "R5_K3Me3_SiO2_2-3", "R5_K3Me3_SiO2_3-2", "R5_K3Me3_SiO2_3-3",
        "R5_K4Me3_SiO2_3-1", "R5_K4Me3_SiO2_3-2")},
    "soil_sem/soil_1_after_nacetyl.tif": 73,  # Zeiss data bar like its siblings (manifest: 0)
}
# NFFA frames had their data bar replaced by a mirror image of the rows above it (a visible seam
# and mirrored particles in the bottom ~150 rows): cut 170 rows unless the manifest says more.
SAEMI_MIRRORED_ROWS = 170

# Smallest area-downscale factor that makes a kept frame sharp (sigma <= ~0.6 px); default 1.3
# (originals may be slightly soft). Judged on 1:1 and 2x/3x zoomed crops of the sheet's frames.
DEFAULT_MIN_FACTOR = 1.3
MIN_FACTOR = {
    # edges spread over ~3-4 px at 1:1 (soft at 11-27 nm pixels)
    "lungcells_lacunarity/DC_v2__CS_DCs_12000x_C.tif": 3.0,
    "lungcells_lacunarity/DC_v2__CS_DCs_12000x_A.tif": 3.0,
    "lungcells_lacunarity/DC_v2__CS_DCs_8000x_A.tif": 3.0,
    "lungcells_lacunarity/DC_v2__NiO_DC_5000x_B.tif": 3.0,
    "lungcells_lacunarity/DC_v2__NiO_DC_5000x_A.tif": 2.0,
    "lungcells_lacunarity/DC_v2__CS_DCs_3500x_A.tif": 1.5,
    # a little soft at 1:1, sharp at 1.5x down (484 px frames allow at most ~1.64x for 256 rows)
    "nanoballs_sio2": 1.6,
    # noisy fast scans: averaging >= 2 x 2 pixels leaves them sharp and less noisy
    "fibsem_openfibsem": 2.0,
    "sem2surface/Indent": 2.0,
    # BSE cross-sections: soft at 1:1, sharp at 2.5x down
    "nasa_micronet/EBC": 2.5,
    # noisy, edges ~2 px; 512 px frames allow at most ~1.5x for 336 px wide windows
    "nasa_micronet/Super1": 1.45,
    "saemi_nffa/L2_0a111f9bab302c27064c3d9166f2afc4.jpg": 2.0,
}

# Frames left out of the sharp-source set (judged by eye on the pool contact sheet + 1:1 crops).
EXCLUDED: dict[str, str] = {
    "fibsem_openfibsem/fibsem_detection_test_image.tif":
        "noisy fast scan whose lamella edges stay soft after 2x averaging",
    "saemi_nffa/L2_0a7efff5757e6b543ee1a0d17328c881.jpg": "strongly defocused (blurred blobs)",
    "nasa_micronet/Super2_different_test_45kx_SE_15kV-etched_0.png":
        "saturated: 99.98 % of pixels are 255 (broken conversion)",
    "nasa_micronet/Super2_different_test_SE_15kv_50kx_precip-untested-2_0.png":
        "saturated: every pixel is 255 (broken conversion)",
    "nasa_micronet/Super2_different_test_lshr_15kx_3kv_0.png":
        "soft and noisy (edges ~3-4 px) and too small to downscale enough",
    "nasa_micronet/Super2_different_test_me3_15kx_3kv_2.png":
        "soft and noisy (edges ~3-4 px) and too small to downscale enough",
    "nasa_micronet/Super2_different_test_pt2_15kx_3kv_7.png":
        "soft and noisy (edges ~3-4 px) and too small to downscale enough",
    "nasa_micronet/Super1_val_spot1_180d_5.png": "softer than the rest of Super1 (edges ~3 px)",
    "nasa_micronet/Super1_val_spot1_180d_6.png": "softer than the rest of Super1 (edges ~3 px)",
    "nasa_micronet/EBC1_train_021519_3_1426C-100cyc0008.png": "still soft after 2.5x averaging",
    "nanoballs_sio2/R5_K3K4Me3_SiO2_2-2.TIF":
        "35,000x: soft particle edges (~2-3 px), frame too small to downscale >= 3x",
    "nanoballs_sio2/R5_K4Me3_SiO2_3-1.TIF":
        "35,000x: soft particle edges (~2-3 px), frame too small to downscale >= 3x",
}


def _lookup(table: dict, path: str, default=None):
    """Value of the longest key of ``table`` that ``path`` starts with (file, folder or prefix)."""
    for key in sorted(table, key=len, reverse=True):
        if path.startswith(key):
            return table[key]
    return default


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

def read_pool_manifest(pool_dir) -> list[dict]:
    """The rows of the pool's ``manifest.csv`` as they are (text)."""
    path = Path(pool_dir) / "manifest.csv"
    if not path.is_file():
        raise SemFocusError(f"{pool_dir}: no manifest.csv; is this the sem-pool folder?")
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def group_of(path: str) -> str:
    """Field-of-view group of a pool file: files of one field (several detectors, a crop, the
    same field before/after a correction) or one specimen (EBC cross-sections, superalloy spots)
    share a group, so a split by group keeps them on one side."""
    path = SAME_FIELD.get(path, path)
    for pattern, fmt in _GROUP_PATTERNS:
        m = pattern.match(path)
        if m:
            return fmt.format(*m.groups())
    return path


def folder_default_magnification(path: str) -> float | None:
    return _lookup(FOLDER_MAGNIFICATION, path)


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
    pool_dir = Path(pool_dir)
    rel = row["path"]
    img = read_image(pool_dir / rel)
    grey = as_frames(img.data, name=rel)[0]
    bar = int(DATABAR_OVERRIDE.get(rel, row.get("databar_rows_bottom") or 0))
    if rel.startswith("saemi_nffa/"):
        bar = max(bar, SAEMI_MIRRORED_ROWS)
    if bar:
        grey = grey[: grey.shape[0] - bar]
    data, bits = _to_unit(grey, img.data.dtype)
    width = int(img.data.shape[1])
    mag, how = img.magnification, "metadata"
    if not mag:
        mag, how = _sfeg_magnification(pool_dir / rel), "fei-sfeg"
    if not mag:
        mag, how = _manifest_magnification(row, width), "manifest"
    if not mag and rel in SAME_FIELD:
        other = next(r for r in read_pool_manifest(pool_dir) if r["path"] == SAME_FIELD[rel])
        mag, how = load_pool_image(pool_dir, other).magnification, "same field"
    if not mag:
        mag, how = folder_default_magnification(rel), "folder default"
    if not mag:
        raise SemFocusError(f"{rel}: no magnification in file, manifest or folder defaults.")
    return PoolImage(path=rel, sample_type=rel.split("/")[0], group=group_of(rel),
                     data=np.ascontiguousarray(data, dtype=np.float32),
                     magnification=float(mag), magnification_source=how, bit_depth=bits,
                     min_factor=float(_lookup(MIN_FACTOR, rel, DEFAULT_MIN_FACTOR)),
                     excluded=EXCLUDED.get(rel, ""))


def load_pool(pool_dir, include_excluded: bool = False) -> list[PoolImage]:
    """All pool images in manifest order (without :data:`EXCLUDED` ones unless asked)."""
    out = []
    for row in read_pool_manifest(pool_dir):
        if not include_excluded and row["path"] in EXCLUDED:
            continue
        out.append(load_pool_image(pool_dir, row))
    return out


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


def pool_contact_sheet(pool_dir, path) -> Path:
    """The sheet used to judge the pool: every image, numbered, with its sample type, its
    magnification and its min downscale factor; excluded frames crossed out in red."""
    images = load_pool(pool_dir, include_excluded=True)
    labels = [f"{i} {p.path.split('/')[-1][:20]}\n{p.sample_type[:9]} {p.magnification:.0f}x "
              f"f{p.min_factor:g}" + (" EXCL" if p.excluded else "") for i, p in enumerate(images)]
    return contact_sheet([p.data for p in images], labels, path, columns=12,
                         marks=[bool(p.excluded) for p in images])

