"""Hand-made DICOM slices for tests of readers.

``write_ct_series`` derives every slice from one matrix, so it cannot produce the
broken series a loader must refuse (a missing slice, a shifted slice, mixed sizes)
and it cannot serve as an independent oracle for the reader's geometry. This
helper writes one slice with exactly the attributes it is given, through pydicom
only, so tests state positions and orientations as literal numbers.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid


def write_slice(
    path: str | os.PathLike,
    pixels: np.ndarray,
    *,
    position=(0.0, 0.0, 0.0),
    orientation=(1.0, 0.0, 0.0, 0.0, 1.0, 0.0),
    pixel_spacing=(1.0, 1.0),
    series_uid: str = "1.2.3.4",
    slope: float = 1.0,
    intercept: float = 0.0,
    with_pixels: bool = True,
    **attributes,
) -> Path:
    """Write one CT slice (int16 ``pixels``) with the given attributes; return its path.

    ``position``/``orientation``/``pixel_spacing`` become ImagePositionPatient,
    ImageOrientationPatient and PixelSpacing verbatim (None leaves them out);
    extra keyword arguments are set as DICOM keywords (e.g. AcquisitionTime="101500").
    """
    pixels = np.asarray(pixels, dtype=np.int16)
    ds = Dataset()
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = "1.2.3"
    ds.SeriesInstanceUID = series_uid
    ds.FrameOfReferenceUID = "1.2.3.5"
    ds.Modality = "CT"
    ds.PatientName = "QuantGPU^Phantom"
    ds.SeriesNumber = 1
    if position is not None:
        ds.ImagePositionPatient = [f"{v:.6f}" for v in position]
    if orientation is not None:
        ds.ImageOrientationPatient = [f"{v:.8f}" for v in orientation]
    if pixel_spacing is not None:
        ds.PixelSpacing = [f"{v:.6f}" for v in pixel_spacing]
    ds.SliceThickness = "1"
    ds.RescaleSlope = f"{slope:g}"
    ds.RescaleIntercept = f"{intercept:g}"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = pixels.shape
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    if with_pixels:
        ds.PixelData = pixels.tobytes()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path
