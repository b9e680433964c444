"""Signal to concentration (perfusion.md §2.1) and the SPGR round trip P8 (§5.2)."""

from __future__ import annotations

import numpy as np
import pytest

from PerfusionAnalysisLib.concentration import (
    bolus_arrival_frame,
    ct_concentration,
    dsc_baseline_frames,
    dsc_concentration,
    spgr_concentration,
    spgr_signal,
)
from quantgpu.errors import InputError


def test_dsc_reference_check_value():
    # S0 = 1000, S = 600, TE = 30 ms → −ln(0.6)/0.03 = 17.03 s⁻¹
    signal = np.array([1000.0, 1000.0, 1000.0, 600.0])
    conc = dsc_concentration(signal, 0.030, n_baseline=3)
    assert conc[3] == pytest.approx(-np.log(0.6) / 0.03, rel=1e-6)
    assert conc[3] == pytest.approx(17.03, abs=0.005)
    np.testing.assert_array_equal(conc[:3], 0.0)


def test_dsc_baseline_search_stops_at_bolus():
    signal = np.r_[np.full(10, 500.0), 400.0, 300.0, 350.0, np.full(10, 480.0)]
    assert dsc_baseline_frames(signal) == 10
    assert dsc_baseline_frames(np.full(30, 500.0)) == 12  # capped at 12 frames
    conc = dsc_concentration(np.stack([signal, 2 * signal], axis=1), 0.025)
    np.testing.assert_allclose(conc[10], -np.log(400 / 500) / 0.025, rtol=1e-6)
    np.testing.assert_allclose(conc[:, 0], conc[:, 1], rtol=1e-6)  # scale free


def test_dsc_invalid_signal_is_nan_not_inf():
    signal = np.array([[100.0, 0.0], [100.0, 0.0], [100.0, 0.0], [0.0, 0.0], [-5.0, 3.0]])
    conc = dsc_concentration(signal, 0.03, n_baseline=3)
    assert np.isnan(conc[3, 0]) and np.isnan(conc[4, 0]) and np.isnan(conc[:, 1]).all()
    assert not np.isinf(conc).any()
    with pytest.raises(InputError):
        dsc_concentration(signal, 0.0)


@pytest.mark.parametrize("flip", [5.0, 15.0, 40.0])
@pytest.mark.parametrize("tr", [0.002, 0.005])
@pytest.mark.parametrize("t1", [0.3, 1.0, 2.0])
def test_p8_spgr_round_trip(flip, tr, t1):
    conc = np.r_[0.0, 0.0, 0.0, np.linspace(0.01, 5.0, 20)]
    signal = spgr_signal(conc, t1, flip, tr, 4.5, m0=1234.0)
    back = spgr_concentration(signal, t1, flip, tr, 4.5, n_baseline=3)
    np.testing.assert_allclose(back, conc, atol=1e-10, rtol=0)


def test_spgr_signal_formula_by_hand():
    # S = M0 sinα (1 − E1)/(1 − cosα E1), E1 = exp(−TR/T1): α 90°, TR 1 s, T1 1 s → 1 − e⁻¹.
    assert spgr_signal(0.0, 1.0, 90.0, 1.0, 4.0) == pytest.approx(1 - np.exp(-1.0))


def test_spgr_impossible_signal_is_nan_and_hct():
    signal = np.array([[10.0], [10.0], [1e6], [12.0]])
    conc = spgr_concentration(signal, 1.0, 15.0, 0.005, 4.0, n_baseline=2)
    assert np.isnan(conc[2, 0]) and np.isfinite(conc[3, 0])
    plasma = spgr_concentration(signal, 1.0, 15.0, 0.005, 4.0, n_baseline=2, hct=0.45)
    assert plasma[3, 0] == pytest.approx(conc[3, 0] / 0.55)
    with pytest.raises(InputError):
        spgr_concentration(signal, 1.0, 15.0, 0.005, 4.0, n_baseline=5)


def test_bolus_arrival_by_hand():
    # Moving mean of frames 4..6 = (40 + 40 + 45)/3 > 40·1.01, first frame above 40.4 in that window: 6.
    mean = np.array([40.0, 40, 40, 40, 40, 40, 45, 60, 80, 70, 50])
    assert bolus_arrival_frame(mean) == 6
    assert bolus_arrival_frame(np.full(8, 40.0)) == 8  # never rises


def test_ct_concentration_auto_and_given_baseline():
    rng = np.random.default_rng(3)
    base = rng.uniform(30, 45, size=(4, 5))
    bolus = np.r_[np.zeros(6), 5, 20, 40, 30, 15, 8]
    frames = (base[None] + bolus[:, None, None]).astype(np.float32)
    original = frames.copy()
    conc, n = ct_concentration(frames)
    assert n == 6
    np.testing.assert_allclose(conc, np.broadcast_to(bolus[:, None, None], frames.shape), atol=1e-4)
    np.testing.assert_array_equal(frames, original)
    conc2, n2 = ct_concentration(frames, baseline=3)
    assert n2 == 3 and conc2.dtype == np.float32
    with pytest.raises(InputError):
        ct_concentration(frames, baseline=0)
