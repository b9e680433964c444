"""Percent density (PD%) and the PD-derived category (mammo.md §2.2).

Steps, on a 1/4-scale copy of the image (host; the image is small there):

1. Peripheral equalisation and tissue classes, fitted together: the compressed breast thins
   towards the skin, which darkens fat and dense tissue alike. A relative thickness T_b per
   0.5 mm band of distance to the skin (T = 1 in the full-thickness interior) and a two-class
   Gaussian mixture (fat, dense) on the corrected values x / T_b are fitted by EM from several
   starts (after Snoeren & Karssemeijer, "Thickness correction of mammographic images by
   means of a global parameter model of the compressed breast", IEEE TMI 2004).
2. Model selection: the two classes are distinct tissues only if their means lie at least
   MIN_SEPARATION_SD texture SDs apart; otherwise the breast is one class (read as fatty,
   PD = 0) and T_b is the one-class thickness (band mean / interior mean).
3. Pixels above the midpoint of the class means are dense (the outermost pixel ring takes the
   label of its nearest inner pixel); PD = dense area / tissue area (breast minus pectoral muscle).

The category uses configurable PD cuts (default 25/50/75 %, the BI-RADS 4th-edition
quartiles, unverified) and is labelled as PD-derived: BI-RADS 5th-edition density
is a qualitative radiologist assessment.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi
from scipy import special

from .breast import block_mean, upsample_mask

DENSITY_DOWNSAMPLE = 4
DEFAULT_CUTS_PERCENT = (25.0, 50.0, 75.0)
CATEGORY_LABEL = "PD-derived category, not a BI-RADS assessment"
BAND_MM = 0.5
INTERIOR_MM = 15.0  # full thickness beyond about the roll-off width (w ≈ 10–15 mm)
RIM_PX = 1.5
# The outermost pixel ring (distance to the skin below RIM_PX pixels of the 1/4-scale copy) is too
# thin to classify: the block mean and the smoothing mix it with air. It takes the label of the nearest
# inner pixel (dense regions are millimetres wide).
MIN_SEPARATION_SD = 5.0
# Fat and dense are two classes only when their means lie this many texture SDs apart (Ashman's D with
# equal SDs). D > 2 is the usual bimodality criterion, but a power-law (β = 3) texture is dominated by a
# few low-frequency modes: a two-class fit of fatty tissue alone reaches D ≈ 3 on the phantoms.
SPLIT_QUANTILES = (0.15, 0.5, 0.8, 0.95)  # EM starts: initial fat/dense split at these quantiles
START_ITERATIONS = 15


def distance_to_skin_mm(mask: np.ndarray, spacing_mm: float) -> np.ndarray:
    """Distance to the mask outline, in mm; image edges (chest wall, axilla) are not skin."""
    padded = np.pad(mask, 1, mode="edge")
    return (ndi.distance_transform_edt(padded)[1:-1, 1:-1] * spacing_mm).astype(np.float32)


def air_level(small: np.ndarray, breast: np.ndarray, min_pixels: int) -> float:
    """Median of the pixels well outside the breast (2 px clear of it), or the image minimum when fewer
    than ``min_pixels`` are there."""
    outside = ~ndi.binary_dilation(breast, iterations=2)
    return float(np.median(small[outside])) if outside.sum() > min_pixels else float(small.min())


def distance_bands(dist_mm: np.ndarray, band_mm: float, interior_mm: float) -> tuple[np.ndarray, int]:
    """Band index per pixel by distance to the skin (the last band is the full-thickness interior)."""
    n_bands = int(interior_mm / band_mm) + 1
    return np.minimum((dist_mm / band_mm).astype(np.int64), n_bands - 1), n_bands


def _thickness_one_class(x: np.ndarray, band: np.ndarray, n_bands: int) -> np.ndarray:
    """T_b for one tissue mixture: band mean over full-thickness mean, non-decreasing inwards.

    The mean, not the median: with dense and fatty tissue in similar shares the median jumps between
    the two classes from band to band.
    """
    counts = np.bincount(band, minlength=n_bands)
    mean = np.bincount(band, weights=x, minlength=n_bands) / np.maximum(counts, 1)
    ref = mean[-1] if counts[-1] and mean[-1] > 0 else mean.max()
    t = np.where(counts > 0, mean / ref, 1.0)
    t[-1] = 1.0
    return np.clip(np.minimum.accumulate(t[::-1])[::-1], 0.05, 1.0)


def _thickness_em(x, band, n_bands, flat, t_band, mu, sd, w_band, iterations):
    """EM of the two-class model on the corrected values y = x / T_b from a start.

    The likelihood is that of y (no Jacobian term): the Jacobian, −Σ log T_b, rewards thin bands,
    and with it a fit can shrink T_b over the whole roll-off and explain the interior as one broad class.
    Returns (T, μ, σ, band weights, log-likelihood of y over the flat pixels).
    """
    counts = np.bincount(band, minlength=n_bands)
    xx = np.bincount(band, weights=x * x, minlength=n_bands)
    fw = np.ones_like(x) if flat is None else np.asarray(flat, np.float64)
    mu0, mu1, s = float(mu[0]), float(mu[1]), float(np.max(sd))
    w1 = np.clip(w_band[:, 1], 1e-9, 1 - 1e-9)
    loglik = -np.inf
    for _ in range(iterations):
        # E-step with two classes written out (one SD: the normalisations cancel in the posterior).
        # Sums, not np.dot: a BLAS call on a shared 2-core machine costs more than the whole E-step.
        y = x / t_band[band]
        l0 = np.log(1.0 - w1 + 1e-12)[band] - 0.5 * ((y - mu0) / s) ** 2
        l1 = np.log(w1 + 1e-12)[band] - 0.5 * ((y - mu1) / s) ** 2
        loglik = float((np.logaddexp(l0, l1) * fw).sum()) - np.log(s) * fw.sum()  # pixels the classes are fitted on
        p = special.expit(l1 - l0)  # posterior of the dense class
        # Class weights per band; means and SD on the thickness-corrected values.
        w1 = np.bincount(band, weights=p, minlength=n_bands) / np.maximum(counts, 1)
        pf = p * fw
        n1 = pf.sum() + 1e-12
        n0 = fw.sum() - pf.sum() + 1e-12
        mu1 = float((pf * y).sum()) / n1
        mu0 = float(((fw - pf) * y).sum()) / n0
        # One SD for both classes: the anatomical texture is the same in fat and dense tissue, and a
        # free minority-class SD absorbs the blurred edges and biases its mean.
        s = float(np.sqrt((((fw - pf) * (y - mu0) ** 2).sum() + (pf * (y - mu1) ** 2).sum()) / (n0 + n1))) + 1e-9
        # 1 / T_b = argmin_u Σ r_ik (u x_i − μ_k)²  (least squares, closed form; one SD for both classes).
        num = np.bincount(band, weights=x * (mu0 + p * (mu1 - mu0)), minlength=n_bands)
        t_new = np.where(num > 0, xx / np.maximum(num, 1e-12), 1.0)
        t_new[-1] = 1.0
        t_band = np.clip(np.minimum.accumulate(t_new[::-1])[::-1], 0.05, 1.0)
    mu, sd = np.array([mu0, mu1]), np.full(2, s)
    w_band = np.stack([1.0 - w1, w1], axis=1)
    return t_band, mu, sd, w_band, loglik


def fit_thickness_mixture(
    x: np.ndarray, band: np.ndarray, n_bands: int, flat: np.ndarray | None = None, iterations: int = 60
):
    """Two tissue classes seen through a relative thickness T_b per distance band.

    Model: x / T_b = μ_k + ε_k, k ∈ {fat, dense}, with a class mixture weight per band
    (density varies across the breast), global class means and one SD, T_b ≤ 1 and
    non-decreasing inwards, T = 1 in the last (full-thickness) band. Fitted by EM;
    1 / T_b is the least-squares scale of each band given the posteriors.
    ``flat`` (bool per value) limits the class means and SD to flat pixels: blurred tissue
    borders belong to neither class and would pull the smaller class towards the other.
    EM has local optima (a split of the fatty texture that leaves a small dense class inside the
    upper half), so it starts from the one-class thickness and a fat/dense split at several quantiles,
    and the start with the highest likelihood on the flat pixels is iterated to the end.
    Returns (T per band, class means μ, class SDs σ), μ ascending.
    """
    x = np.asarray(x, np.float64)
    t0 = _thickness_one_class(x, band, n_bands)
    y = x / t0[band]
    best = None
    for q in SPLIT_QUANTILES:
        above = y > np.quantile(y, q)
        if above.all() or not above.any():
            continue
        mu = np.array([y[~above].mean(), y[above].mean()])
        sd = np.full(2, max(float(np.sqrt(np.mean((y - mu[above.astype(int)]) ** 2))), 1e-6))
        w_band = np.full((n_bands, 2), 0.5)
        w_band[:, 1] = np.clip(
            np.bincount(band, weights=above, minlength=n_bands) / np.maximum(np.bincount(band, minlength=n_bands), 1),
            0.01,
            0.99,
        )
        w_band[:, 0] = 1.0 - w_band[:, 1]
        fit = _thickness_em(x, band, n_bands, flat, t0.copy(), mu, sd, w_band, START_ITERATIONS)
        if best is None or fit[4] > best[4]:
            best = fit
    if best is None:  # constant values: one class
        return t0, np.full(2, float(np.median(y))), np.full(2, 1e-6)
    t_band, mu, sd, _w, _ll = _thickness_em(x, band, n_bands, flat, *best[:4], max(iterations - START_ITERATIONS, 1))
    return t_band, np.sort(mu), sd


def tissue_classes_separated(mu: np.ndarray, sd: np.ndarray) -> bool:
    """True when the two fitted classes are distinct tissues: (μ_dense − μ_fat) / σ ≥ MIN_SEPARATION_SD."""
    return bool(float(mu[1] - mu[0]) >= MIN_SEPARATION_SD * float(np.max(sd)))


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
    threshold: float  # on the equalised 1/4-scale image; inf when the tissue is one class (PD = 0)
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
    air = air_level(small, breast_small, 100)
    dist = distance_to_skin_mm(breast_small, pixel_spacing_mm * f)
    # Light smoothing (≈ 0.5 mm) removes quantum noise, not anatomy.
    smooth = ndi.gaussian_filter(small - air, max(0.5, 0.5 / (pixel_spacing_mm * f)))
    band, n_bands = distance_bands(dist, BAND_MM, INTERIOR_MM)
    core = tissue_small & (dist >= RIM_PX * pixel_spacing_mm * f)
    if core.sum() < 20:
        empty = np.zeros(image.shape, bool)
        return DensityResult(empty, float("nan"), "", CATEGORY_LABEL, float("nan"), smooth, tissue_small, dist)
    grad = ndi.gaussian_gradient_magnitude(smooth, 1.0)[core]
    t_band, mu, sd = fit_thickness_mixture(smooth[core], band[core], n_bands, flat=grad <= np.median(grad))
    if tissue_classes_separated(mu, sd):
        # Midpoint of the class means: the 50 % level of a blurred tissue border stays on the border
        # (a prior-weighted Bayes rule would move it towards the minority class).
        thr = float(0.5 * (mu[0] + mu[1]))
    else:
        # One tissue class: no dense plateau to count. An entirely dense breast would read as fatty
        # too (nothing in the image gives an absolute fat level); the phantoms stop at 85 %.
        t_band = _thickness_one_class(np.asarray(smooth[core], np.float64), band[core], n_bands)
        thr = float("inf")
    eq = (smooth / t_band[band]).astype(np.float32)
    _, (ri, ci) = ndi.distance_transform_edt(~core, return_indices=True)
    dense_small = (eq > thr)[ri, ci] & tissue_small  # core pixels are their own nearest core pixel
    dense = upsample_mask(dense_small, f, image.shape) & tissue_full
    pd = 100.0 * float(dense_small.sum()) / float(tissue_small.sum())
    return DensityResult(dense, pd, density_category(pd, cuts_percent), CATEGORY_LABEL, thr, eq, tissue_small, dist)
