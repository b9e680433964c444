"""Calcification candidates and clusters (mammo.md §2.3).

1. Enhancement: difference of Gaussians (DoG) with σ given in mm, σ₁/σ₂ = 0.056/0.175 mm
   (specks of about 0.1–0.5 mm, mammo.md §2.3), converted to pixels with the resolved pixel
   spacing; further (σ₁, σ₂) pairs can be added (``dog_scales_mm``), z is then the maximum over them.
2. Noise-adaptive score: each DoG response is divided by its robust noise level 1.4826·MAD over the
   search region, a robust z that is independent of the image's intensity scale (display window,
   FOR PROCESSING log inversion); the candidate score is the larger z of the two scales.
3. Candidates: local maxima of z in a 5 × 5 window with z ≥ ``candidate_z`` inside the breast,
   at least ``edge_margin_mm`` from the skin and the pectoral muscle (the sharp pectoral edge and the
   air step are not specks).
4. Clusters: single linkage with link distance ≤ 5 mm, ≥ 3 members; score = mean of the top 3
   member z values (mammo.md §2.3, §3).

The filters run on the chosen backend (NumPy or CuPy); candidates, clusters and scores come back
as host values.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage as ndi
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from quantgpu.backend import resolve, to_numpy

from .breast import block_mean
from .density import distance_to_skin_mm

MAD_TO_SD = 1.4826  # SD of a Gaussian = 1.4826 · MAD


@dataclass(frozen=True)
class CalcificationParams:
    # (σ₁, σ₂) pairs in mm; z is the maximum over the pairs. Default: mammo.md §2.3's single pair
    # (specks of 0.1–0.5 mm). A second pair for 0.4–0.8 mm specks, (0.112, 0.35), can be added; on the
    # phantom it tripled the candidates at z ≥ 4.5 (responses at blurred dense-tissue borders) without
    # finding more calcifications, so it is not on by default.
    dog_scales_mm: tuple[tuple[float, float], ...] = ((0.056, 0.175),)
    local_max_window_px: int = 5  # mammo.md §2.3
    # mammo.md §2.3 default. Lower cuts (the 3.5 noise floor) put so many noise specks within 5 mm of
    # each other that single linkage chains them into clusters spanning centimetres.
    candidate_z: float = 4.5
    link_mm: float = 5.0  # single-linkage distance (mammo.md §3)
    min_members: int = 3
    top_k: int = 3  # cluster score = mean of the top-3 member z values
    edge_margin_mm: float = 1.0  # candidates at least this far inside the skin line
    pectoral_margin_mm: float = 1.5  # ... and this far from the pectoral muscle
    min_blob_ratio: float = 0.0  # weaker / stronger Hessian eigenvalue at a candidate (blob, not ridge)
    max_candidates: int = 5000  # the strongest ones when a noisy image yields more
    bbox_pad_mm: float = 0.5  # cluster box = member centres ± this


@dataclass
class CalcificationCluster:
    center_px: tuple[float, float]  # (row, col): centroid of the member candidates
    bbox_px: tuple[int, int, int, int]  # (r0, c0, r1, c1), inclusive, member centres ± bbox_pad_mm
    score: float
    members: list[int]  # indices into CalcificationResult.candidates_px


@dataclass
class CalcificationResult:
    candidates_px: np.ndarray  # (N, 2) int (row, col) of candidate specks
    candidate_z: np.ndarray  # (N,) robust z of each candidate
    clusters: list[CalcificationCluster]
    noise_sd: list[float] = field(default_factory=list)  # 1.4826·MAD of each DoG scale (image units)
    backend: str = "numpy"


def search_region(
    breast_mask: np.ndarray,
    pectoral_mask: np.ndarray | None,
    pixel_spacing_mm: float,
    edge_margin_mm: float,
    pectoral_margin_mm: float,
    factor: int = 4,
) -> np.ndarray:
    """Where candidates may lie, on a 1/``factor`` grid (bool): inside the skin and off the pectoral."""
    small_breast = block_mean(breast_mask.astype(np.float32), factor) > 0.5
    spacing = pixel_spacing_mm * factor
    inside = distance_to_skin_mm(small_breast, spacing)  # image edges (chest wall) are not skin
    region = small_breast & (inside >= edge_margin_mm)
    if pectoral_mask is not None and pectoral_mask.any():
        small_pect = block_mean(pectoral_mask.astype(np.float32), factor) > 0.0
        region &= ndi.distance_transform_edt(~small_pect) * spacing > pectoral_margin_mm
    return region


def robust_median_sd(values, xp):
    """(median, 1.4826·MAD as a host float) of ``values``: the location and SD of the Gaussian part."""
    med = xp.median(values)
    return med, float(MAD_TO_SD * xp.median(xp.abs(values - med)))


def enhance(image, pixel_spacing_mm: float, region_small: np.ndarray, params: CalcificationParams, bk, factor=4):
    """Robust z map (max over DoG scales) on the backend, and each scale's noise SD (host floats)."""
    nd, xp = bk.ndimage, bk.xp
    rows, cols = image.shape
    # Noise statistics over the search region, sampled on the 1/factor grid (block centres).
    sr, sc = np.nonzero(region_small)
    sr = xp.asarray(np.minimum(sr * factor + factor // 2, rows - 1))
    sc = xp.asarray(np.minimum(sc * factor + factor // 2, cols - 1))
    z = None
    noise = []
    for s1_mm, s2_mm in params.dog_scales_mm:
        dog = nd.gaussian_filter(image, s1_mm / pixel_spacing_mm)
        dog -= nd.gaussian_filter(image, s2_mm / pixel_spacing_mm)
        sd = robust_median_sd(dog[sr, sc], xp)[1] if sr.size else 0.0
        noise.append(sd)
        if sd <= 0:
            continue
        dog *= 1.0 / sd
        z = dog if z is None else xp.maximum(z, dog)
    if z is None:
        z = xp.zeros_like(image)
    return z, noise


def local_maxima(
    z, threshold: float, window: int, region_small: np.ndarray, factor: int, max_n: int, xp, min_blob_ratio: float = 0.0
):
    """Pixels with z ≥ threshold that are the maximum of their window (host (N, 2) int, (N,) z)."""
    rr, cc = (to_numpy(a) for a in xp.nonzero(z >= threshold))
    if rr.size == 0:
        return np.zeros((0, 2), int), np.zeros(0, np.float32)
    zz = to_numpy(z[xp.asarray(rr), xp.asarray(cc)])
    keep = region_small[
        np.minimum(rr // factor, region_small.shape[0] - 1), np.minimum(cc // factor, region_small.shape[1] - 1)
    ]
    rr, cc, zz = rr[keep], cc[keep], zz[keep]
    half = max(window // 2, 2)
    n_rows, n_cols = z.shape
    is_max = np.ones(rr.size, bool)
    around = {}
    # Compare with every neighbour in the window (a gather per offset: cheap, the pixels are few).
    for dr in range(-half, half + 1):
        for dc in range(-half, half + 1):
            if dr == 0 and dc == 0:
                continue
            nr = np.clip(rr + dr, 0, n_rows - 1)
            nc = np.clip(cc + dc, 0, n_cols - 1)
            neighbour = to_numpy(z[xp.asarray(nr), xp.asarray(nc)])
            around[dr, dc] = neighbour
            if max(abs(dr), abs(dc)) > window // 2:
                continue
            # Ties (plateaus): the neighbour that comes first in raster order wins.
            earlier = (dr < 0) | ((dr == 0) & (dc < 0))
            is_max &= np.where(earlier, zz > neighbour, zz >= neighbour)
    # Blob, not ridge: Hessian of z by central differences over 2 px; both eigenvalues negative and
    # comparable (an edge or a vessel gives one eigenvalue near zero).
    h_rr = (around[2, 0] - 2 * zz + around[-2, 0]) / 4.0
    h_cc = (around[0, 2] - 2 * zz + around[0, -2]) / 4.0
    h_rc = (around[2, 2] - around[2, -2] - around[-2, 2] + around[-2, -2]) / 16.0
    mean = 0.5 * (h_rr + h_cc)
    root = np.sqrt(0.25 * (h_rr - h_cc) ** 2 + h_rc**2)
    lam_weak, lam_strong = mean + root, mean - root  # lam_strong <= lam_weak
    ratio = np.where(lam_strong < 0, lam_weak / np.minimum(lam_strong, -1e-12), -1.0)
    is_max &= ratio >= min_blob_ratio
    rr, cc, zz = rr[is_max], cc[is_max], zz[is_max]
    order = np.lexsort((cc, rr, -zz))[:max_n]  # strongest first, ties by position
    return np.stack([rr[order], cc[order]], axis=1).astype(int), zz[order].astype(np.float32)


def cluster_candidates(
    points_px: np.ndarray,
    z: np.ndarray,
    pixel_spacing_mm: float,
    link_mm: float = 5.0,
    min_members: int = 3,
    top_k: int = 3,
    bbox_pad_mm: float = 0.5,
    shape: tuple[int, int] | None = None,
) -> list[CalcificationCluster]:
    """Single-linkage clusters (link ≤ ``link_mm``) with ≥ ``min_members``; score = mean of the top-k z."""
    points_px = np.asarray(points_px, float).reshape(-1, 2)
    z = np.asarray(z, float).reshape(-1)
    n = len(points_px)
    if n < min_members:
        return []
    pairs = cKDTree(points_px * pixel_spacing_mm).query_pairs(link_mm, output_type="ndarray")
    if not len(pairs):
        return []
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    pad = bbox_pad_mm / pixel_spacing_mm
    clusters = []
    for lab in np.unique(labels):
        members = np.flatnonzero(labels == lab)
        if members.size < min_members:
            continue
        pts = points_px[members]
        top = np.sort(z[members])[::-1][:top_k]
        r0, c0 = np.floor(pts.min(axis=0) - pad).astype(int)
        r1, c1 = np.ceil(pts.max(axis=0) + pad).astype(int)
        if shape is not None:
            r0, c0 = max(r0, 0), max(c0, 0)
            r1, c1 = min(r1, shape[0] - 1), min(c1, shape[1] - 1)
        centre = pts.mean(axis=0)
        clusters.append(
            CalcificationCluster(
                center_px=(float(centre[0]), float(centre[1])),
                bbox_px=(int(r0), int(c0), int(r1), int(c1)),
                score=float(top.mean()),
                members=[int(m) for m in members],
            )
        )
    clusters.sort(key=lambda c: (-c.score, c.center_px))
    return clusters


def detect_calcifications(
    image,
    pixel_spacing_mm: float,
    breast_mask: np.ndarray,
    pectoral_mask: np.ndarray | None = None,
    *,
    backend="auto",
    params: CalcificationParams | None = None,
) -> CalcificationResult:
    """Candidates and clusters on ``image`` (bright = dense) with its pixel spacing in mm."""
    params = params or CalcificationParams()
    if not pixel_spacing_mm or pixel_spacing_mm <= 0:
        raise ValueError("calcification detection needs the pixel spacing (its filter sizes are in mm)")
    bk = resolve(backend)
    xp = bk.xp
    factor = 4
    region = search_region(
        np.asarray(breast_mask, bool),
        None if pectoral_mask is None else np.asarray(pectoral_mask, bool),
        pixel_spacing_mm,
        params.edge_margin_mm,
        params.pectoral_margin_mm,
        factor,
    )
    img = bk.asarray(image, dtype=xp.float32)
    z, noise = enhance(img, pixel_spacing_mm, region, params, bk, factor)
    pts, zc = local_maxima(
        z,
        params.candidate_z,
        params.local_max_window_px,
        region,
        factor,
        params.max_candidates,
        xp,
        params.min_blob_ratio,
    )
    del z, img
    clusters = cluster_candidates(
        pts,
        zc,
        pixel_spacing_mm,
        params.link_mm,
        params.min_members,
        params.top_k,
        params.bbox_pad_mm,
        shape=tuple(np.shape(image)),
    )
    return CalcificationResult(pts, zc, clusters, noise, bk.name)
