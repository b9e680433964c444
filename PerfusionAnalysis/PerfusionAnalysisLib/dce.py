"""DCE-MRI pharmacokinetic models: Parker AIF, Tofts, extended Tofts and Patlak (perfusion.md §2.6).

Time is in minutes, concentrations in mM, Ktrans and kep in /min, ve and vp dimensionless.
Fits are vectorised over voxels: a linear least-squares start (Murase 2004 linearisation, compared
with a coarse kep grid whose basis curves are shared by all voxels), then Levenberg–Marquardt on
(linear parameters, log kep) for all voxels at once. The convolution with exp(−kep·t) is exact for a
piecewise-linear C_p (recursive, O(N) per voxel). Optional arterial delay: the plasma curve is
shifted later by a grid of delays and the delay with the least residual is kept.
"""

from __future__ import annotations

import importlib

import numpy as np

from quantgpu.backend import Backend, report, resolve, to_numpy
from quantgpu.errors import InputError

# Parker 2006 (MRM 56:993) population blood AIF; C_b in mM, t in min (perfusion.md §2.6).
PARKER = {
    "A1": 0.809,
    "sigma1": 0.0563,
    "T1": 0.17046,
    "A2": 0.330,
    "sigma2": 0.132,
    "T2": 0.365,
    "alpha": 1.050,
    "beta": 0.1685,
    "s": 38.078,
    "tau": 0.483,
}
KEP_BOUNDS = (1e-3, 30.0)  # /min, limits of the log-kep search
_LM_ITERATIONS = 40


def parker_aif(t_min, delay_min: float = 0.0, hct: float | None = None) -> np.ndarray:
    """Parker population AIF at times ``t_min`` shifted by ``delay_min`` (zero before the delay).

    Returns blood concentration C_b (mM). Plasma C_p = C_b/(1 − Hct) only when ``hct`` is given.
    """
    t = np.asarray(t_min, dtype=np.float64)
    p = PARKER
    tt = t - float(delay_min)
    gauss = sum(
        p[f"A{i}"]
        / (p[f"sigma{i}"] * np.sqrt(2 * np.pi))
        * np.exp(-((tt - p[f"T{i}"]) ** 2) / (2 * p[f"sigma{i}"] ** 2))
        for i in (1, 2)
    )
    cb = gauss + p["alpha"] * np.exp(-p["beta"] * tt) / (1 + np.exp(-p["s"] * (tt - p["tau"])))
    cb = np.where(tt >= 0, cb, 0.0) if delay_min > 0 else cb
    if hct is not None:
        if not 0 <= hct < 1:
            raise InputError(f"haematocrit {hct} must be in [0, 1)")
        cb = cb / (1 - hct)
    return cb


# ----------------------------------------------------------------------------- convolution
def _weights(x):
    """Piecewise-linear exact-convolution weights g0(x), g1(x), x = kep·h (series near 0)."""
    xp = _xp_of(x)
    small = x < 1e-3
    xs = xp.where(small, 1.0, x)
    one_minus_e = -xp.expm1(-xs)
    e = 1.0 - one_minus_e
    g0 = xp.where(small, 0.5 - x / 3 + x * x / 8 - x**3 / 30, one_minus_e / xs**2 - e / xs)
    g1 = xp.where(small, 0.5 - x / 6 + x * x / 24 - x**3 / 120, (xs - one_minus_e) / xs**2)
    return xp.exp(-x), g0, g1


def _xp_of(a):
    """NumPy, or CuPy for a CuPy array (imported only when one is passed)."""
    if type(a).__module__.split(".")[0] == "cupy":
        return importlib.import_module("cupy")
    return np


def exp_convolution(cp, t_min, kep):
    """F(t) = ∫₀ᵗ C_p(τ) e^(−kep(t−τ)) dτ for piecewise-linear C_p, exact; kep [m] → F [m, N].

    Recursion over intervals h_i: F_i = e^(−kep h) F_(i−1) + h (g0 C_p,(i−1) + g1 C_p,i).
    """
    xp = _xp_of(kep)
    kep = xp.atleast_1d(kep)
    cp = xp.asarray(cp, dtype=xp.float64)
    t = np.asarray(t_min, dtype=np.float64)
    steps = np.diff(t)
    out = xp.zeros((kep.size, t.size), dtype=xp.float64)
    uniform = np.allclose(steps, steps[0], rtol=1e-9, atol=0)
    if uniform:
        e, g0, g1 = _weights(kep * steps[0])
        a0, a1 = steps[0] * g0, steps[0] * g1
    f = xp.zeros(kep.size, dtype=xp.float64)
    for i in range(1, t.size):
        if not uniform:
            e, g0, g1 = _weights(kep * steps[i - 1])
            a0, a1 = steps[i - 1] * g0, steps[i - 1] * g1
        f = e * f + a0 * cp[i - 1] + a1 * cp[i]
        out[:, i] = f
    return out


def _cumtrapz(y, t):
    """Cumulative trapezoid along the last axis, starting at 0."""
    xp = _xp_of(y)
    dt = xp.asarray(np.diff(t))
    inc = 0.5 * (y[..., 1:] + y[..., :-1]) * dt
    return xp.concatenate([xp.zeros((*y.shape[:-1], 1)), xp.cumsum(inc, axis=-1)], axis=-1)


def _shift(cp, t, delay):
    """C_p delayed by ``delay`` (min), linear interpolation, zero before the first sample."""
    return np.interp(t - delay, t, cp, left=0.0)


# ----------------------------------------------------------------------------- inputs
def _prepare(ct, cp, t_min, be: Backend):
    ct = np.asarray(ct, dtype=np.float64)
    single = ct.ndim == 1
    ct2 = ct[None, :] if single else ct
    t = np.asarray(t_min, dtype=np.float64).ravel()
    cp = np.asarray(cp, dtype=np.float64).ravel()
    if ct2.ndim != 2 or ct2.shape[1] != t.size or cp.size != t.size:
        raise InputError(f"tissue curves {ct.shape}, plasma curve {cp.shape} and times {t.shape} do not match")
    if t.size < 4 or np.any(np.diff(t) <= 0) or not np.all(np.isfinite(t)):
        raise InputError("DCE times must be >= 4 finite, strictly increasing values (minutes)")
    if not np.all(np.isfinite(cp)):
        raise InputError("the plasma curve contains non-finite values")
    bad = ~np.all(np.isfinite(ct2), axis=1)
    ct2 = np.where(np.isfinite(ct2), ct2, 0.0)
    return be.xp.asarray(ct2), cp, t, single, bad


def _finish(result: dict, single: bool, bad, be: Backend) -> dict:
    out = {}
    for key, value in result.items():
        v = to_numpy(value).astype(np.float64)
        if v.ndim == 1 and bad.size == v.size:
            v = np.where(bad, np.nan, v)
        out[key] = v[0] if single else v
    out["backend"] = report(be)
    return out


def _solve_small(a, b):
    """Batched solve of [m, p, p] systems; singular systems give zeros."""
    xp = _xp_of(a)
    p = a.shape[-1]
    reg = 1e-12 * (xp.abs(xp.einsum("mii->m", a))[:, None, None] + 1e-30) * xp.eye(p)
    return xp.linalg.solve(a + reg, b[..., None])[..., 0]


# ----------------------------------------------------------------------------- Tofts family
def _tofts_model(theta, cp, t, extended: bool):
    """Model and Jacobian for theta = (Ktrans, log kep[, vp]); returns C [m, N], J [m, N, p]."""
    xp = _xp_of(theta)
    ktrans, logk = theta[:, 0], theta[:, 1]
    eps = 1e-4
    f = exp_convolution(cp, t, xp.exp(logk))
    df = (exp_convolution(cp, t, xp.exp(logk + eps)) - exp_convolution(cp, t, xp.exp(logk - eps))) / (2 * eps)
    model = ktrans[:, None] * f
    cols = [f, ktrans[:, None] * df]
    if extended:
        cp_d = xp.asarray(cp)
        model = model + theta[:, 2:3] * cp_d[None, :]
        cols.append(xp.broadcast_to(cp_d, f.shape))
    return model, xp.stack(cols, axis=-1)


def _tofts_cost(theta, ct, cp, t, extended):
    xp = _xp_of(theta)
    f = exp_convolution(cp, t, xp.exp(theta[:, 1]))
    model = theta[:, 0:1] * f
    if extended:
        model = model + theta[:, 2:3] * xp.asarray(cp)[None, :]
    return ((model - ct) ** 2).sum(axis=1)


def _murase_start(ct, cp, t, extended: bool):
    """Linear least squares of C = Ktrans∫Cp − kep∫C (+ vp·Cp + kep·vp∫Cp) per voxel (Murase 2004)."""
    xp = _xp_of(ct)
    icp = xp.asarray(_cumtrapz(cp, t))
    ict = _cumtrapz(ct, t)
    cols = [xp.broadcast_to(icp, ct.shape), -ict]
    if extended:
        cols.append(xp.broadcast_to(xp.asarray(cp), ct.shape))
    x = xp.stack(cols, axis=-1)  # [m, N, p]
    b = _solve_small(xp.einsum("mnp,mnq->mpq", x, x), xp.einsum("mnp,mn->mp", x, ct))
    kep = xp.clip(b[:, 1], *KEP_BOUNDS)
    if extended:
        vp = b[:, 2]
        return xp.stack([b[:, 0] - kep * vp, xp.log(kep), vp], axis=1)
    return xp.stack([b[:, 0], xp.log(kep)], axis=1)


def _grid_start(ct, cp, t, extended: bool):
    """Best of a shared log-kep grid, with the linear parameters solved per voxel."""
    xp = _xp_of(ct)
    grid = np.geomspace(KEP_BOUNDS[0] * 10, KEP_BOUNDS[1] / 2, 48)
    basis = exp_convolution(cp, t, xp.asarray(grid))  # [G, N], shared by all voxels
    cp_d = xp.asarray(cp)
    best_cost = xp.full(ct.shape[0], xp.inf)
    best = xp.zeros((ct.shape[0], 3 if extended else 2))
    for g in range(grid.size):
        x = xp.stack([basis[g], cp_d], axis=1) if extended else basis[g][:, None]
        coef = xp.linalg.lstsq(x, ct.T, rcond=None)[0]  # [p, m]
        cost = ((x @ coef - ct.T) ** 2).sum(axis=0)
        better = cost < best_cost
        best_cost = xp.where(better, cost, best_cost)
        best[better, 0] = coef[0, better]
        best[better, 1] = np.log(grid[g])
        if extended:
            best[better, 2] = coef[1, better]
    return best


def _levenberg_marquardt(theta, ct, cp, t, extended: bool):
    xp = _xp_of(theta)
    lam = xp.full(theta.shape[0], 1e-3)
    cost = _tofts_cost(theta, ct, cp, t, extended)
    lo, hi = np.log(KEP_BOUNDS[0]), np.log(KEP_BOUNDS[1])
    for _ in range(_LM_ITERATIONS):
        model, jac = _tofts_model(theta, cp, t, extended)
        jtj = xp.einsum("mnp,mnq->mpq", jac, jac)
        jtr = xp.einsum("mnp,mn->mp", jac, ct - model)
        diag = xp.einsum("mii->mi", jtj)
        damped = jtj + lam[:, None, None] * (diag[:, :, None] * xp.eye(theta.shape[1]))
        trial = theta + _solve_small(damped, jtr)
        trial[:, 1] = xp.clip(trial[:, 1], lo, hi)
        trial_cost = _tofts_cost(trial, ct, cp, t, extended)
        better = trial_cost < cost
        theta = xp.where(better[:, None], trial, theta)
        rel = xp.where(better, (cost - trial_cost) / xp.maximum(cost, 1e-300), 0.0)
        cost = xp.where(better, trial_cost, cost)
        lam = xp.where(better, lam / 3, lam * 4)
        if bool(xp.all((rel < 1e-10) | (lam > 1e8))):
            break
    return theta, cost


def _fit_tofts_family(ct, cp, t_min, extended, fit_delay, max_delay_min, backend):
    be = resolve(backend)
    ct2, cp, t, single, bad = _prepare(ct, cp, t_min, be)
    delays = [0.0]
    if fit_delay:
        step = min(float(np.median(np.diff(t))), 0.5 / 60)
        delays = list(np.arange(0.0, max_delay_min + 1e-12, step))
    xp = be.xp
    best = None
    for d in delays:  # coarse delay search on the linear start's residual
        cp_d = _shift(cp, t, d)
        theta = _murase_start(ct2, cp_d, t, extended)
        grid = _grid_start(ct2, cp_d, t, extended)
        c_m = _tofts_cost(theta, ct2, cp_d, t, extended)
        c_g = _tofts_cost(grid, ct2, cp_d, t, extended)
        theta = xp.where((c_g < c_m)[:, None], grid, theta)
        cost = xp.minimum(c_m, c_g)
        if best is None:
            best = [theta, cost, xp.zeros(theta.shape[0])]
        else:
            better = cost < best[1]
            best = [
                xp.where(better[:, None], theta, best[0]),
                xp.where(better, cost, best[1]),
                xp.where(better, d, best[2]),
            ]
    theta, _, delay = best
    if fit_delay:  # refine each delay group separately
        final = xp.zeros_like(theta)
        for d in np.unique(to_numpy(delay)):
            sel = delay == d
            final[sel] = _levenberg_marquardt(theta[sel], ct2[sel], _shift(cp, t, d), t, extended)[0]
        theta = final
    else:
        theta = _levenberg_marquardt(theta, ct2, cp, t, extended)[0]
    kep = xp.exp(theta[:, 1])
    result = {"ktrans": theta[:, 0], "kep": kep, "ve": theta[:, 0] / kep}
    if extended:
        result["vp"] = theta[:, 2]
    if fit_delay:
        result["delay_min"] = delay
        result["delay_s"] = delay * 60.0
    return _finish(result, single, bad, be)


def fit_tofts(
    ct, cp, t_min, *, fit_delay: bool = False, max_delay_min: float = 0.5, backend: str | Backend = "auto"
) -> dict:
    """Tofts fit C_t = Ktrans ∫C_p e^(−kep(t−τ))dτ; ``ct`` [n_vox, N] or [N]. Returns ktrans, ve, kep."""
    return _fit_tofts_family(ct, cp, t_min, False, fit_delay, max_delay_min, backend)


def fit_extended_tofts(
    ct, cp, t_min, *, fit_delay: bool = False, max_delay_min: float = 0.5, backend: str | Backend = "auto"
) -> dict:
    """Extended Tofts fit (Tofts + vp·C_p). Returns ktrans, ve, vp, kep."""
    return _fit_tofts_family(ct, cp, t_min, True, fit_delay, max_delay_min, backend)


def fit_patlak(
    ct, cp, t_min, *, fit_delay: bool = False, max_delay_min: float = 0.5, backend: str | Backend = "auto"
) -> dict:
    """Patlak C_t = vp·C_p + Ktrans∫C_p by linear least squares (Ktrans is the PS product here).

    With ``fit_delay`` the plasma curve is shifted by 0 … ``max_delay_min`` in steps of
    min(Δt, 0.5 s) and the delay with the least residual is kept (``delay_s``).
    """
    be = resolve(backend)
    ct2, cp, t, single, bad = _prepare(ct, cp, t_min, be)
    xp = be.xp
    delays = [0.0]
    if fit_delay:
        step = min(float(np.median(np.diff(t))), 0.5 / 60)
        delays = list(np.arange(0.0, max_delay_min + 1e-12, step))
    best_cost = xp.full(ct2.shape[0], xp.inf)
    best = xp.zeros((ct2.shape[0], 3))
    for d in delays:
        cp_d = _shift(cp, t, d)
        x = xp.asarray(np.stack([cp_d, _cumtrapz(cp_d, t)], axis=1))
        coef = xp.linalg.lstsq(x, ct2.T, rcond=None)[0]
        cost = ((x @ coef - ct2.T) ** 2).sum(axis=0)
        better = cost < best_cost
        best_cost = xp.where(better, cost, best_cost)
        best = xp.where(better[:, None], xp.stack([coef[0], coef[1], xp.full(coef.shape[1], d)], axis=1), best)
    result = {"vp": best[:, 0], "ktrans": best[:, 1], "ps": best[:, 1]}
    if fit_delay:
        result["delay_min"] = best[:, 2]
        result["delay_s"] = best[:, 2] * 60.0
    return _finish(result, single, bad, be)
