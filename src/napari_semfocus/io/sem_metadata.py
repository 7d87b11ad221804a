"""SEM vendor metadata of TIFF files: FEI/Thermo Fisher and Zeiss through tifffile's parsers;
Tescan, Fibics/Atlas (TIFF tags), JEOL and Hitachi (``.txt`` sidecars) through
:mod:`.vendor_metadata`.

:func:`read_sem_metadata` returns a flat dict with the fields napari-semfocus uses, or ``{}`` for
files without SEM metadata:

- ``vendor``: "FEI/Thermo Fisher", "Zeiss", "Tescan", "Fibics/Atlas", "JEOL" or "Hitachi"
- ``magnification``: as the instrument reports it (FEI: display width / horizontal field width)
- ``pixel_size_m``: pixel size in metres
- ``hfw_m``: horizontal field width in metres
- ``voltage_kv``, ``working_distance_mm``, ``detector``
- ``databar_rows``: rows of the vendor's data bar at the bottom of the stored image (FEI, Tescan;
  ``None`` where the file does not say: see :func:`.databar.detect_databar_rows`)
"""

from __future__ import annotations

from ..scale import magnification_from_text
from .vendor_metadata import from_fibics, from_sidecar, from_tescan

VENDOR_FEI = "FEI/Thermo Fisher"
VENDOR_ZEISS = "Zeiss"


def read_sem_metadata(tif, path=None) -> dict:
    """Metadata of an open ``tifffile.TiffFile`` (or ``{}`` when it has none); ``path``, the
    file's path, is where a JEOL or Hitachi ``.txt`` sidecar is looked for."""
    for attribute, convert in (("fei_metadata", _from_fei), ("sem_metadata", _from_zeiss)):
        try:
            tags = getattr(tif, attribute)  # tifffile parses the vendor tag on access
        except Exception:
            tags = None
        if tags:
            return convert(tags, tif.pages[0].shape)
    for parse in (from_tescan, from_fibics):
        try:
            meta = parse(tif)
        except Exception:
            meta = {}
        if meta:
            return meta
    try:
        return from_sidecar(path, tif.pages[0].shape)
    except (OSError, ValueError):
        return {}


def _num(value):
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if v == v else None


def _from_fei(fei: dict, shape) -> dict:
    scan, ebeam, beam = fei.get("Scan", {}), fei.get("EBeam", {}), fei.get("Beam", {})
    image, det = fei.get("Image", {}), fei.get("Detectors", {})
    out = {"vendor": VENDOR_FEI}
    pixel = _num(scan.get("PixelWidth"))
    hfw = _num(ebeam.get("HFW")) or _num(scan.get("HorFieldsize"))
    if pixel:
        out["pixel_size_m"] = pixel
    if hfw:
        out["hfw_m"] = hfw
        canvas = _num(image.get("MagCanvasRealWidth")) or 0.127
        out["magnification"] = canvas / hfw
    hv = _num(ebeam.get("HV")) or _num(beam.get("HV"))
    if hv:
        out["voltage_kv"] = hv / 1000.0
    wd = _num(ebeam.get("WD"))
    if wd:
        out["working_distance_mm"] = wd * 1000.0
    if det.get("Name"):
        out["detector"] = f"{det.get('Name')} {det.get('Mode', '')}".strip()
    res_y = _num(image.get("ResolutionY"))
    if res_y and len(shape) >= 2 and shape[0] > res_y:
        out["databar_rows"] = int(shape[0] - res_y)
    else:
        out["databar_rows"] = 0
    return out


_LENGTH_TO_M = {"pm": 1e-12, "nm": 1e-9, "µm": 1e-6, "um": 1e-6, "mm": 1e-3, "m": 1.0}


def parse_zeiss_magnification(text) -> float | None:
    """'5.72 K X' -> 5720.0; '250 X' -> 250.0; returns None when unparsable."""
    if isinstance(text, (int, float)):
        return float(text) or None
    return magnification_from_text(text, require_x=True)


def _zeiss_value(sem: dict, key: str):
    """(value, unit) of a Zeiss ``ap_*`` entry, or (None, None)."""
    entry = sem.get(key)
    if not isinstance(entry, tuple) or len(entry) < 2:
        return None, None
    return entry[1], (entry[2] if len(entry) > 2 else "")


def _from_zeiss(sem: dict, shape) -> dict:
    out = {"vendor": VENDOR_ZEISS, "databar_rows": None}
    mag, _ = _zeiss_value(sem, "ap_mag")
    mag = parse_zeiss_magnification(mag) if mag is not None else None
    if mag:
        out["magnification"] = mag
    px, unit = _zeiss_value(sem, "ap_image_pixel_size")
    if px is None:
        px, unit = _zeiss_value(sem, "ap_pixel_size")
    px = _num(px)
    if px and unit in _LENGTH_TO_M:
        out["pixel_size_m"] = px * _LENGTH_TO_M[unit]
        if len(shape) >= 2:
            out["hfw_m"] = out["pixel_size_m"] * shape[1]
    kv, unit = _zeiss_value(sem, "ap_actualkv")
    if _num(kv):
        out["voltage_kv"] = _num(kv) * (1e-3 if unit == "V" else 1.0)
    wd, unit = _zeiss_value(sem, "ap_wd")
    if _num(wd):
        out["working_distance_mm"] = _num(wd) * (1e3 if unit == "m" else 1.0)
    det = sem.get("dp_detector_type")
    if isinstance(det, tuple) and len(det) > 1:
        out["detector"] = str(det[1])
    return out
