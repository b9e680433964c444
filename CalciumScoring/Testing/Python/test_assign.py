"""Click-to-assign: whole 3-D lesions, nearest lesion, undo/redo, positional proposal."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from CalciumScoringLib.assign import ARTERY_LABELS, ArteryAssigner, artery_label_value, propose_artery
from quantgpu.errors import InputError

SPACING = (3.0, 0.5, 0.5)


def _two_lesions():
    """Lesion A: a 2x2 block over slices 1-2 plus a diagonal voxel in slice 3 (26-connected
    to the block only through an edge-and-slice corner). Lesion B: one 3x3 block in slice 1."""
    hu = np.zeros((5, 20, 20), np.float32)
    hu[1:3, 2:4, 2:4] = 400.0
    hu[3, 4, 4] = 200.0  # touches hu[2,3,3] by a corner only (3-D diagonal)
    hu[1, 10:13, 10:13] = 130.0  # threshold inclusive
    hu[1, 15, 15] = 129.0  # below threshold: never a candidate
    return hu


def _candidates(hu, threshold=130.0):
    # independent 26-connectivity reference: scipy with a full 3x3x3 structure
    labels, _ = ndimage.label(hu >= threshold, structure=np.ones((3, 3, 3)))
    return labels


def test_click_assigns_whole_3d_lesion_and_nothing_else():
    hu = _two_lesions()
    a = ArteryAssigner(hu, SPACING, candidates=_candidates(hu))
    change = a.assign_at((2, 2, 1), "LAD")  # IJK order: i=2, j=2, k=1
    assert change.voxel_count == 2 * 4 + 1  # 8 block voxels + the corner voxel
    assert (a.labels == ARTERY_LABELS["LAD"]).sum() == 9
    assert a.labels[3, 4, 4] == 2
    assert a.labels[1, 11, 11] == 0


def test_real_candidate_labelling_is_26_connected():
    hu = _two_lesions()
    a = ArteryAssigner(hu, SPACING)  # candidates from agatston.candidate_lesions_3d
    assert a.assign_at((4, 4, 3), "RCA").voxel_count == 9
    assert a.assign_at((11, 11, 1), "LM").voxel_count == 9


def test_nearest_lesion_within_radius_and_none_beyond():
    hu = _two_lesions()
    a = ArteryAssigner(hu, SPACING, candidates=_candidates(hu))
    # 2 px = 1.0 mm to the right of lesion B's edge (column 12): within 3 mm
    assert a.assign_at((14, 11, 1), "LCX").voxel_count == 9
    assert a.labels[1, 11, 11] == ARTERY_LABELS["LCX"]
    # the 129 HU pixel is not calcium; the nearest candidate voxel (12, 12) is 3 px x 3 px = 2.12 mm away
    assert a.component_at((15, 15, 1), search_radius_mm=1.0) == 0
    with pytest.raises(InputError, match="no calcium candidate"):
        a.assign_at((19, 0, 4), "LAD", search_radius_mm=1.0)
    # slices are 3 mm apart: a click one slice above lesion B is 3 mm away
    assert a.component_at((11, 11, 2), search_radius_mm=2.9) == 0
    assert a.component_at((11, 11, 2), search_radius_mm=3.0) == a.candidates[1, 11, 11]


def test_undo_redo_restores_previous_labels_and_input_untouched():
    hu = _two_lesions()
    start = np.zeros(hu.shape, np.uint8)
    start[1, 2, 2] = ARTERY_LABELS["RCA"]  # one voxel pre-labelled RCA
    a = ArteryAssigner(hu, SPACING, labels=start, candidates=_candidates(hu))
    a.assign_at((2, 2, 1), "LAD")
    a.assign_at((2, 2, 1), "LCX")
    assert (a.labels == 3).sum() == 9
    a.undo()
    assert (a.labels == 2).sum() == 9
    a.undo()
    assert a.labels[1, 2, 2] == ARTERY_LABELS["RCA"] and (a.labels > 0).sum() == 1
    assert a.undo() is None and not a.can_undo
    a.redo()
    assert (a.labels == 2).sum() == 9
    a.assign_at((11, 11, 1), "RCA")  # a new edit clears the redo stack
    assert not a.can_redo
    assert start.sum() == ARTERY_LABELS["RCA"]  # caller's array not modified


def test_unassigned_clears_and_bad_names_are_input_errors():
    hu = _two_lesions()
    a = ArteryAssigner(hu, SPACING, candidates=_candidates(hu))
    a.assign_at((2, 2, 1), "LAD")
    a.assign_at((2, 2, 1), "Unassigned")
    assert a.labels.sum() == 0
    with pytest.raises(InputError, match="unknown artery"):
        artery_label_value("PDA")
    with pytest.raises(InputError, match="does not match"):
        ArteryAssigner(hu, SPACING, labels=np.zeros((5, 20, 19), np.uint8), candidates=_candidates(hu))


def test_proposal_rule_and_seeds():
    c = (0.0, 0.0, 0.0)
    assert propose_artery((10, 0, 0), c) == "RCA"  # patient's right
    assert propose_artery((-10, 5, 30), c) == "LM"  # left and 30 mm superior
    assert propose_artery((-10, 5, 0), c) == "LAD"  # left anterior
    assert propose_artery((-10, -5, 0), c) == "LCX"  # left posterior
    seeds = {"LAD": [(0, 50, 0)], "RCA": [(0, -50, 0)]}
    assert propose_artery((30, 40, 0), c, seeds) == "LAD"  # nearest seed wins over the rule


def test_propose_all_uses_lesion_centroids():
    hu = _two_lesions()
    a = ArteryAssigner(hu, SPACING, candidates=_candidates(hu))
    # identity-like IJK->RAS with spacing; heart centre placed between the two lesions
    ijk_to_ras = np.diag([0.5, 0.5, 3.0, 1.0])
    # lesion A centroid ~ (i 2.6, j 2.6) -> R 1.3 mm; lesion B (i 11, j 11) -> R 5.5 mm
    changes = a.propose_all(ijk_to_ras, heart_centre_ras=(3.0, 3.0, 4.5))
    assert len(changes) == 2
    assert a.labels[1, 11, 11] == ARTERY_LABELS["RCA"]  # right of the centre
    assert a.labels[1, 2, 2] == ARTERY_LABELS["LCX"]  # left and posterior (A 1.3 < 3.0)
    assert a.propose_all(ijk_to_ras, heart_centre_ras=(3.0, 3.0, 4.5)) == []  # already assigned
    a.undo()
    assert a.labels[1, 11, 11] == 0
