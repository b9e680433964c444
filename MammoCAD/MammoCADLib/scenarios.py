"""Scenarios shared by pytest (headless MRML context) and MammoCADTest.runTest (desktop Slicer).

Each scenario takes an MRML context and a scratch directory, builds what it needs from a generated
four-view phantom exam written as DICOM MG, and raises AssertionError on failure.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

EXAM_SHAPE = (1024, 832)  # rows, cols: small enough for a quick test, room for one lesion of each type
_EXAMS: dict[tuple, list] = {}


def analysed_exam(workdir: Path, seed: int = 5) -> list:
    """The phantom exam, written as DICOM MG and analysed (cached per seed: the analysis is read-only)."""
    from . import export
    from .mgio import write_phantom_exam

    key = (seed, EXAM_SHAPE)
    if key not in _EXAMS:
        paths = write_phantom_exam(Path(workdir) / f"exam_{seed}", shape=EXAM_SHAPE, seed=seed, force=True)
        _EXAMS[key] = export.analyze_exam(paths, backend="cpu")
    return _EXAMS[key]


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(message)


def four_view_hanging(ctx, workdir: Path) -> None:
    """RCC LCC / RMLO LMLO slots; chest walls back to back; marks map back to stored pixels."""
    from . import mrml

    items = analysed_exam(workdir)
    nodes = mrml.load_exam(ctx, items, "balanced")
    scene = ctx.scene
    _check(sorted(s for s in nodes.slot_of_image if s) == sorted(mrml.SLOT_NAMES), f"slots {nodes.slot_of_image}")
    for n, item in enumerate(items):
        m = item.mammogram
        slot = nodes.slot_of_image[n]
        _check(slot == f"{m.laterality}{m.view}", f"image {n} ({m.laterality}{m.view}) hung in {slot}")
        volume = scene.GetNodeByID(nodes.volume_ids[n])
        _check(volume.GetImageData().GetDimensions() == (m.image.shape[1], m.image.shape[0], 1), "volume dims")
        # Radiological hanging: in an axial slice view screen-right is RAS -x. A right breast's chest
        # wall must be at the screen's right edge, a left breast's at its left edge.
        ijk_to_ras = mrml.ijk_to_ras(m, 0.0)
        chest_col = 0 if m.chest_wall_side == "left" else m.image.shape[1] - 1
        nipple_col = m.image.shape[1] - 1 - chest_col
        chest_x = (ijk_to_ras @ [chest_col, 0, 0, 1])[0]
        nipple_x = (ijk_to_ras @ [nipple_col, 0, 0, 1])[0]
        if m.laterality == "R":
            _check(chest_x < nipple_x, f"{slot}: chest wall not at the screen's right")
        else:
            _check(chest_x > nipple_x, f"{slot}: chest wall not at the screen's left")
        marks = scene.GetNodeByID(nodes.markups_ids[n])
        findings = item.analysis.findings
        _check(marks.GetNumberOfControlPoints() == len(findings), f"{slot}: one control point per candidate")
        for k, f in enumerate(findings):
            row, col = mrml.stored_pixel_of_control_point(scene, nodes, n, k)
            _check(abs(row - f.center_px[0]) < 1e-3 and abs(col - f.center_px[1]) < 1e-3, f"{slot}: mark {k} position")
            label = marks.GetNthControlPointLabel(k)
            _check(label.endswith(f"{f.score:.1f}"), f"{slot}: mark {k} label {label!r} lacks its score")
        slice_node = scene.GetNodeByID(nodes.slice_node_ids[slot])
        _check(slice_node.GetLayoutName() == f"Mammo{slot}", "slice view name")
    _check("MammoRCC" in mrml.LAYOUT_XML and "MammoLMLO" in mrml.LAYOUT_XML, "layout XML names the four views")


def operating_point_switch(ctx, workdir: Path) -> None:
    """Visible marks equal the displayed findings at each operating point; stricter points show fewer."""
    from . import export, mrml

    items = analysed_exam(workdir)
    nodes = mrml.load_exam(ctx, items, "balanced")
    counts = {}
    for name in ("high-sensitivity", "balanced", "high-specificity"):
        visible = mrml.set_operating_point(ctx, nodes, name)
        expected = [[export.is_displayed(f, name) for f in item.analysis.findings] for item in items]
        for n, markups_id in enumerate(nodes.markups_ids):
            marks = ctx.scene.GetNodeByID(markups_id)
            shown = [bool(marks.GetNthControlPointVisibility(k)) for k in range(marks.GetNumberOfControlPoints())]
            _check(shown == expected[n], f"{name}: image {n} visibility {shown} != {expected[n]}")
        _check(visible == sum(map(sum, expected)), f"{name}: visible count")
        counts[name] = visible
    _check(counts["high-sensitivity"] >= counts["balanced"] >= counts["high-specificity"], f"marks per point {counts}")
    try:
        mrml.set_operating_point(ctx, nodes, "everything")
    except Exception as exc:
        _check("unknown operating point" in str(exc), f"unexpected error {exc}")
    else:
        raise AssertionError("an unknown operating point was accepted")


def density_overlay(ctx, workdir: Path) -> None:
    """The labelmap holds the breast / dense / pectoral masks of the analysis; the overlay toggles."""
    import slicer.util

    from . import mrml

    items = analysed_exam(workdir)
    nodes = mrml.load_exam(ctx, items, "balanced")
    for n, item in enumerate(items):
        a = item.analysis
        labels = slicer.util.arrayFromVolume(ctx.scene.GetNodeByID(nodes.labelmap_ids[n]))[0]
        _check(int((labels == 2).sum()) == int(np.count_nonzero(a.dense_mask)), "dense pixels")
        _check(int((labels > 0).sum()) == int(np.count_nonzero(a.breast_mask)), "breast pixels")
        pectoral = 0 if a.pectoral_mask is None else int(np.count_nonzero(a.pectoral_mask & ~a.dense_mask))
        _check(int((labels == 3).sum()) >= pectoral, "pectoral pixels")
        _check(
            (item.mammogram.view == "CC") == (a.pectoral_mask is None or not a.pectoral_mask.any()),
            "pectoral on MLO only",
        )
    mrml.set_density_overlay(ctx, nodes, False)
    for label_id in nodes.labelmap_ids:
        _check(not ctx.scene.GetNodeByID(label_id).GetDisplayNode().GetVisibility(), "overlay hidden")
    mrml.set_density_overlay(ctx, nodes, True)
    for label_id in nodes.labelmap_ids:
        _check(bool(ctx.scene.GetNodeByID(label_id).GetDisplayNode().GetVisibility()), "overlay shown")


def inputs_unchanged(ctx, workdir: Path) -> None:
    """The MRML layer never modifies the analysis it is given."""
    from . import mrml

    items = analysed_exam(workdir)
    before = [(i.mammogram.image.copy(), [f.center_px for f in i.analysis.findings]) for i in items]
    nodes = mrml.load_exam(ctx, items, "high-sensitivity")
    mrml.set_operating_point(ctx, nodes, "high-specificity")
    for (image, centres), item in zip(before, items):
        _check(np.array_equal(image, item.mammogram.image), "image changed")
        _check(centres == [f.center_px for f in item.analysis.findings], "findings changed")


ALL = (four_view_hanging, operating_point_switch, density_overlay, inputs_unchanged)
