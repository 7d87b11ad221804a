"""Distil the focus map's *map head* and store it in the shipped model (deterministic rebuild).

    python scripts/distil_map_head.py                      # features (cached), fit, write the model
    python scripts/distil_map_head.py --cache /tmp/f.npz   # where the features are kept

Why: the model's head was trained on the global average of a 240 x 320 crop's feature map, whose
outer ring of cells sees the crop's border (the trunk's zero padding: an artificial step edge that
reads as sharp). A focus map that runs the trunk once over the frame and averages the feature map
over a tile's footprint has no such border, and the plain head scores it ~1.3 points lower than
the crop (docs/benchmarks/focus-map.md). The map head (the head's shape, started from the head)
is fitted, trunk frozen, to give for the region-pooled features of a tile exactly what the model
gives for the tile's crop.

Data: real pool frames (``shared/data/sem-pool`` as ``pool-curation/sem-pool-manifest.csv``
curates it; every folder, at most :data:`PER_FOLDER` frames each, a window of at most
:data:`WINDOW_HW` pixels cut at a seeded position) in three versions:
as they are, blurred all over (Gaussian sigma log-uniform in 0.7-10 px) and half blurred (one
half, sigma 1.5-8 px), so the fit covers the whole score range and tiles across a blur edge.
Per version, the half-stride grid of the focus map gives, per tile, the shared-trunk pooled
features (:func:`~napari_semfocus.scoring.focus_map.tile_features`) and the crop score
(``focus_map(mode="crop")``): the target. The folders in :data:`HELD_OUT` are left out of the
fit and used for validation only. Everything is seeded and runs on the CPU with a fixed thread
count, so a rerun writes the same head (up to float rounding of the trunk's convolutions).
"""

from __future__ import annotations

import argparse
import copy
import json
import time
import zlib
from pathlib import Path

import numpy as np
import torch

from napari_semfocus.scale import encode_magnification
from napari_semfocus.scoring.checkpoint import default_model_path, load_checkpoint, save_checkpoint
from napari_semfocus.scoring.focus_map import tile_features
from napari_semfocus.scoring.model import scoring_fingerprint
from napari_semfocus.scoring.scorer import FocusScorer
from napari_semfocus.training.data.degrade import blur, gaussian_psf
from napari_semfocus.training.data.pool import load_pool

POOL = Path(__file__).resolve().parents[2] / "shared" / "data" / "sem-pool"
# the project's curation of the pool (data bars, magnifications, exclusions): pool-curation/README.md
MANIFEST = Path(__file__).resolve().parents[1] / "pool-curation" / "sem-pool-manifest.csv"
PER_FOLDER = 6
WINDOW_HW = (640, 896)
HELD_OUT = ("fibresem", "saemi_nffa", "soil_sem")
SEED = 27
PRECISION = "auto"  # as users score on this machine (bf16 autocast on a CPU with bf16 units)
FIT = {"epochs": 400, "batch": 512, "lr": 1e-3, "weight_decay": 1e-4}


def pick(pool) -> list:
    """At most PER_FOLDER frames per folder, evenly spread over the folder's manifest order."""
    by_folder: dict = {}
    for p in pool:
        by_folder.setdefault(p.path.split("/")[0], []).append(p)
    out = []
    for frames in by_folder.values():
        idx = np.unique(np.linspace(0, len(frames) - 1, min(PER_FOLDER, len(frames))).round())
        out += [frames[int(i)] for i in idx]
    return out


def versions(p) -> list[tuple[str, np.ndarray]]:
    """The seeded window of pool frame ``p`` as it is, blurred, and half blurred."""
    rng = np.random.default_rng([SEED, zlib.crc32(p.path.encode())])
    H, W = p.data.shape
    h, w = min(H, WINDOW_HW[0]), min(W, WINDOW_HW[1])
    y, x = int(rng.integers(0, H - h + 1)), int(rng.integers(0, W - w + 1))
    win = np.ascontiguousarray(p.data[y:y + h, x:x + w], dtype=np.float32)
    s_all = float(np.exp(rng.uniform(np.log(0.7), np.log(10.0))))
    s_half = float(np.exp(rng.uniform(np.log(1.5), np.log(8.0))))
    half = win.copy()
    blurred = blur(win, gaussian_psf(s_half)[0])
    if rng.random() < 0.5:
        cut = w // 2
        sl = np.s_[:, :cut] if rng.random() < 0.5 else np.s_[:, cut:]
    else:
        cut = h // 2
        sl = np.s_[:cut] if rng.random() < 0.5 else np.s_[cut:]
    half[sl] = blurred[sl]
    return [("sharp", win), (f"blur {s_all:.2f}", blur(win, gaussian_psf(s_all)[0])),
            (f"half blur {s_half:.2f}", half)]


def features(scorer, cache: Path) -> dict:
    """Pooled features, encoded magnifications and crop scores of every tile (cached)."""
    if cache.is_file():
        return dict(np.load(cache, allow_pickle=False))
    rows = {"feats": [], "mag": [], "target": [], "folder": [], "frame": []}
    frames = pick(load_pool(POOL, include_excluded=True, manifest=MANIFEST))
    t0 = time.perf_counter()
    for i, p in enumerate(frames):
        for kind, img in versions(p):
            crop = scorer.focus_map(img, p.magnification, mode="crop")
            f = tile_features(scorer, img)
            ok = np.isfinite(crop.scores) & np.isfinite(f).all(-1)
            rows["feats"].append(f[ok])
            rows["target"].append(crop.scores[ok])
            rows["mag"].append(np.full(int(ok.sum()), encode_magnification(p.magnification),
                                       np.float32))
            rows["folder"] += [p.path.split("/")[0]] * int(ok.sum())
            rows["frame"] += [f"{p.path} | {kind}"] * int(ok.sum())
        print(f"{i + 1}/{len(frames)} {p.path} ({time.perf_counter() - t0:.0f} s)", flush=True)
    out = {k: (np.concatenate(v) if k in ("feats", "mag", "target") else np.array(v))
           for k, v in rows.items()}
    np.savez(cache, **out)
    return out


def fit(model, data: dict) -> dict:
    """Fit a map head (started from the head) on the tiles outside HELD_OUT; returns figures."""
    torch.manual_seed(SEED)
    held = np.isin(data["folder"], HELD_OUT)
    X = torch.from_numpy(data["feats"]).float()
    M = torch.from_numpy(data["mag"]).float()
    Y = torch.from_numpy(data["target"]).float()
    tr, va = np.nonzero(~held)[0], np.nonzero(held)[0]
    head = model.attach_map_head()
    opt = torch.optim.AdamW(head.parameters(), lr=FIT["lr"], weight_decay=FIT["weight_decay"])
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, FIT["epochs"])
    gen = torch.Generator().manual_seed(SEED)

    def errors(idx, use_map=True):
        model.eval()
        with torch.no_grad():
            fn = model.map_scores if use_map else model.score_features
            d = (fn(X[idx], M[idx]) - Y[idx]).abs().numpy()
        return {"mean_abs": float(d.mean()), "max_abs": float(d.max()), "tiles": len(idx)}

    before = {"train": errors(tr, False), "held_out": errors(va, False)}
    for _ in range(FIT["epochs"]):
        model.train()
        order = torch.from_numpy(tr)[torch.randperm(len(tr), generator=gen)]
        for k in range(0, len(order), FIT["batch"]):
            b = order[k:k + FIT["batch"]]
            loss = torch.nn.functional.smooth_l1_loss(model.map_scores(X[b], M[b]), Y[b],
                                                      beta=0.25)
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
    model.eval()
    after = {"train": errors(tr), "held_out": errors(va)}
    return {"plain_head": before, "map_head": after}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--cache", default="/tmp/map-head-features.npz", type=Path)
    p.add_argument("--out", default=None, help="model file to write (default: the shipped one)")
    p.add_argument("--dry-run", action="store_true", help="fit and report, write nothing")
    args = p.parse_args(argv)
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)
    src = default_model_path()
    model, meta = load_checkpoint(src)
    model.drop_map_head()
    scorer = FocusScorer(copy.deepcopy(model), meta, device="cpu", precision=PRECISION)
    data = features(scorer, args.cache)
    figures = fit(model, data)
    print(json.dumps(figures, indent=1))
    model.map_head_of = scoring_fingerprint(model.state_dict())
    model.map_head_info = {
        "method": "distilled: region-pooled shared-trunk features -> the crop score of the tile "
                  "(scripts/distil_map_head.py)",
        "tiles": int(len(data["target"])), "held_out_folders": list(HELD_OUT),
        "held_out_mean_abs_error": round(figures["map_head"]["held_out"]["mean_abs"], 4),
    }
    if args.dry_run:
        return
    keep = {k: v for k, v in meta.items() if k not in ("format", "format_version", "architecture",
                                                      "input", "weights_dtype", "map_head")}
    out = Path(args.out) if args.out else default_model_path()
    keep["model_version"] = out.stem
    save_checkpoint(model, out, keep, half=meta.get("weights_dtype") == "float16")
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
