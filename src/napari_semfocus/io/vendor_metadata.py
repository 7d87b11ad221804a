"""SEM metadata of the vendors tifffile does not parse: JEOL, Hitachi, Tescan and Fibics/Atlas.

Each function returns the same flat fields as :mod:`.sem_metadata` (``vendor``,
``magnification``, ``pixel_size_m``, ``hfw_m``, ``voltage_kv``, ``working_distance_mm``,
``detector``, ``databar_rows``) or ``{}`` when the file is not of that vendor:

- JEOL: a ``.txt`` sidecar beside the image, ``$KEY value`` lines (``$CM_MAG 50``,
  ``$CM_ACCEL_VOLT 5.00`` kV, ``$$SM_WD 9.07`` mm); the pixel size only when the sidecar gives the
  micron marker's length in pixels (``$$SM_MICRON_BAR``) beside its length (``$$SM_MICRON_MARKER``).
- Hitachi: a ``.txt`` sidecar of ``Key=Value`` lines under ``[SemImageFile]``
  (``Magnification=``, ``PixelSize=`` in nanometres, ``AcceleratingVoltage=5000 Volt``,
  ``WorkingDistance=8500 um``, ``SignalName=``; ``DataSize=1280x960``: the image area, so rows
  below it are the data bar).
- Tescan: private TIFF tag 50431, a binary blob (a preview image) followed by ``key=value`` lines
  (``Magnification=108.08``, ``PixelSizeX=2.5012e-6`` m, ``HV=10.0e3`` V, ``WD=13.25e-3`` m,
  ``ImageStripSize=120``: the rows of the data bar).
- Fibics/Atlas: XML in TIFF tag 51023 (``<Fibics>``; ``<Scan>`` with ``<Ux>`` .. ``<Vy>``: the
  pixel-to-micrometre transform, ``<FOV_X>`` in µm, ``<Mag>`` where written).

Magnification is as the instrument reports it; where a file gives only a field width (Fibics
without ``<Mag>``) it is the 127 mm Polaroid width over it, as for FEI files.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from pathlib import Path

from ..scale import POLAROID_WIDTH_M

VENDOR_JEOL = "JEOL"
VENDOR_HITACHI = "Hitachi"
VENDOR_TESCAN = "Tescan"
VENDOR_FIBICS = "Fibics/Atlas"

TESCAN_TAG = 50431
FIBICS_TAG = 51023


def _num(text) -> float | None:
    m = re.match(r"\s*([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)", str(text or ""))
    if not m:
        return None
    v = float(m.group(1))
    return v if math.isfinite(v) else None


def _finish(out: dict, width: int | None) -> dict:
    """Drop empty fields; field width from the pixel size and the image width."""
    out = {k: v for k, v in out.items() if v is not None and v != ""}
    if out.get("pixel_size_m") and width and "hfw_m" not in out:
        out["hfw_m"] = out["pixel_size_m"] * width
    if not out.get("magnification") or out["magnification"] <= 0:
        out.pop("magnification", None)
    return out


# ---- sidecars (JEOL, Hitachi) -------------------------------------------------------------------
def sidecar_path(path) -> Path | None:
    """The ``.txt`` beside an image (``image.tif`` -> ``image.txt``), or None."""
    if path is None:
        return None
    path = Path(path)
    for suffix in (".txt", ".TXT"):
        side = path.with_suffix(suffix)
        if side.is_file():
            return side
    return None


def from_sidecar(path, shape) -> dict:
    """JEOL or Hitachi metadata from the ``.txt`` beside ``path`` ({} when there is none)."""
    side = sidecar_path(path)
    if side is None or side.stat().st_size > 1_000_000 or len(shape) < 2:
        return {}
    text = side.read_bytes().decode("latin-1")
    if re.search(r"^\$CM_MAG\s", text, re.M):
        return from_jeol_text(text, int(shape[1]))
    if re.search(r"^\s*Magnification\s*=", text, re.M | re.I):
        return from_hitachi_text(text, (int(shape[0]), int(shape[1])))
    return {}


def _jeol_fields(text: str) -> dict:
    fields = {}
    for line in text.splitlines():
        m = re.match(r"\s*\${1,2}(\w+)\s?(.*)$", line)
        if m:
            fields.setdefault(m.group(1), m.group(2).strip())
    return fields


_MARKER_UNITS = {"nm": 1e-9, "um": 1e-6, "µm": 1e-6, "mm": 1e-3}
JEOL_DISPLAY_WIDTH_M = 0.128  # the display width JEOL's magnification refers to


def from_jeol_text(text: str, width: int | None = None) -> dict:
    f = _jeol_fields(text)
    out = {"vendor": VENDOR_JEOL, "databar_rows": None, "magnification": _num(f.get("CM_MAG")),
           "voltage_kv": _num(f.get("CM_ACCEL_VOLT")),
           "working_distance_mm": _num(f.get("SM_WD")),
           "detector": f.get("CM_DETECTOR_NAME") or f.get("CM_SIGNAL_NAME")}
    marker = re.fullmatch(r"([0-9.]+)\s*(nm|um|µm|mm)", f.get("SM_MICRON_MARKER", ""))
    bar_px = _num(f.get("SM_MICRON_BAR"))
    full_width = _num((f.get("CM_FULL_SIZE") or "").split(" ")[0]) or width
    if marker and bar_px:
        out["pixel_size_m"] = float(marker.group(1)) * _MARKER_UNITS[marker.group(2)] / bar_px
    elif out["magnification"] and full_width:
        # JEOL's magnification is that of a 128 mm wide display of the full scan: on the real
        # 4700F file its burned-in 500 um marker ($$SM_MICRON_MARKER) is 250 px long at x50
        # over 1280 px, i.e. 128 mm / (50 x 1280 px) = 2.000 um per pixel
        out["pixel_size_m"] = JEOL_DISPLAY_WIDTH_M / (out["magnification"] * full_width)
    return _finish(out, width)


def from_hitachi_text(text: str, shape: tuple[int, int] | None = None) -> dict:
    f = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            f.setdefault(key.strip().lower(), value.strip())
    pixel_nm = _num(f.get("pixelsize"))
    volt = _num(f.get("acceleratingvoltage"))
    wd = _num(f.get("workingdistance"))
    wd_unit = f.get("workingdistance", "").split()[-1:] or ["mm"]
    out = {"vendor": VENDOR_HITACHI, "databar_rows": None,
           "magnification": _num(f.get("magnification")),
           "pixel_size_m": pixel_nm * 1e-9 if pixel_nm else None,
           "voltage_kv": volt / 1000.0 if volt else None,
           "working_distance_mm": (wd / 1000.0 if wd_unit[0].lower() == "um" else wd) if wd else None,
           "detector": f.get("signalname")}
    size = re.fullmatch(r"(\d+)\s*x\s*(\d+)", f.get("datasize", ""))
    if size and shape and int(size.group(1)) == shape[1] and int(size.group(2)) <= shape[0]:
        out["databar_rows"] = shape[0] - int(size.group(2))
    return _finish(out, shape[1] if shape else None)


# ---- TIFF tags (Tescan, Fibics) -----------------------------------------------------------------
def _tag_value(tif, code: int):
    tag = tif.pages[0].tags.get(code)
    return None if tag is None else tag.value


def from_tescan(tif) -> dict:
    """Tescan metadata of an open ``tifffile.TiffFile`` ({} without tag 50431)."""
    raw = _tag_value(tif, TESCAN_TAG)
    if not isinstance(raw, (bytes, bytearray)):
        return {}
    f = {}
    for m in re.finditer(rb"(?m)^([A-Za-z][A-Za-z0-9_]*)=([^\r\n\x00]*)", bytes(raw)):
        f.setdefault(m.group(1).decode("ascii"), m.group(2).decode("latin-1").strip())
    if "Magnification" not in f and "PixelSizeX" not in f:
        return {}
    shape = tif.pages[0].shape
    hv, wd, strip = _num(f.get("HV")), _num(f.get("WD")), _num(f.get("ImageStripSize"))
    out = {"vendor": VENDOR_TESCAN, "magnification": _num(f.get("Magnification")),
           "pixel_size_m": _num(f.get("PixelSizeX")),
           "voltage_kv": hv / 1000.0 if hv else None,
           "working_distance_mm": wd * 1000.0 if wd else None,
           "detector": f.get("Detector"),
           "databar_rows": int(strip) if strip is not None and 0 <= strip < shape[0] else None}
    return _finish(out, int(shape[1]) if len(shape) >= 2 else None)


def from_fibics(tif) -> dict:
    """Fibics/Atlas metadata of an open ``tifffile.TiffFile`` ({} without its XML tag)."""
    raw = _tag_value(tif, FIBICS_TAG)
    if raw is None:
        return {}
    try:
        root = ET.fromstring(raw.encode("latin-1") if isinstance(raw, str) else bytes(raw))
    except (ET.ParseError, UnicodeEncodeError, TypeError):
        return {}
    if root.tag != "Fibics":
        return {}
    scan = root.find("Scan")
    shape = tif.pages[0].shape
    width = int(shape[1]) if len(shape) >= 2 else None

    def value(node, name):
        return _num(node.findtext(name)) if node is not None else None

    ux, uy = value(scan, "Ux"), value(scan, "Uy")
    pixel_um = math.hypot(ux, uy or 0.0) if ux else None
    fov_um = value(scan, "FOV_X")
    out = {"vendor": VENDOR_FIBICS, "databar_rows": 0,
           "pixel_size_m": pixel_um * 1e-6 if pixel_um else None,
           "hfw_m": fov_um * 1e-6 if fov_um else None,
           "magnification": value(scan, "Mag")}
    if not out["hfw_m"] and pixel_um and width:
        out["hfw_m"] = pixel_um * 1e-6 * width
    if not out["magnification"] and out["hfw_m"]:
        out["magnification"] = POLAROID_WIDTH_M / out["hfw_m"]
    beam = root.find("BeamInfo") if root.find("BeamInfo") is not None else root.find("Beam")
    kv = value(beam, "Voltage") or value(beam, "HV")
    out["voltage_kv"] = kv / 1000.0 if kv and kv > 100 else kv
    det = root.find("Detector")
    out["detector"] = det.findtext("Name") if det is not None else None
    return _finish(out, width)
