"""Scoring throughput: FocusNet-resnet18 versus the resnet50 variant, in the same run.

Batch 32 at 240 x 320 (the paper's 320 x 240 input), untrained weights (speed does not depend
on the values), CPU and CUDA where present. Prints a Markdown table and the ratio.

    python benchmarks/bench_scoring.py [--batches 3] [--output docs/benchmarks/scoring.md]
"""

from __future__ import annotations

import argparse

import torch

from napari_semfocus.scoring.devices import describe_device
from napari_semfocus.scoring.model import FocusNet
from napari_semfocus.training.compare import images_per_second


def main(argv=None) -> str:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--batches", type=int, default=3)
    p.add_argument("--output")
    args = p.parse_args(argv)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    lines = ["| device | resnet18 img/s | resnet50 img/s | resnet18 / resnet50 |", "|---|---|---|---|"]
    for dev in devices:
        r18 = images_per_second(FocusNet("resnet18"), dev, args.batch, args.batches)
        r50 = images_per_second(FocusNet("resnet50"), dev, args.batch, args.batches)
        name = describe_device(torch.device(dev))
        lines.append(f"| {name} | {r18:.1f} | {r50:.1f} | {r18 / r50:.2f} |")
    text = "\n".join(lines) + f"\n\nBatch {args.batch} at 240 x 320, {args.batches} timed batches.\n"
    print(text)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as fh:
            fh.write(text)
    return text


if __name__ == "__main__":
    main()
