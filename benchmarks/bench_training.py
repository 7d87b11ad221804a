"""Training speed: FocusNet-resnet18 training steps per second in float32 and in bf16 autocast,
measured in the same run, in alternating blocks so that a busy machine slows both alike.

One step = forward, MSE loss, backward and an AdamW update on a batch of 32 random 240 x 320
tiles (channels-last), exactly as ``training.train`` does it. bf16 runs only where the CPU has
bfloat16 arithmetic (``devices.cpu_has_bf16``).

    python benchmarks/bench_training.py [--steps 6] [--rounds 3] [--output docs/benchmarks/training.md]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from napari_semfocus.scoring.devices import autocast, cpu_has_bf16, describe_device
from napari_semfocus.scoring.model import FocusNet
from napari_semfocus.scoring.preprocess import to_model_input


def steps_per_second(model, opt, precision, x, m, y, steps) -> float:
    device = torch.device("cpu")
    model.train()
    t = time.perf_counter()
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        with autocast(device, precision):
            pred = model(x, m)
        loss = torch.nn.functional.mse_loss(pred.float(), y)
        loss.backward()
        opt.step()
    return steps / (time.perf_counter() - t)


def main(argv=None) -> str:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=6, help="timed steps per block")
    p.add_argument("--rounds", type=int, default=3, help="alternating float32 / bf16 blocks")
    p.add_argument("--output")
    a = p.parse_args(argv)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    x = to_model_input(rng.normal(0, 1, (a.batch, 240, 320)).astype(np.float32))
    m = torch.rand(a.batch)
    y = torch.rand(a.batch) * 10
    model = FocusNet("resnet18").to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
    precisions = ["float32"] + (["bf16"] if cpu_has_bf16() else [])
    for prec in precisions:  # warm-up
        steps_per_second(model, opt, prec, x, m, y, 1)
    rates = {prec: [] for prec in precisions}
    for _ in range(a.rounds):
        for prec in precisions:
            rates[prec].append(steps_per_second(model, opt, prec, x, m, y, a.steps))
    best = {prec: max(v) for prec, v in rates.items()}
    lines = ["| precision | steps/s (best block) | images/s | all blocks |", "|---|---|---|---|"]
    for prec, v in rates.items():
        lines.append(f"| {prec} | {best[prec]:.3f} | {best[prec] * a.batch:.1f} | "
                     + ", ".join(f"{r:.3f}" for r in v) + " |")
    ratio = (f"bf16 / float32: **{best['bf16'] / best['float32']:.2f}x**" if "bf16" in best
             else "this CPU has no bf16 arithmetic: float32 only")
    text = ("\n".join(lines) + f"\n\n{ratio}. {describe_device(torch.device('cpu'))}, batch "
            f"{a.batch} at 240 x 320, AdamW, {a.rounds} alternating blocks of {a.steps} steps.\n")
    print(text)
    if a.output:
        with open(a.output, "w", encoding="utf-8") as fh:
            fh.write(text)
    return text


if __name__ == "__main__":
    main()
