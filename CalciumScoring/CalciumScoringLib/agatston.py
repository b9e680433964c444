"""Agatston, volume and mass calcium scores on a non-contrast cardiac CT (arrays only).

Conventions (calcium.md sections 2 and 3; every one is echoed in the result):

- candidate voxels: HU >= threshold (inclusive, default 130);
- a lesion is a 2-D connected component inside one axial slice (8-connected by
  default, 4 selectable); it counts when its area (pixel count x row x column
  spacing) is >= the minimum area - 1e-9 mm2 and, for the Canon profile, when it
  has >= min_pixels pixels;
- density weight from the lesion's peak HU in that slice, half-open 120 kVp bands
  [130, 200) -> 1, [200, 300) -> 2, [300, 400) -> 3, >= 400 -> 4. A lesion whose
  peak is below 130 HU (possible only with a threshold below 130) has weight 0,
  is not calcium and is excluded from every score;
- Agatston = sum(area x weight) x dk / 3 mm, dk = slice increment (from positions);
- volume = voxel count of counted lesions x dk x dj x di (mm3);
- mass = c_HA x sum(HU x dV) over counted voxels, c_HA in mg HA / cm3 / HU and dV
  in cm3 (McCollough 2007); None without a calibration;
- per-artery assignment: each 2-D lesion goes to the artery label (1 LM, 2 LAD,
  3 LCX, 4 RCA) holding most of its voxels; ties go to the lowest label value; a
  lesion with no voxel inside any artery label is "unassigned" and counts in the
  total only;
- lesion_count counts 3-D lesions: 26-connected components of the counted calcium
  voxels (a 3-D lesion spanning two territories counts once in each territory).

The 2-D labelling of every slice runs in one ``ndimage.label`` call with a 3-D
structure whose z-planes are empty; per-lesion area, peak and HU sum come from
``bincount`` and a scatter-max (never ``ndimage.maximum(labels=...)`` per lesion).
The same body runs on NumPy and CuPy.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace

import numpy as np
from scipy.ndimage import generate_binary_structure
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from quantgpu.backend import Backend, report, resolve, to_numpy
from quantgpu.errors import InputError

from .risk import agatston_category, cac_drs

ARTERIES = ("LM", "LAD", "LCX", "RCA")  # label values 1..4 in a label volume; 0 = none
SEGMENT_NAMES = (*ARTERIES, "Unassigned")  # label values 1..5 of CalciumResult.lesion_labels
# Okabe-Ito hues (colour-blind friendlier), shared by the segmentation, the DICOM SEG and the report:
# LM yellow, LAD vermillion, LCX green, RCA blue.
SEGMENT_COLOURS = {
    "LM": (0.94, 0.89, 0.26),
    "LAD": (0.84, 0.37, 0.0),
    "LCX": (0.0, 0.62, 0.45),
    "RCA": (0.0, 0.45, 0.70),
    "Unassigned": (0.80, 0.47, 0.65),
}
UNASSIGNED_LABEL = 5  # value in CalciumResult.lesion_labels for counted lesions without an artery
WEIGHT_BANDS_120KVP = (130.0, 200.0, 300.0, 400.0)  # lower edges of weights 1..4 (half-open bands)
AIR_MAX_HU = -500.0  # a volume whose maximum is below this holds no tissue: wrong input, not a zero score
AREA_TOLERANCE_MM2 = 1e-9

# Minimum 2-D lesion size per vendor (van Praagh et al., Med Phys 2021; calcium.md section 3).
PROFILES: dict[str, dict] = {
    "standard": {"min_area_mm2": 1.0, "min_pixels": None},  # literature; area >= 1 mm2
    "ge": {"min_area_mm2": 1.0, "min_pixels": None},  # >= ceil(1 mm2 / pixel area) pixels
    "siemens": {"min_area_mm2": None, "min_pixels": None},  # any pixel >= 130 HU counts
    "philips": {"min_area_mm2": 0.5, "min_pixels": None},  # >= ceil(0.5 mm2 / pixel area) pixels
    "canon": {"min_area_mm2": None, "min_pixels": 3},  # >= 3 pixels
}

Progress = Callable[[float, str], None]  # progress(fraction 0..1, message)


@dataclass(frozen=True)
class CalciumParameters:
    """Scoring conventions; ``from_profile`` sets the vendor minimum-size rule."""

    threshold_hu: float = 130.0
    min_area_mm2: float | None = 1.0  # None -> no minimum area (Siemens, Canon)
    min_pixels: int | None = None  # Canon: >= 3 pixels
    connectivity: int = 8  # 4 or 8, 2-D in-slice
    profile: str = "standard"  # standard | siemens | ge | philips | canon
    mass_calibration_mg_per_cm3_per_hu: float | None = None  # c_HA
    kvp: float = 120.0
    calibration_source: str | None = None  # e.g. "user value" or "rod ROI 250.0 HU, water 0.0 HU"

    def __post_init__(self):
        if self.profile not in PROFILES:
            raise InputError(f"profile {self.profile!r} is not one of {', '.join(PROFILES)}")
        if self.connectivity not in (4, 8):
            raise InputError(f"connectivity must be 4 or 8, got {self.connectivity!r}")
        if not math.isfinite(self.threshold_hu):
            raise InputError(f"threshold_hu must be finite, got {self.threshold_hu!r}")
        if self.min_area_mm2 is not None and not (math.isfinite(self.min_area_mm2) and self.min_area_mm2 >= 0):
            raise InputError(f"min_area_mm2 must be >= 0 or None, got {self.min_area_mm2!r}")
        if self.min_pixels is not None and (int(self.min_pixels) != self.min_pixels or self.min_pixels < 1):
            raise InputError(f"min_pixels must be a positive integer or None, got {self.min_pixels!r}")
        c = self.mass_calibration_mg_per_cm3_per_hu
        if c is not None and not (math.isfinite(c) and c > 0):
            raise InputError(f"mass calibration must be > 0 mg/cm3/HU, got {c!r}")
        if not (math.isfinite(self.kvp) and self.kvp > 0):
            raise InputError(f"kvp must be > 0, got {self.kvp!r}")

    @classmethod
    def from_profile(cls, profile: str = "standard", **overrides) -> CalciumParameters:
        """Parameters of a vendor profile; ``overrides`` (not None) replace single fields."""
        name = str(profile).lower()
        if name not in PROFILES:
            raise InputError(f"profile {profile!r} is not one of {', '.join(PROFILES)}")
        fields = dict(PROFILES[name], profile=name)
        fields.update(overrides)
        return cls(**fields)

    def to_json(self) -> dict:
        d = asdict(self)
        d["weight_band_lower_edges_hu"] = list(WEIGHT_BANDS_120KVP)
        d["lesion_definition"] = f"2-D per slice, {self.connectivity}-connected"
        d["weight_from"] = "per-slice peak HU"
        d["slice_normalisation"] = "slice increment / 3 mm"
        return d


def calibration_factor(hu_rod: float, hu_water: float, rod_density_mg_cm3: float = 200.0) -> float:
    """c_HA = rho_rod / (HU_rod - HU_water) in mg HA / cm3 / HU (McCollough 2007)."""
    values = (hu_rod, hu_water, rod_density_mg_cm3)
    if not all(math.isfinite(float(v)) for v in values):
        raise InputError(f"calibration values must be finite, got rod {hu_rod!r}, water {hu_water!r}")
    if rod_density_mg_cm3 <= 0:
        raise InputError(f"rod density must be > 0 mg/cm3, got {rod_density_mg_cm3!r}")
    if hu_rod <= hu_water:
        raise InputError(f"calibration rod ({hu_rod:g} HU) must be denser than water ({hu_water:g} HU)")
    return float(rod_density_mg_cm3) / (float(hu_rod) - float(hu_water))


@dataclass
class ArteryScore:
    agatston: float
    volume_mm3: float
    mass_mg: float | None
    lesion_count: int

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class CalciumResult:
    agatston: float
    volume_mm3: float
    mass_mg: float | None
    category: str
    cac_drs: str
    slice_increment_mm: float
    lesion_count: int
    per_artery: dict[str, ArteryScore] | None  # with labels
    unassigned: ArteryScore | None  # with labels
    parameters: dict
    backend: str
    lesion_labels: np.ndarray = field(repr=False)  # uint8 [k,j,i]: 0 none, 1..4 artery, 5 unassigned
    mesa: dict | None = None  # set by the caller when risk factors are given

    def to_json(self) -> dict:
        out = {
            "agatston": self.agatston,
            "volume_mm3": self.volume_mm3,
            "mass_mg": self.mass_mg,
            "category": self.category,
            "cac_drs": self.cac_drs,
            "slice_increment_mm": self.slice_increment_mm,
            "lesion_count": self.lesion_count,
        }
        if self.per_artery is not None:
            out["per_artery"] = {name: score.to_json() for name, score in self.per_artery.items()}
        if self.unassigned is not None:
            out["unassigned"] = self.unassigned.to_json()
        out["parameters"] = dict(self.parameters)
        out["backend"] = self.backend
        if self.mesa is not None:
            out["mesa"] = self.mesa
        return out


def _check_inputs(hu, spacing, labels) -> tuple[float, float, float]:
    shape = getattr(hu, "shape", None)
    if shape is None or len(shape) != 3:
        raise InputError(f"CT volume must be a 3-D array [k, j, i], got shape {shape}")
    if shape[0] == 0 or shape[1] == 0 or shape[2] == 0:
        raise InputError(f"CT volume has no slices or no pixels (shape {tuple(shape)})")
    if getattr(hu, "dtype", np.dtype(float)).kind not in "fiu":
        raise InputError(f"CT volume must hold numbers (HU), got dtype {hu.dtype}")
    try:
        dk, dj, di = (float(s) for s in spacing)
    except (TypeError, ValueError) as exc:
        raise InputError(f"spacing must be three numbers (dk, dj, di) in mm, got {spacing!r}") from exc
    if not all(math.isfinite(s) and s > 0 for s in (dk, dj, di)):
        raise InputError(f"spacing must be positive finite mm, got {(dk, dj, di)}")
    if labels is not None:
        if tuple(labels.shape) != tuple(shape):
            raise InputError(
                f"artery label volume shape {tuple(labels.shape)} does not match the CT grid {tuple(shape)}"
            )
        if getattr(labels, "dtype", np.dtype(int)).kind not in "iub":
            raise InputError(f"artery labels must be integers 0..4, got dtype {labels.dtype}")
    return dk, dj, di


def _structure_2d(xp, connectivity: int):
    """3x3x3 structure with empty z-planes: 2-D components of every slice in one call."""
    s = np.zeros((3, 3, 3), dtype=bool)
    s[1] = True if connectivity == 8 else np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], bool)
    return xp.asarray(s)


def _scatter_max(xp, target, index, values) -> None:
    if xp is np:
        np.maximum.at(target, index, values)
    else:  # CuPy: atomic max on the device
        import cupyx

        cupyx.scatter_max(target, index, values)


def score_calcium(
    hu,
    spacing,
    *,
    labels=None,
    params: CalciumParameters = CalciumParameters(),
    backend: str | Backend = "auto",
    progress: Progress | None = None,
) -> CalciumResult:
    """Score calcium on ``hu`` (float HU [k, j, i]) with ``spacing`` (dk, dj, di) mm.

    ``dk`` must be the slice increment (from positions), not SliceThickness.
    ``labels`` (optional, same grid, 0 none, 1..4 = LM, LAD, LCX, RCA) enable the
    per-artery scores. Inputs are never modified.
    """
    dk, dj, di = _check_inputs(hu, spacing, labels)
    be = resolve(backend)
    xp, ndi = be.xp, be.ndimage
    step = progress or (lambda fraction, message: None)
    step(0.0, "checking the CT volume")

    volume = be.asarray(hu)
    peak_hu = float(xp.max(volume))
    if math.isnan(peak_hu):
        raise InputError("CT volume contains NaN values")
    if peak_hu < AIR_MAX_HU:
        raise InputError(f"CT volume holds no tissue (maximum {peak_hu:.0f} HU < {AIR_MAX_HU:.0f} HU): wrong input?")
    if labels is not None:
        lab_in = be.asarray(labels)
        lo, hi = int(xp.min(lab_in)), int(xp.max(lab_in))
        if lo < 0 or hi > len(ARTERIES):
            raise InputError(f"artery labels must be 0..4 (0 none, 1 LM, 2 LAD, 3 LCX, 4 RCA), found {lo}..{hi}")

    step(0.1, "labelling 2-D lesions per slice")
    candidates = volume >= params.threshold_hu
    lesion_map, n_lesions = ndi.label(candidates, structure=_structure_2d(xp, params.connectivity))
    n_lesions = int(n_lesions)
    step(0.6, f"measuring {n_lesions} candidate lesions")

    flat = xp.flatnonzero(candidates)
    lesion_of_voxel = lesion_map.ravel()[flat]
    hu_of_voxel = volume.ravel()[flat].astype(xp.float64)
    pixels = xp.bincount(lesion_of_voxel, minlength=n_lesions + 1)
    hu_sum = xp.bincount(lesion_of_voxel, weights=hu_of_voxel, minlength=n_lesions + 1)
    peak = xp.full(n_lesions + 1, -xp.inf, dtype=xp.float64)
    _scatter_max(xp, peak, lesion_of_voxel, hu_of_voxel)

    pixel_area = dj * di
    area = pixels * pixel_area
    weight = xp.searchsorted(xp.asarray(WEIGHT_BANDS_120KVP), peak, side="right")  # half-open bands
    counted = (pixels > 0) & (weight > 0)
    if params.min_area_mm2 is not None:
        counted &= area >= params.min_area_mm2 - AREA_TOLERANCE_MM2
    if params.min_pixels is not None:
        counted &= pixels >= params.min_pixels
    counted[0] = False  # background

    # artery of each 2-D lesion: the label holding most of its voxels (ties -> lowest label)
    if labels is not None:
        artery_of_voxel = lab_in.ravel()[flat].astype(xp.int64)
        votes = xp.bincount(lesion_of_voxel * 5 + artery_of_voxel, minlength=(n_lesions + 1) * 5)
        votes = votes.reshape(n_lesions + 1, 5)[:, 1:]
        artery = xp.argmax(votes, axis=1) + 1  # argmax returns the first (lowest) label on ties
        artery = xp.where(votes.max(axis=1) > 0, artery, UNASSIGNED_LABEL)
    else:
        artery = xp.full(n_lesions + 1, UNASSIGNED_LABEL, dtype=xp.int64)
    lesion_value = xp.where(counted, artery, 0).astype(xp.uint8)
    # scatter into zeros instead of indexing the whole label map: only candidate voxels are touched
    lesion_labels = xp.zeros(volume.shape, dtype=xp.uint8)
    lesion_labels.ravel()[flat] = lesion_value[lesion_of_voxel]
    step(0.8, "grouping 3-D lesions")

    agatston_of = area * weight * (dk / 3.0)
    voxel_mm3 = dk * dj * di
    c_ha = params.mass_calibration_mg_per_cm3_per_hu
    # mass: c_HA [mg/cm3/HU] x sum(HU) x dV [cm3]
    mass_of = hu_sum * (voxel_mm3 / 1000.0) * c_ha if c_ha is not None else None
    keep = counted[lesion_of_voxel]
    groups = _lesion_counts_3d(
        xp, lesion_map, flat[keep], lesion_of_voxel[keep], counted, lesion_value, params.connectivity
    )

    def totals(mask, count) -> ArteryScore:
        return ArteryScore(
            agatston=float(xp.sum(agatston_of[mask])),
            volume_mm3=float(xp.sum(pixels[mask])) * voxel_mm3,
            mass_mg=float(xp.sum(mass_of[mask])) if mass_of is not None else None,
            lesion_count=int(count),
        )

    total = totals(counted, groups["total"])
    per_artery = unassigned = None
    if labels is not None:
        per_artery = {
            name: totals(counted & (artery == value), groups.get(value, 0))
            for value, name in enumerate(ARTERIES, start=1)
        }
        unassigned = totals(counted & (artery == UNASSIGNED_LABEL), groups.get(UNASSIGNED_LABEL, 0))
    step(1.0, "done")
    return CalciumResult(
        agatston=total.agatston,
        volume_mm3=total.volume_mm3,
        mass_mg=total.mass_mg,
        category=agatston_category(total.agatston),
        cac_drs=cac_drs(total.agatston, {k: v.agatston for k, v in per_artery.items()} if per_artery else None),
        slice_increment_mm=dk,
        lesion_count=total.lesion_count,
        per_artery=per_artery,
        unassigned=unassigned,
        parameters=params.to_json(),
        backend=report(be),
        lesion_labels=to_numpy(lesion_labels),
    )


def _lesion_counts_3d(xp, lesion_map, flat, lesion_of_voxel, counted, lesion_value, connectivity: int) -> dict:
    """Number of 26-connected 3-D lesions, in total and per artery value (1..5).

    ``flat`` are the sorted flat indices of the counted voxels, ``lesion_of_voxel``
    their 2-D lesion ids in ``lesion_map``. Two counted 2-D lesions join when a voxel
    of one is a 26-neighbour of a voxel of the other: the neighbours are looked up
    directly in ``lesion_map`` for the counted voxels only (no second labelling of
    the whole grid), and the lesion graph is split into components on the host.
    In-slice neighbours matter only for 4-connected lesions (diagonal contacts).
    """
    if flat.size == 0:
        return {"total": 0}
    nk, nj, ni = lesion_map.shape
    plane = nj * ni
    by_id = lesion_map.ravel()
    sources, targets = [], []

    def link(src, neighbour) -> None:
        keep = counted[neighbour] & (neighbour != src)
        src, neighbour = src[keep], neighbour[keep]
        if src.size == 0:
            return
        # voxels come in flat order, so equal (src, neighbour) pairs form runs: keep the run starts
        new = xp.ones(src.size, dtype=bool)
        new[1:] = (src[1:] != src[:-1]) | (neighbour[1:] != neighbour[:-1])
        sources.append(to_numpy(src[new]))
        targets.append(to_numpy(neighbour[new]))

    def link_offsets(flat_v, src_v, offsets) -> None:
        j = (flat_v % plane) // ni
        i = flat_v % ni
        for ok, oj, oi in offsets:
            valid = (j + oj >= 0) & (j + oj < nj) & (i + oi >= 0) & (i + oi < ni)
            link(src_v[valid], by_id[flat_v[valid] + (ok * plane + oj * ni + oi)])

    if connectivity == 4:  # diagonal contacts inside a slice join 4-connected 2-D lesions in 3-D
        link_offsets(flat, lesion_of_voxel, [(0, 1, -1), (0, 1, 1)])
    below_top = flat < (nk - 1) * plane  # voxels with a next slice
    flat, lesion_of_voxel = flat[below_top], lesion_of_voxel[below_top]
    above = by_id[flat + plane]
    link(lesion_of_voxel, above)
    # With 8-connected 2-D lesions, when the voxel straight above is a candidate every candidate
    # among its 8 in-slice neighbours belongs to the same 2-D lesion: only voxels with
    # background above need the other 8 offsets. 4-connected lesions need them all.
    rest = xp.ones(flat.size, dtype=bool) if connectivity == 4 else above == 0
    next_slice = [(1, dj, di) for dj in (-1, 0, 1) for di in (-1, 0, 1) if (dj, di) != (0, 0)]
    link_offsets(flat[rest], lesion_of_voxel[rest], next_slice)
    ids = to_numpy(xp.flatnonzero(counted))  # counted 2-D lesion ids, sorted
    a = np.searchsorted(ids, np.concatenate(sources)) if sources else np.zeros(0, dtype=np.int64)
    b = np.searchsorted(ids, np.concatenate(targets)) if targets else np.zeros(0, dtype=np.int64)
    graph = coo_matrix((np.ones(a.size, dtype=np.int8), (a, b)), shape=(ids.size, ids.size))
    n, component = connected_components(graph, directed=False)
    values = to_numpy(lesion_value)[ids].astype(np.int64)
    pairs = np.unique(component.astype(np.int64) * 8 + values)
    per_value = np.bincount(pairs % 8, minlength=8)
    out = {"total": int(n)}
    out.update({value: int(per_value[value]) for value in range(1, 6)})
    return out


def candidate_lesions_3d(hu, threshold_hu: float = 130.0, connectivity: int = 26, backend: str | Backend = "auto"):
    """3-D connected components of HU >= threshold (int32 [k, j, i], 0 = none).

    For display, click-to-assign and evaluation only; scoring uses 2-D lesions.
    ``connectivity`` is 6, 18 or 26.
    """
    if connectivity not in (6, 18, 26):
        raise InputError(f"3-D connectivity must be 6, 18 or 26, got {connectivity!r}")
    if getattr(hu, "ndim", None) != 3:
        raise InputError(f"CT volume must be a 3-D array [k, j, i], got shape {getattr(hu, 'shape', None)}")
    be = resolve(backend)
    rank = {6: 1, 18: 2, 26: 3}[connectivity]
    structure = be.asarray(generate_binary_structure(3, rank))
    components, _n = be.ndimage.label(be.asarray(hu) >= threshold_hu, structure=structure)
    return to_numpy(components).astype(np.int32, copy=False)


def with_calibration(params: CalciumParameters, c_ha: float | None, source: str | None) -> CalciumParameters:
    """Copy of ``params`` with a mass calibration and where it came from."""
    return replace(params, mass_calibration_mg_per_cm3_per_hu=c_ha, calibration_source=source)


def interpolated_volume_mm3(
    hu,
    spacing,
    lesion_labels,
    *,
    threshold_hu: float = 130.0,
    voxel_mm: float | None = None,
    backend: str | Backend = "auto",
) -> tuple[float, tuple[float, float, float]]:
    """Isotropically interpolated calcium volume (Callister 1998, optional; calcium.md 2.2).

    The CT around the counted lesions (``lesion_labels`` > 0, bounding box plus a
    2-voxel margin) is resampled by trilinear interpolation onto a grid of
    ``voxel_mm`` (default: the finest spacing) covering the same extent (voxel
    centres at (n + 0.5) x step from the crop's edge, ``grid_mode``), then
    thresholded; samples count when their nearest original voxel lies within one
    voxel of a counted lesion (so uncounted tissue stays out). Returns (volume in
    mm3, the resampled voxel size (dk, dj, di) in mm, which equals ``voxel_mm``
    where the extent is a multiple of it).
    """
    dk, dj, di = _check_inputs(hu, spacing, None)
    if tuple(lesion_labels.shape) != tuple(hu.shape):
        raise InputError(f"lesion map shape {tuple(lesion_labels.shape)} does not match the CT {tuple(hu.shape)}")
    step = min(dk, dj, di) if voxel_mm is None else float(voxel_mm)
    if not (math.isfinite(step) and step > 0):
        raise InputError(f"interpolation voxel size must be > 0 mm, got {voxel_mm!r}")
    be = resolve(backend)
    xp, ndi = be.xp, be.ndimage
    lesions = be.asarray(lesion_labels) > 0
    where = xp.nonzero(lesions)
    if where[0].size == 0:
        return 0.0, (step, step, step)
    box = tuple(slice(max(int(w.min()) - 2, 0), min(int(w.max()) + 3, n)) for w, n in zip(where, lesions.shape))
    values = be.asarray(hu[box], dtype=xp.float32)
    near = ndi.binary_dilation(lesions[box], structure=xp.ones((3, 3, 3), dtype=bool))
    old = (dk, dj, di)
    counts = [max(1, round(n * s / step)) for n, s in zip(values.shape, old)]
    factors = [m / n for m, n in zip(counts, values.shape)]
    fine = ndi.zoom(values, factors, order=1, mode="nearest", grid_mode=True)
    inside = ndi.zoom(near.astype(xp.uint8), factors, order=0, mode="nearest", grid_mode=True) > 0
    voxel = tuple(n * s / m for n, s, m in zip(values.shape, old, counts))
    count = int(xp.count_nonzero((fine >= threshold_hu) & inside))
    return count * voxel[0] * voxel[1] * voxel[2], voxel
