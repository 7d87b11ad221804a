"""Builders of procedural SEM-like scenes: the first seven kinds and the shared primitives
(the project's own content, no external images; :mod:`scenes` renders them).

Every scene is built as a *height map* plus a *material* (yield) map on a canvas twice the output
size, turned into a secondary-electron-like image (yield rising with surface tilt, 1/cos(theta), so
rims and edges of balls, fibres and crystals are bright; a small directional term for the side
detector's shadowing), and area-downscaled 2x. The result is sharp: its blur is that of the 2x2
area average and the gradient filter, sigma ~0.4-0.5 px, which the focus scale calls sharp
(0.5 px). Scenes are deterministic given a ``numpy.random.Generator``.

Kinds (:data:`BUILDERS`): ``balls`` (tin balls on carbon), ``grid`` (TEM-grid / mesh bars),
``holey`` (holey film), ``fibres``, ``crystals`` (faceted particles), ``blobs`` (rounded particles
and aggregates), ``porous`` (BSE-like polished cross-section with phases, pores and cracks).

Procedural scenes have no physical scale (feature sizes are drawn at random over a wide range),
so the data generator may give them any plausible magnification.
"""

from __future__ import annotations

import cv2
import numpy as np


def fractal_noise(shape_hw, rng: np.random.Generator, beta: float = 2.0, smallest: int = 2,
                  largest: int | None = None) -> np.ndarray:
    """Zero-mean, unit-std 1/f^beta-like noise (sum of upsampled random grids), float32."""
    H, W = int(shape_hw[0]), int(shape_hw[1])
    largest = largest or max(H, W)
    out = np.zeros((H, W), np.float32)
    scale = smallest
    while scale <= largest:
        gh, gw = max(2, H // scale + 2), max(2, W // scale + 2)
        grid = rng.standard_normal((gh, gw)).astype(np.float32)
        big = cv2.resize(grid, (gw * scale, gh * scale), interpolation=cv2.INTER_CUBIC)
        out += big[:H, :W] * float(scale) ** (beta / 2.0)
        scale *= 2
    out -= out.mean()
    return out / max(float(out.std()), 1e-6)


def _paint(height, mat, y0, x0, h_patch, mat_value, z=0.0):
    """z-buffer paint: where ``z + h_patch`` (NaN = outside) is above the canvas, take it."""
    H, W = height.shape
    ph, pw = h_patch.shape
    ys, xs = max(0, y0), max(0, x0)
    ye, xe = min(H, y0 + ph), min(W, x0 + pw)
    if ye <= ys or xe <= xs:
        return
    hp = h_patch[ys - y0 : ye - y0, xs - x0 : xe - x0] + z
    region_h, region_m = height[ys:ye, xs:xe], mat[ys:ye, xs:xe]
    win = np.isfinite(hp) & (hp > region_h)
    region_h[win] = hp[win]
    region_m[win] = mat_value if np.ndim(mat_value) == 0 else mat_value[ys - y0 : ye - y0,
                                                                        xs - x0 : xe - x0][win]


def background(shape, rng, rough: float):
    h = fractal_noise(shape, rng, beta=rng.uniform(1.5, 2.5), smallest=2) * rough
    mat = 0.25 + 0.06 * fractal_noise(shape, rng, beta=2.0, smallest=4)
    return h.astype(np.float32), mat.astype(np.float32)


def build_balls(shape, rng):
    """Tin balls on carbon: spheres with log-normal radii, dark grainy carbon."""
    H, W = shape
    height, mat = background(shape, rng, rough=rng.uniform(0.5, 2.0))
    mat *= 0.7
    r_med = float(np.exp(rng.uniform(np.log(3), np.log(min(H, W) / 8))))
    n = int(np.clip(rng.uniform(0.15, 0.6) * H * W / (np.pi * r_med**2 * 1.6), 3, 1500))
    radii = np.clip(r_med * np.exp(rng.normal(0, 0.6, n)), 1.5, min(H, W) / 3)
    for r in radii:
        cy, cx = rng.uniform(-r, H + r), rng.uniform(-r, W + r)
        ri = int(np.ceil(r)) + 1
        yy, xx = np.mgrid[-ri : ri + 1, -ri : ri + 1].astype(np.float32)
        d2 = (yy + (int(cy) - cy)) ** 2 + (xx + (int(cx) - cx)) ** 2
        h = np.where(d2 < r * r, np.sqrt(np.maximum(r * r - d2, 0)), np.nan)
        _paint(height, mat, int(cy) - ri, int(cx) - ri, h, rng.uniform(0.5, 0.8),
               z=float(rng.uniform(0, 0.2 * r)))
    return height, mat


def build_grid(shape, rng):
    """TEM grid / mesh: a rotated lattice of bars (plateaus) over dark holes."""
    H, W = shape
    height, mat = background(shape, rng, rough=0.3)
    mat[:] = rng.uniform(0.03, 0.12)  # the holes: few electrons come back
    height -= 50.0
    pitch = float(np.exp(rng.uniform(np.log(24), np.log(min(H, W) * 0.8))))
    bar = pitch * rng.uniform(0.15, 0.45)
    ang = rng.uniform(0, np.pi)
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    u = xx * np.cos(ang) + yy * np.sin(ang) + rng.uniform(0, pitch)
    v = -xx * np.sin(ang) + yy * np.cos(ang) + rng.uniform(0, pitch)
    pitch_v = pitch * rng.uniform(0.7, 1.4)
    du = np.abs((u % pitch) - pitch / 2) - (pitch - bar) / 2  # > 0 on a bar
    dv = np.abs((v % pitch_v) - pitch_v / 2) - (pitch_v - bar) / 2
    d = np.maximum(du, dv)
    edge = rng.uniform(1.0, 3.0)
    h = np.clip(d / edge, 0, 1) * bar * 0.3 + 0.3 * fractal_noise(shape, rng, smallest=2)
    on = d > 0
    height[on] = h[on]
    mat[on] = 0.45 + 0.05 * fractal_noise(shape, rng, smallest=8)[on]
    return height, mat


def build_holey(shape, rng):
    """Holey film: a flat film with round holes (lattice or random), bright hole rims."""
    H, W = shape
    height, mat = background(shape, rng, rough=0.4)
    mat += 0.15
    r = float(np.exp(rng.uniform(np.log(3), np.log(min(H, W) / 6))))
    holes = np.zeros(shape, np.uint8)
    if rng.random() < 0.5:
        pitch = r * rng.uniform(2.3, 4.0)
        ang = rng.uniform(0, np.pi / 3)
        m = int(np.hypot(H, W) / pitch) + 3
        jj, ii = np.mgrid[-m : m + 1, -m : m + 1]
        px = jj * pitch + (ii % 2) * pitch / 2
        py = ii * pitch * 0.866
        keep = (np.abs(px) < 2 * (H + W)) & (np.abs(py) < 2 * (H + W))
        px, py = px[keep], py[keep]
        cx = px * np.cos(ang) - py * np.sin(ang) + rng.uniform(0, pitch)
        cy = px * np.sin(ang) + py * np.cos(ang) + rng.uniform(0, pitch)
        ok = (cx > -2 * r) & (cx < W + 2 * r) & (cy > -2 * r) & (cy < H + 2 * r)
        centres = np.stack([cx[ok], cy[ok]], 1)
    else:
        n = int(rng.uniform(0.1, 0.35) * H * W / (np.pi * r * r))
        centres = rng.uniform(0, 1, (max(n, 3), 2)) * [W, H]
    for cx, cy in centres:
        rr = r * np.exp(rng.normal(0, 0.15))
        cv2.circle(holes, (int(cx * 4), int(cy * 4)), int(rr * 4), 1, -1, cv2.LINE_8, 2)
    inside = holes.astype(bool)
    dist = cv2.distanceTransform((1 - holes).astype(np.uint8), cv2.DIST_L2, 5)
    height += np.minimum(dist, 2.0) * 2.0
    height[inside] = -40.0
    mat[inside] = rng.uniform(0.02, 0.1)
    return height, mat


def build_fibres(shape, rng, r_range=None, count=(0.2, 1.0), max_n=80):
    """Fibres: cylinders along random (slightly curved) paths, stacked in depth. ``r_range``:
    (smallest, largest) median radius on the canvas; ``count``: fibres per frame width/diameter."""
    H, W = shape
    height, mat = background(shape, rng, rough=0.5)
    mat *= rng.uniform(0.3, 1.0)
    height -= 30.0
    r_lo, r_hi = r_range or (1.5, min(H, W) / 12)
    r_med = float(np.exp(rng.uniform(np.log(r_lo), np.log(r_hi))))
    n = int(np.clip(rng.uniform(*count) * max(H, W) / (2 * r_med), 3, max_n))
    for k in range(n):
        r = float(np.clip(r_med * np.exp(rng.normal(0, 0.35)), 1.0, min(H, W) / 6))
        p = rng.uniform(0, 1, 2) * [W, H]
        a = rng.uniform(0, 2 * np.pi)
        curl = rng.normal(0, 0.004)
        step = 0.04 * max(H, W)
        pts = [p]
        for _ in range(50):
            p = p + step * np.array([np.cos(a), np.sin(a)])
            a += curl + rng.normal(0, 0.02)
            pts.append(p)
        pts = np.array(pts) - (pts[-1] - pts[0]) * rng.uniform(0.3, 0.7)
        pad = int(np.ceil(r)) + 2
        x0, y0 = (np.floor(pts.min(0)) - pad).astype(int)
        x1, y1 = (np.ceil(pts.max(0)) + pad).astype(int)
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, W), min(y1, H)
        if x1 - x0 < 2 or y1 - y0 < 2:
            continue
        axis = np.ones((y1 - y0, x1 - x0), np.uint8)
        cv2.polylines(axis, [np.round((pts - [x0, y0]) * 4).astype(np.int32)], False, 0, 1,
                      cv2.LINE_8, 2)
        d = np.minimum(cv2.distanceTransform(axis, cv2.DIST_L2, 5), r + 1.0)
        h = np.where(d < r, np.sqrt(np.maximum(r * r - d * d, 0)), np.nan).astype(np.float32)
        _paint(height, mat, y0, x0, h, rng.uniform(0.45, 0.75), z=float(k) * rng.uniform(0.5, 2))
    return height, mat


def build_crystals(shape, rng):
    """Faceted particles: random convex polygons with a roof-shaped (faceted) top."""
    H, W = shape
    height, mat = background(shape, rng, rough=rng.uniform(0.3, 1.5))
    size = float(np.exp(rng.uniform(np.log(4), np.log(min(H, W) / 5))))
    n = int(np.clip(rng.uniform(0.1, 0.5) * H * W / (size * size), 2, 600))
    for _ in range(n):
        s = float(np.clip(size * np.exp(rng.normal(0, 0.5)), 2.5, min(H, W) / 2.5))
        k = int(rng.integers(4, 9))
        ang = np.sort(rng.uniform(0, 2 * np.pi, k))
        rad = s * rng.uniform(0.6, 1.0, k) * [1.0, rng.uniform(0.5, 1.0)][int(rng.random() < 0.5)]
        pts = np.stack([np.cos(ang) * rad, np.sin(ang) * rad], 1)
        hull = cv2.convexHull(pts.astype(np.float32))[:, 0]
        pad = int(np.ceil(s)) + 2
        mask = np.zeros((2 * pad + 1, 2 * pad + 1), np.uint8)
        cv2.fillPoly(mask, [np.round((hull + pad) * 4).astype(np.int32)], 1, cv2.LINE_8, 2)
        if not mask.any():
            continue
        roof = cv2.distanceTransform(mask, cv2.DIST_L2, 5) * rng.uniform(0.6, 2.0)
        roof = np.minimum(roof, rng.uniform(0.4, 1.0) * roof.max())  # flat top facet sometimes
        h = np.where(mask > 0, roof, np.nan).astype(np.float32)
        cy, cx = int(rng.uniform(0, H)), int(rng.uniform(0, W))
        _paint(height, mat, cy - pad, cx - pad, h, rng.uniform(0.35, 0.8),
               z=float(rng.uniform(0, s)))
    return height, mat


def build_blobs(shape, rng):
    """Rounded particles / aggregates: thresholded smooth noise with a domed height."""
    H, W = shape
    height, mat = background(shape, rng, rough=0.5)
    scale = int(np.exp(rng.uniform(np.log(4), np.log(min(H, W) / 4))))
    field = fractal_noise(shape, rng, beta=rng.uniform(2.5, 4.0), smallest=max(2, scale // 4),
                          largest=scale * 4)
    level = rng.uniform(0.0, 1.2)
    mask = (field > level).astype(np.uint8)
    dist = cv2.distanceTransform(mask, cv2.DIST_L2, 5)
    dome = np.sqrt(np.maximum(dist, 0) * rng.uniform(2, 8) * scale ** 0.5)
    texture = 0.6 * fractal_noise(shape, rng, smallest=2, largest=8)
    on = mask > 0
    height[on] = (dome + texture + 2)[on]
    mat[on] = (0.55 + 0.1 * fractal_noise(shape, rng, smallest=8))[on]
    return height, mat


def build_porous(shape, rng):
    """BSE-like polished cross-section: 2-3 phases, dark pores, thin cracks; little topography."""
    H, W = shape
    scale = int(np.exp(rng.uniform(np.log(3), np.log(min(H, W) / 3))))
    f1 = fractal_noise(shape, rng, beta=3.0, smallest=max(2, scale // 4), largest=scale * 8)
    f2 = fractal_noise(shape, rng, beta=3.0, smallest=max(2, scale // 4), largest=scale * 4)
    levels = np.sort(rng.uniform(0.15, 0.95, 3))
    mat = np.where(f1 > rng.uniform(-0.5, 0.5), levels[2], levels[1]).astype(np.float32)
    mat = np.where(f2 > rng.uniform(0.8, 1.8), levels[0], mat)
    pores = fractal_noise(shape, rng, beta=3.5, smallest=2, largest=scale * 2) > rng.uniform(1.5,
                                                                                           2.5)
    mat[pores] = 0.02
    cracks = np.zeros(shape, np.uint8)
    for _ in range(int(rng.integers(0, 6))):
        p, a = rng.uniform(0, 1, 2) * [W, H], rng.uniform(0, np.pi)
        pts = [p]
        for _ in range(40):
            a += rng.normal(0, 0.25)
            p = p + rng.uniform(2, 10) * np.array([np.cos(a), np.sin(a)])
            pts.append(p)
        cv2.polylines(cracks, [np.round(np.array(pts) * 4).astype(np.int32)], False, 1,
                      int(rng.integers(1, 3)), cv2.LINE_8, 2)
    mat[cracks > 0] = 0.02
    height = np.zeros(shape, np.float32)
    height[pores | (cracks > 0)] = -3.0
    return height, mat


BUILDERS = {"balls": build_balls, "grid": build_grid, "holey": build_holey, "fibres": build_fibres,
            "crystals": build_crystals, "blobs": build_blobs, "porous": build_porous}


def secondary_electron_image(height, mat, rng, tilt_gain: float | None = None) -> np.ndarray:
    """SE-like yield: material x (1/cos(tilt))^k (clipped: bright edges) + side-detector shading."""
    gx = cv2.Sobel(height, cv2.CV_32F, 1, 0, ksize=3) / 8.0
    gy = cv2.Sobel(height, cv2.CV_32F, 0, 1, ksize=3) / 8.0
    sec = np.sqrt(1.0 + gx * gx + gy * gy)
    k = rng.uniform(0.6, 1.3) if tilt_gain is None else tilt_gain
    edge = np.minimum(sec, rng.uniform(3.0, 8.0)) ** k
    ang = rng.uniform(0, 2 * np.pi)
    side = (np.cos(ang) * gx + np.sin(ang) * gy) / sec
    return mat * edge * (1.0 + rng.uniform(0.0, 0.4) * side)
