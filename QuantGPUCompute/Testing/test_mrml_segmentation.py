"""Label arrays <-> segmentation nodes through Slicer's segmentations logic."""

from __future__ import annotations

import math

import numpy as np
import pytest

from quantgpu import mrml as mrml_layer
from quantgpu.errors import InputError


def _reference(mrml, oblique: bool = False):
    m = np.diag([0.7, 0.6, 2.5, 1.0])
    if oblique:
        c, s = math.cos(math.radians(30)), math.sin(math.radians(30))
        m[:3, 0], m[:3, 1], m[:3, 2] = 0.7 * np.array([c, s, 0]), 0.6 * np.array([-s, c, 0]), [0, 0, 2.5]
        m[:3, 3] = [12.0, -3.0, 40.0]
    return mrml_layer.volume_node_from_array(mrml, np.zeros((4, 6, 7), np.float32), (2.5, 0.6, 0.7), m, name="ref")


def _labels() -> np.ndarray:
    labels = np.zeros((4, 6, 7), dtype=np.int16)
    labels[1:3, 1:4, 2:5] = 7  # 2*3*3 = 18 voxels
    labels[0, 0, 0:3] = 3  # 3 voxels
    labels[3, 5, 6] = 3  # 1 voxel
    return labels


@pytest.mark.parametrize("oblique", [False, True])
def test_segmentation_round_trip(mrml, oblique):
    import slicer

    ref = _reference(mrml, oblique)
    labels = _labels()
    kept = labels.copy()
    segments = [(7, "LAD", (1.0, 0.0, 0.0)), (3, "RCA", (0.0, 0.5, 1.0)), (9, "LCX", (0.0, 1.0, 0.0))]
    seg_node = mrml_layer.segmentation_node_from_labels(mrml, labels, ref, segments, name="calcium")
    np.testing.assert_array_equal(labels, kept)
    segmentation = seg_node.GetSegmentation()
    assert segmentation.GetNumberOfSegments() == 3
    names = [segmentation.GetNthSegment(n).GetName() for n in range(3)]
    assert names == ["LAD", "RCA", "LCX"]
    assert segmentation.GetNthSegment(1).GetColor() == pytest.approx((0.0, 0.5, 1.0))
    # Voxel counts read from each segment's internal labelmap (hand counts: 18, 4, 0).
    counts = []
    for n in range(3):
        seg_id = segmentation.GetNthSegmentID(n)
        internal = slicer.util.arrayFromSegmentInternalBinaryLabelmap(seg_node, seg_id)
        counts.append(
            0 if internal is None else int(np.sum(internal == segmentation.GetSegment(seg_id).GetLabelValue()))
        )
    assert counts == [18, 4, 0]
    before = {mrml.scene.GetNthNode(n).GetID() for n in range(mrml.scene.GetNumberOfNodes())}
    np.testing.assert_array_equal(mrml_layer.labels_from_segmentation_node(seg_node, ref), labels)
    # No temporary labelmap, colour table or display node left behind.
    assert {mrml.scene.GetNthNode(n).GetID() for n in range(mrml.scene.GetNumberOfNodes())} == before
    assert mrml.scene.GetNumberOfNodesByClass("vtkMRMLLabelMapVolumeNode") == 0


def test_segmentation_without_value_tags_uses_positions(mrml):
    ref = _reference(mrml)
    seg_node = mrml.scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "manual")
    seg_node.SetReferenceImageGeometryParameterFromVolumeNode(ref)
    labels = _labels()
    first = mrml_layer.segmentation_node_from_labels(mrml, labels, ref, [(3, "a", (1, 0, 0)), (7, "b", (0, 1, 0))])
    # Copy the segments without their tags into a plain segmentation.
    for n in range(2):
        segment = first.GetSegmentation().GetNthSegment(n)
        seg_node.GetSegmentation().CopySegmentFromSegmentation(
            first.GetSegmentation(), first.GetSegmentation().GetNthSegmentID(n)
        )
        seg_node.GetSegmentation().GetNthSegment(n).RemoveTag(mrml_layer.LABEL_VALUE_TAG)
        assert segment.GetName() in ("a", "b")
    out = mrml_layer.labels_from_segmentation_node(seg_node, ref)
    np.testing.assert_array_equal(out, np.select([labels == 3, labels == 7], [1, 2], 0))


def test_segmentation_bad_input(mrml):
    ref = _reference(mrml)
    with pytest.raises(InputError, match=r"label values \[7\] have no segment description"):
        mrml_layer.segmentation_node_from_labels(mrml, _labels(), ref, [(3, "RCA", (1, 0, 0))])
    with pytest.raises(InputError, match="differs from the reference volume"):
        mrml_layer.segmentation_node_from_labels(mrml, np.zeros((2, 2, 2), int), ref, [(1, "x", (1, 0, 0))])
    with pytest.raises(InputError, match="distinct and positive"):
        mrml_layer.segmentation_node_from_labels(mrml, _labels(), ref, [(3, "a", (1, 0, 0)), (3, "b", (0, 1, 0))])
    assert mrml.scene.GetNumberOfNodesByClass("vtkMRMLSegmentationNode") == 0
