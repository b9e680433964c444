"""MRML layer details: hanging geometry of flipped images, labels, layout, operating-point visibility."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest

from MammoCADLib import export, mgio
from MammoCADLib import mrml as layer  # the fixture `mrml` is the MRML context
from MammoCADLib.analysis import Finding, ImageAnalysis
from MammoCADLib.operating_points import OPERATING_POINTS

SHAPE = (200, 160)


def _analysis(findings, *, view="CC"):
    breast = np.zeros(SHAPE, bool)
    breast[20:180, :120] = True
    dense = np.zeros(SHAPE, bool)
    dense[60:100, 10:50] = True
    pectoral = None
    if view == "MLO":
        pectoral = np.zeros(SHAPE, bool)
        pectoral[20:40, :20] = True
    return ImageAnalysis(
        breast_mask=breast,
        pectoral_mask=pectoral,
        pectoral_line=None,
        dense_mask=dense,
        breast_area_fraction=float(breast.mean()),
        breast_area_cm2=None,
        percent_density=100.0 * dense.sum() / breast.sum(),
        density_category="a",
        findings=findings,
        pixel_spacing_mm=0.1,
        backend="numpy",
        warnings=[],
    )


def _item(tmp_path, name, laterality, view, findings, orientation=None):
    image = np.zeros(SHAPE, np.float32)
    image[20:180, :120] = 0.6
    if orientation and orientation.startswith("P") and laterality == "L":
        image = image[:, ::-1].copy()
    path = mgio.write_mg(tmp_path / f"{name}.dcm", image, 0.1, laterality, view, patient_orientation=orientation)
    return export.ExamImage(mgio.read_mammogram(path), _analysis(findings, view=view))


def _thresholds(kind):
    return {name: OPERATING_POINTS[name][kind] for name in OPERATING_POINTS}


def test_ijk_to_ras_hangs_by_geometry():
    """Axial slice views show RAS −x to the screen's right: column i runs to the right unless flipped."""
    m = mgio.Mammogram(
        np.zeros(SHAPE, np.float32),
        "x",
        None,
        "L",
        "ImageLaterality",
        "CC",
        "x",
        0.1,
        "x",
        "FOR PRESENTATION",
        "MONOCHROME2",
    )
    matrix = layer.ijk_to_ras(m, 20.0)
    assert matrix[0, 0] == pytest.approx(-0.1) and matrix[1, 1] == pytest.approx(-0.1)
    assert matrix[2, 3] == 20.0
    centre = matrix @ [(SHAPE[1] - 1) / 2, (SHAPE[0] - 1) / 2, 0, 1]
    assert centre[:2] == pytest.approx([0.0, 0.0])
    m.pixel_spacing_mm = None  # display-only unit spacing, never reported as mm
    assert layer.ijk_to_ras(m, 0.0)[1, 1] == -1.0


def test_mirrored_left_image_is_flipped_and_marks_stay_on_their_pixels(mrml, tmp_path):
    scene = mrml.scene
    calc_threshold = OPERATING_POINTS["balanced"]["calcification_cluster"]
    findings = [Finding("calcification_cluster", (50, 30), (45, 25, 55, 35), calc_threshold + 1.0, 4)]
    item = _item(tmp_path, "lccm", "L", "CC", findings, orientation="P\\R")
    assert mgio.hanging_flipped(item.mammogram)
    nodes = layer.load_exam(mrml, [item])
    matrix = layer.ijk_to_ras(item.mammogram, 0.0)
    assert matrix[0, 0] > 0  # stored column 0 (the chest wall here) goes to screen left (RAS +x)
    row, col = layer.stored_pixel_of_control_point(scene, nodes, 0, 0)
    assert (row, col) == pytest.approx((50, 30))
    marks = scene.GetNodeByID(nodes.markups_ids[0])
    assert marks.GetNthControlPointLabel(0) == f"calc {calc_threshold + 1.0:.1f}"
    assert marks.GetNthControlPointDescription(0) == "calcification_cluster"


def test_visibility_follows_thresholds(mrml, tmp_path):
    t = _thresholds("mass")
    scores = sorted(t.values())
    findings = [Finding("mass", (60 + 10 * k, 60), (50, 50, 70, 70), s, None) for k, s in enumerate(scores)]
    findings.append(Finding("mass", (150, 60), (140, 50, 160, 70), scores[0] - 1e-3, None))  # below every point
    nodes = layer.load_exam(mrml, [_item(tmp_path, "rcc", "R", "CC", findings)], "balanced")
    marks = mrml.scene.GetNodeByID(nodes.markups_ids[0])
    for name in OPERATING_POINTS:
        visible = layer.set_operating_point(mrml, nodes, name)
        shown = [bool(marks.GetNthControlPointVisibility(k)) for k in range(len(findings))]
        assert shown == [f.score >= t[name] for f in findings]
        assert visible == sum(shown)
    assert nodes.operating_point == list(OPERATING_POINTS)[-1]


def test_density_labels_and_layout(mrml, tmp_path):
    item = _item(tmp_path, "rmlo", "R", "MLO", [])
    nodes = layer.load_exam(mrml, [item])
    labels = layer.density_labelmap(item.analysis)
    a = item.analysis
    assert int((labels == 2).sum()) == int(a.dense_mask.sum())
    assert int((labels == 3).sum()) == int(a.pectoral_mask.sum())
    assert int((labels > 0).sum()) == int(a.breast_mask.sum())
    assert nodes.slot_of_image == ["RMLO"]
    root = ET.fromstring(layer.LAYOUT_XML)
    tags = [v.get("singletontag") for v in root.iter("view")]
    assert tags == ["MammoRCC", "MammoLCC", "MammoRMLO", "MammoLMLO"]
    color = mrml.scene.GetNodeByID(nodes.color_node_id)
    assert color.GetColorName(2) == "dense tissue"


def test_unknown_operating_point_is_an_input_error(mrml, tmp_path):
    from quantgpu.errors import InputError

    with pytest.raises(InputError, match="unknown operating point"):
        layer.load_exam(mrml, [_item(tmp_path, "lcc", "L", "CC", [])], "maximum")
