"""Arterial input and venous output functions, partial-volume scaling and the CT tissue mask (perfusion.md §2.1, §2.2).

Automatic AIF after Mouridsen 2006 (MRM 55:524): AUC ≥ 90th percentile → drop roughness ∫C''² above
the 75th percentile → curves normalised to unit area → k-means (k = 5, seeded from first-moment
quantiles) → earliest-moment cluster, re-clustered once (kept only if >= 4 voxels remain) → at most
``n_voxels`` highest-peak members averaged. Inputs are concentration curves [t, ...] with frame times in seconds.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from quantgpu.errors import InputError

from .concentration import bolus_arrival_frame

log = logging.getLogger("PerfusionAnalysisLib.aif")

TISSUE_BASELINE_HU = (30.0, 100.0)  # brain parenchyma before contrast; excludes air, fat, CSF and bone
VESSEL_MIP_HU = 150.0  # temporal maximum above this: a vessel
MIN_AIF_VOXELS = 4


@dataclass
class AIFResult:
    """Selected voxels (bool mask on the voxel grid), their mean curve, count and peak time (s, input time origin)."""

    mask: np.ndarray
    curve: np.ndarray
    voxel_count: int
    peak_time_s: float


def _curves(conc, frame_times_s, mask):
    c = np.asarray(conc, dtype=np.float64)
    if c.ndim < 2:
        raise InputError(f"concentration must be [t, ...]; got shape {c.shape}")
    t = np.asarray(frame_times_s, dtype=np.float64).ravel()
    if t.size != c.shape[0] or np.any(np.diff(t) <= 0):
        raise InputError(f"{t.size} frame times (strictly increasing) are needed for {c.shape[0]} frames")
    flat = c.reshape(c.shape[0], -1)
    sel = np.all(np.isfinite(flat), axis=0)
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != c.shape[1:]:
            raise InputError(f"mask shape {mask.shape} does not match the voxel grid {c.shape[1:]}")
        sel &= mask.ravel()
    idx = np.flatnonzero(sel)
    if idx.size == 0:
        raise InputError("no voxels with finite curves inside the search mask")
    return flat[:, idx], idx, t, c.shape[1:]


def _result(curves, idx, members, t, vox_shape) -> AIFResult:
    mask = np.zeros(int(np.prod(vox_shape)), dtype=bool)
    mask[idx[members]] = True
    curve = curves[:, members].mean(axis=1)
    return AIFResult(
        mask.reshape(vox_shape), curve.astype(np.float32), int(members.size), float(t[int(np.argmax(curve))])
    )


def _kmeans(x, seeds, iterations=20):
    """Plain k-means of rows ``x`` [m, d] from seed centres; returns labels."""
    centres = seeds.copy()
    labels = np.zeros(x.shape[0], dtype=int)
    for _ in range(iterations):
        dist = ((x[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
        labels = np.argmin(dist, axis=1)
        new = np.array(
            [x[labels == k].mean(axis=0) if np.any(labels == k) else centres[k] for k in range(len(centres))]
        )
        if np.allclose(new, centres):
            break
        centres = new
    return labels


def _earliest_cluster(norm, moment, k=5):
    """Members (indices into ``norm`` rows) of the k-means cluster with the earliest mean first moment."""
    k = min(k, norm.shape[0])
    seeds_at = [int(np.argmin(np.abs(moment - q))) for q in np.quantile(moment, (np.arange(k) + 0.5) / k)]
    labels = _kmeans(norm, norm[seeds_at])
    means = [moment[labels == j].mean() if np.any(labels == j) else np.inf for j in range(k)]
    return np.flatnonzero(labels == int(np.argmin(means)))


def auto_aif(conc, frame_times_s, mask=None, n_voxels: int = 8) -> AIFResult:
    """Automatic AIF (Mouridsen 2006): early, high, smooth curves; the mean of ``n_voxels`` voxels."""
    curves, idx, t, vox_shape = _curves(conc, frame_times_s, mask)
    auc = np.trapezoid(curves, t, axis=0)
    keep = np.flatnonzero(auc >= np.quantile(auc, 0.90))
    second = np.diff(curves[:, keep], n=2, axis=0)
    rough = (second**2).sum(axis=0)
    keep = keep[rough <= np.quantile(rough, 0.75)]
    keep = keep[auc[keep] > 0]
    if keep.size == 0:
        raise InputError("no enhancing voxels for the automatic AIF")
    norm = (curves[:, keep] / auc[keep]).T  # unit area
    moment = np.trapezoid(curves[:, keep] * t[:, None], t, axis=0) / auc[keep]
    pos = np.arange(keep.size)
    members = pos[_earliest_cluster(norm, moment)]
    if members.size > n_voxels:  # re-cluster the earliest cluster once (unless it would leave < 4 voxels)
        sub = members[_earliest_cluster(norm[members], moment[members])]
        if sub.size >= min(MIN_AIF_VOXELS, n_voxels):
            members = sub
    members = keep[members]
    peaks = curves[:, members].max(axis=0)
    members = members[np.argsort(-peaks, kind="stable")[:n_voxels]]
    return _result(curves, idx, np.sort(members), t, vox_shape)


def auto_vof(conc, frame_times_s, mask=None, n_voxels: int = 8, after_s: float | None = None) -> AIFResult:
    """Automatic VOF: the ``n_voxels`` highest-AUC voxels whose peak comes after ``after_s``.

    ``after_s`` defaults to the earliest peak time among the top-10 % AUC voxels (the arterial
    peak): veins peak after arteries and, in large sinuses, hold the highest AUC.
    """
    curves, idx, t, vox_shape = _curves(conc, frame_times_s, mask)
    auc = np.trapezoid(curves, t, axis=0)
    peak_t = t[np.argmax(curves, axis=0)]
    if after_s is None:
        after_s = float(peak_t[auc >= np.quantile(auc, 0.90)].min())
    cand = np.flatnonzero((peak_t > after_s) & (auc > 0))
    if cand.size == 0:
        raise InputError("no enhancing voxels peak after the arterial peak; cannot place a VOF automatically")
    members = cand[np.argsort(-auc[cand], kind="stable")[:n_voxels]]
    return _result(curves, idx, np.sort(members), t, vox_shape)


def partial_volume_scale(aif, vof, frame_times_s):
    """Scale the AIF by AUC_VOF/AUC_AIF only when AUC_VOF > AUC_AIF (perfusion.md §2.2, §3).

    Returns (aif copy, factor) or (aif copy, None) when no scaling applies. The factor is logged.
    """
    a = np.asarray(aif, dtype=np.float64).ravel()
    v = np.asarray(vof, dtype=np.float64).ravel()
    t = np.asarray(frame_times_s, dtype=np.float64).ravel()
    if not (a.size == v.size == t.size):
        raise InputError(f"AIF ({a.size}), VOF ({v.size}) and frame times ({t.size}) differ in length")
    auc_a, auc_v = np.trapezoid(a, t), np.trapezoid(v, t)
    if not (auc_a > 0 and auc_v > auc_a):
        log.info("AIF partial-volume scaling not applied (AUC VOF %.4g <= AUC AIF %.4g)", auc_v, auc_a)
        return a.copy(), None
    factor = float(auc_v / auc_a)
    log.info("AIF scaled by the VOF: factor %.4f (AUC VOF %.4g > AUC AIF %.4g)", factor, auc_v, auc_a)
    return a * factor, factor


def tissue_mask_ct(frames, baseline_frames: int | None = None) -> np.ndarray:
    """Brain tissue for CT perfusion: pre-bolus mean 30–100 HU and temporal MIP ≤ 150 HU (no vessels).

    ``frames`` [t, ...] in HU. ``baseline_frames`` None detects the bolus on the mean curve of
    voxels that start in the soft-tissue range.
    """
    f = np.asarray(frames)
    if f.ndim < 2 or f.shape[0] < 2:
        raise InputError(f"CT frames must be [t, ...] with >= 2 frames; got shape {f.shape}")
    if baseline_frames is None:
        first = f[0]
        soft = (first > TISSUE_BASELINE_HU[0]) & (first < TISSUE_BASELINE_HU[1] + VESSEL_MIP_HU)
        if not soft.any():
            return np.zeros(f.shape[1:], dtype=bool)
        baseline_frames = min(bolus_arrival_frame(f[:, soft].mean(axis=1)), f.shape[0] - 1)
    base = f[: int(baseline_frames)].astype(np.float64).mean(axis=0)
    mip = f.max(axis=0)
    return (base >= TISSUE_BASELINE_HU[0]) & (base <= TISSUE_BASELINE_HU[1]) & (mip <= VESSEL_MIP_HU)
