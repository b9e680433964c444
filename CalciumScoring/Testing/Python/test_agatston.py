"""Agatston / volume / mass scoring against the hand-derived cases of calcium.md section 5.

Common set-up (calcium.md 5): background 0 HU, spacing (3, 0.5, 0.5) mm, >= 130 HU,
8-connectivity, area >= 1 mm2, per-slice peak, x dk / 3. A 0.5 mm pixel is 0.25 mm2,
a 3 mm slice of it 0.75 mm3.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage as ndi

from CalciumScoringLib.agatston import (
    ArteryScore,
    CalciumParameters,
    calibration_factor,
    candidate_lesions_3d,
    interpolated_volume_mm3,
    score_calcium,
)
from quantgpu.errors import InputError

SPACING = (3.0, 0.5, 0.5)


def grid(slices=3, rows=24, cols=24):
    return np.zeros((slices, rows, cols), dtype=np.float32)


def score(volume, backend, spacing=SPACING, **kw):
    return score_calcium(volume, spacing, backend=backend, **kw)


def test_c1_basic_block(backend):
    v = grid()
    v[1, 4:8, 4:8] = 400  # 16 px = 4 mm2, weight 4
    r = score(v, backend)
    assert r.agatston == pytest.approx(16.0)
    assert r.volume_mm3 == pytest.approx(12.0)  # 16 x 0.75 mm3
    assert r.mass_mg is None  # no calibration
    assert r.lesion_count == 1
    assert r.slice_increment_mm == 3.0
    assert r.backend == backend.name


@pytest.mark.parametrize(
    ("peak", "expected"),
    [
        (129, 0.0),
        (130, 4.0),
        (199, 4.0),
        (199.5, 4.0),
        (200, 8.0),
        (299, 8.0),
        (300, 12.0),
        (399, 12.0),
        (399.99, 12.0),
        (400, 16.0),
        (1000, 16.0),
    ],
)
def test_c2_weight_band_edges(backend, peak, expected):
    v = grid()
    v[1, 4:8, 4:8] = 130 if peak >= 130 else 129  # 4 mm2; with p = 129 the whole block is 129
    v[1, 5, 5] = peak
    assert score(v, backend).agatston == pytest.approx(expected)


def test_c3_threshold_inclusive(backend):
    v = grid()
    v[1, 4:8, 4:8] = 130.0
    assert score(v, backend).agatston == pytest.approx(4.0)
    v[1, 4:8, 4:8] = np.nextafter(np.float32(130), np.float32(0))  # just below 130
    assert score(v, backend).agatston == 0.0


@pytest.mark.parametrize(("n", "expected"), [(3, 0.0), (4, 4.0), (5, 5.0)])
def test_c4_minimum_area_edge(backend, n, expected):
    v = grid()
    v[1, 5, 3 : 3 + n] = 500  # n x 0.25 mm2
    assert score(v, backend).agatston == pytest.approx(expected)


def test_c4b_area_not_pixel_count(backend):
    v = grid()
    v[1, 5, 3:9] = 500  # 6 px x 0.16 mm2 = 0.96 mm2 < 1 mm2
    assert score(v, backend, spacing=(3.0, 0.4, 0.4)).agatston == 0.0
    v[1, 6, 3] = 500  # 7 px = 1.12 mm2 -> 1.12 x 4
    assert score(v, backend, spacing=(3.0, 0.4, 0.4)).agatston == pytest.approx(4.48)


def test_c5_connectivity(backend):
    v = grid()
    v[1, 4:6, 4:6] = 450  # 1 mm2
    v[1, 6:8, 6:8] = 150  # 1 mm2, touching at a corner
    eight = score(v, backend)
    four = score(v, backend, params=CalciumParameters(connectivity=4))
    assert eight.agatston == pytest.approx(8.0)  # one lesion, 2 mm2 x 4
    assert four.agatston == pytest.approx(5.0)  # 1 x 4 + 1 x 1
    assert eight.parameters["connectivity"] == 8 and four.parameters["connectivity"] == 4


def test_c6_per_slice_peak(backend):
    v = grid()
    v[1, 4:6, 4:8] = 450  # 2 mm2
    v[2, 4:6, 4:8] = 150  # 2 mm2, same lesion in 3-D
    r = score(v, backend)
    assert r.agatston == pytest.approx(10.0)  # 2 x 4 + 2 x 1; a 3-D peak would give 16
    assert r.volume_mm3 == pytest.approx(12.0)
    assert r.lesion_count == 1


def test_c7_two_dimensional_split(backend):
    v = grid()
    v[1, 4:6, 4:6] = 450  # 1 mm2
    v[1, 4:6, 8:10] = 150  # 1 mm2, 2 px apart
    v[0, 4:6, 4:10] = 140  # 12 px = 3 mm2 bridge under both
    r = score(v, backend)
    assert r.agatston == pytest.approx(8.0)  # 4 + 1 + 3; BRAINSia style gives 11
    assert r.volume_mm3 == pytest.approx(15.0)  # 20 px x 0.75
    assert r.lesion_count == 1  # one 3-D lesion


@pytest.mark.parametrize(("dz", "raw"), [(3.0, 72.0), (1.5, 144.0), (1.0, 216.0), (0.5, 432.0)])
def test_c8_slice_increment_normalisation(backend, dz, raw):
    n = round(6.0 / dz)  # a 6 mm long rod
    v = grid(slices=n + 2)
    v[1 : n + 1, 4:10, 4:10] = 450  # 3 x 3 mm = 9 mm2, weight 4
    r = score(v, backend, spacing=(dz, 0.5, 0.5))
    assert 9.0 * 4 * n == pytest.approx(raw)
    assert r.agatston == pytest.approx(72.0)  # raw x dz / 3
    assert r.volume_mm3 == pytest.approx(54.0)
    assert r.slice_increment_mm == dz


def test_c9_mass(backend):
    v = grid(slices=5)
    v[1:4, 4:8, 4:8] = 400  # 4 mm2 x 3 slices x 3 mm = 36 mm3
    c_ha = 0.2 / 250 * 1000  # 0.2/250 mg/mm3/HU = 0.8 mg/cm3/HU
    r = score(v, backend, params=CalciumParameters(mass_calibration_mg_per_cm3_per_hu=c_ha))
    assert r.volume_mm3 == pytest.approx(36.0)
    assert r.mass_mg == pytest.approx(11.52)


def test_mass_depends_on_counted_voxels_only(backend):
    v = grid()
    v[1, 4:8, 4:8] = 400  # counted: 16 px
    v[1, 15, 15] = 900  # single pixel: below 1 mm2, not counted
    r = score(v, backend, params=CalciumParameters(mass_calibration_mg_per_cm3_per_hu=0.8))
    assert r.mass_mg == pytest.approx(0.8 * 400 * 16 * 0.75 / 1000)


def test_c13_calciumscoring_jl_fixture(backend):
    v = np.zeros((2, 4, 4), dtype=np.float32)
    v[:, :2, :] = 400  # half the array: 8 px = 2 mm2 per slice
    r = score(v, backend, spacing=(0.5, 0.5, 0.5))
    assert r.agatston == pytest.approx(16 * 0.5 / 3)  # 16 without normalisation
    assert round(r.agatston, 3) == 2.667


def test_calibration_factor():
    assert calibration_factor(250.0, 0.0) == pytest.approx(0.8)
    assert calibration_factor(260.0, 10.0, 200.0) == pytest.approx(0.8)
    with pytest.raises(InputError, match="denser than water"):
        calibration_factor(0.0, 10.0)


def test_zero_score_is_a_result(backend):
    v = grid()
    v[:] = 40.0  # soft tissue only
    r = score(v, backend)
    assert (r.agatston, r.volume_mm3, r.lesion_count, r.category, r.cac_drs) == (0.0, 0.0, 0, "0", "A0")
    assert not r.lesion_labels.any()


# vendor minimum-size rules (calcium.md section 3), 0.5 mm pixels of 500 HU (weight 4)
@pytest.mark.parametrize(
    ("profile", "pixels", "expected"),
    [
        ("siemens", 1, 1.0),  # no minimum: 0.25 mm2 x 4
        ("standard", 3, 0.0),
        ("ge", 4, 4.0),
        ("philips", 1, 0.0),
        ("philips", 2, 2.0),  # 0.5 mm2 >= 0.5 mm2
        ("canon", 2, 0.0),
        ("canon", 3, 3.0),  # >= 3 px
    ],
)
def test_vendor_profiles(backend, profile, pixels, expected):
    v = grid()
    v[1, 5, 3 : 3 + pixels] = 500
    params = CalciumParameters.from_profile(profile)
    r = score(v, backend, params=params)
    assert r.agatston == pytest.approx(expected)
    assert r.parameters["profile"] == profile


def test_profile_overrides_and_errors():
    p = CalciumParameters.from_profile("siemens", threshold_hu=120.0)
    assert (p.min_area_mm2, p.threshold_hu, p.profile) == (None, 120.0, "siemens")
    with pytest.raises(InputError, match="profile"):
        CalciumParameters.from_profile("toshiba")
    with pytest.raises(InputError, match="connectivity"):
        CalciumParameters(connectivity=6)


def test_threshold_below_130_scores_weight_zero_lesions_as_nothing(backend):
    v = grid()
    v[1, 4:8, 4:8] = 120  # above a 100 HU threshold but peak < 130: weight 0, not calcium
    r = score(v, backend, params=CalciumParameters(threshold_hu=100.0))
    assert (r.agatston, r.volume_mm3, r.lesion_count) == (0.0, 0.0, 0)


def artery_phantom():
    """Four lesions in one slice plus a split lesion; labels put them in arteries."""
    v = grid(slices=3, rows=32, cols=32)
    lab = np.zeros(v.shape, dtype=np.uint8)
    v[1, 2:6, 2:6] = 400  # 4 mm2 x 4 = 16 -> LAD
    lab[1, 2:6, 2:6] = 2
    v[1, 2:6, 10:14] = 250  # 4 mm2 x 2 = 8 -> RCA (label covers only 6 of 16 px)
    lab[1, 2:4, 10:13] = 4
    v[1, 10:14, 2:6] = 150  # 4 mm2 x 1 = 4 -> unassigned (no label)
    v[1, 10:14, 10:14] = 350  # 4 mm2 x 3 = 12 -> LM vs LCX tie 8:8 -> LM (lowest label)
    lab[1, 10:14, 10:12] = 3
    lab[1, 10:14, 12:14] = 1
    v[1, 20:24, 20:24] = 500  # 16 -> LCX by majority 10 : 6 over LAD
    lab[1, 20:24, 20:24] = 3
    lab[1, 20:22, 21:24] = 2
    return v, lab


def test_per_artery_assignment(backend):
    v, lab = artery_phantom()
    r = score(v, backend, labels=lab, params=CalciumParameters(mass_calibration_mg_per_cm3_per_hu=1.0))
    expected = {"LM": 12.0, "LAD": 16.0, "LCX": 16.0, "RCA": 8.0}
    assert {k: s.agatston for k, s in r.per_artery.items()} == pytest.approx(expected)
    assert r.unassigned.agatston == pytest.approx(4.0)
    assert r.agatston == pytest.approx(56.0)  # unassigned calcium counts in the total
    assert r.per_artery["LAD"].volume_mm3 == pytest.approx(12.0)
    assert r.per_artery["RCA"].mass_mg == pytest.approx(1.0 * 250 * 16 * 0.75 / 1000)
    assert all(s.lesion_count == 1 for s in r.per_artery.values())
    assert r.unassigned.lesion_count == 1 and r.lesion_count == 5
    assert r.cac_drs == "A1/N4"
    # lesion map: the artery of the whole 2-D lesion, 5 for unassigned
    assert set(np.unique(r.lesion_labels[1, 2:6, 10:14])) == {4}
    assert set(np.unique(r.lesion_labels[1, 10:14, 2:6])) == {5}
    assert set(np.unique(r.lesion_labels[1, 20:24, 20:24])) == {3}
    assert r.lesion_labels.dtype == np.uint8 and r.lesion_labels.shape == v.shape
    j = r.to_json()
    assert set(j["per_artery"]) == {"LM", "LAD", "LCX", "RCA"}
    assert set(j["per_artery"]["LM"]) == {"agatston", "volume_mm3", "mass_mg", "lesion_count"}
    assert j["unassigned"]["agatston"] == pytest.approx(4.0)


def test_without_labels_lesions_are_marked_unassigned(backend):
    v, _lab = artery_phantom()
    r = score(v, backend)
    assert r.per_artery is None and r.unassigned is None
    assert "per_artery" not in r.to_json()
    assert set(np.unique(r.lesion_labels)) == {0, 5}
    assert r.cac_drs == "A1"


@pytest.mark.parametrize("connectivity", [4, 8])
@pytest.mark.parametrize("density", [0.08, 0.3])
def test_lesion_count_matches_3d_labelling(backend, connectivity, density):
    rng = np.random.default_rng(7)
    v = rng.normal(60, 40, size=(8, 64, 64)).astype(np.float32)
    v[rng.random(v.shape) < density] = 300  # many irregular lesions that touch across slices
    r = score(v, backend, params=CalciumParameters(connectivity=connectivity))
    _, n_independent = ndi.label(r.lesion_labels > 0, structure=np.ones((3, 3, 3), bool))
    assert r.lesion_count == n_independent > 3


def test_inputs_not_modified(backend):
    v, lab = artery_phantom()
    v0, lab0 = v.copy(), lab.copy()
    score(v, backend, labels=lab)
    assert np.array_equal(v, v0) and np.array_equal(lab, lab0)


def test_candidate_lesions_3d(backend):
    v = grid()
    v[0, 4:6, 4:10] = 140
    v[1, 4:6, 4:6] = 450
    v[1, 10:12, 10:12] = 200
    comp = candidate_lesions_3d(v, 130.0, backend=backend)
    assert comp.dtype == np.int32 and comp.max() == 2
    assert comp[0, 4, 4] == comp[1, 4, 4] != comp[1, 10, 10]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda v: v.__setitem__((1, 1, 1), np.nan), "NaN"),
        (lambda v: v.__setitem__(slice(None), -1000.0), "no tissue"),
    ],
)
def test_bad_volume(backend, make, message):
    v = grid()
    make(v)
    with pytest.raises(InputError, match=message):
        score(v, backend)


def test_bad_shapes_and_labels(backend):
    with pytest.raises(InputError, match="no slices"):
        score(np.zeros((0, 8, 8), np.float32), backend)
    with pytest.raises(InputError, match="3-D"):
        score(np.zeros((8, 8), np.float32), backend)
    with pytest.raises(InputError, match="spacing"):
        score(grid(), backend, spacing=(0.0, 0.5, 0.5))
    with pytest.raises(InputError, match="does not match"):
        score(grid(), backend, labels=np.zeros((3, 24, 23), np.uint8))
    with pytest.raises(InputError, match=r"0\.\.4"):
        score(grid(), backend, labels=np.full((3, 24, 24), 7, np.uint8))


def test_progress_reports_fractions(backend):
    seen = []
    v = grid()
    v[1, 4:8, 4:8] = 400
    score(v, backend, progress=lambda f, msg: seen.append(f))
    assert seen[0] == 0.0 and seen[-1] == 1.0 and seen == sorted(seen)


def test_artery_score_json():
    s = ArteryScore(agatston=1.5, volume_mm3=2.0, mass_mg=None, lesion_count=1)
    assert s.to_json() == {"agatston": 1.5, "volume_mm3": 2.0, "mass_mg": None, "lesion_count": 1}


def test_interpolated_volume_by_hand(backend):
    """4 x 4 mm block, 3 slices of 3 mm at 400 HU, resampled to 1 mm.

    Samples lie at z = m - 1 mm (slice centres at 0, 3, 6, ...); linear interpolation
    between the 0 HU slice centre at 3 mm and the 400 HU one at 6 mm crosses 130 HU at
    3 + 3 x 130 / 400 = 3.975 mm, and symmetrically at 14.025 mm: samples z = 4..14,
    11 x 16 mm2 x 1 mm = 176 mm3 (plain volume 3 x 3 mm x 16 mm2 = 144 mm3).
    """
    v = grid(slices=7, rows=8, cols=8)
    v[2:5, 2:6, 2:6] = 400
    r = score(v, backend, spacing=(3.0, 1.0, 1.0))
    volume, voxel = interpolated_volume_mm3(v, (3.0, 1.0, 1.0), r.lesion_labels, backend=backend)
    assert r.volume_mm3 == pytest.approx(144.0)
    assert volume == pytest.approx(176.0) and voxel == pytest.approx((1.0, 1.0, 1.0))
    # already isotropic: nothing to interpolate, the plain volume
    r = score(v, backend, spacing=(1.0, 1.0, 1.0))
    assert interpolated_volume_mm3(v, (1.0, 1.0, 1.0), r.lesion_labels, backend=backend)[0] == pytest.approx(48.0)
    assert interpolated_volume_mm3(v, (1.0, 1.0, 1.0), np.zeros(v.shape, np.uint8), backend=backend)[0] == 0.0
