"""In-silico 2-D mammography phantom with known truth (mammo.md §5.2).

The image is "log-domain", display-like (MONOCHROME2 after normalisation): air is
about 0 and denser tissue is brighter. Units of intensity are the anatomical
background SD (σ_a = 1); quantum noise is white with σ_q = 0.35.

Geometry is built in a chest-wall-left frame and mirrored for right breasts, so
that the standard PatientOrientation holds (LCC ``A\\R``: chest wall on the left
image edge; RCC ``P\\L``: on the right; mammo.md §2.1).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import fft as sp_fft
from scipy import ndimage as ndi

SIGMA_Q = 0.35  # quantum noise SD in the log domain (mammo.md §5.2, with σ_a = 1)
F_MIN_PER_MM = 1.0 / 40.0  # low-frequency cut of the 1/f^β filter (mammo.md §5.2)
TISSUE_BASE = 5.0  # fatty-tissue log attenuation at full thickness, in σ_a
DENSE_CONTRAST = 8.0  # Δ_dense, in σ_a
DENSE_SMOOTH_MM = 2.5  # smoothing of the dense-tissue field: fibroglandular regions, not speckle
PECTORAL_CONTRAST = 10.0  # extra brightness of the pectoral muscle, in σ_a
ROLL_OFF_MM = 12.0  # w in T(d) = T0·√(1 − (1 − d/w)²) (mammo.md §5.2, unverified heuristic)
PSF_SIGMA_PX = 0.6  # detector blur applied to calcifications
SUPERSAMPLE = 5  # sub-pixel sampling of projected calcification thickness
PATIENT_ORIENTATION = {
    ("CC", "L"): ("A", "R"),
    ("CC", "R"): ("P", "L"),
    ("MLO", "L"): ("A", "FR"),
    ("MLO", "R"): ("P", "FL"),
}


@dataclass
class MammoPhantom:
    """One generated view with its truth. Pixel coordinates are (row, col) in ``image``."""

    image: np.ndarray  # float32 [rows, cols], bright = dense
    pixel_spacing_mm: float
    view: str  # "CC" | "MLO"
    laterality: str  # "L" | "R"
    breast_mask: np.ndarray  # bool, skin outline (includes the pectoral muscle on MLO)
    pectoral_mask: np.ndarray | None  # bool (MLO) or None (CC)
    pectoral_angle_deg: float | None  # angle between the pectoral line and the chest-wall edge
    pectoral_intercept_mm: float | None  # where that line meets the chest-wall edge, from the top edge
    dense_mask: np.ndarray  # bool, dense tissue (never inside the pectoral muscle)
    dense_fraction: float  # dense area / (breast − pectoral) area: the true PD
    calcifications: list[dict] = field(default_factory=list)
    clusters: list[dict] = field(default_factory=list)
    masses: list[dict] = field(default_factory=list)
    label_box: tuple[int, int, int, int] | None = None  # (r0, c0, r1, c1) burned-in label
    film_border_px: int = 0

    @property
    def patient_orientation(self) -> tuple[str, str]:
        return PATIENT_ORIENTATION[(self.view, self.laterality)]

    @property
    def chest_wall_side(self) -> str:
        return "left" if self.laterality == "L" else "right"

    def truth_json(self) -> dict:
        """Truth as JSON-ready data (the masks are summarised by their areas)."""
        return {
            "pixel_spacing_mm": self.pixel_spacing_mm,
            "shape": list(self.image.shape),
            "view": self.view,
            "laterality": self.laterality,
            "patient_orientation": list(self.patient_orientation),
            "breast_area_px": int(self.breast_mask.sum()),
            "pectoral_area_px": int(self.pectoral_mask.sum()) if self.pectoral_mask is not None else None,
            "pectoral_angle_deg": self.pectoral_angle_deg,
            "pectoral_intercept_mm": self.pectoral_intercept_mm,
            "percent_density": 100.0 * self.dense_fraction,
            "dense_fraction": self.dense_fraction,
            "calcifications": [dict(c) for c in self.calcifications],
            "clusters": [dict(c) for c in self.clusters],
            "masses": [dict(m) for m in self.masses],
            "label_box_px": list(self.label_box) if self.label_box else None,
            "film_border_px": self.film_border_px,
        }


def power_law_noise(
    shape, pixel_spacing_mm: float, beta: float, rng: np.random.Generator, f_min_per_mm: float = F_MIN_PER_MM
) -> np.ndarray:
    """White noise filtered by max(f, f_min)^(−β/2): PSD ∝ 1/f^β; mean 0, SD 1 (Burgess 2003)."""
    rows, cols = shape
    fy = sp_fft.fftfreq(rows, d=pixel_spacing_mm)[:, None]
    fx = sp_fft.rfftfreq(cols, d=pixel_spacing_mm)[None, :]
    f = np.maximum(np.sqrt(fy * fy + fx * fx), f_min_per_mm)
    white = rng.standard_normal(shape, dtype=np.float32)
    spectrum = sp_fft.rfft2(white, workers=-1) * (f ** (-beta / 2.0)).astype(np.float32)
    spectrum[0, 0] = 0.0
    out = sp_fft.irfft2(spectrum, s=shape, workers=-1)
    out -= out.mean()
    out /= out.std()
    return out.astype(np.float32)


def _breast_geometry(shape, spacing: float, view: str):
    """Half-ellipse on the chest-wall (left) edge: centre row, semi-axes in px (mm sizes of §5.2, capped by the image)."""
    rows, cols = shape
    a = min(90.0 / spacing, 0.8 * cols)  # towards the nipple
    if view == "CC":
        b = min(100.0 / spacing, 0.46 * rows)
        centre = rows / 2.0
    else:  # MLO: taller, reaching the top (axilla) edge
        b = min(130.0 / spacing, 0.5 * rows)
        centre = 0.9 * b
    return centre, a, b


def _calcification_patch(radius_px: float):
    """Projected thickness 2√(R² − r²) of a sphere (px units), area-averaged over ×5 sub-pixels."""
    half = int(np.ceil(radius_px)) + 1
    n = 2 * half + 1
    sub = (np.arange(n * SUPERSAMPLE) + 0.5) / SUPERSAMPLE - half - 0.5
    yy, xx = np.meshgrid(sub, sub, indexing="ij")
    t = 2.0 * np.sqrt(np.clip(radius_px**2 - yy**2 - xx**2, 0.0, None))
    return t.reshape(n, SUPERSAMPLE, n, SUPERSAMPLE).mean(axis=(1, 3)), half


def _place(rng, candidates_ok):
    """Pick a random pixel index where ``candidates_ok`` is true."""
    idx = np.flatnonzero(candidates_ok)
    if idx.size == 0:
        raise ValueError("no room for a lesion in this phantom")
    return np.unravel_index(idx[rng.integers(idx.size)], candidates_ok.shape)


def make_phantom(
    shape=(1024, 1024),
    pixel_spacing_mm=0.07,
    view="CC",
    laterality="L",
    seed=0,
    beta=3.0,
    dense_fraction=0.3,
    n_clusters=0,
    calc_mu=5.0,
    calcs_per_cluster=5,
    calc_diameter_mm=(0.3, 0.4),
    n_masses=0,
    mass_amplitude=4.0,
    mass_diameter_mm=(10.0, 10.0),
    mass_nu=1.5,
    pectoral_angle_deg=35.0,
    label_box=False,
    film_border=False,
    dense_contrast=DENSE_CONTRAST,
    sigma_q=SIGMA_Q,
) -> MammoPhantom:
    """Generate one view (mammo.md §5.2). Lesions are placed ≥ w + R inside the skin and outside the pectoral."""
    view, laterality = view.upper(), laterality.upper()
    if view not in ("CC", "MLO") or laterality not in ("L", "R"):
        raise ValueError(f"view must be CC/MLO and laterality L/R, got {view!r}/{laterality!r}")
    rng = np.random.default_rng(seed)
    rows, cols = shape
    s = float(pixel_spacing_mm)
    rr, cc = np.mgrid[0:rows, 0:cols].astype(np.float32)

    centre, a, b = _breast_geometry(shape, s, view)
    breast = (cc / a) ** 2 + ((rr - centre) / b) ** 2 <= 1.0
    # Distance to the skin; the image edges (chest wall, axilla) are not skin.
    if view == "CC":
        # Pad the chest-wall column with breast so the distance is measured to the curved skin only.
        padded = np.pad(breast, ((0, 0), (1, 0)), mode="edge")
        d_mm = ndi.distance_transform_edt(padded)[:, 1:] * s
    else:
        padded = np.pad(breast, ((1, 0), (1, 0)), mode="edge")
        d_mm = ndi.distance_transform_edt(padded)[1:, 1:] * s
    u = np.clip(d_mm / ROLL_OFF_MM, 0.0, 1.0)
    thickness = np.sqrt(1.0 - (1.0 - u) ** 2).astype(np.float32) * breast

    pectoral = None
    intercept_px = None
    if view == "MLO":
        tan_t = np.tan(np.deg2rad(pectoral_angle_deg))
        intercept_px = min(0.45 * rows, 0.55 * a / tan_t)
        pectoral = (cc < (intercept_px - rr) * tan_t) & breast
    tissue = breast & ~pectoral if pectoral is not None else breast

    texture = power_law_noise(shape, s, beta, rng)
    dense_field = ndi.gaussian_filter(power_law_noise(shape, s, 3.0, rng), DENSE_SMOOTH_MM / s)
    dense = np.zeros(shape, bool)
    if dense_fraction > 0:
        thr = np.quantile(dense_field[tissue], 1.0 - dense_fraction)
        dense = (dense_field > thr) & tissue
    true_pd = float(dense.sum() / max(1, tissue.sum()))
    # Soft (0.5 mm) dense edges: real fibroglandular borders are not pixel steps.
    dense_layer = ndi.gaussian_filter(dense.astype(np.float32), 0.5 / s) * dense_contrast

    anatomy = TISSUE_BASE + texture + dense_layer
    if pectoral is not None:
        anatomy = anatomy + PECTORAL_CONTRAST * ndi.gaussian_filter(pectoral.astype(np.float32), 1.0)
    image = thickness * anatomy

    # Lesions sit where the thickness is full and away from the pectoral muscle.
    far_from_skin = d_mm > ROLL_OFF_MM + 8.0
    if pectoral is not None:
        far_from_skin &= ndi.distance_transform_edt(~pectoral) * s > 10.0
    masses = []
    lesion_free = far_from_skin.copy()
    off_masses = far_from_skin.copy()  # fallback room for clusters when the 15 mm rule leaves none
    for _ in range(n_masses):
        dia = rng.uniform(*mass_diameter_mm)
        radius_px = dia / 2.0 / s
        ok = lesion_free & (d_mm > ROLL_OFF_MM + dia)
        r0, c0 = _place(rng, ok)
        r2 = ((rr - r0) ** 2 + (cc - c0) ** 2) / radius_px**2
        image += mass_amplitude * np.clip(1.0 - r2, 0.0, None) ** mass_nu  # designer nodule
        masses.append(
            {"center_px": [int(r0), int(c0)], "radius_mm": dia / 2.0, "amplitude": mass_amplitude, "nu": mass_nu}
        )
        lesion_free &= r2 > (1.0 + 15.0 / (dia / 2.0)) ** 2  # keep other lesions ≥ 15 mm off the rim
        off_masses &= r2 > (1.0 + 5.0 / (dia / 2.0)) ** 2

    calcs, clusters = [], []
    calc_layer = np.zeros(shape, np.float32)
    for k in range(n_clusters):
        r0, c0 = _place(rng, lesion_free if lesion_free.any() else off_masses)
        members = []
        pts: list[tuple[float, float]] = []
        tries = 0
        while len(pts) < calcs_per_cluster and tries < 10000:
            tries += 1
            rad = 2.5 * np.sqrt(rng.uniform())  # uniform in the 2.5 mm disc
            ang = rng.uniform(0, 2 * np.pi)
            p = (r0 + rad * np.sin(ang) / s, c0 + rad * np.cos(ang) / s)
            inside = 0 <= round(p[0]) < rows and 0 <= round(p[1]) < cols  # a cluster may sit on the chest wall
            if inside and all(np.hypot(p[0] - q[0], p[1] - q[1]) * s >= 0.5 for q in pts):
                pts.append(p)
        for pr, pc in pts:
            dia = rng.uniform(*calc_diameter_mm)
            patch, half = _calcification_patch(dia / 2.0 / s)
            ir, ic = round(pr), round(pc)
            # clipped at the image edge (a cluster may sit on the chest-wall edge)
            r_lo, c_lo = max(ir - half, 0), max(ic - half, 0)
            r_hi, c_hi = min(ir + half + 1, rows), min(ic + half + 1, cols)
            calc_layer[r_lo:r_hi, c_lo:c_hi] += (
                calc_mu * s * patch[r_lo - (ir - half) : r_hi - (ir - half), c_lo - (ic - half) : c_hi - (ic - half)]
            )
            members.append(len(calcs))
            calcs.append({"center_px": [ir, ic], "diameter_mm": dia, "cluster_id": k})
        cen = np.mean([calcs[m]["center_px"] for m in members], axis=0)
        clusters.append({"center_px": [float(cen[0]), float(cen[1])], "radius_mm": 2.5, "members": members})
        lesion_free &= np.hypot(rr - r0, cc - c0) * s > 20.0
    if n_clusters:
        image += ndi.gaussian_filter(calc_layer, PSF_SIGMA_PX)

    image += rng.normal(0.0, sigma_q, shape).astype(np.float32)

    box = None
    border = 0
    if film_border:
        border = max(4, round(0.01 * min(rows, cols)))
        level = float(image.max())
        image[:border, :] = level
        image[-border:, :] = level
        image[:, -border:] = level  # bright film edge on the three non-chest-wall sides
    if label_box:
        # A burned-in view label: a bright box with dark "letters", on the nipple side, away from the breast.
        h, w = int(0.06 * rows), int(0.14 * cols)
        r0, c0 = rows - h - int(0.05 * rows), cols - w - int(0.04 * cols)
        image[r0 : r0 + h, c0 : c0 + w] = float(image.max())
        for j in range(3):
            cs = c0 + int((0.1 + 0.3 * j) * w)
            image[r0 + h // 4 : r0 + 3 * h // 4, cs : cs + max(2, w // 12)] = 0.0
        box = (r0, c0, r0 + h, c0 + w)

    phantom = MammoPhantom(
        image=image.astype(np.float32),
        pixel_spacing_mm=s,
        view=view,
        laterality="L",
        breast_mask=breast,
        pectoral_mask=pectoral,
        pectoral_angle_deg=float(pectoral_angle_deg) if pectoral is not None else None,
        pectoral_intercept_mm=float(intercept_px * s) if pectoral is not None else None,
        dense_mask=dense,
        dense_fraction=true_pd,
        calcifications=calcs,
        clusters=clusters,
        masses=masses,
        label_box=box,
        film_border_px=border,
    )
    return _mirror(phantom) if laterality == "R" else phantom


def _mirror(p: MammoPhantom) -> MammoPhantom:
    """Right breast: mirror columns so the chest wall is on the right edge."""
    cols = p.image.shape[1]

    def flip_c(c):
        return cols - 1 - c

    for item in p.calcifications + p.masses:
        item["center_px"] = [item["center_px"][0], flip_c(item["center_px"][1])]
    for cl in p.clusters:
        cl["center_px"] = [cl["center_px"][0], float(flip_c(cl["center_px"][1]))]
    box = p.label_box
    if box is not None:
        box = (box[0], cols - box[3], box[2], cols - box[1])
    return MammoPhantom(
        image=p.image[:, ::-1].copy(),
        pixel_spacing_mm=p.pixel_spacing_mm,
        view=p.view,
        laterality="R",
        breast_mask=p.breast_mask[:, ::-1].copy(),
        pectoral_mask=p.pectoral_mask[:, ::-1].copy() if p.pectoral_mask is not None else None,
        pectoral_angle_deg=p.pectoral_angle_deg,
        pectoral_intercept_mm=p.pectoral_intercept_mm,
        dense_mask=p.dense_mask[:, ::-1].copy(),
        dense_fraction=p.dense_fraction,
        calcifications=p.calcifications,
        clusters=p.clusters,
        masses=p.masses,
        label_box=box,
        film_border_px=p.film_border_px,
    )


def make_exam(shape=(4096, 3328), seed=0, pixel_spacing_mm=0.07, **kwargs) -> list[MammoPhantom]:
    """A four-view exam: LCC, RCC, LMLO, RMLO (independent textures, one seed per view)."""
    views = [("CC", "L"), ("CC", "R"), ("MLO", "L"), ("MLO", "R")]
    return [
        make_phantom(shape=shape, pixel_spacing_mm=pixel_spacing_mm, view=v, laterality=lat, seed=seed + i, **kwargs)
        for i, (v, lat) in enumerate(views)
    ]


def sample_volume():
    """A small LMLO phantom with a cluster and a mass as a 1 × rows × cols ``quantgpu.io.Volume``."""
    from quantgpu.io import Volume

    p = make_phantom(shape=(1024, 832), view="MLO", laterality="L", seed=7, n_clusters=1, n_masses=1)
    s = p.pixel_spacing_mm
    ijk_to_lps = np.diag([s, s, 1.0, 1.0])
    return Volume(
        array=p.image[None].astype(np.float32),
        spacing=(1.0, s, s),
        ijk_to_lps=ijk_to_lps,
        modality="MG",
        source="MammoCAD phantom (seed 7, LMLO)",
        headers=[],
        series_instance_uid=None,
    )
