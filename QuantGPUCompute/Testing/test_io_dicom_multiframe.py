"""Enhanced multi-frame CT: per-frame geometry, rescale and time from the functional groups."""

from __future__ import annotations

import numpy as np
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import EnhancedCTImageStorage, ExplicitVRLittleEndian, generate_uid

from quantgpu.io import list_series, load_series_4d, load_volume

ROWS, COLS = 3, 4


def _item(**kw) -> Dataset:
    ds = Dataset()
    for k, v in kw.items():
        setattr(ds, k, v)
    return ds


def _write_enhanced(path, stored, per_frame, *, orientation=(1, 0, 0, 0, 1, 0), spacing=(0.6, 0.5)):
    """Enhanced CT file; per_frame[n] is a dict of functional group items for frame n."""
    ds = Dataset()
    ds.SOPClassUID = EnhancedCTImageStorage
    ds.SOPInstanceUID = generate_uid()
    ds.SeriesInstanceUID = "1.2.826.0.1.3680043.8.498.77"
    ds.StudyInstanceUID = "1.2.3"
    ds.Modality = "CT"
    ds.SeriesNumber = 4
    ds.Rows, ds.Columns = ROWS, COLS
    ds.NumberOfFrames = len(stored)
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    ds.SharedFunctionalGroupsSequence = [
        _item(
            PlaneOrientationSequence=[_item(ImageOrientationPatient=list(orientation))],
            PixelMeasuresSequence=[_item(PixelSpacing=list(spacing), SliceThickness=1.0)],
            PixelValueTransformationSequence=[_item(RescaleSlope=1.0, RescaleIntercept=-1024.0, RescaleType="HU")],
        )
    ]
    ds.PerFrameFunctionalGroupsSequence = [_item(**groups) for groups in per_frame]
    ds.PixelData = np.asarray(stored, dtype=np.int16).tobytes()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.save_as(path, enforce_file_format=True)
    return path


def _plane(z: float):
    return [_item(ImagePositionPatient=[-20.0, 30.0, z])]


def test_enhanced_ct_volume_sorted_and_rescaled(tmp_path):
    zs = [9.0, 6.0, 3.0, 0.0]  # frames stored from superior to inferior
    stored = np.stack([np.full((ROWS, COLS), 100 * n, np.int16) for n in range(4)])
    per_frame = [{"PlanePositionSequence": _plane(z)} for z in zs]
    # Frame 2 overrides the shared rescale.
    per_frame[2]["PixelValueTransformationSequence"] = [_item(RescaleSlope=2.0, RescaleIntercept=0.0)]
    path = _write_enhanced(tmp_path / "enhanced.dcm", stored, per_frame)
    vol = load_volume(path)
    assert vol.array.shape == (4, ROWS, COLS)
    # k = 0 is z = 0 (stored frame 3): 300 - 1024; k = 1 is z = 3 (frame 2, slope 2): 2 * 200.
    np.testing.assert_array_equal(vol.array[:, 0, 0], [300 - 1024, 400, 100 - 1024, 0 - 1024])
    assert vol.spacing == pytest.approx((3.0, 0.6, 0.5))
    np.testing.assert_allclose(vol.ijk_to_lps, [[0.5, 0, 0, -20], [0, 0.6, 0, 30], [0, 0, 3, 0], [0, 0, 0, 1]])
    assert len(vol.headers) == 4
    info = list_series(tmp_path)[0]
    assert (info.n_files, info.n_positions, info.n_frames) == (1, 4, 1)


def test_enhanced_ct_time_series(tmp_path):
    offsets = [0.0, 2.0, 5.5]
    stored, per_frame = [], []
    order = [(t, k) for t in range(3) for k in range(2)]
    for t, k in reversed(order):  # frames in the file in a scrambled (reverse) order
        stored.append(np.full((ROWS, COLS), 1000 + 100 * t + k, np.int16))
        per_frame.append(
            {
                "PlanePositionSequence": _plane(4.0 * k),
                "FrameContentSequence": [
                    _item(TemporalPositionIndex=t + 1, FrameAcquisitionDateTime=f"202601021015{offsets[t]:09.6f}")
                ],
            }
        )
    path = _write_enhanced(tmp_path / "perfusion.dcm", np.stack(stored), per_frame)
    series = load_series_4d(path)
    assert series.frames.shape == (3, 2, ROWS, COLS)
    for t in range(3):
        for k in range(2):
            assert series.frames[t, k, 0, 0] == 1000 + 100 * t + k - 1024
    np.testing.assert_allclose(series.frame_times_s, offsets, atol=1e-6)
    assert series.spacing[0] == pytest.approx(4.0)
    info = list_series(tmp_path)[0]
    assert (info.n_files, info.n_positions, info.n_frames) == (1, 2, 3)
