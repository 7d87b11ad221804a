"""What the jobs work on: images to score, whether captured from napari layers on the UI thread
or read from files for the command line.

An :class:`ImageInput` is the data (2-D, a stack or RGB), its magnification, the data-bar rows
to leave out, a name for messages and the file it came from. Layers become inputs in the widgets
(:func:`napari_semfocus._widgets.layers.layer_input`); files become :class:`FileInput` items
(:func:`plan_files`), read one at a time when a job comes to them. The sentences for a missing
magnification differ between the two (each names what the user can do), and a layer that holds
one constant value is refused, as it shows no sample; a file is scored as it is.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..errors import SemFocusError
from ..io.files import existing_file
from ..io.focus_positions import FocusPositions, stack_positions
from ..io.frames import is_rgb, n_slices, stack_of
from ..io.images import IMAGE_SUFFIXES, read_image
from ..io.manifest import read_manifest
from ..scale import parse_magnification
from ..scoring.lazy_frames import constant_value

LAYER_NO_MAGNIFICATION = ("layer '{name}' has no magnification in its metadata and the model "
                          "{model} needs one: type it into the Magnification field.")
FILE_NO_MAGNIFICATION = ("{name}: no magnification given and none found in the file's metadata; "
                         "pass --magnification or --manifest.")


@dataclass(frozen=True)
class ImageInput:
    """One image or stack to score (the array is not copied)."""

    name: str  # the layer's name, or the file as the user gave it
    data: object  # numpy, dask, ...: 2-D, (..., H, W) or RGB
    magnification: float | None
    databar_rows: int = 0
    rgb: bool = False
    path: str | None = None  # the file it came from, where known
    from_layer: bool = True
    # the sentence when the model needs a magnification this image lacks ("": the scorer's own)
    no_magnification: str = LAYER_NO_MAGNIFICATION
    focus: FocusPositions | None = None  # z of a through-focus stack's slices (None: index)

    @property
    def label(self) -> str:
        """How messages name this image: ``layer 'name'`` or the file."""
        return f"layer '{self.name}'" if self.from_layer else self.name

    @property
    def n_slices(self) -> int:
        return n_slices(np.shape(self.data), self.rgb)

    def load(self) -> ImageInput:
        return self

    def with_focus_from(self, metadata: dict | None) -> ImageInput:
        """This image with its slices' focus positions from a layer's ``metadata``
        (:func:`~napari_semfocus.io.focus_positions.stack_positions`; a single frame: as is)."""
        if self.n_slices < 2:
            return self
        return replace(self, focus=stack_positions(metadata, self.n_slices))

    def frames(self):
        """The data as one frame, an (N, H, W) stack or RGB (:func:`~napari_semfocus.io.frames.stack_of`);
        a layer with no data or one constant value is refused. A dask array stays lazy (nothing
        is computed here but a strided probe: :func:`~napari_semfocus.scoring.lazy_frames.constant_value`)."""
        data = stack_of(self.data, self.rgb)
        if self.from_layer:
            if data.size == 0:
                raise SemFocusError(f"layer '{self.name}' is empty: there is nothing to score.")
            value = constant_value(data) if data.dtype.kind in "uif" else None
            if value is not None:
                raise SemFocusError(
                    f"layer '{self.name}' is constant (every pixel is {value:g}): "
                    "it shows no sample to score."
                )
        return data

    def check_magnification(self, scorer) -> None:
        """Raise when the model needs a magnification this image lacks."""
        if self.no_magnification and scorer.needs_magnification and self.magnification is None:
            raise SemFocusError(self.no_magnification.format(name=self.name, model=scorer.name))


@dataclass(frozen=True)
class FileInput:
    """An image file to score, read by :meth:`load` when a job comes to it."""

    name: str  # the path as the user gave it
    path: Path
    magnification: float | None = None  # given; else the file's SEM metadata

    def load(self) -> ImageInput:
        img = read_image(self.path)
        mag = self.magnification
        if mag is None:  # the file's metadata: text there is parsed, nonsense is one sentence
            mag = parse_magnification(img.magnification, f"{self.name} (file metadata)")
        return ImageInput(self.name, img.data, mag, img.databar_rows, is_rgb(img.data),
                          str(self.path), from_layer=False, no_magnification=FILE_NO_MAGNIFICATION)


def plan_files(paths, magnification: float | None = None, manifest=None) -> list[FileInput]:
    """The files to score, checked to exist and to be images, each with its magnification: the
    one given, else the manifest's (``path,magnification``, paths relative to its folder), else
    (when read) the file's SEM metadata. No paths: the manifest's files."""
    by_path = {}
    if manifest is not None:
        by_path = {r["path"]: r["magnification"] for r in read_manifest(manifest)}
    paths = list(paths) or list(by_path)
    if not paths:
        raise SemFocusError("no input files given.")
    plan = []
    for p in paths:
        path = existing_file(p)
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            raise SemFocusError(f"{p}: unsupported file type {path.suffix}; use TIFF, PNG or JPEG.")
        mag = magnification if magnification is not None else by_path.get(str(path.resolve()))
        plan.append(FileInput(str(p), path, mag))
    return plan
