"""Model-free deconvolution of perfusion curves and the CBF/CBV/MTT/Tmax/TTP maps.

Indicator dilution: C(t) = (AIF * k)(t) with k(t) = CBF·R(t) (perfusion.md §1, §2.3).

* sSVD (Østergaard 1996): lower-triangular Toeplitz A_ij = Δt·a_(i−j), truncation P = 0.2.
* cSVD (Wu 2003, MRM 50:164): block-circulant system of length L = 2N, P = 0.1; delay insensitive.
* oSVD (Wu 2003): cSVD with P = 0.05 … 0.95 chosen per voxel as the first P whose oscillation
  index (second differences, perfusion.md §2.3) falls below ``oi_threshold`` (0.95 when none does).
* Tikhonov: filter factors σ/(σ² + λ²) on the circulant system, λ = ``tikhonov_lambda``·σ_max.

Truncation is relative to σ_max; singular values σ < P·σ_max are discarded. AIF samples are used
plain (no Simpson weighting), the convention behind the perfusion.md §5 numbers.

oSVD speed: one SVD of the circulant matrix D = U S Vᵀ and one projection W = S⁻¹ Uᵀ C serve all
thresholds. The residue at truncation rank r is V[:, :r] W[:r], so walking the thresholds from the
lowest P upwards removes only the components between two levels (a rank-Δr update of k and of its
second differences), and the oscillation index of each level costs one pass over the chunk.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from quantgpu.backend import Backend, map_chunks, report, resolve, to_numpy
from quantgpu.errors import InputError, QuantGPUError

log = logging.getLogger("PerfusionAnalysisLib.deconvolution")

METHODS = ("ssvd", "csvd", "osvd", "tikhonov")
DEFAULT_TRUNCATION = {"ssvd": 0.2, "csvd": 0.1}
OSVD_LEVELS = tuple(round(0.05 * i, 2) for i in range(1, 20))  # 0.05, 0.10, … 0.95
OI_THRESHOLD_DEFAULT = 0.095
OI_THRESHOLD_TOOLBOX = 0.035  # DSC toolbox / PyPeT / osipy value; over-regularises at Δt = 2 s (§4)
KH_DEFAULT = 0.73  # (1 − 0.45)/(1 − 0.25), large- vs small-vessel haematocrit (perfusion.md §2.4)
DENSITY_DEFAULT = 1.04  # brain tissue density, g/mL
_CPU_CHUNK = 8192  # voxels per chunk on the CPU: the oSVD working set (L × chunk float32) stays in cache


class Cancelled(QuantGPUError):
    """The caller's ``cancel()`` callback asked to stop."""


@dataclass
class PerfusionMaps:
    """Perfusion maps on the voxel grid (float32; NaN outside the mask and where invalid).

    Units: CBF mL/100 g/min, CBV mL/100 g, MTT s, Tmax s (negative = tissue before the AIF),
    TTP s after the first frame.
    """

    cbf: np.ndarray
    cbv: np.ndarray
    mtt: np.ndarray
    tmax: np.ndarray
    ttp: np.ndarray
    method: str
    parameters: dict = field(default_factory=dict)
    backend: str = "numpy"
    invalid_count: int = 0


# ----------------------------------------------------------------------------- system matrices
def toeplitz_matrix(aif: np.ndarray, dt: float) -> np.ndarray:
    """Lower-triangular convolution matrix A_ij = Δt·a_(i−j), i ≥ j (sSVD)."""
    a = np.asarray(aif, dtype=np.float64)
    n = a.size
    i, j = np.indices((n, n))
    return np.where(i >= j, dt * a[np.clip(i - j, 0, n - 1)], 0.0)


def circulant_matrix(aif: np.ndarray, dt: float) -> np.ndarray:
    """Block-circulant matrix of the zero-padded AIF, L = 2N: D_ij = Δt·a_pad[(i − j) mod L]."""
    a = np.asarray(aif, dtype=np.float64)
    length = 2 * a.size
    a_pad = np.zeros(length)
    a_pad[: a.size] = a
    i, j = np.indices((length, length))
    return dt * a_pad[(i - j) % length]


def _validate_method(method: str) -> str:
    m = str(method).lower()
    if m not in METHODS:
        raise InputError(f"deconvolution method {method!r} is not one of {', '.join(METHODS)}")
    return m


@dataclass
class _Operator:
    """Host (float64) pieces of one deconvolution, moved to a backend on demand."""

    method: str
    n: int  # frames
    length: int  # rows of the residue (N for sSVD, 2N for circulant methods)
    pinv: np.ndarray | None = None  # fixed-truncation methods: k = pinv @ c, shape [length, N]
    v: np.ndarray | None = None  # oSVD: V[:, :r_max]
    proj: np.ndarray | None = None  # oSVD: diag(1/s) U[:N, :r_max]^T
    d2v: np.ndarray | None = None  # oSVD: second differences of V's columns, [length-2, r_max]
    ranks: tuple = ()  # oSVD: rank kept at each level of OSVD_LEVELS
    parameters: dict = field(default_factory=dict)
    _device: dict = field(default_factory=dict)

    def on(self, be: Backend) -> dict:
        if be.name not in self._device:
            xp = be.xp
            arrays = {k: getattr(self, k) for k in ("pinv", "v", "proj", "d2v") if getattr(self, k) is not None}
            self._device[be.name] = {k: xp.asarray(a, dtype=xp.float32) for k, a in arrays.items()}
        return self._device[be.name]


def _build_operator(aif, dt, method, truncation, oi_threshold, tikhonov_lambda) -> _Operator:
    aif = np.asarray(aif, dtype=np.float64).ravel()
    n = aif.size
    if n < 4:
        raise InputError(f"the AIF has {n} samples; deconvolution needs at least 4 frames")
    if not np.all(np.isfinite(aif)):
        raise InputError("the AIF contains non-finite values")
    if not (np.isfinite(dt) and dt > 0):
        raise InputError(f"frame interval {dt!r} s must be a positive number")
    if np.max(aif) <= 0:
        raise InputError("the AIF has no positive enhancement (peak <= 0)")
    if method == "ssvd":
        u, s, vt = np.linalg.svd(toeplitz_matrix(aif, dt))
    else:
        u, s, vt = np.linalg.svd(circulant_matrix(aif, dt))
    length = s.size
    smax = s[0]
    if method in ("ssvd", "csvd"):
        p = DEFAULT_TRUNCATION[method] if truncation is None else float(truncation)
        if not 0 <= p < 1:
            raise InputError(f"truncation {p} must be in [0, 1)")
        keep = s >= p * smax
        inv_s = np.where(keep, 1.0 / np.where(keep, s, 1.0), 0.0)
        params = {"truncation": p}
    elif method == "tikhonov":
        lam = float(tikhonov_lambda) * smax
        if lam < 0:
            raise InputError(f"tikhonov_lambda {tikhonov_lambda} must be >= 0")
        inv_s = s / (s * s + lam * lam)
        params = {"tikhonov_lambda": float(tikhonov_lambda)}
    else:  # osvd
        ranks = tuple(int(np.count_nonzero(s >= p * smax)) for p in OSVD_LEVELS)
        r_max = ranks[0]
        v = vt.T[:, :r_max]
        proj = (u[:n, :r_max] / s[:r_max]).T
        d2v = v[2:] - 2.0 * v[1:-1] + v[:-2]
        return _Operator(
            "osvd",
            n,
            length,
            v=v,
            proj=proj,
            d2v=d2v,
            ranks=ranks,
            parameters={"oi_threshold": float(oi_threshold), "levels": list(OSVD_LEVELS)},
        )
    # Residue = V diag(inv_s) U^T c_pad; c_pad is zero past N, so only U's first N rows matter.
    pinv = (vt.T * inv_s) @ u[:n, :].T
    return _Operator(method, n, length, pinv=pinv, parameters=params)


def _osvd_chunk(xp, dev: dict, op: _Operator, c, oi_threshold: float):
    """Per-voxel oSVD of ``c`` [N, m]; returns (residue [L, m], chosen level index [m])."""
    v, proj, d2v = dev["v"], dev["proj"], dev["d2v"]
    length = op.length
    m = c.shape[1]
    w = proj @ c  # [r_max, m]
    k = v @ w  # residue at the lowest level (largest rank)
    d2 = d2v @ w  # its second differences
    chosen_rank = xp.full(m, op.ranks[-1], dtype=xp.int32)
    chosen_level = xp.full(m, len(op.ranks) - 1, dtype=xp.int32)
    undecided = xp.ones(m, dtype=bool)
    limit = np.float32(oi_threshold * length)
    prev_rank = op.ranks[0]
    absd2 = xp.empty_like(d2)
    for level, rank in enumerate(op.ranks):
        if rank != prev_rank:  # remove components rank … prev_rank-1 (rank update)
            k -= v[:, rank:prev_rank] @ w[rank:prev_rank]
            d2 -= d2v[:, rank:prev_rank] @ w[rank:prev_rank]
            prev_rank = rank
        elif level > 0:
            continue  # same rank as the previous level: same residue, same OI, already decided
        if level == len(op.ranks) - 1:
            break  # last level is the fallback
        # OI < thr  <=>  Σ|Δ²k| < thr·L·max k   (perfusion.md §2.3; max k <= 0 never qualifies)
        xp.abs(d2, out=absd2)
        rough = absd2.sum(axis=0)
        peak = k.max(axis=0)
        ok = (rough < limit * peak) & undecided
        chosen_rank = xp.where(ok, rank, chosen_rank)
        chosen_level = xp.where(ok, level, chosen_level)
        undecided &= ~ok
        if not bool(undecided.any()):
            break
    # Residue at each voxel's own rank: zero the components beyond it, one product.
    keep = xp.arange(w.shape[0], dtype=xp.int32)[:, None] < chosen_rank[None, :]
    k = v @ (w * keep)
    return k, chosen_level


def _residue_chunk(xp, dev, op: _Operator, c, oi_threshold):
    if op.method == "osvd":
        return _osvd_chunk(xp, dev, op, c, oi_threshold)
    return dev["pinv"] @ c, None


def deconvolve(
    tissue,
    aif,
    dt: float,
    method: str = "csvd",
    *,
    truncation: float | None = None,
    oi_threshold: float = OI_THRESHOLD_DEFAULT,
    tikhonov_lambda: float = 0.1,
    backend: str | Backend = "auto",
    return_levels: bool = False,
):
    """Residue k = CBF·R(t) (1/s) for each curve of ``tissue`` [n_vox, N] with ``aif`` [N].

    Returns a host float32 array [n_vox, N] (sSVD) or [n_vox, 2N] (circulant methods); with
    ``return_levels`` also the chosen oSVD truncation P per voxel (None for other methods).
    """
    method = _validate_method(method)
    be = resolve(backend)
    tissue = np.asarray(tissue)
    if tissue.ndim == 1:
        tissue = tissue[None, :]
    aif = np.asarray(aif, dtype=np.float64).ravel()
    if tissue.ndim != 2 or tissue.shape[1] != aif.size:
        raise InputError(f"tissue curves {tissue.shape} do not match the AIF length {aif.size}")
    op = _build_operator(aif, float(dt), method, truncation, oi_threshold, tikhonov_lambda)
    n_vox = tissue.shape[0]

    def run(b: Backend, start: int, stop: int):
        xp = b.xp
        c = xp.asarray(np.ascontiguousarray(tissue[start:stop].T), dtype=xp.float32)
        k, lev = _residue_chunk(xp, op.on(b), op, c, oi_threshold)
        return to_numpy(k.T), (None if lev is None else to_numpy(lev))

    parts, _ = map_chunks(run, n_vox, 4 * (op.n + 4 * op.length), be, cpu_chunk=_CPU_CHUNK)
    k = np.concatenate([p[0] for p in parts]) if parts else np.zeros((0, op.length), np.float32)
    if not return_levels:
        return k
    if method != "osvd":
        return k, None
    levels = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0, np.int32)
    return k, np.asarray(OSVD_LEVELS)[levels]


# ----------------------------------------------------------------------------- maps
def _uniform_grid(frame_times_s, n_frames: int):
    """(dt, resample times or None). Non-uniform frame times are resampled linearly to the median interval."""
    t = np.asarray(frame_times_s, dtype=np.float64).ravel()
    if t.size != n_frames:
        raise InputError(f"{t.size} frame times for {n_frames} frames")
    if n_frames < 4:
        raise InputError(f"{n_frames} frames; perfusion maps need at least 4")
    steps = np.diff(t)
    if not np.all(np.isfinite(t)) or np.any(steps <= 0):
        raise InputError("frame times must be finite and strictly increasing")
    dt = float(np.median(steps))
    if np.max(np.abs(steps - dt)) <= 0.01 * dt:
        return dt, None
    grid = t[0] + dt * np.arange(int(np.floor((t[-1] - t[0]) / dt + 1e-9)) + 1)
    return dt, grid


def _resample(curves: np.ndarray, t: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Linear interpolation of curves [N, m] from times t to grid (rows)."""
    idx = np.clip(np.searchsorted(t, grid, side="right") - 1, 0, t.size - 2)
    frac = ((grid - t[idx]) / (t[idx + 1] - t[idx]))[:, None]
    return (curves[idx] * (1 - frac) + curves[idx + 1] * frac).astype(np.float32)


def perfusion_maps(
    conc,
    aif,
    frame_times_s,
    *,
    method: str = "csvd",
    mask=None,
    kh: float = KH_DEFAULT,
    density: float = DENSITY_DEFAULT,
    truncation: float | None = None,
    oi_threshold: float = OI_THRESHOLD_DEFAULT,
    tikhonov_lambda: float = 0.1,
    backend: str | Backend = "auto",
    progress: Callable[[float], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> PerfusionMaps:
    """CBF, CBV, MTT, Tmax and TTP maps from concentration curves ``conc`` [t, ...] (perfusion.md §2.4).

    ``aif`` [t] is in the units of ``conc`` (ΔHU or ΔR2*). Frame times must increase; when they are
    not uniform (> 1 % deviation) curves and AIF are resampled linearly onto a uniform grid at the
    median interval, and ``parameters["resampled"]`` says so. CBF = (k_H/ρ)·max k·6000,
    CBV = (k_H/ρ)·100·∫C/∫AIF (trapezoid over the whole series), MTT = 60·CBV/CBF,
    Tmax = Δt·argmax k (circulant indices ≥ N map to (idx − L)·Δt), TTP = time of the peak of C
    after the first frame. Voxels with non-finite input or non-positive CBF get NaN and are counted.
    """
    method = _validate_method(method)
    be = resolve(backend)
    conc = np.asarray(conc)
    if conc.ndim < 2:
        raise InputError(f"concentration must be [t, ...]; got shape {conc.shape}")
    n_frames = conc.shape[0]
    vox_shape = conc.shape[1:]
    aif = np.asarray(aif, dtype=np.float64).ravel()
    if aif.size != n_frames:
        raise InputError(f"AIF has {aif.size} samples for {n_frames} frames")
    if not (kh > 0 and density > 0):
        raise InputError(f"k_H ({kh}) and density ({density}) must be positive")
    dt, grid = _uniform_grid(frame_times_s, n_frames)
    flat = conc.reshape(n_frames, -1)
    if mask is None:
        idx = np.arange(flat.shape[1])
    else:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != vox_shape:
            raise InputError(f"mask shape {mask.shape} does not match the voxel grid {vox_shape}")
        idx = np.flatnonzero(mask)
    t_in = np.asarray(frame_times_s, dtype=np.float64).ravel()
    if grid is not None:
        aif = _resample(aif[:, None], t_in, grid)[:, 0].astype(np.float64)
    aif_auc = np.trapezoid(aif)  # ∫AIF/Δt; Δt cancels in the CBV ratio
    if not aif_auc > 0:
        raise InputError("the AIF area is not positive; check the AIF selection")
    op = _build_operator(aif, dt, method, truncation, oi_threshold, tikhonov_lambda)
    scale = kh / density
    n_vox = idx.size
    n = op.n
    trap = np.ones(n)
    trap[[0, -1]] = 0.5
    total = max(1, n_vox)
    done = [0]

    def run(b: Backend, start: int, stop: int):
        if cancel is not None and cancel():
            raise Cancelled("perfusion maps cancelled")
        xp = b.xp
        block = flat[:, idx[start:stop]].astype(np.float32, copy=False)
        if grid is not None:
            block = _resample(block, t_in, grid)
        c = xp.asarray(block)
        bad = ~xp.isfinite(c).all(axis=0)
        c = xp.where(xp.isfinite(c), c, xp.float32(0))
        dev = op.on(b)
        k, _lev = _residue_chunk(xp, dev, op, c, oi_threshold)
        peak_idx = xp.argmax(k, axis=0)
        peak = xp.take_along_axis(k, peak_idx[None, :], axis=0)[0]
        cbf = (scale * 6000.0) * peak
        cbv = (scale * 100.0 / aif_auc) * (xp.asarray(trap, dtype=xp.float32) @ c)
        tmax_idx = peak_idx.astype(xp.float32)
        if op.length > n:  # circulant: indices past N are negative delays
            tmax_idx = xp.where(peak_idx >= n, tmax_idx - op.length, tmax_idx)
        tmax = dt * tmax_idx
        ttp = dt * xp.argmax(c, axis=0).astype(xp.float32)
        invalid = bad | ~(cbf > 0)
        mtt = xp.where(invalid, xp.nan, 60.0 * cbv / xp.where(invalid, 1, cbf))
        out = xp.stack([cbf, cbv, mtt, tmax, ttp]).astype(xp.float32)
        out[:, bad] = xp.nan
        out[0, invalid] = xp.nan
        done[0] += stop - start
        if progress is not None:
            progress(done[0] / total)
        return to_numpy(out), int(to_numpy(invalid.sum()))

    parts, ran = map_chunks(run, n_vox, 4 * (n + 4 * op.length), be, cpu_chunk=_CPU_CHUNK)
    n_maps = 5
    values = np.concatenate([p[0] for p in parts], axis=1) if parts else np.zeros((n_maps, 0), np.float32)
    invalid_count = int(sum(p[1] for p in parts))
    maps = np.full((n_maps, int(np.prod(vox_shape))), np.nan, dtype=np.float32)
    maps[:, idx] = values
    maps = maps.reshape((n_maps, *vox_shape))
    params = dict(op.parameters)
    params.update(
        {
            "kh": float(kh),
            "density": float(density),
            "frame_interval_s": dt,
            "frames": int(op.n),
            "resampled": grid is not None,
            "voxels": int(n_vox),
            "ttp_origin": "first frame",
        }
    )
    return PerfusionMaps(
        cbf=maps[0],
        cbv=maps[1],
        mtt=maps[2],
        tmax=maps[3],
        ttp=maps[4],
        method=method,
        parameters=params,
        backend=report(ran),
        invalid_count=invalid_count,
    )
