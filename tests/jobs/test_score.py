"""The scoring job: stops between batches when asked; the same numbers for a file and a layer."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import tifffile

from napari_semfocus.errors import SemFocusError
from napari_semfocus.jobs.inputs import ImageInput, plan_files
from napari_semfocus.jobs.score import ScoreSettings, score_images
from napari_semfocus.progress import Progress, run_to_end


def test_worker_generator_checks_cancel_between_batches(untrained_checkpoint):
    frames = np.random.default_rng(0).random((6, 240, 320)).astype(np.float32)
    settings = ScoreSettings(
        images=(ImageInput("stack", frames, magnification=3000.0, databar_rows=0),),
        method="model", checkpoint=str(untrained_checkpoint), device="cpu", batch_size=2)
    cancel = threading.Event()
    gen = score_images(settings, cancel)
    updates = []
    with pytest.raises(StopIteration) as stop:
        while True:
            update = next(gen)
            updates.append(update)
            if isinstance(update, Progress):
                cancel.set()
    progress = [u for u in updates if isinstance(u, Progress)]
    assert len(progress) == 1 and (progress[0].done, progress[0].total) == (2, 6)
    assert stop.value.value.cancelled and stop.value.value.images == []


def test_a_file_and_a_layer_of_the_same_image_get_the_same_scores(untrained_checkpoint, tmp_path):
    """The CLI (files) and the widgets (layers) run the same job: the same numbers, and each
    input's own sentence when the model needs a magnification it lacks."""
    frames = (255 * np.random.default_rng(1).random((3, 120, 160))).astype(np.uint8)
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, frames)
    layer = ImageInput("stack", frames, magnification=4000.0)
    files = plan_files([path], magnification=4000.0)
    for method in ("model", "brenner"):
        runs = [run_to_end(score_images(ScoreSettings(images, method, str(untrained_checkpoint),
                                                      "cpu")))
                for images in ((layer,), tuple(files))]
        np.testing.assert_allclose(runs[0].images[0].scores, runs[1].images[0].scores)
        assert runs[0].images[0].scores.shape == (3,)
    no_mag = (ImageInput("stack", frames, None), *plan_files([path]))
    messages = []
    for image in no_mag:
        with pytest.raises(SemFocusError) as err:
            run_to_end(score_images(ScoreSettings((image,), "model", str(untrained_checkpoint),
                                                  "cpu")))
        messages.append(str(err.value))
    assert "type it into the Magnification field" in messages[0]
    assert "pass --magnification or --manifest" in messages[1] and str(path) in messages[1]
