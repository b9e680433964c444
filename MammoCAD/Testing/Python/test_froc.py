"""FROC tooling (mammo.md §3, §5.3): hit rules, counting rules, curve points and pAUC by hand (M11)."""

from __future__ import annotations

import numpy as np
import pytest

from MammoCADLib import froc
from MammoCADLib.froc import Lesion, Mark

SPACING = 0.1  # mm per pixel: 10 px = 1 mm


def _m11_case():
    """4 images, 3 lesions, 8 marks: 2 marks on one mass, 1 mark outside the breast.

    image 0: mass L0 at (100, 100), R = 5 mm; image 1: cluster L1, calcifications at (198, 198),
    (202, 202), (200, 205), centroid (200, 201.67); image 2: mass L2 at (300, 300), R = 3 mm (hit radius
    max(3, 5) = 5 mm); image 3: no lesion. The breast of image 0 ends at column 130.
    """
    lesions = [
        Lesion(0, "mass", (100.0, 100.0), 5.0),
        Lesion(1, "calcification_cluster", (200.0, 201.67), None, [(198, 198), (202, 202), (200, 205)]),
        Lesion(2, "mass", (300.0, 300.0), 3.0),
    ]
    marks = [
        Mark(0, "mass", (110.0, 100.0), 0.9),  # 1 mm from L0: TP
        Mark(0, "mass", (130.0, 100.0), 0.6),  # 3 mm from L0: second mark on L0, neither TP nor FP
        Mark(0, "mass", (400.0, 400.0), 0.8),  # FP
        Mark(1, "calcification_cluster", (260.0, 200.0), 0.7, (195, 195, 210, 210)),  # 6 mm off, box holds 3
        Mark(2, "mass", (300.0, 345.0), 0.5),  # 4.5 mm from L2 (R = 3 mm, rule radius 5 mm): TP
        Mark(3, "mass", (50.0, 50.0), 0.4),  # FP
        Mark(1, "calcification_cluster", (200.0, 300.0), 0.95, (195, 295, 205, 305)),  # 10 mm off, holds 0: FP
        Mark(0, "mass", (100.0, 140.0), 0.2),  # 4 mm from L0 but outside the breast: FP
    ]
    breast0 = np.zeros((512, 512), bool)
    breast0[:, :131] = True
    breast0[390:410, 390:410] = True  # the FP mark at (400, 400) lies inside the breast
    masks = [breast0, None, None, None]
    return marks, lesions, masks


def test_m11_mass_points_and_pauc():
    marks, lesions, masks = _m11_case()
    curve = froc.froc(marks, lesions, 4, SPACING, "mass", breast_masks=masks)
    # thresholds 0.9, 0.8, 0.6, 0.5, 0.4, 0.2 (by hand from the marks above)
    assert curve.thresholds.tolist() == [0.9, 0.8, 0.6, 0.5, 0.4, 0.2]
    assert curve.points() == [(0.0, 0.5), (0.25, 0.5), (0.25, 0.5), (0.25, 1.0), (0.5, 1.0), (0.75, 1.0)]
    assert curve.n_true_positive_marks == 3 and curve.n_false_marks == 3  # the duplicate is neither
    # (0,0)-(0,.5) 0; (0,.5)-(.25,.5) 0.125; (.25,1)-(.5,1) 0.25; (.5,1)-(.75,1) 0.25; flat to 1: 0.25
    assert curve.partial_auc(1.0) == pytest.approx(0.875, abs=1e-9)
    assert curve.partial_auc(0.25) == pytest.approx(0.125, abs=1e-9)
    assert curve.sensitivity_at(0.1) == 0.5
    assert curve.sensitivity_at(0.25) == 1.0
    assert curve.threshold_at(0.25) == 0.5


def test_m11_cluster_points_and_pauc():
    marks, lesions, masks = _m11_case()
    curve = froc.froc(marks, lesions, 4, SPACING, "calcification_cluster", breast_masks=masks)
    assert curve.points() == [(0.25, 0.0), (0.25, 1.0)]
    assert curve.partial_auc(1.0) == pytest.approx(0.75, abs=1e-9)
    assert curve.sensitivity_at(0.1) == 0.0 and curve.sensitivity_at(0.25) == 1.0
    summary = curve.summary()
    assert summary["hit_rule"] == froc.HIT_RULE
    assert summary["sensitivity_at_fp_per_image"] == {0.1: 0.0, 0.25: 1.0, 0.5: 1.0, 1.0: 1.0, 2.0: 1.0}


def test_mass_hit_radius_is_max_of_r_and_5_mm():
    big = Lesion(0, "mass", (0.0, 0.0), 8.0)
    small = Lesion(0, "mass", (0.0, 0.0), 2.0)
    assert froc.hit_distance_mm(Mark(0, "mass", (79.0, 0.0), 1.0), big, SPACING) == pytest.approx(7.9)
    assert froc.hit_distance_mm(Mark(0, "mass", (81.0, 0.0), 1.0), big, SPACING) is None
    assert froc.hit_distance_mm(Mark(0, "mass", (49.0, 0.0), 1.0), small, SPACING) is not None
    assert froc.hit_distance_mm(Mark(0, "mass", (51.0, 0.0), 1.0), small, SPACING) is None
    # inside a given outline counts even beyond the radius rule
    outline = np.zeros((200, 200), bool)
    outline[:, :10] = True
    long_mass = Lesion(0, "mass", (0.0, 0.0), 2.0, outline=outline)
    assert froc.hit_distance_mm(Mark(0, "mass", (150.0, 5.0), 1.0), long_mass, SPACING) is not None
    # other image or other type never hits
    assert froc.hit_distance_mm(Mark(1, "mass", (0.0, 0.0), 1.0), big, SPACING) is None
    assert froc.hit_distance_mm(Mark(0, "calcification_cluster", (0.0, 0.0), 1.0), big, SPACING) is None


def test_cluster_hit_needs_two_contained_calcifications_or_5_mm():
    lesion = Lesion(0, "calcification_cluster", (0.0, 0.0), None, [(0, 0), (0, 10), (10, 0)])
    assert froc.hit_distance_mm(Mark(0, "calcification_cluster", (50.0, 0.0), 1.0), lesion, SPACING) is not None
    far = (100.0, 100.0)
    one = Mark(0, "calcification_cluster", far, 1.0, (-1, -1, 1, 1))  # holds 1
    two = Mark(0, "calcification_cluster", far, 1.0, (-1, -1, 1, 11))  # holds 2
    assert froc.hit_distance_mm(one, lesion, SPACING) is None
    assert froc.hit_distance_mm(two, lesion, SPACING) is not None


def test_mark_matching_two_lesions_goes_to_the_nearer():
    a = Lesion(0, "mass", (0.0, 0.0), 5.0)
    b = Lesion(0, "mass", (0.0, 60.0), 5.0)
    mark = Mark(0, "mass", (0.0, 35.0), 1.0)  # 3.5 mm from a, 2.5 mm from b: hits both
    assert froc.assign_marks([mark], [a, b], SPACING) == [1]
    curve = froc.froc([mark], [a, b], 1, SPACING, "mass")
    assert curve.points() == [(0.0, 0.5)]


def test_llf_and_nlf_never_fall_as_the_threshold_drops():
    rng = np.random.default_rng(0)
    lesions = [Lesion(i, "mass", (100.0, 100.0), 5.0) for i in range(10)]
    marks = [
        Mark(int(rng.integers(10)), "mass", tuple(rng.uniform(0, 300, 2)), float(rng.uniform())) for _ in range(60)
    ]
    curve = froc.froc(marks, lesions, 10, SPACING, "mass")
    assert np.all(np.diff(curve.llf) >= 0) and np.all(np.diff(curve.nlf) >= 0)
    assert np.all(np.diff(curve.thresholds) < 0)


def test_bootstrap_interval_contains_the_estimate():
    marks, lesions, _ = _m11_case()
    lo, hi = froc.bootstrap_sensitivity(marks, lesions, 4, SPACING, "mass", 0.5, n_boot=200)
    # the full-sample sensitivity at 0.5 FP/image is 1.0 (test above); resampled cases stay within [0, 1]
    assert 0.0 <= lo <= hi <= 1.0
    assert hi == 1.0


def test_phantom_truth_to_lesions():
    from MammoCADLib.phantom import make_phantom

    p = make_phantom(shape=(1024, 832), pixel_spacing_mm=0.07, seed=5, n_clusters=1, n_masses=1)
    lesions = froc.lesions_from_phantom(p, 0)
    kinds = sorted(les.type for les in lesions)
    assert kinds == ["calcification_cluster", "mass"]
    cluster = next(les for les in lesions if les.type == "calcification_cluster")
    assert len(cluster.calcifications_px) == len(p.clusters[0]["members"])
    assert np.allclose(np.mean(cluster.calcifications_px, axis=0), p.clusters[0]["center_px"])
