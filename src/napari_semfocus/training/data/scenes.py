"""Procedurally generated, SEM-like sharp scenes: every kind, rendered the same way.

A builder (:mod:`scene_builders`: balls, grid, holey, fibres, crystals, blobs, porous;
:mod:`scenes_dense`: colloids, membrane, grains, fibremat, nanofilm and sparse frames) makes a
height map and a material map on a canvas twice the output size; :func:`render_scene` turns
them into a secondary-electron-like image (BSE-like for ``porous`` and ``grains``) and
area-downscales 2x, so the result is sharp (sigma ~0.4-0.5 px, which the scale calls sharp).
Scenes are deterministic given a ``numpy.random.Generator``.
"""

from __future__ import annotations

import cv2
import numpy as np

from .scene_builders import BUILDERS as _BASIC
from .scene_builders import secondary_electron_image
from .scenes_dense import DENSE_BUILDERS

BUILDERS = {**_BASIC, **DENSE_BUILDERS}
SCENE_KINDS = tuple(BUILDERS)
BSE_KINDS = ("porous", "grains")


def render_scene(kind: str, shape_hw, rng: np.random.Generator) -> np.ndarray:
    """A sharp scene of ``kind``, float32 (H, W) in [0, 1] (rendered at 2x, area-downscaled)."""
    if kind not in BUILDERS:
        raise ValueError(f"unknown scene kind {kind!r}; one of {', '.join(SCENE_KINDS)}")
    H, W = int(shape_hw[0]), int(shape_hw[1])
    big = (2 * H, 2 * W)
    height, mat = BUILDERS[kind](big, rng)
    height = np.nan_to_num(height.astype(np.float32))
    if kind in BSE_KINDS:  # BSE: material contrast, a little topography only
        img = mat * (1.0 + 0.1 * np.clip(cv2.Sobel(height, cv2.CV_32F, 1, 0) / 8.0, -1, 1))
    else:
        img = secondary_electron_image(height, mat.astype(np.float32), rng)
    img = cv2.resize(img.astype(np.float32), (W, H), interpolation=cv2.INTER_AREA)
    lo, hi = np.percentile(img, [0.2, 99.8])
    out = (img - lo) / max(float(hi - lo), 1e-6) * rng.uniform(0.7, 0.95) + rng.uniform(0.0, 0.1)
    return np.clip(out, 0.0, 1.0).astype(np.float32)
