"""Reading image files: TIFF (8/16-bit, stacks, SEM vendor metadata), PNG and JPEG.

:func:`read_image` is the one reader the CLI, the napari reader, the sample data and the training
data use; :func:`read_frames` gives a file's grey frames without its data bar.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import tifffile

from ..errors import ImageReadError, SemFocusError, SemFocusWarning
from .databar import detect_databar_rows
from .files import existing_file
from .frames import as_frames, without_databar
from .sem_metadata import read_sem_metadata

TIFF_SUFFIXES = (".tif", ".tiff")
OTHER_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
IMAGE_SUFFIXES = TIFF_SUFFIXES + OTHER_SUFFIXES


@dataclass
class SEMImage:
    """Pixel data as stored (2-D, (N, H, W) or RGB) and the SEM metadata found in the file."""

    data: np.ndarray
    metadata: dict = field(default_factory=dict)
    path: Path | None = None

    @property
    def magnification(self) -> float | None:
        return self.metadata.get("magnification")

    @functools.cached_property
    def databar_rows(self) -> int:
        """Rows of the vendor data bar at the bottom: from the metadata (FEI), else detected
        (a uniform strip with text) the first time it is asked for. ``metadata`` is not changed."""
        rows = self.metadata.get("databar_rows")
        if rows is None:
            rows = detect_databar_rows(self.data, str(self.path or "image"))
        return int(rows)

    @property
    def databar_source(self) -> str:
        """"metadata" when the file gives the data bar's height, "detected" otherwise."""
        return "detected" if self.metadata.get("databar_rows") is None else "metadata"


def read_image(path) -> SEMImage:
    """Read one image file; raises :class:`ImageReadError` naming the file on any problem."""
    path = existing_file(path, error=ImageReadError)
    suffix = path.suffix.lower()
    if suffix in TIFF_SUFFIXES:
        data, meta = _read_tiff(path)
    elif suffix in OTHER_SUFFIXES:
        data, meta = _read_other(path), {}
    else:
        raise ImageReadError(
            f"{path}: unsupported file type {suffix or '(none)'}; use TIFF, PNG or JPEG."
        )
    if data.ndim < 2 or data.size == 0:
        raise ImageReadError(f"{path}: holds no 2-D image data (shape {data.shape}).")
    return SEMImage(data=data, metadata=meta, path=path)


def read_file_metadata(path) -> dict:
    """The SEM metadata of an image file without reading its pixels (``{}`` when the file has
    none, is not a TIFF, or cannot be read): what :func:`read_image` would put into
    ``SEMImage.metadata``. For layers that another reader (napari's own) opened."""
    path = Path(path)
    if path.suffix.lower() not in TIFF_SUFFIXES or not path.is_file():
        return {}
    try:
        with tifffile.TiffFile(path) as tif:
            return read_sem_metadata(tif, path) or _json_metadata(tif)
    except Exception:
        return {}


def read_frames(path) -> np.ndarray:
    """The grey float32 frames (N, H, W) of an image file, its data bar left out."""
    img = read_image(path)
    return without_databar(as_frames(img.data, str(path)), img.databar_rows)


def expand_folders(paths) -> list[str]:
    """Files as given; a folder gives its image files (TIFF, PNG, JPEG; not its subfolders),
    sorted by name."""
    out = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            files = sorted(f for f in path.iterdir()
                           if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
            if not files:
                raise SemFocusError(f"{p}: the folder holds no TIFF, PNG or JPEG images.")
            out.extend(str(f) for f in files)
        else:
            out.append(str(p))
    return out


def _read_tiff(path: Path):
    try:
        with tifffile.TiffFile(path) as tif:
            meta = read_sem_metadata(tif, path) or _json_metadata(tif)
            series = tif.series[0]
            data = series.asarray()
            skipped = _pages_of_other_sizes(tif, series)
            if data.ndim == 3 and series.axes[-1:] == "S" and data.shape[-1] in (3, 4):
                pass  # RGB(A), kept channel-last
            elif data.ndim > 3:
                data = data.reshape((-1,) + data.shape[-2:]) if data.shape[-1] not in (3, 4) else data
    except ImageReadError:
        raise
    except Exception as exc:
        raise ImageReadError(f"{path}: not a readable TIFF file ({_short(exc)}).") from None
    if skipped:
        h, w = series.keyframe.shape[:2]
        sizes = ", ".join(dict.fromkeys(f"{s[0]} x {s[1]}" for s in skipped))
        warnings.warn(SemFocusWarning(
            f"{path} holds pages of different sizes: only those of page 1's size ({h} x {w}) are "
            f"read, {len(skipped)} other {'page is' if len(skipped) == 1 else 'pages are'} not "
            f"({sizes}); save them as separate files to score them."),
            stacklevel=3)
    return np.asarray(data), meta


def _pages_of_other_sizes(tif, series) -> list[tuple]:
    """Shapes of the pages not of the first page's size (thumbnails and masks aside): pages that
    ``series`` leaves out."""
    shape = series.keyframe.shape
    return [page.shape for page in tif.pages
            if page.shape != shape and not getattr(page, "subfiletype", 0) & 0b101]


def _json_metadata(tif) -> dict:
    """SEM fields a TIFF written by tifffile keeps in its JSON description (our sample data,
    or files written with ``tifffile.imwrite(..., metadata={"magnification": ...})``)."""
    try:
        shaped = tif.shaped_metadata
    except Exception:
        return {}
    if not shaped:
        return {}
    return {k: v for k, v in dict(shaped[0]).items() if k != "shape"}


def _read_other(path: Path) -> np.ndarray:
    raw = np.fromfile(str(path), dtype=np.uint8)
    data = cv2.imdecode(raw, cv2.IMREAD_UNCHANGED) if raw.size else None
    if data is None:
        raise ImageReadError(f"{path}: not a readable {path.suffix.lstrip('.').upper()} image.")
    if data.ndim == 3:
        code = cv2.COLOR_BGRA2RGBA if data.shape[2] == 4 else cv2.COLOR_BGR2RGB
        data = cv2.cvtColor(data, code)
        if data.shape[2] == 3 and _is_grey(data):
            data = data[..., 0].copy()
    return data


def _is_grey(rgb: np.ndarray) -> bool:
    s = rgb[::7, ::7]
    return bool(np.array_equal(s[..., 0], s[..., 1]) and np.array_equal(s[..., 1], s[..., 2]))


def _short(exc: Exception) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:160]
