"""MRML layer: an analysed exam as nodes in a four-view hanging (RCC LCC / RMLO LMLO).

- One scalar volume per image (1 × rows × cols, the stored matrix unchanged). The radiological
  hanging is made by geometry: in an axial slice view the screen x axis runs towards patient Left
  (RAS −x) and screen y towards Anterior (RAS +y), so column i maps to RAS −x (or +x when the
  display flips the stored image) and row j to RAS −y. Each image lies on its own plane
  (z = 10 mm × slot) so that the four views never overlap.
- One markups fiducial node per image: one control point per candidate (every candidate, with a
  "type score" label); the operating point switches which points are visible.
- Density overlay: a labelmap per image (1 breast, 2 dense tissue, 3 pectoral muscle).
- Slice views "MammoRCC", "MammoLCC", "MammoRMLO", "MammoLMLO" (slice + composite nodes) and the
  layout XML that desktop Slicer's layout manager uses for them (``LAYOUT_XML``).
The layer reads the exam items and never modifies them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from . import mgio

SLOT_NAMES = ("RCC", "LCC", "RMLO", "LMLO")
LAYOUT_ID = 8741  # custom layout id for MammoCAD's four-view hanging
PLANE_GAP_MM = 10.0
DENSITY_LABELS = {
    1: ("breast", (0.2, 0.5, 1.0)),
    2: ("dense tissue", (1.0, 0.55, 0.0)),
    3: ("pectoral muscle", (0.6, 0.2, 0.8)),
}
SCORES_ATTRIBUTE = "MammoCAD.findings"

LAYOUT_XML = (
    '<layout type="vertical" split="true">'
    + "".join(
        '<item><layout type="horizontal">'
        + "".join(
            f'<item><view class="vtkMRMLSliceNode" singletontag="Mammo{name}">'
            f'<property name="orientation" action="default">Axial</property>'
            f'<property name="viewlabel" action="default">{name}</property>'
            f'<property name="viewcolor" action="default">#808080</property></view></item>'
            for name in pair
        )
        + "</layout></item>"
        for pair in (("RCC", "LCC"), ("RMLO", "LMLO"))
    )
    + "</layout>"
)


@dataclass
class MammoExamNodes:
    """Node IDs of one exam in the scene, by image (input order) and by hanging slot."""

    volume_ids: list[str] = field(default_factory=list)
    markups_ids: list[str] = field(default_factory=list)
    labelmap_ids: list[str] = field(default_factory=list)
    slot_of_image: list[str | None] = field(default_factory=list)
    slice_node_ids: dict[str, str] = field(default_factory=dict)
    color_node_id: str | None = None
    operating_point: str = "balanced"


def ijk_to_ras(mammogram: mgio.Mammogram, plane_z_mm: float) -> np.ndarray:
    """4×4 IJK→RAS of the stored matrix placed in the hanging (see the module docstring)."""
    spacing = mammogram.pixel_spacing_mm or 1.0  # without spacing, 1 "mm" per pixel for display only
    rows, cols = mammogram.image.shape
    sign_x = 1.0 if mgio.hanging_flipped(mammogram) else -1.0
    m = np.eye(4)
    m[0, 0] = sign_x * spacing  # column i -> screen right (RAS −x) unless the display flips
    m[1, 1] = -spacing  # row j -> screen down (RAS −y)
    m[2, 2] = 1.0
    # keep the image centred on x = 0 of its plane
    m[0, 3] = -sign_x * spacing * (cols - 1) / 2.0
    m[1, 3] = spacing * (rows - 1) / 2.0
    m[2, 3] = plane_z_mm
    return m


def _set_geometry(node, matrix: np.ndarray) -> None:
    import vtk

    vtk_matrix = vtk.vtkMatrix4x4()
    for r in range(4):
        for c in range(4):
            vtk_matrix.SetElement(r, c, float(matrix[r, c]))
    node.SetIJKToRASMatrix(vtk_matrix)


def _volume(scene, class_name: str, name: str, array_kji: np.ndarray, matrix: np.ndarray):
    import slicer.util

    node = scene.AddNewNodeByClass(class_name, name)
    slicer.util.updateVolumeFromArray(node, array_kji)
    _set_geometry(node, matrix)
    if class_name == "vtkMRMLScalarVolumeNode":
        node.CreateDefaultDisplayNodes()
    return node


def _density_color_node(scene):
    node = scene.AddNewNodeByClass("vtkMRMLColorTableNode", "MammoCAD density")
    node.SetTypeToUser()
    node.SetNumberOfColors(len(DENSITY_LABELS) + 1)
    node.SetColor(0, "background", 0.0, 0.0, 0.0, 0.0)
    for value, (label, rgb) in DENSITY_LABELS.items():
        node.SetColor(value, label, *rgb, 1.0)
    return node


def density_labelmap(analysis) -> np.ndarray:
    """1 breast, 2 dense tissue, 3 pectoral muscle (uint8, stored pixel coordinates)."""
    labels = np.zeros(analysis.breast_mask.shape, dtype=np.uint8)
    labels[np.asarray(analysis.breast_mask, dtype=bool)] = 1
    labels[np.asarray(analysis.dense_mask, dtype=bool)] = 2
    if analysis.pectoral_mask is not None:
        labels[np.asarray(analysis.pectoral_mask, dtype=bool)] = 3
    return labels


def _slice_views(scene) -> dict[str, object]:
    """Slice and composite nodes for the four hanging slots (reused when they exist)."""
    views = {}
    for name in SLOT_NAMES:
        tag = f"Mammo{name}"
        slice_node = _layout_node(scene, "vtkMRMLSliceNode", tag)
        if slice_node.GetScene() is None:
            slice_node.SetName(tag)
            slice_node.SetLayoutLabel(name)
            slice_node.SetOrientation("Axial")
            scene.AddNode(slice_node)
        composite = _layout_node(scene, "vtkMRMLSliceCompositeNode", tag)
        if composite.GetScene() is None:
            scene.AddNode(composite)
        views[name] = (slice_node, composite)
    return views


def _layout_node(scene, class_name: str, tag: str):
    """The scene's node of ``class_name`` for layout ``tag``, or a new one (not yet added) tagged for it."""
    found = [node for node in _nodes(scene, class_name) if node.GetLayoutName() == tag]
    if found:
        return found[-1]
    node = scene.CreateNodeByClass(class_name)
    node.SetLayoutName(tag)
    node.SetSingletonTag(tag)
    return node


def _nodes(scene, class_name: str):
    collection = scene.GetNodesByClass(class_name)
    return [collection.GetItemAsObject(i) for i in range(collection.GetNumberOfItems())]


def _register_layout(scene) -> None:
    layout = scene.GetFirstNodeByClass("vtkMRMLLayoutNode")
    if layout is None:  # headless trame-slicer scenes manage their own layouts
        return
    if not layout.IsLayoutDescription(LAYOUT_ID):
        layout.AddLayoutDescription(LAYOUT_ID, LAYOUT_XML)
    layout.SetViewArrangement(LAYOUT_ID)


def load_exam(ctx, items: Sequence, operating_point: str = "balanced") -> MammoExamNodes:
    """Create the exam's nodes in ``ctx.scene`` (``items``: export.ExamImage) and hang them."""
    from .export import check_operating_point

    scene = ctx.scene if hasattr(ctx, "scene") else ctx
    check_operating_point(operating_point)
    nodes = MammoExamNodes(operating_point=operating_point)
    color = _density_color_node(scene)
    nodes.color_node_id = color.GetID()
    slots = mgio.hanging_order([item.mammogram for item in items])
    views = _slice_views(scene)
    for n, item in enumerate(items):
        m, a = item.mammogram, item.analysis
        slot = next((SLOT_NAMES[k] for k, s in enumerate(slots) if s is m), None)
        plane = PLANE_GAP_MM * (SLOT_NAMES.index(slot) if slot else 4 + n)
        matrix = ijk_to_ras(m, plane)
        title = f"{m.laterality}{m.view or '?'}"
        volume = _volume(scene, "vtkMRMLScalarVolumeNode", f"Mammo {title}", m.image[None], matrix)
        volume.SetAttribute("MammoCAD.sop_instance_uid", m.sop_instance_uid or "")
        volume.SetAttribute("MammoCAD.laterality", m.laterality)
        volume.SetAttribute("MammoCAD.view", m.view or "")
        display = volume.GetDisplayNode()
        display.AutoWindowLevelOff()
        display.SetWindowLevelMinMax(0.0, 1.0)
        labelmap = _volume(
            scene, "vtkMRMLLabelMapVolumeNode", f"Mammo {title} density", density_labelmap(a)[None], matrix
        )
        labelmap.CreateDefaultDisplayNodes()
        labelmap.GetDisplayNode().SetAndObserveColorNodeID(color.GetID())
        marks = scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", f"Mammo {title} CAD marks")
        marks.CreateDefaultDisplayNodes()
        records = []
        for f in a.findings:
            r, c = float(f.center_px[0]), float(f.center_px[1])
            ras = matrix @ np.array([c, r, 0.0, 1.0])
            short = "calc" if f.type == "calcification_cluster" else "mass"
            index = marks.AddControlPoint(ras[:3].tolist(), f"{short} {f.score:.1f}")
            marks.SetNthControlPointDescription(index, f.type)
            marks.SetNthControlPointLocked(index, True)
            records.append({"type": f.type, "score": float(f.score), "center_px": [r, c]})
        marks.SetAttribute(SCORES_ATTRIBUTE, json.dumps(records))
        if slot:
            slice_node, composite = views[slot]
            composite.SetBackgroundVolumeID(volume.GetID())
            composite.SetLabelVolumeID(labelmap.GetID())
            composite.SetLabelOpacity(0.3)
            slice_node.SetSliceOffset(plane)
            marks.GetDisplayNode().SetViewNodeIDs([slice_node.GetID()])
            nodes.slice_node_ids[slot] = slice_node.GetID()
        nodes.volume_ids.append(volume.GetID())
        nodes.labelmap_ids.append(labelmap.GetID())
        nodes.markups_ids.append(marks.GetID())
        nodes.slot_of_image.append(slot)
    set_operating_point(scene, nodes, operating_point)
    _register_layout(scene)
    return nodes


def set_operating_point(ctx, nodes: MammoExamNodes, operating_point: str) -> int:
    """Show exactly the marks displayed at ``operating_point``; return how many are visible."""
    from .analysis import Finding
    from .export import check_operating_point, is_displayed

    scene = ctx.scene if hasattr(ctx, "scene") else ctx
    check_operating_point(operating_point)
    visible = 0
    for markups_id in nodes.markups_ids:
        marks = scene.GetNodeByID(markups_id)
        records = json.loads(marks.GetAttribute(SCORES_ATTRIBUTE) or "[]")
        for index, record in enumerate(records):
            finding = Finding(
                type=record["type"],
                center_px=tuple(record["center_px"]),
                bbox_px=(0, 0, 0, 0),
                score=record["score"],
                n_calcifications=None,
            )
            shown = is_displayed(finding, operating_point)
            marks.SetNthControlPointVisibility(index, shown)
            visible += int(shown)
    nodes.operating_point = operating_point
    return visible


def stored_pixel_of_control_point(
    scene, nodes: MammoExamNodes, image_index: int, point_index: int
) -> tuple[float, float]:
    """(row, col) in the stored matrix of a control point (the inverse of the hanging geometry)."""
    import vtk

    volume = scene.GetNodeByID(nodes.volume_ids[image_index])
    marks = scene.GetNodeByID(nodes.markups_ids[image_index])
    ras = [0.0, 0.0, 0.0]
    marks.GetNthControlPointPosition(point_index, ras)
    ras_to_ijk = vtk.vtkMatrix4x4()
    volume.GetRASToIJKMatrix(ras_to_ijk)
    i, j, _k, _ = ras_to_ijk.MultiplyPoint([*ras, 1.0])
    return j, i


def set_density_overlay(ctx, nodes: MammoExamNodes, visible: bool, opacity: float = 0.3) -> None:
    """Show or hide the density labelmaps in the hanging views."""
    scene = ctx.scene if hasattr(ctx, "scene") else ctx
    label_ids = set(nodes.labelmap_ids)
    for composite in _nodes(scene, "vtkMRMLSliceCompositeNode"):
        if composite.GetLabelVolumeID() in label_ids:
            composite.SetLabelOpacity(opacity if visible else 0.0)
    for label_id in label_ids:
        display = scene.GetNodeByID(label_id).GetDisplayNode()
        if display is not None:
            display.SetVisibility(bool(visible))


def show_only_image(ctx, nodes: MammoExamNodes, image_index: int) -> None:
    """Single-view display (web workstation): only this image's marks, its labelmap in the other views."""
    scene = ctx.scene if hasattr(ctx, "scene") else ctx
    for n, markups_id in enumerate(nodes.markups_ids):
        display = scene.GetNodeByID(markups_id).GetDisplayNode()
        display.SetVisibility(n == image_index)
        if n == image_index:
            display.RemoveAllViewNodeIDs()  # shown in whichever slice view displays the image
    label_id = nodes.labelmap_ids[image_index]
    for composite in _nodes(scene, "vtkMRMLSliceCompositeNode"):
        if not (composite.GetLayoutName() or "").startswith("Mammo"):
            composite.SetLabelVolumeID(label_id)
            composite.SetLabelOpacity(0.3)
