"""Breast region and pectoral muscle (mammo.md §2.2).

Both run on a block-averaged copy of the image on the host (an 8× / 4× reduced image
is small), so that every backend gets the same masks and hence the same detections.

Conventions: the image is display-like (bright = dense, MONOCHROME2); pixel
coordinates are (row, col); the pectoral line is described in the chest-wall
frame by ``angle_deg`` (between the line and the chest-wall image edge) and
``intercept_mm`` (where the line meets the chest-wall edge, measured from the top
image edge).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage as ndi
from skimage.feature import canny
from skimage.filters import threshold_triangle

MASK_DOWNSAMPLE = 8  # mammo.md §2.2 step 1
PECTORAL_DOWNSAMPLE = 4
BAND_COVERAGE = 0.8  # a line along an edge that is ≥ 80 % foreground belongs to a film border / bright band
MAX_BAND_FRACTION = 0.05  # bright bands are searched within 5 % of the image size from each edge


def block_mean(image: np.ndarray, factor: int) -> np.ndarray:
    """Mean over factor × factor blocks (the image is cropped to a multiple of ``factor``)."""
    rows, cols = (image.shape[0] // factor) * factor, (image.shape[1] // factor) * factor
    view = image[:rows, :cols].reshape(rows // factor, factor, cols // factor, factor)
    return view.mean(axis=(1, 3), dtype=np.float64).astype(np.float32)


def upsample_mask(mask_small: np.ndarray, factor: int, shape) -> np.ndarray:
    """Nearest-neighbour upsampling back to ``shape`` (edge blocks repeated over the cropped margin)."""
    big = np.repeat(np.repeat(mask_small, factor, axis=0), factor, axis=1)
    pad = ((0, shape[0] - big.shape[0]), (0, shape[1] - big.shape[1]))
    return np.pad(big, pad, mode="edge")


def image_chest_wall_side(image: np.ndarray) -> str:
    """OpenBreast ``isright`` rule: zero pixels above 0.95·max, sum columns; the heavier half holds the chest wall."""
    work = np.where(image > 0.95 * float(image.max()), 0.0, image - float(np.median(image[:, [0, -1]])))
    half = image.shape[1] // 2
    return "left" if work[:, :half].sum() >= work[:, half:].sum() else "right"


@dataclass
class BreastRegion:
    mask: np.ndarray  # bool, full resolution
    threshold: float  # triangle threshold on the 8× image (image units)
    chest_wall_side: str  # "left" | "right"
    area_fraction: float
    removed: list[str] = field(default_factory=list)  # what was rejected (film bands, labels, ...)


def _clear_bright_bands(fg: np.ndarray, chest_wall_side: str, removed: list[str]) -> np.ndarray:
    """Clear film borders: lines along a non-chest-wall edge that are almost entirely foreground.

    A breast touching the top edge (axilla on MLO) covers only part of that edge, so
    it survives; a film border covers the whole edge. (Stands in for a fixed 1–3 %
    strip, which would also cut the axillary tissue.)
    """
    fg = fg.copy()
    edges = {"top": (0, False), "bottom": (0, True), "left": (1, False), "right": (1, True)}
    for name, (axis, from_end) in edges.items():
        if name == chest_wall_side:
            continue
        n_lines = fg.shape[axis]
        depth = 0
        for k in range(max(1, int(MAX_BAND_FRACTION * n_lines))):
            idx = n_lines - 1 - k if from_end else k
            line = fg[idx, :] if axis == 0 else fg[:, idx]
            if line.mean() < BAND_COVERAGE:
                break
            depth = k + 1
        if depth:
            depth += 1  # one more line for the band's blurred inner edge
            sl = slice(n_lines - depth, n_lines) if from_end else slice(0, depth)
            if axis == 0:
                fg[sl, :] = False
            else:
                fg[:, sl] = False
            removed.append(f"bright band along the {name} edge ({depth} px at 1/{MASK_DOWNSAMPLE} scale)")
    return fg


def _edges_touched(component: np.ndarray) -> set[str]:
    touched = set()
    if component[0].any():
        touched.add("top")
    if component[-1].any():
        touched.add("bottom")
    if component[:, 0].any():
        touched.add("left")
    if component[:, -1].any():
        touched.add("right")
    return touched


def segment_breast(image: np.ndarray, chest_wall_side: str | None = None) -> BreastRegion:
    """Breast mask: triangle threshold at 1/8 scale, film bands cleared, the largest component on the chest wall.

    Components touching ≥ 3 image edges (film borders) and components not touching the
    chest-wall edge (burned-in labels, markers) are rejected; holes are filled. The
    boundary is then refined by thresholding a 1/2-scale copy within one coarse block of
    the outline.
    """
    image = np.asarray(image, dtype=np.float32)
    side = chest_wall_side or image_chest_wall_side(image)
    small = block_mean(image, MASK_DOWNSAMPLE)
    thr = float(threshold_triangle(small, nbins=256))
    removed: list[str] = []
    fg = _clear_bright_bands(small > thr, side, removed)
    labels, n = ndi.label(fg, structure=np.ones((3, 3), bool))
    best, best_area = 0, 0
    areas = ndi.sum_labels(np.ones_like(labels), labels, index=np.arange(1, n + 1)) if n else []
    for lab in np.argsort(areas)[::-1] + 1:
        comp = labels == lab
        touched = _edges_touched(comp)
        if len(touched) >= 3:
            removed.append(f"component touching {len(touched)} image edges")
            continue
        if side not in touched:
            removed.append("component away from the chest wall (label or marker)")
            continue
        best, best_area = lab, areas[lab - 1]
        break
    if best == 0:
        mask = np.zeros(image.shape, bool)
        return BreastRegion(mask, thr, side, 0.0, removed)
    coarse = ndi.binary_fill_holes(labels == best)
    del best_area
    # Sub-block boundary: threshold a 2×2 block mean within one coarse block of the outline.
    fine = upsample_mask(block_mean(image, 2) > thr, 2, image.shape)
    outer = upsample_mask(ndi.binary_dilation(coarse), MASK_DOWNSAMPLE, image.shape)
    inner = upsample_mask(ndi.binary_erosion(coarse, border_value=1), MASK_DOWNSAMPLE, image.shape)
    mask = inner | (outer & fine)
    return BreastRegion(mask, thr, side, float(mask.mean()), removed)


@dataclass
class PectoralLine:
    angle_deg: float  # between the line and the chest-wall edge
    intercept_mm: float | None  # along the chest-wall edge from the top; None without pixel spacing
    intercept_px: float
    votes: float


def find_pectoral(
    image: np.ndarray,
    breast_mask: np.ndarray,
    chest_wall_side: str,
    pixel_spacing_mm: float | None,
    angle_range_deg=(20.0, 45.0),
    angle_step_deg=0.25,
    work_spacing_mm: float = 0.07,
):
    """Pectoral muscle on MLO (after OpenBreast ``segChest``; mammo.md §2.2), as a restricted Hough transform.

    In the chest-wall-left frame the muscle is the bright region above the line
    ``col = (r0 − row)·tan θ``. Canny edges (σ = 2 px at 1/4 scale) of the smoothed
    image vote, weighted by gradient magnitude, for (θ, r0) when their gradient points
    into the muscle (up and towards the chest wall). Only edges in the top 60 % of the
    breast height are used. Returns (PectoralLine | None, pectoral mask | None).
    """
    f = PECTORAL_DOWNSAMPLE
    flip = chest_wall_side == "right"
    img = image[:, ::-1] if flip else image
    bm = breast_mask[:, ::-1] if flip else breast_mask
    small = block_mean(img, f)
    small_mask = block_mean(bm.astype(np.float32), f) > 0.5
    spacing = (pixel_spacing_mm or work_spacing_mm) * f
    rows_with_breast = np.flatnonzero(small_mask.any(axis=1))
    if rows_with_breast.size < 8:
        return None, None
    top, bottom = rows_with_breast[0], rows_with_breast[-1]
    smooth = ndi.gaussian_filter(ndi.grey_dilation(small, size=(3, 3)), 1.0)
    edges = canny(smooth, sigma=2.0)
    gr = ndi.sobel(smooth, axis=0)
    gc = ndi.sobel(smooth, axis=1)
    interior = ndi.binary_erosion(small_mask, iterations=max(1, round(2.0 / spacing)))
    region = np.zeros_like(small_mask)
    region[top : top + int(0.6 * (bottom - top + 1)), :] = True
    use = edges & interior & region & (gr < 0) & (gc < 0)  # brighter up and towards the chest wall
    er, ec = np.nonzero(use)
    if er.size < 10:
        return None, None
    weight = np.hypot(gr[er, ec], gc[er, ec])
    thetas = np.deg2rad(np.arange(angle_range_deg[0], angle_range_deg[1] + 1e-9, angle_step_deg))
    n_bins = small.shape[0] * 4
    acc = np.zeros((thetas.size, n_bins))
    for i, th in enumerate(thetas):
        # The edge pixel (row, col) lies on the line with r0 = row + col / tan θ. Pixel centres at +0.5.
        r0 = (er + 0.5) + (ec + 0.5) / np.tan(th)
        acc[i] = np.bincount(np.clip(r0.astype(int), 0, n_bins - 1), weights=weight, minlength=n_bins)[:n_bins]
    acc = ndi.uniform_filter1d(acc, 3, axis=1)
    i_best, r_best = np.unravel_index(int(np.argmax(acc)), acc.shape)
    theta = float(thetas[i_best])
    r0_small = r_best + 0.5
    # A real muscle line collects votes along a good part of its length (≥ 20 mm of edge).
    if acc[i_best, r_best] < 0.2 * weight.max() * (20.0 / spacing):
        return None, None
    r0_px = r0_small * f
    rr, cc = np.mgrid[0 : img.shape[0], 0 : img.shape[1]]
    pect = ((cc + 0.5) < (r0_px - (rr + 0.5)) * np.tan(theta)) & bm
    if flip:
        pect = pect[:, ::-1]
    line = PectoralLine(
        angle_deg=float(np.rad2deg(theta)),
        intercept_mm=float(r0_px * pixel_spacing_mm) if pixel_spacing_mm else None,
        intercept_px=float(r0_px),
        votes=float(acc[i_best, r_best]),
    )
    return line, pect
