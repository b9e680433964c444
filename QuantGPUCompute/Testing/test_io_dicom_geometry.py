"""DICOM series geometry: slice order, spacing, orientation, rescale (hand-made slices).

Expected matrices and points are written out by hand from the DICOM definitions
(PS3.3 C.7.6.2.1.1): P(i, j) = IPP + i * di * row + j * dj * col, with
PixelSpacing = (dj, di) and the slice normal n = row x col.
"""

from __future__ import annotations

import math

import numpy as np
import pydicom
import pytest

from quantgpu.io import load_volume, write_ct_series
from quantgpu.io.testing import write_slice

UID = "1.2.826.0.1.3680043.8.498.1"


def _stored(k: int, rows: int = 3, cols: int = 4) -> np.ndarray:
    # Distinct values per slice, row and column so that any transposition shows.
    return (100 * k + 10 * np.arange(rows)[:, None] + np.arange(cols)[None, :]).astype(np.int16)


def test_axial_series_values_spacing_and_matrix(tmp_path):
    zs = [-100.0, -97.5, -95.0, -92.5]
    # File names in an order unrelated to position.
    for k, name in zip(range(4), ["c.dcm", "a.dcm", "d.dcm", "b.dcm"]):
        write_slice(
            tmp_path / name,
            _stored(k),
            position=(-50.0, -60.0, zs[k]),
            pixel_spacing=(0.6, 0.7),
            series_uid=UID,
            slope=2.0,
            intercept=-1024.0,
        )
    vol = load_volume(tmp_path)
    assert vol.array.dtype == np.float32
    assert vol.array.shape == (4, 3, 4)
    for k in range(4):
        np.testing.assert_array_equal(vol.array[k], 2.0 * _stored(k) - 1024.0)
    assert vol.spacing == pytest.approx((2.5, 0.6, 0.7))
    expected = np.array([[0.7, 0, 0, -50.0], [0, 0.6, 0, -60.0], [0, 0, 2.5, -100.0], [0, 0, 0, 1]])
    np.testing.assert_allclose(vol.ijk_to_lps, expected, atol=1e-9)
    # RAS flips x and y (Slicer convention).
    np.testing.assert_allclose(vol.ijk_to_ras @ [0, 0, 0, 1], [50.0, 60.0, -100.0, 1.0], atol=1e-9)
    assert vol.modality == "CT"
    assert vol.series_instance_uid == UID
    assert len(vol.headers) == 4
    assert [float(h.ImagePositionPatient[2]) for h in vol.headers] == zs
    assert all("PixelData" not in h for h in vol.headers)


def test_reversed_slice_order_is_sorted_along_the_normal(tmp_path):
    # Instance 1 is the most superior slice; the array still runs along +normal (inferior to superior).
    zs = [20.0, 18.0, 16.0]
    for n, z in enumerate(zs):
        write_slice(tmp_path / f"{n:02d}.dcm", _stored(n), position=(0.0, 0.0, z), series_uid=UID, InstanceNumber=n + 1)
    vol = load_volume(tmp_path)
    np.testing.assert_array_equal(vol.array[0], _stored(2))  # z = 16
    np.testing.assert_array_equal(vol.array[2], _stored(0))  # z = 20
    np.testing.assert_allclose(vol.ijk_to_lps[:3, 3], [0, 0, 16.0])
    np.testing.assert_allclose(vol.ijk_to_lps[:3, 2], [0, 0, 2.0])
    assert vol.spacing[0] == pytest.approx(2.0)


def test_oblique_orientation_hand_computed_point(tmp_path):
    c, s = math.cos(math.radians(30)), math.sin(math.radians(30))
    row, col = np.array([c, s, 0.0]), np.array([0.0, 0.0, -1.0])
    normal = np.array([-s, c, 0.0])  # row x col, worked out by hand
    p0 = np.array([10.0, -20.0, 30.0])
    dk, dj, di = 1.25, 0.9, 0.8
    for k in reversed(range(5)):  # written in reverse order
        write_slice(
            tmp_path / f"s{4 - k}.dcm",
            _stored(k),
            position=p0 + k * dk * normal,
            orientation=(*row, *col),
            pixel_spacing=(dj, di),
            series_uid=UID,
        )
    vol = load_volume(tmp_path)
    assert vol.spacing == pytest.approx((dk, dj, di), abs=1e-5)
    # Voxel (i=2, j=1, k=3): p0 + 2*0.8*row + 1*0.9*col + 3*1.25*normal, by hand:
    lps = np.array([10 + 1.6 * c - 3.75 * s, -20 + 1.6 * s + 3.75 * c, 30 - 0.9])
    np.testing.assert_allclose(lps, [9.510641, -15.952405, 29.1], atol=1e-5)
    np.testing.assert_allclose(vol.ijk_to_lps @ [2, 1, 3, 1], [*lps, 1], atol=1e-5)
    np.testing.assert_allclose(vol.ijk_to_ras @ [2, 1, 3, 1], [-lps[0], -lps[1], lps[2], 1], atol=1e-5)
    np.testing.assert_array_equal(vol.array[3], _stored(3))


def test_overlapping_reconstruction_spacing_is_the_increment(tmp_path):
    # 3 mm thick slices every 1.5 mm: spacing must be 1.5, not SliceThickness.
    for k in range(6):
        write_slice(tmp_path / f"{k}.dcm", _stored(k), position=(0, 0, 1.5 * k), series_uid=UID, SliceThickness="3")
    vol = load_volume(tmp_path)
    assert vol.spacing[0] == pytest.approx(1.5)
    assert vol.array.shape[0] == 6


def test_small_position_jitter_is_tolerated(tmp_path):
    # Scanners round positions; 0.004 mm noise on a 2 mm increment is within tolerance.
    jitter = [0.0, 0.004, -0.003, 0.002, 0.0]
    for k in range(5):
        write_slice(tmp_path / f"{k}.dcm", _stored(k), position=(0, 0, 2.0 * k + jitter[k]), series_uid=UID)
    vol = load_volume(tmp_path)
    assert vol.spacing[0] == pytest.approx(2.0, abs=1e-3)


def test_file_list_input_and_single_file(tmp_path):
    paths = [write_slice(tmp_path / f"{k}.dcm", _stored(k), position=(0, 0, 3.0 * k), series_uid=UID) for k in range(3)]
    vol = load_volume([str(p) for p in paths[::-1]])
    assert vol.spacing[0] == pytest.approx(3.0)
    np.testing.assert_array_equal(vol.array[0], _stored(0))
    one = load_volume(paths[1])
    assert one.array.shape == (1, 3, 4)
    np.testing.assert_allclose(one.ijk_to_lps[:3, 3], [0, 0, 3.0])


def test_projection_image_without_position(tmp_path):
    # Mammograms (MG) carry no ImagePositionPatient: one slice, axis-aligned, ImagerPixelSpacing.
    path = write_slice(
        tmp_path / "mg.dcm",
        _stored(1),
        position=None,
        orientation=None,
        pixel_spacing=None,
        ImagerPixelSpacing=["0.07", "0.08"],
    )
    vol = load_volume(path)
    assert vol.spacing[1:] == pytest.approx((0.07, 0.08))
    np.testing.assert_array_equal(vol.array[0], _stored(1))


def test_writer_attributes_and_round_trip(tmp_path):
    hu = np.stack([_stored(k) - 1000 for k in range(4)]).astype(float)
    c, s = math.cos(math.radians(20)), math.sin(math.radians(20))
    m = np.eye(4)
    m[:3, 0] = 0.7 * np.array([c, s, 0])
    m[:3, 1] = 0.6 * np.array([-s, c, 0])
    m[:3, 2] = 2.5 * np.array([0, 0, 1])
    m[:3, 3] = [5.0, 6.0, 7.0]
    files = write_ct_series(tmp_path / "ct", hu, (2.5, 0.6, 0.7), ijk_to_lps=m, series_description="rt")
    assert len(files) == 4
    ds = pydicom.dcmread(files[2])
    assert ds.SOPClassUID == pydicom.uid.CTImageStorage
    assert str(ds.PatientName) == "QuantGPU^Phantom"
    assert [float(v) for v in ds.PixelSpacing] == pytest.approx([0.6, 0.7])  # (between rows, between columns)
    np.testing.assert_allclose([float(v) for v in ds.ImagePositionPatient], [5.0, 6.0, 7.0 + 2 * 2.5])
    np.testing.assert_allclose([float(v) for v in ds.ImageOrientationPatient], [c, s, 0, -s, c, 0], atol=1e-9)
    assert ds.pixel_array.dtype == np.int16
    # Integer HU are stored exactly: stored * slope + intercept.
    np.testing.assert_array_equal(ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept), hu[2])
    vol = load_volume(tmp_path / "ct")
    np.testing.assert_array_equal(vol.array, hu)
    np.testing.assert_allclose(vol.ijk_to_lps, m, atol=1e-6)


def test_writer_non_integer_values_within_half_a_step(tmp_path):
    rng = np.random.default_rng(7)
    values = rng.uniform(-5.0, 3000.0, size=(2, 8, 8))
    write_ct_series(tmp_path / "ct", values, (1.0, 1.0, 1.0))
    vol = load_volume(tmp_path / "ct")
    step = 3005.0 / 65000.0  # value range / stored levels used by the writer
    assert np.max(np.abs(vol.array - values)) <= step / 2 + 1e-3


def test_raw_datasets_without_preamble(tmp_path):
    # Older tools write the dataset alone: no 128-byte preamble, no 'DICM', no file meta.
    for k in range(3):
        path = write_slice(tmp_path / f"tmp{k}.dcm", _stored(k), position=(0, 0, 2.0 * k), series_uid=UID, slope=1.0)
        ds = pydicom.dcmread(path)
        del ds.file_meta
        ds.preamble = None
        ds.save_as(tmp_path / f"raw{k}", implicit_vr=True, little_endian=True)
        path.unlink()
    assert (tmp_path / "raw0").read_bytes()[:2] == b"\x08\x00"
    vol = load_volume(tmp_path)
    assert vol.spacing[0] == pytest.approx(2.0)
    np.testing.assert_array_equal(vol.array[2], _stored(2))
