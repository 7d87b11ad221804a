"""Inference backends below the scorer: PyTorch eager, or ONNX Runtime on the CPU.

:class:`~.scorer.FocusScorer` asks its *engine* for the model's trunk features and runs the
small heads itself, so whole-frame scores, tiles, focus maps (crop mode: batches of crops;
shared mode: the trunk over a window of any size), intervals and lazy input all go through the
one engine. :class:`TorchEngine` is the model as loaded (autocast for bf16/fp16).
:class:`OrtEngine` runs the trunk exported to ONNX (dynamic batch, height and width; its first
convolution takes the grey channel, the three identical RGB weights summed) in ONNX Runtime,
in float32 (equal to PyTorch float32 within float rounding) or int8 (static QDQ quantisation,
per-channel weights, calibrated on the frames shipped in ``sample_data/``; see
:mod:`.onnx_cache`). The heads (0.2 M multiply-adds) stay float32 PyTorch in both.

Which backend (:func:`resolve_backend`): ``torch`` on CUDA/MPS and for a model without a file
(training's validation); on a CPU ``auto`` takes ONNX Runtime, int8 when the model passed the
agreement check (:data:`~.onnx_cache.AGREEMENT`), else float32, because ONNX Runtime measured
faster than PyTorch in every precision on the CPUs we measured (docs/benchmarks/scoring.md);
``auto`` with ``--precision bf16`` stays PyTorch; ONNX Runtime not installed: PyTorch. The
environment variable ``SEMFOCUS_BACKEND`` (torch | onnxruntime) sets what ``auto`` means for a
process (the test suite sets torch: every checkpoint it writes would be exported otherwise).
"""

from __future__ import annotations

import contextlib
import os

import numpy as np

from ..errors import SemFocusError
from .devices import autocast, resolve_precision
from .onnx_cache import ort_session
from .preprocess import to_model_input

BACKENDS = ("auto", "torch", "onnxruntime")
BACKEND_ENV = "SEMFOCUS_BACKEND"  # torch | onnxruntime: what ``auto`` means in this process
ORT_MISSING = ("backend 'onnxruntime' was asked for, but onnxruntime (and onnx) are not "
               "installed: pip install onnxruntime onnx, or use --backend torch or auto.")


def ort_available() -> bool:
    """Whether ONNX Runtime and onnx can be imported here."""
    try:
        import onnx  # noqa: F401  (lazily: only the ONNX backend needs them)
        import onnxruntime  # noqa: F401  (lazily, as above)
    except ImportError:
        return False
    return True


def resolve_backend(backend: str, device, precision: str, has_file: bool) -> tuple[str, str]:
    """``(backend, precision)`` to run: the backend ``torch`` or ``onnxruntime`` and the
    precision asked of it (``auto`` stays ``auto`` for ONNX Runtime: int8 if the model passed
    its check). ``device`` is a resolved torch device. Raises one sentence for a combination
    that cannot run."""
    name = str(backend or "auto").lower()
    prec = str(precision or "auto").lower()
    if name not in BACKENDS:
        raise SemFocusError(f"backend {backend!r} is not one of {', '.join(BACKENDS)}.")
    on_cpu = device.type == "cpu"
    site = os.environ.get(BACKEND_ENV, "").lower()  # a site's (or a test suite's) auto
    if name == "auto" and (site == "torch" or (site == "onnxruntime" and on_cpu and has_file)):
        name = site
    if name == "onnxruntime":
        if not on_cpu:
            raise SemFocusError(f"backend 'onnxruntime' runs on the CPU, not on {device.type}; "
                                f"use --device cpu or --backend torch.")
        if not ort_available():
            raise SemFocusError(ORT_MISSING)
        if not has_file:
            raise SemFocusError("backend 'onnxruntime' needs the model as a file (it is exported "
                                "from the checkpoint); use --backend torch.")
        if prec == "bf16":
            raise SemFocusError("precision 'bf16' runs with the torch backend; use --precision "
                                "int8, float32 or auto with onnxruntime.")
        return "onnxruntime", prec
    if name == "auto" and on_cpu and has_file and prec != "bf16" and ort_available():
        return "onnxruntime", prec
    if prec == "int8":
        why = ("onnxruntime is not installed" if name == "auto" and on_cpu and has_file
               else "the model has no file" if name == "auto" and on_cpu
               else f"the device is {device.type}" if name == "auto" else "")
        raise SemFocusError("precision 'int8' runs with the onnxruntime backend"
                            + (f", and {why}" if why else "") + "; use float32, bf16 or auto.")
    return "torch", prec


class TorchEngine:
    """The model's trunk in PyTorch on its device, in autocast for bf16/fp16."""

    name = "torch"

    def __init__(self, model, device, precision: str):
        self.model, self.device, self.precision = model, device, precision

    def autocast(self):
        return autocast(self.device, self.precision)

    def pooled(self, tiles: np.ndarray):
        """Mean-pooled trunk features (B, C), float32 torch, of normalised tiles (B, h, w)."""
        import torch  # lazily: torch is only loaded when a model runs

        x = to_model_input(tiles).to(self.device, non_blocking=True)
        with torch.inference_mode(), self.autocast():
            return self.model.features(x).float()

    def feature_map(self, window: np.ndarray):
        """The trunk's feature map (C, h, w) of one normalised 2-D window (call inside
        :meth:`autocast` and inference mode)."""
        return self.model.trunk(to_model_input(window[None]).to(self.device))[0].float()


class OrtEngine:
    """The trunk exported to ONNX, run by ONNX Runtime on the CPU (float32 or int8)."""

    name = "onnxruntime"

    def __init__(self, session, precision: str, info: dict):
        self.session, self.precision, self.info = session, precision, info

    def autocast(self):
        return contextlib.nullcontext()

    def _run(self, tiles: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(tiles, dtype=np.float32)[:, None]
        return self.session.run(None, {"x": x})[0]

    def pooled(self, tiles: np.ndarray):
        import torch  # lazily (the heads run in torch)

        return torch.from_numpy(self._run(tiles).mean(axis=(2, 3), dtype=np.float32))

    def feature_map(self, window: np.ndarray):
        import torch  # lazily (the heads run in torch)

        return torch.from_numpy(self._run(window[None])[0])


def make_engine(model, device, precision: str, backend: str, checkpoint_path):
    """The engine for a loaded model: ``(engine, precision it runs in)``. ``precision`` as the
    user gave it (auto, float32, bf16, int8)."""
    chosen, prec = resolve_backend(backend, device, precision, bool(checkpoint_path))
    if chosen == "torch":
        run_prec = resolve_precision(device, prec)
        return TorchEngine(model, device, run_prec), run_prec
    session, run_prec, info = ort_session(model, checkpoint_path, prec)
    return OrtEngine(session, run_prec, info), run_prec

