"""Labelled images for training and evaluation, and the paper's augmentation.

A :class:`LabelledSet` holds frames (any 2-D arrays, e.g. a memory-mapped (N, H, W) cache or a
list of images of different sizes), their focus labels, magnifications and a group id per frame
(the source image: train/validation splits are made by group, never by crop).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import SemFocusError
from ...io.images import read_frames
from ...io.manifest import read_manifest
from ...scale import encode_magnification
from ...scoring.preprocess import normalise


@dataclass
class LabelledSet:
    images: Sequence  # each item a 2-D array (raw intensities, any dtype)
    labels: np.ndarray  # (N,) focus scores 0..10
    magnifications: np.ndarray  # (N,) raw magnifications
    groups: np.ndarray  # (N,) source-image ids (str or int)

    def __post_init__(self):
        self.labels = np.asarray(self.labels, dtype=np.float32)
        self.magnifications = np.asarray(self.magnifications, dtype=np.float64)
        self.groups = np.asarray(self.groups)
        n = len(self.images)
        if not (len(self.labels) == len(self.magnifications) == len(self.groups) == n):
            raise SemFocusError("labelled set: images, labels, magnifications and groups differ in length.")
        if n == 0:
            raise SemFocusError("labelled set is empty.")
        if np.any((self.labels < 0) | (self.labels > 10)) or not np.all(np.isfinite(self.labels)):
            raise SemFocusError("labelled set: every label must be a score between 0 and 10.")

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index) -> LabelledSet:
        index = np.asarray(index)
        return LabelledSet([self.images[int(i)] for i in index], self.labels[index],
                           self.magnifications[index], self.groups[index])

    def split_by_group(self, val_fraction: float, seed: int = 0) -> tuple[LabelledSet, LabelledSet]:
        """Train/validation split that keeps every group (source image) on one side."""
        uniq = np.unique(self.groups)
        if len(uniq) < 2:
            raise SemFocusError("need images from at least two source images to make a validation split.")
        rng = np.random.default_rng(seed)
        n_val = min(len(uniq) - 1, max(1, int(round(val_fraction * len(uniq)))))
        val_groups = set(rng.permutation(uniq)[:n_val].tolist())
        is_val = np.array([g in val_groups for g in self.groups.tolist()])
        return self.subset(np.flatnonzero(~is_val)), self.subset(np.flatnonzero(is_val))

    @classmethod
    def from_cache(cls, folder, prefix: str = "train") -> LabelledSet:
        """Load a training cache written by :func:`.dataset.make_dataset` (images memory-mapped)."""
        folder = Path(folder)
        images = np.load(folder / f"{prefix}_images.npy", mmap_mode="r")
        with open(folder / f"{prefix}_meta.csv", newline="") as fh:
            rows = list(csv.DictReader(fh))
        if len(rows) != len(images):
            raise SemFocusError(f"{folder}: {len(images)} images but {len(rows)} metadata rows.")
        return cls(images, np.array([float(r["label"]) for r in rows]),
                   np.array([float(r["magnification"]) for r in rows]),
                   np.array([r["source"] for r in rows]))

    @classmethod
    def from_manifest(cls, manifest, label_column: str = "label") -> LabelledSet:
        """Images listed in a CSV with ``path,magnification,<label_column>`` (one frame each;
        stacks contribute all their slices with the same label; data bars left out)."""
        rows = read_manifest(manifest, required=("path", "magnification", label_column))
        images, labels, mags, groups = [], [], [], []
        for row in rows:
            for f in read_frames(row["path"]):
                images.append(f)
                labels.append(float(row[label_column]))
                mags.append(row["magnification"])
                groups.append(row.get("source") or row.get("series") or row["path"])
        return cls(images, np.array(labels), np.array(mags), np.array(groups))


def sample_batch(data: LabelledSet, index: np.ndarray, crop_hw, rng: np.random.Generator,
                 flips: bool = True):
    """Normalised random crops (the paper's augmentation: random crops, h/v flips) of the
    frames at ``index``, with their encoded magnifications and labels, as numpy arrays."""
    ch, cw = crop_hw
    tiles = np.empty((len(index), ch, cw), dtype=np.float32)
    for k, i in enumerate(index):
        frame = normalise(np.asarray(data.images[int(i)], dtype=np.float32))
        frame = _pad_to(frame, ch, cw)
        y = rng.integers(0, frame.shape[0] - ch + 1)
        x = rng.integers(0, frame.shape[1] - cw + 1)
        tile = frame[y : y + ch, x : x + cw]
        if flips and rng.random() < 0.5:
            tile = tile[:, ::-1]
        if flips and rng.random() < 0.5:
            tile = tile[::-1, :]
        tiles[k] = tile
    mags = np.asarray(encode_magnification(data.magnifications[index]), dtype=np.float32)
    return tiles, mags, data.labels[index]


def _pad_to(frame: np.ndarray, h: int, w: int) -> np.ndarray:
    ph, pw = max(0, h - frame.shape[0]), max(0, w - frame.shape[1])
    if ph or pw:
        frame = np.pad(frame, ((0, ph), (0, pw)), mode="reflect")
    return frame
