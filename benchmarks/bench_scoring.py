"""Scoring throughput: FocusNet-resnet18 in the automatic precision (bf16 autocast where the CPU
has bfloat16 units) against float32 and against the resnet50 variant in float32, in one run.

Batch 32 at 240 x 320 (the paper's input, h x w), untrained weights (speed does not depend
on the values), CPU and CUDA where present; blocks alternate so a busy machine slows all alike.
Also images/s as a share of this CPU's bf16 peak: ResNet18 at 240 x 320 is ~2.79 GMAC per
image (1.82 GMAC at 224 x 224, scaled by the pixel count); the peak is cores x clock x MACs per
cycle per core: 1024 with AMX-BF16 (the TMUL unit's nominal bf16 rate), else 64 with
AVX512-BF16 (two 512-bit VDPBF16PS per cycle, 32 MAC each), from /proc/cpuinfo's flags and
clock. The AMX figure is a nominal upper bound that convolutions on 2 cores do not approach.

    python benchmarks/bench_scoring.py [--batches 3] [--rounds 2] [--output docs/benchmarks/scoring.md]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import torch

from napari_semfocus.scoring.devices import cpu_has_bf16, describe_device, resolve_precision
from napari_semfocus.scoring.model import FocusNet
from napari_semfocus.training.compare import images_per_second

GMAC_PER_IMAGE = 1.82 * (240 * 320) / (224 * 224)


def cpu_peak_gmacs() -> tuple[float, str]:
    """(bf16 peak in GMAC/s for the threads torch uses, how it was computed)."""
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    mhz = [float(ln.split(":")[1]) for ln in text.splitlines() if ln.startswith("cpu MHz")]
    ghz = (max(mhz) / 1000) if mhz else float("nan")
    amx = "amx_bf16" in text
    per_cycle = 1024 if amx else (64 if cpu_has_bf16() else 32)
    cores = min(torch.get_num_threads(), os.cpu_count() or 1)
    how = (f"{cores} cores x {ghz:.2f} GHz x {per_cycle} bf16 MAC/cycle "
           f"({'AMX-BF16 TMUL' if amx else 'AVX512-BF16' if cpu_has_bf16() else 'fp32 FMA'})")
    return cores * ghz * per_cycle, how


def main(argv=None) -> str:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--batches", type=int, default=3)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--output")
    args = p.parse_args(argv)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    lines = ["| device | resnet18 auto img/s | resnet18 float32 img/s | resnet50 float32 img/s "
             "| auto / float32 | auto / resnet50 |", "|---|---|---|---|---|---|"]
    notes = []
    for dev in devices:
        r18, r50 = FocusNet("resnet18"), FocusNet("resnet50")
        runs = {"auto": [], "float32": [], "r50": []}
        for _ in range(args.rounds):
            runs["auto"].append(images_per_second(r18, dev, args.batch, args.batches, precision="auto"))
            runs["float32"].append(images_per_second(r18, dev, args.batch, args.batches,
                                                     precision="float32"))
            runs["r50"].append(images_per_second(r50, dev, args.batch, args.batches,
                                                 precision="float32"))
        best = {k: max(v) for k, v in runs.items()}
        device = torch.device(dev)
        name = describe_device(device, resolve_precision(device, "auto"))
        lines.append(f"| {name} | {best['auto']:.1f} | {best['float32']:.1f} | {best['r50']:.1f} | "
                     f"{best['auto'] / best['float32']:.2f} | {best['auto'] / best['r50']:.2f} |")
        if dev == "cpu":
            peak, how = cpu_peak_gmacs()
            share = best["auto"] * GMAC_PER_IMAGE / peak
            notes.append(f"CPU bf16 peak {peak:.0f} GMAC/s = {how}; resnet18 at "
                         f"{GMAC_PER_IMAGE:.2f} GMAC/image in auto precision reaches "
                         f"{best['auto'] * GMAC_PER_IMAGE:.0f} GMAC/s = {100 * share:.1f} % of it "
                         f"(peak rate {peak / GMAC_PER_IMAGE:.0f} images/s).")
    text = ("\n".join(lines) + f"\n\nBatch {args.batch} at 240 x 320, best of {args.rounds} "
            f"alternating rounds of {args.batches} timed batches.\n\n" + "\n".join(notes) + "\n")
    print(text)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as fh:
            fh.write(text)
    return text


if __name__ == "__main__":
    main()
