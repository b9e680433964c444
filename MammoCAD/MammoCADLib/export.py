"""Exam driver and outputs: analysis of read mammograms, result JSON, DICOM SEG, CAD SR, overview.

Coordinates: the analysis runs on the image in the radiological hanging (chest wall on the
laterality's side, which is what the breast-mask step expects); findings and masks are mapped back
to the stored pixel matrix before anything is reported, so ``center_px``/``bbox_px`` and the SR
SCOORDs always refer to the stored pixels of the input file.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset

from quantgpu.errors import InputError

from . import cad_sr, mgio
from .froc import HIT_RULE

log = logging.getLogger("quantgpu.mammo")

DEFAULT_OPERATING_POINT = "balanced"
CERTAINTY_NOTE = (
    "Certainty of Finding = 100 * score / (score + balanced threshold of its type): a monotone rescaling "
    "of the detector score that is 50 % at the balanced operating point, not a calibrated probability"
)
DENSE_TISSUE_CODE = ("D-DENSE", "99QGPU", "Dense (fibroglandular) tissue")  # local code: no SCT concept verified


@dataclass
class ExamImage:
    """One read and analysed image (analysis in stored pixel coordinates)."""

    mammogram: mgio.Mammogram
    analysis: object  # MammoCADLib.analysis.ImageAnalysis


# ----------------------------------------------------------------------------- analysis driver


def analyze_mammogram(mammogram: mgio.Mammogram, *, backend="auto", params: dict | None = None) -> ExamImage:
    """Run the image analysis on the hanging orientation and map the results back to stored pixels."""
    from .analysis import analyze_image

    view = mammogram.view if mammogram.view in ("CC", "MLO") else "CC"
    if view != mammogram.view:
        mammogram.warnings.append(f"view {mammogram.view or 'unknown'}: analysed as CC (no pectoral step)")
    flipped = mgio.hanging_flipped(mammogram)
    image = mgio.hanging(mammogram)
    analysis = analyze_image(
        np.ascontiguousarray(image),
        mammogram.pixel_spacing_mm,
        view,
        mammogram.laterality,
        backend=backend,
        params=params,
    )
    if flipped:
        analysis = _unflip(analysis, image.shape[1])
    return ExamImage(mammogram, analysis)


def analyze_exam(
    paths: Sequence[str | Path],
    *,
    pixel_spacing_mm: float | None = None,
    backend="auto",  # a choice ("auto" | "cpu" | "gpu") or a resolved quantgpu.backend.Backend
    params: dict | None = None,
    progress: Callable[[float, str], None] | None = None,
) -> list[ExamImage]:
    """Read every mammogram under ``paths`` and analyse it."""
    files = mgio.collect_inputs(paths)
    results = []
    for n, path in enumerate(files):
        if progress:
            progress(n / max(len(files), 1), f"image {n + 1} of {len(files)}")
        results.append(analyze_mammogram(mgio.read_mammogram(path, pixel_spacing_mm), backend=backend, params=params))
    if progress:
        progress(1.0, "done")
    return results


def _unflip(analysis, cols: int):
    """Mirror masks and findings of an analysis run on a column-flipped image back to stored columns."""
    changes = {}
    for name in ("breast_mask", "pectoral_mask", "dense_mask"):
        mask = getattr(analysis, name, None)
        if mask is not None:
            changes[name] = np.ascontiguousarray(mask[:, ::-1])
    findings = []
    for f in analysis.findings:
        r, c = f.center_px
        r0, c0, r1, c1 = f.bbox_px
        findings.append(
            dataclasses.replace(f, center_px=(r, cols - 1 - c), bbox_px=(r0, cols - 1 - c1, r1, cols - 1 - c0))
        )
    changes["findings"] = findings
    return dataclasses.replace(analysis, **changes)


# ----------------------------------------------------------------------------- operating points


def operating_point_names() -> list[str]:
    from .operating_points import OPERATING_POINTS

    return list(OPERATING_POINTS)


def check_operating_point(name: str) -> str:
    names = operating_point_names()
    if name not in names:
        raise InputError(f"unknown operating point {name!r}; choose from {', '.join(names)}")
    return name


def is_displayed(finding, operating_point: str) -> bool:
    from .operating_points import displayed

    return bool(displayed(finding, operating_point))


def certainty_percent(finding) -> float:
    """See ``CERTAINTY_NOTE``."""
    from .operating_points import OPERATING_POINTS

    threshold = float(OPERATING_POINTS[DEFAULT_OPERATING_POINT][finding.type])
    score = max(float(finding.score), 0.0)
    if threshold <= 0:
        return 100.0 if score > 0 else 50.0
    return 100.0 * score / (score + threshold)


# ----------------------------------------------------------------------------- JSON


def _finite(value):
    if value is None:
        return None
    value = float(value)
    return value if np.isfinite(value) else None


def image_json(item: ExamImage, operating_point: str) -> dict:
    """One entry of ``images`` with exactly the keys of issue 5 item 9."""
    m, a = item.mammogram, item.analysis
    return {
        "file": m.source,
        "sop_instance_uid": m.sop_instance_uid,
        "laterality": m.laterality,
        "view": m.view,
        "pixel_spacing_mm": m.pixel_spacing_mm,
        "breast_area_fraction": _finite(a.breast_area_fraction),
        "breast_area_cm2": _finite(a.breast_area_cm2) if m.pixel_spacing_mm is not None else None,
        "percent_density": _finite(a.percent_density),
        "density_category": a.density_category,
        "findings": [
            {
                "type": f.type,
                "center_px": [round(float(f.center_px[0])), round(float(f.center_px[1]))],
                "bbox_px": [int(v) for v in f.bbox_px],
                "score": float(f.score),
                "displayed": is_displayed(f, operating_point),
                "n_calcifications": None if f.n_calcifications is None else int(f.n_calcifications),
            }
            for f in a.findings
        ],
    }


def result_json(items: Sequence[ExamImage], operating_point: str, backend: str) -> dict:
    """The CLI result: ``images``, ``operating_point`` and ``backend`` (+ context that helps readers)."""
    images = [image_json(item, operating_point) for item in items]
    n_marks = sum(f["displayed"] for image in images for f in image["findings"])
    warnings = {item.mammogram.source: list(item.mammogram.warnings) + list(item.analysis.warnings) for item in items}
    return {
        "images": images,
        "operating_point": operating_point,
        "backend": backend,
        "warnings": {k: v for k, v in warnings.items() if v},
        "density_category_note": "PD-derived category, not a BI-RADS assessment",
        "hit_rule": HIT_RULE,
        "summary": f"{len(images)} image(s), {n_marks} mark(s) at the {operating_point} operating point "
        f"({sum(len(i['findings']) for i in images)} candidates), backend {backend}",
    }


# ----------------------------------------------------------------------------- DICOM SEG


def write_seg(
    path: str | Path,
    source: Dataset,
    masks: dict[str, np.ndarray],
    *,
    force: bool = False,
    series_number: int = 901,
) -> Path:
    """DICOM SEG (binary, one frame per segment, empty frames kept) on one MG image.

    ``masks`` maps "breast", "pectoral", "dense" to bool arrays in stored pixel coordinates.
    BodyPartExamined and PatientOrientation are copied from the source (dciodvfy reports
    PatientOrientation missing otherwise). General Series Laterality is not written: dciodvfy rejects
    it on this SEG ("present when condition unsatisfied" once BodyPartExamined is BREAST), so
    mammo.md §6's unverified suggestion to copy it is not followed; the SR carries laterality per image.
    """
    import highdicom as hd
    from pydicom.sr.codedict import codes

    from quantgpu import __version__
    from quantgpu.output import write_with

    rows, cols = int(source.Rows), int(source.Columns)
    types = {
        "breast": ("Breast", codes.SCT.Tissue, codes.SCT.Breast),
        "pectoral": ("Pectoral muscle", codes.SCT.AnatomicalStructure, codes.SCT.PectoralisMajorMuscle),
        "dense": ("Dense tissue", codes.SCT.Tissue, hd.sr.CodedConcept(*DENSE_TISSUE_CODE)),
    }
    labels = [k for k in ("breast", "pectoral", "dense") if masks.get(k) is not None]
    if not labels:
        raise ValueError("no masks to write")
    algorithm = hd.AlgorithmIdentificationSequence(
        name=cad_sr.ALGORITHM_NAME, version=str(__version__), family=codes.DCM.MammographyCAD
    )
    descriptions, frames = [], []
    for number, key in enumerate(labels, start=1):
        mask = np.asarray(masks[key], dtype=bool)
        if mask.shape != (rows, cols):
            raise ValueError(f"{key} mask shape {mask.shape} differs from the image {rows}x{cols}")
        label, category, prop = types[key]
        descriptions.append(
            hd.seg.SegmentDescription(
                segment_number=number,
                segment_label=label,
                segmented_property_category=category,
                segmented_property_type=prop,
                algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
                algorithm_identification=algorithm,
            )
        )
        frames.append(mask)
    pixel_array = np.stack(frames, axis=-1)[None].astype(np.uint8)  # (1 frame, rows, cols, segments)
    seg = hd.seg.Segmentation(
        source_images=[source],
        pixel_array=pixel_array,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=hd.UID(),
        series_number=series_number,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="QuantGPU",
        manufacturer_model_name="MammoCAD",
        software_versions=str(__version__),
        device_serial_number="0",
        omit_empty_frames=False,
        series_description="MammoCAD breast / dense tissue",
    )
    for keyword in ("BodyPartExamined", "PatientOrientation"):
        if keyword in source:
            setattr(seg, keyword, source.data_element(keyword).value)
    return write_with(Path(path), lambda tmp: seg.save_as(tmp, enforce_file_format=True), force=force)


def read_seg_masks(path: str | Path) -> dict[str, np.ndarray]:
    """Segment label -> bool mask from a binary SEG on one image (read with pydicom alone).

    highdicom's reader wants a slice thickness in the Pixel Measures of a projection image, which a
    mammogram does not have, so the frames are mapped to segments through the per-frame
    Segment Identification Sequence directly.
    """
    import pydicom

    ds = pydicom.dcmread(path)
    labels = {int(item.SegmentNumber): str(item.SegmentLabel) for item in ds.SegmentSequence}
    frames = ds.pixel_array
    if frames.ndim == 2:
        frames = frames[None]
    shared = ds.SharedFunctionalGroupsSequence[0] if "SharedFunctionalGroupsSequence" in ds else None
    out = {}
    for frame, group in zip(frames, ds.PerFrameFunctionalGroupsSequence):
        # A single-segment SEG may carry the segment identification in the shared groups.
        ident = group if "SegmentIdentificationSequence" in group else shared
        number = int(ident.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
        out[labels[number]] = np.asarray(frame, dtype=bool)
    return out


# ----------------------------------------------------------------------------- all outputs


def sr_inputs(items: Sequence[ExamImage], operating_point: str) -> tuple[list, list]:
    """CAD SR images and one finding per displayed mark at ``operating_point``."""
    images = [cad_sr.SRImage(i.mammogram.dataset, i.mammogram.laterality, i.mammogram.view) for i in items]
    findings = [
        cad_sr.SRFinding(n, f.type, (float(f.center_px[0]), float(f.center_px[1])), certainty_percent(f))
        for n, item in enumerate(items)
        for f in item.analysis.findings
        if is_displayed(f, operating_point)
    ]
    return images, findings


def write_outputs(
    output_dir: str | Path,
    items: Sequence[ExamImage],
    operating_point: str,
    backend: str,
    *,
    force: bool = False,
    overview: bool = True,
) -> dict[str, str]:
    """Write result.json, cad_sr.dcm, one SEG per image and the overview PNG/PDF; return their paths."""
    from quantgpu.output import prepare_output_dir, write_json

    out = prepare_output_dir(output_dir)
    written: dict[str, str] = {}
    images, findings = sr_inputs(items, operating_point)
    sr = cad_sr.build_cad_sr(images, findings)
    written["cad_sr"] = str(cad_sr.write_cad_sr(out / "cad_sr.dcm", sr, force=force))
    for n, item in enumerate(items):
        a = item.analysis
        masks = {"breast": a.breast_mask, "pectoral": a.pectoral_mask, "dense": a.dense_mask}
        name = f"seg_{n + 1:02d}_{item.mammogram.laterality}{item.mammogram.view or 'XX'}.dcm"
        written[f"seg_{n + 1}"] = str(write_seg(out / name, item.mammogram.dataset, masks, force=force))
    if overview:
        from .overview import write_overview

        for suffix in ("png", "pdf"):
            written[f"overview_{suffix}"] = str(
                write_overview(out / f"overview.{suffix}", items, operating_point, force=force)
            )
    result = result_json(items, operating_point, backend)
    result["outputs"] = dict(written)
    written["json"] = str(write_json(out / "result.json", result, force=force))
    return written
