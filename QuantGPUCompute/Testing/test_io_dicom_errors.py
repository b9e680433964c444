"""Bad DICOM input: a clear InputError naming the file and the problem, never a wrong geometry."""

from __future__ import annotations

import math

import numpy as np
import pydicom
import pytest

from quantgpu.errors import InputError
from quantgpu.io import list_series, load_series_4d, load_volume, write_ct_series
from quantgpu.io.testing import write_slice

UID = "1.2.826.0.1.3680043.8.498.2"
PIX = np.zeros((4, 5), dtype=np.int16)


def _axial(tmp_path, zs, **kw):
    return [
        write_slice(tmp_path / f"{n:03d}.dcm", PIX + n, position=(0, 0, z), series_uid=UID, **kw)
        for n, z in enumerate(zs)
    ]


def test_missing_path():
    with pytest.raises(InputError, match="does not exist"):
        load_volume("/no/such/dir")


def test_directory_without_dicom(tmp_path):
    (tmp_path / "readme.txt").write_text("not an image")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "x.bin").write_bytes(b"\x08\x00\x10\x00" + bytes(range(256)))  # looks like a raw dataset
    with pytest.raises(InputError, match=r"no DICOM image files found \(2 files checked\)") as err:
        load_volume(tmp_path)
    assert str(tmp_path) in str(err.value)


def test_explicit_non_dicom_file(tmp_path):
    path = tmp_path / "notes.dcm"
    path.write_text("hello")
    with pytest.raises(InputError, match="not a DICOM file") as err:
        load_volume([path])
    assert "notes.dcm" in str(err.value)


def test_several_series_listed_without_patient_data(tmp_path):
    vol = np.zeros((2, 4, 4))
    write_ct_series(tmp_path / "a", vol, (1, 1, 1), series_description="Calcium 3.0", series_number=2)
    write_ct_series(tmp_path / "b", vol, (1, 1, 1), series_description="CTA 0.6", series_number=5)
    with pytest.raises(InputError) as err:
        load_volume(tmp_path)
    msg = str(err.value)
    assert "2 series found where one is expected" in msg
    assert "#2 'Calcium 3.0' (CT, 2 files)" in msg and "#5 'CTA 0.6' (CT, 2 files)" in msg
    assert "Phantom" not in msg  # no patient name
    infos = list_series(tmp_path)
    assert [(i.series_number, i.series_description, i.n_files) for i in infos] == [
        (2, "Calcium 3.0", 2),
        (5, "CTA 0.6", 2),
    ]
    # Each series still loads on its own.
    assert load_volume(infos[1].files).array.shape == (2, 4, 4)


def test_missing_pixel_data(tmp_path):
    _axial(tmp_path, [0.0, 1.0])
    write_slice(tmp_path / "002.dcm", PIX, position=(0, 0, 2.0), series_uid=UID, with_pixels=False)
    with pytest.raises(InputError, match="no pixel data") as err:
        load_volume(tmp_path)
    assert "002.dcm" in str(err.value)


def test_missing_slice_names_the_gap(tmp_path):
    _axial(tmp_path, [0.0, 2.5, 5.0, 10.0, 12.5])  # 7.5 missing
    with pytest.raises(InputError, match="non-uniform slice spacing") as err:
        load_volume(tmp_path)
    msg = str(err.value)
    assert "gap of 5.000 mm between 002.dcm and 003.dcm" in msg
    assert "expected 2.500 mm" in msg


def test_spacing_beyond_tolerance(tmp_path):
    # 2.0 mm steps with one 2.05 mm step: 2.5 % off, beyond the 1 % / 0.01 mm tolerance.
    _axial(tmp_path, [0.0, 2.0, 4.05, 6.05, 8.05, 10.05])
    with pytest.raises(InputError, match=r"gap of 2\.050 mm"):
        load_volume(tmp_path)


def test_gantry_tilt_is_refused(tmp_path):
    # A 15 degree tilt: each 2 mm step along z also moves 2*tan(15 deg) = 0.536 mm along y in-plane.
    shift = 2.0 * math.tan(math.radians(15))
    for k in range(4):
        write_slice(
            tmp_path / f"{k}.dcm", PIX, position=(0, k * shift, 2.0 * k), series_uid=UID, GantryDetectorTilt="15"
        )
    with pytest.raises(InputError, match="gantry tilt or sheared slices") as err:
        load_volume(tmp_path)
    assert f"{shift:.3f} mm" in str(err.value)
    assert "GantryDetectorTilt 15 deg" in str(err.value)


def test_sheared_series_from_writer_is_refused(tmp_path):
    m = np.diag([1.0, 1.0, 2.0, 1.0])
    m[0, 2] = 0.3  # k steps move 0.3 mm along x
    spacing = (float(np.hypot(2.0, 0.3)), 1.0, 1.0)
    write_ct_series(tmp_path, np.zeros((3, 4, 4)), spacing, ijk_to_lps=m)
    with pytest.raises(InputError, match="sheared"):
        load_volume(tmp_path)


def test_mixed_image_sizes(tmp_path):
    write_slice(tmp_path / "a.dcm", PIX, position=(0, 0, 0), series_uid=UID)
    write_slice(tmp_path / "b.dcm", np.zeros((6, 5), np.int16), position=(0, 0, 1), series_uid=UID)
    with pytest.raises(InputError, match=r"mixed image sizes in one series: 6x5 here, 4x5 in a.dcm") as err:
        load_volume(tmp_path)
    assert "b.dcm" in str(err.value)


def test_mixed_orientations(tmp_path):
    write_slice(tmp_path / "a.dcm", PIX, position=(0, 0, 0), series_uid=UID)
    write_slice(tmp_path / "b.dcm", PIX, position=(0, 0, 1), orientation=(1, 0, 0, 0, 0, -1), series_uid=UID)
    with pytest.raises(InputError, match="mixed slice orientations"):
        load_volume(tmp_path)


def test_invalid_orientation(tmp_path):
    write_slice(tmp_path / "a.dcm", PIX, position=(0, 0, 0), orientation=(1, 0, 0, 1, 0, 0), series_uid=UID)
    write_slice(tmp_path / "b.dcm", PIX, position=(0, 0, 1), orientation=(1, 0, 0, 1, 0, 0), series_uid=UID)
    with pytest.raises(InputError, match="not two orthogonal unit vectors"):
        load_volume(tmp_path)


def test_duplicate_positions_in_a_3d_series(tmp_path):
    _axial(tmp_path, [0.0, 1.0, 1.0, 2.0])
    with pytest.raises(InputError, match=r"duplicate slice position 1\.000 mm") as err:
        load_volume(tmp_path)
    assert "load it as 4D" in str(err.value)


def test_positions_missing_in_a_multi_slice_series(tmp_path):
    for k in range(2):
        write_slice(tmp_path / f"{k}.dcm", PIX, position=None, series_uid=UID)
    with pytest.raises(InputError, match="no ImagePositionPatient"):
        load_volume(tmp_path)


def test_truncated_file(tmp_path):
    paths = _axial(tmp_path, [0.0, 1.0])
    data = paths[1].read_bytes()
    paths[1].write_bytes(data[:200])
    with pytest.raises(InputError, match="incomplete DICOM file") as err:
        load_volume(tmp_path)
    assert "001.dcm" in str(err.value)


def test_truncated_pixel_data(tmp_path):
    paths = _axial(tmp_path, [0.0, 1.0])
    data = paths[0].read_bytes()
    paths[0].write_bytes(data[:-10])
    with pytest.raises(InputError, match="cannot decode pixel data") as err:
        load_volume(tmp_path)
    assert "000.dcm" in str(err.value)


def test_colour_image(tmp_path):
    path = write_slice(tmp_path / "rgb.dcm", PIX, position=(0, 0, 0), series_uid=UID)
    ds = pydicom.dcmread(path)
    ds.SamplesPerPixel = 3
    ds.PhotometricInterpretation = "RGB"
    ds.PlanarConfiguration = 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = np.zeros((4, 5, 3), np.uint8).tobytes()
    ds.save_as(path)
    with pytest.raises(InputError, match="colour images are not supported"):
        load_volume(path)


def test_4d_request_on_a_3d_series(tmp_path):
    _axial(tmp_path, [0.0, 1.0, 2.0], AcquisitionTime="101010")
    # One frame per position: no time series to speak of; frame times are [0].
    series = load_series_4d(tmp_path)
    assert series.frames.shape == (1, 3, 4, 5)
    np.testing.assert_array_equal(series.frame_times_s, [0.0])


def test_inputs_are_not_modified(tmp_path):
    paths = _axial(tmp_path, [0.0, 1.0, 2.0])
    before = {p: p.read_bytes() for p in paths}
    mtimes = {p: p.stat().st_mtime_ns for p in paths}
    load_volume(tmp_path)
    assert all(p.read_bytes() == before[p] and p.stat().st_mtime_ns == mtimes[p] for p in paths)


def test_results_beside_the_series_are_ignored(tmp_path):
    # A SEG and an SR from an earlier analysis sit next to the CT; the CT still loads as the one series.
    _axial(tmp_path, [0.0, 1.0, 2.0])
    seg = write_slice(
        tmp_path / "seg.dcm", PIX, position=(0, 0, 0), series_uid="1.2.9", SOPClassUID=pydicom.uid.SegmentationStorage
    )
    sr = pydicom.Dataset()
    sr.SOPClassUID = pydicom.uid.Comprehensive3DSRStorage
    sr.SOPInstanceUID = pydicom.uid.generate_uid()
    sr.SeriesInstanceUID = "1.2.10"
    sr.Modality = "SR"
    sr.file_meta = pydicom.dataset.FileMetaDataset()
    sr.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    sr.save_as(tmp_path / "sr.dcm", enforce_file_format=True)
    vol = load_volume(tmp_path)
    assert vol.array.shape == (3, 4, 5)
    assert [i.series_instance_uid for i in list_series(tmp_path)] == [UID]
    # Named explicitly, the SEG is refused with a reason.
    with pytest.raises(InputError, match="Segmentation object, not an image series"):
        load_volume([seg])
