"""Reading image files (napari_semfocus.io.images): a multi-page TIFF whose pages differ in size
is read as its pages of page 1's size, with a warning naming the file (docs/reliability.md)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import tifffile

from napari_semfocus.errors import SemFocusWarning
from napari_semfocus.io.images import read_frames, read_image


def pages_tiff(path, shapes, **page1):
    rng = np.random.default_rng(0)
    data = [rng.integers(0, 255, s, dtype=np.uint8) for s in shapes]
    tifffile.imwrite(path, data[0], metadata=None)
    for d in data[1:]:
        tifffile.imwrite(path, d, append=True, metadata=None, **page1)
    return data


def test_pages_of_different_sizes_warn_naming_the_file(tmp_path):
    path = tmp_path / "pages.tif"
    data = pages_tiff(path, [(256, 320), (128, 160)])
    with pytest.warns(SemFocusWarning) as caught:
        img = read_image(path)
    assert [str(w.message) for w in caught] == [
        f"{path} holds pages of different sizes: only those of page 1's size (256 x 320) are "
        f"read, 1 other page is not (128 x 160); save them as separate files to score them."]
    np.testing.assert_array_equal(img.data, data[0])
    with pytest.warns(SemFocusWarning, match="pages of different sizes"):
        assert read_frames(path).shape == (1, 256, 320)


@pytest.mark.parametrize("shapes, page1", [([(256, 320)] * 3, {}),
                                           ([(256, 320), (64, 80)], {"subfiletype": 1})])
def test_a_stack_or_a_thumbnail_page_reads_without_a_warning(tmp_path, shapes, page1):
    """Pages of one size are a stack; a reduced-resolution page (a thumbnail) is no image."""
    path = tmp_path / "stack.tif"
    pages_tiff(path, shapes, **page1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        img = read_image(path)
    assert img.data.shape == ((3, 256, 320) if len(shapes) == 3 else (256, 320))
