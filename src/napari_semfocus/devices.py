"""Choosing the torch device: ``auto`` = CUDA, then Apple MPS, then CPU."""

from __future__ import annotations

from .errors import SemFocusError

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


def resolve_device(device: str = "auto"):
    """Return a ``torch.device`` for a user's choice, or raise a clear error if it is missing."""
    import torch

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


def describe_device(dev) -> str:
    """Human-readable name of a torch device, e.g. 'cuda:0 (NVIDIA H100)' or 'cpu (2 threads)'."""
    import torch

    if dev.type == "cuda":
        return f"cuda:{dev.index or 0} ({torch.cuda.get_device_name(dev)})"
    if dev.type == "cpu":
        return f"cpu ({torch.get_num_threads()} threads)"
    return str(dev)


def _mps_available() -> bool:
    import torch

    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())
