"""Deterministic digital CT perfusion phantom with known truth (issue 4 item 9, perfusion.md §5.2-§5.3).

Indicator dilution (perfusion.md §1): tissue ΔHU(t) = (ρ/k_H)·(CBF/6000)·(AIF ∗ R)(t − delay), so that
the maps of §2.4 with the same k_H and ρ (defaults 0.73, 1.04) return the truth CBF in mL/100 g/min
and CBV = CBF·MTT/60 in mL/100 g. The convolution is computed on a 0.01 s grid, then sampled at the
frame times (§5.2 conventions). AIF: gamma variate A·(t − t0)^α·e^(−(t − t0)/β), t0 = 10 s, α = 3,
β = 1.5 s, scaled to ``aif_peak_hu``. Baselines: tissue 40 HU (inside the 30-100 HU tissue window),
air −1000 HU; arterial and venous voxels peak far above 150 HU so the temporal-MIP vessel rule
excludes them from tissue.

Slice 0 holds the arterial region (4×4 px, the AIF itself) and the venous region (8×8 px, the AIF
delayed by 4 s and dispersed by an exponential of 3 s, area 0.95 × the AIF's, so the
"scale only when AUC_VOF > AUC_AIF" rule leaves the AIF unscaled). Two layouts follow it:

* ``"stroke"`` (default; demo and sample data): a head-shaped block of normal tissue (CBF 60, MTT 4 s,
  delay 0, exponential residue) and, in the patient-LEFT hemisphere (+i, identity LPS directions),
  a core (CBF 10, delay 11 s), penumbra with Tmax 7 s (CBF 35) and penumbra with Tmax 11 s (CBF 30).
  Truth Tmax of an exponential residue is the delay (its peak). Truth volumes are counts of the
  truth label regions × voxel volume.
* ``"grid"`` (ASIST-like, Kudo 2013): one slice per CBV value, each a 7 × 7 grid of tiles,
  MTT {24, 12, 8, 6, 4.8, 4, 3.43} s (rows) × delay {0, 0.5 … 3} s (columns), box residue by
  default (truth Tmax of a box is taken as delay + MTT/2, perfusion.md §2.4).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.signal import fftconvolve

from quantgpu.errors import InputError

KH, DENSITY = 0.73, 1.04
TISSUE_HU, AIR_HU = 40.0, -1000.0
FINE_DT = 0.01  # s, the convolution grid of the §5.2 conventions
GRID_MTT_S = (24.0, 12.0, 8.0, 6.0, 4.8, 4.0, 3.43)
GRID_DELAY_S = (0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0)
NORMAL = {"cbf": 60.0, "mtt": 4.0, "delay": 0.0}
STROKE_ZONES = {  # label value: (name, CBF, MTT s, delay s)
    1: ("core", 10.0, 4.0, 11.0),
    2: ("penumbra_tmax7", 35.0, 4.0, 7.0),
    3: ("penumbra_tmax11", 30.0, 4.0, 11.0),
}


def gamma_variate_aif(t, peak_hu: float, t0: float = 10.0, alpha: float = 3.0, beta: float = 1.5):
    """AIF ΔHU: gamma variate with its continuous peak (at t0 + α·β) scaled to ``peak_hu``."""
    t = np.asarray(t, dtype=np.float64)
    s = np.clip(t - t0, 0.0, None)
    shape = s**alpha * np.exp(-s / beta)
    return peak_hu * shape / ((alpha * beta) ** alpha * np.exp(-alpha))


def residue(kind: str, t, mtt: float):
    t = np.asarray(t, dtype=np.float64)
    if kind == "exponential":
        return np.exp(-t / mtt)
    if kind == "box":
        return (t < mtt).astype(np.float64)
    if kind == "linear":
        return np.clip(1.0 - t / (2.0 * mtt), 0.0, None)
    raise InputError(f"unknown residue shape {kind!r}; choose exponential, box or linear")


def truth_tmax(kind: str, mtt: float, delay: float) -> float:
    """Peak time of the shifted residue: the delay; for the flat box the middle of the plateau."""
    return delay + (mtt / 2.0 if kind == "box" else 0.0)


def _tissue_curve(aif_fine, t_fine, frame_times, cbf, mtt, delay, kind, kh, density):
    """ΔHU at frame_times of (ρ/k_H)·F·(AIF ∗ R)(t − delay), convolved on the fine grid."""
    k = (density / kh) * (cbf / 6000.0) * residue(kind, t_fine, mtt)
    conv = fftconvolve(aif_fine, k)[: t_fine.size] * FINE_DT
    return np.interp(np.asarray(frame_times) - delay, t_fine, conv, left=0.0)


@dataclass
class Phantom:
    """Frames [t, k, j, i] in HU, their times and geometry, and the truth."""

    frames: np.ndarray
    frame_times_s: np.ndarray
    spacing: tuple[float, float, float]
    ijk_to_lps: np.ndarray
    layout: str
    residue: str
    aif_mask: np.ndarray
    vof_mask: np.ndarray
    tissue_mask: np.ndarray  # truth tissue (baseline 40 HU, not a vessel)
    truth: dict = field(default_factory=dict)  # maps cbf, cbv, mtt, tmax, delay (NaN outside tissue)
    labels: np.ndarray | None = None  # stroke layout: 1 core, 2/3 penumbra zones
    truth_volumes_ml: dict = field(default_factory=dict)
    aif_curve: np.ndarray | None = None
    kh: float = KH
    density: float = DENSITY

    @property
    def voxel_volume_mm3(self) -> float:
        return float(np.prod(self.spacing))


def make_phantom(
    layout: str = "stroke",
    *,
    frame_interval_s: float = 1.0,
    n_frames: int = 60,
    shape_ji: tuple[int, int] = (64, 64),
    n_stroke_slices: int = 4,
    grid_cbv: tuple[float, ...] = (2.0, 4.0),
    tile_px: int = 8,
    residue_kind: str | None = None,
    spacing: tuple[float, float, float] = (5.0, 2.0, 2.0),
    aif_peak_hu: float = 600.0,
    noise_hu: float = 0.0,
    seed: int = 0,
    kh: float = KH,
    density: float = DENSITY,
) -> Phantom:
    """Build the phantom (deterministic; ``noise_hu`` adds seeded Gaussian noise)."""
    if layout not in ("stroke", "grid"):
        raise InputError(f"unknown phantom layout {layout!r}; choose 'stroke' or 'grid'")
    kind = residue_kind or ("exponential" if layout == "stroke" else "box")
    residue(kind, 0.0, 1.0)  # validates the name
    n_j, n_i = shape_ji
    if layout == "grid" and (n_j < 7 * tile_px or n_i < 7 * tile_px):
        raise InputError(f"grid layout needs at least {7 * tile_px} px per side, got {shape_ji}")
    if n_j < 32 or n_i < 32:
        raise InputError(f"phantom slices need at least 32 x 32 px, got {shape_ji}")
    times = frame_interval_s * np.arange(n_frames, dtype=np.float64)
    t_fine = np.arange(0.0, times[-1] + 30.0, FINE_DT)
    aif_fine = gamma_variate_aif(t_fine, aif_peak_hu)
    aif = gamma_variate_aif(times, aif_peak_hu)
    # venous outflow: AIF delayed 4 s, dispersed by a 3 s exponential, area 0.95 × the AIF's
    disp = np.exp(-t_fine / 3.0)
    disp *= 0.95 / (disp.sum() * FINE_DT)
    vof = np.interp(times - 4.0, t_fine, fftconvolve(aif_fine, disp)[: t_fine.size] * FINE_DT, left=0.0)

    n_k = 1 + (n_stroke_slices if layout == "stroke" else len(grid_cbv))
    base = np.full((n_k, n_j, n_i), AIR_HU)
    enhancement = np.zeros((n_frames, n_k, n_j, n_i))
    maps = {name: np.full((n_k, n_j, n_i), np.nan) for name in ("cbf", "cbv", "mtt", "tmax", "delay")}
    aif_mask = np.zeros((n_k, n_j, n_i), bool)
    vof_mask = np.zeros_like(aif_mask)
    aif_mask[0, 4:8, n_i // 2 - 2 : n_i // 2 + 2] = True
    vof_mask[0, n_j - 12 : n_j - 4, n_i // 2 - 4 : n_i // 2 + 4] = True
    base[0][aif_mask[0] | vof_mask[0]] = TISSUE_HU
    enhancement[:, aif_mask] = aif[:, None]
    enhancement[:, vof_mask] = vof[:, None]
    cache: dict[tuple, np.ndarray] = {}

    def fill(region, cbf, mtt, delay):
        key = (cbf, mtt, delay)
        if key not in cache:
            cache[key] = _tissue_curve(aif_fine, t_fine, times, cbf, mtt, delay, kind, kh, density)
        base[region] = TISSUE_HU
        enhancement[:, region] = cache[key][:, None]
        for name, value in (
            ("cbf", cbf),
            ("cbv", cbf * mtt / 60.0),
            ("mtt", mtt),
            ("tmax", truth_tmax(kind, mtt, delay)),
            ("delay", delay),
        ):
            maps[name][region] = value

    labels = None
    volumes: dict[str, float] = {}
    if layout == "stroke":
        labels = np.zeros((n_k, n_j, n_i), np.uint8)
        head = np.zeros((n_k, n_j, n_i), bool)
        head[1:, 4 : n_j - 4, 4 : n_i - 4] = True
        fill(head, NORMAL["cbf"], NORMAL["mtt"], NORMAL["delay"])
        mid = n_i // 2
        w = (n_i - 8) // 2 - 4  # width available in the left half (+i), 2 px from the midline and the edge
        rows = (n_j - 8) // 3
        for z, (label, (_name, cbf, mtt, delay)) in enumerate(STROKE_ZONES.items()):
            region = np.zeros_like(head)
            r0 = 4 + z * rows
            region[1:, r0 + 1 : r0 + rows - 1, mid + 2 : mid + 2 + w] = True
            labels[region] = label
            fill(region, cbf, mtt, delay)
        ml = float(np.prod(spacing)) / 1000.0
        core = labels == 1
        for level in (4.0, 6.0, 8.0, 10.0):
            volumes[f"tmax_gt_{level:g}s"] = int(np.count_nonzero(head & (maps["tmax"] > level))) * ml
        volumes["core"] = int(np.count_nonzero(core)) * ml
    else:
        off_j = (n_j - 7 * tile_px) // 2
        off_i = (n_i - 7 * tile_px) // 2
        for s, cbv in enumerate(grid_cbv, start=1):
            for r, mtt in enumerate(GRID_MTT_S):
                for c, delay in enumerate(GRID_DELAY_S):
                    region = np.zeros((n_k, n_j, n_i), bool)
                    j0, i0 = off_j + r * tile_px, off_i + c * tile_px
                    region[s, j0 : j0 + tile_px, i0 : i0 + tile_px] = True
                    fill(region, 60.0 * cbv / mtt, mtt, delay)

    frames = base[None] + enhancement
    if noise_hu > 0:
        frames += np.random.default_rng(seed).normal(0.0, noise_hu, frames.shape)
    tissue = np.isfinite(maps["cbf"])
    ijk_to_lps = np.diag([spacing[2], spacing[1], spacing[0], 1.0])
    return Phantom(
        frames=frames.astype(np.float32),
        frame_times_s=times,
        spacing=tuple(float(s) for s in spacing),
        ijk_to_lps=ijk_to_lps,
        layout=layout,
        residue=kind,
        aif_mask=aif_mask,
        vof_mask=vof_mask,
        tissue_mask=tissue,
        truth={k: v.astype(np.float32) for k, v in maps.items()},
        labels=labels,
        truth_volumes_ml=volumes,
        aif_curve=aif.astype(np.float32),
        kh=kh,
        density=density,
    )


def write_phantom(
    out_dir, phantom: Phantom | None = None, *, dicom: bool = True, nrrd: bool = True, force: bool = False
) -> dict[str, Path]:
    """Write the phantom as a 4D DICOM CT series (``out_dir/dicom``) and/or a 4D NRRD (``phantom_4d.nrrd``,
    Slicer sequence layout with the frame times), plus the AIF/VOF masks as NRRD on the frame grid."""
    from quantgpu import io

    phantom = phantom or make_phantom()
    out = Path(out_dir)
    written: dict[str, Path] = {}
    if dicom:
        files = io.write_ct_series(
            out / "dicom",
            phantom.frames,
            phantom.spacing,
            ijk_to_lps=phantom.ijk_to_lps,
            frame_times_s=phantom.frame_times_s,
            series_description=f"QuantGPU perfusion phantom ({phantom.layout})",
            study_description="QuantGPU perfusion phantom",
            body_part="HEAD",
            force=force,
        )
        written["dicom"] = Path(files[0]).parent
    if nrrd:
        written["nrrd"] = _write_nrrd_4d(out / "phantom_4d.nrrd", phantom, force)
    for name in ("aif_mask", "vof_mask"):
        mask = getattr(phantom, name).astype(np.uint8)
        written[name] = io.write_nrrd(out / f"{name}.nrrd", mask, phantom.spacing, phantom.ijk_to_lps, force)
    return written


def _write_nrrd_4d(path: Path, phantom: Phantom, force: bool) -> Path:
    """4D NRRD in Slicer's sequence layout (kinds domain domain domain list, frame times in
    ``axis 3 index values``), the layout ``quantgpu.io.load_series_4d`` reads."""
    import nrrd

    from quantgpu.output import write_with

    m = np.asarray(phantom.ijk_to_lps, dtype=float)
    header = {
        "space": "left-posterior-superior",
        "space directions": [m[:3, 0].tolist(), m[:3, 1].tolist(), m[:3, 2].tolist(), [np.nan] * 3],
        "space origin": m[:3, 3].tolist(),
        "kinds": ["domain", "domain", "domain", "list"],
        "labels": ["", "", "", "time"],
        "encoding": "gzip",
        "axis 3 index type": "numeric",
        "axis 3 index values": " ".join(f"{t:.9g}" for t in phantom.frame_times_s),
    }
    custom = {"axis 3 index type": "string", "axis 3 index values": "string"}

    def writer(tmp: Path) -> None:
        nrrd.write(str(tmp), np.ascontiguousarray(phantom.frames), header, index_order="C", custom_field_map=custom)

    return write_with(path, writer, force)


def sample_volume():
    """The stroke phantom's temporal maximum intensity projection as a ``quantgpu.io.Volume`` (sample data)."""
    from quantgpu.io import Volume

    p = make_phantom()
    return Volume(
        array=p.frames.max(axis=0),
        spacing=p.spacing,
        ijk_to_lps=p.ijk_to_lps,
        modality="CT",
        source="PerfusionPhantom (temporal MIP)",
    )
