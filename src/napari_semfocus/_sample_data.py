"""napari sample data (File > Open Sample > SEM focus): small 8-bit TIFFs made from the shared
SEM pool by ``scripts/make_samples.py`` (sources and licences in the repository's
top-level ``sample_data/ATTRIBUTION.md``).

Every sample's ``layer.metadata`` carries ``magnification`` and ``pixel_size_m`` /
``pixel_size_um`` (the Score focus widget reads the magnification from there) and ``databar_rows``;
``scale`` is the pixel size in micrometres, as in the SEM reader. The focus series also carries
its ground truth: ``in_focus_index``, and per slice ``defocus_um``, ``sigma_px`` and
``expected_scores`` (on the 0-10 scale of docs/focus-score-scale.md).
"""

from __future__ import annotations

import inspect
from importlib import resources
from pathlib import Path

from napari.layers import Image

from ._reader import sem_layer_tuples
from .errors import SemFocusError
from .io.images import SEMImage, read_image

FOCUS_SERIES = "focus_series.tif"
SEM_IMAGE = "sem_image.tif"
HALF_FOCUSED = "half_focused.tif"


def sample_dir() -> Path:
    """Folder of the sample files: ``napari_semfocus/sample_data`` in an installed package (the
    wheel maps the repository's top-level ``sample_data/`` there), else that top-level folder of
    the source checkout (an editable install)."""
    installed = Path(str(resources.files("napari_semfocus"))) / "sample_data"
    if installed.is_dir():
        return installed
    return Path(__file__).resolve().parents[2] / "sample_data"


def sample_path(filename: str) -> Path:
    path = sample_dir() / filename
    if not path.is_file():
        raise SemFocusError(f"sample file {filename} is not installed (looked in {path.parent}).")
    return path


def load_sample(filename: str) -> SEMImage:
    """Pixel data and the metadata stored in a sample TIFF's JSON description."""
    image = read_image(sample_path(filename))
    image.metadata["path"] = str(image.path)
    return image


def _layers(filename: str, name: str) -> list[tuple]:
    sample = load_sample(filename)
    return sem_layer_tuples(sample, name=name, metadata=sample.metadata)


def focus_series() -> list[tuple]:
    """SEM focus series: 11 slices through focus, slice 4 in focus (ground truth in metadata)."""
    layers = _layers(FOCUS_SERIES, "SEM focus series")
    data, kwargs, _ = layers[0]
    if "axis_labels" in _image_parameters():
        kwargs["axis_labels"] = ("focus slice", "y", "x")
    return layers


def sem_image() -> list[tuple]:
    """SEM image: one sharp frame with its data bar, magnification and pixel size."""
    return _layers(SEM_IMAGE, "SEM image")


def half_focused() -> list[tuple]:
    """Half-focused frame: sharp on the left, defocused on the right."""
    return _layers(HALF_FOCUSED, "Half-focused frame")


def _image_parameters():
    return inspect.signature(Image.__init__).parameters
