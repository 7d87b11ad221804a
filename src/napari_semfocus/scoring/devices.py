"""Choosing the torch device (``auto`` = CUDA, then Apple MPS, then CPU) and the arithmetic
precision the model runs in there.

Precision (``auto`` | ``float32`` | ``bf16``): on CUDA ``auto`` is float16 autocast; on a CPU
whose instruction set has bfloat16 arithmetic (AVX512-BF16 or AMX-BF16, read from the CPU's
flags) ``auto`` is bfloat16 autocast, which runs ResNet18 2-4x faster than float32 with scores
within a few hundredths of a point; elsewhere float32. torch itself would run bf16 on any
AVX-512 CPU, but emulated and slower than float32, so the flag, not torch's capability string,
decides. torch is imported inside the functions, so that the widgets and the CLI can offer
:data:`DEVICE_CHOICES` without loading it.
"""

from __future__ import annotations

import contextlib
import functools
import platform
from pathlib import Path

from ..errors import SemFocusError

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("auto", "float32", "bf16", "int8")  # int8: the onnxruntime backend (.backends)


def resolve_device(device: str = "auto"):
    """Return a ``torch.device`` for a user's choice, or raise a clear error if it is missing."""
    import torch  # lazily, as the module docstring says

    if isinstance(device, torch.device):
        return device
    name = str(device or "auto").lower()
    if name.startswith("cuda") and torch.cuda.is_available():
        return torch.device(name)
    if name == "mps" and _mps_available():
        return torch.device("mps")
    if name == "cpu":
        return torch.device("cpu")
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if _mps_available() else torch.device("cpu")
    if name.startswith("cuda") or name == "mps":
        raise SemFocusError(f"device {device!r} was asked for but is not available on this machine.")
    raise SemFocusError(f"device {device!r} is not one of {', '.join(DEVICE_CHOICES)}.")


@functools.lru_cache(maxsize=1)
def cpu_has_bf16() -> bool:
    """True when this CPU computes in bfloat16 natively (Linux CPU flags avx512_bf16/amx_bf16)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    flags = next((ln.split(":", 1)[1].split() for ln in text.splitlines()
                  if ln.startswith("flags")), [])
    return "avx512_bf16" in flags or "amx_bf16" in flags


def cpu_model_name() -> str:
    """The CPU's model name as Linux reports it (for benchmarks: name the CPU beside a figure)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown CPU"
    return next((ln.split(":", 1)[1].strip() for ln in text.splitlines()
                 if ln.startswith("model name")), platform.processor() or "unknown CPU")


def resolve_precision(device, precision: str = "auto") -> str:
    """The precision the model runs in on ``device``: ``float32``, ``bf16`` or ``fp16``."""
    name = str(precision or "auto").lower()
    if name not in PRECISIONS:
        raise SemFocusError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}.")
    if name == "int8":
        raise SemFocusError("precision 'int8' runs with the onnxruntime backend (on a CPU); use "
                            "float32, bf16 or auto here.")
    if device.type == "cuda":
        return "float32" if name == "float32" else ("bf16" if name == "bf16" else "fp16")
    if device.type == "cpu" and name in ("auto", "bf16"):
        if cpu_has_bf16():
            return "bf16"
        if name == "bf16":
            raise SemFocusError("precision 'bf16' was asked for, but this CPU has no bfloat16 "
                                "arithmetic (avx512_bf16); use float32 or auto.")
    return "float32"


def autocast(device, precision: str):
    """The autocast context for a resolved precision (a null context for float32)."""
    if precision == "float32" or device.type not in ("cpu", "cuda"):
        return contextlib.nullcontext()
    import torch  # lazily, as the module docstring says

    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device.type, dtype=dtype)


def describe_device(dev, precision: str | None = None) -> str:
    """Human-readable device, e.g. 'cuda:0 (NVIDIA H100, fp16)' or 'cpu (2 threads, bf16)'."""
    import torch  # lazily, as the module docstring says

    extra = f", {precision}" if precision else ""
    if dev.type == "cuda":
        return f"cuda:{dev.index or 0} ({torch.cuda.get_device_name(dev)}{extra})"
    if dev.type == "cpu":
        return f"cpu ({torch.get_num_threads()} threads{extra})"
    return str(dev) + (f" ({precision})" if precision else "")


def _mps_available() -> bool:
    import torch  # lazily, as the module docstring says

    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())
