"""Focus positions of a through-focus series (issue 23): the metadata's per-slice values or each
file's working distance, else --step-um, else the slice index."""

from __future__ import annotations

import pytest

from napari_semfocus.errors import SemFocusError
from napari_semfocus.io.focus_positions import file_positions, stack_positions


def test_a_stack_uses_its_per_slice_metadata_first():
    meta = {"defocus_um": [-160.0, -80.0, 0.0, 80.0], "working_distance_mm": 13.38}
    pos = stack_positions(meta, 4, step_um=5.0)
    assert pos.z == (-160.0, -80.0, 0.0, 80.0)
    assert (pos.unit, pos.source) == ("um", "metadata defocus_um")
    wd = stack_positions({"working_distance_mm": [5.0, 5.01, 5.02]}, 3)
    assert wd.z == pytest.approx((5000.0, 5010.0, 5020.0)) and wd.unit == "um"


def test_a_stack_without_usable_metadata_uses_the_step_then_the_index():
    for meta in ({}, {"defocus_um": [0.0, 1.0]}, {"focus_um": [1.0, 1.0, 2.0]}, None):
        assert stack_positions(meta, 3, step_um=2.5).z == (0.0, 2.5, 5.0)
        pos = stack_positions(meta, 3)
        assert pos.z == (0.0, 1.0, 2.0) and (pos.unit, pos.source) == ("slice", "slice index")


def test_files_use_their_working_distances():
    metas = [{"working_distance_mm": 10.002}, {"working_distance_mm": 10.0},
             {"working_distance_mm": 10.004}]
    pos = file_positions(metas, step_um=3.0)
    assert pos.z == pytest.approx((10002.0, 10000.0, 10004.0))
    assert pos.source == "metadata working_distance_mm of each file"
    same = [{"working_distance_mm": 10.0}] * 3  # focus changed some other way: no information
    assert file_positions(same, step_um=3.0).source == "--step-um"
    assert file_positions([{}, {"working_distance_mm": 4.0}]).unit == "slice"


def test_a_bad_step_is_refused():
    with pytest.raises(SemFocusError, match=r"^--step-um -2 is not a positive number of "
                                            r"micrometres\.$"):
        stack_positions({}, 4, step_um=-2.0)
