"""OSIPI DCE conformance (perfusion.md §5.1): Tofts (25), extended Tofts (15), Patlak delay 0 and 5 s (9 each),
signal to concentration (5) and the Parker AIF references (both files).

Test data from the OSIPI DCE-DSC-MRI CodeCollection, Apache-2.0.
Pass rule |meas − ref| ≤ atol + rtol·|ref| (numpy.testing.assert_allclose semantics).
"""

from __future__ import annotations

import numpy as np
import pytest

from PerfusionAnalysisLib.concentration import spgr_concentration
from PerfusionAnalysisLib.dce import fit_extended_tofts, fit_patlak, fit_tofts, parker_aif
from PerfusionAnalysisLib.osipi import read_osipi_reference as osipi_rows


def _fit_each(rows, fit, curve_key, aif_key, **kw):
    """Each OSIPI case has its own noisy AIF, so cases are fitted one by one (times in s → min)."""
    return [fit(r[curve_key], r[aif_key], r["t"] / 60.0, **kw) for r in rows]


def test_osipi_tofts(backend):
    rows = osipi_rows("dce_DRO_data_tofts.csv")
    assert len(rows) == 25
    fits = _fit_each(rows, fit_tofts, "C", "ca", backend=backend)
    ktrans = np.array([f["ktrans"] for f in fits])
    ve = np.array([f["ve"] for f in fits])
    np.testing.assert_allclose(ktrans, [r["Ktrans"] for r in rows], atol=0.005, rtol=0.1)
    np.testing.assert_allclose(ve, [r["ve"] for r in rows], atol=0.05, rtol=0)


def test_osipi_extended_tofts(backend):
    rows = osipi_rows("dce_DRO_data_extended_tofts.csv")
    assert len(rows) == 15
    fits = _fit_each(rows, fit_extended_tofts, "C", "ca", backend=backend)
    np.testing.assert_allclose([f["ktrans"] for f in fits], [r["Ktrans"] for r in rows], atol=0.005, rtol=0.1)
    np.testing.assert_allclose([f["ve"] for f in fits], [r["ve"] for r in rows], atol=0.05, rtol=0)
    np.testing.assert_allclose([f["vp"] for f in fits], [r["vp"] for r in rows], atol=0.025, rtol=0)


@pytest.mark.parametrize(
    ("name", "fit_delay"), [("patlak_sd_0.02_delay_0.csv", False), ("patlak_sd_0.02_delay_5.csv", True)]
)
def test_osipi_patlak(backend, name, fit_delay):
    rows = osipi_rows(name)
    assert len(rows) == 9
    fits = _fit_each(rows, fit_patlak, "C_t", "cp_aif", fit_delay=fit_delay, backend=backend)
    np.testing.assert_allclose([f["ps"] for f in fits], [r["ps"] for r in rows], atol=0.005, rtol=0.1)
    np.testing.assert_allclose([f["vp"] for f in fits], [r["vp"] for r in rows], atol=0.025, rtol=0)
    if fit_delay:
        np.testing.assert_allclose([f["delay_s"] for f in fits], [r["arterial_delay"] for r in rows], atol=1.0, rtol=0)


def test_osipi_signal_to_concentration():
    rows = osipi_rows("SI2Conc_data.csv")
    assert len(rows) == 5
    for r in rows:
        # The reference takes the baseline from samples 1 … n−1 and is compared from the second sample on.
        conc = spgr_concentration(
            r["s"], r["T1base"], r["FA"], r["TR"], r["r1"], int(r["numbaselinepts"]), baseline_start=1
        )
        np.testing.assert_allclose(conc[1:], r["conc"][1:], atol=1e-5, rtol=1e-5, err_msg=r["label"])


def test_osipi_parker_reference():
    rows = osipi_rows("ParkerAIF_ref.csv")
    assert len(rows) > 1000
    t = np.array([r["time"] for r in rows])
    assert not any(r["delay"] for r in rows)
    np.testing.assert_allclose(parker_aif(t), [r["Cb"] for r in rows], atol=1e-4, rtol=0.01)


def test_osipi_parker_reference_with_delay():
    rows = osipi_rows("ParkerAIF_ref_with_delay.csv")
    delays_s = sorted({r["delay"] for r in rows})
    assert len(delays_s) == 9
    for delay in delays_s:
        sel = [r for r in rows if r["delay"] == delay]
        t = np.array([r["time"] for r in sel])
        np.testing.assert_allclose(parker_aif(t, delay_min=delay / 60.0), [r["Cb"] for r in sel], atol=0.1, rtol=0.1)


def test_parker_hand_values_and_parameters():
    # perfusion.md §5.1/§2.6: C_b(0.1) 2.7526, C_b(0.17046) 6.0693, C_b(1) 0.8872, C_b(5) 0.4522 mM; C_b(0) 0.0804.
    np.testing.assert_allclose(
        parker_aif([0.1, 0.17046, 1.0, 5.0, 0.0]), [2.7526, 6.0693, 0.8872, 0.4522, 0.0804], atol=1e-4
    )
    params = osipi_rows("ParkerAIF.csv")[0]
    from PerfusionAnalysisLib.dce import PARKER

    for key, value in PARKER.items():
        assert params[key] == pytest.approx(value), key
    # Plasma only with an explicit haematocrit.
    assert parker_aif([1.0], hct=0.45)[0] == pytest.approx(0.8872 / 0.55, abs=1e-3)
