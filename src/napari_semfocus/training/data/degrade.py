"""Degradations that turn a sharp image into a labelled example (docs/focus-score-scale.md).

- Point-spread functions: :func:`gaussian_psf`, :func:`disk_psf`, :func:`disk_gaussian_psf`,
  :func:`elliptical_psf` each return ``(kernel, sigma)`` where ``sigma`` is the *measured*
  Gaussian-equivalent std of the discrete kernel, exactly as the doc defines it: the square root
  of the mean of its second central moments along x and y (:func:`psf_sigma`). A uniform disk of
  radius r has sigma = r / 2; an astigmatic Gaussian with axis stds a, b has sigma =
  sqrt((a^2 + b^2) / 2) whatever its angle. The label of a sharp image blurred by the kernel is
  ``scale.label_for_added_blur(sigma)``.
- :func:`blur` applies a kernel with OpenCV (separable for Gaussians, DFT-backed ``filter2D`` for
  large 2-D kernels), mirror borders.
- SEM noise as it is (:class:`NoiseSettings`, :func:`add_noise`): Poisson counts at a dose of
  ~2-2,000 per pixel with the detector's gain spread (excess noise), line or frame averaging,
  Gaussian read noise, per-line offsets and gains, the amplifier's bandwidth along the fast-scan
  axis (a causal exponential smear of noise *and* detail along each row: its blur counts in the
  label, :func:`scan_kernel`) and slow drift between lines; :func:`random_brightness_contrast`
  / :func:`apply_brightness_contrast` (gain, offset, gamma); :func:`quantise` to 8 or 16 bit.
- Zero-score frames: :mod:`.zero_frames`.
- One example from a cut-out region: :func:`normalise_region` (window contrast -> 0.1..0.9, so a
  noise setting means one noise-to-contrast ratio), :func:`degrade_region` (blur, crop, noise,
  brightness/contrast, quantise); :func:`draw_sigma_added` (labels ~uniform over the scale).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ...scale import sigma_from_score

PSF_KINDS = ("gaussian", "disk", "disk_gaussian", "elliptical")


# ---- PSFs ---------------------------------------------------------------------------------------
def psf_sigma(kernel: np.ndarray) -> float:
    """Gaussian-equivalent std of a 2-D kernel: sqrt(mean of the x and y second central moments)."""
    k = np.asarray(kernel, dtype=np.float64)
    k = k / k.sum()
    yy, xx = np.mgrid[0 : k.shape[0], 0 : k.shape[1]].astype(np.float64)
    my, mx = float((k * yy).sum()), float((k * xx).sum())
    var_y = float((k * (yy - my) ** 2).sum())
    var_x = float((k * (xx - mx) ** 2).sum())
    return float(np.sqrt(0.5 * (var_x + var_y)))


def _gauss_1d(sigma: float) -> np.ndarray:
    r = max(1, int(np.ceil(4.0 * sigma)))
    x = np.arange(-r, r + 1, dtype=np.float64)
    g = np.exp(-0.5 * (x / max(sigma, 1e-6)) ** 2)
    return g / g.sum()


def gaussian_psf(sigma: float) -> tuple[np.ndarray, float]:
    """Isotropic sampled Gaussian (truncated at 4 sigma)."""
    g = _gauss_1d(sigma)
    k = np.outer(g, g)
    return k.astype(np.float32), psf_sigma(k)


def _disk(radius: float) -> np.ndarray:
    """Uniform disk of ``radius`` px, pixel-integrated by supersampling (anti-aliased edge);
    its sigma is ~sqrt(r^2 / 4 + 1 / 12) (binning into pixels adds ~1/12 px^2)."""
    r = max(float(radius), 0.5)
    n = int(np.ceil(r)) + 1
    s = int(np.clip(96 / r, 8, 48))  # >= ~96 subsamples across the radius
    c = (np.arange((2 * n + 1) * s) + 0.5) / s - (n + 0.5)
    inside = (c[:, None] ** 2 + c[None, :] ** 2) <= r * r
    k = inside.reshape(2 * n + 1, s, 2 * n + 1, s).mean(axis=(1, 3))
    return k / k.sum()


def disk_psf(radius: float) -> tuple[np.ndarray, float]:
    """Uniform disk (defocus of a geometric beam): sigma ~= radius / 2."""
    k = _disk(radius)
    return k.astype(np.float32), psf_sigma(k)


def disk_gaussian_psf(radius: float, sigma_g: float) -> tuple[np.ndarray, float]:
    """Disk convolved with a small Gaussian: sigma^2 ~= radius^2 / 4 + sigma_g^2."""
    d = _disk(radius)
    g = _gauss_1d(sigma_g)
    pad = len(g) // 2
    d = np.pad(d, pad)
    k = cv2.sepFilter2D(d.astype(np.float64), cv2.CV_64F, g, g, borderType=cv2.BORDER_CONSTANT)
    k = np.clip(k, 0, None)
    return (k / k.sum()).astype(np.float32), psf_sigma(k)


def elliptical_psf(sigma_a: float, sigma_b: float, angle: float) -> tuple[np.ndarray, float]:
    """Astigmatic Gaussian with axis stds ``sigma_a``, ``sigma_b`` rotated by ``angle`` (rad):
    sigma = sqrt((sigma_a^2 + sigma_b^2) / 2)."""
    r = max(1, int(np.ceil(4.0 * max(sigma_a, sigma_b))))
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1].astype(np.float64)
    c, s = np.cos(angle), np.sin(angle)
    u, v = c * xx + s * yy, -s * xx + c * yy
    k = np.exp(-0.5 * ((u / max(sigma_a, 1e-6)) ** 2 + (v / max(sigma_b, 1e-6)) ** 2))
    k /= k.sum()
    return k.astype(np.float32), psf_sigma(k)


def make_psf(kind: str, sigma: float, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """A kernel of ``kind`` with Gaussian-equivalent std close to ``sigma`` (measured one returned).

    Below ~0.8 px every kind is a Gaussian (a disk that small is no disk)."""
    if kind not in PSF_KINDS:
        raise ValueError(f"unknown PSF kind {kind!r}; one of {', '.join(PSF_KINDS)}")
    if sigma < 0.8 or kind == "gaussian":
        return gaussian_psf(sigma)
    if kind == "disk":
        return disk_psf(2.0 * sigma)
    if kind == "disk_gaussian":
        sg = sigma * rng.uniform(0.2, 0.6)
        return disk_gaussian_psf(2.0 * np.sqrt(sigma**2 - sg**2), sg)
    ratio = rng.uniform(1.2, 2.5)  # axis ratio of the astigmatic spot
    sb = sigma * np.sqrt(2.0 / (1.0 + ratio**2))
    return elliptical_psf(ratio * sb, sb, rng.uniform(0, np.pi))


def blur(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Convolve (float32) with mirror borders; separable path for rank-1 (Gaussian) kernels."""
    img = np.asarray(image, dtype=np.float32)
    k = np.asarray(kernel, dtype=np.float64)
    if k.shape == (1, 1):
        return img.copy()
    centre_row = k[k.shape[0] // 2]
    centre_col = k[:, k.shape[1] // 2]
    if k.shape[0] == k.shape[1] and np.allclose(np.outer(centre_col, centre_row)
                                                / centre_row[k.shape[1] // 2], k, atol=1e-7):
        gx = centre_row / centre_row.sum()
        gy = centre_col / centre_col.sum()
        return cv2.sepFilter2D(img, cv2.CV_32F, gx.astype(np.float32), gy.astype(np.float32),
                               borderType=cv2.BORDER_REFLECT_101)
    return cv2.filter2D(img, cv2.CV_32F, k.astype(np.float32), borderType=cv2.BORDER_REFLECT_101)


# ---- noise, brightness / contrast, storage --------------------------------------------------------
@dataclass(frozen=True)
class NoiseSettings:
    """How an SEM frame was acquired, as far as its noise goes (intensities in [0, 1]).

    Only ``bandwidth_px`` changes the sharpness of what the frame shows (it smears detail along
    the rows): the label then follows the combined blur (:func:`scan_kernel`). Everything else is
    noise, which never changes the score of a frame that shows sample (the scale's rule).
    """

    dose: float  # mean counts per pixel at intensity 1, one pass; inf = no shot noise
    read_sigma: float  # Gaussian (amplifier / read) noise std
    line_sigma: float  # std of a per-line offset (scan-line noise)
    line_gain_sigma: float  # std of a per-line relative gain
    gain_shape: float = 0.0  # detector gain per count ~ Gamma(k, 1/k): excess noise 1 + 1/k; 0: none
    averages: int = 1  # lines or frames averaged: the counts of ``averages`` passes
    bandwidth_px: float = 0.0  # amplifier time constant along the fast-scan axis (rows), px
    drift_px: float = 0.0  # slow horizontal drift between lines (random walk over the frame), px

    @staticmethod
    def random(rng: np.random.Generator) -> NoiseSettings:
        """Two kinds of acquisition, drawn per example. Standard (65 %): from very noisy (5
        counts per pixel: noise ~40 % of a window's contrast range) to clean (thousands of
        counts), white read noise, sometimes scan-line noise. Fast scan (35 %), as in-lens / SE
        detectors on field-emission SEMs record fine texture: 2-200 counts per pixel per pass,
        the detector's gain spread, 1-8 lines or frames averaged, the amplifier's bandwidth
        smearing 0.3-2 px along the rows, scan-line offsets and slow drift."""
        if rng.random() < 0.35:
            return NoiseSettings(
                dose=float(np.exp(rng.uniform(np.log(2.0), np.log(200.0)))),
                read_sigma=float(np.exp(rng.uniform(np.log(0.002), np.log(0.03)))),
                line_sigma=float(rng.uniform(0.0, 0.03)),
                line_gain_sigma=float(rng.uniform(0.0, 0.04)),
                gain_shape=float(rng.uniform(1.0, 6.0)),
                averages=int(rng.choice((1, 1, 2, 4, 8))),
                bandwidth_px=float(np.exp(rng.uniform(np.log(0.3), np.log(2.0)))),
                drift_px=float(rng.uniform(0.0, 1.5)) if rng.random() < 0.5 else 0.0)
        dose = float(np.exp(rng.uniform(np.log(5.0), np.log(3000.0))))
        if rng.random() < 0.1:
            dose = float("inf")
        read = float(np.exp(rng.uniform(np.log(0.003), np.log(0.08))))  # >= ~1 LSB at 8 bit
        lines = rng.random() < 0.35
        return NoiseSettings(dose=dose, read_sigma=read,
                             line_sigma=float(rng.uniform(0.002, 0.04)) if lines else 0.0,
                             line_gain_sigma=float(rng.uniform(0.0, 0.05)) if lines else 0.0)


def scan_kernel(kernel: np.ndarray, noise: NoiseSettings) -> np.ndarray:
    """The blur a frame's content gets: the optical ``kernel`` followed by the amplifier's
    causal exponential along the rows (time constant ``noise.bandwidth_px``). Its
    :func:`psf_sigma` is the sigma the label follows."""
    row = bandwidth_kernel(noise.bandwidth_px)
    if row.size == 1:
        return np.asarray(kernel, np.float32)
    k = np.asarray(kernel, np.float64)
    pad = row.size - 1  # room for the smear on the right of a possibly 1 x 1 kernel
    out = np.zeros((k.shape[0], k.shape[1] + pad))
    for j, w in enumerate(row):
        out[:, j : j + k.shape[1]] += w * k
    return (out / out.sum()).astype(np.float32)


def bandwidth_kernel(tau_px: float) -> np.ndarray:
    """A causal exponential of time constant ``tau_px`` pixels (an RC low-pass as the scan
    goes along a row), truncated at 10 tau and normalised; [1] when tau is 0."""
    if tau_px <= 0:
        return np.ones(1)
    a = float(np.exp(-1.0 / tau_px))
    h = a ** np.arange(int(np.ceil(10 * tau_px)) + 1)
    return h / h.sum()


def add_poisson(image: np.ndarray, dose: float, rng: np.random.Generator,
                gain_shape: float = 0.0) -> np.ndarray:
    """Counts at ``dose`` per unit intensity, each multiplied by the detector's gain (Gamma of
    shape ``gain_shape``, mean 1; 0: exactly 1), back in intensity units."""
    if not np.isfinite(dose):
        return image.astype(np.float32, copy=True)
    lam = np.clip(image, 0, None).astype(np.float64) * dose
    counts = rng.poisson(lam).astype(np.float64)
    if gain_shape > 0:  # the sum of n Gamma(k, 1/k) gains is Gamma(n k, 1/k)
        counts = np.where(counts > 0, rng.gamma(np.maximum(counts, 1) * gain_shape,
                                                1.0 / gain_shape), 0.0)
    return (counts / dose).astype(np.float32)


def add_noise(image: np.ndarray, noise: NoiseSettings, rng: np.random.Generator,
              drift: bool = True) -> np.ndarray:
    """The frame as the microscope would record it: shot noise with the detector's gain over
    ``averages`` passes, line-wise gain and offset, read noise, then the amplifier's smear along
    the rows (noise and detail alike) and slow drift between lines."""
    out = add_poisson(image, noise.dose * max(1, noise.averages), rng, noise.gain_shape)
    H = out.shape[0]
    if noise.line_gain_sigma > 0:
        out *= (1.0 + noise.line_gain_sigma * rng.standard_normal((H, 1))).astype(np.float32)
    if noise.line_sigma > 0:
        out += (noise.line_sigma * rng.standard_normal((H, 1))).astype(np.float32)
    if noise.read_sigma > 0:
        out += (noise.read_sigma / np.sqrt(max(1, noise.averages))
                * rng.standard_normal(out.shape)).astype(np.float32)
    if noise.bandwidth_px > 0:
        row = bandwidth_kernel(noise.bandwidth_px).astype(np.float32)[None, :]
        out = cv2.filter2D(out, cv2.CV_32F, row, anchor=(0, 0),
                           borderType=cv2.BORDER_REFLECT_101)
    if drift and noise.drift_px > 0:
        out = _drift(out, noise.drift_px, rng)
    return out


def _drift(image: np.ndarray, amplitude_px: float, rng: np.random.Generator) -> np.ndarray:
    """Shift each row sideways by a slow random walk spanning about ``amplitude_px`` over the
    frame (cubic interpolation: a sub-pixel shift adds < 0.05 px^2 of blur)."""
    H, W = image.shape
    walk = np.cumsum(rng.standard_normal(H))
    walk = cv2.GaussianBlur(walk.reshape(-1, 1), (1, 0), sigmaX=0.1, sigmaY=H / 20).ravel()
    walk -= walk.mean()
    walk *= amplitude_px / max(float(np.ptp(walk)), 1e-6)
    xs = np.arange(W, dtype=np.float32)[None, :] + walk.astype(np.float32)[:, None]
    ys = np.repeat(np.arange(H, dtype=np.float32)[:, None], W, axis=1)
    return cv2.remap(image, xs, ys, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT_101)


def random_brightness_contrast(image: np.ndarray, rng: np.random.Generator,
                               gamma: bool = True) -> dict:
    """Random gain/offset (and sometimes gamma) as an SEM operator would set them for ``image``:
    mostly within range, now and then a little clipping at black or white."""
    lo, hi = np.percentile(image[::2, ::2], [0.5, 99.5])
    span = max(float(hi - lo), 1e-3)
    width = rng.uniform(0.25, 1.05)  # fraction of the output range the content spans
    start = rng.uniform(-0.03, 1.0 - width + 0.03)
    g = float(np.exp(rng.normal(0, 0.25))) if gamma and rng.random() < 0.4 else 1.0
    return {"gain": width / span, "offset": start - float(lo) * width / span, "gamma": g}


def apply_brightness_contrast(image: np.ndarray, params: dict) -> np.ndarray:
    out = image * np.float32(params["gain"]) + np.float32(params["offset"])
    if params.get("gamma", 1.0) != 1.0:
        out = np.clip(out, 0, None) ** np.float32(params["gamma"])
    return out.astype(np.float32, copy=False)


def quantise(image: np.ndarray, bits: int) -> np.ndarray:
    """Clip to [0, 1] and store as uint8 (bits=8) or uint16 (bits=16, full 0..65535 range)."""
    if bits not in (8, 16):
        raise ValueError("bits must be 8 or 16")
    top = 255.0 if bits == 8 else 65535.0
    q = np.rint(np.clip(image, 0.0, 1.0) * top)
    return q.astype(np.uint8 if bits == 8 else np.uint16)


# ---- one example: blur, noise, brightness/contrast, storage ----------------------------------------
def draw_sigma_added(rng) -> float:
    """Added blur: label uniform in [1, 10], plus 10 % exactly sharp, 8 % nearly sharp (label
    9.3-10) and 8 % beyond 32 px (the top of the scale is where v3 erred most)."""
    u = rng.random()
    if u < 0.10:
        return 0.0
    if u < 0.18:
        total = sigma_from_score(rng.uniform(9.3, 10.0))
        return float(np.sqrt(max(total**2 - 0.25, 0.0)))
    if u < 0.26:
        return float(np.exp(rng.uniform(np.log(32.0), np.log(64.0))))
    total = sigma_from_score(rng.uniform(1.0, 10.0))
    return float(np.sqrt(max(total**2 - 0.25, 0.0)))


def normalise_region(region, off, size_hw):
    """Map the window's 0.5/99.5 percentiles to 0.1/0.9, so that noise settings mean the same
    noise-to-contrast ratio for every source. -> (region, its sharp window)."""
    h, w = size_hw
    sharp = region[off[0] : off[0] + h, off[1] : off[1] + w]
    lo, hi = np.percentile(sharp[::2, ::2], [0.5, 99.5])
    out = (region - np.float32(lo)) * np.float32(0.8 / max(float(hi - lo), 1e-4)) + np.float32(0.1)
    return np.clip(out, 0.0, None), out[off[0] : off[0] + h, off[1] : off[1] + w]


def degrade_region(region, off, size_hw, kernel, noise, bc, bits, rng):
    """Blur the (normalised) region, crop the window, add noise, brightness/contrast, quantise.
    -> (uint8|uint16 image, noise level = noise std / the window's 0.5-99.5 % contrast range).
    The label follows ``scan_kernel(kernel, noise)`` (the amplifier's smear included)."""
    h, w = size_hw
    blurred = blur(region, kernel) if kernel.size > 1 else region
    win = blurred[off[0] : off[0] + h, off[1] : off[1] + w]
    noisy = add_noise(win, noise, rng, drift=False)
    # the noise alone: what the recorded frame differs by from the same smear without noise
    clean = add_noise(win, _without_noise(noise), rng) if noise.bandwidth_px > 0 else win
    level = float((noisy - clean).std()) / 0.8
    if noise.drift_px > 0:
        noisy = _drift(noisy, noise.drift_px, rng)
    out = apply_brightness_contrast(noisy, bc)
    return quantise(out, bits), level


def _without_noise(noise: NoiseSettings) -> NoiseSettings:
    """The same acquisition without any noise (only the amplifier's smear remains)."""
    return NoiseSettings(dose=float("inf"), read_sigma=0.0, line_sigma=0.0, line_gain_sigma=0.0,
                         bandwidth_px=noise.bandwidth_px)
