"""The astigmatism indicator (issue 23) on synthetic textures: an elliptical blur's long axis
and ratio per frame, and the series verdict: found on astigmatic series at any orientation, not
claimed on round blur of a strongly directional sample (fibres). No model runs here."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from napari_semfocus.scale import score_from_sigma
from napari_semfocus.scoring.astigmatism import (
    MIN_TURN_DEG,
    _axis_turn,
    astigmatism_line,
    excess_blur,
    frame_anisotropy,
    series_astigmatism,
)

H, W = 192, 256


def texture(rng) -> np.ndarray:
    """An isotropic texture of grains a few pixels across."""
    t = cv2.GaussianBlur(rng.normal(size=(H, W)).astype(np.float32), (0, 0), 1.0)
    return (t - t.min()) / np.ptp(t)


def fibres(rng, angle_deg=25.0) -> np.ndarray:
    """Thin bright fibres, nearly all along ``angle_deg`` (from +column toward +row)."""
    img = np.zeros((H, W), np.float32)
    for _ in range(90):
        a = np.radians(angle_deg + rng.normal(0, 3))
        cy, cx, half = rng.uniform(0, H), rng.uniform(0, W), rng.uniform(20, 120)
        p0 = (int(cx - half * np.cos(a)), int(cy - half * np.sin(a)))
        p1 = (int(cx + half * np.cos(a)), int(cy + half * np.sin(a)))
        cv2.line(img, p0, p1, float(rng.uniform(0.5, 1.0)), 1, cv2.LINE_AA)
    return img


def elliptical_blur(img, s_long, s_short, theta_deg):
    r = int(np.ceil(4 * max(s_long, s_short))) + 1
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1].astype(np.float64)
    t = np.radians(theta_deg)
    u, v = xx * np.cos(t) + yy * np.sin(t), -xx * np.sin(t) + yy * np.cos(t)
    k = np.exp(-0.5 * ((u / s_long) ** 2 + (v / s_short) ** 2))
    return cv2.filter2D(img, -1, (k / k.sum()).astype(np.float32), borderType=cv2.BORDER_REFLECT)


def noisy(img, rng, level=0.01):
    return (img + rng.normal(0, level, img.shape)).astype(np.float32)


@pytest.mark.parametrize("theta", [0.0, 35.0, 90.0, 150.0])
def test_frame_long_axis_and_ratio(theta):
    rng = np.random.default_rng(1)
    base = texture(rng)
    ref = noisy(elliptical_blur(base, 0.5, 0.5, 0), rng)
    frame = noisy(elliptical_blur(base, 3.0, 1.5, theta), rng)
    cov, bins = excess_blur(frame, ref)
    angle, ratio = frame_anisotropy(cov, 0.5)
    err = abs(angle - theta) % 180
    assert min(err, 180 - err) < 6
    assert ratio == pytest.approx(3.0 / 1.5, rel=0.2)
    assert bins > 100


def make_series(base, rng, theta, d, z0=6.0, k=0.8, s0=0.6, n=13):
    """Line foci at z0 -+ d: before focus the long axis is ``theta``."""
    z = np.arange(n, dtype=float)
    frames, sigma = [], []
    for zi in z:
        s_across = np.hypot(s0, k * (zi - (z0 - d)))
        s_along = np.hypot(s0, k * (zi - (z0 + d)))
        frames.append(noisy(elliptical_blur(base, s_along, s_across, theta), rng))
        sigma.append(np.sqrt((s_across**2 + s_along**2) / 2))
    return np.stack(frames), score_from_sigma(np.array(sigma)), z


@pytest.mark.parametrize("theta", [20.0, 110.0])
def test_astigmatic_series_found_with_its_orientation(theta):
    rng = np.random.default_rng(2)
    frames, scores, z = make_series(texture(rng), rng, theta, d=1.2)
    rec = series_astigmatism(frames, scores, z, best_z=6.0, s0_px=0.6)
    assert rec["judged"] and rec["likely"]
    err = abs(rec["orientation_deg"] - theta) % 180
    assert min(err, 180 - err) < 10
    assert rec["ratio"] > 1.3
    before = [f["orientation_deg"] for f in rec["frames"] if z[f["index"]] < 4]
    after = [f["orientation_deg"] for f in rec["frames"] if z[f["index"]] > 8]
    turn = abs(np.median(before) - np.median(after)) % 180
    assert 70 < turn < 110  # the long axis turns by ~90 degrees through focus
    assert rec["turn_deg"] > 70
    assert astigmatism_line(rec).startswith("Astigmatism likely")


@pytest.mark.parametrize("sample", ["texture", "fibres"])
def test_round_blur_is_not_called_astigmatic_even_on_fibres(sample):
    rng = np.random.default_rng(3)
    base = texture(rng) if sample == "texture" else fibres(rng)
    frames, scores, z = make_series(base, rng, theta=0.0, d=0.0)
    rec = series_astigmatism(frames, scores, z, best_z=6.0, s0_px=0.6)
    assert rec["judged"] and not rec["likely"]
    assert rec["ratio"] < 1.1
    assert astigmatism_line(rec).startswith("No astigmatism seen")


def test_not_judged_without_defocused_frames_on_both_sides():
    rng = np.random.default_rng(4)
    frames, scores, z = make_series(texture(rng), rng, theta=0.0, d=0.0, z0=0.0)
    rec = series_astigmatism(frames, scores, z, best_z=0.0, s0_px=0.6)
    assert not rec["judged"] and not rec["likely"] and rec["orientation_deg"] is None
    assert astigmatism_line(rec).startswith("Astigmatism: not judged")


def doubled(angle_deg, strength=0.5):
    return strength * np.array([np.cos(np.radians(2 * angle_deg)),
                                np.sin(np.radians(2 * angle_deg))])


@pytest.mark.parametrize(("before", "after", "turn"),
                         [(0, 90, 90), (0, 0, 0), (10, 170, 20), (30, 100, 70), (45, 135, 90)])
def test_axis_turn_between_the_sides(before, after, turn):
    assert _axis_turn(doubled(before), doubled(after)) == pytest.approx(turn, abs=1e-6)


def test_strength_without_a_turn_is_not_astigmatism_and_the_line_says_why():
    record = {"judged": True, "likely": False, "orientation_deg": 12.0, "ratio": 1.4,
              "strength": 0.4, "turn_deg": MIN_TURN_DEG - 20}
    line = astigmatism_line(record)
    assert line.startswith("No astigmatism seen") and "turns only 35°" in line
