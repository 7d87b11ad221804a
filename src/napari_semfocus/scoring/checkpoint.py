"""Model files: safetensors weights with the JSON metadata in the safetensors header, the shipped
default model, and the fingerprint (SHA-256) that ties a gate to its model.

A checkpoint may also hold a *map head* (tensors ``map_head.*``, metadata ``map_head``): the
head distilled for focus maps (:mod:`.focus_map`), valid only for the weights it was distilled
for (``map_head.distilled_for``, :func:`~.model.scoring_fingerprint`). A checkpoint without one
loads as before (its maps are scored tile by tile, see :mod:`.focus_map`); one whose map head
does not fit its weights (edited, fine-tuned by another tool) loads without it, with a warning.

Nothing is ever unpickled. Files are written atomically (:func:`napari_semfocus.io.files.atomic_write`),
so an interrupted write never leaves a broken checkpoint behind. :func:`model_file` is the one
place that turns "a checkpoint file or the default model" into a file, for scoring, fine-tuning,
the CLI and the widgets. torch, safetensors' torch functions and :mod:`.model` (which imports
torch) are imported inside the functions that load or save weights, so that this module is
cheap to import (the widgets read fingerprints and paths without loading torch).
"""

from __future__ import annotations

import hashlib
import json
import warnings
from importlib import resources
from pathlib import Path

from safetensors import safe_open

from ..errors import CheckpointError, SemFocusError, SemFocusWarning
from ..io.files import atomic_write, existing_file, file_sha256
from .checkpoint_schema import MAGNIFICATION_ENCODING, check_metadata, check_tensors
from .preprocess import NORMALISATION, TILE_HW

FORMAT = "napari-semfocus-checkpoint"
FORMAT_VERSION = 1
METADATA_KEY = "semfocus"
DEFAULT_MODEL_NAME = "focusnet-resnet18-v5.safetensors"
DEFAULT_MODEL_MISSING = ("the default focus model is not installed with napari-semfocus: use a "
                         "checkpoint file instead.")


# ---- which file -------------------------------------------------------------------------------
def default_model_path() -> Path:
    """Where the shipped model lives inside the installed package."""
    return Path(str(resources.files("napari_semfocus") / "models" / DEFAULT_MODEL_NAME))


def model_file(checkpoint=None) -> Path:
    """The file to load for ``checkpoint``: the file itself, or the shipped default model when
    it is None, '' or 'default' (:class:`SemFocusError` when that is not installed)."""
    if checkpoint not in (None, "", "default"):
        return Path(checkpoint)
    path = default_model_path()
    if not path.is_file():
        raise SemFocusError(DEFAULT_MODEL_MISSING)
    return path


def model_fingerprint(scorer) -> dict:
    """``{"name", "sha256", "hash_of"}`` of a :class:`~napari_semfocus.scoring.scorer.FocusScorer`:
    the SHA-256 of its checkpoint file, or of its metadata when it was not loaded from a file."""
    path = scorer.metadata.get("checkpoint_path")
    if path and Path(path).is_file():
        return {"name": scorer.name, "sha256": file_sha256(path), "hash_of": "file"}
    meta = {k: v for k, v in scorer.metadata.items() if k != "checkpoint_path"}
    text = json.dumps(meta, sort_keys=True, default=str)
    return {"name": scorer.name, "sha256": hashlib.sha256(text.encode()).hexdigest(),
            "hash_of": "metadata"}


def checkpoint_fingerprint(path=None) -> dict:
    """Fingerprint of a checkpoint file (``None``: the shipped default model) without loading
    the model."""
    path = existing_file(path if path is not None else default_model_path(), "checkpoint")
    return {"name": path.name, "sha256": file_sha256(path), "hash_of": "file"}


# ---- writing and reading ----------------------------------------------------------------------
def base_metadata(model) -> dict:
    """Metadata every checkpoint carries; callers add provenance, metrics, training data."""
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "architecture": model.architecture(),
        "input": {"tile_hw": list(TILE_HW), "channels": 3, "normalisation": dict(NORMALISATION)},
        "magnification_encoding": MAGNIFICATION_ENCODING,
        "score_range": [0.0, 10.0],
    }


def save_checkpoint(model, path, metadata: dict | None = None, half: bool = False) -> Path:
    """Write ``model`` (a :class:`~.model.FocusNet`) and its metadata to ``path`` (.safetensors),
    atomically. ``half=True`` stores floating-point weights as float16 (for the shipped model)."""
    import torch  # lazily, as the module docstring says
    from safetensors.torch import save_file

    meta = base_metadata(model)
    meta.update(metadata or {})
    meta["weights_dtype"] = "float16" if half else "float32"
    meta.pop("map_head", None)  # describes this model's map head only, never a parent's
    if getattr(model, "map_head", None) is not None:
        meta["map_head"] = {"distilled_for": model.map_head_of, **getattr(model, "map_head_info", {})}
    tensors = {}
    for k, v in model.state_dict().items():
        v = v.detach().cpu()
        if half and v.is_floating_point():
            v = v.to(torch.float16)
        tensors[k] = v.contiguous()
    try:
        check_tensors(tensors, path)
    except CheckpointError:
        raise SemFocusError(f"the model is broken (NaN or infinite weights): not saving it as "
                            f"{path}.") from None
    header = {METADATA_KEY: json.dumps(meta, sort_keys=True)}
    atomic_write(Path(path), lambda tmp: save_file(tensors, tmp, metadata=header))
    return Path(path)


def read_metadata(path) -> dict:
    """The checkpoint's metadata, checked to be ours; raises :class:`CheckpointError`."""
    path = existing_file(path, "checkpoint", CheckpointError)
    try:
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
    except Exception as exc:  # safetensors raises several types for damaged files
        raise CheckpointError(
            f"checkpoint {path} is not a readable safetensors file ({_short(exc)})."
        ) from None
    if METADATA_KEY not in header:
        raise CheckpointError(
            f"checkpoint {path} is not a napari-semfocus model (its header has no '{METADATA_KEY}' metadata)."
        )
    try:
        meta = json.loads(header[METADATA_KEY])
    except json.JSONDecodeError:
        raise CheckpointError(f"checkpoint {path} has damaged metadata (not valid JSON).") from None
    if not isinstance(meta, dict):
        check_metadata(meta, path, ())  # the sentence for a header that is not an object
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint {path} is not a napari-semfocus model (format {meta.get('format')!r}).")
    return check_metadata(meta, path)


def load_checkpoint(path, expected_backbone: str | None = None):
    """Build the model a checkpoint describes and load its weights (float32, eval mode):
    ``(FocusNet, metadata)``."""
    from safetensors.torch import load_file  # lazily, as the module docstring says

    from .model import MAP_HEAD_PREFIX, FocusNet, scoring_fingerprint  # lazily: imports torch

    path = Path(path)
    meta = read_metadata(path)
    arch = meta["architecture"]  # checked by read_metadata's schema
    backbone = arch["backbone"]
    if expected_backbone is not None and backbone != expected_backbone:
        raise CheckpointError(
            f"checkpoint {path} holds a FocusNet-{backbone}, not the FocusNet-{expected_backbone} asked for."
        )
    model = FocusNet(backbone, use_magnification=bool(arch.get("use_magnification", True)),
                     output_margin=float(arch.get("output_margin", 0.0)))
    try:
        state = load_file(str(path))
    except Exception as exc:
        raise CheckpointError(f"checkpoint {path} is damaged ({_short(exc)}).") from None
    state = {k: (v.float() if v.is_floating_point() else v) for k, v in state.items()}
    check_tensors(state, path)
    map_state = {k: state.pop(k) for k in list(state) if k.startswith(MAP_HEAD_PREFIX)}
    missing, unexpected, mismatched = _compare(model.state_dict(), state)
    if missing or unexpected or mismatched:
        detail = (missing + unexpected + mismatched)[:3]
        raise CheckpointError(
            f"checkpoint {path} does not fit a FocusNet-{backbone} (first differences: {', '.join(detail)})."
        )
    built = model.architecture()
    for key in ("head_hidden", "feature_dim"):  # the weights fit: so must these numbers
        if key in arch and arch[key] != built[key]:
            raise CheckpointError(
                f"checkpoint {path} has an invalid architecture.{key} {arch[key]!r} in its "
                f"metadata (a FocusNet-{backbone} has {built[key]!r}).")
    model.load_state_dict(state, strict=True)
    if map_state:
        _load_map_head(model, map_state, meta, path, scoring_fingerprint(state))
    model.eval()
    model.source = str(path)  # the file, for messages about the model as loaded
    return model, meta


def _load_map_head(model, map_state: dict, meta: dict, path, fingerprint: str) -> None:
    """Attach the checkpoint's map head when it was distilled for these weights; else leave it
    out (the map then scores crops) with a warning, and say so in ``meta["map_head"]``."""
    from .model import MAP_HEAD_PREFIX  # lazily: the model's module imports torch

    info = meta.get("map_head") if isinstance(meta.get("map_head"), dict) else {}
    head = model.attach_map_head()
    n = len(MAP_HEAD_PREFIX)
    map_state = {k[n:]: v for k, v in map_state.items()}
    missing, unexpected, mismatched = _compare(head.state_dict(), map_state)
    why = ""
    if missing or unexpected or mismatched:
        why = f"its map head does not fit ({', '.join((missing + unexpected + mismatched)[:2])})"
    elif info.get("distilled_for") != fingerprint:
        why = "its map head was distilled for other weights (a stale map head)"
    if why:
        model.drop_map_head()
        meta["map_head"] = {**info, "ignored": why}
        warnings.warn(SemFocusWarning(f"checkpoint {path}: {why}; it is not used, and focus maps "
                                      "score every tile's crop instead (exact, slower)."),
                      stacklevel=3)
        return
    head.load_state_dict(map_state, strict=True)
    model.map_head_of = fingerprint
    model.map_head_info = {k: v for k, v in info.items() if k != "distilled_for"}


def _compare(expected: dict, got: dict):
    missing = [f"missing {k}" for k in expected if k not in got]
    unexpected = [f"unexpected {k}" for k in got if k not in expected]
    mismatched = [
        f"{k} has shape {tuple(got[k].shape)} not {tuple(v.shape)}"
        for k, v in expected.items()
        if k in got and tuple(got[k].shape) != tuple(v.shape)
    ]
    return missing, unexpected, mismatched


def _short(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:160]
