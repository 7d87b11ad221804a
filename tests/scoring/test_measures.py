"""Classical focus measures fall with blur on a real SEM image."""

from __future__ import annotations

import numpy as np
import pytest

from napari_semfocus.scoring.measures import MEASURES, measure


@pytest.mark.parametrize("name", sorted(MEASURES))
def test_classical_measures_fall_with_blur(name, blur_series):
    sigmas, frames = blur_series
    values = measure(frames, name)
    assert values.shape == (len(sigmas),)
    assert np.all(np.diff(values) < 0), f"{name} does not fall monotonically with blur: {values}"
