"""Automatic AIF/VOF, partial-volume scaling and the CT tissue mask (perfusion.md §2.1, §2.2)."""

from __future__ import annotations

import numpy as np
import pytest

from PerfusionAnalysisLib.aif import auto_aif, auto_vof, partial_volume_scale, tissue_mask_ct
from quantgpu.errors import InputError

TIMES = np.arange(40) * 1.5


def gamma(t, t0, beta, scale):
    x = np.clip(t - t0, 0, None)
    return scale * x**3 * np.exp(-x / beta)


def phantom():
    """20 × 20 voxels: 30 arteries (early narrow bolus, partial-volume scaled), 20 veins (later,
    broader, highest area) and tissue (late, low). Returns conc [t, 20, 20] and the two label masks."""
    rng = np.random.default_rng(11)
    conc = np.empty((TIMES.size, 20, 20))
    arteries = np.zeros((20, 20), bool)
    veins = np.zeros((20, 20), bool)
    arteries.flat[rng.choice(400, 50, replace=False)[:30]] = True
    veins.flat[np.flatnonzero(~arteries)[rng.choice(370, 20, replace=False)]] = True
    for j in range(20):
        for i in range(20):
            if arteries[j, i]:
                curve = gamma(TIMES, 10, 1.5, rng.uniform(0.6, 1.0))
            elif veins[j, i]:
                curve = gamma(TIMES, 16, 2.5, rng.uniform(0.45, 0.55))
            else:
                curve = gamma(TIMES, 13, 3.0, rng.uniform(0.005, 0.02))
            conc[:, j, i] = curve + rng.normal(0, 0.05, TIMES.size)
    return conc, arteries, veins


def test_auto_aif_picks_arteries():
    conc, arteries, _ = phantom()
    res = auto_aif(conc, TIMES, n_voxels=6)
    assert 4 <= res.voxel_count <= 6 and res.mask.shape == (20, 20)
    assert res.mask.sum() == res.voxel_count
    assert np.all(arteries[res.mask])
    assert res.peak_time_s == pytest.approx(10 + 3 * 1.5, abs=1.5)  # gamma peak at t0 + αβ
    np.testing.assert_allclose(res.curve, conc[:, res.mask].mean(axis=1), rtol=1e-5)


def test_auto_aif_respects_mask():
    conc, arteries, _ = phantom()
    search = ~arteries
    res = auto_aif(conc, TIMES, mask=search, n_voxels=4)
    assert not np.any(res.mask & arteries)
    with pytest.raises(InputError):
        auto_aif(conc, TIMES, mask=np.zeros((20, 20), bool))


def test_auto_vof_picks_veins():
    conc, _, veins = phantom()
    res = auto_vof(conc, TIMES, n_voxels=5)
    assert res.voxel_count == 5
    assert np.all(veins[res.mask])
    assert res.peak_time_s > 16


def test_partial_volume_scaling_only_when_vof_larger():
    aif = gamma(TIMES, 10, 1.5, 1.0)
    vof = gamma(TIMES, 16, 2.5, 0.5)
    ratio = np.trapezoid(vof, TIMES) / np.trapezoid(aif, TIMES)
    assert ratio > 1
    scaled, factor = partial_volume_scale(aif, vof, TIMES)
    assert factor == pytest.approx(ratio)
    np.testing.assert_allclose(scaled, aif * ratio)
    same, none = partial_volume_scale(aif, vof / (2 * ratio), TIMES)
    assert none is None
    np.testing.assert_array_equal(same, aif)
    with pytest.raises(InputError):
        partial_volume_scale(aif, vof[:-1], TIMES)


def test_tissue_mask_excludes_air_csf_bone_and_vessels():
    frames = np.zeros((12, 1, 6), dtype=np.float32)
    baseline = np.array([-1000.0, 10.0, 40.0, 60.0, 1000.0, 45.0])  # air, CSF, tissue, tissue, bone, vessel
    bolus = np.r_[np.zeros(4), 2, 10, 20, 15, 8, 5, 4, 3]
    frames[:] = baseline[None, None, :] + bolus[:, None, None]
    frames[:, 0, 5] += 30 * bolus  # vessel: temporal MIP 45 + 31·20 > 150 HU
    mask = tissue_mask_ct(frames)
    assert mask.tolist() == [[False, False, True, True, False, False]]
    assert tissue_mask_ct(frames, baseline_frames=4).tolist() == mask.tolist()
