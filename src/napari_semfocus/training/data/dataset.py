"""Labelled training and validation data for the default focus model (docs/focus-score-scale.md).

    >>> from napari_semfocus.training.data.dataset import make_dataset
    >>> paths = make_dataset("../shared/data/sem-pool", "ds-v1", n_train=12000, n_val=800, seed=1,
    ...                      manifest="pool-curation/sem-pool-manifest.csv")

Writes, deterministically for a seed:

- ``train_images.npy``: uint16 (N, H, W) raw degraded intensities (8-bit examples hold 0..255),
  not normalised (training calls ``preprocess.normalise`` on each example, as scoring does); open
  with ``np.load(path, mmap_mode="r")``. ``train_meta.csv``: one row per example.
- ``val/``: PNG (8-bit) / TIFF (16-bit) files and ``val/manifest.csv`` with
  ``path,magnification,label,series,sample_type,source`` (+ psf, sigma_added, noise_level,
  bit_depth). Validation examples come in *series*: one crop at :data:`VAL_LEVELS` blur levels
  with the same noise, brightness and storage settings; zero frames are series ``zero``.
- ``dataset.json``: the settings, split and a summary.

Split by source image (the manifest's field-of-view ``group``): validation crops come only from
the groups the manifest's ``split`` column keeps for validation (pool-curation/sem-pool-manifest.csv:
whole sample types never trained on, and ~15-20 % of each other folder); procedural scenes
for validation use their own seeds. One example: pick a source and an area-downscale factor
(magnification M / factor), cut a window with a margin, blur with a random PSF (label =
``scale.label_for_added_blur`` of its measured sigma), add detector noise, set brightness /
contrast, quantise to 8 or 16 bit, crop, flip. Every example has its own random stream
(``SeedSequence(seed, spawn_key=...)``), so results do not depend on the number of workers.
"""

from __future__ import annotations

import csv
import json
import multiprocessing as mp
import time
from pathlib import Path

import cv2
import numpy as np
import tifffile

from ...scale import label_for_added_blur, sigma_from_score
from . import degrade, scenes
from .degrade import degrade_region, draw_sigma_added, normalise_region
from .pool import Source, cut_window, load_pool, usable_sources
from .zero_frames import zero_frame

VAL_LEVELS = (10.0, 9.0, 8.0, 7.0, 6.0, 5.0, 4.0, 3.0, 2.0, 1.0)  # target labels of a series
N_TRAIN_SCENES = 260  # procedural scene bank for training (each reused with new crops/blur)
N_VAL_SCENES = len(scenes.SCENE_KINDS)  # one distinct-seed scene per kind for validation
ZERO_FRACTION = 0.12
SCENE_FRACTION = 0.40
VAL_ZERO_FRACTION = 0.05
TRAIN_META_FIELDS = ("index", "label", "magnification", "source", "sample_type", "series",
                     "kind", "psf", "sigma_added", "noise_level", "bit_depth", "factor")
VAL_FIELDS = ("path", "magnification", "label", "series", "sample_type", "source", "psf",
              "sigma_added", "noise_level", "bit_depth")


KEY_TRAIN, KEY_VAL, KEY_SCENE_TRAIN, KEY_SCENE_VAL, KEY_ZERO_VAL = 1, 2, 3, 4, 5
BANDS = ((0.0, 1e3, "<1k"), (1e3, 1e4, "1k-10k"), (1e4, 5e4, "10k-50k"), (5e4, np.inf, ">=50k"))
MAG_MIN, MAG_MAX = 100.0, 200_000.0


def rng_for(seed: int, *key: int) -> np.random.Generator:
    """The random stream of one item (scene, example, series), independent of the others."""
    return np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=tuple(key)))


def scene_source(seed, key, shape, kind=None) -> Source:
    """Procedural scene ``key`` of the bank (kind from the seed unless given)."""
    rng = rng_for(seed, *key)
    kind = kind or scenes.SCENE_KINDS[int(rng.integers(len(scenes.SCENE_KINDS)))]
    img = scenes.render_scene(kind, shape, rng)
    name = f"scene-{'train' if key[0] == KEY_SCENE_TRAIN else 'val'}-{key[1]:04d}-{kind}"
    return Source(name, f"synthetic-{kind}", name, img, None, 1.0, "scene")


def draw_scene_magnification(rng, lo=MAG_MIN, hi=MAG_MAX) -> float:
    """Scenes have no physical scale; half of them go to >= 10,000x where the pool is thin."""
    if rng.random() < 0.5 and hi > 1e4:
        lo = max(lo, 1e4)
    return float(10 ** rng.uniform(np.log10(lo), np.log10(hi)))


def _kernel(sigma_added, psf_kind, rng):
    if sigma_added <= 0:
        return np.ones((1, 1), np.float32), 0.0
    return degrade.make_psf(psf_kind, sigma_added, rng)


def _recorded_blur(kernel, sigma: float, noise, psf_kind: str) -> tuple[float, str]:
    """(sigma, PSF name) of what the frame shows: the optical blur ``kernel`` (``sigma``), and
    after a fast scan's amplifier smear along the rows the combined kernel's sigma, which the
    label follows (``+scan`` in the name)."""
    name = psf_kind if sigma > 0 else "none"
    if noise.bandwidth_px <= 0:
        return sigma, name
    return degrade.psf_sigma(degrade.scan_kernel(kernel, noise)), f"{name}+scan"


def _meta(label, mag, src_id, sample_type, series, kind, psf, sigma, noise_level, bits, factor):
    return {"label": float(label), "magnification": float(mag), "source": src_id,
            "sample_type": sample_type, "series": series, "kind": kind, "psf": psf,
            "sigma_added": float(sigma), "noise_level": float(noise_level), "bit_depth": bits,
            "factor": float(factor)}


def zero_example(size_hw, rng, bits):
    img, zk = zero_frame(size_hw, rng)
    noise = float(img.std())
    mag = 10 ** rng.uniform(np.log10(MAG_MIN), np.log10(MAG_MAX))
    meta = _meta(0.0, mag, f"zero-{zk}", "zero", "zero", "zero", "", 0.0, noise, bits, 1.0)
    return degrade.quantise(img, bits), meta


def random_example(train_sources, scene_sources, rng, size_hw, zero_fraction=ZERO_FRACTION,
                   scene_fraction=SCENE_FRACTION):
    """One training example: (uint8|uint16 (H, W) image, metadata dict)."""
    bits = 8 if rng.random() < 0.6 else 16
    u = rng.random()
    if u < zero_fraction:
        img, meta = zero_example(size_hw, rng, bits)
        return img.astype(np.uint16), meta
    if u < zero_fraction + scene_fraction and scene_sources:
        src = scene_sources[int(rng.integers(len(scene_sources)))]
        factor = float(np.exp(rng.uniform(0.0, np.log(src.max_factor(size_hw)))))
        mag = draw_scene_magnification(rng)
    else:
        types = sorted({s.sample_type for s in train_sources})  # sample types equally often
        t = types[int(rng.integers(len(types)))]
        cands = [s for s in train_sources if s.sample_type == t]
        src = cands[int(rng.integers(len(cands)))]
        factor = float(np.exp(rng.uniform(np.log(src.min_factor),
                                          np.log(src.max_factor(size_hw)))))
        mag = src.magnification / factor
    sigma_target = draw_sigma_added(rng)
    psf_kind = degrade.PSF_KINDS[int(rng.integers(len(degrade.PSF_KINDS)))]
    kernel, sigma = _kernel(sigma_target, psf_kind, rng)
    region, off = cut_window(src, factor, size_hw, kernel.shape[0] // 2 + 2, rng)
    region, sharp = normalise_region(region, off, size_hw)
    bc = degrade.random_brightness_contrast(sharp, rng)
    noise = degrade.NoiseSettings.random(rng)
    img, level = degrade_region(region, off, size_hw, kernel, noise, bc, bits, rng)
    sigma, psf_name = _recorded_blur(kernel, sigma, noise, psf_kind)
    if rng.random() < 0.5:
        img = img[:, ::-1]
    if rng.random() < 0.5:
        img = img[::-1]
    meta = _meta(label_for_added_blur(sigma), mag, src.source, src.sample_type, src.series,
                 src.kind, psf_name, sigma, level, bits, factor)
    return np.ascontiguousarray(img, dtype=np.uint16), meta


def _mag_range(src, size_hw):
    """(lowest, highest) magnification a source can be shown at."""
    if src.magnification is None:
        return MAG_MIN, MAG_MAX
    return src.magnification / src.max_factor(size_hw), src.magnification / src.min_factor


def plan_validation(vsources, n_val, levels, zero_fraction, size_hw) -> list[dict]:
    """Series specs: sample types in turn (images in turn within a type), each series given the
    least-used magnification band its source can reach; plus zero frames."""
    n_zero = max(2, int(round(n_val * zero_fraction)))
    n_series = max(1, int(round((n_val - n_zero) / len(levels))))
    by_type: dict = {}
    for i, s in enumerate(vsources):
        by_type.setdefault(s.sample_type if s.kind == "pool" else "synthetic", []).append(i)
    # synthetic scenes get two turns per round: they alone reach >= 50,000x (no real pool image
    # is sharp there), so this keeps that band at ~1/6 of the series
    types = sorted(by_type) + (["synthetic"] if "synthetic" in by_type else [])
    used = {name: 0 for _, _, name in BANDS}
    specs, turn = [], dict.fromkeys(types, 0)
    for k in range(n_series):
        t = types[k % len(types)]
        i = by_type[t][turn[t] % len(by_type[t])]
        turn[t] += 1
        lo, hi = _mag_range(vsources[i], size_hw)
        bands = [(b_lo, b_hi, name) for b_lo, b_hi, name in BANDS if b_lo < hi and b_hi > lo]
        b_lo, b_hi, name = min(bands, key=lambda b: used[b[2]])
        used[name] += 1
        specs.append({"series": f"s{k:03d}", "index": k, "source": i,
                      "mag_lo": max(lo, b_lo, MAG_MIN), "mag_hi": min(hi, b_hi, MAG_MAX)})
    specs += [{"series": "zero", "index": j, "zero": True} for j in range(n_zero)]
    return specs


def series_examples(spec, vsources, size_hw, seed, levels=VAL_LEVELS):
    """Yield (image, meta) for each blur level of one validation series (or one zero frame)."""
    if spec.get("zero"):
        rng = rng_for(seed, KEY_ZERO_VAL, spec["index"])
        img, meta = zero_example(size_hw, rng, 8 if rng.random() < 0.6 else 16)
        yield img, meta
        return
    rng = rng_for(seed, KEY_VAL, spec["index"])
    src = vsources[spec["source"]]
    mag = float(10 ** rng.uniform(np.log10(spec["mag_lo"]), np.log10(spec["mag_hi"])))
    if src.magnification is None:
        factor = float(np.exp(rng.uniform(0.0, np.log(src.max_factor(size_hw)))))
    else:
        factor = float(np.clip(src.magnification / mag, src.min_factor,
                               src.max_factor(size_hw)))
        mag = src.magnification / factor
    psf_kind = degrade.PSF_KINDS[int(rng.integers(len(degrade.PSF_KINDS)))]
    psf_seed = int(rng.integers(2**31))  # same PSF shape (axis ratio, angle...) at every level
    targets = [0.0 if L >= 10 else (40.0 if L <= 1 else
               float(np.sqrt(sigma_from_score(L) ** 2 - 0.25))) for L in levels]
    kernels = [_kernel(s, psf_kind, np.random.default_rng(psf_seed)) for s in targets]
    margin = max(k.shape[0] for k, _ in kernels) // 2 + 2
    region, off = cut_window(src, factor, size_hw, margin, rng)
    region, sharp = normalise_region(region, off, size_hw)
    bc = degrade.random_brightness_contrast(sharp, rng)
    noise = degrade.NoiseSettings.random(rng)
    bits = 8 if rng.random() < 0.6 else 16
    for kernel, sigma in kernels:
        img, level = degrade_region(region, off, size_hw, kernel, noise, bc, bits, rng)
        sigma, psf_name = _recorded_blur(kernel, sigma, noise, psf_kind)
        yield img, _meta(label_for_added_blur(sigma), mag, src.source, src.sample_type,
                         spec["series"], src.kind, psf_name, sigma, level, bits, factor)


def write_image(folder, name, img) -> str:
    """8-bit -> PNG, 16-bit -> TIFF; returns the file name (relative to ``folder``)."""
    if img.dtype == np.uint8:
        rel = f"{name}.png"
        cv2.imwrite(str(Path(folder) / rel), img)
    else:
        rel = f"{name}.tif"
        tifffile.imwrite(Path(folder) / rel, img)
    return rel


_STATE: dict = {}  # per-process: sources, settings (filled before fork)


def split_pool(images) -> tuple[list, list]:
    """(train, val) pool images: val = those the manifest's ``split`` column keeps for it; a
    group is never on both sides."""
    val_groups = {im.group for im in images if im.split == "val"}
    train, val = [], []
    for im in images:
        (val if im.group in val_groups else train).append(im)
    return train, val


def _worker_init(state):  # for start methods that do not fork
    _STATE.update(state)


def _pool_map(func, items, workers):
    if workers <= 1 or len(items) < 4:
        return [func(i) for i in items]
    ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else mp.get_context()
    with ctx.Pool(workers, initializer=_worker_init, initargs=(dict(_STATE),)) as pool:
        return pool.map(func, items, chunksize=max(1, len(items) // (workers * 16)))


def _render_bank_item(args):
    seed, key, shape, kind = args
    return scene_source(seed, key, shape, kind)


def _train_item(i):
    st = _STATE
    rng = rng_for(st["seed"], KEY_TRAIN, i)
    img, meta = random_example(st["train_sources"], st["scene_sources"], rng, st["size_hw"])
    arr = np.load(st["train_path"], mmap_mode="r+")
    arr[i] = img
    arr.flush()
    del arr
    meta["index"] = i
    return meta


def _val_item(spec):
    st = _STATE
    rows = []
    for level, (img, meta) in enumerate(series_examples(spec, st["val_sources"],
                                                           st["size_hw"], st["seed"])):
        name = f"zero_{spec['index']:03d}" if spec.get("zero") else f"{spec['series']}_{level:02d}"
        rel = write_image(st["val_dir"], name, img)
        meta["path"] = rel
        rows.append(meta)
    return rows


def _write_csv(path: Path, rows, fields):
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
    tmp.replace(path)


def band_counts(mags) -> dict:
    mags = np.asarray(mags, dtype=float)
    return {name: int(((mags >= lo) & (mags < hi)).sum()) for lo, hi, name in BANDS}


def make_dataset(pool_dir, out_dir, n_train: int = 12000, n_val: int = 800, seed: int = 0,
                 size_hw=(256, 336), workers: int = 2, n_train_scenes: int = N_TRAIN_SCENES,
                 progress=None, manifest=None) -> dict:
    """Generate the training cache and the validation set; returns a dict of output paths.

    ``n_val`` is the approximate number of validation files (series of ``len(VAL_LEVELS)`` blur
    levels plus ~5 % zero frames). ``progress(stage, done, total)`` is called now and then.
    ``manifest``: the pool's manifest CSV (default ``pool_dir/manifest.csv``; columns in
    :mod:`.pool`).
    """
    t0 = time.time()
    out = Path(out_dir)
    (out / "val").mkdir(parents=True, exist_ok=True)
    size_hw = (int(size_hw[0]), int(size_hw[1]))
    report = progress or (lambda *a: None)

    pool_images = load_pool(pool_dir, manifest=manifest)
    train_imgs, val_imgs = split_pool(pool_images)
    train_sources = usable_sources([Source.from_pool(p) for p in train_imgs], size_hw)
    val_sources = usable_sources([Source.from_pool(p) for p in val_imgs], size_hw)
    bank_shape = (2 * size_hw[0], 2 * size_hw[1])
    _STATE.clear()
    _STATE.update(seed=seed, size_hw=size_hw)
    report("scenes", 0, n_train_scenes + N_VAL_SCENES)
    jobs = [(seed, (KEY_SCENE_TRAIN, j), bank_shape, None) for j in range(n_train_scenes)]
    jobs += [(seed, (KEY_SCENE_VAL, j), bank_shape, scenes.SCENE_KINDS[j % len(scenes.SCENE_KINDS)])
             for j in range(N_VAL_SCENES)]
    bank = _pool_map(_render_bank_item, jobs, workers)
    scene_sources, val_scenes = bank[:n_train_scenes], bank[n_train_scenes:]
    t_scenes = time.time() - t0

    # training cache
    train_path = out / "train_images.npy"
    arr = np.lib.format.open_memmap(train_path, mode="w+", dtype=np.uint16,
                                    shape=(n_train,) + size_hw)
    del arr
    _STATE.update(train_sources=train_sources, scene_sources=scene_sources,
                  train_path=str(train_path))
    report("train", 0, n_train)
    train_rows = _pool_map(_train_item, list(range(n_train)), workers)
    _write_csv(out / "train_meta.csv", train_rows, TRAIN_META_FIELDS)
    t_train = time.time() - t0 - t_scenes

    # validation set
    vsources = val_sources + val_scenes
    _STATE.update(val_sources=vsources, val_dir=str(out / "val"))
    specs = plan_validation(vsources, n_val, VAL_LEVELS, VAL_ZERO_FRACTION, size_hw)
    report("val", 0, len(specs))
    val_rows = [r for rows in _pool_map(_val_item, specs, workers) for r in rows]
    _write_csv(out / "val" / "manifest.csv", val_rows, VAL_FIELDS)
    t_val = time.time() - t0 - t_scenes - t_train

    summary = {
        "generator": "napari_semfocus.training.data.dataset.make_dataset",
        "seed": seed, "size_hw": list(size_hw), "n_train": n_train, "n_val_files": len(val_rows),
        "pool_dir": str(pool_dir),
        "pool_manifest": str(manifest) if manifest is not None else None,
        "train_pool_sources": [s.source for s in train_sources],
        "val_pool_sources": [s.source for s in val_sources],
        "n_train_scenes": n_train_scenes, "val_levels": list(VAL_LEVELS),
        "train_bands": band_counts([r["magnification"] for r in train_rows]),
        "val_bands": band_counts([r["magnification"] for r in val_rows if r["series"] != "zero"]),
        "train_kinds": {k: sum(r["kind"] == k for r in train_rows)
                        for k in ("pool", "scene", "zero")},
        "seconds": {"scenes": round(t_scenes, 1), "train": round(t_train, 1),
                    "val": round(t_val, 1)},
    }
    (out / "dataset.json").write_text(json.dumps(summary, indent=1))
    return {"train_images": train_path, "train_meta": out / "train_meta.csv",
            "val_manifest": out / "val" / "manifest.csv", "summary": out / "dataset.json"}
