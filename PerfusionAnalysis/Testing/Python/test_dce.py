"""DCE models on synthetic curves built here by brute-force numerical convolution (perfusion.md §2.6),
and the breast kinetics rules."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import fftconvolve

from PerfusionAnalysisLib.dce import exp_convolution, fit_extended_tofts, fit_patlak, fit_tofts, parker_aif
from PerfusionAnalysisLib.semiquant import FAST, MEDIUM, PERSISTENT, PLATEAU, SLOW, WASHOUT, breast_kinetics
from quantgpu.errors import InputError

FINE = 1e-4  # min


def brute_force_tofts(ktrans, kep, vp, t, delay=0.0):
    """C_t on sample times t by trapezoid convolution on a 1e-4 min grid of the Parker plasma curve."""
    fine = np.arange(0.0, t[-1] + FINE / 2, FINE)
    cp = parker_aif(fine, delay_min=delay, hct=0.45)
    kernel = np.exp(-kep * fine)
    conv = (fftconvolve(cp, kernel)[: fine.size] - 0.5 * cp * kernel[0] - 0.5 * cp[0] * kernel[: fine.size]) * FINE
    return np.interp(t, fine, ktrans * conv + vp * cp)


T = np.arange(0.0, 6.0, 5.0 / 60.0)  # 5 s sampling, 6 min
CP = parker_aif(T, hct=0.45)


def test_exp_convolution_is_exact_for_piecewise_linear_input():
    t = np.array([0.0, 0.3, 0.5, 1.0, 1.7, 2.0])  # non-uniform on purpose
    cp = np.array([0.0, 2.0, 5.0, 1.0, 0.5, 0.4])
    kep = np.array([0.0, 1e-5, 0.7, 3.0])
    fine = np.arange(0.0, 2.0 + 1e-7, 1e-5)
    cp_fine = np.interp(fine, t, cp)
    expected = []
    for k in kep:
        vals = []
        for ti in t:
            sel = fine <= ti + 1e-9
            vals.append(np.trapezoid(cp_fine[sel] * np.exp(-k * (ti - fine[sel])), fine[sel]))
        expected.append(vals)
    np.testing.assert_allclose(exp_convolution(cp, t, kep), expected, atol=1e-8)


def test_tofts_recovers_parameters_vectorised(backend):
    ktrans = np.array([0.05, 0.1, 0.3, 0.6])
    ve = np.array([0.1, 0.3, 0.5, 0.4])
    ct = np.stack([brute_force_tofts(k, k / v, 0.0, T) for k, v in zip(ktrans, ve)])
    fit = fit_tofts(ct, CP, T, backend=backend)
    np.testing.assert_allclose(fit["ktrans"], ktrans, rtol=0.01)
    np.testing.assert_allclose(fit["ve"], ve, rtol=0.01)
    np.testing.assert_allclose(fit["kep"], ktrans / ve, rtol=0.01)


def test_extended_tofts_recovers_parameters(backend):
    params = [(0.1, 0.2, 0.05), (0.25, 0.4, 0.02), (0.02, 0.1, 0.1)]
    ct = np.stack([brute_force_tofts(k, k / v, vp, T) for k, v, vp in params])
    fit = fit_extended_tofts(ct, CP, T, backend=backend)
    p = np.array(params)
    np.testing.assert_allclose(fit["ktrans"], p[:, 0], rtol=0.02)
    np.testing.assert_allclose(fit["ve"], p[:, 1], rtol=0.02)
    np.testing.assert_allclose(fit["vp"], p[:, 2], atol=2e-3)


def test_tofts_fits_arterial_delay(backend):
    delay = 0.15  # min (9 s)
    ct = brute_force_tofts(0.2, 0.5, 0.0, T, delay=delay)
    fit = fit_tofts(ct, CP, T, fit_delay=True, max_delay_min=0.3, backend=backend)
    assert abs(fit["delay_s"] - 9.0) <= 1.0
    assert fit["ktrans"] == pytest.approx(0.2, rel=0.05)
    assert fit["ve"] == pytest.approx(0.2 / 0.5, rel=0.05)


def test_patlak_exact_and_invalid_voxels(backend):
    icp = np.concatenate([[0.0], np.cumsum(0.5 * (CP[1:] + CP[:-1]) * np.diff(T))])
    ct = np.stack([0.05 * CP + 0.02 * icp, 0.1 * CP + 0.0 * icp, 0.05 * CP + 0.01 * icp])
    ct[2, 4] = np.nan
    fit = fit_patlak(ct, CP, T, backend=backend)
    np.testing.assert_allclose(fit["vp"][:2], [0.05, 0.1], atol=1e-9)
    np.testing.assert_allclose(fit["ps"][:2], [0.02, 0.0], atol=1e-9)
    assert np.isnan(fit["vp"][2]) and np.isnan(fit["ps"][2])
    with pytest.raises(InputError):
        fit_patlak(ct[:, :-1], CP, T)


def test_breast_kinetics_rules_by_hand():
    times = np.array([0.0, 60.0, 120.0, 360.0])
    # columns: washout, persistent, plateau, non-enhancing
    signal = np.array(
        [
            [100.0, 100.0, 100.0, 100.0],
            [150.0, 130.0, 140.0, 110.0],
            [250.0, 180.0, 200.0, 120.0],
            [200.0, 220.0, 205.0, 125.0],
        ]
    )
    k = breast_kinetics(signal, times, n_baseline=1, early_s=120.0)
    assert k.early_frame == 2 and k.late_frame == 3
    np.testing.assert_allclose(k.initial_enhancement_pct, [150.0, 80.0, 100.0, 20.0])
    assert k.ser[0] == pytest.approx(150.0 / 100.0)
    np.testing.assert_allclose(k.delayed_change_pct[:3], [-20.0, 100 * 40 / 180, 2.5])
    assert k.curve_type.tolist() == [WASHOUT, PERSISTENT, PLATEAU, 0]
    assert k.initial_phase.tolist() == [FAST, MEDIUM, MEDIUM, SLOW]
    assert np.isnan(k.ser[3])
