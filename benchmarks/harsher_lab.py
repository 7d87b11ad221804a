"""A simulated lab whose experts score every blurred frame 1.5 points harsher than the project's
scale: the annotations that the fine-tuning tests and ``benchmarks/bench_finetune.py`` teach the
shipped model (docs/fine-tuning.md). A simulation for measuring fine-tuning, not part of the
package.

Each pool image (:func:`napari_semfocus.training.data.pool.load_pool_image`) is downscaled until sharp (at least 2x), its
centre cut to at most 288 x 384 pixels, and blurred by each added Gaussian sigma of ``sigmas``;
the lab's score of a copy is the project's label for that blur
(:func:`~napari_semfocus.scale.label_for_added_blur`), lowered by ``harsher`` below 9 (sharp
frames keep their score). One annotation per copy: layer = the image's pool path, slice = the
blur's index.
"""

from __future__ import annotations

from collections.abc import Iterable

import cv2
import numpy as np

from napari_semfocus.scale import label_for_added_blur
from napari_semfocus.training.data.annotations import Annotation, AnnotationTable
from napari_semfocus.training.data.pool import PoolImage

LAB_SIGMAS = (0.0, 2.0, 4.0, 8.0, 16.0)  # added blur (px) -> project labels 10, 6.9, 5.5, 4.0, 2.5
HARSHER = 1.5  # the lab's experts: this much lower on blurred frames (label < 9)
LAB_FRAME_HW = (288, 384)


def lab_score(sigma: float, harsher: float = HARSHER) -> float:
    """The lab's score of a frame blurred by ``sigma`` px: the project's label, ``harsher``
    points lower when it is below 9."""
    label = float(label_for_added_blur(sigma))
    return label if label >= 9 else max(0.0, label - harsher)


def lab_frame(img: PoolImage) -> np.ndarray:
    """The sharp frame the lab annotates: ``img`` downscaled by max(2, its sharp factor), the
    centre at most :data:`LAB_FRAME_HW`."""
    f = max(2.0, img.min_factor)
    d = cv2.resize(img.data, (int(img.data.shape[1] / f), int(img.data.shape[0] / f)),
                   interpolation=cv2.INTER_AREA)
    h, w = min(d.shape[0], LAB_FRAME_HW[0]), min(d.shape[1], LAB_FRAME_HW[1])
    y, x = (d.shape[0] - h) // 2, (d.shape[1] - w) // 2
    return d[y : y + h, x : x + w]


def lab_annotations(images: Iterable[PoolImage], sigmas=LAB_SIGMAS, harsher: float = HARSHER
                    ) -> tuple[AnnotationTable, dict]:
    """(table, frames): every image blurred by each of ``sigmas`` and scored by the lab;
    ``frames`` maps (layer, slice) to (frame, data-bar rows = 0), as the Fine-tune widget hands
    open layers."""
    table, frames = AnnotationTable(), {}
    for img in images:
        sharp = lab_frame(img)
        for k, sigma in enumerate(sigmas):
            frame = sharp if sigma == 0 else cv2.GaussianBlur(sharp, (0, 0), sigma)
            frames[(img.path, k)] = (frame, 0)
            table.add(Annotation(img.path, k, img.magnification, lab_score(sigma, harsher)))
    return table, frames
