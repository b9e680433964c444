"""Digital CT perfusion phantom: truth checked with formulas independent of the generator.

CBV by the indicator-dilution area ratio (perfusion.md §2.4: CBV = (k_H/ρ)·100·∫C/∫AIF), the
§5.2 gamma-variate numbers (sampled peak 4.459 at 15 s for A = 1; continuous peak 4.5³·e⁻³ at 14.5 s),
the §2.1 tissue/vessel HU rules, and region sizes counted by hand from the layout.
"""

from __future__ import annotations

import numpy as np
import pytest

from PerfusionAnalysisLib.phantom import GRID_DELAY_S, GRID_MTT_S, make_phantom, sample_volume
from quantgpu.errors import InputError

SCALE = 0.73 / 1.04


def area_cbv(p):
    conc = p.frames - p.frames[0]
    return SCALE * 100.0 * np.trapezoid(conc, axis=0) / np.trapezoid(p.aif_curve)


def test_deterministic_including_noise():
    a, b = make_phantom(noise_hu=5.0, seed=3), make_phantom(noise_hu=5.0, seed=3)
    np.testing.assert_array_equal(a.frames, b.frames)
    assert not np.array_equal(a.frames, make_phantom(noise_hu=5.0, seed=4).frames)


@pytest.mark.parametrize("layout", ["stroke", "grid"])
def test_cbv_truth_by_area_ratio(layout):
    p = make_phantom(layout)
    m = p.tissue_mask & (p.truth["mtt"] <= 8.0)
    rel = np.abs(area_cbv(p)[m] / p.truth["cbv"][m] - 1.0)
    assert rel.max() < 0.02
    assert np.allclose(p.truth["cbv"][m], p.truth["cbf"][m] * p.truth["mtt"][m] / 60.0)


def test_aif_samples_follow_reference_gamma_variate():
    p = make_phantom(aif_peak_hu=600.0)
    continuous_peak = 4.5**3 * np.exp(-3.0)  # A=1, α=3, β=1.5 at t0 + αβ
    assert np.argmax(p.aif_curve) == 15  # Δt = 1 s: 15 s
    assert p.aif_curve[15] == pytest.approx(600.0 * 4.459 / continuous_peak, rel=1e-3)
    np.testing.assert_allclose(p.frames[:, p.aif_mask].mean(axis=1) - 40.0, p.aif_curve, atol=1e-3)


def test_stroke_layout_regions_and_volumes():
    p = make_phantom()
    # 64 x 64 px, 4 stroke slices; each zone is 16 rows x 24 columns; voxel 5 x 2 x 2 = 20 mm³
    zone_voxels = 16 * 24 * 4
    for label in (1, 2, 3):
        assert np.count_nonzero(p.labels == label) == zone_voxels
    ml = zone_voxels * 20 / 1000  # 30.72 mL
    assert p.truth_volumes_ml["core"] == pytest.approx(ml)
    assert p.truth_volumes_ml["tmax_gt_6s"] == pytest.approx(3 * ml)
    assert p.truth_volumes_ml["tmax_gt_10s"] == pytest.approx(2 * ml)
    assert p.truth_volumes_ml["tmax_gt_4s"] == pytest.approx(3 * ml)
    # every lesion voxel lies in the patient-left half (+i with identity directions)
    assert not p.labels[:, :, :32].any()
    assert p.truth["cbf"][p.labels == 1].max() / 60.0 < 0.30  # core by the rCBF < 30 % rule


def test_tissue_and_vessels_follow_hu_rules():
    p = make_phantom()
    baseline = p.frames[0]
    mip = p.frames.max(axis=0)
    assert np.all((baseline[p.tissue_mask] >= 30) & (baseline[p.tissue_mask] <= 100))
    assert mip[p.tissue_mask].max() < 150.0
    assert mip[p.aif_mask].min() > 150.0 and mip[p.vof_mask].min() > 150.0
    assert not (p.tissue_mask & (p.aif_mask | p.vof_mask)).any()


def test_vof_area_smaller_than_aif():
    p = make_phantom()
    vof = p.frames[:, p.vof_mask].mean(axis=1) - 40.0
    ratio = np.trapezoid(vof) / np.trapezoid(p.aif_curve)
    assert 0.93 < ratio < 0.96  # 0.95 by construction, minus the part past the window


def test_tissue_curve_starts_after_bolus_and_delay():
    p = make_phantom()
    core = p.frames[:, p.labels == 1].mean(axis=1) - 40.0
    normal = p.frames[:, 1, 10, 10] - 40.0
    assert np.all(normal[:11] == 0) and normal[11] > 0  # AIF t0 = 10 s, no delay
    assert np.all(core[:22] == 0) and core[22] > 0  # delay 11 s


def test_grid_layout_tiles():
    p = make_phantom("grid", grid_cbv=(1.0, 5.0))
    assert p.frames.shape[1] == 3
    mtts = np.unique(p.truth["mtt"][np.isfinite(p.truth["mtt"])])
    np.testing.assert_allclose(sorted(GRID_MTT_S), mtts, rtol=1e-6)
    delays = np.unique(p.truth["delay"][np.isfinite(p.truth["delay"])])
    np.testing.assert_allclose(GRID_DELAY_S, delays)
    cbf = p.truth["cbf"][p.tissue_mask]
    assert cbf.min() == pytest.approx(2.5) and cbf.max() == pytest.approx(87.46, rel=1e-3)  # 60·CBV/MTT
    assert np.count_nonzero(p.tissue_mask) == 2 * 49 * 64


def test_sample_volume_is_mip():
    v = sample_volume()
    p = make_phantom()
    np.testing.assert_array_equal(v.array, p.frames.max(axis=0))
    assert v.modality == "CT" and v.spacing == (5.0, 2.0, 2.0)


def test_bad_arguments():
    with pytest.raises(InputError):
        make_phantom("checkerboard")
    with pytest.raises(InputError):
        make_phantom(residue_kind="gaussian")
    with pytest.raises(InputError):
        make_phantom("grid", shape_ji=(40, 40))
