"""FocusScorer: the public entry point for scoring images, stacks and tiles with a FocusNet.

    >>> from napari_semfocus import FocusScorer
    >>> scorer = FocusScorer.default()            # the shipped model, device "auto"
    >>> scorer.score(stack, magnification=5000)   # one score per (H, W) frame

The CLI, the napari widgets and the tests all score through this class.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from importlib import resources
from pathlib import Path

import numpy as np

from ..errors import SemFocusError
from ..scale import encode_magnification
from .aggregate import structure_weights, tile_structure, weighted_score
from .preprocess import TILE_HW, Window, as_frames, normalise, region_windows, to_model_input

DEFAULT_MODEL_NAME = "focusnet-resnet18-v3.safetensors"


def default_model_path() -> Path:
    """Where the shipped model lives inside the installed package."""
    return Path(str(resources.files("napari_semfocus") / "models" / DEFAULT_MODEL_NAME))


class FocusScorer:
    """A loaded focus model on a device, ready to score frames."""

    def __init__(self, model, metadata: dict | None = None, device="auto", precision="auto"):
        import torch

        from .devices import describe_device, resolve_device, resolve_precision

        self.device = resolve_device(device)
        self.precision = resolve_precision(self.device, precision)
        self.device_name = describe_device(self.device, self.precision)
        self.model = model.to(self.device).to(memory_format=torch.channels_last).eval()
        self.metadata = dict(metadata or {})
        self.tile_hw = tuple(self.metadata.get("input", {}).get("tile_hw", TILE_HW))

    # ---- construction -------------------------------------------------------------------
    @classmethod
    def default(cls, device="auto", precision="auto") -> FocusScorer:
        """The model shipped with the package (loaded offline)."""
        path = default_model_path()
        if not path.is_file():
            raise SemFocusError(
                "the default focus model is not shipped with this installation; "
                "pass a checkpoint file (--checkpoint FILE / FocusScorer.from_checkpoint)."
            )
        return cls.from_checkpoint(path, device=device, precision=precision)

    @classmethod
    def from_checkpoint(cls, path, device="auto", precision="auto") -> FocusScorer:
        from .checkpoint import load_checkpoint

        model, meta = load_checkpoint(path)
        meta["checkpoint_path"] = str(path)
        return cls(model, meta, device=device, precision=precision)

    @property
    def needs_magnification(self) -> bool:
        return bool(self.model.use_magnification)

    @property
    def name(self) -> str:
        path = self.metadata.get("checkpoint_path")
        return Path(path).name if path else f"FocusNet-{self.model.backbone}"

    # ---- scoring --------------------------------------------------------------------------
    def score(self, image, magnification=None, region: str = "whole", batch_size: int = 32,
              exclude_bottom_rows: int = 0, name: str = "image") -> np.ndarray:
        """One score per 2-D frame of ``image`` (2-D, (N, H, W) or RGB), as a float array (N,)."""
        gen = self.score_iter(image, magnification, region, batch_size, exclude_bottom_rows, name)
        while True:
            try:
                next(gen)
            except StopIteration as stop:
                return stop.value

    def score_iter(self, image, magnification=None, region: str = "whole", batch_size: int = 32,
                   exclude_bottom_rows: int = 0, name: str = "image"
                   ) -> Iterator[tuple[int, int]]:
        """Generator form of :meth:`score`: yields ``(tiles_done, tiles_total)`` after each batch
        (a caller can stop between batches) and returns the scores array. A frame's score is
        the structure-weighted mean of its tiles' scores (:mod:`napari_semfocus.aggregate`)."""
        frames = as_frames(image, name)
        if exclude_bottom_rows:
            if exclude_bottom_rows >= frames.shape[1] - 16:
                raise SemFocusError(f"{name}: the data bar covers the whole frame.")
            frames = frames[:, : frames.shape[1] - int(exclude_bottom_rows)]
        mags = self._encoded_magnifications(magnification, len(frames), name)
        windows = region_windows(frames.shape[1:], region, self.tile_hw)
        per_frame = len(windows)
        total = len(frames) * per_frame
        tile_scores = np.empty(total, dtype=np.float64)
        structure = np.empty(total, dtype=np.float64)
        done = 0
        for frame_ids, tiles in _batches(frames, windows, max(1, int(batch_size))):
            m = None if mags is None else mags[frame_ids]
            tile_scores[done : done + len(tiles)] = self.predict(tiles, m)
            structure[done : done + len(tiles)] = [tile_structure(t) for t in tiles]
            done += len(tiles)
            yield done, total
        tile_scores = tile_scores.reshape(len(frames), per_frame)
        weights = [structure_weights(s) for s in structure.reshape(len(frames), per_frame)]
        return np.array([weighted_score(s, w) for s, w in zip(tile_scores, weights, strict=True)])

    def focus_map(self, image, magnification=None, tile=TILE_HW, stride=None, mode: str = "shared",
                  exclude_bottom_rows: int = 0, batch_size: int = 32, name: str = "image"):
        """Focus score per tile of a 2-D frame on a regular grid (default stride: half a tile):
        a :class:`~napari_semfocus.tiling.FocusMap`. ``tiling.focus_map`` is the generator form."""
        from .focus_map import focus_map, run_to_end

        return run_to_end(focus_map(self, image, magnification, tile, stride, mode,
                                    exclude_bottom_rows, batch_size=batch_size, name=name))

    def predict(self, tiles: np.ndarray, encoded_mag: np.ndarray | None) -> np.ndarray:
        """Scores of a batch of normalised tiles (B, h, w) with encoded magnifications (B,).
        Perfectly uniform tiles (white, black, grey) score 0 without asking the model."""
        import torch

        from .devices import autocast

        x = to_model_input(tiles).to(self.device, non_blocking=True)
        m = None if encoded_mag is None else torch.as_tensor(encoded_mag, dtype=torch.float32,
                                                              device=self.device)
        with torch.inference_mode(), autocast(self.device, self.precision):
            out = self.model(x, m)
        scores = out.float().cpu().numpy()
        # a tile without any contrast holds no sample: 0 by the scale's definition
        scores[np.ptp(tiles.reshape(len(tiles), -1), axis=1) == 0] = 0.0
        return scores

    def _encoded_magnifications(self, magnification, n: int, name: str):
        if magnification is None or (isinstance(magnification, float) and np.isnan(magnification)):
            if self.needs_magnification:
                raise SemFocusError(
                    f"{name}: no magnification given, and the model {self.name} needs one."
                )
            return None
        mags = np.atleast_1d(np.asarray(magnification, dtype=np.float64))
        if mags.size == 1:
            mags = np.repeat(mags, n)
        if mags.size != n:
            raise SemFocusError(f"{name}: {mags.size} magnifications given for {n} frames.")
        if np.any(~np.isfinite(mags)) or np.any(mags <= 0):
            raise SemFocusError(f"{name}: magnification must be a positive number, got {magnification!r}.")
        return np.asarray(encode_magnification(mags), dtype=np.float32)


def _batches(frames: np.ndarray, windows: Sequence[Window], batch_size: int):
    """Yield (frame index per tile, normalised tiles) in batches; normalisation is per frame."""
    ids, tiles = [], []
    for i, frame in enumerate(frames):
        norm = normalise(frame)
        for w in windows:
            ids.append(i)
            tiles.append(w.cut(norm))
            if len(tiles) == batch_size:
                yield np.asarray(ids), np.stack(tiles)
                ids, tiles = [], []
    if tiles:
        yield np.asarray(ids), np.stack(tiles)

