"""Semi-quantitative breast DCE kinetics (perfusion.md §2.6; ACR BI-RADS MRI kinetic descriptors).

PE = 100·(S_early − S0)/S0; SER = (S_early − S0)/(S_late − S0); delayed change
= 100·(S_late − S_early)/S_early. Initial phase: slow < 50 %, medium 50–100 %, fast > 100 %.
Curve type: I persistent (> +10 %), II plateau (±10 %), III washout (< −10 %); the ±10 % cut is
a convention (unverified in the reference) and is a parameter here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from quantgpu.errors import InputError

SLOW, MEDIUM, FAST = 1, 2, 3
PERSISTENT, PLATEAU, WASHOUT = 1, 2, 3  # curve types I, II, III


@dataclass
class BreastKinetics:
    """Maps on the voxel grid; NaN / type 0 where the voxel does not enhance by ``enhancement_threshold_pct``."""

    initial_enhancement_pct: np.ndarray
    ser: np.ndarray
    delayed_change_pct: np.ndarray
    initial_phase: np.ndarray  # 0 invalid baseline, 1 slow, 2 medium, 3 fast (every voxel)
    curve_type: np.ndarray  # 0 none, 1 persistent, 2 plateau, 3 washout
    early_frame: int
    late_frame: int


def breast_kinetics(
    signal,
    frame_times_s,
    *,
    n_baseline: int = 1,
    early_s: float = 90.0,
    late_frame: int = -1,
    enhancement_threshold_pct: float = 70.0,
    plateau_pct: float = 10.0,
) -> BreastKinetics:
    """Semi-quantitative kinetics of ``signal`` [t, ...].

    S0 is the mean of the first ``n_baseline`` frames; the early frame is the one closest to
    ``early_s`` seconds after the last baseline frame; the late frame is ``late_frame`` (default last).
    """
    s = np.asarray(signal, dtype=np.float64)
    t = np.asarray(frame_times_s, dtype=np.float64).ravel()
    if s.ndim < 1 or s.shape[0] < n_baseline + 2 or t.size != s.shape[0]:
        raise InputError(
            f"breast DCE needs >= {n_baseline + 2} frames with matching times; got {s.shape}, {t.size} times"
        )
    if n_baseline < 1:
        raise InputError("n_baseline must be >= 1")
    post = np.arange(n_baseline, s.shape[0])
    early = int(post[np.argmin(np.abs(t[post] - t[n_baseline - 1] - early_s))])
    late = int(np.arange(s.shape[0])[late_frame])
    if late <= early:
        raise InputError(f"late frame {late} must come after the early frame {early}")
    s0 = s[:n_baseline].mean(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        pe = 100.0 * (s[early] - s0) / s0
        ser = (s[early] - s0) / (s[late] - s0)
        delayed = 100.0 * (s[late] - s[early]) / s[early]
    enhancing = np.isfinite(pe) & (pe >= enhancement_threshold_pct) & (s0 > 0)
    phase = np.select([pe < 50, pe <= 100], [SLOW, MEDIUM], FAST)
    ctype = np.select([delayed > plateau_pct, delayed >= -plateau_pct], [PERSISTENT, PLATEAU], WASHOUT)
    nan = np.float32(np.nan)
    return BreastKinetics(
        initial_enhancement_pct=np.where(s0 > 0, pe, nan).astype(np.float32),
        ser=np.where(enhancing & np.isfinite(ser), ser, nan).astype(np.float32),
        delayed_change_pct=np.where(enhancing, delayed, nan).astype(np.float32),
        initial_phase=np.where(np.isfinite(pe) & (s0 > 0), phase, 0).astype(np.uint8),
        curve_type=np.where(enhancing, ctype, 0).astype(np.uint8),
        early_frame=early,
        late_frame=late,
    )
