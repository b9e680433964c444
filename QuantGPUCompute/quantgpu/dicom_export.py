"""Helpers shared by the DICOM writers of every module (SEG, SR, Parametric Map).

highdicom builds the objects; these helpers add what every QuantGPU object needs:
the same equipment fields, series context copied from the source images (a
missing BodyPartExamined makes dciodvfy report a missing Laterality, calcium.md
section 6), the source datasets in a form highdicom accepts, and an atomic save.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset

from . import __version__
from .errors import InputError
from .output import write_with

MANUFACTURER = "QuantGPU"
# highdicom requires DeviceSerialNumber; software has no serial number, so a fixed token is used
DEVICE_SERIAL_NUMBER = "QUANTGPU-SOFTWARE"

# Series-level attributes copied from the source images into derived objects.
SERIES_CONTEXT_KEYWORDS = ("BodyPartExamined", "Laterality")


def device_kwargs(model_name: str) -> dict[str, str]:
    """Equipment keyword arguments of highdicom's writers (manufacturer, model, version, serial)."""
    return {
        "manufacturer": MANUFACTURER,
        "manufacturer_model_name": model_name,
        "software_versions": __version__,
        "device_serial_number": DEVICE_SERIAL_NUMBER,
    }


def require_dicom_sources(headers: Sequence[Any], what: str, source: str = "") -> list[Dataset]:
    """The source image datasets, or an ``InputError`` when the input was not DICOM.

    NRRD and NIfTI inputs have no DICOM headers: a derived object cannot reference a
    source series then, and none is invented.
    """
    datasets = [getattr(h, "ds", h) for h in headers or []]
    if not datasets:
        raise InputError(
            f"{what} needs DICOM input (NRRD/NIfTI volumes have no source series to reference)", source or None
        )
    for ds in datasets:
        if not isinstance(ds, Dataset):
            raise InputError(f"{what}: source headers must be pydicom Datasets, got {type(ds).__name__}")
    return datasets


def copy_series_context(source: Dataset, target: Dataset) -> Dataset:
    """Copy BodyPartExamined and Laterality from ``source`` into ``target`` (when present)."""
    for keyword in SERIES_CONTEXT_KEYWORDS:
        value = source.get(keyword)
        if value not in (None, ""):
            setattr(target, keyword, value)
    return target


def save_dataset(ds: Dataset, path: str | os.PathLike, force: bool = False) -> Path:
    """Write ``ds`` as a DICOM file (preamble and file meta) atomically; no overwrite without ``force``."""
    return write_with(Path(path), lambda tmp: ds.save_as(tmp, enforce_file_format=True), force=force)


def series_number_after(sources: Sequence[Dataset], offset: int = 100) -> int:
    """A series number for a derived series that does not collide with the source's."""
    try:
        base = int(sources[0].get("SeriesNumber") or 0)
    except (TypeError, ValueError):
        base = 0
    return base + offset
