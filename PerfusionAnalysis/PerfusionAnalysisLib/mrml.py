"""MRML layer: a 4-D sequence node (or array) in; map volumes, core/penumbra segmentation, curve plots
and a summary table out. Runs headless (slicer-core) and in desktop Slicer; never modifies its inputs.

- Maps: scalar volume nodes with a colour table (ColdToHotRainbow when the desktop colour files are
  loaded, else Slicer's built-in Rainbow), a fixed display window per quantity and the UCUM unit as the
  node's voxel value units (``vtkCodedEntry``).
- Core/penumbra: a segmentation node (segment label values 1 and 2 of ``stroke.CORE_LABEL``/``PENUMBRA_LABEL``).
- Curves: one table (time s, AIF, VOF, mean tissue curve) and a plot chart with one series per curve.
- Summary: a table (quantity, value, unit); an infinite mismatch ratio is stored as inf there.
- The Tmax map is shown in 3-D by GPU volume rendering (``quantgpu.render.show_volume_rendering``).
AIF placement by click: markups control points (RAS) become a voxel region on the frame grid.
AIF/VOF masks may also be label volumes or segmentations on the frame grid's space.
The panels' helpers: ``input_series`` (what a panel's input node stands for), ``analysis_options``
(panel settings to ``pipeline.analyze`` keywords, 0 = "from the header"), ``export_results``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from quantgpu.errors import InputError

from .pipeline import PerfusionResult, analyze
from .stroke import CORE_LABEL, PENUMBRA_LABEL

COLOR_NODE_IDS = ("vtkMRMLColorTableNodeFileColdToHotRainbow.txt", "vtkMRMLColorTableNodeRainbow")
# map: (unit value, unit meaning, display window min, max)
MAP_DISPLAY = {
    "cbf": ("ml/[100]g/min", "ml/100g/min", 0.0, 80.0),
    "cbv": ("ml/[100]g", "ml/100g", 0.0, 8.0),
    "mtt": ("s", "second", 0.0, 16.0),
    "tmax": ("s", "second", 0.0, 16.0),
    "ttp": ("s", "second", 0.0, 60.0),
    "ktrans": ("/min", "/min", 0.0, 0.5),
    "kep": ("/min", "/min", 0.0, 2.0),
    "ve": ("1", "no units", 0.0, 1.0),
    "vp": ("1", "no units", 0.0, 0.2),
}
SEGMENTS = [(CORE_LABEL, "Ischemic core", (0.85, 0.1, 0.1)), (PENUMBRA_LABEL, "Penumbra", (0.95, 0.8, 0.1))]
CURVE_COLORS = {"aif": (0.8, 0.1, 0.1), "vof": (0.1, 0.3, 0.9), "tissue_mean": (0.1, 0.6, 0.2)}


@dataclass
class PerfusionNodes:
    result: PerfusionResult
    maps: dict[str, Any]
    segmentation: Any | None
    curves_table: Any
    chart: Any
    plot_series: dict[str, Any]
    summary_table: Any
    volume_rendering: Any | None = None
    extra: dict = field(default_factory=dict)


def series_from_input(input_data, frame_times_s=None, spacing=None, ijk_to_lps=None):
    """A Series4D from a vtkMRMLSequenceNode, a sequence browser node, a Series4D or a 4-D array."""
    from quantgpu.io import Series4D, Volume
    from quantgpu.mrml import series4d_from_sequence_node

    if hasattr(input_data, "IsA"):
        node = input_data
        if node.IsA("vtkMRMLSequenceBrowserNode"):
            node = node.GetMasterSequenceNode()
        if node is None or not node.IsA("vtkMRMLSequenceNode"):
            raise InputError("perfusion input node must be a volume sequence (vtkMRMLSequenceNode)")
        series = series4d_from_sequence_node(node)
        if frame_times_s is not None:
            series = Series4D(series.frames, np.asarray(frame_times_s, float), series.frame)
        return series
    if hasattr(input_data, "frames") and hasattr(input_data, "frame_times_s"):
        return input_data
    frames = np.asarray(input_data, dtype=np.float32)
    if frames.ndim != 4:
        raise InputError(f"a 4-D array [t, k, j, i] is needed, got shape {frames.shape}")
    if frame_times_s is None:
        raise InputError("frame times are needed for an array input")
    spacing = tuple(float(s) for s in (spacing or (1.0, 1.0, 1.0)))
    m = np.diag([spacing[2], spacing[1], spacing[0], 1.0]) if ijk_to_lps is None else np.asarray(ijk_to_lps, float)
    return Series4D(frames, np.asarray(frame_times_s, float), Volume(frames[0], spacing, m))


def mask_from_points(points_ras, shape_kji, ijk_to_lps, radius_vox: int = 1) -> np.ndarray:
    """Voxel region around each RAS point: the (2r+1)² in-plane square on the point's slice."""
    pts = np.atleast_2d(np.asarray(points_ras, dtype=float))
    if pts.size == 0:
        raise InputError("place at least one AIF point")
    lps = pts * np.array([-1.0, -1.0, 1.0])
    ijk = (np.linalg.inv(np.asarray(ijk_to_lps, float)) @ np.c_[lps, np.ones(len(lps))].T)[:3].T
    mask = np.zeros(shape_kji, bool)
    r = int(radius_vox)
    for i, j, k in np.rint(ijk).astype(int):
        if not (0 <= k < shape_kji[0] and 0 <= j < shape_kji[1] and 0 <= i < shape_kji[2]):
            raise InputError(f"AIF point at voxel (i={i}, j={j}, k={k}) lies outside the series")
        mask[k, max(0, j - r) : j + r + 1, max(0, i - r) : i + r + 1] = True
    return mask


def points_from_markups(markups_node) -> np.ndarray:
    """RAS positions (world) of a markups node's control points."""
    n = markups_node.GetNumberOfControlPoints()
    out = np.zeros((n, 3))
    for p in range(n):
        markups_node.GetNthControlPointPositionWorld(p, out[p])
    return out


def mask_from_input(value, series):
    """An AIF/VOF mask on the grid of ``series`` from None (automatic), a bool/label array, a
    labelmap/scalar volume node on the frame grid, a segmentation node or a markups node (clicks)."""
    if value is None:
        return None
    if hasattr(value, "IsA"):
        if value.IsA("vtkMRMLMarkupsNode"):
            return mask_from_points(points_from_markups(value), series.frames.shape[1:], series.ijk_to_lps)
        if value.IsA("vtkMRMLSegmentationNode"):
            return mask_from_segmentation(value, series)
        from quantgpu.mrml import array_from_volume_node

        array, _spacing, m = array_from_volume_node(value)
        if array.shape != series.frames.shape[1:] or not np.allclose(m, series.ijk_to_lps, atol=1e-3):
            raise InputError(f"mask '{value.GetName()}' is not on the grid of the perfusion frames")
        return array != 0
    return np.asarray(value)


def mask_from_segmentation(segmentation_node, series) -> np.ndarray:
    """Voxels of the frame grid inside any segment of ``segmentation_node`` (Slicer's labelmap export)."""
    from quantgpu.mrml import labels_from_segmentation_node, volume_node_from_array

    scene = segmentation_node.GetScene()
    if scene is None:
        raise InputError(f"segmentation '{segmentation_node.GetName()}' is not in a scene")
    grid = series.frames.shape[1:]
    reference = volume_node_from_array(scene, np.zeros(grid, np.uint8), series.spacing, series.ijk_to_lps,
                                       name="perfusion frame grid")  # fmt: skip
    try:
        return labels_from_segmentation_node(segmentation_node, reference) != 0
    finally:
        for node in (reference.GetDisplayNode(), reference):
            if node is not None:
                scene.RemoveNode(node)


def _color_id(scene) -> str | None:
    for node_id in COLOR_NODE_IDS:
        if scene.GetNodeByID(node_id) is not None:
            return node_id
    return None


def _unit_entry(value: str, meaning: str):
    import slicer

    entry = slicer.vtkCodedEntry()
    entry.SetValueSchemeMeaning(value, "UCUM", meaning)
    return entry


def add_map_nodes(ctx, result: PerfusionResult, prefix: str = "Perfusion") -> dict[str, Any]:
    from quantgpu.mrml import volume_node_from_array

    color = _color_id(ctx.scene)
    nodes = {}
    for name, values in result.maps.items():
        node = volume_node_from_array(ctx, values, result.spacing, result.ijk_to_lps, name=f"{prefix} {name.upper()}")
        unit, meaning, lo, hi = MAP_DISPLAY[name]
        node.SetVoxelValueUnits(_unit_entry(unit, meaning))
        display = node.GetDisplayNode()
        if color:
            display.SetAndObserveColorNodeID(color)
        display.AutoWindowLevelOff()
        display.SetWindowLevelMinMax(lo, hi)
        nodes[name] = node
    return nodes


def add_curve_nodes(ctx, result: PerfusionResult, prefix: str = "Perfusion"):
    """(table, chart, {curve: plot series}) with time in s and the curves in concentration units."""
    from quantgpu.mrml import add_table

    columns = {"time_s": [float(t) for t in result.frame_times_s],
               "aif": [float(v) for v in result.aif_curve]}  # fmt: skip
    if result.vof_curve is not None:
        columns["vof"] = [float(v) for v in result.vof_curve]
    columns["tissue_mean"] = [float(v) for v in result.tissue_curve]
    table = add_table(ctx, f"{prefix} curves", columns)
    scene = ctx.scene
    chart = scene.AddNewNodeByClass("vtkMRMLPlotChartNode", f"{prefix} curves chart")
    chart.SetTitle("AIF, VOF and tissue curves")
    chart.SetXAxisTitle("time (s)")
    chart.SetYAxisTitle("ΔR2* (1/s)" if result.modality == "dsc" else "mM" if result.modality == "dce" else "ΔHU")
    series = {}
    for name in columns:
        if name == "time_s":
            continue
        s = scene.AddNewNodeByClass("vtkMRMLPlotSeriesNode", f"{prefix} {name}")
        s.SetAndObserveTableNodeID(table.GetID())
        s.SetXColumnName("time_s")
        s.SetYColumnName(name)
        s.SetPlotType(s.PlotTypeScatter)
        s.SetMarkerStyle(s.MarkerStyleNone)
        s.SetColor(*CURVE_COLORS[name])
        chart.AddAndObservePlotSeriesNodeID(s.GetID())
        series[name] = s
    return table, chart, series


def _nan_if_none(value):
    return np.nan if value is None else value


def summary_columns(result: PerfusionResult) -> dict[str, list]:
    """Rows of the summary table (quantity, value, unit)."""
    rows: list[tuple[str, float, str]] = [
        ("frames", result.frames, ""),
        ("frame interval", result.frame_interval_s, "s"),
        ("AIF voxels", int(np.count_nonzero(result.aif_mask)), ""),
        ("AIF peak time", result.aif_peak_time_s, "s"),
    ]
    s = result.stroke
    if s is not None:
        rows.append(("reference CBF", s.reference_cbf, "mL/100 g/min"))
        names = {
            "core": "core (rCBF < 30 %)",
            "tmax_gt_4s": "Tmax > 4 s",
            "tmax_gt_6s": "Tmax > 6 s",
            "tmax_gt_8s": "Tmax > 8 s",
            "tmax_gt_10s": "Tmax > 10 s",
        }
        rows += [(names.get(k, k), v, "mL") for k, v in s.volumes_ml.items()]
        rows += [
            ("mismatch volume", s.mismatch_volume_ml, "mL"),
            ("mismatch ratio", s.mismatch_ratio, ""),
            ("hypoperfusion intensity ratio", _nan_if_none(s.hypoperfusion_intensity_ratio), ""),
            ("DEFUSE 3 eligible", float(s.eligibility["defuse3"]), "1 = yes"),
            ("EXTEND eligible", float(s.eligibility["extend"]), "1 = yes"),
        ]
    else:
        for name, values in result.maps.items():
            finite = values[np.isfinite(values)]
            median = float(np.median(finite)) if finite.size else np.nan
            rows.append((f"median {name}", median, MAP_DISPLAY[name][1]))
    return {"quantity": [r[0] for r in rows], "value": [float(r[1]) for r in rows], "unit": [r[2] for r in rows]}


def add_result_nodes(ctx, result: PerfusionResult, prefix: str = "Perfusion", *,
                     volume_rendering: bool = True) -> PerfusionNodes:  # fmt: skip
    from quantgpu.mrml import add_table, segmentation_node_from_labels

    maps = add_map_nodes(ctx, result, prefix)
    segmentation = None
    if result.stroke is not None:
        segmentation = segmentation_node_from_labels(ctx, result.stroke.labels, maps["cbf"], SEGMENTS,
                                                     name=f"{prefix} core/penumbra")  # fmt: skip
    table, chart, series = add_curve_nodes(ctx, result, prefix)
    summary = add_table(ctx, f"{prefix} summary", summary_columns(result))
    rendering = None
    if volume_rendering and "tmax" in maps:
        from quantgpu.render import show_volume_rendering

        rendering = show_volume_rendering(ctx, maps["tmax"])
    return PerfusionNodes(result, maps, segmentation, table, chart, series, summary, rendering)


def analyze_node(
    ctx,
    input_data,
    modality: str = "ct",
    method: str = "csvd",
    *,
    aif=None,
    vof=None,
    frame_times_s=None,
    spacing=None,
    ijk_to_lps=None,
    prefix: str = "Perfusion",
    volume_rendering: bool = True,
    progress: Callable[[float], None] | None = None,
    cancel: Callable[[], bool] | None = None,
    **options,
) -> PerfusionNodes:
    """Analyse a sequence node (or array/Series4D) and add the result nodes to the scene.

    ``aif``/``vof``: None (automatic), a mask array, a volume node on the frame grid, a segmentation,
    or a markups node whose control points mark the vessel (AIF placement by click).
    """
    series = series_from_input(input_data, frame_times_s, spacing, ijk_to_lps)
    aif_mask, vof_mask = mask_from_input(aif, series), mask_from_input(vof, series)
    result = analyze(series, modality, method, aif_mask=aif_mask, vof_mask=vof_mask, progress=progress, cancel=cancel,
                     **options)  # fmt: skip
    return add_result_nodes(ctx, result, prefix, volume_rendering=volume_rendering)


# --- helpers of the front ends (Slicer panel, web panel) -----------------------------------------


def input_sequence_node(ctx, node):
    """The volume sequence a panel's input node stands for: a sequence node itself, a sequence
    browser's master sequence, or the sequence whose proxy a scalar volume is (the volume Slicer
    shows for a 4-D series). A plain 3-D volume is bad input."""
    if node is None:
        raise InputError("choose a 4-D series (a volume sequence)")
    if node.IsA("vtkMRMLSequenceNode"):
        return node
    if node.IsA("vtkMRMLSequenceBrowserNode"):
        sequence = node.GetMasterSequenceNode()
        if sequence is None:
            raise InputError(f"sequence browser '{node.GetName()}' has no sequence")
        return sequence
    if node.IsA("vtkMRMLScalarVolumeNode"):
        browser = ctx.sequences_logic.GetFirstBrowserNodeForProxyNode(node)
        sequence = browser.GetSequenceNode(node) if browser is not None else None
        if sequence is not None:
            return sequence
        raise InputError(f"'{node.GetName()}' is a single 3-D volume, not a 4-D series")
    raise InputError(f"'{node.GetName()}' is not a volume sequence")


def input_series(ctx, node, frame_interval_s: float | None = None):
    """The ``Series4D`` of a panel's input node (see ``input_sequence_node``), a copy. A positive
    ``frame_interval_s`` replaces the sequence's times by 0, Δt, 2Δt, ..."""
    from quantgpu.io import Series4D

    series = series_from_input(input_sequence_node(ctx, node))
    if not frame_interval_s:  # 0 or None: the sequence's own times
        return series
    if frame_interval_s < 0:
        raise InputError(f"frame interval must be positive, got {frame_interval_s} s")
    times = float(frame_interval_s) * np.arange(series.frames.shape[0], dtype=float)
    return Series4D(series.frames, times, series.frame)


def analysis_options(
    *,
    kh: float,
    density: float,
    model: str = "tofts",
    te_s: float = 0.0,
    flip_angle_deg: float = 0.0,
    tr_s: float = 0.0,
    t1_s: float = 1.4,
    motion_correction: bool = False,
    backend: str = "auto",
) -> dict:
    """Keyword arguments of ``pipeline.analyze`` from a panel's settings; a 0 for the echo time,
    flip angle or TR means "take it from the series header" (None)."""
    for name, value in (("k_H", kh), ("tissue density", density), ("T1", t1_s)):
        if not value > 0:
            raise InputError(f"{name} must be positive, got {value}")

    def header_or(value):
        return float(value) if value else None

    return {
        "kh": float(kh),
        "density": float(density),
        "model": str(model),
        "te_s": header_or(te_s),
        "flip_angle_deg": header_or(flip_angle_deg),
        "tr_s": header_or(tr_s),
        "t1_s": float(t1_s),
        "motion_correction": bool(motion_correction),
        "backend": str(backend),
    }


EXPORT_KINDS = ("pm", "seg", "nrrd")


def export_results(result: PerfusionResult, output_dir, kinds, *, headers=None, force: bool = False) -> dict[str, str]:
    """Write ``kinds`` of ``result`` into ``output_dir``: "pm" one DICOM Parametric Map per map
    (``<map>_pm.dcm``), "seg" the core/penumbra DICOM SEG (``core_penumbra_seg.dcm``), "nrrd" the maps
    and the core/penumbra labels (``<map>.nrrd``, ``core_penumbra.nrrd``). DICOM outputs need the
    source slice headers of one frame (``headers``, else ``result.headers``). Every planned file is
    checked before anything is written; nothing is overwritten without ``force``."""
    from quantgpu.output import check_writable, prepare_output_dir

    from . import export

    kinds = tuple(kinds)
    unknown = [k for k in kinds if k not in EXPORT_KINDS]
    if unknown:
        raise InputError(f"unknown export {unknown[0]!r}; choose from {', '.join(EXPORT_KINDS)}")
    if not str(output_dir or "").strip() or str(output_dir) == ".":
        raise InputError("choose an output folder")
    headers = list(headers or result.headers or [])
    if ("pm" in kinds or "seg" in kinds) and not headers:
        raise InputError("DICOM exports need a series loaded from DICOM (no source headers)")
    if "seg" in kinds and result.stroke is None:
        raise InputError("no core/penumbra segmentation for DCE results")
    out = prepare_output_dir(output_dir)
    planned = []
    if "pm" in kinds:
        planned += [f"{name}_pm.dcm" for name in result.maps]
    if "seg" in kinds:
        planned.append("core_penumbra_seg.dcm")
    if "nrrd" in kinds:
        planned += [f"{name}.nrrd" for name in result.maps]
        planned += ["core_penumbra.nrrd"] if result.stroke is not None else []
    for name in planned:
        check_writable(out / name, force)
    return export.write_result_files(result, out, kinds, headers, force=force)


def summary_text(result: PerfusionResult) -> str:
    """One line: core, Tmax > 6 s, mismatch (ratio), DEFUSE 3 / EXTEND, method and backend (as the CLI)."""
    from .cli import summary_line

    return summary_line(result.to_json())
