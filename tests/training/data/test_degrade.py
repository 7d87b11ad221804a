"""SEM noise as it is (issue 25, item 1): shot noise with the detector's gain, averaging, the
amplifier's smear along the fast-scan axis (which blurs detail too: the label follows it) and
slow drift; noise alone never changes a label."""

from __future__ import annotations

import numpy as np
import pytest

from napari_semfocus.scale import label_for_added_blur
from napari_semfocus.training.data import dataset as ds
from napari_semfocus.training.data import degrade
from napari_semfocus.training.data.degrade import NoiseSettings, add_noise, psf_sigma, scan_kernel

FLAT = np.full((256, 256), 0.5, np.float32)


def _noise(**kw) -> NoiseSettings:
    base = {"dose": 50.0, "read_sigma": 0.0, "line_sigma": 0.0, "line_gain_sigma": 0.0}
    return NoiseSettings(**{**base, **kw})


def _lag1(a: np.ndarray, axis: int) -> float:
    a = a - a.mean()
    x, y = (a[:, :-1], a[:, 1:]) if axis == 1 else (a[:-1], a[1:])
    return float((x * y).mean() / a.var())


def test_the_amplifier_smears_noise_along_rows_only():
    out = add_noise(FLAT, _noise(bandwidth_px=1.5), np.random.default_rng(0))
    assert _lag1(out, axis=1) > 0.5  # neighbours along the scan line are alike
    assert abs(_lag1(out, axis=0)) < 0.05  # lines are independent
    white = add_noise(FLAT, _noise(), np.random.default_rng(0))
    assert abs(_lag1(white, axis=1)) < 0.05


def test_averaging_and_detector_gain_set_the_noise():
    rng = np.random.default_rng(1)
    one = add_noise(FLAT, _noise(), rng).std()
    four = add_noise(FLAT, _noise(averages=4), rng).std()
    assert four == pytest.approx(one / 2, rel=0.05)  # 4 passes: half the shot noise
    gain = add_noise(FLAT, _noise(gain_shape=1.0), rng).std()  # exponential gain: F = 2
    assert gain == pytest.approx(one * np.sqrt(2), rel=0.05)
    assert add_noise(FLAT, _noise(dose=2.0), rng).mean() == pytest.approx(0.5, abs=0.01)


def test_the_smear_is_part_of_the_blur_the_label_follows():
    tau = 1.0
    k = scan_kernel(np.ones((1, 1), np.float32), _noise(bandwidth_px=tau))
    a = np.exp(-1 / tau)
    var_x = a / (1 - a) ** 2  # variance of a discrete exponential
    assert psf_sigma(k) == pytest.approx(np.sqrt(var_x / 2), rel=0.02)
    assert label_for_added_blur(psf_sigma(k)) < 10  # a 1 px smear: not perfectly sharp
    small = scan_kernel(np.ones((1, 1), np.float32), _noise(bandwidth_px=0.3))
    assert label_for_added_blur(psf_sigma(small)) > 9.9  # 0.3 px: as good as sharp
    optical, sigma = degrade.gaussian_psf(2.0)
    both = psf_sigma(scan_kernel(optical, _noise(bandwidth_px=tau)))
    assert both == pytest.approx(np.sqrt(sigma**2 + var_x / 2), rel=0.02)


def test_a_drifting_scan_moves_rows_without_blurring_them():
    rng = np.random.default_rng(2)
    edge = np.zeros((128, 128), np.float32)
    edge[:, 64:] = 1.0
    out = add_noise(edge, _noise(dose=float("inf"), drift_px=1.5), rng)
    steps = [int(np.argmax(np.diff(row))) for row in out]
    assert max(steps) - min(steps) >= 1  # the edge wanders from line to line
    assert np.diff(out, axis=1).max() > 0.6  # still a sharp edge within a line


def _scene_source():
    from napari_semfocus.training.data import scenes
    from napari_semfocus.training.data.pool import Source

    img = scenes.render_scene(scenes.SCENE_KINDS[0], (400, 500), np.random.default_rng(0))
    return Source("scene", "scene", "scene", img, None, 1.0, "scene")


@pytest.mark.parametrize("bandwidth", [0.0, 1.5])
def test_noise_never_changes_a_label_but_the_smear_does(monkeypatch, bandwidth):
    labels = {}
    for dose in (3.0, 3000.0):
        noise = _noise(dose=dose, read_sigma=0.02, bandwidth_px=bandwidth, averages=2)
        monkeypatch.setattr(NoiseSettings, "random", staticmethod(lambda rng, n=noise: n))
        spec = {"series": "s", "index": 0, "source": 0, "mag_lo": 1e3, "mag_hi": 1e4}
        out = list(ds.series_examples(spec, [_scene_source()], (96, 128), seed=3))
        labels[dose] = [m["label"] for _, m in out]
        assert all(("+scan" in m["psf"]) == (bandwidth > 0) for _, m in out)
    assert labels[3.0] == labels[3000.0]  # the dose does not move a label
    top = labels[3.0][0]
    assert top == 10.0 if bandwidth == 0 else top < 9.5  # a 1.5 px smear softens the sharpest
    assert all(a >= b for a, b in zip(labels[3.0], labels[3.0][1:], strict=False))


def test_random_settings_hold_fast_scans():
    rng = np.random.default_rng(0)
    drawn = [NoiseSettings.random(rng) for _ in range(400)]
    fast = [n for n in drawn if n.bandwidth_px > 0]
    assert 0.25 < len(fast) / len(drawn) < 0.45
    assert min(n.dose for n in fast) < 5 and max(n.averages for n in fast) == 8
