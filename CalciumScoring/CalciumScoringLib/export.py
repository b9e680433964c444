"""Calcium scoring results for PACS and spreadsheets: DICOM SEG, Comprehensive 3D SR (TID 1500), CSV.

Codes from calcium.md section 6:
- SEG (BINARY): one segment per artery with calcium plus "Unassigned"; category
  SCT 49755003 "Morphologically Abnormal Structure", type SCT 18115005 "Pathologic
  calcification", anatomic region = the artery (unassigned: SCT 41801008).
- SR: procedure SCT 426005005 "Cardiac CT for calcium scoring"; one volumetric ROI
  group (TID 1411) per SEG segment, referencing it, finding type SCT 18115005, finding
  site = the artery; plus one "Total coronary calcium" group (TID 1501) with finding
  site SCT 41801008. Measurements: Agatston SCT 450360000 (method DCM 112055, unit
  "1"), volume DCM 122660 (DCM 112056, mm3), mass DCM 122661 (DCM 112057, mg; only
  with a calibration). Values are stored unrounded (highdicom writes them as DS,
  16 significant characters at most). Threshold, minimum area, connectivity, profile
  and calibration are recorded as the measurements' algorithm parameters (TID 4019).
The SEG (an image object) copies BodyPartExamined/Laterality from the source CT.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import highdicom as hd
import numpy as np
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.uid import generate_uid

from quantgpu import __version__
from quantgpu.dicom_export import (
    copy_series_context,
    device_kwargs,
    require_dicom_sources,
    save_dataset,
    series_number_after,
)
from quantgpu.errors import InputError
from quantgpu.output import write_bytes_atomic

from .agatston import ARTERIES, SEGMENT_COLOURS, SEGMENT_NAMES, UNASSIGNED_LABEL, ArteryScore, CalciumResult

SCT, DCM = "SCT", "DCM"
PROCEDURE = hd.sr.CodedConcept("426005005", SCT, "Cardiac CT for calcium scoring")
FINDING_TYPE = hd.sr.CodedConcept("18115005", SCT, "Pathologic calcification")
CATEGORY = hd.sr.CodedConcept("49755003", SCT, "Morphologically Abnormal Structure")
SITE_CODES = {
    "LM": hd.sr.CodedConcept("3227004", SCT, "Left main coronary artery"),
    "LAD": hd.sr.CodedConcept("59438005", SCT, "Left anterior descending coronary artery"),
    "LCX": hd.sr.CodedConcept("57396003", SCT, "Left circumflex coronary artery"),
    "RCA": hd.sr.CodedConcept("13647002", SCT, "Right coronary artery"),
}
CORONARY_ARTERY = hd.sr.CodedConcept("41801008", SCT, "Coronary artery")
AGATSTON = hd.sr.CodedConcept("450360000", SCT, "Coronary artery calcium score")
AGATSTON_METHOD = hd.sr.CodedConcept("112055", DCM, "Agatston scoring method")
VOLUME = hd.sr.CodedConcept("122660", DCM, "Calcium Volume")
VOLUME_METHOD = hd.sr.CodedConcept("112056", DCM, "Volume scoring method")
MASS = hd.sr.CodedConcept("122661", DCM, "Calcium Mass")
MASS_METHOD = hd.sr.CodedConcept("112057", DCM, "Mass scoring method")
UNIT_ONE = codes.UCUM.NoUnits
UNIT_MM3 = codes.UCUM.CubicMillimeter
UNIT_MG = hd.sr.CodedConcept("mg", "UCUM", "milligram")

SEG_MODEL = "QuantGPU CalciumScoring"
ALGORITHM_NAME = "QuantGPU Agatston/volume/mass calcium scoring"
TOTAL_TRACKING_ID = "Total coronary calcium"


def segment_label(name: str) -> str:
    return "Calcium unassigned" if name == "Unassigned" else f"Calcium {name}"


def present_segments(result: CalciumResult) -> list[tuple[int, str]]:
    """(label value in lesion_labels, segment name) for every territory holding counted calcium."""
    values = set(np.unique(result.lesion_labels).tolist()) - {0}
    return [(value, SEGMENT_NAMES[value - 1]) for value in range(1, UNASSIGNED_LABEL + 1) if value in values]


def _algorithm_parameters(result: CalciumResult) -> list[str]:
    p = result.parameters
    keys = (
        "profile",
        "threshold_hu",
        "min_area_mm2",
        "min_pixels",
        "connectivity",
        "kvp",
        "mass_calibration_mg_per_cm3_per_hu",
        "calibration_source",
    )
    return [f"{k}={p.get(k)}" for k in keys] + [f"slice_increment_mm={result.slice_increment_mm:g}"]


def write_seg(
    result: CalciumResult,
    headers,
    path: str | Path,
    *,
    force: bool = False,
    algorithm_type: str = "AUTOMATIC",
    source: str = "",
) -> tuple[Path, Dataset] | None:
    """Write a BINARY DICOM SEG of the counted lesions per territory; None when there is no calcium.

    ``headers`` are the source CT datasets in the order of the result's slices.
    ``algorithm_type``: AUTOMATIC, SEMIAUTOMATIC (labels edited by a user) or MANUAL.
    """
    sources = require_dicom_sources(headers, "DICOM SEG", source)
    labels = result.lesion_labels
    if labels.shape[0] != len(sources):
        raise InputError(f"DICOM SEG: {labels.shape[0]} slices but {len(sources)} source images")
    segments = present_segments(result)
    if not segments:
        return None
    algorithm = hd.AlgorithmIdentificationSequence(
        name=ALGORITHM_NAME,
        family=codes.cid7162.NeighborhoodAnalysis,  # threshold + connected components
        version=__version__,
        parameters={
            "threshold_hu": str(result.parameters["threshold_hu"]),
            "profile": str(result.parameters["profile"]),
        },
    )
    descriptions = []
    label_map = np.zeros(labels.shape, dtype=np.uint8)
    for number, (value, name) in enumerate(segments, start=1):
        label_map[labels == value] = number
        descriptions.append(
            hd.seg.SegmentDescription(
                segment_number=number,
                segment_label=segment_label(name),
                segmented_property_category=CATEGORY,
                segmented_property_type=FINDING_TYPE,
                algorithm_type=algorithm_type,
                algorithm_identification=algorithm if algorithm_type != "MANUAL" else None,
                tracking_uid=generate_uid(),
                tracking_id=segment_label(name),
                anatomic_regions=[SITE_CODES.get(name, CORONARY_ARTERY)],
                display_color=hd.color.CIELabColor.from_rgb(*(round(255 * c) for c in SEGMENT_COLOURS[name])),
            )
        )
    seg = hd.seg.Segmentation(
        source_images=sources,
        pixel_array=label_map,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=generate_uid(),
        series_number=series_number_after(sources, 100),
        sop_instance_uid=generate_uid(),
        instance_number=1,
        series_description="Coronary calcium (QuantGPU)",
        content_label="CALCIUM",
        content_description="Coronary calcium lesions per artery",
        omit_empty_frames=True,
        **device_kwargs(SEG_MODEL),
    )
    copy_series_context(sources[0], seg)
    return save_dataset(seg, path, force), seg


def _measurements(score: ArteryScore, algorithm: hd.sr.AlgorithmIdentification) -> list[hd.sr.Measurement]:
    out = [
        hd.sr.Measurement(
            name=AGATSTON, value=score.agatston, unit=UNIT_ONE, method=AGATSTON_METHOD, algorithm_id=algorithm
        ),
        hd.sr.Measurement(
            name=VOLUME, value=score.volume_mm3, unit=UNIT_MM3, method=VOLUME_METHOD, algorithm_id=algorithm
        ),
    ]
    if score.mass_mg is not None:
        out.append(
            hd.sr.Measurement(name=MASS, value=score.mass_mg, unit=UNIT_MG, method=MASS_METHOD, algorithm_id=algorithm)
        )
    return out


def _territory_scores(result: CalciumResult) -> dict[str, ArteryScore]:
    """Scores per SEG segment name (arteries and "Unassigned")."""
    scores = dict(result.per_artery or {})
    if result.unassigned is not None:
        scores["Unassigned"] = result.unassigned
    elif result.per_artery is None:  # no labels: every counted lesion is unassigned
        scores["Unassigned"] = ArteryScore(result.agatston, result.volume_mm3, result.mass_mg, result.lesion_count)
    return scores


def write_sr(
    result: CalciumResult,
    headers,
    path: str | Path,
    *,
    seg: Dataset | None = None,
    force: bool = False,
    source: str = "",
) -> tuple[Path, Dataset]:
    """Write a Comprehensive 3D SR (TID 1500) with the scores per artery (referencing ``seg``) and in total."""
    sources = require_dicom_sources(headers, "DICOM SR", source)
    algorithm = hd.sr.AlgorithmIdentification(
        name=ALGORITHM_NAME, version=__version__, parameters=_algorithm_parameters(result)
    )
    groups = []
    if seg is not None:
        scores = _territory_scores(result)
        for description in seg.SegmentSequence:
            name = SEGMENT_NAMES[[segment_label(n) for n in SEGMENT_NAMES].index(description.SegmentLabel)]
            groups.append(
                hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
                    tracking_identifier=hd.sr.TrackingIdentifier(
                        uid=description.TrackingUID, identifier=description.TrackingID
                    ),
                    referenced_segment=hd.sr.ReferencedSegment.from_segmentation(
                        seg, segment_number=int(description.SegmentNumber)
                    ),
                    finding_type=FINDING_TYPE,
                    finding_sites=[hd.sr.FindingSite(SITE_CODES.get(name, CORONARY_ARTERY))],
                    measurements=_measurements(scores[name], algorithm),
                )
            )
    total = ArteryScore(result.agatston, result.volume_mm3, result.mass_mg, result.lesion_count)
    groups.append(
        hd.sr.MeasurementsAndQualitativeEvaluations(
            tracking_identifier=hd.sr.TrackingIdentifier(uid=generate_uid(), identifier=TOTAL_TRACKING_ID),
            finding_type=FINDING_TYPE,
            finding_sites=[hd.sr.FindingSite(CORONARY_ARTERY)],
            measurements=_measurements(total, algorithm),
        )
    )
    observer = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=generate_uid(), name=SEG_MODEL, manufacturer_name="QuantGPU", model_name=SEG_MODEL
        ),
    )
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_device_context=observer),
        procedure_reported=PROCEDURE,
        imaging_measurements=groups,
        title=codes.cid7021.ImagingMeasurementReport,
    )
    evidence = [*sources, *([seg] if seg is not None else [])]
    sr = hd.sr.Comprehensive3DSR(
        evidence=evidence,
        content=report,
        series_instance_uid=generate_uid(),
        series_number=series_number_after(sources, 101),
        sop_instance_uid=generate_uid(),
        instance_number=1,
        manufacturer="QuantGPU",
        series_description="Coronary calcium scores (QuantGPU)",
    )
    # no BodyPartExamined here: the SR IOD has no General Series body part (dciodvfy warns)
    return save_dataset(sr, path, force), sr


CSV_COLUMNS = ("territory", "lesion_count", "agatston", "volume_mm3", "mass_mg", "category", "cac_drs")


def _number(value: float) -> str:
    return f"{float(value):.12g}"  # 12 significant digits: exact for display, no float noise


def csv_text(result: CalciumResult) -> str:
    """One row per artery (with labels), "Unassigned", and "Total"; mass empty without calibration."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)

    def row(name: str, s: ArteryScore, category: str = "", drs: str = "") -> None:
        mass = "" if s.mass_mg is None else _number(s.mass_mg)
        writer.writerow([name, s.lesion_count, _number(s.agatston), _number(s.volume_mm3), mass, category, drs])

    if result.per_artery is not None:
        for name in ARTERIES:
            row(name, result.per_artery[name])
        row("Unassigned", result.unassigned)
    total = ArteryScore(result.agatston, result.volume_mm3, result.mass_mg, result.lesion_count)
    row("Total", total, result.category, result.cac_drs)
    return buf.getvalue()


def write_csv(result: CalciumResult, path: str | Path, force: bool = False) -> Path:
    return write_bytes_atomic(path, csv_text(result).encode("utf-8"), force)
