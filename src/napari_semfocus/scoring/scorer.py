"""FocusScorer: the public entry point for scoring images, stacks and tiles with a FocusNet.

    >>> from napari_semfocus import FocusScorer
    >>> scorer = FocusScorer.load()               # the shipped model (or a checkpoint), "auto" device
    >>> scorer.score(stack, magnification=5000)   # one score per (H, W) frame

Every prediction runs here: :meth:`FocusScorer.predict` (normalised tiles -> scores) and
:meth:`FocusScorer.feature_map`, :meth:`~FocusScorer.pooled_features` and
:meth:`~FocusScorer.pooled_scores` (the trunk over a window, its feature map pooled per region,
the map head: focus maps). Whole-image scores, focus maps (:mod:`.focus_map`), training validation
(:func:`napari_semfocus.training.loop.predict_frames`), the CLI, the widgets and the tests all
score through this class. torch is imported inside the methods that run the model, so that
importing this module (and the widgets) stays cheap.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..errors import BrokenModelError, SemFocusError, SemFocusWarning, check_whole_number
from ..io.frames import as_frames
from ..progress import run_to_end
from ..scale import (
    MAG_ENCODABLE,
    check_magnifications,
    encode_magnification,
    magnification_error,
    parse_magnification,
)
from .aggregate import structure_weights, tile_structure, weighted_score
from .backends import make_engine
from .checkpoint import load_checkpoint, model_file
from .devices import describe_device, resolve_device
from .focus_curve import focus_curve
from .focus_map import DEFAULT_MODE, focus_map
from .intervals import IntervalModel, noise_level
from .lazy_frames import LazyFrames, is_lazy
from .map_grid import FocusMap
from .preprocess import TILE_HW, Window, normalise, region_windows


class TileScores(NamedTuple):
    """The parts of frames' scores (each (N frames, tiles per frame), tiles in
    :func:`region_windows` order): the tiles' scores, their structure weights and their noise
    (:func:`.intervals.noise_level` of the normalised tile)."""

    scores: np.ndarray
    weights: np.ndarray
    noise: np.ndarray

    def frame_noise(self) -> np.ndarray:
        """Per frame: the median noise of its tiles (what the score's interval is binned by)."""
        return np.median(self.noise, axis=1)


class FocusScorer:
    """A loaded focus model on a device, ready to score frames."""

    def __init__(self, model, metadata: dict | None = None, device="auto", precision="auto",
                 backend="auto"):
        import torch  # lazily, as the module docstring says

        self.device = resolve_device(device)
        self.model = model.to(self.device).to(memory_format=torch.channels_last).eval()
        self.metadata = dict(metadata or {})
        # what runs the trunk (:mod:`.backends`): PyTorch, or ONNX Runtime from a model file
        self.engine, self.precision = make_engine(self.model, self.device, precision, backend,
                                                  self.metadata.get("checkpoint_path"))
        self.backend = self.engine.name
        self.device_name = describe_device(self.device, self.precision) + (
            "" if self.backend == "torch" else f" [{self.backend}]")
        self.tile_hw = tuple(self.metadata.get("input", {}).get("tile_hw", TILE_HW))

    # ---- construction -------------------------------------------------------------------
    @classmethod
    def load(cls, checkpoint=None, device="auto", precision="auto", backend="auto"
             ) -> FocusScorer:
        """The model in ``checkpoint``, or the one shipped with the package when it is None
        (:func:`~.checkpoint.model_file`; loaded offline). ``backend``: auto | torch |
        onnxruntime (:func:`.backends.resolve_backend`)."""
        path = model_file(checkpoint)
        model, meta = load_checkpoint(path)
        meta["checkpoint_path"] = str(path)
        return cls(model, meta, device=device, precision=precision, backend=backend)

    @classmethod
    def default(cls, device="auto", precision="auto", backend="auto") -> FocusScorer:
        """The model shipped with the package."""
        return cls.load(None, device=device, precision=precision, backend=backend)

    @classmethod
    def from_checkpoint(cls, path, device="auto", precision="auto", backend="auto"
                        ) -> FocusScorer:
        """The model in the checkpoint file ``path``."""
        return cls.load(Path(path), device=device, precision=precision, backend=backend)

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
        """One score per 2-D frame of ``image`` (2-D, (N, H, W) or RGB), as a float array (N,).
        A dask array is read a group of slices at a time, never whole (:mod:`.lazy_frames`)."""
        return run_to_end(self.score_iter(image, magnification, region, batch_size,
                                          exclude_bottom_rows, name))

    def score_iter(self, image, magnification=None, region: str = "whole", batch_size: int = 32,
                   exclude_bottom_rows: int = 0, name: str = "image"
                   ) -> Iterator[tuple[int, int]]:
        """Generator form of :meth:`score`: yields ``(tiles_done, tiles_total)`` after each batch
        (a caller can stop between batches) and returns the scores array. A frame's score is
        the structure-weighted mean of its tiles' scores (:mod:`.aggregate`)."""
        tiles = yield from self.tiles_iter(image, magnification, region, batch_size,
                                           exclude_bottom_rows, name)
        return np.array([weighted_score(s, w) for s, w in zip(tiles.scores, tiles.weights,
                                                               strict=True)])

    def tiles_iter(self, image, magnification=None, region: str = "whole", batch_size: int = 32,
                   exclude_bottom_rows: int = 0, name: str = "image"
                   ) -> Iterator[tuple[int, int]]:
        """Like :meth:`score_iter`, but returns the parts of the scores: :class:`TileScores`."""
        frames = LazyFrames(image, name) if is_lazy(image) else as_frames(image, name)
        n, rows, width = frames.shape
        if exclude_bottom_rows:
            if exclude_bottom_rows >= rows - 16:
                raise SemFocusError(f"{name}: the data bar covers the whole frame.")
            rows -= int(exclude_bottom_rows)
        mags = self.encode_magnifications(magnification, n, name)
        windows = region_windows((rows, width), region, self.tile_hw)
        total = n * len(windows)
        tile_scores = np.empty(total, dtype=np.float64)
        structure = np.empty(total, dtype=np.float64)
        noise = np.empty(total, dtype=np.float64)
        done = 0
        batch_size = check_whole_number(batch_size, "batch_size")
        for frame_ids, tiles in _batches(frames, rows, windows, batch_size):
            m = None if mags is None else mags[frame_ids]
            tile_scores[done : done + len(tiles)] = self.predict(tiles, m)
            structure[done : done + len(tiles)] = [tile_structure(t) for t in tiles]
            noise[done : done + len(tiles)] = noise_level(tiles)
            done += len(tiles)
            yield done, total
        shape = (n, len(windows))
        weights = np.stack([structure_weights(s) for s in structure.reshape(shape)])
        return TileScores(tile_scores.reshape(shape), weights, noise.reshape(shape))

    @property
    def interval(self) -> IntervalModel | None:
        """The model's score intervals (its metadata's ``interval``), or None when it has none
        (a fine-tuned model, until its intervals are calibrated)."""
        d = self.metadata.get("interval")
        return None if d is None else IntervalModel.from_dict(d)

    def bounds(self, scores, noise) -> tuple[np.ndarray, np.ndarray] | None:
        """``(low, high)`` of each score, frames with ``noise`` (:meth:`TileScores.frame_noise`);
        None when the model has no intervals."""
        model = self.interval
        return None if model is None else model.bounds(scores, noise)

    def focus_map(self, image, magnification=None, tile=TILE_HW, stride=None,
                  mode: str = DEFAULT_MODE,
                  exclude_bottom_rows: int = 0, batch_size: int = 32,
                  name: str = "image") -> FocusMap:
        """Focus score per tile of a 2-D frame on a regular grid (default stride: half a tile):
        a :class:`~.map_grid.FocusMap`. :func:`.focus_map.focus_map` is the generator form.
        ``tile`` and ``stride`` are (height, width) pairs of whole numbers (else one sentence)."""
        tile = pixel_pair(tile, "tile")
        stride = None if stride is None else pixel_pair(stride, "stride")
        return run_to_end(focus_map(self, image, magnification, tile, stride, mode,
                                    exclude_bottom_rows, batch_size=batch_size, name=name))

    def focus_curve(self, stack, magnification=None, z=None, name: str = "series",
                    exclude_bottom_rows: int = 0, interval: str = "profile"):
        """Best focus of a through-focus ``stack`` (N, H, W): its slices scored here, the curve
        sigma(z) = sqrt(s0^2 + (k (z - z0))^2) fitted, astigmatism judged; ``z`` one focus
        position per slice in micrometres (None: the index). A
        :class:`~.through_focus.FocusCurve` (:func:`.focus_curve.focus_curve`)."""
        return focus_curve(self, stack, magnification, z, name, exclude_bottom_rows, interval)

    def encode_magnifications(self, magnification, n: int, name: str):
        """Encoded magnifications (float32 (n,)) for ``n`` frames from one value or one per
        frame; None for a model without the magnification input. Raises naming ``name``."""
        if magnification is None or (isinstance(magnification, float) and np.isnan(magnification)):
            if self.needs_magnification:
                raise SemFocusError(
                    f"{name}: no magnification given, and the model {self.name} needs one."
                )
            return None
        if isinstance(magnification, str):  # text as users write it: 5000, 5k, 5,000x
            magnification = parse_magnification(magnification, name, required=True)
        try:
            mags = np.atleast_1d(np.asarray(magnification, dtype=np.float64))
        except (TypeError, ValueError):
            raise magnification_error(magnification, name) from None
        if mags.size == 1:
            mags = np.repeat(mags, n)
        if mags.size != n:
            raise SemFocusError(f"{name}: {mags.size} magnifications given for {n} frames.")
        check_magnifications(mags, name)
        outside = mags[(mags < MAG_ENCODABLE[0]) | (mags > MAG_ENCODABLE[1])]
        if self.needs_magnification and outside.size:
            warnings.warn(SemFocusWarning(
                f"{name}: magnification {outside[0]:g} is outside the range the model encodes "
                f"({MAG_ENCODABLE[0]:g}-{MAG_ENCODABLE[1]:g}x); it is scored as "
                f"{min(max(outside[0], MAG_ENCODABLE[0]), MAG_ENCODABLE[1]):g}x."), stacklevel=2)
        return np.asarray(encode_magnification(mags), dtype=np.float32)

    def predict(self, tiles: np.ndarray, encoded_mag: np.ndarray | None) -> np.ndarray:
        """Scores of a batch of normalised tiles (B, h, w) with encoded magnifications (B,).
        Perfectly uniform tiles (white, black, grey) score 0 without asking the model."""
        import torch  # lazily, as the module docstring says

        feats = self.engine.pooled(tiles).to(self.device)  # the trunk: torch or ONNX Runtime
        m = None if encoded_mag is None else torch.as_tensor(encoded_mag, dtype=torch.float32,
                                                              device=self.device)
        with torch.inference_mode():
            out = self.model.score_features(feats, m)  # the head: float32 torch
        scores = self._finite(out.float().cpu().numpy())
        # a tile without any contrast holds no sample: 0 by the scale's definition
        scores[np.ptp(tiles.reshape(len(tiles), -1), axis=1) == 0] = 0.0
        return scores

    @property
    def has_map_head(self) -> bool:
        """Whether the model carries a map head (shared-trunk focus maps need one)."""
        return getattr(self.model, "map_head", None) is not None

    def feature_map(self, window: np.ndarray):
        """The trunk's feature map (C, h, w) of one normalised 2-D ``window`` (a float32 torch
        tensor on the scorer's device): one cell per 32 pixels (``map_grid.FEATURE_STRIDE``)."""
        import torch  # lazily, as the module docstring says

        with torch.inference_mode(), self.engine.autocast():
            return self.engine.feature_map(window).to(self.device).float()

    def pooled_features(self, feats, row_weights: np.ndarray, col_weights: np.ndarray):
        """Region means of a feature map ``feats`` (C, h, w): ``row_weights`` (R, h) and
        ``col_weights`` (K, w) weigh its cells (rows sum to 1); a float32 torch tensor
        (R, K, C) on the scorer's device."""
        import torch  # lazily, as the module docstring says

        with torch.inference_mode(), self.engine.autocast():
            wy, wx = (torch.from_numpy(w).to(self.device) for w in (row_weights, col_weights))
            return torch.einsum("rh,chw,kw->rkc", wy, feats, wx).float()

    def pooled_scores(self, pooled, encoded_mag) -> np.ndarray:
        """The map head's scores (R, K) of region-pooled features ``pooled`` (R, K, C) from
        :meth:`pooled_features`. ``encoded_mag``: (1,) or None. Needs a map head
        (:attr:`has_map_head`)."""
        import torch  # lazily, as the module docstring says

        flat = pooled.reshape(-1, pooled.shape[-1])
        with torch.inference_mode():
            m = None if encoded_mag is None else torch.as_tensor(
                np.repeat(encoded_mag, flat.shape[0]), dtype=torch.float32, device=self.device)
            out = self._finite(self.model.map_scores(flat, m).float().cpu().numpy())
        return out.reshape(pooled.shape[0], pooled.shape[1])

    def _finite(self, scores: np.ndarray) -> np.ndarray:
        """``scores``, checked: the inputs are finite (:func:`~napari_semfocus.io.frames.check_values`),
        so a NaN or infinite score means a broken model; it is refused here, where every
        prediction passes, and never written (nor trained on, nor compared with a gate)."""
        bad = scores[~np.isfinite(scores)]
        if bad.size:
            where = (self.metadata.get("checkpoint_path") or getattr(self.model, "source", None)
                     or self.name)
            raise BrokenModelError(f"the model {where} gives {bad[0]} scores, so it is broken (a "
                                   f"damaged or edited checkpoint); use another model.")
        return scores


def _batches(frames, rows: int, windows: Sequence[Window], batch_size: int):
    """Yield (frame index per tile, normalised tiles) in batches; normalisation is per frame, of
    its first ``rows`` rows (the data bar left out). ``frames``: (N, H, W) or :class:`LazyFrames`."""
    ids, tiles = [], []
    for i, frame in enumerate(frames):
        norm = normalise(frame[:rows])
        for w in windows:
            ids.append(i)
            tiles.append(w.cut(norm))
            if len(tiles) == batch_size:
                yield np.asarray(ids), np.stack(tiles)
                ids, tiles = [], []
    if tiles:
        yield np.asarray(ids), np.stack(tiles)


def pixel_pair(value, what: str) -> tuple[int, int]:
    """``value`` as (height, width) whole numbers; :class:`SemFocusError` naming ``what`` for
    anything else (one number, three, text, fractions)."""
    try:
        pair = tuple(value)
        ok = len(pair) == 2 and all(float(v) == int(v) and not isinstance(v, bool | str)
                                    for v in pair)
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok:
        raise SemFocusError(f"{what} {value!r} is not a (height, width) pair of whole numbers "
                            f"of pixels.")
    return int(pair[0]), int(pair[1])
