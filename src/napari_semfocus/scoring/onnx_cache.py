"""The ONNX trunk of a checkpoint: exported on first use, quantised to int8, cached per user.

The cache file is ``<cache>/napari-semfocus/onnx/<sha256 of the checkpoint, 16 hex>-<precision>-
ort<onnxruntime version>.onnx`` (``<cache>``: ``$XDG_CACHE_HOME``, else ``~/.cache``; on
Windows ``%LOCALAPPDATA%``). Each file records the checkpoint's full SHA-256 and its precision
in its metadata; a file that does not load or whose record differs is rebuilt, never trusted.
Files are written atomically (:func:`~napari_semfocus.io.files.atomic_write`).

int8: ONNX Runtime's static quantisation (QDQ, per-channel int8 weights, uint8 activations,
min-max calibration) calibrated on tiles of the frames shipped in ``sample_data/`` (the focus
series' even slices and the SEM image), then checked on other frames (its odd slices and the
half-focused frame): the tiles' scores against float32 must agree within
:data:`AGREEMENT` (mean, max absolute difference). The result is recorded in the int8 file;
``--precision auto`` uses int8 only for a model that passed (else float32), and an explicit
``--precision int8`` on a model that failed runs with a warning. A fine-tuned model is
checked the same way on its first use.
"""

from __future__ import annotations

import copy
import io
import os
import sys
import tempfile
import warnings
from importlib import resources
from pathlib import Path

import numpy as np

from ..errors import SemFocusError, SemFocusWarning
from ..io.files import atomic_write, file_sha256
from ..io.images import read_image
from ..scale import encode_magnification
from .preprocess import TILE_HW, normalise, region_windows

FORMAT = "semfocus-onnx-trunk-1"
AGREEMENT = (0.05, 0.15)  # int8 vs float32 tile scores: mean and max absolute difference
OPSET = 17


def cache_dir() -> Path:
    """The per-user folder of exported models (``$XDG_CACHE_HOME`` respected)."""
    base = os.environ.get("XDG_CACHE_HOME")
    if not base:
        base = (os.environ.get("LOCALAPPDATA") if sys.platform == "win32" else None) or \
            str(Path.home() / ".cache")
    return Path(base) / "napari-semfocus" / "onnx"


def cache_file(sha256: str, precision: str) -> Path:
    import onnxruntime as ort  # lazily: only this backend needs it

    return cache_dir() / f"{sha256[:16]}-{precision}-ort{ort.__version__}.onnx"


def ort_session(model, checkpoint_path, precision: str):
    """``(session, precision, info)`` for ``model`` loaded from ``checkpoint_path``; precision
    ``auto`` | ``float32`` | ``int8`` (auto: int8 when its check passed)."""
    sha = file_sha256(checkpoint_path)
    if precision in ("auto", "int8"):
        session, info = _cached(sha, "int8", lambda: _build_int8(model, sha))
        if info.get("passed") == "1":
            return session, "int8", info
        if precision == "int8":
            warnings.warn(SemFocusWarning(
                f"the model {Path(checkpoint_path).name} in int8 differs from float32 by "
                f"{info.get('agreement_mean')} on average and {info.get('agreement_max')} at "
                f"most (limits {AGREEMENT[0]}, {AGREEMENT[1]}); --precision auto would use "
                f"float32."), stacklevel=3)
            return session, "int8", info
    session, info = _cached(sha, "float32", lambda: _build_float32(model, sha))
    return session, "float32", info


def _session(path_or_bytes):
    import onnxruntime as ort  # lazily: only this backend needs it
    import torch  # lazily (loaded by the scorer): its thread count is the user's setting

    so = ort.SessionOptions()
    so.intra_op_num_threads = max(1, torch.get_num_threads())
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    arg = str(path_or_bytes) if isinstance(path_or_bytes, Path) else path_or_bytes
    return ort.InferenceSession(arg, so, providers=["CPUExecutionProvider"])


def _cached(sha: str, precision: str, build, announce: bool = True):
    """The cached session for ``(sha, precision)``, rebuilt with ``build() -> bytes`` when the
    file is missing, does not load, or records another model or precision."""
    path = cache_file(sha, precision)
    if path.is_file():
        try:
            session = _session(path)
            info = dict(session.get_modelmeta().custom_metadata_map)
            if (info.get("checkpoint_sha256") == sha and info.get("precision") == precision
                    and info.get("format") == FORMAT):
                return session, info
        except Exception:  # noqa: BLE001 - any damage: rebuild, never trust it
            pass
    if announce:
        warnings.warn(SemFocusWarning(
            f"preparing the model for ONNX Runtime on this CPU, once per model (about half a "
            f"minute; kept in {path.parent})."), stacklevel=4)
    data = build()
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))
    session = _session(path)
    return session, dict(session.get_modelmeta().custom_metadata_map)


def grey_trunk(model):
    """A copy of ``model``'s trunk (float32, CPU, eval) whose first convolution takes one grey
    channel: the scorer feeds the same grey values to R, G and B, so its weights are summed."""
    import torch  # lazily: torch is only loaded when a model runs

    trunk = copy.deepcopy(model.trunk).float().cpu().eval().to(memory_format=torch.contiguous_format)
    conv = next(m for m in trunk.modules() if isinstance(m, torch.nn.Conv2d))
    if conv.in_channels != 3 or conv.groups != 1:
        raise SemFocusError("the model's first convolution does not take RGB; use --backend torch.")
    conv.weight = torch.nn.Parameter(conv.weight.detach().sum(1, keepdim=True))
    conv.in_channels = 1
    return trunk


def export_bytes(model) -> bytes:
    """The grey trunk as ONNX (input ``x`` (B, 1, H, W), output ``features`` (B, C, h, w),
    batch, height and width dynamic), with the TorchScript exporter (``dynamo=False``: no
    extra packages; torch 2.14 marks it deprecated; its successor needs onnxscript)."""
    import torch  # lazily: torch is only loaded when a model runs

    buf = io.BytesIO()
    x = torch.zeros(2, 1, *TILE_HW)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's deprecation notices
        torch.onnx.export(grey_trunk(model), (x,), buf, dynamo=False, opset_version=OPSET,
                          input_names=["x"], output_names=["features"],
                          dynamic_axes={"x": {0: "batch", 2: "height", 3: "width"},
                                        "features": {0: "batch", 2: "h", 3: "w"}})
    return buf.getvalue()


def _with_props(data: bytes, props: dict) -> bytes:
    import onnx  # lazily: only this backend needs it

    proto = onnx.load_from_string(data)
    onnx.helper.set_model_props(proto, {k: str(v) for k, v in props.items()})
    return proto.SerializeToString()


def _build_float32(model, sha: str) -> bytes:
    return _with_props(export_bytes(model), {"format": FORMAT, "checkpoint_sha256": sha,
                                             "precision": "float32"})


# ---- int8 ----------------------------------------------------------------------------------------
def _sample_dir() -> Path:
    installed = Path(str(resources.files("napari_semfocus"))) / "sample_data"
    return installed if installed.is_dir() else Path(__file__).resolve().parents[3] / "sample_data"


def sample_tiles() -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """``((calibration tiles, encoded mags), (check tiles, encoded mags))``: normalised
    240 x 320 tiles of the shipped sample frames (data bars left out)."""
    calib, check = ([], []), ([], [])
    for name in ("focus_series.tif", "sem_image.tif", "half_focused.tif"):
        path = _sample_dir() / name
        if not path.is_file():
            raise SemFocusError(f"the sample frames ({path}) that calibrate int8 are not "
                                f"installed; use --precision float32.")
        img = read_image(path)
        frames = img.data if img.data.ndim == 3 else img.data[None]
        rows = frames.shape[1] - int(img.databar_rows or 0)
        enc = float(encode_magnification(float(img.magnification or 5000.0)))
        for i, frame in enumerate(frames):
            norm = normalise(frame[:rows].astype(np.float32))
            # tiles of the grid and of the grid shifted by half a tile: more, different tiles
            tiles = [w.cut(norm) for w in region_windows(norm.shape, "whole")]
            tiles += [w.cut(norm[TILE_HW[0] // 2:, TILE_HW[1] // 2:])
                      for w in region_windows((rows - TILE_HW[0] // 2,
                                               frame.shape[1] - TILE_HW[1] // 2), "whole")]
            into = calib if (name == "sem_image.tif" or (name == "focus_series.tif"
                                                          and i % 2 == 0)) else check
            into[0].extend(tiles)
            into[1].extend([enc] * len(tiles))
    return tuple((np.stack(t).astype(np.float32), np.asarray(m, np.float32))
                 for t, m in (calib, check))


def tile_scores(model, features: np.ndarray, mags: np.ndarray) -> np.ndarray:
    """The model's head (float32 torch) on feature maps (B, C, h, w): scores (B,)."""
    import torch  # lazily: torch is only loaded when a model runs

    feats = torch.from_numpy(features.mean(axis=(2, 3), dtype=np.float32))
    with torch.inference_mode():
        m = torch.from_numpy(mags) if model.use_magnification else None
        return model.cpu().score_features(feats, m).numpy()


def agreement(model, float_session, int8_session, tiles, mags) -> tuple[float, float]:
    """Mean and max absolute difference of int8 and float32 tile scores (uniform tiles out)."""
    keep = np.ptp(tiles.reshape(len(tiles), -1), axis=1) > 0
    diffs = []
    for i in range(0, int(keep.sum()), 16):
        x = tiles[keep][i:i + 16, None]
        m = mags[keep][i:i + 16]
        a = tile_scores(model, float_session.run(None, {"x": x})[0], m)
        b = tile_scores(model, int8_session.run(None, {"x": x})[0], m)
        diffs.append(np.abs(a - b))
    d = np.concatenate(diffs)
    return float(d.mean()), float(d.max())


class _Calibration:
    """ONNX Runtime's CalibrationDataReader over calibration tiles, 8 at a time."""

    def __init__(self, tiles: np.ndarray):
        self.batches = iter([{"x": tiles[i:i + 8, None]} for i in range(0, len(tiles), 8)])

    def get_next(self):
        return next(self.batches, None)

    def rewind(self):  # not used by min-max calibration
        pass


def quantise(float_bytes: bytes, calib_tiles: np.ndarray) -> bytes:
    """Static int8 quantisation of an exported trunk (QDQ, per-channel weights)."""
    # lazily, as the other onnxruntime imports
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process  # lazily, as above

    with tempfile.TemporaryDirectory(prefix="semfocus-int8-") as tmp:
        src, pre, out = (Path(tmp) / n for n in ("f.onnx", "pre.onnx", "q.onnx"))
        src.write_bytes(float_bytes)
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        quantize_static(str(pre), str(out), _Calibration(calib_tiles),
                        quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax)
        return out.read_bytes()


def _build_int8(model, sha: str) -> bytes:
    float_session, _ = _cached(sha, "float32", lambda: _build_float32(model, sha), announce=False)
    float_bytes = cache_file(sha, "float32").read_bytes()
    (calib, _), (check, mags) = sample_tiles()
    int8_bytes = quantise(float_bytes, calib)
    mean, worst = agreement(model, float_session, _session(int8_bytes), check, mags)
    passed = mean <= AGREEMENT[0] and worst <= AGREEMENT[1]
    return _with_props(int8_bytes, {
        "format": FORMAT, "checkpoint_sha256": sha, "precision": "int8",
        "agreement_mean": f"{mean:.4f}", "agreement_max": f"{worst:.4f}",
        "passed": "1" if passed else "0",
        "calibration": f"{len(calib)} tiles of sample_data; checked on {len(check)} other tiles"})
