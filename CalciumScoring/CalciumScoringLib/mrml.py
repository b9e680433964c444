"""CalciumScoring MRML layer: scalar volume node in, segmentation + table + parameters out.

Used by the Slicer module, the web workstation, the scenarios and the CLI alike. It
takes an ``MRMLContext`` (``quantgpu.slicer_env``) explicitly and never touches
``slicer.app``, ``slicer.mrmlScene`` or Qt, so it runs headless.

- The input volume is read into a copy; nothing is ever written into the input
  volume or the input artery labels.
- Outputs: a segmentation (one segment per artery LM, LAD, LCX, RCA plus
  "Unassigned", with DICOM terminology), a table (one row per artery, "Unassigned"
  and "Total" with labels; a "Total" row only without), and the result JSON on a
  parameter node (``vtkMRMLScriptedModuleNode``), which both panels display.
- Click-to-assign edits an output artery label volume (``ArteryAssignmentSession``),
  which is then passed as the labels of the next scoring run.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from quantgpu.errors import InputError
from quantgpu.output import dumps_json

from .agatston import (
    ARTERIES,
    PROFILES,
    SEGMENT_COLOURS,
    SEGMENT_NAMES,
    UNASSIGNED_LABEL,
    CalciumParameters,
    CalciumResult,
    score_calcium,
)
from .assign import ArteryAssigner, Assignment

log = logging.getLogger("quantgpu.calcium")

SEGMENT_IDS = {name: f"calcium_{name}" for name in SEGMENT_NAMES}
# Finding sites (calcium.md §6); "Unassigned" calcium lies in "coronary artery" (total site).
SITE_CODES = {
    "LM": ("3227004", "Left main coronary artery"),
    "LAD": ("59438005", "Left anterior descending coronary artery"),
    "LCX": ("57396003", "Left circumflex coronary artery"),
    "RCA": ("13647002", "Right coronary artery"),
    "Unassigned": ("41801008", "Coronary artery"),
}
CATEGORY_CODE = ("49755003", "Morphologically Abnormal Structure")
TYPE_CODE = ("18115005", "Pathologic calcification")
TERMINOLOGY_CONTEXT = "Segmentation category and type - DICOM master list"
ANATOMIC_CONTEXT = "Anatomic codes - DICOM master list"

TABLE_COLUMNS = ("Artery", "Lesions", "Agatston", "Volume (mm3)", "Mass (mg)")
RESULT_PARAMETER = "CalciumResultJSON"
SUMMARY_PARAMETER = "CalciumSummary"
ARTERY_LABEL_NAMES = {value: name for value, name in enumerate(ARTERIES, start=1)}

Progress = Callable[[float, str], None]


def terminology_entry(segment_name: str) -> str:
    """Slicer's serialized terminology entry (segment tag ``TerminologyEntry``) of a calcium segment.

    Format: context~category~type~type modifier~anatomic context~region~region modifier,
    each code as ``scheme^value^meaning``.
    """
    region_value, region_meaning = SITE_CODES[segment_name]
    return "~".join(
        (
            TERMINOLOGY_CONTEXT,
            f"SCT^{CATEGORY_CODE[0]}^{CATEGORY_CODE[1]}",
            f"SCT^{TYPE_CODE[0]}^{TYPE_CODE[1]}",
            "^^",
            ANATOMIC_CONTEXT,
            f"SCT^{region_value}^{region_meaning}",
            "^^",
        )
    )


# --- parameters -------------------------------------------------------------


def parameters_from_settings(
    profile: str = "standard",
    threshold_hu: float = 130.0,
    min_area_mm2: float | None = None,
    connectivity: int | str = 8,
    kvp: float = 120.0,
    calibration_mode: str = "none",
    calibration_factor: float | None = None,
    rod_hu: float | None = None,
    water_hu: float | None = None,
) -> CalciumParameters:
    """Scoring parameters from panel settings (Slicer and web panels share this).

    ``min_area_mm2`` None keeps the profile's minimum-size rule; a value different from
    the profile's minimum area replaces it (0 = no minimum area). ``calibration_mode``:
    "none" (mass reported as null), "factor" (c_HA given in mg/cm3/HU) or "rods"
    (c_HA = 200 / (HU_rod - HU_water), McCollough 2007).
    """
    from .agatston import calibration_factor as rod_calibration

    name = str(profile).lower()
    if name not in PROFILES:
        raise InputError(f"profile {profile!r} is not one of {', '.join(PROFILES)}")
    overrides: dict = {"threshold_hu": float(threshold_hu), "connectivity": int(connectivity), "kvp": float(kvp)}
    if min_area_mm2 is not None:
        profile_area = PROFILES[name]["min_area_mm2"] or 0.0
        if abs(float(min_area_mm2) - profile_area) > 1e-12:
            overrides["min_area_mm2"] = float(min_area_mm2) if min_area_mm2 > 0 else None
    mode = str(calibration_mode).lower()
    if mode == "factor":
        if calibration_factor is None:
            raise InputError("calibration mode 'factor' needs a calibration factor (mg/cm3/HU)")
        overrides["mass_calibration_mg_per_cm3_per_hu"] = float(calibration_factor)
        overrides["calibration_source"] = "user value"
    elif mode == "rods":
        if rod_hu is None or water_hu is None:
            raise InputError("calibration mode 'rods' needs the HU of the 200 mg/cm3 rod and of water")
        overrides["mass_calibration_mg_per_cm3_per_hu"] = rod_calibration(rod_hu, water_hu)
        overrides["calibration_source"] = f"rod ROI {float(rod_hu):g} HU, water {float(water_hu):g} HU"
    elif mode != "none":
        raise InputError(f"calibration mode {calibration_mode!r} is not one of none, factor, rods")
    return CalciumParameters.from_profile(name, **overrides)


# --- nodes <-> arrays ----------------------------------------------------------


def _array_from_volume_node(volume_node) -> tuple[np.ndarray, tuple[float, float, float], np.ndarray]:
    """(copy of the voxels [k,j,i] as float32, spacing (dk,dj,di) mm, IJK->RAS 4x4 in world)."""
    from quantgpu.io.volume import LPS_TO_RAS
    from quantgpu.mrml import array_from_volume_node

    if volume_node is None or not volume_node.IsA("vtkMRMLScalarVolumeNode"):
        raise InputError("input must be a scalar volume node (a CT volume)")
    if volume_node.GetImageData() is None or volume_node.GetImageData().GetNumberOfPoints() == 0:
        raise InputError(f"volume {volume_node.GetName()!r} has no voxels")
    array, spacing, ijk_to_lps = array_from_volume_node(volume_node)
    return np.asarray(array, dtype=np.float32), tuple(float(s) for s in spacing), LPS_TO_RAS @ ijk_to_lps


def _ijk_to_ras(volume_node) -> np.ndarray:
    import vtk

    m = vtk.vtkMatrix4x4()
    volume_node.GetIJKToRASMatrix(m)
    return np.array([[m.GetElement(r, c) for c in range(4)] for r in range(4)])


def _same_grid(a, b) -> bool:
    da, db = a.GetImageData().GetDimensions(), b.GetImageData().GetDimensions()
    return tuple(da) == tuple(db) and np.allclose(_ijk_to_ras(a), _ijk_to_ras(b), atol=1e-3)


def _write_labelmap(ctx, label_node, array: np.ndarray) -> None:
    import slicer.util

    slicer.util.updateVolumeFromArray(label_node, np.ascontiguousarray(array, dtype=np.uint8))


def artery_labels_from_node(ctx, labels_node, volume_node) -> np.ndarray | None:
    """Artery label array (0 none, 1 LM, 2 LAD, 3 LCX, 4 RCA) on the CT grid, read from
    a label volume (same grid) or a segmentation (segments named LM/LAD/LCX/RCA, possibly
    as "Calcium LAD", or carrying the artery's terminology code); a copy."""
    import slicer.util

    if labels_node is None:
        return None
    if labels_node.IsA("vtkMRMLSegmentationNode"):
        return _labels_from_segmentation(ctx, labels_node, volume_node)
    if not labels_node.IsA("vtkMRMLScalarVolumeNode"):
        raise InputError(f"artery labels {labels_node.GetName()!r} must be a label volume or a segmentation")
    if not _same_grid(labels_node, volume_node):
        raise InputError(
            f"artery label volume {labels_node.GetName()!r} is not on the grid of {volume_node.GetName()!r}"
        )
    labels = np.array(slicer.util.arrayFromVolume(labels_node), copy=True)
    if labels.dtype.kind == "f":
        if not np.array_equal(labels, np.round(labels)):
            raise InputError(f"artery label volume {labels_node.GetName()!r} holds non-integer values")
        labels = labels.astype(np.int64)
    return labels


def _artery_of_segment(segment) -> str | None:
    name = segment.GetName().strip().upper().replace("CALCIUM", "").strip(" _-")
    if name in ARTERIES:
        return name
    entry = segment.GetTerminology() or ""
    for artery in ARTERIES:
        if f"SCT^{SITE_CODES[artery][0]}^" in entry:
            return artery
    return None


def _labels_from_segmentation(ctx, segmentation_node, volume_node) -> np.ndarray:
    import slicer
    import slicer.util
    import vtk

    segmentation = segmentation_node.GetSegmentation()
    labels = None
    for index in range(segmentation.GetNumberOfSegments()):
        segment_id = segmentation.GetNthSegmentID(index)
        artery = _artery_of_segment(segmentation.GetSegment(segment_id))
        if artery is None:
            continue
        out = ctx.scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "__calcium_tmp__")
        try:
            ids = vtk.vtkStringArray()
            ids.InsertNextValue(segment_id)
            if not slicer.vtkSlicerSegmentationsModuleLogic.ExportSegmentsToLabelmapNode(
                segmentation_node, ids, out, volume_node
            ):
                raise InputError(f"could not resample segment {segment_id!r} onto the CT grid")
            mask = slicer.util.arrayFromVolume(out) > 0
        finally:
            ctx.scene.RemoveNode(out)
        if labels is None:
            labels = np.zeros(mask.shape, np.uint8)
        labels[mask & (labels == 0)] = ARTERIES.index(artery) + 1  # first segment wins on overlap
    if labels is None:
        raise InputError(
            f"segmentation {segmentation_node.GetName()!r} has no segment named LM, LAD, LCX or RCA "
            "(or with their terminology codes)"
        )
    return labels


# --- outputs ---------------------------------------------------------------------


def update_segmentation(ctx, segmentation_node, volume_node, lesion_labels: np.ndarray) -> None:
    """Write ``lesion_labels`` (1..4 artery, 5 unassigned) into the five calcium segments."""
    import slicer
    import vtk

    segmentation_node.SetReferenceImageGeometryParameterFromVolumeNode(volume_node)
    segmentation = segmentation_node.GetSegmentation()
    ids = vtk.vtkStringArray()
    for name in SEGMENT_NAMES:
        segment_id = SEGMENT_IDS[name]
        if segmentation.GetSegment(segment_id) is None:
            segmentation.AddEmptySegment(segment_id, name, SEGMENT_COLOURS[name])
        segment = segmentation.GetSegment(segment_id)
        segment.SetTerminology(terminology_entry(name))  # the "TerminologyEntry" segment tag
        ids.InsertNextValue(segment_id)
    temp = ctx.volumes_logic.CreateAndAddLabelVolume(ctx.scene, volume_node, "__calcium_lesions__")
    try:
        _write_labelmap(ctx, temp, lesion_labels)
        # label value n goes to the n-th listed segment; absent values clear their segment
        if not slicer.vtkSlicerSegmentationsModuleLogic.ImportLabelmapToSegmentationNode(temp, segmentation_node, ids):
            raise RuntimeError("could not import the calcium lesions into the segmentation")
    finally:
        display = temp.GetDisplayNode()
        ctx.scene.RemoveNode(temp)
        if display is not None:
            ctx.scene.RemoveNode(display)


def segment_voxel_counts(ctx, segmentation_node, volume_node) -> dict[str, int]:
    """Voxel count of each calcium segment on the CT grid (used by the scenarios and panels)."""
    import slicer
    import slicer.util
    import vtk

    counts = {}
    for name in SEGMENT_NAMES:
        out = ctx.scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "__calcium_tmp__")
        try:
            ids = vtk.vtkStringArray()
            ids.InsertNextValue(SEGMENT_IDS[name])
            slicer.vtkSlicerSegmentationsModuleLogic.ExportSegmentsToLabelmapNode(
                segmentation_node, ids, out, volume_node
            )
            image = out.GetImageData()
            counts[name] = int((slicer.util.arrayFromVolume(out) > 0).sum()) if image is not None else 0
        finally:
            ctx.scene.RemoveNode(out)
    return counts


def table_rows(result: CalciumResult) -> list[dict]:
    """Rows of the results table: per artery, Unassigned and Total (Total only without labels)."""
    rows = []
    if result.per_artery is not None:
        for name in ARTERIES:
            rows.append({"Artery": name, **_score_row(result.per_artery[name])})
        rows.append({"Artery": "Unassigned", **_score_row(result.unassigned)})
    rows.append(
        {
            "Artery": "Total",
            "Lesions": result.lesion_count,
            "Agatston": result.agatston,
            "Volume (mm3)": result.volume_mm3,
            "Mass (mg)": result.mass_mg,
        }
    )
    return rows


def _score_row(score) -> dict:
    return {
        "Lesions": score.lesion_count,
        "Agatston": score.agatston,
        "Volume (mm3)": score.volume_mm3,
        "Mass (mg)": score.mass_mg,
    }


def update_table(table_node, rows: list[dict]) -> None:
    """Fill ``table_node`` with ``rows``; a mass of None (no calibration) is stored as NaN."""
    import vtk

    table = table_node.GetTable()
    disabled = table_node.StartModify()
    table_node.RemoveAllColumns()
    arrays = {
        "Artery": vtk.vtkStringArray(),
        "Lesions": vtk.vtkIntArray(),
        "Agatston": vtk.vtkDoubleArray(),
        "Volume (mm3)": vtk.vtkDoubleArray(),
        "Mass (mg)": vtk.vtkDoubleArray(),
    }
    for name, array in arrays.items():
        array.SetName(name)
        for row in rows:
            value = row[name]
            if name == "Artery":
                array.InsertNextValue(str(value))
            else:
                array.InsertNextValue(float("nan") if value is None else value)
        table.AddColumn(array)
    table_node.SetColumnUnitLabel("Volume (mm3)", "mm3")
    table_node.SetColumnUnitLabel("Mass (mg)", "mg")
    table_node.SetColumnDescription("Agatston", "Equivalent Agatston score (x slice increment / 3 mm)")
    table_node.SetColumnDescription("Lesions", "3-D lesions (26-connected counted calcium voxels)")
    table_node.SetUseColumnTitleAsColumnHeader(True)
    table.Modified()
    table_node.Modified()
    table_node.EndModify(disabled)


def summary_text(result_json: dict) -> str:
    """One line for panels and logs: scores, category, CAC-DRS, backend (no patient data)."""
    mass = result_json.get("mass_mg")
    mass_text = f"{mass:.1f} mg" if mass is not None else "n/a (no calibration)"
    return (
        f"Agatston {result_json['agatston']:.1f} (category {result_json['category']}, "
        f"CAC-DRS {result_json['cac_drs']}); volume {result_json['volume_mm3']:.1f} mm3; "
        f"mass {mass_text}; {result_json['lesion_count']} lesions; "
        f"profile {result_json['parameters']['profile']}; backend {result_json['backend']}"
    )


def risk_summary(result_json: dict) -> str:
    """Reporting checklist lines (Obisesan et al. 2021; calcium.md §2.3) for the panels."""
    score = result_json["agatston"]
    lines = [f"Agatston {score:.1f}: category {result_json['category']}, CAC-DRS {result_json['cac_drs']}"]
    per_artery = result_json.get("per_artery")
    if per_artery is not None:
        vessels = [name for name in ARTERIES if per_artery[name]["agatston"] > 0]
        lines.append(f"Vessels with calcium: {len(vessels)} ({', '.join(vessels) or 'none'})")
        if per_artery["LM"]["agatston"] > 0:
            lines.append("Left main calcium present")
        unassigned = result_json.get("unassigned") or {}
        if unassigned.get("agatston", 0) > 0:
            lines.append(f"Unassigned calcium: Agatston {unassigned['agatston']:.1f} (in the total, in no vessel)")
    else:
        lines.append("No artery labels: per-vessel scores and CAC-DRS N not available")
    if score == 0:
        lines.append("CAC = 0: consider the rescan interval")
    if score > 1000:
        lines.append("CAC > 1000: very high")
    mesa = result_json.get("mesa")
    if mesa:
        lines.append(f"MESA 10-year CHD risk: {mesa.get('risk_percent', mesa)}")
    return "\n".join(lines)


def store_result(parameter_node, result: CalciumResult) -> None:
    """Result JSON and summary line as parameters of a ``vtkMRMLScriptedModuleNode``."""
    data = result.to_json()
    parameter_node.SetParameter(RESULT_PARAMETER, dumps_json(data))
    parameter_node.SetParameter(SUMMARY_PARAMETER, summary_text(data))


def stored_result(parameter_node) -> dict | None:
    text = parameter_node.GetParameter(RESULT_PARAMETER) if parameter_node is not None else ""
    return json.loads(text) if text else None


# --- the scoring run ---------------------------------------------------------------


@dataclass
class CalciumScoringRun:
    result: CalciumResult
    segmentation_node: object
    table_node: object
    parameter_node: object
    labels: np.ndarray | None = field(default=None, repr=False)

    @property
    def rows(self) -> list[dict]:
        return table_rows(self.result)


def score_volume_node(
    ctx,
    volume_node,
    *,
    labels_node=None,
    params: CalciumParameters | None = None,
    backend: str = "auto",
    progress: Progress | None = None,
    segmentation_node=None,
    table_node=None,
    parameter_node=None,
    show: bool = False,
) -> CalciumScoringRun:
    """Score ``volume_node`` and create or update the output nodes.

    ``labels_node``: optional artery label volume or segmentation. Output nodes that are
    not given are created (named after the volume). ``show`` turns on GPU volume
    rendering of the CT and the calcium segments in 3-D (front ends; not needed in tests).
    """
    step = progress or (lambda fraction, message: None)
    params = params or CalciumParameters()
    step(0.0, "reading the CT volume")
    hu, spacing, _ijk_to_ras = _array_from_volume_node(volume_node)
    labels = artery_labels_from_node(ctx, labels_node, volume_node)

    def scoring_progress(fraction: float, message: str) -> None:
        step(0.05 + 0.8 * fraction, message)

    result = score_calcium(hu, spacing, labels=labels, params=params, backend=backend, progress=scoring_progress)
    step(0.9, "writing the segmentation and the table")
    base = volume_node.GetName()
    scene = ctx.scene
    if segmentation_node is None:
        segmentation_node = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", f"{base} calcium")
        segmentation_node.CreateDefaultDisplayNodes()
    update_segmentation(ctx, segmentation_node, volume_node, result.lesion_labels)
    if table_node is None:
        table_node = scene.AddNewNodeByClass("vtkMRMLTableNode", f"{base} calcium scores")
    update_table(table_node, table_rows(result))
    if parameter_node is None:
        parameter_node = scene.AddNewNodeByClass("vtkMRMLScriptedModuleNode", f"{base} calcium result")
        parameter_node.SetAttribute("ModuleName", "CalciumScoring")
    store_result(parameter_node, result)
    if show:
        show_results(ctx, volume_node, segmentation_node)
    log.info("calcium scored: %s", summary_text(result.to_json()))
    step(1.0, "done")
    return CalciumScoringRun(result, segmentation_node, table_node, parameter_node, labels)


def show_results(ctx, volume_node, segmentation_node) -> None:
    """GPU volume rendering of the CT in 3-D with the calcium segments as surfaces."""
    try:
        from quantgpu.render import show_volume_rendering
    except ImportError:  # rendering helpers not installed: 2-D views still show the segments
        show_volume_rendering = None
    if show_volume_rendering is not None:
        show_volume_rendering(ctx, volume_node)
    if segmentation_node.GetDisplayNode() is None:
        segmentation_node.CreateDefaultDisplayNodes()
    segmentation_node.CreateClosedSurfaceRepresentation()
    segmentation_node.GetDisplayNode().SetVisibility3D(True)


# --- click-to-assign ---------------------------------------------------------------


class ArteryAssignmentSession:
    """Click-to-assign on a CT volume node; edits an output artery label volume node.

    The input labels (label volume or segmentation) are copied into a new label volume
    "<volume> artery labels", which every assignment, undo and redo updates; pass it
    as ``labels_node`` to ``score_volume_node`` to re-score.
    """

    def __init__(self, ctx, volume_node, labels_node=None, threshold_hu: float = 130.0, label_node=None):
        self.ctx = ctx
        self.volume_node = volume_node
        self.threshold_hu = float(threshold_hu)
        hu, spacing, self.ijk_to_ras = _array_from_volume_node(volume_node)
        initial = artery_labels_from_node(ctx, labels_node, volume_node)
        if initial is not None and (initial.min() < 0 or initial.max() > len(ARTERIES)):
            raise InputError("artery labels must be 0..4 (0 none, 1 LM, 2 LAD, 3 LCX, 4 RCA)")
        self.assigner = ArteryAssigner(hu, spacing, threshold_hu=threshold_hu, labels=initial)
        if label_node is None or label_node is labels_node:
            label_node = ctx.volumes_logic.CreateAndAddLabelVolume(
                ctx.scene, volume_node, f"{volume_node.GetName()} artery labels"
            )
        self.label_node = label_node
        self._sync()

    def _sync(self) -> None:
        _write_labelmap(self.ctx, self.label_node, self.assigner.labels)

    def ras_to_ijk(self, ras: Sequence[float]) -> np.ndarray:
        return (np.linalg.inv(self.ijk_to_ras) @ np.append(np.asarray(ras, dtype=float), 1.0))[:3]

    def assign_at_ras(self, ras: Sequence[float], artery: str, search_radius_mm: float = 3.0) -> Assignment:
        change = self.assigner.assign_at(self.ras_to_ijk(ras), artery, search_radius_mm)
        self._sync()
        return change

    def propose(self, heart_centre_ras=None, seeds_ras=None) -> list[Assignment]:
        changes = self.assigner.propose_all(self.ijk_to_ras, heart_centre_ras, seeds_ras)
        self._sync()
        return changes

    def undo(self) -> Assignment | None:
        change = self.assigner.undo()
        self._sync()
        return change

    def redo(self) -> Assignment | None:
        change = self.assigner.redo()
        self._sync()
        return change


def lesion_label_name(value: int) -> str:
    return "Unassigned" if value == UNASSIGNED_LABEL else ARTERY_LABEL_NAMES.get(int(value), "none")


# --- exports (DICOM SEG / SR, PDF, CSV via export.py and report.py) ------------------------

EXPORT_KINDS = ("seg", "sr", "pdf", "csv")
EXPORT_FILES = {
    "seg": "calcium_seg.dcm",
    "sr": "calcium_sr.dcm",
    "pdf": "calcium_report.pdf",
    "csv": "calcium_scores.csv",
}


def headers_in_grid_order(headers: Sequence, volume_node) -> list:
    """Source slice datasets sorted along the volume's k axis (one per slice), or InputError.

    The DICOM objects reference their source images per slice, so the order must be the
    array's, whatever order the database returned them in.
    """
    _hu, _spacing, ijk_to_ras = _array_from_volume_node(volume_node)
    from quantgpu.io.volume import LPS_TO_RAS

    ijk_to_lps = LPS_TO_RAS @ ijk_to_ras
    normal = ijk_to_lps[:3, 2] / np.linalg.norm(ijk_to_lps[:3, 2])
    n_slices = volume_node.GetImageData().GetDimensions()[2]
    datasets = [getattr(h, "ds", h) for h in headers]
    if len(datasets) != n_slices:
        raise InputError(f"{len(datasets)} DICOM source images for {n_slices} slices of {volume_node.GetName()!r}")
    try:
        positions = [
            float(np.dot(np.asarray(ds.ImagePositionPatient, float) - ijk_to_lps[:3, 3], normal)) for ds in datasets
        ]
    except AttributeError:
        raise InputError("DICOM source images have no ImagePositionPatient") from None
    return [headers[n] for n in np.argsort(positions, kind="stable")]


def export_results(
    ctx,
    run: CalciumScoringRun,
    volume_node,
    output_dir,
    kinds: Sequence[str] = EXPORT_KINDS,
    *,
    headers: Sequence | None = None,
    force: bool = False,
    rendering: bool = True,
) -> dict[str, str]:
    """Write the requested outputs of ``run`` into ``output_dir`` atomically; return kind -> path.

    DICOM SEG and SR need the source CT headers (``headers``, one pydicom Dataset per
    slice, any order); NRRD/NIfTI inputs have none and get an ``InputError`` for them.
    The SR references the SEG, so "sr" also writes the SEG (or reads an existing one
    when overwriting is not allowed). Existing files are never overwritten without ``force``.
    The SEG algorithm type is SEMIAUTOMATIC when artery labels (given or clicked) were used.
    """
    from quantgpu.output import prepare_output_dir

    from .export import write_csv, write_seg, write_sr
    from .report import write_pdf

    unknown = set(kinds) - set(EXPORT_KINDS)
    if unknown:
        raise InputError(f"unknown export kind(s) {sorted(unknown)}; choose from {', '.join(EXPORT_KINDS)}")
    if output_dir is None or str(output_dir) in ("", "."):
        raise InputError("choose an output folder for the exports")
    out_dir = prepare_output_dir(output_dir)
    paths = {kind: out_dir / EXPORT_FILES[kind] for kind in EXPORT_KINDS}
    result = run.result
    source = volume_node.GetName()
    written: dict[str, str] = {}
    ordered = headers_in_grid_order(headers, volume_node) if headers else []
    if "seg" in kinds or "sr" in kinds:
        seg_ds = None
        if "seg" not in kinds and paths["seg"].exists() and not force:
            import highdicom as hd

            seg_ds = hd.seg.segread(paths["seg"])  # reference the SEG exported before
        else:
            algorithm_type = "SEMIAUTOMATIC" if run.labels is not None else "AUTOMATIC"
            seg = write_seg(result, ordered, paths["seg"], force=force, algorithm_type=algorithm_type, source=source)
            if seg is not None:
                written["seg"] = str(seg[0])
                seg_ds = seg[1]
        if "sr" in kinds:
            written["sr"] = str(write_sr(result, ordered, paths["sr"], seg=seg_ds, force=force, source=source)[0])
    if "csv" in kinds:
        written["csv"] = str(write_csv(result, paths["csv"], force=force))
    if "pdf" in kinds:
        hu, _spacing, _m = _array_from_volume_node(volume_node)
        picture = _rendering_png(ctx, volume_node, run.segmentation_node, out_dir) if rendering else None
        try:
            written["pdf"] = str(
                write_pdf(
                    result, paths["pdf"], hu=hu, source=source, headers=ordered, rendering_png=picture, force=force
                )
            )
        finally:
            if picture is not None:
                picture.unlink(missing_ok=True)
    return written


def _rendering_png(ctx, volume_node, segmentation_node, out_dir):
    """A 3-D picture for the report (best effort: the report is complete without it)."""
    import os
    import tempfile
    from pathlib import Path

    fd, name = tempfile.mkstemp(prefix=".calcium-3d-", suffix=".png", dir=out_dir)
    os.close(fd)
    picture = Path(name)
    try:
        from quantgpu.render import render_volume_png

        return render_volume_png(
            ctx, volume_node, picture, size=(480, 480), segmentation_node=segmentation_node, force=True
        )
    except Exception as exc:
        picture.unlink(missing_ok=True)
        log.warning("3D rendering for the report skipped: %s: %s", type(exc).__name__, exc)
        return None
