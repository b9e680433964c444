"""The perfusion analysis from a 4-D series to maps, AIF/VOF and the stroke summary (or DCE fits).

CT:  frames (HU) → tissue mask (``aif.tissue_mask_ct``) → ΔHU from the pre-bolus baseline →
     AIF (mask or automatic) and VOF (mask or automatic; partial-volume scaling only when
     AUC_VOF > AUC_AIF) → deconvolution maps → stroke summary.
DSC: signal → ΔR2* (TE from the series or ``te_s``) → same as CT. Tissue: finite curves with a
     baseline signal above 10 % of the 99th percentile, minus the AIF/VOF voxels and the voxels whose
     peak ΔR2* exceeds half the AIF peak (vessels).
DCE: signal → concentration (SPGR, T1₀ ``t1_s``, flip angle and TR from the series or given,
     relaxivity ``r1_per_mM_s``) → plasma AIF (mask: C_b/(1 − Hct); none: Parker population AIF
     shifted to the bolus arrival of the mean curve) → Tofts / extended Tofts / Patlak fits.
     Tissue: voxels whose baseline signal is above 10 % of the 99th percentile.

All maps are on the voxel grid of one frame, NaN outside the tissue mask or where invalid.
``PerfusionResult.to_json`` has exactly the keys of issue 4 item 8; the details that do not have a
top-level key (thresholds, infinite-ratio flag, hemisphere, voxel counts, VOF, partial-volume
factor, invalid counts) are under ``parameters``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from quantgpu.errors import InputError

from . import aif as aif_mod
from .concentration import bolus_arrival_frame, ct_concentration, dsc_concentration, spgr_concentration
from .deconvolution import DENSITY_DEFAULT, KH_DEFAULT, METHODS, OI_THRESHOLD_DEFAULT, Cancelled, perfusion_maps
from .stroke import StrokeSummary, StrokeThresholds, stroke_summary

log = logging.getLogger("PerfusionAnalysisLib.pipeline")

MODALITIES = ("ct", "dsc", "dce")
DCE_MODELS = ("tofts", "extended-tofts", "patlak")
PERFUSION_MAP_NAMES = ("cbf", "cbv", "mtt", "tmax", "ttp")
DCE_MAP_NAMES = ("ktrans", "ve", "vp", "kep")
DCE_DEFAULTS = {"t1_s": 1.4, "r1_per_mM_s": 3.9, "hct": 0.45}  # PkModeling r1 (Gd-DTPA 3 T), Hct of the k_H derivation


@dataclass
class PerfusionResult:
    modality: str
    method: str
    frame_times_s: np.ndarray
    frame_interval_s: float
    maps: dict[str, np.ndarray]
    tissue_mask: np.ndarray
    aif_mask: np.ndarray
    aif_curve: np.ndarray
    aif_peak_time_s: float
    vof_mask: np.ndarray | None
    vof_curve: np.ndarray | None
    tissue_curve: np.ndarray
    spacing: tuple[float, float, float]
    ijk_to_lps: np.ndarray
    headers: list = field(default_factory=list, repr=False)
    stroke: StrokeSummary | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    backend: str = "numpy"

    @property
    def frames(self) -> int:
        return len(self.frame_times_s)

    def to_json(self) -> dict:
        """The result JSON of issue 4 item 8 (no inf/nan anywhere)."""
        s = self.stroke
        params = dict(self.parameters)
        if s is not None:
            sj = s.to_json()
            params["stroke"] = {
                "thresholds": sj["thresholds"],
                "mismatch_ratio_infinite": sj["mismatch_ratio_infinite"],
                "reference_hemisphere": sj["reference_hemisphere"],
                "affected_hemisphere": sj["affected_hemisphere"],
                "voxel_counts": sj["voxel_counts"],
                "voxel_volume_mm3": sj["voxel_volume_mm3"],
            }
        return {
            "modality": self.modality,
            "method": self.method,
            "frame_interval_s": float(self.frame_interval_s),
            "frames": self.frames,
            "aif": {
                "voxel_count": int(np.count_nonzero(self.aif_mask)),
                "peak_time_s": float(self.aif_peak_time_s),
                "curve": [_finite_or_none(v) for v in np.asarray(self.aif_curve, dtype=float)],
            },
            "reference_cbf": s.reference_cbf if s else None,
            "volumes_ml": dict(s.volumes_ml) if s else None,
            "mismatch_volume_ml": s.mismatch_volume_ml if s else None,
            "mismatch_ratio": (s.mismatch_ratio if np.isfinite(s.mismatch_ratio) else None) if s else None,
            "hypoperfusion_intensity_ratio": s.hypoperfusion_intensity_ratio if s else None,
            "eligibility": dict(s.eligibility) if s else None,
            "parameters": params,
            "backend": self.backend,
        }


def _finite_or_none(v: float):
    return float(v) if np.isfinite(v) else None


def _stage(progress, start, stop):
    """Map a 0..1 progress of one stage onto [start, stop] of the whole run."""
    if progress is None:
        return None
    return lambda f: progress(start + (stop - start) * float(f))


def _check_cancel(cancel):
    if cancel is not None and cancel():
        raise Cancelled("perfusion analysis cancelled")


def _mask(value, shape, name: str) -> np.ndarray | None:
    if value is None:
        return None
    m = np.asarray(value)
    if m.shape != tuple(shape):
        raise InputError(f"{name} grid {m.shape} does not match the frame grid {tuple(shape)}")
    m = m != 0
    if not m.any():
        raise InputError(f"{name} selects no voxels")
    return m


def _unpack(data, frame_times_s, spacing, ijk_to_lps):
    """(frames float32 [t,k,j,i], times, spacing, ijk_to_lps, headers, series) from a Series4D or an array."""
    if hasattr(data, "frames") and hasattr(data, "frame_times_s"):
        frames = np.asarray(data.frames, dtype=np.float32)
        times = np.asarray(data.frame_times_s if frame_times_s is None else frame_times_s, dtype=float)
        return frames, times, tuple(data.spacing), np.asarray(data.ijk_to_lps), list(data.headers or []), data
    frames = np.asarray(data, dtype=np.float32)
    if frame_times_s is None:
        raise InputError("frame times are needed for an array input (pass frame_times_s)")
    times = np.asarray(frame_times_s, dtype=float)
    spacing = tuple(float(s) for s in (spacing or (1.0, 1.0, 1.0)))
    m = np.diag([spacing[2], spacing[1], spacing[0], 1.0]) if ijk_to_lps is None else np.asarray(ijk_to_lps)
    return frames, times, spacing, m, [], None


def analyze(
    data,
    modality: str = "ct",
    method: str = "csvd",
    *,
    frame_times_s=None,
    spacing=None,
    ijk_to_lps=None,
    aif_mask=None,
    vof_mask=None,
    tissue_mask=None,
    kh: float = KH_DEFAULT,
    density: float = DENSITY_DEFAULT,
    truncation: float | None = None,
    oi_threshold: float = OI_THRESHOLD_DEFAULT,
    model: str = "tofts",
    motion_correction: bool = False,
    te_s: float | None = None,
    t1_s: float = DCE_DEFAULTS["t1_s"],
    flip_angle_deg: float | None = None,
    tr_s: float | None = None,
    r1_per_mM_s: float = DCE_DEFAULTS["r1_per_mM_s"],
    hct: float = DCE_DEFAULTS["hct"],
    n_baseline: int | None = None,
    thresholds: StrokeThresholds | None = None,
    backend: str = "auto",
    progress: Callable[[float], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> PerfusionResult:
    """Run the analysis on a ``quantgpu.io.Series4D`` or an array [t, k, j, i] (then give frame times,
    spacing and optionally ijk_to_lps). Inputs are never modified."""
    modality = str(modality).lower()
    if modality not in MODALITIES:
        raise InputError(f"modality {modality!r} is not one of {', '.join(MODALITIES)}")
    frames, times, spacing, m, headers, series = _unpack(data, frame_times_s, spacing, ijk_to_lps)
    if frames.ndim != 4:
        raise InputError(f"a 4-D series [t, k, j, i] is needed, got shape {frames.shape}")
    if times.size != frames.shape[0]:
        raise InputError(f"{times.size} frame times for {frames.shape[0]} frames")
    grid = frames.shape[1:]
    aif_sel, vof_sel = _mask(aif_mask, grid, "AIF mask"), _mask(vof_mask, grid, "VOF mask")
    tissue_sel = _mask(tissue_mask, grid, "tissue mask")
    params: dict[str, Any] = {"motion_correction": bool(motion_correction)}
    if progress:
        progress(0.0)
    if motion_correction:
        from .motion import correct_translation

        frames, shifts = correct_translation(frames)
        params["motion_max_shift_vox"] = float(np.abs(shifts).max())
    _check_cancel(cancel)

    if modality == "dce":
        if model not in DCE_MODELS:
            raise InputError(f"model {model!r} is not one of {', '.join(DCE_MODELS)}")
        result = _analyze_dce(
            frames,
            times,
            aif_sel,
            tissue_sel,
            model,
            series,
            flip_angle_deg,
            tr_s,
            t1_s,
            r1_per_mM_s,
            hct,
            n_baseline,
            backend,
            params,
            progress,
            cancel,
        )
    else:
        if method not in METHODS:
            raise InputError(f"method {method!r} is not one of {', '.join(METHODS)}")
        result = _analyze_perfusion(
            frames,
            times,
            modality,
            method,
            aif_sel,
            vof_sel,
            tissue_sel,
            kh,
            density,
            truncation,
            oi_threshold,
            te_s,
            series,
            n_baseline,
            backend,
            params,
            progress,
            cancel,
        )
    result.spacing, result.ijk_to_lps, result.headers = spacing, m, headers
    if modality != "dce":
        _check_cancel(cancel)
        result.stroke = stroke_summary(
            result.maps["cbf"],
            result.maps["tmax"],
            spacing,
            tissue_mask=result.tissue_mask,
            ijk_to_lps=m,
            thresholds=thresholds,
        )
    if progress:
        progress(1.0)
    return result


def _curve(conc, mask):
    return np.nanmean(conc[:, mask], axis=1).astype(np.float32)


def _analyze_perfusion(
    frames,
    times,
    modality,
    method,
    aif_sel,
    vof_sel,
    tissue_sel,
    kh,
    density,
    truncation,
    oi_threshold,
    te_s,
    series,
    n_baseline,
    backend,
    params,
    progress,
    cancel,
):
    if modality == "ct":
        tissue = aif_mod.tissue_mask_ct(frames) if tissue_sel is None else tissue_sel
        if not tissue.any():
            raise InputError("no brain tissue found (pre-bolus 30-100 HU, temporal maximum <= 150 HU)")
        head = frames[0] > -100.0
        search = head & ~tissue  # vessels: inside the head, not tissue
        if not search.any():
            search = head
        # The bolus is detected on the vessels' mean curve (arteries enhance first), so that the
        # baseline ends before the AIF rises; a tissue-based baseline would include arterial frames.
        bolus_region = aif_sel if aif_sel is not None else search
        conc, baseline = ct_concentration(frames, baseline=n_baseline, mask=bolus_region)
    else:
        te = te_s if te_s is not None else getattr(series, "echo_time_s", None)
        if te is None:
            raise InputError("DSC needs the echo time: the series has none, pass te_s (--te)")
        conc = dsc_concentration(frames, te, n_baseline=n_baseline)
        baseline = int(n_baseline or 0)
        s0 = frames[:3].mean(axis=0)
        head = s0 > 0.1 * np.percentile(s0, 99)
        search = head & np.isfinite(conc).all(axis=0)
        tissue = search if tissue_sel is None else tissue_sel
    params["baseline_frames"] = int(baseline)
    _check_cancel(cancel)

    if aif_sel is not None:
        aif_curve, aif_mask_used = _curve(conc, aif_sel), aif_sel
        params["aif_selection"] = "mask"
    else:
        found = aif_mod.auto_aif(conc, times, mask=search)
        aif_curve, aif_mask_used = found.curve, found.mask
        params["aif_selection"] = "automatic (Mouridsen 2006)"
    aif_peak = float(times[int(np.nanargmax(aif_curve))])
    if vof_sel is not None:
        vof_curve, vof_mask_used = _curve(conc, vof_sel), vof_sel
        params["vof_selection"] = "mask"
    else:
        try:
            found = aif_mod.auto_vof(conc, times, mask=search & ~aif_mask_used, after_s=aif_peak)
            vof_curve, vof_mask_used = found.curve, found.mask
            params["vof_selection"] = "automatic"
        except InputError as exc:
            log.info("no VOF: %s", exc)
            vof_curve, vof_mask_used = None, None
            params["vof_selection"] = "none"
    factor = None
    if vof_curve is not None:
        aif_curve, factor = aif_mod.partial_volume_scale(aif_curve, vof_curve, times)
        aif_curve = np.asarray(aif_curve, dtype=np.float32)
    params["partial_volume_factor"] = factor
    if modality == "dsc":
        tissue = tissue & ~aif_mask_used
        if vof_mask_used is not None:
            tissue &= ~vof_mask_used
        peak = np.where(np.isfinite(conc), conc, -np.inf).max(axis=0)
        tissue &= ~(peak > 0.5 * float(np.nanmax(aif_curve)))
    if progress:
        progress(0.1)
    _check_cancel(cancel)

    maps = perfusion_maps(
        conc,
        aif_curve,
        times,
        method=method,
        mask=tissue,
        kh=kh,
        density=density,
        truncation=truncation,
        oi_threshold=oi_threshold,
        backend=backend,
        progress=_stage(progress, 0.1, 0.95),
        cancel=cancel,
    )
    params.update(maps.parameters)
    params["invalid_voxels"] = int(maps.invalid_count)
    params["tissue_voxels"] = int(np.count_nonzero(tissue))
    return PerfusionResult(
        modality=modality,
        method=method,
        frame_times_s=times,
        frame_interval_s=float(maps.parameters.get("frame_interval_s", np.median(np.diff(times)))),
        maps={"cbf": maps.cbf, "cbv": maps.cbv, "mtt": maps.mtt, "tmax": maps.tmax, "ttp": maps.ttp},
        tissue_mask=tissue,
        aif_mask=aif_mask_used,
        aif_curve=aif_curve,
        aif_peak_time_s=aif_peak,
        vof_mask=vof_mask_used,
        vof_curve=vof_curve,
        tissue_curve=_curve(conc, tissue),
        spacing=(1.0, 1.0, 1.0),
        ijk_to_lps=np.eye(4),
        parameters=params,
        backend=maps.backend,
    )


def _analyze_dce(
    frames,
    times,
    aif_sel,
    tissue_sel,
    model,
    series,
    flip_angle_deg,
    tr_s,
    t1_s,
    r1,
    hct,
    n_baseline,
    backend,
    params,
    progress,
    cancel,
):
    from . import dce

    fa = flip_angle_deg if flip_angle_deg is not None else getattr(series, "flip_angle_deg", None)
    tr = tr_s if tr_s is not None else getattr(series, "repetition_time_s", None)
    if fa is None or tr is None:
        raise InputError("DCE needs the flip angle and TR: the series has none, pass --flip-angle and --tr")
    s0 = frames[:3].mean(axis=0)
    tissue = (s0 > 0.1 * np.percentile(s0, 99)) if tissue_sel is None else tissue_sel
    mean_signal = frames[:, tissue].mean(axis=1)
    if n_baseline is None:
        n_baseline = max(1, min(bolus_arrival_frame(mean_signal), frames.shape[0] - 1))
    conc = spgr_concentration(frames, t1_s, fa, tr, r1, n_baseline)
    t_min = (times - times[0]) / 60.0
    if aif_sel is not None:
        cb = _curve(conc, aif_sel).astype(np.float64)
        cp = cb / (1.0 - hct)
        aif_mask_used = aif_sel
        tissue = tissue & ~aif_sel
        params["aif_selection"] = "mask (blood, divided by 1 - Hct)"
    else:
        arrival = t_min[min(int(n_baseline), t_min.size - 1)]
        cp = dce.parker_aif(t_min, delay_min=float(arrival), hct=hct)
        aif_mask_used = np.zeros(frames.shape[1:], bool)
        params["aif_selection"] = f"Parker population AIF, delay {arrival * 60:.1f} s"
    params.update(
        {
            "model": model,
            "t1_s": t1_s,
            "flip_angle_deg": float(fa),
            "tr_s": float(tr),
            "r1_per_mM_s": r1,
            "hct": hct,
            "baseline_frames": int(n_baseline),
        }
    )
    if progress:
        progress(0.1)
    _check_cancel(cancel)
    ct = conc[:, tissue].T
    fit = {"tofts": dce.fit_tofts, "extended-tofts": dce.fit_extended_tofts, "patlak": dce.fit_patlak}[model]
    out = fit(ct, cp, t_min, backend=backend)
    maps = {}
    for name in DCE_MAP_NAMES:
        values = np.full(frames.shape[1:], np.nan, np.float32)
        if name in out:
            values[tissue] = np.asarray(out[name], dtype=np.float32)
        maps[name] = values
    peak = float(times[int(np.nanargmax(cp))])
    return PerfusionResult(
        modality="dce",
        method=model,
        frame_times_s=times,
        frame_interval_s=float(np.median(np.diff(times))),
        maps=maps,
        tissue_mask=tissue,
        aif_mask=aif_mask_used,
        aif_curve=np.asarray(cp, dtype=np.float32),
        aif_peak_time_s=peak,
        vof_mask=None,
        vof_curve=None,
        tissue_curve=_curve(conc, tissue),
        spacing=(1.0, 1.0, 1.0),
        ijk_to_lps=np.eye(4),
        parameters=params,
        backend=str(out.get("backend", backend)),
    )
