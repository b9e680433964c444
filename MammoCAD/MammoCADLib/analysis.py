"""One mammogram, analysed: breast and pectoral masks, density, calcification clusters and masses.

``analyze_image`` takes the image in the radiological hanging (chest wall on the side of its
laterality: left breasts on the left image edge, right breasts on the right; ``mgio.hanging``),
bright = dense, any intensity scale. Every candidate is returned as a ``Finding`` with its score;
the operating points (``operating_points``) choose which are displayed.

Pixel spacing unknown (mammo.md §2.1): every mm-based output is disabled, which includes the
mm-sized detection filters, so calcification and mass detection are skipped and a warning says so.
The breast mask, the pectoral angle and PD% (ratios, no mm) are still computed; density and the
pectoral search then use a nominal 0.07 mm grid internally for their smoothing scales, and no mm
value is reported.

``params`` (all optional): ``{"calcifications": {...CalcificationParams fields},
"masses": {...MassParams fields}, "density_cuts_percent": (25, 50, 75)}``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from quantgpu.backend import resolve, run_or_fall_back

from . import breast as breast_mod
from .calcifications import CalcificationParams, detect_calcifications
from .density import DEFAULT_CUTS_PERCENT, estimate_density
from .masses import MassParams, detect_masses

NOMINAL_SPACING_MM = 0.07  # internal smoothing scales only, when the spacing is unknown (never reported)
DENSITY_WORK_SPACING_MM = 0.5  # density runs on ≈ 0.5 mm pixels (its own 4× block mean included)
CROP_MARGIN_MM = 3.0  # detection runs on the breast's bounding box plus this margin


@dataclass
class Finding:
    type: str  # "calcification_cluster" | "mass"
    center_px: tuple[float, float]  # (row, col)
    bbox_px: tuple[int, int, int, int]  # (r0, c0, r1, c1), inclusive
    score: float
    n_calcifications: int | None  # None for masses
    details: dict = field(default_factory=dict)  # features behind the score (not part of the JSON)


@dataclass
class ImageAnalysis:
    breast_mask: np.ndarray
    pectoral_mask: np.ndarray | None
    pectoral_line: object | None  # breast.PectoralLine
    dense_mask: np.ndarray
    breast_area_fraction: float
    breast_area_cm2: float | None
    percent_density: float
    density_category: str
    findings: list[Finding]
    pixel_spacing_mm: float | None
    backend: str
    warnings: list[str] = field(default_factory=list)


def _params(params: dict | None):
    params = dict(params or {})
    calc = replace(CalcificationParams(), **dict(params.get("calcifications") or {}))
    mass = replace(MassParams(), **dict(params.get("masses") or {}))
    cuts = tuple(params.get("density_cuts_percent") or DEFAULT_CUTS_PERCENT)
    return calc, mass, cuts


def _bounding_box(mask: np.ndarray, margin_px: int, align: int = 1):
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return None
    r0 = max(0, (rows[0] - margin_px) // align * align)
    c0 = max(0, (cols[0] - margin_px) // align * align)
    r1 = min(mask.shape[0], rows[-1] + 1 + margin_px)
    c1 = min(mask.shape[1], cols[-1] + 1 + margin_px)
    return slice(int(r0), int(r1)), slice(int(c0), int(c1))


def _density(image, breast_mask, pectoral_mask, spacing, cuts):
    """PD on a copy reduced to ≈ DENSITY_WORK_SPACING_MM (estimate_density's 4× block mean included)."""
    pre = max(1, round(DENSITY_WORK_SPACING_MM / (4 * spacing)))
    box = _bounding_box(breast_mask, round(10.0 / spacing), align=4 * pre)
    if box is None:
        return None
    rs, cs = box
    img, bm = image[rs, cs], breast_mask[rs, cs]
    pm = pectoral_mask[rs, cs] if pectoral_mask is not None else None
    if pre > 1:
        img = breast_mod.block_mean(img, pre)
        bm_small = breast_mod.block_mean(bm.astype(np.float32), pre) > 0.5
        pm_small = breast_mod.block_mean(pm.astype(np.float32), pre) > 0.5 if pm is not None else None
        result = estimate_density(img, bm_small, pm_small, spacing * pre, cuts)
        dense = breast_mod.upsample_mask(result.dense_mask, pre, bm.shape)
    else:
        result = estimate_density(img, bm, pm, spacing, cuts)
        dense = result.dense_mask
    tissue = bm & ~pm if pm is not None else bm
    full = np.zeros(image.shape, bool)
    full[rs, cs] = dense & tissue
    return result, full


def _detect(image, spacing, breast_mask, pectoral_mask, calc_params, mass_params, bk):
    """Clusters and masses on the breast's bounding box (the rest of the image is air)."""
    box = _bounding_box(breast_mask, round(CROP_MARGIN_MM / spacing), align=4)
    if box is None:
        return [], bk.name
    rs, cs = box
    img = np.ascontiguousarray(image[rs, cs])
    bm = breast_mask[rs, cs]
    pm = pectoral_mask[rs, cs] if pectoral_mask is not None else None
    off_r, off_c = rs.start, cs.start
    calc = detect_calcifications(img, spacing, bm, pm, backend=bk, params=calc_params)
    masses = detect_masses(img, spacing, bm, pm, backend=bk, params=mass_params)
    findings = []
    for cl in calc.clusters:
        r0, c0, r1, c1 = cl.bbox_px
        findings.append(
            Finding(
                "calcification_cluster",
                (cl.center_px[0] + off_r, cl.center_px[1] + off_c),
                (r0 + off_r, c0 + off_c, r1 + off_r, c1 + off_c),
                float(cl.score),
                len(cl.members),
                {"member_z": [float(calc.candidate_z[m]) for m in cl.members]},
            )
        )
    rows, cols = image.shape
    for m in masses.candidates:
        r, c = m.center_px[0] + off_r, m.center_px[1] + off_c
        half = m.radius_mm / spacing
        bbox = (
            max(0, int(np.floor(r - half))),
            max(0, int(np.floor(c - half))),
            min(rows - 1, int(np.ceil(r + half))),
            min(cols - 1, int(np.ceil(c + half))),
        )
        findings.append(
            Finding(
                "mass",
                (float(r), float(c)),
                bbox,
                float(m.score),
                None,
                {
                    "radius_mm": m.radius_mm,
                    "blob_z": m.blob_z,
                    "convergence": m.convergence,
                    "spiculation_f1": m.spiculation_f1,
                    "spiculation_f2": m.spiculation_f2,
                },
            )
        )
    return findings, calc.backend


def analyze_image(
    image: np.ndarray,
    pixel_spacing_mm: float | None,
    view: str,
    laterality: str,
    *,
    backend="auto",
    params: dict | None = None,
) -> ImageAnalysis:
    """Analyse one mammogram in the hanging orientation (see the module docstring)."""
    calc_params, mass_params, cuts = _params(params)
    image = np.asarray(image, dtype=np.float32)
    warnings: list[str] = []
    side = {"L": "left", "R": "right"}.get((laterality or "").upper()) or breast_mod.image_chest_wall_side(image)
    spacing = float(pixel_spacing_mm) if pixel_spacing_mm else None
    work_spacing = spacing or NOMINAL_SPACING_MM

    region = breast_mod.segment_breast(image, side)
    breast_mask = region.mask
    pectoral_line, pectoral_mask = None, None
    if (view or "").upper() == "MLO" and breast_mask.any():
        pectoral_line, pectoral_mask = breast_mod.find_pectoral(image, breast_mask, side, spacing)
        if pectoral_line is None:
            warnings.append("MLO view: no pectoral muscle line found; density uses the whole breast")

    density = _density(image, breast_mask, pectoral_mask, work_spacing, cuts) if breast_mask.any() else None
    if density is None:
        warnings.append("no breast found in the image")
        dense_mask = np.zeros(image.shape, bool)
        pd, category = float("nan"), ""
    else:
        result, dense_mask = density
        pd, category = float(result.percent_density), result.density_category
        if not np.isfinite(result.threshold):
            warnings.append(
                "density: the breast shows one tissue class, read as fatty (PD 0 %); an entirely dense "
                "breast looks the same to this method, so check the image"
            )

    bk = resolve(backend)
    ran = bk.name
    findings: list[Finding] = []
    if spacing is None:
        warnings.append(
            "pixel spacing unknown: calcification and mass detection skipped (their filter sizes are in mm) "
            "and the breast area in cm² is null; give the pixel spacing to enable them"
        )
    elif breast_mask.any():
        (findings, ran), finished_on = run_or_fall_back(
            lambda b: _detect(image, spacing, breast_mask, pectoral_mask, calc_params, mass_params, b), bk
        )
        if finished_on is not bk:
            warnings.append("GPU out of memory: detection ran on the CPU")
    findings.sort(key=lambda f: (f.type != "calcification_cluster", -f.score, f.center_px))
    area_fraction = float(breast_mask.mean())
    area_cm2 = float(breast_mask.sum()) * spacing**2 / 100.0 if spacing else None
    return ImageAnalysis(
        breast_mask=breast_mask,
        pectoral_mask=pectoral_mask,
        pectoral_line=pectoral_line,
        dense_mask=dense_mask,
        breast_area_fraction=area_fraction,
        breast_area_cm2=area_cm2,
        percent_density=pd,
        density_category=category,
        findings=findings,
        pixel_spacing_mm=spacing,
        backend=ran,
        warnings=warnings,
    )
