"""NRRD and NIfTI: round trips, conventions (LPS/RAS, KJI) and agreement with Slicer's own readers."""

from __future__ import annotations

import nibabel as nib
import nrrd
import numpy as np
import pytest

from quantgpu import mrml as mrml_layer
from quantgpu.errors import InputError, OutputExistsError
from quantgpu.io import load_series_4d, load_volume, write_nrrd

# A right-handed oblique geometry: i along P, j along S, k along L (sagittal slices), mm.
M_LPS = np.array(
    [
        [0.0, 0.0, 2.0, 10.0],
        [0.5, 0.0, 0.0, 20.0],
        [0.0, 0.6, 0.0, 30.0],
        [0.0, 0.0, 0.0, 1.0],
    ]
)
SPACING = (2.0, 0.6, 0.5)
ARRAY = np.arange(3 * 4 * 5, dtype=np.float32).reshape(3, 4, 5)


def test_nrrd_header_and_round_trip(tmp_path):
    path = write_nrrd(tmp_path / "v.nrrd", ARRAY, SPACING, M_LPS)
    _data, header = nrrd.read(str(path), index_order="C")
    assert header["space"] == "left-posterior-superior"
    # File axis order is i, j, k (fastest first): sizes 5 4 3 and one direction row per axis.
    assert list(header["sizes"]) == [5, 4, 3]
    np.testing.assert_allclose(header["space directions"], [[0, 0.5, 0], [0, 0, 0.6], [2, 0, 0]])
    np.testing.assert_allclose(header["space origin"], [10, 20, 30])
    vol = load_volume(path)
    np.testing.assert_array_equal(vol.array, ARRAY)
    assert vol.spacing == pytest.approx(SPACING)
    np.testing.assert_allclose(vol.ijk_to_lps, M_LPS)
    # Voxel (i=4, j=3, k=2) by hand: origin + 4*0.5 P + 3*0.6 S + 2*2 L.
    np.testing.assert_allclose(vol.ijk_to_lps @ [4, 3, 2, 1], [14.0, 22.0, 31.8, 1.0])
    assert vol.array[2, 3, 4] == ARRAY[2, 3, 4]


def test_nrrd_refuses_overwrite(tmp_path):
    write_nrrd(tmp_path / "v.nrrd", ARRAY, SPACING, M_LPS)
    with pytest.raises(OutputExistsError):
        write_nrrd(tmp_path / "v.nrrd", ARRAY + 1, SPACING, M_LPS)
    np.testing.assert_array_equal(load_volume(tmp_path / "v.nrrd").array, ARRAY)
    write_nrrd(tmp_path / "v.nrrd", ARRAY + 1, SPACING, M_LPS, force=True)
    np.testing.assert_array_equal(load_volume(tmp_path / "v.nrrd").array, ARRAY + 1)


def test_nrrd_in_ras_space(tmp_path):
    header = {
        "space": "right-anterior-superior",
        "space directions": np.diag([0.5, 0.6, 2.0]),
        "space origin": np.array([10.0, 20.0, 30.0]),
    }
    nrrd.write(str(tmp_path / "ras.nrrd"), ARRAY, header, index_order="C")
    vol = load_volume(tmp_path / "ras.nrrd")
    # RAS (10, 20, 30) is LPS (-10, -20, 30); the i and j steps point to -L and -P.
    np.testing.assert_allclose(vol.ijk_to_lps @ [1, 1, 1, 1], [-10.5, -20.6, 32.0, 1.0])


def test_slicer_reads_our_nrrd_and_we_read_slicers(tmp_path, mrml):
    import slicer

    write_nrrd(tmp_path / "ours.nrrd", ARRAY, SPACING, M_LPS)
    node = mrml.volumes_logic.AddArchetypeVolume(str(tmp_path / "ours.nrrd"), "ours")
    array, spacing, m_lps = mrml_layer.array_from_volume_node(node)
    np.testing.assert_array_equal(array, ARRAY)
    assert spacing == pytest.approx(SPACING)
    np.testing.assert_allclose(m_lps, M_LPS, atol=1e-6)
    # Slicer's origin is in RAS: the x and y signs flip.
    assert node.GetOrigin() == pytest.approx((-10.0, -20.0, 30.0))

    storage = slicer.vtkMRMLVolumeArchetypeStorageNode()
    storage.SetFileName(str(tmp_path / "slicer.nrrd"))
    assert storage.WriteData(node)
    vol = load_volume(tmp_path / "slicer.nrrd")
    np.testing.assert_array_equal(vol.array, ARRAY)
    np.testing.assert_allclose(vol.ijk_to_lps, M_LPS, atol=1e-6)


def test_volume_sequence_nrrd_round_trip_and_slicer(tmp_path, mrml):
    import slicer

    frames = np.stack([ARRAY, ARRAY * 2, ARRAY + 7])
    times = [0.0, 1.5, 4.0]
    path = write_nrrd(tmp_path / "s.seq.nrrd", frames, SPACING, M_LPS, frame_times_s=times)
    series = load_series_4d(path)
    np.testing.assert_array_equal(series.frames, frames)
    np.testing.assert_allclose(series.frame_times_s, times)
    np.testing.assert_allclose(series.ijk_to_lps, M_LPS)
    # Slicer's volume sequence reader sees the same frames and index values.
    seq = mrml.scene.AddNewNodeByClass("vtkMRMLSequenceNode", "s")
    storage = slicer.vtkMRMLVolumeSequenceStorageNode()
    mrml.scene.AddNode(storage)
    storage.SetFileName(str(path))
    assert storage.ReadData(seq)
    assert [float(seq.GetNthIndexValue(n)) for n in range(3)] == times
    back = mrml_layer.series4d_from_sequence_node(seq)
    np.testing.assert_array_equal(back.frames, frames)
    np.testing.assert_allclose(back.ijk_to_lps, M_LPS, atol=1e-6)


def test_nrrd_4d_without_times_needs_an_interval(tmp_path):
    header = {
        "space": "left-posterior-superior",
        "space directions": [[np.nan] * 3, [1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0]],
        "kinds": ["list", "domain", "domain", "domain"],
    }
    data = np.arange(2 * 3 * 4 * 5, dtype=np.int16).reshape(3, 4, 5, 2)  # C order: k, j, i, t (t fastest)
    nrrd.write(str(tmp_path / "t.nrrd"), data, header, index_order="C")
    with pytest.raises(InputError, match="give the frame interval"):
        load_series_4d(tmp_path / "t.nrrd")
    series = load_series_4d(tmp_path / "t.nrrd", frame_interval_s=3.0)
    np.testing.assert_allclose(series.frame_times_s, [0.0, 3.0])
    np.testing.assert_array_equal(series.frames[1], data[..., 1])
    with pytest.raises(InputError, match="2-frame time series, not one volume"):
        load_volume(tmp_path / "t.nrrd")


def test_multivolume_frame_labels_in_ms(tmp_path):
    header = {
        "space": "left-posterior-superior",
        "space directions": [[np.nan] * 3, [1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0]],
        "MultiVolume.FrameLabels": "1000,3000,4500",
        "MultiVolume.FrameIdentifyingDICOMTagUnits": "ms",
    }
    data = np.zeros((2, 2, 2, 3), dtype=np.float32)
    nrrd.write(str(tmp_path / "mv.nrrd"), data, header, index_order="C")
    np.testing.assert_allclose(load_series_4d(tmp_path / "mv.nrrd").frame_times_s, [0.0, 2.0, 3.5])


def test_unreadable_and_wrong_dimension_nrrd(tmp_path):
    (tmp_path / "bad.nrrd").write_text("NRRD0004\ntype: float\nthis is not a header\n")
    with pytest.raises(InputError, match="unreadable NRRD file") as err:
        load_volume(tmp_path / "bad.nrrd")
    assert "bad.nrrd" in str(err.value)
    write_nrrd(tmp_path / "v.nrrd", ARRAY, SPACING, M_LPS)
    with pytest.raises(InputError, match="not a time series"):
        load_series_4d(tmp_path / "v.nrrd")


def _nifti_affine_ras() -> np.ndarray:
    # Voxel (i, j, k) -> RAS: i along R 0.8 mm, j along A 0.9 mm, k along S 2.5 mm.
    return np.array([[0.8, 0, 0, -40.0], [0, 0.9, 0, -50.0], [0, 0, 2.5, 60.0], [0, 0, 0, 1]])


def test_nifti_transpose_and_lps(tmp_path):
    data_ijk = np.arange(5 * 4 * 3, dtype=np.int16).reshape(5, 4, 3)  # nibabel order [i, j, k]
    img = nib.Nifti1Image(data_ijk, _nifti_affine_ras())
    img.header.set_slope_inter(2.0, -10.0)
    nib.save(img, tmp_path / "v.nii.gz")
    vol = load_volume(tmp_path / "v.nii.gz")
    assert vol.array.shape == (3, 4, 5)
    assert vol.array[2, 1, 4] == pytest.approx(2.0 * data_ijk[4, 1, 2] - 10.0)  # scl_slope/scl_inter applied
    assert vol.spacing == pytest.approx((2.5, 0.9, 0.8))
    # Voxel (i=4, j=1, k=2): RAS (-40 + 3.2, -50 + 0.9, 60 + 5) = (-36.8, -49.1, 65) -> LPS (36.8, 49.1, 65).
    np.testing.assert_allclose(vol.ijk_to_lps @ [4, 1, 2, 1], [36.8, 49.1, 65.0, 1.0])


def test_slicer_agrees_on_nifti_geometry(tmp_path, mrml):
    data_ijk = np.arange(5 * 4 * 3, dtype=np.float32).reshape(5, 4, 3)
    nib.save(nib.Nifti1Image(data_ijk, _nifti_affine_ras()), tmp_path / "v.nii.gz")
    ours = load_volume(tmp_path / "v.nii.gz")
    node = mrml.volumes_logic.AddArchetypeVolume(str(tmp_path / "v.nii.gz"), "nifti")
    array, _spacing, m_lps = mrml_layer.array_from_volume_node(node)
    np.testing.assert_array_equal(array, ours.array)
    np.testing.assert_allclose(m_lps, ours.ijk_to_lps, atol=1e-5)


def test_nifti_4d_time_units(tmp_path):
    data = np.zeros((2, 2, 2, 4), dtype=np.float32)
    data[..., 3] = 5.0
    img = nib.Nifti1Image(data, np.eye(4))
    img.header.set_xyzt_units("mm", "msec")
    img.header["pixdim"][4] = 1500.0
    nib.save(img, tmp_path / "t.nii")
    series = load_series_4d(tmp_path / "t.nii")
    np.testing.assert_allclose(series.frame_times_s, [0.0, 1.5, 3.0, 4.5])
    assert series.frames.shape == (4, 2, 2, 2)
    assert np.all(series.frames[3] == 5.0)
    with pytest.raises(InputError, match="not one volume"):
        load_volume(tmp_path / "t.nii")
    # Unknown time unit: the step is not trusted.
    img.header.set_xyzt_units("mm", "unknown")
    nib.save(img, tmp_path / "u.nii")
    with pytest.raises(InputError, match="give the frame interval"):
        load_series_4d(tmp_path / "u.nii")
    np.testing.assert_allclose(load_series_4d(tmp_path / "u.nii", frame_interval_s=2.0).frame_times_s, [0, 2, 4, 6])


def test_unreadable_nifti(tmp_path):
    (tmp_path / "x.nii.gz").write_bytes(b"garbage")
    with pytest.raises(InputError, match="unreadable NIfTI file"):
        load_volume(tmp_path / "x.nii.gz")
