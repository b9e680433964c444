"""Shared image input/output: DICOM series, NRRD and NIfTI in, NRRD and DICOM out.

Every module loads its images through ``load_volume`` / ``load_series_4d`` so that
slice order, spacing, rescale and orientation are decided once, with the same
checks, and bad input is reported as ``quantgpu.errors.InputError``.
"""

from .dicom_writer import PHANTOM_PATIENT_NAME, write_ct_series
from .load import list_series, load_series_4d, load_volume
from .nrrd_io import write_nrrd
from .volume import LPS_TO_RAS, Series4D, SeriesInfo, Volume, ijk_to_lps_matrix, lps_to_ras_matrix, spacing_from_matrix

__all__ = [
    "LPS_TO_RAS",
    "PHANTOM_PATIENT_NAME",
    "Series4D",
    "SeriesInfo",
    "Volume",
    "ijk_to_lps_matrix",
    "list_series",
    "load_series_4d",
    "load_volume",
    "lps_to_ras_matrix",
    "spacing_from_matrix",
    "write_ct_series",
    "write_nrrd",
]
