"""DICOM Parametric Maps (one per quantity) and a core/penumbra DICOM SEG (perfusion.md §6).

Parametric Map (highdicom): float32 pixels, one frame per source slice; RealWorldValueMapping with the
§6 quantity code, UCUM unit, slope 1, intercept 0 and the actual value range; window through
``voi_lut_transformations``; a FrameAnatomySequence (FrameLaterality "U", SCT 12738006 Brain) in
SharedFunctionalGroupsSequence[0] because dcmqi's paramap2itkimage (Slicer's loader) needs it;
BodyPartExamined copied from the source ("BRAIN" when the source has none, so General Series'
type 2C Laterality condition is answered). Invalid voxels stay NaN (IEEE float pixel data).

SEG: segment 1 "Ischemic core" (SCT 55641003 Infarct), segment 2 "Penumbra" (SCT 52674009 Ischemia),
category SCT 49755003 Morphologically altered structure, algorithm type AUTOMATIC. perfusion.md marks
the codes as not yet chosen; these are ours.

Every file is written atomically and never over an existing one without ``force``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from quantgpu.dicom_export import copy_series_context, device_kwargs, require_dicom_sources, save_dataset
from quantgpu.errors import InputError

MODEL = "PerfusionAnalysis"
BRAIN = ("12738006", "SCT", "Brain")

# name: (quantity code, UCUM unit (value, meaning), description, default window (center, width))
MAP_QUANTITIES = {
    "cbf": (("126390", "DCM", "Absolute Regional Blood Flow"), ("ml/[100]g/min", "ml/100g/min"), "CBF", (40, 80)),
    "cbv": (("126391", "DCM", "Absolute Regional Blood Volume"), ("ml/[100]g", "ml/100g"), "CBV", (4, 8)),
    "mtt": (("113052", "DCM", "Mean Transit Time"), ("s", "second"), "MTT", (8, 16)),
    "ttp": (("113069", "DCM", "Time To Peak"), ("s", "second"), "TTP", (20, 40)),
    "tmax": (("113084", "DCM", "Tmax"), ("s", "second"), "Tmax", (8, 16)),
    "ktrans": (("126312", "DCM", "Ktrans"), ("/min", "/min"), "Ktrans", (0.25, 0.5)),
    "kep": (("126313", "DCM", "kep"), ("/min", "/min"), "kep", (1, 2)),
    "ve": (("126314", "DCM", "ve"), ("1", "no units"), "ve", (0.5, 1)),
    "vp": (("126331", "DCM", "vp"), ("1", "no units"), "vp", (0.1, 0.2)),
}
SEGMENTS = {  # label: (label text, type code)
    1: ("Ischemic core", ("55641003", "SCT", "Infarct")),
    2: ("Penumbra", ("52674009", "SCT", "Ischemia")),
}
CATEGORY = ("49755003", "SCT", "Morphologically altered structure")


def _code(triple):
    from pydicom.sr.coding import Code

    return Code(*triple)


def _software_version() -> str:
    from quantgpu import __version__

    return str(__version__)


def _check_sources(source_headers: Sequence, shape, what: str) -> list:
    sources = require_dicom_sources(source_headers, what)
    if len(sources) != shape[0]:
        raise InputError(f"{what}: {shape[0]} slices but {len(sources)} source DICOM headers")
    rows, cols = int(sources[0].Rows), int(sources[0].Columns)
    if (rows, cols) != tuple(shape[1:]):
        raise InputError(f"{what}: map grid {tuple(shape[1:])} differs from the source images {(rows, cols)}")
    return sources


def _body_part(ds, sources) -> None:
    copy_series_context(sources[0], ds)
    if not ds.get("BodyPartExamined"):
        ds.BodyPartExamined = "BRAIN"


def parametric_map_dataset(values_kji, name: str, source_headers, *, series_number: int = 901):
    """Build one highdicom ParametricMap for map ``name`` (a key of ``MAP_QUANTITIES``)."""
    import highdicom as hd
    from pydicom import Dataset
    from pydicom.uid import generate_uid

    if name not in MAP_QUANTITIES:
        raise InputError(f"unknown parametric map {name!r}; choose from {', '.join(MAP_QUANTITIES)}")
    values = np.asarray(values_kji, dtype=np.float32)
    if values.ndim != 3:
        raise InputError(f"{name}: parametric map values must be [k, j, i], got shape {values.shape}")
    sources = _check_sources(source_headers, values.shape, name)
    quantity, (unit_value, unit_meaning), label, (center, width) = MAP_QUANTITIES[name]
    finite = values[np.isfinite(values)]
    vmin, vmax = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
    mapping = hd.pm.RealWorldValueMapping(
        lut_label=label,
        lut_explanation=f"{label} ({unit_meaning})",
        unit=_code((unit_value, "UCUM", unit_meaning)),
        value_range=(vmin, vmax),
        slope=1,
        intercept=0,
        quantity_definition=_code(quantity),
    )
    pm = hd.pm.ParametricMap(
        source_images=sources,
        pixel_array=values,
        series_instance_uid=generate_uid(),
        series_number=series_number,
        sop_instance_uid=generate_uid(),
        instance_number=1,
        **device_kwargs(MODEL),
        contains_recognizable_visual_features=False,
        real_world_value_mappings=[mapping],
        voi_lut_transformations=[hd.VOILUTTransformation(window_center=center, window_width=width)],
        content_description=f"{label} map",
        content_label=label.upper(),
        content_creator_name="QuantGPU^PerfusionAnalysis",
    )
    anatomy = Dataset()
    anatomy.FrameLaterality = "U"
    region = Dataset()
    region.CodeValue, region.CodingSchemeDesignator, region.CodeMeaning = BRAIN
    anatomy.AnatomicRegionSequence = [region]
    pm.SharedFunctionalGroupsSequence[0].FrameAnatomySequence = [anatomy]
    pm.SeriesDescription = f"QuantGPU {label}"
    _body_part(pm, sources)
    return pm


def write_parametric_map(
    path, values_kji, name: str, source_headers, *, force: bool = False, series_number: int = 901
) -> Path:
    ds = parametric_map_dataset(values_kji, name, source_headers, series_number=series_number)
    return save_dataset(ds, path, force)


def write_parametric_maps(out_dir, maps: dict, source_headers, *, force: bool = False) -> dict[str, Path]:
    """One Parametric Map file per map: ``<out_dir>/<name>_pm.dcm``."""
    out = Path(out_dir)
    return {
        name: write_parametric_map(
            out / f"{name}_pm.dcm", values, name, source_headers, force=force, series_number=901 + i
        )
        for i, (name, values) in enumerate(maps.items())
    }


def core_penumbra_seg_dataset(labels_kji, source_headers, *, series_number: int = 950):
    """A DICOM SEG with the core (label 1) and penumbra (label 2) of ``labels_kji``."""
    import highdicom as hd
    from pydicom.uid import generate_uid

    labels = np.asarray(labels_kji)
    if labels.ndim != 3:
        raise InputError(f"core/penumbra labels must be [k, j, i], got shape {labels.shape}")
    unknown = set(np.unique(labels).tolist()) - {0, *SEGMENTS}
    if unknown:
        raise InputError(f"core/penumbra labels hold unexpected values {sorted(unknown)}")
    sources = _check_sources(source_headers, labels.shape, "SEG")
    algorithm = hd.AlgorithmIdentificationSequence(
        name="QuantGPU PerfusionAnalysis rCBF/Tmax thresholds",
        family=_histogram_family(),
        version=_software_version(),
    )
    descriptions = [
        hd.seg.SegmentDescription(
            segment_number=number,
            segment_label=text,
            segmented_property_category=_code(CATEGORY),
            segmented_property_type=_code(code),
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=algorithm,
            anatomic_regions=[_code(BRAIN)],
        )
        for number, (text, code) in SEGMENTS.items()
    ]
    seg = hd.seg.Segmentation(
        source_images=sources,
        pixel_array=labels.astype(np.uint8),
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=generate_uid(),
        series_number=series_number,
        sop_instance_uid=generate_uid(),
        instance_number=1,
        **device_kwargs(MODEL),
        omit_empty_frames=bool(labels.any()),
        content_label="CORE_PENUMBRA",
        content_description="Ischemic core and penumbra",
    )
    seg.SeriesDescription = "QuantGPU core/penumbra"
    _body_part(seg, sources)
    return seg


def _histogram_family():
    from pydicom.sr.codedict import codes

    return codes.cid7162.HistogramAnalysis  # thresholds on rCBF and Tmax histograms of values


def write_core_penumbra_seg(path, labels_kji, source_headers, *, force: bool = False) -> Path:
    ds = core_penumbra_seg_dataset(labels_kji, source_headers)
    return save_dataset(ds, path, force)


def write_result_files(result, out_dir, kinds, source_headers, *, force: bool = False) -> dict[str, str]:
    """Write ``kinds`` of a ``pipeline.PerfusionResult`` into ``out_dir``; returns name -> path.

    "nrrd": the maps (``<map>.nrrd``) and the core/penumbra labels (``core_penumbra.nrrd``) on the frame
    grid; "pm": one DICOM Parametric Map per map (``<map>_pm.dcm``); "seg": the core/penumbra DICOM SEG
    (``core_penumbra_seg.dcm``, CT/DSC only). The DICOM kinds need the source slice headers of one frame.
    """
    from quantgpu.io import write_nrrd

    out = Path(out_dir)
    written: dict[str, str] = {}
    stroke = result.stroke
    if "nrrd" in kinds:
        for name, values in result.maps.items():
            written[name] = str(write_nrrd(out / f"{name}.nrrd", values, result.spacing, result.ijk_to_lps, force))
        if stroke is not None:
            path = write_nrrd(out / "core_penumbra.nrrd", stroke.labels, result.spacing, result.ijk_to_lps, force)
            written["core_penumbra"] = str(path)
    if "pm" in kinds:
        for name, path in write_parametric_maps(out, result.maps, source_headers, force=force).items():
            written[f"{name}_pm"] = str(path)
    if "seg" in kinds and stroke is not None:
        seg = write_core_penumbra_seg(out / "core_penumbra_seg.dcm", stroke.labels, source_headers, force=force)
        written["core_penumbra_seg"] = str(seg)
    return written
