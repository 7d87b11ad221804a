"""Vendor metadata beyond FEI and Zeiss: real JEOL, Tescan, Thermo and Zeiss files from
``tests/data/vendor-files/`` (expected values from tests/data/README.md), and Hitachi and
Fibics/Atlas fixtures built byte by byte in the tests from their documented formats (no real
file of either is available to the project), plus what the napari reader claims and why."""

from __future__ import annotations

import logging
import shutil
import time

import numpy as np
import pytest
import tifffile

from napari_semfocus._reader import napari_get_reader
from napari_semfocus.io.images import read_image

from ..helpers import VENDOR_FILES


def _layer(path):
    reader = napari_get_reader(str(path))
    assert callable(reader), f"{path} was not claimed"
    data, kwargs, kind = reader(str(path))[0]
    assert kind == "image"
    return data, kwargs, kwargs["metadata"]


def test_jeol_sidecar():
    data, kwargs, meta = _layer(VENDOR_FILES / "jeol_example_sem.tif")
    assert meta["vendor"] == "JEOL"
    assert meta["magnification"] == pytest.approx(50.0)
    assert meta["voltage_kv"] == pytest.approx(5.0)
    assert meta["working_distance_mm"] == pytest.approx(9.07)
    assert meta["detector"] == "LED"
    # 128 mm / (50 x 1280 px); checked against the burned-in 500 um marker: its white line is
    # 250 px long in rows 896-899 (measured here independently of the reader)
    assert meta["pixel_size_m"] == pytest.approx(2.0e-6)
    assert kwargs["scale"] == pytest.approx((2.0, 2.0))
    line = data[896] > 180
    edges = np.flatnonzero(np.diff(line.astype(int)))
    runs = edges[1::2] - edges[::2]
    assert 500e-6 / runs.max() == pytest.approx(meta["pixel_size_m"], rel=0.01)
    assert data.shape == (960, 1280)
    assert meta["databar_source"] == "detected"


def test_jeol_tiff_without_its_sidecar_is_left_to_napari(tmp_path):
    lone = tmp_path / "jeol_alone.tif"
    shutil.copyfile(VENDOR_FILES / "jeol_example_sem.tif", lone)  # a temporary copy, no .txt
    assert napari_get_reader(str(lone)) is None


def test_tescan_tag():
    data, kwargs, meta = _layer(VENDOR_FILES / "tescan_example_sem1.tif")
    assert meta["vendor"] == "Tescan"
    assert meta["magnification"] == pytest.approx(108.08)
    assert meta["pixel_size_m"] == pytest.approx(2.5012e-6)
    assert kwargs["scale"] == pytest.approx((2.5012, 2.5012))
    assert meta["voltage_kv"] == pytest.approx(10.0)
    assert meta["working_distance_mm"] == pytest.approx(13.25)
    assert meta["detector"] == "SE"
    assert meta["databar_rows"] == 120 and meta["databar_source"] == "metadata"
    assert data.shape == (888, 1024) and data.dtype == np.uint16


def test_thermo_and_zeiss_files():
    _, _, tfs = _layer(VENDOR_FILES / "tfs_example.tif")
    assert tfs["vendor"] == "FEI/Thermo Fisher"
    assert tfs["pixel_size_m"] == pytest.approx(269.8e-9, rel=1e-3)
    assert tfs["hfw_m"] == pytest.approx(414e-6, rel=2e-3)
    assert tfs["databar_rows"] == 68
    data, _, zeiss = _layer(VENDOR_FILES / "zeiss_example_sem.tif")
    assert zeiss["vendor"] == "Zeiss"
    assert zeiss["magnification"] == pytest.approx(188.0)
    assert zeiss["pixel_size_m"] == pytest.approx(593e-9, rel=1e-3)
    assert abs(zeiss["databar_rows"] - (data.shape[0] - 708)) <= 3


# Hitachi S-4800 style sidecar: [SemImageFile] section of Key=Value lines, CRLF, Latin-1.
# PixelSize is in nm: 127 mm display / 10000x / 1280 px = 9.921875 nm; DataSize is the image
# area, the 64 rows below it are the data bar.
HITACHI_TXT = (
    b"[SemImageFile]\r\n"
    b"InstructName=S-4800\r\n"
    b"SerialNumber=4800-01\r\n"
    b"DataNumber=\r\n"
    b"SampleName=\r\n"
    b"Format=tif\r\n"
    b"ImageName=hitachi_s4800.tif\r\n"
    b"Directory=C:\\S-4800\\Data\\\r\n"
    b"Date=2014/03/12\r\n"
    b"Time=10:21:07\r\n"
    b"DataSize=1280x960\r\n"
    b"PixelSize=9.921875\r\n"
    b"SignalName=SE(U)\r\n"
    b"AcceleratingVoltage=5000 Volt\r\n"
    b"DecelerationVoltage=0 Volt\r\n"
    b"Magnification=10000\r\n"
    b"WorkingDistance=8600 um\r\n"
    b"EmissionCurrent=10000 nA\r\n"
    b"LensMode=High\r\n"
    b"MicronMarker=5000\r\n"
)


def test_hitachi_sidecar_fixture(tmp_path):
    image = tmp_path / "hitachi_s4800.tif"
    rng = np.random.default_rng(0)
    tifffile.imwrite(image, rng.integers(0, 255, (1024, 1280), dtype=np.uint8))
    assert napari_get_reader(str(image)) is None  # no sidecar yet: napari's TIFF reader
    (tmp_path / "hitachi_s4800.txt").write_bytes(HITACHI_TXT)
    data, kwargs, meta = _layer(image)
    assert meta["vendor"] == "Hitachi"
    assert meta["magnification"] == pytest.approx(10000.0)
    assert meta["pixel_size_m"] == pytest.approx(9.921875e-9)
    assert meta["hfw_m"] == pytest.approx(0.127 / 10000)
    assert meta["voltage_kv"] == pytest.approx(5.0)
    assert meta["working_distance_mm"] == pytest.approx(8.6)
    assert meta["detector"] == "SE(U)"
    assert meta["databar_rows"] == 64 and meta["databar_source"] == "metadata"


# Fibics/Atlas: XML in TIFF tag 51023; Ux..Vy map pixels to micrometres, FOV_X in um.
FIBICS_XML = (
    '<?xml version="1.0" encoding="iso-8859-1"?>\r\n'
    '<Fibics version="1.0">\r\n'
    ' <Application>Atlas 5</Application>\r\n'
    ' <Image>\r\n  <Width>640</Width>\r\n  <Height>480</Height>\r\n'
    '  <BitsPerSample>16</BitsPerSample>\r\n </Image>\r\n'
    ' <Scan>\r\n  <Ux>0.008</Ux>\r\n  <Uy>0</Uy>\r\n  <Vx>0</Vx>\r\n  <Vy>0.008</Vy>\r\n'
    '  <Dwell>1.2</Dwell>\r\n  <FOV_X units="um">5.12</FOV_X>\r\n'
    '  <FOV_Y units="um">3.84</FOV_Y>\r\n </Scan>\r\n'
    ' <Detector>\r\n  <Name>InLens</Name>\r\n </Detector>\r\n'
    '</Fibics>\r\n'
)


def test_fibics_xml_tag_fixture(tmp_path):
    image = tmp_path / "atlas_tile.tif"
    data = np.random.default_rng(1).integers(0, 60000, (480, 640), dtype=np.uint16)
    tifffile.imwrite(image, data, extratags=[(51023, "s", 0, FIBICS_XML, True)])
    data, kwargs, meta = _layer(image)
    assert meta["vendor"] == "Fibics/Atlas"
    assert meta["pixel_size_m"] == pytest.approx(8e-9)
    assert meta["hfw_m"] == pytest.approx(5.12e-6)
    assert meta["magnification"] == pytest.approx(0.127 / 5.12e-6)
    assert meta["detector"] == "InLens"
    assert kwargs["scale"] == pytest.approx((0.008, 0.008))
    assert read_image(image).magnification == pytest.approx(0.127 / 5.12e-6)


def test_reader_says_why_it_leaves_a_file_and_does_so_quickly(tmp_path, caplog):
    plain = tmp_path / "plain.tif"
    tifffile.imwrite(plain, np.zeros((4000, 4000), np.uint16))
    with caplog.at_level(logging.DEBUG, logger="napari_semfocus._reader"):
        start = time.perf_counter()
        assert napari_get_reader(str(plain)) is None
        elapsed = time.perf_counter() - start
        assert napari_get_reader(str(tmp_path / "notes.png")) is None
    text = caplog.text
    assert "plain.tif" in text and "no SEM metadata" in text
    assert "notes.png" in text and "not a .tif" in text
    assert elapsed < 0.25  # tags only, the 32 MB of pixels are not read


@pytest.mark.gui
def test_viewer_opens_a_tescan_file_with_the_plugin(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.open(str(VENDOR_FILES / "tescan_example_sem1.tif"), plugin="napari-semfocus")
    image = viewer.layers["tescan_example_sem1"]
    assert image.metadata["magnification"] == pytest.approx(108.08)
    assert tuple(image.scale) == pytest.approx((2.5012, 2.5012))
    bar = [layer for layer in viewer.layers if type(layer).__name__ == "Shapes"]
    assert len(bar) == 1 and bar[0].metadata["rows"] == 120
