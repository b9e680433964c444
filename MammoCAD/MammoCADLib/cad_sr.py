"""DICOM Mammography CAD SR (TID 4000) from highdicom content items (mammo.md §6).

No library builds TID 4000, so the tree is assembled from highdicom content items, wrapped in a
Comprehensive SR for the document modules, and then re-labelled as Mammography CAD SR:
SOP class 1.2.840.10008.5.1.4.1.1.88.50 and ContentTemplateSequence DCMR 4000. TID 4020 image
entries (Image Library, SELECTED FROM) are unnamed, while highdicom requires a name: the names are
stripped afterwards. DCM 111034 is defined here because pydicom's meaning carries a zero-width space.

Tree (depth: relationship -> value type, concept):
0 CONTAINER 111036 Mammography CAD Report
1   HAS CONCEPT MOD CODE 121049 Language = en-US
1   CONTAINS CONTAINER 111028 Image Library
2     CONTAINS IMAGE (one per input)  + HAS ACQ CONTEXT CODE 111027 laterality, 111031 view
1   CONTAINS CODE 111017 CAD Processing and Findings Summary = 111242 with / 111241 without findings
2     INFERRED FROM CONTAINER 111034 Individual Impression/Recommendation (one per displayed mark)
3       HAS CONCEPT MOD CODE 111056 Rendering Intent = 111150 Presentation Required
3       CONTAINS CODE 111059 Single Image Finding = calcification cluster / mass
4         HAS PROPERTIES NUM 111012 Certainty of Finding (%), TEXT 111001/111003 algorithm
4         HAS PROPERTIES SCOORD POINT 111010 Center (column + 0.5, row + 0.5)
5           SELECTED FROM IMAGE
1   CONTAINS CODE 111064 Summary of Detections = 111222 Succeeded
2     INFERRED FROM CONTAINER 111063 Successful Detections
3       CONTAINS CODE 111022 Detection Performed = finding type + algorithm name/version
4         INFERRED FROM (by reference) each Image Library entry
1   CONTAINS CODE 111065 Summary of Analyses = 111225 Not Attempted
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.sr.coding import Code

from quantgpu.errors import InputError

MAMMOGRAPHY_CAD_SR = "1.2.840.10008.5.1.4.1.1.88.50"
ALGORITHM_NAME = "QuantGPU MammoCAD classical detector"

# Codes (DICOM PS3.16 CID 6047, 6034, 6042, 6016, 6022, 4014).
MAMMOGRAPHY_CAD_REPORT = Code("111036", "DCM", "Mammography CAD Report")
LANGUAGE = Code("121049", "DCM", "Language of Content Item and Descendants")
EN_US = Code("en-US", "RFC5646", "English (United States)")
IMAGE_LIBRARY = Code("111028", "DCM", "Image Library")
IMAGE_LATERALITY = Code("111027", "DCM", "Image Laterality")
IMAGE_VIEW = Code("111031", "DCM", "Image View")
FINDINGS_SUMMARY = Code("111017", "DCM", "CAD Processing and Findings Summary")
WITH_FINDINGS = Code("111242", "DCM", "All algorithms succeeded; with findings")
WITHOUT_FINDINGS = Code("111241", "DCM", "All algorithms succeeded; without findings")
# Defined here: pydicom's meaning contains a zero-width space (mammo.md §4).
INDIVIDUAL_IMPRESSION = Code("111034", "DCM", "Individual Impression/Recommendation")
RENDERING_INTENT = Code("111056", "DCM", "Rendering Intent")
PRESENTATION_REQUIRED = Code("111150", "DCM", "Presentation Required: Rendering device is expected to present")
SINGLE_IMAGE_FINDING = Code("111059", "DCM", "Single Image Finding")
CERTAINTY = Code("111012", "DCM", "Certainty of Finding")
ALGORITHM_NAME_CODE = Code("111001", "DCM", "Algorithm Name")
ALGORITHM_VERSION_CODE = Code("111003", "DCM", "Algorithm Version")
CENTER = Code("111010", "DCM", "Center")
SUMMARY_OF_DETECTIONS = Code("111064", "DCM", "Summary of Detections")
SUCCEEDED = Code("111222", "DCM", "Succeeded")
SUCCESSFUL_DETECTIONS = Code("111063", "DCM", "Successful Detections")
DETECTION_PERFORMED = Code("111022", "DCM", "Detection Performed")
SUMMARY_OF_ANALYSES = Code("111065", "DCM", "Summary of Analyses")
NOT_ATTEMPTED = Code("111225", "DCM", "Not Attempted")
PERCENT = Code("%", "UCUM", "percent")

FINDING_CODES = {
    "calcification_cluster": Code("129769006", "SCT", "Calcification Cluster"),
    "individual_calcification": Code("129770007", "SCT", "Individual Calcification"),
    "mass": Code("129788004", "SCT", "Mammographic breast mass"),
}
LATERALITY_CODES = {
    "L": Code("80248007", "SCT", "Left breast"),
    "R": Code("73056007", "SCT", "Right breast"),
    "B": Code("63762007", "SCT", "Both breasts"),
}
VIEW_CODES = {
    "CC": Code("399162004", "SCT", "cranio-caudal"),
    "MLO": Code("399368009", "SCT", "medio-lateral oblique"),
}


@dataclass(frozen=True)
class SRImage:
    """One analysed MG instance: its header (no pixel data needed) and resolved laterality/view."""

    dataset: Dataset
    laterality: str
    view: str | None


@dataclass(frozen=True)
class SRFinding:
    """One displayed mark: image index into the image list, type, centre (row, col), certainty %."""

    image_index: int
    type: str
    center_px: tuple[float, float]
    certainty_percent: float


def build_cad_sr(
    images: Sequence[SRImage],
    findings: Sequence[SRFinding],
    *,
    detected_types: Sequence[str] = ("calcification_cluster", "mass"),
    algorithm_version: str | None = None,
    series_number: int = 900,
    instance_number: int = 1,
) -> Dataset:
    """Build the Mammography CAD SR dataset for ``images`` with one finding per entry of ``findings``."""
    import highdicom as hd
    from highdicom.sr import (
        CodeContentItem,
        ContainerContentItem,
        ImageContentItem,
        NumContentItem,
        RelationshipTypeValues,
        ScoordContentItem,
        TextContentItem,
    )

    if not images:
        raise InputError("a CAD SR needs at least one image")
    version = algorithm_version or _package_version()
    rel = RelationshipTypeValues
    for f in findings:
        if f.type not in FINDING_CODES:
            raise ValueError(f"unknown finding type {f.type!r}")
        if not 0 <= f.image_index < len(images):
            raise ValueError(f"finding refers to image {f.image_index} of {len(images)}")
        rows, cols = int(images[f.image_index].dataset.Rows), int(images[f.image_index].dataset.Columns)
        r, c = f.center_px
        if not (0 <= r < rows and 0 <= c < cols):
            raise ValueError(f"finding centre {f.center_px} outside the {rows}x{cols} image")

    def image_item(ds: Dataset, relationship) -> ImageContentItem:
        # The name is required by highdicom and stripped later (TID 4020 entries are unnamed).
        return ImageContentItem(
            name=IMAGE_LIBRARY,
            referenced_sop_class_uid=ds.SOPClassUID,
            referenced_sop_instance_uid=ds.SOPInstanceUID,
            relationship_type=relationship,
        )

    root = ContainerContentItem(name=MAMMOGRAPHY_CAD_REPORT, template_id="4000")
    root.ContentSequence = [CodeContentItem(LANGUAGE, EN_US, relationship_type=rel.HAS_CONCEPT_MOD)]

    library = ContainerContentItem(name=IMAGE_LIBRARY, relationship_type=rel.CONTAINS)
    library.ContentSequence = []
    for image in images:
        entry = image_item(image.dataset, rel.CONTAINS)
        context = []
        if image.laterality in LATERALITY_CODES:
            context.append(
                CodeContentItem(
                    IMAGE_LATERALITY, LATERALITY_CODES[image.laterality], relationship_type=rel.HAS_ACQ_CONTEXT
                )
            )
        if image.view in VIEW_CODES:
            context.append(CodeContentItem(IMAGE_VIEW, VIEW_CODES[image.view], relationship_type=rel.HAS_ACQ_CONTEXT))
        if context:
            entry.ContentSequence = context
        library.ContentSequence.append(entry)
    root.ContentSequence.append(library)

    summary = CodeContentItem(
        FINDINGS_SUMMARY, WITH_FINDINGS if findings else WITHOUT_FINDINGS, relationship_type=rel.CONTAINS
    )
    impressions = []
    for f in findings:
        impression = ContainerContentItem(name=INDIVIDUAL_IMPRESSION, relationship_type=rel.INFERRED_FROM)
        finding = CodeContentItem(SINGLE_IMAGE_FINDING, FINDING_CODES[f.type], relationship_type=rel.CONTAINS)
        r, c = f.center_px
        # SCOORD (0, 0) is the outer top-left corner of the top-left pixel: pixel centres are +0.5.
        center = ScoordContentItem(
            name=CENTER,
            graphic_type=hd.sr.GraphicTypeValues.POINT,
            graphic_data=np.array([[float(c) + 0.5, float(r) + 0.5]]),
            relationship_type=rel.HAS_PROPERTIES,
        )
        center.ContentSequence = [image_item(images[f.image_index].dataset, rel.SELECTED_FROM)]
        finding.ContentSequence = [
            NumContentItem(
                CERTAINTY,
                float(np.clip(f.certainty_percent, 0.0, 100.0)),
                PERCENT,
                relationship_type=rel.HAS_PROPERTIES,
            ),
            TextContentItem(ALGORITHM_NAME_CODE, ALGORITHM_NAME, relationship_type=rel.HAS_PROPERTIES),
            TextContentItem(ALGORITHM_VERSION_CODE, version, relationship_type=rel.HAS_PROPERTIES),
            center,
        ]
        impression.ContentSequence = [
            CodeContentItem(RENDERING_INTENT, PRESENTATION_REQUIRED, relationship_type=rel.HAS_CONCEPT_MOD),
            finding,
        ]
        impressions.append(impression)
    if impressions:
        summary.ContentSequence = impressions
    root.ContentSequence.append(summary)

    detections = CodeContentItem(SUMMARY_OF_DETECTIONS, SUCCEEDED, relationship_type=rel.CONTAINS)
    successful = ContainerContentItem(name=SUCCESSFUL_DETECTIONS, relationship_type=rel.INFERRED_FROM)
    successful.ContentSequence = []
    for kind in detected_types:
        performed = CodeContentItem(DETECTION_PERFORMED, FINDING_CODES[kind], relationship_type=rel.CONTAINS)
        performed.ContentSequence = [
            TextContentItem(ALGORITHM_NAME_CODE, ALGORITHM_NAME, relationship_type=rel.HAS_PROPERTIES),
            TextContentItem(ALGORITHM_VERSION_CODE, version, relationship_type=rel.HAS_PROPERTIES),
        ]
        successful.ContentSequence.append(performed)
    detections.ContentSequence = [successful]
    root.ContentSequence.append(detections)
    root.ContentSequence.append(CodeContentItem(SUMMARY_OF_ANALYSES, NOT_ATTEMPTED, relationship_type=rel.CONTAINS))

    sr = hd.sr.ComprehensiveSR(
        evidence=[image.dataset for image in images],
        content=root,
        series_instance_uid=hd.UID(),
        series_number=series_number,
        sop_instance_uid=hd.UID(),
        instance_number=instance_number,
        manufacturer="QuantGPU",
        is_complete=True,
        series_description="Mammography CAD SR (QuantGPU)",
    )
    # Re-read as plain pydicom so that the tree can be edited without highdicom's item checks.
    buffer = io.BytesIO()
    sr.save_as(buffer, enforce_file_format=True)
    buffer.seek(0)
    ds = pydicom.dcmread(buffer)
    _relabel_as_mammography_cad(ds)
    _add_detection_image_references(ds, len(images))
    return ds


def _relabel_as_mammography_cad(ds: Dataset) -> None:
    ds.SOPClassUID = MAMMOGRAPHY_CAD_SR
    ds.file_meta.MediaStorageSOPClassUID = MAMMOGRAPHY_CAD_SR
    template = Dataset()
    template.MappingResource = "DCMR"
    template.TemplateIdentifier = "4000"
    ds.ContentTemplateSequence = [template]
    for item in _walk(ds):
        unnamed_image = item.get("ValueType") == "IMAGE" and item.get("RelationshipType") in (
            "CONTAINS",
            "SELECTED FROM",
        )
        if unnamed_image and "ConceptNameCodeSequence" in item:
            del item.ConceptNameCodeSequence


def _add_detection_image_references(ds: Dataset, n_images: int) -> None:
    """Each Detection Performed item refers back (by reference) to every Image Library entry.

    ReferencedContentItemIdentifier is the path of 1-based positions from the root: the library is
    the root's 2nd item, its entries are 1..n.
    """
    library_position = 2
    for item in _walk(ds):
        name = item.get("ConceptNameCodeSequence")
        if item.get("ValueType") == "CODE" and name and name[0].CodeValue == DETECTION_PERFORMED.value:
            refs = list(item.get("ContentSequence", []))
            for k in range(1, n_images + 1):
                ref = Dataset()
                ref.RelationshipType = "INFERRED FROM"
                ref.ReferencedContentItemIdentifier = [1, library_position, k]
                refs.append(ref)
            item.ContentSequence = refs


def _walk(ds: Dataset):
    for item in ds.get("ContentSequence", []) or []:
        yield item
        yield from _walk(item)


def _package_version() -> str:
    try:
        from quantgpu import __version__

        return str(__version__)
    except Exception:
        return "0"


def write_cad_sr(path: str | Path, dataset: Dataset, force: bool = False) -> Path:
    """Write the SR atomically (never overwriting without ``force``)."""
    from quantgpu.output import write_with

    return write_with(Path(path), lambda tmp: dataset.save_as(tmp, enforce_file_format=True), force=force)


# ----------------------------------------------------------------------------- reading back (tests, tools)


def image_library_uids(ds: Dataset) -> list[str]:
    """SOP Instance UIDs listed in the Image Library, in order."""
    for item in ds.get("ContentSequence", []):
        name = item.get("ConceptNameCodeSequence")
        if name and name[0].CodeValue == IMAGE_LIBRARY.value:
            return [entry.ReferencedSOPSequence[0].ReferencedSOPInstanceUID for entry in item.ContentSequence]
    return []


def finding_points(ds: Dataset) -> list[dict]:
    """Every Single Image Finding: type code, certainty, (column, row) SCOORD and referenced SOP UID."""
    out = []
    for item in _walk(ds):
        name = item.get("ConceptNameCodeSequence")
        if not (item.get("ValueType") == "CODE" and name and name[0].CodeValue == SINGLE_IMAGE_FINDING.value):
            continue
        record = {"code": item.ConceptCodeSequence[0].CodeValue}
        for child in item.ContentSequence:
            child_name = child.ConceptNameCodeSequence[0].CodeValue
            if child_name == CERTAINTY.value:
                record["certainty_percent"] = float(child.MeasuredValueSequence[0].NumericValue)
            elif child_name == CENTER.value:
                record["point"] = [float(v) for v in child.GraphicData]
                record["sop_instance_uid"] = child.ContentSequence[0].ReferencedSOPSequence[0].ReferencedSOPInstanceUID
        out.append(record)
    return out
