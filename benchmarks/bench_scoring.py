"""Scoring throughput per backend and precision, with plain torchvision models in the same run.

The shipped FocusNet-resnet18 scores batches of real 240 x 320 tiles (the sample frames') through
:meth:`FocusScorer.predict` (trunk + head, as every score does) with: PyTorch float32, PyTorch
bf16 autocast (where the CPU has bfloat16 units), ONNX Runtime float32 and ONNX Runtime int8
(:mod:`napari_semfocus.scoring.backends`), and what ``auto`` picks; beside them torchvision
ResNet18 and ResNet50 in float32 eager PyTorch (untrained, (B, 3, 240, 320), as a user would run
them). Blocks alternate over rounds so that a busy machine slows all alike; best round kept.

Share of peak: ResNet18 at 240 x 320 is ~2.79 GMAC per image (1.82 GMAC at 224 x 224, scaled by
the pixel count; the grey first convolution of the ONNX trunk saves 2/3 of conv1's 0.16 GMAC,
ignored). Peak = threads x clock (/proc/cpuinfo, nominal) x MACs per cycle per core for the
arithmetic the run uses, from the CPU's flags: fp32 FMA 16 (AVX-512 or AVX2: two 256-bit FMA
pipes; a CPU with two full 512-bit FMA units has 32, not detected here), bf16 32
(AVX512-BF16 VDPBF16PS on those pipes; AMX-BF16 1024 nominal), int8 64 (AVX512-VNNI /
AVX-VNNI VPDPBUSD), int8 without VNNI 32 (VPMADDUBSW).

    python benchmarks/bench_scoring.py [--batch 32] [--batches 2] [--rounds 2] [--torch-only]
        [--output docs/benchmarks/scoring-run.md]
``ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2`` with ``--torch-only`` approximates an
AVX2 CPU for PyTorch (ONNX Runtime's MLAS picks its kernels from CPUID; it has no such switch).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch

from napari_semfocus.scoring.backends import ort_available
from napari_semfocus.scoring.devices import cpu_has_bf16, cpu_model_name
from napari_semfocus.scoring.onnx_cache import sample_tiles
from napari_semfocus.scoring.scorer import FocusScorer

GMAC_PER_IMAGE = 1.82 * (240 * 320) / (224 * 224)
FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16", "avx512_vnni", "avx_vnni")


def cpu_flags() -> list[str]:
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    flags = next((ln.split(":", 1)[1].split() for ln in text.splitlines()
                  if ln.startswith("flags")), [])
    return [f for f in FLAGS if f in flags]


def peak_gmacs(kind: str) -> tuple[float, str]:
    """(peak GMAC/s for the threads used, how computed) for ``kind`` fp32 | bf16 | int8."""
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    mhz = [float(ln.split(":")[1]) for ln in text.splitlines() if ln.startswith("cpu MHz")]
    ghz = (max(mhz) / 1000) if mhz else float("nan")
    flags = cpu_flags()
    per = {"fp32": (16, "2 x 256-bit FMA"),
           "bf16": ((1024, "AMX-BF16") if "amx_bf16" in flags else (32, "AVX512-BF16")),
           "int8": ((64, "VNNI") if {"avx512_vnni", "avx_vnni"} & set(flags)
                    else (32, "VPMADDUBSW"))}[kind]
    cores = min(torch.get_num_threads(), os.cpu_count() or 1)
    return cores * ghz * per[0], f"{cores} x {ghz:.2f} GHz x {per[0]} ({per[1]})"


def rate(fn, batch: int, batches: int) -> float:
    fn()  # warm-up
    t0 = time.perf_counter()
    for _ in range(batches):
        fn()
    return batch * batches / (time.perf_counter() - t0)


def torchvision_fn(name: str, batch: int):
    import torchvision

    net = getattr(torchvision.models, name)(weights=None).eval()
    x = torch.randn(batch, 3, 240, 320)

    def run():
        with torch.inference_mode():
            net(x)
    return run


def main(argv=None) -> str:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--batches", type=int, default=2)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--torch-only", action="store_true")
    p.add_argument("--output")
    args = p.parse_args(argv)
    (calib, cmags), _ = sample_tiles()
    reps = -(-args.batch // len(calib))
    tiles = np.concatenate([calib] * reps)[: args.batch]
    mags = np.concatenate([cmags] * reps)[: args.batch]
    configs = [("torch", "float32", "fp32")]
    if cpu_has_bf16() and not args.torch_only:
        configs.append(("torch", "bf16", "bf16"))
    if ort_available() and not args.torch_only:
        configs += [("onnxruntime", "float32", "fp32"), ("onnxruntime", "int8", "int8"),
                    ("auto", "auto", None)]
    fns = {}
    for backend, prec, _ in configs:
        s = FocusScorer.load(None, device="cpu", precision=prec, backend=backend)
        fns[(backend, prec)] = (s.device_name, lambda s=s: s.predict(tiles, mags))
    fns[("torchvision resnet18", "float32")] = ("eager", torchvision_fn("resnet18", args.batch))
    fns[("torchvision resnet50", "float32")] = ("eager", torchvision_fn("resnet50", args.batch))
    runs = {k: [] for k in fns}
    for _ in range(args.rounds):
        for k, (_, fn) in fns.items():
            runs[k].append(rate(fn, args.batch, args.batches))
    best = {k: max(v) for k, v in runs.items()}
    base = best[("torch", "float32")]
    r18 = best[("torchvision resnet18", "float32")]
    lines = [f"CPU: {cpu_model_name()} (family/model per /proc/cpuinfo), flags: "
             f"{' '.join(cpu_flags()) or 'none of ' + ' '.join(FLAGS)}; "
             f"{torch.get_num_threads()} threads; load average before: "
             f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}; "
             f"ONEDNN_MAX_CPU_ISA={os.environ.get('ONEDNN_MAX_CPU_ISA', '-')}",
             "", "| model | backend | precision (runs as) | images/s | / torch float32 "
             "| / torchvision resnet18 | share of peak |", "|---|---|---|---|---|---|---|"]
    kinds = {(b, p): k for b, p, k in configs}
    for (backend, prec), (name, _) in fns.items():
        model = "FocusNet-resnet18 (shipped)" if "torchvision" not in backend else backend
        kind = kinds.get((backend, prec))
        if backend == "auto":
            kind = "int8" if "int8" in name else "bf16" if "bf16" in name else "fp32"
        kind = kind or "fp32"
        peak, _how = peak_gmacs(kind)
        v = best[(backend, prec)]
        lines.append(f"| {model} | {backend if 'torchvision' not in backend else 'torch eager'} "
                     f"| {prec} ({name}) | {v:.1f} | {v / base:.2f} | {v / r18:.2f} "
                     f"| {100 * v * GMAC_PER_IMAGE / peak:.1f} % of {kind} |")
    notes = [f"peak {k}: {peak_gmacs(k)[0]:.0f} GMAC/s = {peak_gmacs(k)[1]}"
             for k in ("fp32", "bf16", "int8")]
    text = ("\n".join(lines) + f"\n\nBatch {args.batch} real 240 x 320 tiles, best of "
            f"{args.rounds} alternating rounds of {args.batches} timed batches; "
            f"{GMAC_PER_IMAGE:.2f} GMAC/image. " + "; ".join(notes) + ".\n")
    print(text)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    return text


if __name__ == "__main__":
    main()
