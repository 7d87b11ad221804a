"""The schema of a checkpoint's metadata: every field a loader trusts is checked here, so a
hand-edited or damaged header gives one sentence naming the file and the field (never a
traceback, never a hang: ``tile_hw = [1, 1]`` used to make scoring loop for minutes).

:func:`check_metadata` checks the header a loader reads; :func:`check_tensors` checks that every
weight is finite (a model trained into NaN is refused on saving and on loading).
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import CheckpointError, SemFocusError
from .preprocess import MAX_TILE_SIDE, MIN_TILE_SIDE, NORMALISATION

MAGNIFICATION_ENCODING = "clip((log10(M) - 2) / 4, 0, 1)"
SCORE_RANGE = [0.0, 10.0]

BACKBONES = (  # the trunks FocusNet is built on (here, so that reading a header needs no torch)
    "resnet18",
    "resnet34",
    "resnet50",
    "mobilenet_v3_small",
    "mobilenet_v3_large",
    "efficientnet_b0",
)
KNOWN_FORMAT_VERSIONS = (1,)
ARCHITECTURE_NAMES = ("FocusNet",)
# score = (10 + 2 margin) sigmoid(z) - margin: a margin beyond the scale itself (the ends reached
# at sigmoid 1/3 and 2/3) means nothing, and a huge one overflows float32 into NaN scores (1e308)
MAX_OUTPUT_MARGIN = 10.0


def _number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_metadata(meta, path, backbones=BACKBONES) -> dict:
    """``meta`` (the parsed JSON header of ``path``), checked; raises :class:`CheckpointError`."""
    def bad(field: str, value, want: str):
        return CheckpointError(f"checkpoint {path} has an invalid {field} {value!r} in its "
                               f"metadata ({want}).")

    if not isinstance(meta, dict):
        raise CheckpointError(f"checkpoint {path} has damaged metadata (a JSON "
                              f"{type(meta).__name__}, not an object).")
    version = meta.get("format_version")
    if not _number(version) or version not in KNOWN_FORMAT_VERSIONS:
        if _number(version) and version > max(KNOWN_FORMAT_VERSIONS):
            raise CheckpointError(
                f"checkpoint {path} has format version {version}, newer than this "
                f"napari-semfocus reads ({max(KNOWN_FORMAT_VERSIONS)}); please upgrade.")
        raise bad("format_version", version,
                  f"expected one of {', '.join(map(str, KNOWN_FORMAT_VERSIONS))}")
    arch = meta.get("architecture")
    if not isinstance(arch, dict):
        raise bad("architecture", arch, "expected an object")
    if arch.get("name", "FocusNet") not in ARCHITECTURE_NAMES:
        raise bad("architecture.name", arch.get("name"), "expected FocusNet")
    backbone = arch.get("backbone")
    if not isinstance(backbone, str) or backbone not in backbones:
        raise CheckpointError(f"checkpoint {path} names an unknown backbone {backbone!r}.")
    if not isinstance(arch.get("use_magnification", True), bool):
        raise bad("architecture.use_magnification", arch["use_magnification"],
                  "expected true or false")
    margin = arch.get("output_margin", 0.0)
    if not output_margin_ok(margin):
        raise bad("architecture.output_margin", margin,
                  f"expected a number from 0 to {MAX_OUTPUT_MARGIN:g}")
    inp = meta.get("input", {})
    if not isinstance(inp, dict):
        raise bad("input", inp, "expected an object")
    if "tile_hw" in inp:
        tile = inp["tile_hw"]
        if (not isinstance(tile, list) or len(tile) != 2
                or not all(isinstance(t, int) and not isinstance(t, bool) for t in tile)
                or not MIN_TILE_SIDE <= min(tile) <= max(tile) <= MAX_TILE_SIDE):
            raise bad("input.tile_hw", tile,
                      f"expected two whole numbers from {MIN_TILE_SIDE} to {MAX_TILE_SIDE}")
    # what this version feeds the model: a header that claims other inputs was not made for it
    for field, value, want in (
            ("input.channels", inp.get("channels", 3), 3),
            ("input.normalisation", inp.get("normalisation", NORMALISATION), NORMALISATION),
            ("magnification_encoding", meta.get("magnification_encoding", MAGNIFICATION_ENCODING),
             MAGNIFICATION_ENCODING),
            ("score_range", meta.get("score_range", SCORE_RANGE), SCORE_RANGE)):
        if value != want or type(value) is not type(want):
            raise bad(field, value, f"expected {want!r}, what this version feeds the model")
    map_head = meta.get("map_head", {})
    if not isinstance(map_head, dict) or not isinstance(map_head.get("distilled_for", ""), str):
        raise bad("map_head", map_head, 'expected an object with a text "distilled_for"')
    return meta


def output_margin_ok(margin) -> bool:
    """Whether ``margin`` is a FocusNet output margin: a finite number from 0 to
    :data:`MAX_OUTPUT_MARGIN`."""
    return _number(margin) and math.isfinite(margin) and 0 <= margin <= MAX_OUTPUT_MARGIN


def check_output_margin(margin, what: str = "output margin") -> float:
    """``margin`` as a float, or :class:`SemFocusError` (a model built or trained with it)."""
    if not output_margin_ok(margin):
        raise SemFocusError(f"{what} {margin} is not a number from 0 to {MAX_OUTPUT_MARGIN:g}.")
    return float(margin)


def check_tensors(state: dict, path) -> None:
    """Raise :class:`CheckpointError` when a floating-point tensor of ``state`` holds NaN or
    infinity (``path``: the file, for the message)."""
    bad = [k for k, v in state.items() if v.is_floating_point() and not _all_finite(v)]
    if bad:
        raise CheckpointError(f"checkpoint {path} is broken: {len(bad)} of {len(state)} tensors "
                              f"hold NaN or infinite values (first: {bad[0]}).")


def _all_finite(t) -> bool:
    """Whether a floating-point tensor is all finite. On the CPU numpy's check is used: torch's
    ``isfinite(t).all()`` took ~0.7 s over ResNet18's weights here (numpy: ~10 ms), a third of
    loading the model."""
    import torch  # lazily: callers already hold torch tensors

    t = t.detach()
    if t.device.type == "cpu":
        return bool(np.isfinite(t.float().numpy()).all())
    return bool(torch.isfinite(t).all())
