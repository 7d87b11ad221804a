"""Procedural scenes of what users image that the first seven kinds miss (issue 12):
dense, fine textures at the pixel scale and sparse frames.

Dense kinds, built like :mod:`scenes` (height map + material map on a 2x canvas; the caller
renders and area-downscales), with feature sizes down to a few output pixels so that a *sharp*
dense texture is learnt as sharp, not mistaken for noise:

- ``colloids``: close-packed spheres (diameter ~4-20 output px) on a hexagonal lattice with
  grain domains, vacancies and a little size spread (colloidal monolayers, opals).
- ``membrane``: a porous membrane, dense small pores (anodic alumina, track-etched filters).
- ``grains``: polycrystalline grains (Voronoi cells of 3-30 px) with channelling contrast and
  grooved boundaries (fine-grained metals and ceramics).
- ``fibremat``: a mat of many thin fibres (radius ~1-4 px), crossing in depth.
- ``nanofilm``: a film of randomly packed nanoparticles (radius ~1-5 px).

``sparse`` is a kind of its own: a few particles, fibres or crystals on one part of the frame
(a corner, a band, a third), flat substrate with faint texture elsewhere.
"""

from __future__ import annotations

import cv2
import numpy as np

from .scene_builders import background, build_balls, build_crystals, build_fibres, fractal_noise

DENSE_KINDS = ("colloids", "membrane", "grains", "fibremat", "nanofilm")


def _nearest_centre(shape, centres_xy):
    """(distance to the nearest centre, index of that centre) for every pixel."""
    H, W = shape
    seeds = np.ones((H, W), np.uint8)
    cx = np.clip(np.round(centres_xy[:, 0]).astype(int), 0, W - 1)
    cy = np.clip(np.round(centres_xy[:, 1]).astype(int), 0, H - 1)
    seeds[cy, cx] = 0
    dist, labels = cv2.distanceTransformWithLabels(seeds, cv2.DIST_L2, 5,
                                                   labelType=cv2.DIST_LABEL_PIXEL)
    # label k (1-based) is the k-th zero pixel in row-major order; map back to centre indices
    order = np.full(H * W, -1, np.int64)
    flat = cy * W + cx
    order[flat] = np.arange(len(flat))
    zero_pixels = np.flatnonzero(seeds.ravel() == 0)
    lut = np.concatenate([[0], order[zero_pixels]])
    return dist.astype(np.float32), lut[labels]


def _hex_centres(shape, rng, pitch, jitter):
    H, W = shape
    ang = rng.uniform(0, np.pi / 3)
    m = int(np.hypot(H, W) / pitch) + 3
    jj, ii = np.mgrid[-m : m + 1, -m : m + 1]
    px = (jj * pitch + (ii % 2) * pitch / 2).ravel()
    py = (ii * pitch * 0.8660254).ravel()
    cx = px * np.cos(ang) - py * np.sin(ang) + W / 2 + rng.uniform(0, pitch)
    cy = px * np.sin(ang) + py * np.cos(ang) + H / 2 + rng.uniform(0, pitch)
    pts = np.stack([cx, cy], 1) + rng.normal(0, jitter, (len(cx), 2))
    ok = (pts[:, 0] > -pitch) & (pts[:, 0] < W + pitch) & (pts[:, 1] > -pitch) & (pts[:, 1] < H + pitch)
    return pts[ok]


def _spheres(shape, rng, centres, radii, mat_lo=0.5, mat_hi=0.8):
    """Height/material of spheres at ``centres`` (each pixel belongs to its nearest centre)."""
    height, mat = background(shape, rng, rough=rng.uniform(0.3, 1.0))
    mat *= rng.uniform(0.4, 0.9)
    inside = (centres[:, 0] >= 0) & (centres[:, 0] < shape[1]) & (centres[:, 1] >= 0) & (
        centres[:, 1] < shape[0])
    centres, radii = centres[inside], radii[inside]
    if len(centres) == 0:
        return height, mat
    d, idx = _nearest_centre(shape, centres)
    r = radii[idx].astype(np.float32)
    on = d < r
    dome = np.sqrt(np.maximum(r * r - d * d, 0))
    height[on] = (dome + r * 0.2)[on]
    shade = rng.uniform(mat_lo, mat_hi, len(centres)).astype(np.float32)
    mat[on] = shade[idx][on]
    return height, mat


def build_colloids(shape, rng):
    """Close-packed spheres on a hexagonal lattice (grain domains, vacancies)."""
    H, W = shape
    diam = float(np.exp(rng.uniform(np.log(8), np.log(40))))  # 2x canvas: 4-20 output px
    centres = []
    n_dom = int(rng.integers(1, 4))
    labels = None
    if n_dom > 1:  # domains: Voronoi regions of a few seeds, each with its own lattice angle
        seeds = rng.uniform(0, 1, (n_dom, 2)) * [W, H]
        _, labels = _nearest_centre(shape, seeds)
    for k in range(n_dom):
        pts = _hex_centres(shape, rng, diam * rng.uniform(1.0, 1.08), diam * rng.uniform(0, 0.04))
        if labels is not None:
            cx = np.clip(pts[:, 0].astype(int), 0, W - 1)
            cy = np.clip(pts[:, 1].astype(int), 0, H - 1)
            pts = pts[labels[cy, cx] == k]
        centres.append(pts)
    centres = np.concatenate(centres)
    keep = rng.random(len(centres)) > rng.uniform(0.0, 0.06)  # vacancies
    centres = centres[keep]
    radii = diam / 2 * np.exp(rng.normal(0, rng.uniform(0.0, 0.06), len(centres))) * 0.97
    return _spheres(shape, rng, centres, radii, 0.55, 0.75)


def build_nanofilm(shape, rng):
    """Randomly packed nanoparticles (radius ~1-5 output px), a film or aggregates."""
    H, W = shape
    r_med = float(np.exp(rng.uniform(np.log(2.0), np.log(10.0))))
    density = rng.uniform(0.5, 1.0)
    n = int(density * H * W / (np.pi * r_med**2 * 1.1))
    centres = rng.uniform(0, 1, (n, 2)) * [W, H]
    radii = r_med * np.exp(rng.normal(0, 0.3, n))
    return _spheres(shape, rng, centres, radii, 0.4, 0.9)


def build_membrane(shape, rng):
    """Porous membrane: dense small pores (ordered or random) in a bright film."""
    H, W = shape
    height, mat = background(shape, rng, rough=0.3)
    mat += rng.uniform(0.1, 0.3)
    r = float(np.exp(rng.uniform(np.log(2.0), np.log(12.0))))
    if rng.random() < 0.5:
        centres = _hex_centres(shape, rng, r * rng.uniform(2.2, 3.2), r * rng.uniform(0, 0.3))
    else:
        n = int(rng.uniform(0.2, 0.45) * H * W / (np.pi * r * r))
        centres = rng.uniform(0, 1, (n, 2)) * [W, H]
    d, idx = _nearest_centre(shape, centres)
    rr = (r * np.exp(rng.normal(0, 0.2, len(centres))))[idx].astype(np.float32)
    pore = d < rr
    height += np.minimum(np.maximum(d - rr, 0), 2.0) * 1.5  # rims
    height[pore] = -30.0
    mat[pore] = rng.uniform(0.0, 0.08)
    return height, mat


def build_grains(shape, rng):
    """Polycrystal: Voronoi grains (3-30 output px) with channelling contrast, grooved borders."""
    H, W = shape
    size = float(np.exp(rng.uniform(np.log(6), np.log(60))))
    n = max(4, int(H * W / (size * size)))
    centres = rng.uniform(0, 1, (n, 2)) * [W, H]
    _, idx = _nearest_centre(shape, centres)
    shade = rng.uniform(0.2, 0.9, n).astype(np.float32)
    mat = shade[idx] + 0.02 * fractal_noise(shape, rng, smallest=4)
    gx = np.abs(np.diff(idx, axis=1, prepend=idx[:, :1])) > 0
    gy = np.abs(np.diff(idx, axis=0, prepend=idx[:1])) > 0
    border = cv2.dilate((gx | gy).astype(np.uint8), np.ones((2, 2), np.uint8)) > 0
    height = 0.2 * fractal_noise(shape, rng, smallest=2)
    height[border] -= rng.uniform(1.0, 4.0)
    if rng.random() < 0.5:
        mat[border] *= 0.4
    return height.astype(np.float32), mat.astype(np.float32)


def build_fibremat(shape, rng):
    """A dense mat of thin fibres (radius ~1-4 output px) in a few layers."""
    height, mat = background(shape, rng, rough=0.5)
    height -= 60.0
    mat *= 0.5
    for layer in range(int(rng.integers(2, 5))):
        h, m = build_fibres(shape, rng, r_range=(1.8, 8.0), count=(1.0, 2.5), max_n=200)
        on = h > -29.0  # on a fibre (the fibres builder puts its background at -30)
        height[on] = h[on] + layer * 3.0
        mat[on] = m[on]
    return height, mat


def build_sparse(shape, rng):
    """A few objects on one part of the frame (a corner, a band or a third), flat substrate
    with faint texture elsewhere."""
    H, W = shape
    builder = (build_balls, build_crystals, build_fibres, build_nanofilm, build_colloids)[int(rng.integers(5))]
    h_obj, m_obj = builder(shape, rng)
    height, mat = background(shape, rng, rough=rng.uniform(0.1, 0.6))
    mat = mat * rng.uniform(0.5, 1.0)
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    where = rng.integers(3)
    if where == 0:  # a corner
        cy, cx = rng.choice([0.0, H]), rng.choice([0.0, W])
        rad = rng.uniform(0.3, 0.6) * min(H, W)
        mask = (yy - cy) ** 2 + (xx - cx) ** 2 < rad * rad
    elif where == 1:  # a band
        a = rng.uniform(0, np.pi)
        u = (xx - W / 2) * np.cos(a) + (yy - H / 2) * np.sin(a)
        mask = np.abs(u - rng.uniform(-0.3, 0.3) * min(H, W)) < rng.uniform(0.1, 0.2) * min(H, W)
    else:  # a third: a smooth blob of the plane
        f = fractal_noise(shape, rng, beta=4.0, smallest=max(8, min(H, W) // 8))
        mask = f > np.quantile(f, rng.uniform(0.6, 0.8))
    mask = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), 3.0) > 0.5
    height[mask] = h_obj[mask] + 5.0
    mat[mask] = m_obj[mask]
    return height, mat


DENSE_BUILDERS = {"colloids": build_colloids, "membrane": build_membrane, "grains": build_grains,
                  "fibremat": build_fibremat, "nanofilm": build_nanofilm, "sparse": build_sparse}
