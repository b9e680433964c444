"""Stroke summary: perfusion.md §5.2 P10/P10b to the voxel, both edges of every trial inequality.

Expected numbers are the reference's hand calculations (e.g. core 20 mL, Tmax>6 s 50 mL -> mismatch
30 mL, ratio 2.5) and the trial texts' inequalities, not outputs of the code.
"""

from __future__ import annotations

import json
from fractions import Fraction

import numpy as np
import pytest

from PerfusionAnalysisLib.stroke import (
    CORE_LABEL,
    PENUMBRA_LABEL,
    StrokeThresholds,
    eligibility_from_counts,
    hemisphere_masks,
    stroke_summary,
)
from quantgpu.errors import InputError

ONE_MM3 = Fraction(1)
HEALTHY_CBF, CORE_CBF = 50.0, 10.0
HEALTHY_TMAX, HYPO_TMAX = 2.0, 8.0


def lesion_maps(core_ml: int, hypo_ml: int, shape=(20, 100, 100)):
    """Maps on a 1 mm³ grid: the first voxels of the patient-right half (low i) are the lesion."""
    cbf = np.full(shape, HEALTHY_CBF)
    tmax = np.full(shape, HEALTHY_TMAX)
    right = np.zeros(shape, bool)
    right[:, :, : shape[2] // 2] = True  # identity IJK->LPS: +i is patient left
    idx = np.flatnonzero(right.ravel())
    core_n, hypo_n = core_ml * 1000, hypo_ml * 1000
    assert max(core_n, hypo_n) <= idx.size
    cbf.ravel()[idx[:core_n]] = CORE_CBF
    tmax.ravel()[idx[:hypo_n]] = HYPO_TMAX
    return cbf, tmax


def test_p10_core20_tmax50_both_eligible():
    cbf, tmax = lesion_maps(20, 50)
    s = stroke_summary(cbf, tmax, (1.0, 1.0, 1.0))
    assert s.counts["core"] == 20000
    assert s.counts["tmax_gt_6s"] == 50000
    assert s.volumes_ml["core"] == 20.0 and s.volumes_ml["tmax_gt_6s"] == 50.0
    assert s.volumes_ml["tmax_gt_4s"] == 50.0 and s.volumes_ml["tmax_gt_8s"] == 0.0
    assert s.mismatch_volume_ml == 30.0
    assert s.mismatch_ratio == 2.5
    assert s.eligibility == {"defuse3": True, "extend": True}
    assert s.affected_hemisphere == "right" and s.reference_hemisphere == "left"
    assert s.reference_cbf == HEALTHY_CBF
    assert np.count_nonzero(s.labels == CORE_LABEL) == 20000
    assert np.count_nonzero(s.labels == PENUMBRA_LABEL) == 30000
    assert s.hypoperfusion_intensity_ratio == 0.0
    assert s.thresholds.defuse3_ratio_gt == 1.8  # echoed


@pytest.mark.parametrize(
    ("core", "hypo", "defuse3", "extend"),
    [
        (38, 50, False, True),  # ratio 1.32, mismatch 12: DEFUSE 3 -, EXTEND +
        (40, 50, False, False),  # mismatch exactly 10: EXTEND - (">")
        (75, 200, False, False),  # core > 70: both -
        (25, 45, False, True),  # ratio exactly 1.8: DEFUSE 3 - under ">"
    ],
)
def test_p10b_on_label_volumes(core, hypo, defuse3, extend):
    cbf, tmax = lesion_maps(core, hypo, shape=(30, 100, 200))
    s = stroke_summary(cbf, tmax, (1.0, 1.0, 1.0))
    assert s.counts["core"] == core * 1000 and s.counts["tmax_gt_6s"] == hypo * 1000
    assert s.mismatch_volume_ml == hypo - core
    assert s.eligibility == {"defuse3": defuse3, "extend": extend}


def test_p10b_ratio_numbers():
    e = eligibility_from_counts(38_000, 50_000, ONE_MM3)
    assert round(float(e.ratio), 2) == 1.32 and e.mismatch_ml == 12
    assert eligibility_from_counts(25_000, 45_000, ONE_MM3).ratio == Fraction(9, 5)


# Each trial inequality at its edge (fails) and one voxel past it (passes), other conditions satisfied.
@pytest.mark.parametrize(
    ("core_n", "hypo_n", "rule", "expected"),
    [
        (70_000, 200_000, "defuse3", False),  # core = 70 mL: "<" fails
        (69_999, 200_000, "defuse3", True),
        (70_000, 200_000, "extend", True),  # core = 70 mL: "<=" passes
        (70_001, 200_000, "extend", False),
        (10_000, 25_000, "defuse3", False),  # mismatch = 15 mL: ">" fails
        (10_000, 25_001, "defuse3", True),
        (25_000, 45_000, "defuse3", False),  # ratio = 1.8: ">" fails
        (25_000, 45_001, "defuse3", True),
        (60_000, 72_000, "extend", False),  # ratio = 1.2 (mismatch 12): ">" fails
        (60_000, 72_001, "extend", True),
        (5_000, 15_000, "extend", False),  # mismatch = 10 mL (ratio 3): ">" fails
        (5_000, 15_001, "extend", True),
    ],
)
def test_every_edge(core_n, hypo_n, rule, expected):
    e = eligibility_from_counts(core_n, hypo_n, ONE_MM3)
    assert getattr(e, rule) is expected


def test_edges_are_exact_with_decimal_spacing():
    # 0.5 x 0.2 x 0.1 mm = 0.01 mm³; in float 0.5*0.2*0.1*7e6 = 70000.00000000001 mm³ (> 70 mL).
    voxel = Fraction("0.5") * Fraction("0.2") * Fraction("0.1")
    assert 7_000_000 * (0.5 * 0.2 * 0.1) > 70000.0  # the float trap this guards against
    e = eligibility_from_counts(7_000_000, 20_000_000, voxel)
    assert e.core_ml == 70 and e.extend is True and e.defuse3 is False


def test_zero_core_is_infinite_ratio_and_json_safe():
    cbf, tmax = lesion_maps(0, 20)
    s = stroke_summary(cbf, tmax, (1.0, 1.0, 1.0))
    assert s.mismatch_ratio == float("inf")
    assert s.eligibility == {"defuse3": True, "extend": True}  # mismatch 20 > 15, inf > 1.8
    j = s.to_json()
    assert j["mismatch_ratio"] is None and j["mismatch_ratio_infinite"] is True
    json.dumps(j, allow_nan=False)


def test_no_lesion_ratio_undefined_and_no_hir():
    cbf, tmax = lesion_maps(0, 0)
    s = stroke_summary(cbf, tmax, (1.0, 1.0, 1.0))
    assert np.isnan(s.mismatch_ratio) and s.hypoperfusion_intensity_ratio is None
    assert s.eligibility == {"defuse3": False, "extend": False}
    assert s.reference_hemisphere == "both" and s.affected_hemisphere is None
    j = s.to_json()
    assert j["mismatch_ratio"] is None and j["mismatch_ratio_infinite"] is False
    json.dumps(j, allow_nan=False)


def test_threshold_edges_rcbf_and_tmax():
    shape = (1, 4, 10)
    cbf = np.full(shape, 50.0)
    tmax = np.full(shape, 2.0)
    cbf[0, 0, 0] = 15.0  # rCBF exactly 0.30: not core ("<")
    cbf[0, 0, 1] = 14.5  # 0.29: core
    tmax[0, 1, 0] = 6.0  # exactly 6 s: not hypoperfused (">")
    tmax[0, 1, 1] = 7.0
    tmax[0, 2, 0] = 10.0  # exactly 10 s: counted at 8 but not at 10
    tmax[0, 2, 1] = 11.0
    s = stroke_summary(cbf, tmax, (1, 1, 1), reference_cbf=50.0)
    assert s.counts["core"] == 1
    assert s.counts["tmax_gt_6s"] == 3 and s.counts["tmax_gt_4s"] == 4
    assert s.counts["tmax_gt_8s"] == 2 and s.counts["tmax_gt_10s"] == 1
    assert s.hypoperfusion_intensity_ratio == pytest.approx(1 / 3)
    assert s.reference_hemisphere == "given"


def test_reference_is_contralateral_mean_within_tissue():
    shape = (2, 4, 8)
    cbf = np.zeros(shape)
    cbf[:, :, :4] = 20.0  # patient right (low i, identity geometry)
    cbf[:, :, 4:] = 60.0  # patient left
    tmax = np.full(shape, 1.0)
    tmax[:, :, 4:6] = 9.0  # lesion in the left hemisphere
    tissue = np.ones(shape, bool)
    tissue[:, :, 0] = False
    cbf[:, :, 0] = 1000.0  # outside tissue: must not enter the reference mean
    s = stroke_summary(cbf, tmax, (1, 1, 1), tissue_mask=tissue)
    assert s.affected_hemisphere == "left"
    assert s.reference_cbf == 20.0


def test_hemisphere_follows_geometry():
    # i runs towards patient right (RAS-like storage): low i is patient left.
    flip = np.diag([-1.0, -1.0, 1.0, 1.0])
    halves = hemisphere_masks((1, 1, 5), flip)
    assert halves["left"][0, 0].tolist() == [True, True, False, False, False]
    assert halves["right"][0, 0].tolist() == [False, False, False, True, True]  # odd: centre in neither
    # j axis along left-right (a transposed grid)
    swap = np.array([[0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]], float)
    halves = hemisphere_masks((1, 4, 1), swap)
    assert halves["left"][0, :, 0].tolist() == [False, False, True, True]


def test_nan_never_counts_and_inputs_untouched():
    cbf, tmax = lesion_maps(1, 2, shape=(4, 50, 100))
    cbf[0, 0, 0] = np.nan
    tmax[0, 0, 0] = np.nan
    before = (cbf.copy(), tmax.copy())
    s = stroke_summary(cbf, tmax, (1, 1, 1))
    assert s.counts["core"] == 999 and s.counts["tmax_gt_6s"] == 1999
    np.testing.assert_array_equal(cbf, before[0])
    np.testing.assert_array_equal(tmax, before[1])


def test_custom_thresholds_echoed():
    t = StrokeThresholds(core_rcbf_lt=0.34, defuse3_ratio_gt=2.0)
    cbf, tmax = lesion_maps(20, 50)
    j = stroke_summary(cbf, tmax, (1, 1, 1), thresholds=t).to_json()
    assert j["thresholds"]["core_rcbf_lt"] == 0.34 and j["thresholds"]["defuse3_ratio_gt"] == 2.0


def test_bad_input():
    with pytest.raises(InputError):
        stroke_summary(np.ones((2, 2, 2)), np.ones((2, 2, 3)), (1, 1, 1))
    with pytest.raises(InputError):
        stroke_summary(np.ones((2, 2, 2)), np.ones((2, 2, 2)), (1, 0, 1))
    with pytest.raises(InputError):
        stroke_summary(np.full((2, 2, 2), np.nan), np.ones((2, 2, 2)), (1, 1, 1))
