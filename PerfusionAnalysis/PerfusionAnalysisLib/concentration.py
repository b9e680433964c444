"""Signal to contrast-agent concentration for CT perfusion, DSC-MRI and DCE-MRI (perfusion.md §2.1).

All inputs are time-first arrays [t, ...]; outputs are float32 (float64 for the SPGR inversion, which
the OSIPI suite checks to 1e-5). Values that have no valid concentration are NaN, never inf.
"""

from __future__ import annotations

import numpy as np

from quantgpu.errors import InputError

BOLUS_RISE_FRACTION = 0.01  # bolus start: 3-frame mean 1 % above baseline (perfusion.md §2.1)
DSC_BASELINE_MIN, DSC_BASELINE_MAX = 3, 12
DSC_BASELINE_DEVIATION = 0.05


def _time_first(a, name: str) -> np.ndarray:
    arr = np.asarray(a)
    if arr.ndim < 1 or arr.shape[0] < 2:
        raise InputError(f"{name} must be a time-first array with at least 2 frames; got shape {arr.shape}")
    return arr


def bolus_arrival_frame(mean_curve) -> int:
    """First frame of the bolus in a whole-tissue mean curve.

    The 3-frame moving average must rise more than 1 % above the baseline (mean of the first two
    frames); within the first such window the first frame above that level is the arrival. Returns
    the number of pre-bolus frames (>= 1). A curve that never rises gives len(curve).
    """
    m = np.asarray(mean_curve, dtype=np.float64).ravel()
    if m.size < 3 or not np.all(np.isfinite(m)):
        raise InputError("the mean curve for bolus detection needs >= 3 finite frames")
    base = m[:2].mean()
    level = base + BOLUS_RISE_FRACTION * max(abs(base), 1e-12)
    moving = np.convolve(m, np.ones(3) / 3.0, mode="valid")  # moving[j] = mean(m[j:j+3])
    above = np.flatnonzero(moving > level)
    if above.size == 0:
        return int(m.size)
    j = int(above[0])
    first = j + int(np.flatnonzero(m[j : j + 3] > level)[0])
    return max(1, first)


def ct_concentration(frames, baseline: int | None = None, mask=None):
    """CT ΔHU: frames [t, ...] minus the mean of the pre-bolus frames (perfusion.md §2.1).

    ``baseline`` is the number of pre-bolus frames; None finds it with :func:`bolus_arrival_frame`
    on the mean curve (over ``mask`` when given). Returns (conc float32 [t, ...], baseline_frames).
    """
    f = _time_first(frames, "CT frames")
    if baseline is None:
        flat = f.reshape(f.shape[0], -1)
        if mask is not None:
            mask = np.asarray(mask, dtype=bool)
            if mask.shape != f.shape[1:]:
                raise InputError(f"mask shape {mask.shape} does not match the frame shape {f.shape[1:]}")
            flat = flat[:, mask.ravel()]
        if flat.shape[1] == 0:
            raise InputError("the mask for bolus detection is empty")
        baseline = bolus_arrival_frame(np.nanmean(flat, axis=1))
        baseline = min(baseline, f.shape[0] - 1)
    baseline = int(baseline)
    if not 1 <= baseline < f.shape[0]:
        raise InputError(f"baseline of {baseline} frames must be between 1 and {f.shape[0] - 1}")
    base = f[:baseline].astype(np.float64).mean(axis=0)
    return (f - base).astype(np.float32), baseline


def dsc_baseline_frames(mean_signal) -> int:
    """Number of baseline frames for DSC: grow n from 3 to 12, stopping when the next frame deviates > 5 % from the mean."""
    m = np.asarray(mean_signal, dtype=np.float64).ravel()
    n = DSC_BASELINE_MIN
    while n < min(DSC_BASELINE_MAX, m.size - 1):
        s0 = m[:n].mean()
        if abs(m[n] - s0) > DSC_BASELINE_DEVIATION * abs(s0):
            break
        n += 1
    return min(n, m.size - 1)


def dsc_concentration(signal, te_s: float, n_baseline: int | None = None):
    """DSC ΔR2*(t) = −ln(S(t)/S0)/TE (s⁻¹), S0 the mean of the first ``n_baseline`` frames.

    ``n_baseline`` None searches it on the mean signal (:func:`dsc_baseline_frames`). Non-positive
    signal or baseline gives NaN. Example: S0 1000, S 600, TE 30 ms → 17.03 s⁻¹.
    """
    s = _time_first(signal, "DSC signal").astype(np.float64)
    if not (np.isfinite(te_s) and te_s > 0):
        raise InputError(f"echo time {te_s!r} s must be positive")
    if n_baseline is None:
        n_baseline = dsc_baseline_frames(np.nanmean(s.reshape(s.shape[0], -1), axis=1))
    n_baseline = int(n_baseline)
    if not 1 <= n_baseline < s.shape[0]:
        raise InputError(f"baseline of {n_baseline} frames must be between 1 and {s.shape[0] - 1}")
    s0 = s[:n_baseline].mean(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = s / s0
        conc = -np.log(ratio) / te_s
    conc[~(ratio > 0) | ~np.isfinite(conc)] = np.nan
    return conc.astype(np.float32)


def _spgr_check(flip_angle_deg, tr_s, r1_per_mM_s):
    if not (np.isfinite(tr_s) and tr_s > 0):
        raise InputError(f"repetition time {tr_s!r} s must be positive")
    if not (np.isfinite(r1_per_mM_s) and r1_per_mM_s > 0):
        raise InputError(f"relaxivity {r1_per_mM_s!r} /mM/s must be positive")
    if not 0 < float(flip_angle_deg) < 180:
        raise InputError(f"flip angle {flip_angle_deg!r} degrees must be in (0, 180)")


def spgr_signal(conc, t1_s, flip_angle_deg: float, tr_s: float, r1_per_mM_s: float, m0=1.0):
    """Spoiled gradient-echo signal S = M0 sinα (1 − E1)/(1 − cosα E1), E1 = exp(−TR·(1/T1 + r1·C))."""
    _spgr_check(flip_angle_deg, tr_s, r1_per_mM_s)
    a = np.deg2rad(flip_angle_deg)
    r1 = 1.0 / np.asarray(t1_s, dtype=np.float64) + r1_per_mM_s * np.asarray(conc, dtype=np.float64)
    e1 = np.exp(-tr_s * r1)
    return m0 * np.sin(a) * (1 - e1) / (1 - np.cos(a) * e1)


def spgr_concentration(
    signal,
    t1_s,
    flip_angle_deg: float,
    tr_s: float,
    r1_per_mM_s: float,
    n_baseline: int,
    hct: float | None = None,
    baseline_start: int = 0,
):
    """DCE SPGR inversion (perfusion.md §2.1): signal [t, ...] → concentration (mM), float64.

    M0 from the mean of frames ``baseline_start`` … ``n_baseline`` − 1 (the OSIPI reference uses
    ``baseline_start=1``: the first dynamic is not at steady state) with R1₀ = 1/T1₀; E1 = (M0 sinα − S)/(M0 sinα − S cosα);
    R1 = −ln(E1)/TR; C = (R1 − R1₀)/r1. E1 outside (0, 1) → NaN. ``hct`` converts blood to plasma,
    C_p = C_b/(1 − Hct) (for an arterial curve only).
    """
    _spgr_check(flip_angle_deg, tr_s, r1_per_mM_s)
    s = _time_first(signal, "DCE signal").astype(np.float64)
    n_baseline = int(n_baseline)
    baseline_start = int(baseline_start)
    if not 0 <= baseline_start < n_baseline <= s.shape[0]:
        raise InputError(f"baseline frames {baseline_start}..{n_baseline - 1} are not within the {s.shape[0]} frames")
    t1 = np.asarray(t1_s, dtype=np.float64)
    if np.any(~(t1 > 0)):
        raise InputError("baseline T1 must be positive")
    a = np.deg2rad(flip_angle_deg)
    e10 = np.exp(-tr_s / t1)
    s_base = s[baseline_start:n_baseline].mean(axis=0)
    m0 = s_base * (1 - np.cos(a) * e10) / (np.sin(a) * (1 - e10))
    with np.errstate(divide="ignore", invalid="ignore"):
        e1 = (m0 * np.sin(a) - s) / (m0 * np.sin(a) - s * np.cos(a))
        r1 = -np.log(e1) / tr_s
    conc = (r1 - 1.0 / t1) / r1_per_mM_s
    conc[~((e1 > 0) & (e1 < 1)) | ~np.isfinite(conc)] = np.nan
    if hct is not None:
        if not 0 <= hct < 1:
            raise InputError(f"haematocrit {hct} must be in [0, 1)")
        conc = conc / (1.0 - hct)
    return conc
