"""Arrays <-> MRML nodes, for every module's MRML layer (slicer-core, no Qt).

Conventions (DESIGN.md): arrays are [k, j, i] with spacing (dk, dj, di); geometry
matrices on our side are IJK->LPS (DICOM), MRML stores IJK->RAS; the two differ by
diag(-1, -1, 1, 1). ``slicer.util.arrayFromVolume`` returns a view in KJI order:
we always copy. Functions take an ``MRMLContext`` or a bare ``vtkMRMLScene``
where they only need the scene. Input nodes are never modified.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from .errors import InputError
from .io.volume import LPS_TO_RAS, Series4D, Volume, default_ijk_to_lps, spacing_from_matrix

LABEL_VALUE_TAG = "QuantGPU.LabelValue"


def _scene(ctx_or_scene):
    return getattr(ctx_or_scene, "scene", ctx_or_scene)


def _vtk_matrix(m: np.ndarray):
    import vtk

    out = vtk.vtkMatrix4x4()
    for r in range(4):
        for c in range(4):
            out.SetElement(r, c, float(m[r, c]))
    return out


def _numpy_matrix(vm) -> np.ndarray:
    return np.array([[vm.GetElement(r, c) for c in range(4)] for r in range(4)], dtype=float)


def _geometry_ras(spacing_kji, ijk_to_lps) -> np.ndarray:
    m = default_ijk_to_lps(spacing_kji) if ijk_to_lps is None else np.asarray(ijk_to_lps, dtype=float)
    if m.shape != (4, 4):
        raise InputError(f"ijk_to_lps must be a 4x4 matrix, got shape {m.shape}")
    if spacing_kji is not None and not np.allclose(spacing_from_matrix(m), spacing_kji, rtol=1e-4, atol=1e-6):
        raise InputError(f"spacing {tuple(spacing_kji)} does not match the ijk_to_lps column lengths")
    return LPS_TO_RAS @ m


def _set_geometry_and_array(node, array_kji: np.ndarray, ijk_to_ras: np.ndarray) -> None:
    import slicer

    # SetIJKToRASMatrix splits the matrix into spacing, origin and unit directions.
    node.SetIJKToRASMatrix(_vtk_matrix(ijk_to_ras))
    slicer.util.updateVolumeFromArray(node, np.ascontiguousarray(array_kji))


def volume_node_from_array(
    ctx_or_scene,
    array_kji: np.ndarray,
    spacing_kji,
    ijk_to_lps: np.ndarray | None = None,
    name: str = "Volume",
    *,
    labelmap: bool = False,
):
    """A new scalar (or labelmap) volume node holding a copy of ``array_kji``."""
    array = np.array(array_kji, copy=True)
    if array.dtype == bool:
        array = array.astype(np.uint8)  # VTK has no boolean scalar type
    if array.ndim != 3:
        raise InputError(f"expected a [k, j, i] array, got shape {array.shape}")
    m_ras = _geometry_ras(spacing_kji, ijk_to_lps)
    cls = "vtkMRMLLabelMapVolumeNode" if labelmap else "vtkMRMLScalarVolumeNode"
    node = _scene(ctx_or_scene).AddNewNodeByClass(cls, name)
    _set_geometry_and_array(node, array, m_ras)
    node.CreateDefaultDisplayNodes()
    return node


def volume_node_from_volume(ctx_or_scene, volume: Volume, name: str | None = None):
    """A new scalar volume node from a loaded ``Volume`` (values and geometry)."""
    node = volume_node_from_array(ctx_or_scene, volume.array, volume.spacing, volume.ijk_to_lps, name or "Volume")
    if volume.modality:
        node.SetAttribute("DICOM.Modality", volume.modality)
    if volume.series_instance_uid:
        node.SetAttribute("DICOM.SeriesInstanceUID", volume.series_instance_uid)
    return node


def _world_ijk_to_ras(node) -> np.ndarray:
    """IJK->RAS including a linear parent transform; refuse a non-linear one."""
    import vtk

    vm = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(vm)
    m = _numpy_matrix(vm)
    parent = node.GetParentTransformNode()
    if parent is not None:
        if not parent.IsTransformToWorldLinear():
            raise InputError(f"volume '{node.GetName()}' is under a non-linear transform; harden it first")
        to_world = vtk.vtkMatrix4x4()
        parent.GetMatrixTransformToWorld(to_world)
        m = _numpy_matrix(to_world) @ m
    return m


def array_from_volume_node(node) -> tuple[np.ndarray, tuple[float, float, float], np.ndarray]:
    """(copy of the voxels [k, j, i], spacing (dk, dj, di), ijk_to_lps) of a volume node."""
    import slicer

    if node is None or node.GetImageData() is None:
        name = node.GetName() if node is not None else "None"
        raise InputError(f"volume '{name}' holds no image data")
    array = np.array(slicer.util.arrayFromVolume(node), copy=True)
    m_lps = LPS_TO_RAS @ _world_ijk_to_ras(node)
    return array, spacing_from_matrix(m_lps), m_lps


def volume_from_volume_node(node) -> Volume:
    """A ``Volume`` (float32 copy) from a scalar volume node."""
    array, spacing, m = array_from_volume_node(node)
    return Volume(
        array=array.astype(np.float32, copy=False),
        spacing=spacing,
        ijk_to_lps=m,
        modality=node.GetAttribute("DICOM.Modality"),
        source=node.GetName(),
        series_instance_uid=node.GetAttribute("DICOM.SeriesInstanceUID"),
    )


def add_table(ctx_or_scene, name: str, columns: dict[str, Sequence[Any]]):
    """A new table node; numeric columns become vtkDoubleArray, others vtkStringArray."""
    import vtk

    lengths = {len(v) for v in columns.values()}
    if len(lengths) > 1:
        raise InputError(f"table '{name}': columns have different lengths {sorted(lengths)}")
    node = _scene(ctx_or_scene).AddNewNodeByClass("vtkMRMLTableNode", name)
    table = node.GetTable()
    for col_name, values in columns.items():
        values = list(values)
        numeric = all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) for v in values)
        arr = vtk.vtkDoubleArray() if numeric else vtk.vtkStringArray()
        arr.SetName(str(col_name))
        arr.SetNumberOfValues(len(values))
        for r, v in enumerate(values):
            arr.SetValue(r, float(v) if numeric else str(v))
        table.AddColumn(arr)
    table.Modified()
    node.Modified()
    return node


def table_columns(table_node) -> dict[str, list]:
    """Columns of a table node as Python lists (numbers as float, text as str)."""
    table = table_node.GetTable()
    out: dict[str, list] = {}
    for c in range(table.GetNumberOfColumns()):
        col = table.GetColumn(c)
        n = col.GetNumberOfValues() if hasattr(col, "GetNumberOfValues") else col.GetNumberOfTuples()
        if col.IsA("vtkStringArray"):
            out[col.GetName()] = [col.GetValue(r) for r in range(n)]
        else:
            out[col.GetName()] = [float(col.GetValue(r)) for r in range(n)]
    return out


def segmentation_node_from_labels(
    ctx_or_scene,
    labels_kji: np.ndarray,
    reference_volume_node,
    segments: Sequence[tuple[int, str, tuple[float, float, float]]],
    name: str = "Segmentation",
):
    """A new segmentation node with one segment per (label value, name, rgb 0..1).

    ``labels_kji`` lies on the reference volume's grid. Label values not listed in
    ``segments`` are an error (a silently dropped structure is worse). Each
    segment remembers its label value (tag ``QuantGPU.LabelValue``) so that
    ``labels_from_segmentation_node`` gives the same values back.
    """
    import slicer
    import vtk

    scene = _scene(ctx_or_scene)
    labels = np.asarray(labels_kji)
    ref_shape = slicer.util.arrayFromVolume(reference_volume_node).shape
    if labels.shape != ref_shape:
        raise InputError(f"label array shape {labels.shape} differs from the reference volume {ref_shape}")
    values = [int(v) for v, _, _ in segments]
    if len(set(values)) != len(values) or any(v <= 0 for v in values):
        raise InputError(f"segment label values must be distinct and positive, got {values}")
    present = {int(v) for v in np.unique(labels)} - {0}
    unknown = sorted(present - set(values))
    if unknown:
        raise InputError(f"label values {unknown} have no segment description")

    # Label value -> 1..N in the order of ``segments`` (the import maps N to the N-th ID).
    lut = np.zeros(max([*values, *present, 0]) + 1, dtype=np.int16)
    for n, v in enumerate(values, start=1):
        lut[v] = n
    remapped = lut[labels.astype(np.int64)] if labels.size else labels.astype(np.int16)

    seg_node = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", name)
    seg_node.CreateDefaultDisplayNodes()
    seg_node.SetReferenceImageGeometryParameterFromVolumeNode(reference_volume_node)
    segmentation = seg_node.GetSegmentation()
    ids = vtk.vtkStringArray()
    for value, seg_name, rgb in segments:
        seg_id = segmentation.AddEmptySegment("", str(seg_name), [float(c) for c in rgb])
        segmentation.GetSegment(seg_id).SetTag(LABEL_VALUE_TAG, str(int(value)))
        ids.InsertNextValue(seg_id)

    _, spacing, m_lps = array_from_volume_node(reference_volume_node)
    labelmap = volume_node_from_array(scene, remapped, spacing, m_lps, name=f"{name} labels", labelmap=True)
    try:
        ok = slicer.vtkSlicerSegmentationsModuleLogic.ImportLabelmapToSegmentationNode(labelmap, seg_node, ids)
    finally:
        scene.RemoveNode(labelmap)
    if not ok:
        scene.RemoveNode(seg_node)
        raise InputError(f"could not import the labels into segmentation '{name}'")
    return seg_node


def labels_from_segmentation_node(seg_node, reference_volume_node) -> np.ndarray:
    """Label array [k, j, i] on the reference grid; each segment's voxels get its label value.

    Label values come from the ``QuantGPU.LabelValue`` tag, else the segment's
    position + 1. Where segments overlap, the later segment wins (Slicer's export).
    """
    import slicer
    import vtk

    scene = seg_node.GetScene()
    segmentation = seg_node.GetSegmentation()
    seg_ids = [segmentation.GetNthSegmentID(n) for n in range(segmentation.GetNumberOfSegments())]
    ref_shape = slicer.util.arrayFromVolume(reference_volume_node).shape
    if not seg_ids:
        return np.zeros(ref_shape, dtype=np.int16)
    ids = vtk.vtkStringArray()
    for seg_id in seg_ids:
        ids.InsertNextValue(seg_id)
    before = {scene.GetNthNode(n).GetID() for n in range(scene.GetNumberOfNodes())}
    labelmap = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "export labels")
    try:
        ok = slicer.vtkSlicerSegmentationsModuleLogic.ExportSegmentsToLabelmapNode(
            seg_node, ids, labelmap, reference_volume_node
        )
        if not ok:
            raise InputError(f"could not export segmentation '{seg_node.GetName()}' to labels")
        exported = np.array(slicer.util.arrayFromVolume(labelmap), copy=True)
    finally:
        # the export also adds a colour table and display nodes for the temporary labelmap
        added = [scene.GetNthNode(n) for n in range(scene.GetNumberOfNodes())]
        for node in added:
            if node.GetID() not in before:
                scene.RemoveNode(node)
    if exported.shape != ref_shape:
        raise InputError(f"exported labels have shape {exported.shape}, reference volume {ref_shape}")
    out = np.zeros(ref_shape, dtype=np.int32)
    for n, seg_id in enumerate(seg_ids, start=1):
        tag = vtk.reference("")
        found = segmentation.GetSegment(seg_id).GetTag(LABEL_VALUE_TAG, tag)
        value = int(str(tag)) if found and str(tag) else n
        out[exported == n] = value
    return out


class SequenceNodes(NamedTuple):
    sequence: Any  # vtkMRMLSequenceNode (the frames)
    browser: Any  # vtkMRMLSequenceBrowserNode (plays them)
    proxy: Any  # vtkMRMLScalarVolumeNode showing the current frame


def sequence_node_from_series4d(ctx, series: Series4D, name: str = "Series") -> SequenceNodes:
    """A volume sequence (index: time in s) with a browser and a proxy volume to show it."""
    import slicer

    scene = ctx.scene
    m_ras = _geometry_ras(series.spacing, series.ijk_to_lps)
    seq = scene.AddNewNodeByClass("vtkMRMLSequenceNode", name)
    seq.SetIndexName("time")
    seq.SetIndexUnit("s")
    seq.SetIndexType(seq.NumericIndex)
    for t, time_s in enumerate(np.asarray(series.frame_times_s, dtype=float)):
        frame = slicer.vtkMRMLScalarVolumeNode()  # not in the scene: the sequence keeps a copy
        _set_geometry_and_array(frame, np.array(series.frames[t], copy=True), m_ras)
        seq.SetDataNodeAtValue(frame, f"{time_s:.6g}")
    if series.modality:
        seq.SetAttribute("DICOM.Modality", series.modality)
    browser = scene.AddNewNodeByClass("vtkMRMLSequenceBrowserNode", f"{name} browser")
    browser.SetAndObserveMasterSequenceNodeID(seq.GetID())
    browser.SetSelectedItemNumber(0)
    ctx.sequences_logic.UpdateProxyNodesFromSequences(browser)
    proxy = browser.GetProxyNode(seq)
    if proxy is not None:
        proxy.SetName(name)
        proxy.CreateDefaultDisplayNodes()
    return SequenceNodes(seq, browser, proxy)


def series4d_from_sequence_node(sequence_node) -> Series4D:
    """A ``Series4D`` (float32 copy) from a volume sequence with a numeric time index in s."""
    n = sequence_node.GetNumberOfDataNodes()
    if n == 0:
        raise InputError(f"sequence '{sequence_node.GetName()}' is empty")
    unit = (sequence_node.GetIndexUnit() or "s").strip().lower()
    scale = {"s": 1.0, "sec": 1.0, "ms": 1e-3}.get(unit)
    if scale is None:
        raise InputError(f"sequence '{sequence_node.GetName()}' has index unit {unit!r}; expected s or ms")
    frames, times = [], []
    spacing = m = None
    for t in range(n):
        node = sequence_node.GetNthDataNode(t)
        if node is None or not node.IsA("vtkMRMLScalarVolumeNode"):
            raise InputError(f"sequence '{sequence_node.GetName()}' item {t} is not a scalar volume")
        array, sp, mt = array_from_volume_node(node)
        if m is None:
            spacing, m = sp, mt
        elif array.shape != frames[0].shape or not np.allclose(mt, m, atol=1e-4):
            raise InputError(f"sequence '{sequence_node.GetName()}' item {t} has a different geometry")
        frames.append(array.astype(np.float32, copy=False))
        try:
            times.append(float(sequence_node.GetNthIndexValue(t)) * scale)
        except ValueError:
            raise InputError(f"sequence '{sequence_node.GetName()}' index {t} is not a number") from None
    times_arr = np.array(times) - times[0]
    if np.any(np.diff(times_arr) <= 0):
        raise InputError(f"sequence '{sequence_node.GetName()}' times do not increase")
    data = np.stack(frames)
    first = Volume(
        array=data[0],
        spacing=spacing,
        ijk_to_lps=m,
        modality=sequence_node.GetAttribute("DICOM.Modality"),
        source=sequence_node.GetName(),
    )
    return Series4D(frames=data, frame_times_s=times_arr, frame=first)
