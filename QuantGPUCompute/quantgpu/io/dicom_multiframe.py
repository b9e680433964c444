"""Enhanced multi-frame images (Enhanced CT/MR, legacy converted): one header per frame.

An enhanced object stores every slice (and time point) as a frame of one file;
the geometry, rescale and timing of each frame live in the functional group
macros (PS3.3 C.7.6.16): the Per-frame sequence overrides the Shared one. Each
frame becomes a per-frame header with the classic single-frame attributes, so
that slice ordering, spacing checks and 4D grouping treat both kinds alike.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset

# Attributes copied from the top level of the file onto every frame header.
_TOP_LEVEL = (
    "SOPClassUID",
    "SOPInstanceUID",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "FrameOfReferenceUID",
    "SeriesNumber",
    "SeriesDescription",
    "Modality",
    "Rows",
    "Columns",
    "SamplesPerPixel",
    "PhotometricInterpretation",
    "BitsAllocated",
    "PixelRepresentation",
    "BodyPartExamined",
    "GantryDetectorTilt",
)

# (functional group sequence, attribute in it, attribute on the frame header)
_GROUPS = (
    ("PlanePositionSequence", "ImagePositionPatient", "ImagePositionPatient"),
    ("PlaneOrientationSequence", "ImageOrientationPatient", "ImageOrientationPatient"),
    ("PixelMeasuresSequence", "PixelSpacing", "PixelSpacing"),
    ("PixelMeasuresSequence", "SliceThickness", "SliceThickness"),
    ("PixelMeasuresSequence", "SpacingBetweenSlices", "SpacingBetweenSlices"),
    ("PixelValueTransformationSequence", "RescaleSlope", "RescaleSlope"),
    ("PixelValueTransformationSequence", "RescaleIntercept", "RescaleIntercept"),
    ("FrameContentSequence", "FrameAcquisitionDateTime", "AcquisitionDateTime"),
    ("FrameContentSequence", "TemporalPositionIndex", "TemporalPositionIdentifier"),
    ("CardiacSynchronizationSequence", "NominalCardiacTriggerDelayTime", "TriggerTime"),
    ("MREchoSequence", "EffectiveEchoTime", "EchoTime"),
    ("MRTimingAndRelatedParametersSequence", "RepetitionTime", "RepetitionTime"),
    ("MRTimingAndRelatedParametersSequence", "FlipAngle", "FlipAngle"),
)


def is_enhanced_multiframe(ds: Any) -> bool:
    return int(ds.get("NumberOfFrames", 1) or 1) > 1 and "PerFrameFunctionalGroupsSequence" in ds


def _group_value(item: Any, sequence: str, keyword: str):
    if item is None or sequence not in item or not item[sequence].value:
        return None
    return item[sequence].value[0].get(keyword)


def frame_headers(path: Path, ds: Any) -> list[tuple[int, Dataset]]:
    """(frame index, per-frame header) for every frame of an enhanced multi-frame file."""
    shared_seq = ds.get("SharedFunctionalGroupsSequence")
    shared = shared_seq[0] if shared_seq else None
    per_frame = ds.PerFrameFunctionalGroupsSequence
    out = []
    for n, item in enumerate(per_frame):
        fh = Dataset()
        for keyword in _TOP_LEVEL:
            if keyword in ds:
                setattr(fh, keyword, ds[keyword].value)
        for sequence, keyword, target in _GROUPS:
            value = _group_value(item, sequence, keyword)
            if value is None:
                value = _group_value(shared, sequence, keyword)
            if value is not None:
                setattr(fh, target, value)
        fh.InstanceNumber = n + 1  # frame number within the file, for messages
        out.append((n, fh))
    return out
