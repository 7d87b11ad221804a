"""The focus score scale and magnifications: the scale's table, the model's encoding, and
magnifications as users write them (one parser for the CLI and the widgets)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_semfocus.errors import SemFocusError
from napari_semfocus.scale import (
    encode_magnification,
    label_for_added_blur,
    magnification_error,
    magnification_from_pixel_size,
    parse_magnification,
    score_from_sigma,
)


def test_score_scale_table():
    sigmas = [0.5, 1, 2, 4, 8, 16, 32, 100]
    assert np.allclose(score_from_sigma(sigmas), [10, 8.5, 7, 5.5, 4, 2.5, 1, 1])
    assert label_for_added_blur(0.0) == pytest.approx(10.0)
    assert label_for_added_blur(np.sqrt(1 - 0.25)) == pytest.approx(8.5)


def test_magnification_encoding():
    assert encode_magnification(100) == 0.0
    assert encode_magnification(1_000_000) == 1.0
    assert encode_magnification(10_000) == pytest.approx(0.5)
    assert encode_magnification(10) == 0.0 and encode_magnification(1e8) == 1.0
    assert magnification_from_pixel_size(127e-3 / 1000 / 1000, 1000) == pytest.approx(1000)
    with pytest.raises(ValueError):
        encode_magnification(0)


@pytest.mark.parametrize("text, value", [
    ("5000", 5000.0), ("5,000", 5000.0), ("5,000x", 5000.0), ("5k", 5000.0), ("5.72 K X", 5720.0),
    ("12.5 kX", 12500.0), ("250 X", 250.0), ("1.2 M", 1.2e6), (" 800 ", 800.0), ("5e3", 5000.0),
    ("5000 ×", 5000.0), (2500, 2500.0), (2.5e3, 2500.0),
])
def test_magnifications_as_users_write_them(text, value):
    assert parse_magnification(text) == value


@pytest.mark.parametrize("text", ["a lot", "0", "-5", "nan", "inf", "5kk", "1.2.3", "x5000"])
def test_bad_magnifications_get_one_sentence(text):
    with pytest.raises(SemFocusError) as err:
        parse_magnification(text)
    assert str(err.value) == str(magnification_error(text))
    assert str(err.value).startswith(f"Magnification {text.strip()!r} is not a positive number")
    where = "manifest m.csv line 2"
    with pytest.raises(SemFocusError, match=f"^{where}: magnification"):
        parse_magnification(text, where)


def test_empty_magnification_is_none_unless_required():
    assert parse_magnification("") is None and parse_magnification("  ") is None
    assert parse_magnification(None) is None
    with pytest.raises(SemFocusError, match="is not a positive number"):
        parse_magnification("", "manifest m.csv line 2", required=True)
