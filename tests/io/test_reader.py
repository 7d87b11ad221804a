"""The SEM TIFF reader on real FEI/Thermo Fisher and Zeiss files from the shared pool, checked
against the pool's manifest.csv, plus data-bar detection and plain TIFFs left to napari."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import pytest
import tifffile

from napari_semfocus._reader import is_sem_tiff, napari_get_reader
from napari_semfocus.io.databar import databar_rectangle, detect_databar_rows
from napari_semfocus.io.images import read_image

from ..helpers import POOL

FEI_DIRS = ("lungcells_lacunarity", "sem2surface")


ZEISS_DIRS = ("fibresem", "soil_sem")


# Entries of manifest.csv that are wrong, checked by eye (bottom strips of all Zeiss files side
# by side): soil_1_after_nacetyl.tif has the same 73-row Zeiss data bar (black separator line,
# grey bar with EHT / WD / Mag / date text and logo) as its five siblings, but is listed with 0.
KNOWN_MANIFEST_ERRORS = {"soil_sem/soil_1_after_nacetyl.tif": {"databar_rows_bottom": 73}}


def _manifest_rows(dirs) -> list[dict]:
    with open(POOL / "manifest.csv", newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r["path"].split("/")[0] in dirs]
    for r in rows:
        r.update(KNOWN_MANIFEST_ERRORS.get(r["path"], {}))
    return rows


_LENGTH = {"nm": 1e-9, "um": 1e-6, "µm": 1e-6, "mm": 1e-3}


def _length_m(text: str) -> float:
    """'89.9 nm' -> 8.99e-08; 'HFW 138.1 um' -> 1.381e-04 (independent of the package's parser)."""
    m = re.search(r"([0-9.]+)\s*(nm|um|µm|mm)", text)
    assert m, text
    return float(m.group(1)) * _LENGTH[m.group(2)]


def _zeiss_mag(text: str) -> float:
    """'5.72 K X' -> 5720 (independent of the package's parser)."""
    m = re.fullmatch(r"\s*([0-9.]+)\s*([KkMm]?)\s*[Xx]\s*", text)
    assert m, text
    return float(m.group(1)) * {"": 1, "k": 1e3, "m": 1e6}[m.group(2).lower()]


def _read(path: Path):
    reader = napari_get_reader(str(path))
    assert callable(reader), f"{path.name} was not claimed"
    layers = reader(str(path))
    data, kwargs, kind = layers[0]
    assert kind == "image"
    return layers, data, kwargs, kwargs["metadata"]


def _ids(rows):
    return [r["path"] for r in rows]


FEI_ROWS = _manifest_rows(FEI_DIRS)


ZEISS_ROWS = [r for r in _manifest_rows(ZEISS_DIRS) if r["pixel_size"]]


ZEISS_PLAIN = [r for r in _manifest_rows(ZEISS_DIRS) if not r["pixel_size"]]


@pytest.mark.parametrize("row", FEI_ROWS, ids=_ids(FEI_ROWS))
def test_fei_file_metadata_matches_manifest(row):
    path = POOL / row["path"]
    layers, data, kwargs, meta = _read(path)
    assert meta["vendor"] == "FEI/Thermo Fisher"
    hfw = _length_m(row["mag_or_hfw"])
    pixel = _length_m(row["pixel_size"])
    width = int(row["size"].split("x")[0])
    assert meta["hfw_m"] == pytest.approx(hfw, rel=5e-3)
    assert meta["pixel_size_m"] == pytest.approx(pixel, rel=5e-3)
    assert meta["pixel_size_m"] * width == pytest.approx(hfw, rel=5e-3)
    # FEI magnification = display width / HFW; the display width the file names must be a real
    # one (Polaroid 127 mm or the instrument's own canvas) and give the manifest's HFW
    with tifffile.TiffFile(path) as tif:
        canvas = float(tif.fei_metadata["Image"].get("MagCanvasRealWidth") or 0.127)
    assert 0.1 <= canvas <= 0.5
    assert meta["magnification"] == pytest.approx(canvas / hfw, rel=5e-3)
    assert 100 <= meta["magnification"] <= 100_000
    # scale: pixel size in micrometres on both image axes
    assert kwargs["scale"] == pytest.approx((pixel * 1e6, pixel * 1e6), rel=5e-3)
    assert meta["pixel_size_um"] == pytest.approx(meta["pixel_size_m"] * 1e6)
    for key in ("voltage_kv", "working_distance_mm", "detector"):
        assert meta.get(key), key
    # data bar: from the FEI metadata, and shown as an excluded rectangle
    assert meta["databar_rows"] == int(row["databar_rows_bottom"])
    assert meta["databar_source"] == "metadata"
    assert data.shape == tuple(int(v) for v in row["size"].split("x"))[::-1]
    shapes = [layer for layer in layers if layer[2] == "shapes"]
    assert len(shapes) == 1
    (rect,) = shapes[0][0]
    assert rect[:, 0].min() == pytest.approx(data.shape[0] - meta["databar_rows"] - 0.5)
    assert rect[:, 0].max() == pytest.approx(data.shape[0] - 0.5)
    assert "excluded" in shapes[0][1]["name"]


@pytest.mark.parametrize("row", ZEISS_ROWS, ids=_ids(ZEISS_ROWS))
def test_zeiss_file_metadata_matches_manifest(row):
    layers, data, kwargs, meta = _read(POOL / row["path"])
    assert meta["vendor"] == "Zeiss"
    assert meta["magnification"] == pytest.approx(_zeiss_mag(row["mag_or_hfw"]), rel=1e-3)
    pixel = _length_m(row["pixel_size"])
    assert meta["pixel_size_m"] == pytest.approx(pixel, rel=2e-3)
    assert kwargs["scale"] == pytest.approx((pixel * 1e6, pixel * 1e6), rel=2e-3)
    for key in ("voltage_kv", "working_distance_mm", "detector"):
        assert meta.get(key), key
    # Zeiss files do not give the data bar: it is detected
    expected = int(row["databar_rows_bottom"])
    assert meta["databar_source"] == "detected"
    if expected > 0:
        assert abs(meta["databar_rows"] - expected) <= 3
        assert any(layer[2] == "shapes" for layer in layers)
    else:
        assert meta["databar_rows"] == 0
        assert not any(layer[2] == "shapes" for layer in layers)


@pytest.mark.parametrize("row", ZEISS_PLAIN, ids=_ids(ZEISS_PLAIN))
def test_zeiss_folder_file_without_metadata_is_left_to_napari(row):
    """fibresem/test2-2.tif is a crop without the Zeiss tags (and without a data bar)."""
    path = POOL / row["path"]
    assert napari_get_reader(str(path)) is None
    data = tifffile.imread(path)
    assert detect_databar_rows(data) == int(row["databar_rows_bottom"]) == 0


@pytest.mark.parametrize("row", FEI_ROWS, ids=_ids(FEI_ROWS))
def test_databar_detector_agrees_with_fei_metadata(row):
    """An independent check of the detector: FEI files state their bar height."""
    data = tifffile.imread(POOL / row["path"])
    assert detect_databar_rows(data) == int(row["databar_rows_bottom"])


def test_reader_takes_a_list_of_sem_files():
    paths = [str(POOL / r["path"]) for r in FEI_ROWS[:1] + ZEISS_ROWS[:1]]
    reader = napari_get_reader(paths)
    layers = reader(paths)
    assert [kind for _, _, kind in layers].count("image") == 2


def test_plain_tiff_is_left_to_napari(tmp_path):
    path = tmp_path / "plain.tif"
    tifffile.imwrite(path, np.random.default_rng(0).integers(0, 255, (64, 80), dtype=np.uint8))
    assert not is_sem_tiff(path)
    assert napari_get_reader(str(path)) is None
    assert napari_get_reader([str(path)]) is None


def test_non_tiff_and_broken_files_are_left_to_napari(tmp_path):
    png = tmp_path / "image.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n")
    broken = tmp_path / "broken.tif"
    broken.write_bytes(b"II*\x00 not really a tiff")
    assert napari_get_reader(str(png)) is None
    assert napari_get_reader(str(broken)) is None
    assert napari_get_reader(str(tmp_path / "missing.tif")) is None


def test_detector_on_synthetic_bars():
    rng = np.random.default_rng(1)
    image = rng.normal(120, 25, (400, 500)).clip(0, 255).astype(np.uint8)
    assert detect_databar_rows(image) == 0
    barred = image.copy()
    barred[-40:] = 0  # black bar with white text
    barred[-30:-20, 20:200:3] = 255
    barred[-40] = 255  # separator line
    assert detect_databar_rows(barred) == 40
    blank = image.copy()
    blank[-40:] = 0  # a flat dark strip without text is specimen, not a data bar
    assert detect_databar_rows(blank) == 0
    assert detect_databar_rows(np.full((100, 100), 7, np.uint8)) == 0  # constant frame
    rgb = np.repeat(barred[..., None], 3, axis=2)
    assert detect_databar_rows(rgb) == 40


def test_databar_rectangle_covers_the_bottom_rows():
    rect = databar_rectangle(100, 200, 12)
    assert rect[:, 0].min() == pytest.approx(87.5) and rect[:, 0].max() == pytest.approx(99.5)
    assert rect[:, 1].min() == pytest.approx(-0.5) and rect[:, 1].max() == pytest.approx(199.5)


@pytest.mark.gui
def test_viewer_opens_a_zeiss_file_with_the_plugin(make_napari_viewer):
    row = next(r for r in ZEISS_ROWS if int(r["databar_rows_bottom"]) > 0)
    viewer = make_napari_viewer()
    viewer.open(str(POOL / row["path"]), plugin="napari-semfocus")
    kinds = {type(layer).__name__ for layer in viewer.layers}
    assert kinds == {"Image", "Shapes"}
    image = next(layer for layer in viewer.layers if type(layer).__name__ == "Image")
    assert image.metadata["magnification"] == pytest.approx(_zeiss_mag(row["mag_or_hfw"]))
    assert image.scale[-1] == pytest.approx(_length_m(row["pixel_size"]) * 1e6, rel=2e-3)


@pytest.mark.gui
def test_why_napari_asks_which_reader_opens_a_tif(make_napari_viewer, tmp_path):
    """npe2 chooses readers by file name only: napari's own reader and this plugin's both match
    *.tif, so napari asks (MultipleReaderError; the reader dialog in the GUI) unless the caller
    or a saved preference names one (``viewer.open`` names napari's own reader by default). The plugin claims no other suffix, so PNG, JPEG... open
    without a question."""
    from napari.errors import MultipleReaderError
    from npe2 import PluginManager

    from ..helpers import FEI_FILE

    viewer = make_napari_viewer()  # napari's plugins discovered
    pm = PluginManager.instance()

    def readers(path):
        return {r.plugin_name for r in pm.iter_compatible_readers([str(path)])}

    assert readers(FEI_FILE) == {"napari", "napari-semfocus"}
    assert "napari-semfocus" in readers(tmp_path / "IMG_01.TIF")  # npe2 ignores the case
    for name in ("a.png", "a.jpg", "a.csv"):
        assert "napari-semfocus" not in readers(tmp_path / name)
    with pytest.raises(MultipleReaderError):  # plugin=None: what a drop on the window does
        viewer.open(str(FEI_FILE), plugin=None)
    (image, _bar) = viewer.open(str(FEI_FILE), plugin="napari-semfocus")  # named: no question
    assert image.metadata["magnification"] > 0 and image.scale[-1] < 1  # µm per pixel


@pytest.mark.gui
def test_magnification_and_data_bar_whichever_reader_opened_the_file(make_napari_viewer):
    """A TIFF opened with napari's own reader keeps no SEM metadata: the widgets' one lookup
    (``_widgets.layers.sem_metadata``) reads it from the layer's source file, so Score focus does
    not ask for a magnification the file has (FEI: from the header; Zeiss: bar detected)."""
    from napari_semfocus._widgets.layers import layer_databar_rows, layer_magnification

    from ..helpers import FEI_FILE, ZEISS_FILE

    viewer = make_napari_viewer()
    for path in (FEI_FILE, ZEISS_FILE):
        ours = read_image(path)
        (plain,) = viewer.open(str(path), plugin="napari")
        assert "magnification" not in plain.metadata  # napari's reader: nothing SEM
        assert layer_magnification(plain) == pytest.approx(ours.magnification)
        assert layer_databar_rows(plain) == ours.databar_rows > 0
        assert "magnification" not in plain.metadata  # the layer is not changed


@pytest.mark.gui
def test_data_bar_layer_is_not_selected_has_no_canvas_text_and_hides_with_its_image(
        make_napari_viewer, qtbot):
    from ..helpers import FEI_FILE

    viewer = make_napari_viewer()
    image, bar = viewer.open(str(FEI_FILE), plugin="napari-semfocus")
    qtbot.waitUntil(lambda: viewer.layers.selection.active is image, timeout=5_000)
    assert bar.metadata["semfocus_role"] == "databar"
    assert not "".join(np.atleast_1d(bar.text.values))  # no text floating over the canvas
    assert "excluded" in bar.features["note"][0]
    image.visible = False
    assert not bar.visible
    image.visible = True
    assert bar.visible
