"""The schema of a checkpoint's metadata: every field a loader trusts is checked here, so a
hand-edited or damaged header gives one sentence naming the file and the field (never a
traceback, never a hang: ``tile_hw = [1, 1]`` used to make scoring loop for minutes).

:func:`check_metadata` checks the header a loader reads; :func:`check_tensors` checks that every
weight is finite (a model trained into NaN is refused on saving and on loading).
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import CheckpointError

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
MIN_TILE = 32


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
    if not _number(margin) or not math.isfinite(margin) or margin < 0:
        raise bad("architecture.output_margin", margin, "expected a finite number >= 0")
    inp = meta.get("input", {})
    if not isinstance(inp, dict):
        raise bad("input", inp, "expected an object")
    if "tile_hw" in inp:
        tile = inp["tile_hw"]
        if (not isinstance(tile, list) or len(tile) != 2
                or not all(isinstance(t, int) and not isinstance(t, bool) for t in tile)
                or min(tile) < MIN_TILE):
            raise bad("input.tile_hw", tile, f"expected two whole numbers >= {MIN_TILE}")
    map_head = meta.get("map_head", {})
    if not isinstance(map_head, dict) or not isinstance(map_head.get("distilled_for", ""), str):
        raise bad("map_head", map_head, 'expected an object with a text "distilled_for"')
    return meta


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
