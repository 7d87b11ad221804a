"""The through-focus fit (issue 23) on known hyperbolas: sigma(z) = sqrt(s0^2 + (k (z - z0))^2)
turned into scores with the scale's own formula, noise added. No model runs here."""

from __future__ import annotations

import numpy as np
import pytest

from napari_semfocus.errors import SemFocusError
from napari_semfocus.scale import score_from_sigma, sigma_from_score
from napari_semfocus.scoring.through_focus import fit_focus_curve


def series(z0=4.3, s0=0.8, k=1.5, n=11, noise=0.2, seed=0, steps=None):
    rng = np.random.default_rng(seed)
    z = np.arange(n, dtype=float) if steps is None else np.concatenate([[0], np.cumsum(steps)])
    scores = score_from_sigma(np.hypot(s0, k * (z - z0))) + rng.normal(0, noise, z.size)
    return z, scores


@pytest.mark.parametrize("z0", [3.3, 4.5, 6.75])
def test_recovers_z0_between_slices_with_an_interval(z0):
    z, scores = series(z0=z0, noise=0.15, seed=1)
    curve = fit_focus_curve(scores, z)
    assert abs(curve.best_z - z0) < 0.1
    assert curve.best_z_low < z0 < curve.best_z_high
    assert curve.best_z_high - curve.best_z_low < 1.0  # well under a step at this noise
    assert curve.best_index == int(round(z0))
    assert curve.s0_px == pytest.approx(0.8, abs=0.25)
    assert curve.k_px_per_unit == pytest.approx(1.5, rel=0.2)
    assert curve.best_score == pytest.approx(score_from_sigma(curve.s0_px))
    assert 0.05 < curve.residual < 0.4


def test_best_z_follows_the_data_and_uneven_steps_in_micrometres():
    steps = np.array([9, 11, 10, 8, 12, 10, 9, 11, 10], dtype=float)  # um, uneven
    z, scores = series(z0=37.0, k=0.15, n=10, noise=0.1, steps=steps)
    near = fit_focus_curve(scores, z, z_unit="um", z_source="given")
    z2, scores2 = series(z0=52.0, k=0.15, n=10, noise=0.1, steps=steps)
    far = fit_focus_curve(scores2, z2, z_unit="um")
    assert abs(near.best_z - 37.0) < 1.5 and abs(far.best_z - 52.0) < 1.5
    assert far.best_z > near.best_z
    assert near.to_dict()["z_unit"] == "um" and near.to_dict()["z_source"] == "given"


def test_an_outlying_slice_is_down_weighted():
    z, scores = series(z0=5.4, noise=0.1, seed=3)
    clean = fit_focus_curve(scores, z)
    scores[8] += 4.0  # one wild slice (a charging frame, a stage jump)
    curve = fit_focus_curve(scores, z)
    assert abs(curve.best_z - 5.4) < 0.15
    assert curve.weights[8] < 0.1 < min(np.delete(curve.weights, 8))
    assert abs(curve.best_z - clean.best_z) < 0.1


@pytest.mark.parametrize("k, plateau, floor", [(0.4, 2, 0), (6.0, 0, 4)])
def test_slices_at_the_ends_of_the_scale_only_bound_sigma(k, plateau, floor):
    # a plateau of 10s (sigma <= 0.5 px: the scale's top) or a floor of 1s far from focus
    z = np.arange(15, dtype=float)
    scores = score_from_sigma(np.hypot(0.3, k * (z - 7.2)))
    assert (scores >= 9.99).sum() == plateau and (scores <= 1.0).sum() == floor
    curve = fit_focus_curve(scores, z)
    assert abs(curve.best_z - 7.2) < 0.1
    assert curve.best_z_low <= 7.2 <= curve.best_z_high
    assert np.all(curve.weights > 0.5)  # bounds that the curve keeps: no residual at all


def test_weights_leave_slices_out():
    z, scores = series(z0=5.0, noise=0.1)
    scores[2] = 9.9  # would pull z0 toward 2 ...
    weights = np.ones(z.size)
    weights[2] = 0.0  # ... but the caller is not sure of that slice at all
    curve = fit_focus_curve(scores, z, weights)
    assert abs(curve.best_z - 5.0) < 0.1 and curve.weights[2] == 0


def test_interval_covers_in_most_noisy_series():
    rng = np.random.default_rng(7)
    covered = []
    for i in range(25):
        z0 = rng.uniform(3, 7)
        z, scores = series(z0=z0, noise=0.3, seed=100 + i, k=rng.uniform(0.7, 2.5))
        curve = fit_focus_curve(scores, z)
        covered.append(curve.best_z_low <= z0 <= curve.best_z_high)
    assert 0.72 <= np.mean(covered) <= 1.0


def test_bootstrap_interval_is_around_best_z():
    z, scores = series(z0=4.6, noise=0.2, seed=5)
    curve = fit_focus_curve(scores, z, interval="bootstrap")
    assert curve.interval == "bootstrap"
    assert curve.best_z_low < curve.best_z < curve.best_z_high
    assert curve.best_z_high - curve.best_z_low < 1.5


# ---- refusals ------------------------------------------------------------------------------------
def test_refuses_too_few_slices_with_structure():
    z, scores = series(z0=4.0, noise=0.0, n=9)
    scores[[0, 1, 2, 6, 7, 8]] = [0.0, 0.2, 1.1, 1.0, 0.0, 0.0]  # no sample / floor
    with pytest.raises(SemFocusError) as exc:
        fit_focus_curve(scores, z, name="stack.tif")
    assert str(exc.value) == ("stack.tif: only 3 of 9 slices show enough structure to judge "
                              "focus (a score above 1.25); a focus curve needs at least 4.")


@pytest.mark.parametrize("z0, where, way", [(-3.0, "first", "smaller"),
                                             (13.0, "last", "larger")])
def test_refuses_series_on_one_side_of_focus(z0, where, way):
    z = np.arange(8, dtype=float) * 5.0  # um
    scores = score_from_sigma(np.hypot(0.6, 0.4 * (z - z0 * 5.0)))
    with pytest.raises(SemFocusError) as exc:
        fit_focus_curve(scores, z, z_unit="um", name="series")
    edge = "0" if where == "first" else "35"
    assert str(exc.value) == (f"series: best focus is beyond the {where} slice (z = {edge} um): "
                              f"the scores rise toward {way} z all the way, so extend the "
                              f"series to {way} z.")


def test_refuses_bad_positions():
    scores = series()[1]
    with pytest.raises(SemFocusError, match="^s: 3 focus positions given for 11 slices.$"):
        fit_focus_curve(scores, [0, 1, 2], name="s")
    with pytest.raises(SemFocusError, match="two slices have the same focus position"):
        fit_focus_curve(scores, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9], name="s")


def test_scores_map_back_to_sigma_on_the_scale():
    # the fit's premise: between 1 and 10 score and sigma are one function
    s = np.array([1.5, 4.0, 7.0, 9.5])
    np.testing.assert_allclose(score_from_sigma(sigma_from_score(s)), s)


def test_score_job_fits_a_lazy_stack_without_reading_it_twice():
    """The Score focus job's fit of a stack layer (jobs.score._curve): z from the layer's
    metadata, the refusal as the note, and a lazy stack fitted from its scores alone (read once:
    astigmatism not judged, saying why)."""
    da = pytest.importorskip("dask.array")
    from napari_semfocus.io.focus_positions import stack_positions
    from napari_semfocus.jobs import score as score_job
    from napari_semfocus.jobs.inputs import ImageInput

    z, scores = series(z0=4.3, noise=0.1, seed=3)
    pixels = np.random.default_rng(0).random((z.size, 64, 64)).astype(np.float32)
    focus = stack_positions({"defocus_um": list(z * 20.0)}, z.size)
    image = ImageInput("stack", da.from_array(pixels, chunks=(1, 64, 64)), 5000.0, 0,
                       focus=focus)
    curve, note = score_job._curve(image, pixels, scores)  # in memory: judged from the pixels
    assert note == "" and curve.z_unit == "um" and abs(curve.best_z - 86.0) < 4.0
    assert curve.astigmatism["judged"] is False  # noise frames: too few bins to judge
    assert "note" not in curve.astigmatism or "lazy" not in curve.astigmatism["note"]
    curve, note = score_job._curve(image, image.data, scores)
    assert abs(curve.best_z - 86.0) < 4.0
    assert curve.astigmatism == {"likely": False, "judged": False,
                                 "note": "a lazy (dask) stack is read once, for its scores: "
                                         "astigmatism is not judged"}
    _z, past = series(z0=-3.0, noise=0.1, seed=4)  # every slice past best focus
    curve, note = score_job._curve(image, image.data, past)
    assert curve is None and note.startswith(
        "layer 'stack': best focus is beyond the first slice (z = 0 um)")
