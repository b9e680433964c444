"""DICOM series writer: standard-conformant files (dciodvfy), safe overwrite rules."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pydicom
import pytest

from quantgpu.errors import InputError, OutputExistsError
from quantgpu.io import load_volume, write_ct_series

DCIODVFY = shutil.which("dciodvfy")


def _dciodvfy_errors(path) -> list[str]:
    proc = subprocess.run([DCIODVFY, str(path)], capture_output=True, text=True, timeout=60)
    return [line for line in (proc.stdout + proc.stderr).splitlines() if line.startswith("Error")]


@pytest.mark.skipif(DCIODVFY is None, reason="dicom3tools (dciodvfy) not installed")
@pytest.mark.parametrize(
    ("modality", "frame_times"),
    [("CT", None), ("CT", [0.0, 1.0, 3.0]), ("MR", [0.0, 1.5, 3.0])],
)
def test_files_pass_dciodvfy(tmp_path, modality, frame_times):
    shape = (2, 6, 5) if frame_times is None else (len(frame_times), 2, 6, 5)
    data = np.random.default_rng(1).normal(50, 30, size=shape)
    files = write_ct_series(
        tmp_path,
        data,
        (2.0, 0.5, 0.5),
        frame_times_s=frame_times,
        modality=modality,
        echo_time_s=0.02,
        repetition_time_s=1.5,
    )
    for path in (files[0], files[-1]):
        assert _dciodvfy_errors(path) == []
    ds = pydicom.dcmread(files[-1])
    assert ds.SOPClassUID == (pydicom.uid.CTImageStorage if modality == "CT" else pydicom.uid.MRImageStorage)
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID", "SOPInstanceUID"):
        assert pydicom.uid.UID(ds[keyword].value).is_valid
    assert str(ds.PatientName) == "QuantGPU^Phantom"
    assert ds.BodyPartExamined == "CHEST"
    if modality == "CT":
        assert float(ds.KVP) == 120.0
    if frame_times is not None:
        assert int(ds.TemporalPositionIdentifier) == len(frame_times)
        assert ds.AcquisitionTime == ds.ContentTime


def test_one_series_shares_uids(tmp_path):
    files = write_ct_series(tmp_path, np.zeros((3, 4, 4)), (1.0, 1.0, 1.0))
    headers = [pydicom.dcmread(f, stop_before_pixels=True) for f in files]
    assert len({h.SeriesInstanceUID for h in headers}) == 1
    assert len({h.FrameOfReferenceUID for h in headers}) == 1
    assert len({h.SOPInstanceUID for h in headers}) == 3
    assert [int(h.InstanceNumber) for h in headers] == [1, 2, 3]


def test_refuses_to_overwrite_without_force(tmp_path):
    write_ct_series(tmp_path, np.zeros((2, 4, 4)), (1.0, 1.0, 1.0))
    with pytest.raises(OutputExistsError):
        write_ct_series(tmp_path, np.ones((3, 4, 4)), (1.0, 1.0, 1.0))
    assert load_volume(tmp_path).array.shape == (2, 4, 4)
    # With force the old series is replaced, not mixed with the new one.
    write_ct_series(tmp_path, np.ones((3, 4, 4)), (1.0, 1.0, 1.0), force=True)
    vol = load_volume(tmp_path)
    assert vol.array.shape == (3, 4, 4)
    np.testing.assert_array_equal(vol.array, 1.0)


def test_force_keeps_foreign_files(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match=r"files other than \.dcm"):
        write_ct_series(tmp_path, np.zeros((1, 4, 4)), (1.0, 1.0, 1.0), force=True)
    assert (tmp_path / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"array_hu": np.zeros((4, 4))}, r"expected a \[k, j, i\] array"),
        ({"array_hu": np.zeros((2, 2, 4, 4)), "frame_times_s": [0, 1, 2]}, "with 3 frames"),
        ({"array_hu": np.full((1, 2, 2), np.nan)}, "NaN"),
        ({"modality": "PT"}, "cannot write modality"),
        ({"ijk_to_lps": np.diag([2.0, 1.0, 1.0, 1.0])}, "does not match"),
    ],
)
def test_bad_writer_arguments(tmp_path, kwargs, message):
    args = {"array_hu": np.zeros((1, 2, 2))} | kwargs
    with pytest.raises(InputError, match=message):
        write_ct_series(tmp_path / "out", spacing=(1.0, 1.0, 1.0), **args)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
