"""Entry points: one loader for every module, whatever the input format.

``load_volume`` takes a DICOM directory (searched recursively, exactly one image
series), a list of DICOM files, a ``.nrrd``/``.nhdr`` file or a ``.nii``/``.nii.gz``
file. ``load_series_4d`` takes the same inputs holding a time series.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import InputError
from .dicom_load import list_dicom_series, load_dicom_series_4d, load_dicom_volume
from .nifti_io import read_nifti
from .nrrd_io import load_nrrd_volume, read_nrrd
from .volume import Series4D, SeriesInfo, Volume

PathInput = str | os.PathLike | Sequence[str | os.PathLike]


def _file_format(path_or_paths: PathInput) -> str:
    if not isinstance(path_or_paths, (str, os.PathLike)):
        return "dicom"
    name = Path(path_or_paths).name.lower()
    if name.endswith((".nrrd", ".nhdr")):
        return "nrrd"
    if name.endswith((".nii", ".nii.gz")):
        return "nifti"
    return "dicom"


def _check_exists(path: PathInput) -> None:
    if isinstance(path, (str, os.PathLike)) and not Path(path).exists():
        raise InputError("does not exist", path)


def list_series(path: PathInput) -> list[SeriesInfo]:
    """The DICOM image series under ``path`` (no pixel data read)."""
    _check_exists(path)
    return list_dicom_series(path)


def load_volume(path_or_paths: PathInput) -> Volume:
    """One scalar volume (float32 [k, j, i], rescale applied) with its geometry."""
    _check_exists(path_or_paths)
    fmt = _file_format(path_or_paths)
    if fmt == "nrrd":
        return load_nrrd_volume(path_or_paths)
    if fmt == "nifti":
        array, m, spacing, _ = read_nifti(path_or_paths)
        if array.ndim != 3:
            raise InputError(f"holds a {array.shape[0]}-frame time series, not one volume", path_or_paths)
        return Volume(array=array, spacing=spacing, ijk_to_lps=m, source=str(path_or_paths))
    return load_dicom_volume(path_or_paths)


def _series_from_array(frames: np.ndarray, m, spacing, times, interval, path) -> Series4D:
    n = frames.shape[0]
    if interval is not None:
        if not (np.isfinite(interval) and interval > 0):
            raise InputError(f"frame interval must be a positive number of seconds, got {interval}")
        times = np.arange(n, dtype=float) * float(interval)
    if times is None:
        raise InputError("no frame times in the header: give the frame interval in seconds", path)
    if np.any(np.diff(times) <= 0):
        raise InputError("frame times in the header do not increase", path)
    first = Volume(array=frames[0], spacing=spacing, ijk_to_lps=m, source=str(path))
    return Series4D(frames=frames, frame_times_s=np.asarray(times, dtype=float), frame=first)


def load_series_4d(path: PathInput, frame_interval_s: float | None = None) -> Series4D:
    """A time series (float32 [t, k, j, i]) with frame times in s relative to the first frame.

    ``frame_interval_s``, when given, sets uniform frame times and overrides the
    header; it is required when the input carries no timing.
    """
    _check_exists(path)
    fmt = _file_format(path)
    if fmt == "nrrd":
        array, m, spacing, times = read_nrrd(path)
        if array.ndim != 4:
            raise InputError("holds one volume, not a time series (expected 4 axes)", path)
        return _series_from_array(array, m, spacing, times, frame_interval_s, path)
    if fmt == "nifti":
        array, m, spacing, interval = read_nifti(path)
        if array.ndim != 4:
            raise InputError("holds one volume, not a time series (expected 4 axes)", path)
        times = None if interval is None else np.arange(array.shape[0]) * interval
        return _series_from_array(array, m, spacing, times, frame_interval_s, path)
    return load_dicom_series_4d(path, frame_interval_s)
