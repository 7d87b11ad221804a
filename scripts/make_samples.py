"""Regenerate napari-semfocus's sample data from the shared SEM pool, deterministically.

    python scripts/make_samples.py [--pool ../shared/data/sem-pool] [--out sample_data]

Writes three small 8-bit, zlib-compressed TIFFs whose JSON description (tifffile "shaped"
metadata) carries everything the napari sample loader puts into ``layer.metadata``:

- ``focus_series.tif``: an 11-slice through-focus stack made from one sharp pool micrograph with
  the defocus model of docs/focus-score-scale.md (``r_nm = alpha * |delta_f|``,
  ``sigma_px = sqrt(0.5^2 + (r_nm / (2 p_nm))^2)``, Gaussian blur with OpenCV, fresh Poisson +
  Gaussian detector noise per slice). Slice 4 (of 0..10) is in focus; the true in-focus index,
  the defocus, sigma and expected score of every slice are stored.
- ``sem_image.tif``: one sharp frame with its FEI data bar (as a microscope saves it).
- ``half_focused.tif``: sharp on the left, defocused on the right, with a short transition.

Downscaling follows the score-scale document: an area-averaging downscale by ``f`` keeps a sharp
image sharp (sigma = 0.5 px at the new size), multiplies the pixel size by ``f`` and divides the
magnification by ``f``. Sources and licences: ATTRIBUTION.md beside the samples.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
import tifffile

from napari_semfocus.io.images import read_image
from napari_semfocus.scale import SHARP_SIGMA_PX, score_from_sigma

HERE = Path(__file__).resolve().parent
DEFAULT_POOL = HERE.parent.parent / "shared" / "data" / "sem-pool"
SAMPLE_DIR = HERE.parent / "sample_data"
SEED = 20240521

SERIES_SOURCE = "lungcells_lacunarity/DC_v2__CS_DCs_2500x_A.tif"
IMAGE_SOURCE = "lungcells_lacunarity/DC_v2__NiO_DC_5000x_B.tif"
HALF_SOURCE = "sem2surface/P33_scale1_detectorA.tif"
LUNGCELLS = {"repository": "Advanced-Vision-and-Learning-Lab/SEM_Images_Lacunarity",
             "licence": "MIT"}
SEM2SURFACE = {"repository": "vyastreb/sem2surface", "licence": "BSD-3-Clause"}

# through-focus series: defocus delta_f = (i - IN_FOCUS) * STEP for slices i = 0..N-1
N_SLICES = 11
IN_FOCUS = 4
DEFOCUS_STEP_UM = 80.0
ALPHA_MRAD = 5.0
# half-focused frame: added Gaussian blur on the defocused side
HALF_SIGMA_ADDED_PX = 6.0
HALF_TRANSITION_PX = 48


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Linear 0.1 / 99.9 percentile stretch to 8 bits (for 16-bit sources)."""
    f = image.astype(np.float32)
    lo, hi = np.percentile(f, [0.1, 99.9])
    return np.clip((f - lo) * (255.0 / (hi - lo)) + 0.5, 0, 255).astype(np.uint8)


def downscale(image: np.ndarray, factor: int) -> np.ndarray:
    """Area-averaging downscale by an integer factor (float32 result)."""
    h, w = image.shape[0] // factor, image.shape[1] // factor
    src = image[: h * factor, : w * factor].astype(np.float32)
    return cv2.resize(src, (w, h), interpolation=cv2.INTER_AREA)


def blur(image: np.ndarray, sigma_added_px: float) -> np.ndarray:
    if sigma_added_px <= 0:
        return image.astype(np.float32)
    return cv2.GaussianBlur(image.astype(np.float32), (0, 0), sigmaX=float(sigma_added_px),
                            borderType=cv2.BORDER_REFLECT)


def add_detector_noise(image: np.ndarray, rng: np.random.Generator,
                       photons_per_level: float = 4.0, read_noise: float = 2.0) -> np.ndarray:
    """Poisson (shot) noise with ``photons_per_level`` counts per grey level, plus Gaussian."""
    counts = rng.poisson(np.clip(image, 0, None) * photons_per_level)
    noisy = counts / photons_per_level + rng.normal(0.0, read_noise, image.shape)
    return np.clip(noisy + 0.5, 0, 255).astype(np.uint8)


def source_meta(path: str, sem: dict, factor: int, origin: dict) -> dict:
    """Microscope metadata of a sample made from ``path`` downscaled by ``factor``."""
    return {
        "vendor": "napari-semfocus sample (from an FEI/Thermo Fisher frame)",
        "magnification": round(sem["magnification"] / factor, 3),
        "pixel_size_m": sem["pixel_size_m"] * factor,
        "pixel_size_um": sem["pixel_size_m"] * factor * 1e6,
        "voltage_kv": sem.get("voltage_kv"),
        "working_distance_mm": sem.get("working_distance_mm"),
        "detector": sem.get("detector"),
        "source": f"{origin['repository']}: {Path(path).name}",
        "licence": origin["licence"],
        "downscale_factor": factor,
    }


def make_focus_series(pool: Path, rng: np.random.Generator):
    img = read_image(pool / SERIES_SOURCE)
    frame = img.data[: img.data.shape[0] - img.databar_rows]
    crop = frame[128:896, 256:1280]  # 768 x 1024 around the cells, no data bar
    factor = 2
    sharp = downscale(crop, factor)  # 384 x 512
    meta = source_meta(SERIES_SOURCE, img.metadata, factor, LUNGCELLS)
    p_nm = meta["pixel_size_m"] * 1e9
    defocus_um = [(i - IN_FOCUS) * DEFOCUS_STEP_UM for i in range(N_SLICES)]
    r_nm = [ALPHA_MRAD * 1e-3 * abs(d) * 1e3 for d in defocus_um]
    added = [r / (2.0 * p_nm) for r in r_nm]
    sigma = [float(np.hypot(SHARP_SIGMA_PX, a)) for a in added]
    stack = np.stack([add_detector_noise(blur(sharp, a), rng) for a in added])
    meta.update({
        "databar_rows": 0,
        "databar_source": "metadata",
        "in_focus_index": IN_FOCUS,
        "alpha_mrad": ALPHA_MRAD,
        "defocus_um": defocus_um,
        "probe_blur_radius_nm": [round(r, 3) for r in r_nm],
        "sigma_px": [round(s, 4) for s in sigma],
        "expected_scores": [round(float(score_from_sigma(s)), 4) for s in sigma],
        "defocus_model": "r_nm = alpha * |delta_f|; sigma_px = sqrt(0.5^2 + (r_nm / (2 p_nm))^2)",
    })
    return stack, meta


def make_sem_image(pool: Path, rng: np.random.Generator):
    img = read_image(pool / IMAGE_SOURCE)
    bar = img.databar_rows  # 79: rows 1024..1102
    height = img.data.shape[0] - bar  # 1024, even: the bar starts on a row of the downscale
    factor = 2
    frame = img.data[: height + 2 * (bar // 2)]
    small = np.clip(downscale(frame, factor) + 0.5, 0, 255).astype(np.uint8)
    meta = source_meta(IMAGE_SOURCE, img.metadata, factor, LUNGCELLS)
    meta.update({"databar_rows": bar // 2, "databar_source": "metadata"})
    return small, meta


def make_half_focused(pool: Path, rng: np.random.Generator):
    img = read_image(pool / HALF_SOURCE)
    frame = to_uint8(img.data[: img.data.shape[0] - img.databar_rows])  # 1024 x 1536
    factor = 2
    sharp = downscale(frame, factor)  # 512 x 768
    soft = blur(sharp, HALF_SIGMA_ADDED_PX)
    width = sharp.shape[1]
    x = np.arange(width, dtype=np.float32)
    t = np.clip((x - (width / 2 - HALF_TRANSITION_PX / 2)) / HALF_TRANSITION_PX, 0, 1)
    weight = t * t * (3 - 2 * t)  # smoothstep: 0 = sharp (left), 1 = defocused (right)
    mixed = sharp * (1 - weight) + soft * weight
    out = add_detector_noise(mixed, rng)
    meta = source_meta(HALF_SOURCE, img.metadata, factor, SEM2SURFACE)
    sigma_soft = float(np.hypot(SHARP_SIGMA_PX, HALF_SIGMA_ADDED_PX))
    meta["vendor"] = "napari-semfocus sample (from an FEI/Thermo Fisher frame)"
    meta.update({
        "databar_rows": 0,
        "databar_source": "metadata",
        "sharp_side": "left",
        "transition_columns": [int(width / 2 - HALF_TRANSITION_PX / 2),
                               int(width / 2 + HALF_TRANSITION_PX / 2)],
        "sigma_px": {"left": SHARP_SIGMA_PX, "right": round(sigma_soft, 4)},
        "expected_scores": {"left": 10.0, "right": round(float(score_from_sigma(sigma_soft)), 4)},
    })
    return out, meta


SAMPLES = {
    "focus_series.tif": make_focus_series,
    "sem_image.tif": make_sem_image,
    "half_focused.tif": make_half_focused,
}


def write_sample(path: Path, data: np.ndarray, meta: dict) -> None:
    clean = {k: v for k, v in meta.items() if v is not None}
    clean["hfw_m"] = meta["pixel_size_m"] * data.shape[-1]  # field width of the sample itself
    tifffile.imwrite(path, data, metadata=clean, compression="zlib",
                     compressionargs={"level": 9}, photometric="minisblack")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", type=Path, default=DEFAULT_POOL, help="the shared SEM pool")
    parser.add_argument("--out", type=Path, default=SAMPLE_DIR, help="output folder")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    total = 0
    for k, (name, make) in enumerate(SAMPLES.items()):
        rng = np.random.default_rng(SEED + k)
        data, meta = make(args.pool, rng)
        path = args.out / name
        write_sample(path, data, meta)
        size = path.stat().st_size
        total += size
        print(f"{path}: {data.shape} {data.dtype}, {size / 1e6:.2f} MB")
    print(f"total {total / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
