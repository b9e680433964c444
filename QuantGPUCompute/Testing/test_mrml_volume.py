"""Arrays <-> volume nodes on the real headless scene: KJI order, spacing, LPS/RAS signs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from quantgpu import mrml as mrml_layer
from quantgpu.errors import InputError
from quantgpu.io import load_volume, write_ct_series

C, S = math.cos(math.radians(25)), math.sin(math.radians(25))
ROW, COL = np.array([C, S, 0.0]), np.array([0.0, 0.0, -1.0])
NORMAL = np.array([-S, C, 0.0])  # ROW x COL by hand
SPACING = (2.5, 0.6, 0.7)  # dk, dj, di
ORIGIN = np.array([5.0, -6.0, 7.0])


def _m_lps() -> np.ndarray:
    m = np.eye(4)
    m[:3, 0], m[:3, 1], m[:3, 2], m[:3, 3] = 0.7 * ROW, 0.6 * COL, 2.5 * NORMAL, ORIGIN
    return m


def _array() -> np.ndarray:
    k, j, i = np.meshgrid(np.arange(4), np.arange(5), np.arange(6), indexing="ij")
    return (100 * k + 10 * j + i).astype(np.float32)


def test_volume_node_geometry_and_kji_order(mrml):
    array = _array()
    node = mrml_layer.volume_node_from_array(mrml, array, SPACING, _m_lps(), name="oblique")
    # MRML spacing is in IJK order.
    assert node.GetSpacing() == pytest.approx((0.7, 0.6, 2.5))
    # MRML origin is RAS: LPS (5, -6, 7) -> RAS (-5, 6, 7).
    assert node.GetOrigin() == pytest.approx((-5.0, 6.0, 7.0))
    # Voxel (i=3, j=2, k=1) in RAS by hand from the LPS point.
    lps = ORIGIN + 3 * 0.7 * ROW + 2 * 0.6 * COL + 1 * 2.5 * NORMAL
    ras = np.array([-lps[0], -lps[1], lps[2]])
    import vtk

    ijk_to_ras = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(ijk_to_ras)
    assert ijk_to_ras.MultiplyPoint((3, 2, 1, 1))[:3] == pytest.approx(tuple(ras))
    # The image data is indexed (i, j, k); the array [k, j, i].
    assert node.GetImageData().GetScalarComponentAsDouble(3, 2, 1, 0) == 123.0
    assert node.GetImageData().GetDimensions() == (6, 5, 4)


def test_round_trip_returns_a_copy_and_keeps_inputs(mrml):
    array = _array()
    kept = array.copy()
    node = mrml_layer.volume_node_from_array(mrml, array, SPACING, _m_lps())
    array[:] = -1  # the node holds its own copy
    assert node.GetImageData().GetScalarComponentAsDouble(0, 0, 0, 0) == 0.0
    mtime = node.GetMTime()
    back, spacing, m = mrml_layer.array_from_volume_node(node)
    np.testing.assert_array_equal(back, kept)
    assert spacing == pytest.approx(SPACING)
    np.testing.assert_allclose(m, _m_lps(), atol=1e-9)
    back[:] = 99  # the returned array is a copy too
    assert node.GetImageData().GetScalarComponentAsDouble(0, 0, 0, 0) == 0.0
    assert node.GetMTime() == mtime


def test_default_geometry_is_axis_aligned_at_origin(mrml):
    node = mrml_layer.volume_node_from_array(mrml, _array(), (3.0, 2.0, 1.0))
    _, spacing, m = mrml_layer.array_from_volume_node(node)
    np.testing.assert_allclose(m, np.diag([1.0, 2.0, 3.0, 1.0]))
    assert spacing == (3.0, 2.0, 1.0)


def test_parent_linear_transform_is_applied(mrml):
    import vtk

    node = mrml_layer.volume_node_from_array(mrml, _array(), (1.0, 1.0, 1.0))
    transform = mrml.scene.AddNewNodeByClass("vtkMRMLLinearTransformNode")
    shift = vtk.vtkMatrix4x4()
    shift.SetElement(0, 3, 10.0)  # 10 mm towards R
    transform.SetMatrixTransformToParent(shift)
    node.SetAndObserveTransformNodeID(transform.GetID())
    _, _, m = mrml_layer.array_from_volume_node(node)
    np.testing.assert_allclose(m[:3, 3], [-10.0, 0.0, 0.0])  # 10 mm R is -10 in LPS x


def test_volume_from_loaded_dicom_keeps_attributes(mrml, tmp_path):
    hu = np.round(_array() - 500.0)
    write_ct_series(tmp_path, hu, SPACING, ijk_to_lps=_m_lps())
    vol = load_volume(tmp_path)
    node = mrml_layer.volume_node_from_volume(mrml, vol, "ct")
    assert node.GetAttribute("DICOM.Modality") == "CT"
    assert node.GetAttribute("DICOM.SeriesInstanceUID") == vol.series_instance_uid
    back = mrml_layer.volume_from_volume_node(node)
    np.testing.assert_array_equal(back.array, hu)
    np.testing.assert_allclose(back.ijk_to_lps, _m_lps(), atol=1e-5)
    assert back.modality == "CT"


def test_slicer_itk_dicom_reader_agrees_with_our_loader(mrml, tmp_path):
    # Slicer's own archetype reader (ITK GDCM) is an independent oracle for slice order and geometry.
    m = _m_lps()
    m[:3, 2] *= -1  # slices written against the normal: the reader must re-order them
    hu = np.round(np.random.default_rng(5).uniform(-1000, 1000, size=(4, 5, 6)))
    files = write_ct_series(tmp_path, hu, SPACING, ijk_to_lps=m)
    ours = load_volume(tmp_path)
    node = mrml.volumes_logic.AddArchetypeVolume(str(files[0]), "itk")
    theirs, spacing, m_lps = mrml_layer.array_from_volume_node(node)
    np.testing.assert_array_equal(theirs, ours.array)
    np.testing.assert_array_equal(ours.array, hu[::-1])
    assert spacing == pytest.approx(ours.spacing)
    np.testing.assert_allclose(m_lps, ours.ijk_to_lps, atol=1e-5)


def test_bad_volume_arguments(mrml):
    with pytest.raises(InputError, match=r"expected a \[k, j, i\] array"):
        mrml_layer.volume_node_from_array(mrml, np.zeros((3, 3)), (1, 1, 1))
    with pytest.raises(InputError, match="does not match"):
        mrml_layer.volume_node_from_array(mrml, np.zeros((2, 3, 3)), (1, 1, 1), _m_lps())
    empty = mrml.scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "empty")
    with pytest.raises(InputError, match="holds no image data"):
        mrml_layer.array_from_volume_node(empty)


def test_boolean_mask_becomes_uint8_labelmap(mrml):
    mask = np.zeros((2, 3, 4), dtype=bool)
    mask[1, 2, 3] = True
    node = mrml_layer.volume_node_from_array(mrml, mask, (1.0, 1.0, 1.0), name="mask", labelmap=True)
    assert node.IsA("vtkMRMLLabelMapVolumeNode")
    back, _, _ = mrml_layer.array_from_volume_node(node)
    assert back.dtype == np.uint8
    np.testing.assert_array_equal(back, mask.astype(np.uint8))
