"""Write a volume (or a time series of volumes) as a real DICOM image series.

Used for digital phantoms, demos and tests: the files are CT Image Storage (or MR
Image Storage for ``modality="MR"``) with the attributes a PACS and Slicer's DICOM
loader expect, and they pass ``dciodvfy`` without errors. Pixels are stored as
int16 with RescaleSlope/RescaleIntercept (PS3.3 C.11.1.1.2); integer HU values are
stored exactly, other values to within half a slope step.
"""

from __future__ import annotations

import datetime
import os
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, CTImageStorage, ExplicitVRLittleEndian, MRImageStorage, generate_uid

from ..errors import InputError, OutputExistsError
from ..output import atomic_path
from .volume import default_ijk_to_lps, spacing_from_matrix

PHANTOM_PATIENT_NAME = "QuantGPU^Phantom"
_SOP_CLASS = {"CT": CTImageStorage, "MR": MRImageStorage}
_INT16 = (-32768, 32767)


def _ds(value: float) -> str:
    """A Decimal String of at most 16 characters (PS3.5 6.2)."""
    for digits in range(12, 2, -1):
        text = f"{value:.{digits}g}"
        if len(text) <= 16:
            return text
    raise ValueError(f"cannot write {value} as DS")


def _tm(seconds: float) -> str:
    seconds = seconds % 86400.0
    h, rem = divmod(seconds, 3600.0)
    m, s = divmod(rem, 60.0)
    return f"{int(h):02d}{int(m):02d}{s:09.6f}"


def _rescale(values: np.ndarray, modality: str) -> tuple[float, float]:
    """(slope, intercept) so that stored = round((value - intercept) / slope) fits int16."""
    lo, hi = float(values.min()), float(values.max())
    intercept = -1024.0 if modality == "CT" else 0.0
    integral = np.array_equal(values, np.round(values))
    if integral and _INT16[0] <= lo - intercept and hi - intercept <= _INT16[1]:
        return 1.0, intercept
    slope = float(_ds((hi - lo) / 65000.0)) if hi > lo else 1.0
    return slope, float(_ds((hi + lo) / 2.0))


def _clear_previous_series(out_dir: Path, force: bool) -> None:
    existing = [p for p in out_dir.iterdir()] if out_dir.is_dir() else []
    if not existing:
        return
    if not force:
        raise OutputExistsError("output directory is not empty; pass --force to overwrite", out_dir)
    others = [p.name for p in existing if not (p.is_file() and p.suffix == ".dcm")]
    if others:
        raise InputError(f"refusing to overwrite: directory holds files other than .dcm ({others[0]})", out_dir)
    for p in existing:  # an old series left beside a new one would load as two series
        p.unlink()


def _base_dataset(modality: str, rows: int, cols: int, kw: dict) -> Dataset:
    now = datetime.datetime.now()
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = _SOP_CLASS[modality]
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL" if modality == "CT" else "OTHER"]
    ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = kw["study_date"] or now.strftime("%Y%m%d")
    ds.StudyTime = ds.SeriesTime = _tm(kw["start_time_s"])
    ds.AccessionNumber = ""
    ds.Modality = modality
    ds.Manufacturer = "QuantGPU"
    ds.ManufacturerModelName = "digital phantom"
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = kw["study_description"]
    ds.SeriesDescription = kw["series_description"]
    ds.PatientName = kw["patient_name"]
    ds.PatientID = kw["patient_id"]
    ds.PatientBirthDate = ""
    ds.PatientSex = kw["patient_sex"]
    ds.BodyPartExamined = kw["body_part"]
    ds.StudyInstanceUID = kw["study_instance_uid"]
    ds.SeriesInstanceUID = kw["series_instance_uid"]
    ds.StudyID = "1"
    ds.SeriesNumber = kw["series_number"]
    ds.FrameOfReferenceUID = kw["frame_of_reference_uid"]
    ds.PositionReferenceIndicator = ""
    ds.PatientPosition = "HFS"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = rows, cols
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    if modality == "CT":
        ds.KVP = _ds(kw["kvp"])
        ds.ConvolutionKernel = "STANDARD"
    else:
        ds.ScanningSequence = "GR"
        ds.SequenceVariant = "SP"
        ds.ScanOptions = ""
        ds.MRAcquisitionType = "2D"
        ds.EchoTrainLength = 1
        ds.EchoTime = _ds(1000.0 * (kw["echo_time_s"] or 0.0))  # DICOM stores ms
        ds.RepetitionTime = _ds(1000.0 * (kw["repetition_time_s"] or 0.0))
        if kw["flip_angle_deg"] is not None:
            ds.FlipAngle = _ds(kw["flip_angle_deg"])
        ds.MagneticFieldStrength = "1.5"
        ds.ImagedNucleus = "1H"
    return ds


def write_ct_series(
    out_dir: str | os.PathLike,
    array_hu: np.ndarray,
    spacing,
    *,
    ijk_to_lps: np.ndarray | None = None,
    frame_times_s=None,
    modality: str = "CT",
    series_description: str = "",
    study_description: str = "QuantGPU phantom",
    patient_name: str = PHANTOM_PATIENT_NAME,
    patient_id: str = "QUANTGPU-PHANTOM",
    patient_sex: str = "O",
    body_part: str = "CHEST",
    kvp: float = 120.0,
    slice_thickness_mm: float | None = None,
    series_number: int = 1,
    study_instance_uid: str | None = None,
    series_instance_uid: str | None = None,
    frame_of_reference_uid: str | None = None,
    study_date: str | None = None,
    start_time_s: float = 10 * 3600.0,
    echo_time_s: float | None = None,
    repetition_time_s: float | None = None,
    flip_angle_deg: float | None = None,
    force: bool = False,
) -> list[Path]:
    """Write ``array_hu`` ([k, j, i], or [t, k, j, i] with ``frame_times_s``) as one DICOM series.

    ``spacing`` is (dk, dj, di) mm; ``ijk_to_lps`` defaults to axial slices at the
    origin. The slice positions follow the matrix exactly, so a sheared matrix
    writes a tilted series (useful to test readers). For a time series every frame
    repeats the slice positions, with AcquisitionTime/ContentTime = start +
    frame time, TemporalPositionIdentifier and AcquisitionNumber = frame number.
    Returns the written files in (t, k) order.
    """
    modality = modality.upper()
    if modality not in _SOP_CLASS:
        raise InputError(f"cannot write modality {modality!r}; use CT or MR")
    data = np.asarray(array_hu, dtype=np.float64)
    if frame_times_s is None:
        if data.ndim != 3:
            raise InputError(f"expected a [k, j, i] array, got shape {data.shape}")
        data = data[None]
        times = np.zeros(1)
    else:
        times = np.asarray(frame_times_s, dtype=float).ravel()
        if data.ndim != 4 or data.shape[0] != times.size:
            raise InputError(f"expected a [t, k, j, i] array with {times.size} frames, got shape {data.shape}")
    if not np.all(np.isfinite(data)):
        raise InputError("array holds NaN or infinite values")
    dk, dj, di = (float(s) for s in spacing)
    m = default_ijk_to_lps((dk, dj, di)) if ijk_to_lps is None else np.asarray(ijk_to_lps, dtype=float)
    if not np.allclose(spacing_from_matrix(m), (dk, dj, di), rtol=1e-4, atol=1e-6):
        raise InputError(f"spacing {spacing} does not match the ijk_to_lps column lengths {spacing_from_matrix(m)}")
    row_cos, col_cos = m[:3, 0] / di, m[:3, 1] / dj

    out = Path(out_dir)
    _clear_previous_series(out, force)
    out.mkdir(parents=True, exist_ok=True)
    kw = {
        "series_description": series_description,
        "study_description": study_description,
        "patient_name": patient_name,
        "patient_id": patient_id,
        "patient_sex": patient_sex,
        "body_part": body_part,
        "kvp": kvp,
        "series_number": series_number,
        "study_instance_uid": study_instance_uid or generate_uid(),
        "series_instance_uid": series_instance_uid or generate_uid(),
        "frame_of_reference_uid": frame_of_reference_uid or generate_uid(),
        "study_date": study_date,
        "start_time_s": start_time_s,
        "echo_time_s": echo_time_s,
        "repetition_time_s": repetition_time_s,
        "flip_angle_deg": flip_angle_deg,
    }
    n_t, n_k, rows, cols = data.shape
    ds = _base_dataset(modality, rows, cols, kw)
    ds.ImageOrientationPatient = [_ds(v) for v in (*row_cos, *col_cos)]
    ds.PixelSpacing = [_ds(dj), _ds(di)]  # (between rows, between columns)
    ds.SliceThickness = _ds(slice_thickness_mm if slice_thickness_mm is not None else dk)
    if n_t > 1:
        ds.NumberOfTemporalPositions = n_t
    slope, intercept = _rescale(data, modality)
    ds.RescaleSlope, ds.RescaleIntercept = _ds(slope), _ds(intercept)
    if modality == "CT":
        ds.RescaleType = "HU"

    written: list[Path] = []
    for t in range(n_t):
        acq_time = _tm(start_time_s + times[t])
        ds.AcquisitionTime = ds.ContentTime = acq_time
        ds.AcquisitionNumber = t + 1
        if n_t > 1:
            ds.TemporalPositionIdentifier = t + 1
        stored = np.round((data[t] - intercept) / slope)
        stored = np.clip(stored, *_INT16).astype(np.int16)
        for k in range(n_k):
            instance = t * n_k + k + 1
            position = m @ np.array([0.0, 0.0, float(k), 1.0])
            ds.ImagePositionPatient = [_ds(v) for v in position[:3]]
            ds.SliceLocation = _ds(float(position[:3] @ np.cross(row_cos, col_cos)))
            ds.InstanceNumber = instance
            ds.SOPInstanceUID = generate_uid()
            ds.PixelData = stored[k].tobytes()
            ds.file_meta = FileMetaDataset()
            ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
            ds.file_meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
            path = out / f"{instance:05d}.dcm"
            with atomic_path(path, force=force) as tmp:
                ds.save_as(tmp, enforce_file_format=True)
            written.append(path)
    return written
