"""Model files: safetensors weights with the JSON metadata in the safetensors header.

Nothing is ever unpickled. Files are written to a temporary file in the same folder and renamed
into place, so an interrupted write never leaves a broken checkpoint behind.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from ..errors import CheckpointError
from .model import BACKBONES, FocusNet
from .preprocess import NORMALISATION, TILE_HW

FORMAT = "napari-semfocus-checkpoint"
FORMAT_VERSION = 1
METADATA_KEY = "semfocus"
MAGNIFICATION_ENCODING = "clip((log10(M) - 2) / 4, 0, 1)"


def base_metadata(model: FocusNet) -> dict:
    """Metadata every checkpoint carries; callers add provenance, metrics, training data."""
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "architecture": model.architecture(),
        "input": {"tile_hw": list(TILE_HW), "channels": 3, "normalisation": dict(NORMALISATION)},
        "magnification_encoding": MAGNIFICATION_ENCODING,
        "score_range": [0.0, 10.0],
    }


def atomic_write(path: Path, write) -> None:
    """Call ``write(tmp_path)`` and rename the result onto ``path`` (same folder, atomic)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_checkpoint(model: FocusNet, path, metadata: dict | None = None, half: bool = False):
    """Write ``model`` and its metadata to ``path`` (.safetensors), atomically.
    ``half=True`` stores floating-point weights as float16 (for the shipped model)."""
    import torch
    from safetensors.torch import save_file

    meta = base_metadata(model)
    meta.update(metadata or {})
    meta["weights_dtype"] = "float16" if half else "float32"
    tensors = {}
    for k, v in model.state_dict().items():
        v = v.detach().cpu()
        if half and v.is_floating_point():
            v = v.to(torch.float16)
        tensors[k] = v.contiguous()
    header = {METADATA_KEY: json.dumps(meta, sort_keys=True)}
    atomic_write(Path(path), lambda tmp: save_file(tensors, tmp, metadata=header))
    return Path(path)


def read_metadata(path) -> dict:
    """The checkpoint's metadata, checked to be ours; raises :class:`CheckpointError`."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist.")
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
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint {path} is not a napari-semfocus model (format {meta.get('format')!r}).")
    if int(meta.get("format_version", 0)) > FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint {path} has format version {meta['format_version']}, newer than this "
            f"napari-semfocus reads ({FORMAT_VERSION}); please upgrade."
        )
    return meta


def load_checkpoint(path, expected_backbone: str | None = None) -> tuple[FocusNet, dict]:
    """Build the model a checkpoint describes and load its weights (float32, eval mode)."""
    from safetensors.torch import load_file

    path = Path(path)
    meta = read_metadata(path)
    arch = meta.get("architecture", {})
    backbone = arch.get("backbone")
    if backbone not in BACKBONES:
        raise CheckpointError(f"checkpoint {path} names an unknown backbone {backbone!r}.")
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
    missing, unexpected, mismatched = _compare(model.state_dict(), state)
    if missing or unexpected or mismatched:
        detail = (missing + unexpected + mismatched)[:3]
        raise CheckpointError(
            f"checkpoint {path} does not fit a FocusNet-{backbone} (first differences: {', '.join(detail)})."
        )
    model.load_state_dict(state, strict=True)
    model.eval()
    return model, meta


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
