"""int8 (ONNX Runtime) and bf16 (PyTorch) scores against float32 on real pool frames.

Every frame of a pool folder's manifest (default: the 15 of tests/data/sem-pool; the ``val``
split is the validation-like part) is scored tile by tile (240 x 320, the scorer's whole-frame
grid) in PyTorch float32, ONNX Runtime int8 and PyTorch bf16 (where the CPU has bfloat16 units);
printed: the mean and max absolute difference of the tiles' scores and of the frames' scores,
for the val frames and for all. The int8 limits used by ``auto`` are 0.05 (mean) and 0.15 (max).

    python benchmarks/bench_int8_agreement.py [--pool tests/data/sem-pool] [--checkpoint FILE]
"""

from __future__ import annotations

import argparse

import numpy as np

from napari_semfocus.progress import run_to_end
from napari_semfocus.scoring.devices import cpu_has_bf16, cpu_model_name
from napari_semfocus.scoring.scorer import FocusScorer
from napari_semfocus.training.data.pool import load_pool_image, read_pool_manifest


def main(argv=None) -> str:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pool", default="tests/data/sem-pool")
    p.add_argument("--checkpoint")
    args = p.parse_args(argv)
    ref = FocusScorer.load(args.checkpoint, device="cpu", precision="float32", backend="torch")
    others = {"int8 (onnxruntime)": FocusScorer.load(args.checkpoint, device="cpu",
                                                     precision="int8", backend="onnxruntime")}
    if cpu_has_bf16():
        others["bf16 (torch)"] = FocusScorer.load(args.checkpoint, device="cpu",
                                                  precision="bf16", backend="torch")
    diffs = {k: {"val": [[], []], "all": [[], []]} for k in others}
    for row in read_pool_manifest(args.pool):
        img = load_pool_image(args.pool, row)
        base = ref.tiles_iter(img.data, img.magnification)
        t_ref = run_to_end(base)
        f_ref = ref.score(img.data, img.magnification)
        for k, s in others.items():
            t = run_to_end(s.tiles_iter(img.data, img.magnification))
            f = s.score(img.data, img.magnification)
            for part in ("all", "val") if row.get("split") == "val" else ("all",):
                diffs[k][part][0].append(np.abs(t.scores - t_ref.scores).ravel())
                diffs[k][part][1].append(np.abs(f - f_ref))
    info = others["int8 (onnxruntime)"].engine.info
    lines = [f"CPU: {cpu_model_name()}; model {ref.name}; int8 check at export (sample_data): "
             f"mean {info.get('agreement_mean')}, max {info.get('agreement_max')}, "
             f"passed {info.get('passed') == '1'}", "",
             "| precision | frames | tiles | tile mean | tile max | frame mean | frame max |",
             "|---|---|---|---|---|---|---|"]
    for k, parts in diffs.items():
        for part, (tiles, frames) in parts.items():
            t, f = np.concatenate(tiles), np.concatenate(frames)
            lines.append(f"| {k} | {len(frames)} {part} | {t.size} | {t.mean():.4f} | "
                         f"{t.max():.4f} | {f.mean():.4f} | {f.max():.4f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    return text


if __name__ == "__main__":
    main()
