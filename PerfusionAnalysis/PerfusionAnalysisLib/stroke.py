"""Stroke summary from CBF and Tmax maps: core, hypoperfusion, mismatch, trial eligibility.

Conventions (perfusion.md §2.5; the inequalities are the trial texts'):

- Core: relative CBF ``rCBF = CBF / reference_cbf < 0.30`` (RAPID-style), inside the tissue mask.
- Hypoperfusion: ``Tmax > 6 s`` (also reported at 4, 8 and 10 s), inside the tissue mask.
- Reference CBF: mean CBF over the tissue-mask voxels of the hemisphere *contralateral* to the one
  holding more ``Tmax > 6 s`` voxels. The hemispheres are split by the mid-sagittal plane of the
  volume grid: the voxel axis most aligned with the patient left-right (LPS x) axis is cut at its
  middle; for an odd size the central plane belongs to neither hemisphere. When both hemispheres hold
  the same number of ``Tmax > 6 s`` voxels (e.g. none) the whole tissue mask is the reference.
  This assumes the head is roughly centred in the field of view; pass ``reference_cbf`` otherwise.
- Mismatch volume = V(Tmax > 6 s) − V(core); ratio = V(Tmax > 6 s) / V(core).
  A core of 0 voxels with hypoperfusion gives an infinite ratio, which satisfies every
  "ratio >" rule. JSON cannot hold infinity, so ``to_json`` writes ``mismatch_ratio: null`` together
  with ``mismatch_ratio_infinite: true``. 0/0 (no core, no hypoperfusion) is undefined: null, not
  infinite, and it satisfies no ratio rule.
- HIR = V(Tmax > 10 s) / V(Tmax > 6 s) (Olivot 2014); null when V(Tmax > 6 s) = 0.
- DEFUSE 3: core < 70 mL and mismatch > 15 mL and ratio > 1.8.
  EXTEND: core ≤ 70 mL and ratio > 1.2 and mismatch > 10 mL.

Exact edges: every volume comparison is made on integer voxel counts times the voxel volume in exact
rational arithmetic (``fractions.Fraction``); spacings and thresholds are taken as the decimal numbers
they print as (``Fraction(repr(x))``), so 0.5 × 0.2 × 0.1 mm is exactly 0.01 mm³ and a ratio
threshold of 1.8 is exactly 9/5. Float noise cannot move a case that sits on an edge.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from fractions import Fraction

import numpy as np

from quantgpu.errors import InputError

# Label values of the core/penumbra label map (and of the DICOM SEG segment numbers).
CORE_LABEL = 1
PENUMBRA_LABEL = 2
LEFT, RIGHT = "left", "right"


@dataclass(frozen=True)
class StrokeThresholds:
    """Thresholds used; all echoed in the result (units in the names)."""

    core_rcbf_lt: float = 0.30
    hypoperfusion_tmax_gt_s: float = 6.0
    tmax_levels_s: tuple[float, ...] = (4.0, 6.0, 8.0, 10.0)
    hir_tmax_gt_s: float = 10.0
    defuse3_core_lt_ml: float = 70.0
    defuse3_mismatch_gt_ml: float = 15.0
    defuse3_ratio_gt: float = 1.8
    extend_core_le_ml: float = 70.0
    extend_ratio_gt: float = 1.2
    extend_mismatch_gt_ml: float = 10.0

    def to_json(self) -> dict:
        d = asdict(self)
        d["tmax_levels_s"] = list(self.tmax_levels_s)
        return d


def _exact(x: float | int | str) -> Fraction:
    """The decimal number ``x`` prints as, exactly (0.1 -> 1/10)."""
    if isinstance(x, Fraction | int):
        return Fraction(x)
    return Fraction(repr(float(x)))


def voxel_volume_mm3(spacing_kji) -> Fraction:
    dk, dj, di = (_exact(s) for s in spacing_kji)
    if dk <= 0 or dj <= 0 or di <= 0:
        raise InputError(f"voxel spacing must be positive, got {tuple(spacing_kji)}")
    return dk * dj * di


@dataclass
class Eligibility:
    """Trial selection from integer counts; ratio None means infinite (core 0, hypoperfusion > 0)."""

    core_ml: Fraction
    hypoperfused_ml: Fraction
    mismatch_ml: Fraction
    ratio: Fraction | None
    ratio_infinite: bool
    defuse3: bool
    extend: bool


def eligibility_from_counts(
    core_count: int, hypoperfused_count: int, voxel_mm3: Fraction, thresholds: StrokeThresholds | None = None
) -> Eligibility:
    """DEFUSE 3 and EXTEND decisions from voxel counts (exact rational arithmetic)."""
    t = thresholds or StrokeThresholds()
    core_count, hypo_count = int(core_count), int(hypoperfused_count)
    if core_count < 0 or hypo_count < 0:
        raise InputError("voxel counts must be non-negative")
    ml = Fraction(voxel_mm3) / 1000
    core_ml, hypo_ml = core_count * ml, hypo_count * ml
    mismatch_ml = hypo_ml - core_ml
    ratio = Fraction(hypo_count, core_count) if core_count else None
    infinite = core_count == 0 and hypo_count > 0

    def ratio_gt(threshold: float) -> bool:
        if ratio is None:
            return infinite  # inf > any threshold; 0/0 satisfies nothing
        return ratio > _exact(threshold)

    defuse3 = (
        core_ml < _exact(t.defuse3_core_lt_ml)
        and mismatch_ml > _exact(t.defuse3_mismatch_gt_ml)
        and ratio_gt(t.defuse3_ratio_gt)
    )
    extend = (
        core_ml <= _exact(t.extend_core_le_ml)
        and ratio_gt(t.extend_ratio_gt)
        and mismatch_ml > _exact(t.extend_mismatch_gt_ml)
    )
    return Eligibility(core_ml, hypo_ml, mismatch_ml, ratio, infinite, defuse3, extend)


def left_right_axis(ijk_to_lps) -> tuple[int, bool]:
    """Array axis (0=k, 1=j, 2=i) closest to patient left-right, and whether +index goes to patient left."""
    m = np.eye(4) if ijk_to_lps is None else np.asarray(ijk_to_lps, dtype=float)
    x_components = m[0, :3]  # LPS x (towards patient left) of the i, j, k directions
    ijk_axis = int(np.argmax(np.abs(x_components)))
    return 2 - ijk_axis, bool(x_components[ijk_axis] > 0)


def hemisphere_masks(shape, ijk_to_lps=None) -> dict[str, np.ndarray]:
    """Boolean masks of the patient-left and patient-right halves of the grid (mid-sagittal split)."""
    axis, plus_is_left = left_right_axis(ijk_to_lps)
    n = shape[axis]
    index = np.arange(n)
    low = index < n // 2
    high = index >= (n + 1) // 2  # odd n: the central plane is in neither half
    view = [1, 1, 1]
    view[axis] = n
    low_mask = np.broadcast_to(low.reshape(view), shape)
    high_mask = np.broadcast_to(high.reshape(view), shape)
    return {LEFT: high_mask, RIGHT: low_mask} if plus_is_left else {LEFT: low_mask, RIGHT: high_mask}


@dataclass
class StrokeSummary:
    reference_cbf: float
    reference_hemisphere: str  # "left", "right" or "both"
    affected_hemisphere: str | None
    voxel_volume_mm3: float
    counts: dict[str, int]
    volumes_ml: dict[str, float]
    mismatch_volume_ml: float
    mismatch_ratio: float  # may be inf (core 0) or nan (0/0)
    hypoperfusion_intensity_ratio: float | None
    eligibility: dict[str, bool]
    thresholds: StrokeThresholds
    labels: np.ndarray = field(repr=False)  # uint8: CORE_LABEL, PENUMBRA_LABEL, 0 elsewhere

    def to_json(self) -> dict:
        """JSON-safe dict (no inf/nan: an infinite ratio is null plus ``mismatch_ratio_infinite``)."""
        finite = bool(np.isfinite(self.mismatch_ratio))
        return {
            "reference_cbf": self.reference_cbf,
            "reference_hemisphere": self.reference_hemisphere,
            "affected_hemisphere": self.affected_hemisphere,
            "voxel_volume_mm3": self.voxel_volume_mm3,
            "voxel_counts": dict(self.counts),
            "volumes_ml": dict(self.volumes_ml),
            "mismatch_volume_ml": self.mismatch_volume_ml,
            "mismatch_ratio": self.mismatch_ratio if finite else None,
            "mismatch_ratio_infinite": bool(np.isinf(self.mismatch_ratio)),
            "hypoperfusion_intensity_ratio": self.hypoperfusion_intensity_ratio,
            "eligibility": dict(self.eligibility),
            "thresholds": self.thresholds.to_json(),
        }


def _level_key(level_s: float) -> str:
    return f"tmax_gt_{level_s:g}s"


def stroke_summary(
    cbf,
    tmax,
    spacing_kji,
    *,
    tissue_mask=None,
    ijk_to_lps=None,
    reference_cbf=None,
    thresholds: StrokeThresholds | None = None,
) -> StrokeSummary:
    """Core/hypoperfusion volumes, mismatch, HIR and eligibility from CBF and Tmax maps [k, j, i].

    NaN map values (outside the mask or invalid) never count. ``reference_cbf`` overrides the
    contralateral-hemisphere mean. Inputs are not modified.
    """
    t = thresholds or StrokeThresholds()
    cbf = np.asarray(cbf, dtype=np.float64)
    tmax = np.asarray(tmax, dtype=np.float64)
    if cbf.ndim != 3 or cbf.shape != tmax.shape:
        raise InputError(f"CBF and Tmax maps must be 3-D of the same shape, got {cbf.shape} and {tmax.shape}")
    tissue = np.ones(cbf.shape, bool) if tissue_mask is None else np.asarray(tissue_mask).astype(bool)
    if tissue.shape != cbf.shape:
        raise InputError(f"tissue mask shape {tissue.shape} differs from the map shape {cbf.shape}")
    voxel = voxel_volume_mm3(spacing_kji)

    with np.errstate(invalid="ignore"):
        hypo = tissue & np.isfinite(tmax) & (tmax > t.hypoperfusion_tmax_gt_s)
    halves = hemisphere_masks(cbf.shape, ijk_to_lps)
    n_left, n_right = int(np.count_nonzero(hypo & halves[LEFT])), int(np.count_nonzero(hypo & halves[RIGHT]))
    affected = LEFT if n_left > n_right else RIGHT if n_right > n_left else None
    reference_side = {LEFT: RIGHT, RIGHT: LEFT, None: "both"}[affected]

    if reference_cbf is None:
        region = tissue & np.isfinite(cbf)
        if affected is not None:
            region &= halves[reference_side]
        if not region.any():
            raise InputError(f"no valid CBF voxels in the reference region ({reference_side} hemisphere)")
        reference_cbf = float(cbf[region].mean())
    else:
        reference_side = "given"
        reference_cbf = float(reference_cbf)
    if not np.isfinite(reference_cbf) or reference_cbf <= 0:
        raise InputError(f"reference CBF must be positive, got {reference_cbf}")

    with np.errstate(invalid="ignore"):
        core = tissue & np.isfinite(cbf) & (cbf / reference_cbf < t.core_rcbf_lt)
        level_masks = {_level_key(s): tissue & np.isfinite(tmax) & (tmax > s) for s in t.tmax_levels_s}
        hir_mask = tissue & np.isfinite(tmax) & (tmax > t.hir_tmax_gt_s)

    counts = {"core": int(np.count_nonzero(core))}
    counts.update({k: int(np.count_nonzero(m)) for k, m in level_masks.items()})
    n_hypo, n_hir = int(np.count_nonzero(hypo)), int(np.count_nonzero(hir_mask))
    elig = eligibility_from_counts(counts["core"], n_hypo, voxel, t)

    ml = voxel / 1000
    volumes = {k: float(n * ml) for k, n in counts.items()}
    ratio = float("inf") if elig.ratio_infinite else float("nan")
    if elig.ratio is not None:
        ratio = float(elig.ratio)
    hir = float(Fraction(n_hir, n_hypo)) if n_hypo else None

    labels = np.zeros(cbf.shape, np.uint8)
    labels[hypo & ~core] = PENUMBRA_LABEL
    labels[core] = CORE_LABEL
    return StrokeSummary(
        reference_cbf=reference_cbf,
        reference_hemisphere=reference_side,
        affected_hemisphere=affected,
        voxel_volume_mm3=float(voxel),
        counts=counts,
        volumes_ml=volumes,
        mismatch_volume_ml=float(elig.mismatch_ml),
        mismatch_ratio=ratio,
        hypoperfusion_intensity_ratio=hir,
        eligibility={"defuse3": elig.defuse3, "extend": elig.extend},
        thresholds=t,
        labels=labels,
    )
