"""Percent density (PD%) and the PD-derived category (mammo.md §2.2).

Steps, on a 1/4-scale copy of the image (host; the image is small there):

1. Peripheral equalisation: the compressed breast thins towards the skin, which
   darkens fat and dense tissue alike. The 10th intensity percentile (fatty tissue)
   per 0.5 mm band of distance to the skin, relative to that of the full-thickness interior,
   estimates the relative thickness; dividing by it flattens the roll-off
   (after Snoeren & Karssemeijer, "Thickness correction of mammographic images by
   means of a global parameter model of the compressed breast", IEEE TMI 2004).
2. A two-class Gaussian mixture (EM) on the equalised tissue intensities; pixels
   whose posterior favours the brighter class are dense.
3. PD = dense area / tissue area (breast minus pectoral muscle).

The category uses configurable PD cuts (default 25/50/75 %, the BI-RADS 4th-edition
quartiles, unverified) and is labelled as PD-derived: BI-RADS 5th-edition density
is a qualitative radiologist assessment.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from .breast import block_mean, upsample_mask

DENSITY_DOWNSAMPLE = 4
DEFAULT_CUTS_PERCENT = (25.0, 50.0, 75.0)
CATEGORY_LABEL = "PD-derived category, not a BI-RADS assessment"
BAND_MM = 0.5
INTERIOR_MM = 15.0  # full thickness beyond about the roll-off width (w ≈ 10–15 mm)
RIM_MM = 0.0
# the outermost rim is too thin to classify; it takes its neighbours' label


def distance_to_skin_mm(mask: np.ndarray, spacing_mm: float) -> np.ndarray:
    """Distance to the mask outline, in mm; image edges (chest wall, axilla) are not skin."""
    padded = np.pad(mask, 1, mode="edge")
    return (ndi.distance_transform_edt(padded)[1:-1, 1:-1] * spacing_mm).astype(np.float32)


def fit_thickness_mixture(
    x: np.ndarray, band: np.ndarray, n_bands: int, flat: np.ndarray | None = None, iterations: int = 60
):
    """Two tissue classes seen through a relative thickness T_b per distance band.

    Model: x = T_b · μ_k + ε_k, k ∈ {fat, dense}, with a class mixture weight per band
    (density varies across the breast), global class means and SDs, T_b ≤ 1 and
    non-decreasing inwards, T = 1 in the last (full-thickness) band. Fitted by EM;
    T_b is the weighted least-squares scale of each band given the posteriors.
    ``flat`` (bool per value) limits the class means and SD to flat pixels: blurred tissue
    borders belong to neither class and would pull the smaller class towards the other.
    Returns (T per band, class means μ, class SDs σ).
    """
    x = np.asarray(x, np.float64)
    p5, p95 = np.percentile(x[band == n_bands - 1] if np.any(band == n_bands - 1) else x, [5, 95])
    mu = np.array([p5, p95])
    sd = np.full(2, max((p95 - p5) / 4.0, 1e-6))
    t_band = np.ones(n_bands)
    w_band = np.full((n_bands, 2), 0.5)
    counts = np.bincount(band, minlength=n_bands)
    for _ in range(iterations):
        t = t_band[band][:, None]
        z = (x[:, None] - t * mu) / (t * sd)
        logp = -0.5 * z * z - np.log(t * sd) + np.log(w_band[band] + 1e-12)
        logp -= logp.max(axis=1, keepdims=True)
        r = np.exp(logp)
        r /= r.sum(axis=1, keepdims=True)
        # Class weights per band; means and SDs on the thickness-corrected values.
        for k in range(2):
            w_band[:, k] = np.bincount(band, weights=r[:, k], minlength=n_bands) / np.maximum(counts, 1)
        y = x / t_band[band]
        rf = r if flat is None else r * flat[:, None]
        nk = rf.sum(axis=0) + 1e-12
        mu = (rf * y[:, None]).sum(axis=0) / nk
        # One SD for both classes: the anatomical texture is the same in fat and dense tissue, and a
        # free minority-class SD absorbs the blurred edges and biases its mean.
        sd = np.full(2, np.sqrt((rf * (y[:, None] - mu) ** 2).sum() / nk.sum()) + 1e-9)
        # T_b = argmin Σ r_ik (x_i − T μ_k)² / σ_k²  (weighted least squares, closed form).
        a = (r * x[:, None] * mu / sd**2).sum(axis=1)
        b = (r * mu**2 / sd**2).sum(axis=1)
        num = np.bincount(band, weights=a, minlength=n_bands)
        den = np.bincount(band, weights=b, minlength=n_bands)
        t_new = np.where(den > 0, num / np.maximum(den, 1e-12), 1.0)
        t_new[-1] = 1.0
        t_band = np.clip(np.minimum.accumulate(t_new[::-1])[::-1], 0.05, 1.0)
    return t_band, mu, sd


def density_category(percent_density: float, cuts_percent=DEFAULT_CUTS_PERCENT) -> str:
    """a/b/c/d from PD% with ascending cuts (PD < cut1 → a, ..., PD ≥ cut3 → d)."""
    cuts = [float(c) for c in cuts_percent]
    if len(cuts) != 3 or sorted(cuts) != cuts:
        raise ValueError(f"density cuts must be three ascending percentages, got {cuts_percent!r}")
    return "abcd"[int(np.searchsorted(cuts, percent_density, side="right"))]


@dataclass
class DensityResult:
    dense_mask: np.ndarray  # bool, full resolution
    percent_density: float
    density_category: str
    category_label: str
    threshold: float  # on the equalised 1/4-scale image
    equalized_small: np.ndarray  # the 1/4-scale equalised image (air level subtracted)
    tissue_small: np.ndarray  # bool, 1/4-scale tissue mask
    distance_small_mm: np.ndarray  # distance to skin at 1/4 scale, in mm (nominal scale without spacing)


def estimate_density(
    image: np.ndarray,
    breast_mask: np.ndarray,
    pectoral_mask: np.ndarray | None,
    pixel_spacing_mm: float,
    cuts_percent=DEFAULT_CUTS_PERCENT,
) -> DensityResult:
    """PD% over breast minus pectoral; see the module doc for the method."""
    f = DENSITY_DOWNSAMPLE
    tissue_full = breast_mask & ~pectoral_mask if pectoral_mask is not None else breast_mask
    small = block_mean(image, f)
    breast_small = block_mean(breast_mask.astype(np.float32), f) > 0.5
    tissue_small = block_mean(tissue_full.astype(np.float32), f) > 0.5
    outside = ~ndi.binary_dilation(breast_small, iterations=2)
    air = float(np.median(small[outside])) if outside.sum() > 100 else float(small.min())
    dist = distance_to_skin_mm(breast_small, pixel_spacing_mm * f)
    # Light smoothing (≈ 0.5 mm) removes quantum noise, not anatomy.
    smooth = ndi.gaussian_filter(small - air, max(0.5, 0.5 / (pixel_spacing_mm * f)))
    n_bands = int(INTERIOR_MM / BAND_MM) + 1
    band = np.minimum((dist / BAND_MM).astype(np.int64), n_bands - 1)
    core = tissue_small & (dist > RIM_MM)
    if core.sum() < 20:
        empty = np.zeros(image.shape, bool)
        return DensityResult(empty, float("nan"), "", CATEGORY_LABEL, float("nan"), smooth, tissue_small, dist)
    grad = ndi.gaussian_gradient_magnitude(smooth, 1.0)[core]
    t_band, mu, _sd = fit_thickness_mixture(smooth[core], band[core], n_bands, flat=grad <= np.median(grad))
    eq = (smooth / t_band[band]).astype(np.float32)
    # Midpoint of the class means: the 50 % level of a blurred tissue border stays on the border
    # (a prior-weighted Bayes rule would move it towards the minority class).
    thr = float(0.5 * (mu[0] + mu[1]))
    dense_small = (eq > thr) & tissue_small
    dense = upsample_mask(dense_small, f, image.shape) & tissue_full
    pd = 100.0 * float(dense_small.sum()) / float(tissue_small.sum())
    return DensityResult(dense, pd, density_category(pd, cuts_percent), CATEGORY_LABEL, thr, eq, tissue_small, dist)
