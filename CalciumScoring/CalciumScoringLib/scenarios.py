"""End-to-end scenarios of the CalciumScoring MRML layer, shared by pytest and Slicer's self-test.

Each scenario builds digital phantom volumes as MRML nodes in ``ctx.scene``, runs the
MRML layer (``mrml.score_volume_node``) and asserts exact expected numbers taken from
calcium.md §5 (C1, C5, C6, C8, C9 and the digital QRM-like phantom), the table
contents, the segment voxel counts and that the input nodes are unchanged.
Headless: ``ctx = quantgpu.slicer_env.headless_context()``; in Slicer:
``slicer_context()``. ``run_all(ctx)`` runs every scenario and returns their numbers.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable

import numpy as np

from . import mrml
from .agatston import CalciumParameters

SPACING = (3.0, 0.5, 0.5)  # calcium.md §5 common setup: (dz, dy, dx) mm, 0 HU background


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(message)


def _close(actual, expected, what: str, tol: float = 1e-6) -> None:
    ok = actual is not None and math.isclose(actual, expected, rel_tol=tol, abs_tol=tol)
    _check(ok, f"{what}: expected {expected}, got {actual}")


def volume_node(ctx, array: np.ndarray, spacing=SPACING, name: str = "phantom", label: bool = False):
    """A scalar (or label) volume node holding ``array`` [k,j,i] with ``spacing`` (dk,dj,di) mm."""
    from quantgpu.mrml import volume_node_from_array

    return volume_node_from_array(ctx, array, spacing, name=name, labelmap=label)


def _fingerprint(node) -> tuple[str, int]:
    import slicer.util

    data = np.ascontiguousarray(slicer.util.arrayFromVolume(node))
    return hashlib.sha256(data.tobytes()).hexdigest(), node.GetImageData().GetMTime()


def _score(ctx, array, spacing=SPACING, labels=None, params=None):
    """Score a new phantom node; check the inputs are untouched; return (run, volume node)."""
    node = volume_node(ctx, array.astype(np.float32), spacing)
    labels_node = (
        volume_node(ctx, labels.astype(np.uint8), spacing, "labels", label=True) if labels is not None else None
    )
    before = _fingerprint(node), labels_node and _fingerprint(labels_node)
    run = mrml.score_volume_node(ctx, node, labels_node=labels_node, params=params, backend="auto")
    after = _fingerprint(node), labels_node and _fingerprint(labels_node)
    _check(before == after, "the input volume or labels were modified")
    return run, node


def _total_row(run) -> dict:
    rows = table_as_rows(run.table_node)
    _check(rows[-1]["Artery"] == "Total", f"last table row is {rows[-1]['Artery']!r}, not Total")
    return rows[-1]


def table_as_rows(table_node) -> list[dict]:
    """Read a results table node back into dictionaries (what a user sees)."""
    table = table_node.GetTable()
    names = [table.GetColumnName(c) for c in range(table.GetNumberOfColumns())]
    _check(tuple(names) == mrml.TABLE_COLUMNS, f"table columns {names}")
    rows = []
    for r in range(table.GetNumberOfRows()):
        row = {}
        for c, name in enumerate(names):
            value = table.GetValue(r, c)
            row[name] = value.ToString() if name == "Artery" else value.ToDouble()
        rows.append(row)
    return rows


# --- calcium.md §5 cases ------------------------------------------------------------


def scenario_c1_basic(ctx) -> dict:
    """C1: 4x4 px block at 400 HU in one slice -> Agatston 16.0, volume 12 mm3, no labels."""
    hu = np.zeros((3, 16, 16))
    hu[1, 4:8, 4:8] = 400
    run, node = _score(ctx, hu)
    total = _total_row(run)
    _close(total["Agatston"], 16.0, "C1 Agatston (table)")
    _close(total["Volume (mm3)"], 12.0, "C1 volume (table)")
    _check(math.isnan(total["Mass (mg)"]), "C1 mass must be empty without calibration")
    _check(len(table_as_rows(run.table_node)) == 1, "without labels the table has the Total row only")
    stored = mrml.stored_result(run.parameter_node)
    _close(stored["agatston"], 16.0, "C1 Agatston (parameter node)")
    _check(stored["mass_mg"] is None and stored["category"] == "11-100", f"C1 stored {stored}")
    counts = mrml.segment_voxel_counts(ctx, run.segmentation_node, node)
    _check(counts == {"LM": 0, "LAD": 0, "LCX": 0, "RCA": 0, "Unassigned": 16}, f"C1 segments {counts}")
    return {"agatston": total["Agatston"], "volume_mm3": total["Volume (mm3)"]}


def _corner_blocks(low_peak: float) -> np.ndarray:
    hu = np.zeros((1, 12, 12))
    hu[0, 2:4, 2:4] = 450  # 2x2 block, 1 mm2
    hu[0, 4:6, 4:6] = low_peak  # touches the first block at one corner only
    return hu


def scenario_c5_connectivity(ctx) -> dict:
    """C5: two 2x2 blocks touching at a corner (450, 150): 8-connected 8.0, 4-connected 5.0."""
    out = {}
    for connectivity, expected in ((8, 8.0), (4, 5.0)):
        params = mrml.parameters_from_settings(connectivity=connectivity)
        run, _ = _score(ctx, _corner_blocks(150), params=params)
        _close(_total_row(run)["Agatston"], expected, f"C5 {connectivity}-connected")
        out[f"agatston_{connectivity}"] = expected
    return out


def scenario_c6_per_slice_peak(ctx) -> dict:
    """C6: one lesion over two slices, 2 mm2 each, peaks 450 and 150 -> 10.0 (not 16.0); 12 mm3."""
    hu = np.zeros((2, 10, 10))
    hu[0, 2:4, 2:6] = 450
    hu[1, 2:4, 2:6] = 150
    run, _ = _score(ctx, hu)
    total = _total_row(run)
    _close(total["Agatston"], 10.0, "C6 Agatston")
    _close(total["Volume (mm3)"], 12.0, "C6 volume")
    _close(total["Lesions"], 1, "C6 one 3-D lesion")
    return {"agatston": total["Agatston"]}


def scenario_c8_slice_increment(ctx) -> dict:
    """C8: 3x3 mm rod (6x6 px), 6 mm long, 450 HU at dz = 3, 1.5, 1, 0.5 mm -> 72.0 and 54 mm3."""
    out = {}
    for dz in (3.0, 1.5, 1.0, 0.5):
        n = round(6.0 / dz)
        hu = np.zeros((n + 2, 12, 12))
        hu[1 : n + 1, 3:9, 3:9] = 450
        run, _ = _score(ctx, hu, spacing=(dz, 0.5, 0.5))
        total = _total_row(run)
        _close(total["Agatston"], 72.0, f"C8 Agatston at dz {dz}")
        _close(total["Volume (mm3)"], 54.0, f"C8 volume at dz {dz}")
        _close(mrml.stored_result(run.parameter_node)["slice_increment_mm"], dz, "C8 slice increment")
        out[f"agatston_dz_{dz:g}"] = total["Agatston"]
    return out


def scenario_c9_mass(ctx) -> dict:
    """C9: c = 0.2/250 mg/mm3/HU = 0.8 mg/cm3/HU; 4 mm2 x 3 slices at 400 HU -> 11.52 mg,
    from a user factor and from rod ROIs (200 mg/cm3 rod at 250 HU, water 0 HU)."""
    hu = np.zeros((5, 12, 12))
    hu[1:4, 2:6, 2:6] = 400
    out = {}
    for mode, kwargs in (("factor", {"calibration_factor": 0.8}), ("rods", {"rod_hu": 250.0, "water_hu": 0.0})):
        run, _ = _score(ctx, hu, params=mrml.parameters_from_settings(calibration_mode=mode, **kwargs))
        total = _total_row(run)
        _close(total["Mass (mg)"], 11.52, f"C9 mass ({mode})", tol=1e-9)
        _close(total["Volume (mm3)"], 36.0, "C9 volume")
        out[f"mass_mg_{mode}"] = total["Mass (mg)"]
    return out


# --- digital QRM-like phantom with artery labels --------------------------------------------


def disk(radius_px: float, size: int = 20) -> np.ndarray:
    """Disk centred on a pixel corner: pixels whose centre lies within the radius."""
    y, x = np.mgrid[-size // 2 : size // 2, -size // 2 : size // 2] + 0.5
    return x**2 + y**2 <= radius_px**2


QRM_HU = (250.0, 500.0, 1000.0)  # 200 / 400 / 800 mg/cm3 at c = 0.8 mg/cm3/HU
QRM_RADII_PX = (5, 3, 1)  # d = 5 / 3 / 1 mm at 0.5 mm pixels -> 80 / 32 / 4 px
QRM_ARTERY = {250.0: 4, 500.0: 2, 1000.0: 3}  # RCA, LAD, LCX; the 1 mm 1000 HU rod stays unassigned


def qrm_phantom() -> tuple[np.ndarray, np.ndarray, dict[tuple[float, int], tuple[int, int]]]:
    """Nine rods, 2 slices (6 mm) long, on a 0 HU background; artery labels; rod centres (j, i)."""
    hu = np.zeros((4, 80, 80), np.float32)
    labels = np.zeros(hu.shape, np.uint8)
    centres = {}
    for row, density in enumerate(QRM_HU):
        for col, radius in enumerate(QRM_RADII_PX):
            j0, i0 = 5 + 25 * row, 5 + 25 * col
            mask = disk(radius)
            hu[1:3, j0 : j0 + 20, i0 : i0 + 20][:, mask] = density
            if not (density == 1000.0 and radius == 1):
                labels[1:3, j0 : j0 + 20, i0 : i0 + 20][:, mask] = QRM_ARTERY[density]
            centres[(density, radius)] = (j0 + 10, i0 + 10)
    return hu, labels, centres


# Expected per artery from calcium.md §5 (Agatston / volume / mass per rod, c = 0.8):
# RCA = 250 HU rods: 80+32+4 = 116, 120+48+6 = 174 mm3, 24+9.6+1.2 = 34.8 mg
# LAD = 500 HU rods: 160+64+8 = 232, 174 mm3, 48+19.2+2.4 = 69.6 mg
# LCX = 1000 HU 5 and 3 mm rods: 160+64 = 224, 168 mm3, 96+38.4 = 134.4 mg; Unassigned: 8, 6 mm3, 4.8 mg
QRM_EXPECTED = {
    "LM": (0, 0.0, 0.0, 0.0),
    "LAD": (3, 232.0, 174.0, 69.6),
    "LCX": (2, 224.0, 168.0, 134.4),
    "RCA": (3, 116.0, 174.0, 34.8),
    "Unassigned": (1, 8.0, 6.0, 4.8),
    "Total": (9, 580.0, 522.0, 243.6),
}


def scenario_qrm_phantom(ctx) -> dict:
    """QRM-like phantom with labels: per-artery rows, totals 580 / 522 mm3 / 243.6 mg, A3/N3,
    segment voxel counts; strict "> 1 mm2" variant 560 / 504 mm3."""
    hu, labels, _ = qrm_phantom()
    params = mrml.parameters_from_settings(calibration_mode="factor", calibration_factor=0.8)
    run, node = _score(ctx, hu, labels=labels, params=params)
    rows = {row["Artery"]: row for row in table_as_rows(run.table_node)}
    _check(list(rows) == ["LM", "LAD", "LCX", "RCA", "Unassigned", "Total"], f"QRM rows {list(rows)}")
    for name, (lesions, agatston, volume, mass) in QRM_EXPECTED.items():
        row = rows[name]
        _close(row["Lesions"], lesions, f"QRM {name} lesions")
        _close(row["Agatston"], agatston, f"QRM {name} Agatston")
        _close(row["Volume (mm3)"], volume, f"QRM {name} volume")
        _close(row["Mass (mg)"], mass, f"QRM {name} mass", tol=1e-9)
    stored = mrml.stored_result(run.parameter_node)
    _check(stored["category"] == ">400" and stored["cac_drs"] == "A3/N3", f"QRM classes {stored['cac_drs']}")
    counts = mrml.segment_voxel_counts(ctx, run.segmentation_node, node)
    # voxels = volume / (3 x 0.5 x 0.5 mm3)
    expected_counts = {name: round(QRM_EXPECTED[name][2] / 0.75) for name in mrml.SEGMENT_NAMES}
    _check(counts == expected_counts, f"QRM segment voxels {counts} != {expected_counts}")
    segmentation = run.segmentation_node.GetSegmentation()
    for name in mrml.SEGMENT_NAMES:
        segment = segmentation.GetSegment(mrml.SEGMENT_IDS[name])
        tag = segment.GetTerminology()
        _check(f"SCT^{mrml.SITE_CODES[name][0]}^" in tag, f"{name} terminology {tag!r}")
    strict = mrml.parameters_from_settings(min_area_mm2=1.0 + 1e-4)  # "> 1 mm2" (CACSLabeler)
    run_strict, _ = _score(ctx, hu, labels=labels, params=strict)
    _close(_total_row(run_strict)["Agatston"], 560.0, "QRM Agatston under > 1 mm2")
    _close(_total_row(run_strict)["Volume (mm3)"], 504.0, "QRM volume under > 1 mm2")
    return {"agatston": rows["Total"]["Agatston"], "mass_mg": rows["Total"]["Mass (mg)"], "cac_drs": stored["cac_drs"]}


def scenario_click_to_assign(ctx) -> dict:
    """Score the QRM phantom without labels, click the 5 mm 500 HU rod as LAD, re-score, undo."""
    hu, _, centres = qrm_phantom()
    run, node = _score(ctx, hu)
    _close(_total_row(run)["Agatston"], 580.0, "unlabelled QRM Agatston")
    session = mrml.ArteryAssignmentSession(ctx, node)
    j, i = centres[(500.0, 5)]
    ras = (session.ijk_to_ras @ np.array([i, j, 1.0, 1.0]))[:3]  # slice 1, at the rod centre
    change = session.assign_at_ras(ras, "LAD")
    _check(change.voxel_count == 160, f"clicked rod has {change.voxel_count} voxels, expected 2 x 80")

    def rescore():
        params = CalciumParameters()
        rerun = mrml.score_volume_node(
            ctx,
            node,
            labels_node=session.label_node,
            params=params,
            segmentation_node=run.segmentation_node,
            table_node=run.table_node,
            parameter_node=run.parameter_node,
        )
        return {row["Artery"]: row for row in table_as_rows(rerun.table_node)}

    rows = rescore()
    _close(rows["LAD"]["Agatston"], 160.0, "assigned LAD Agatston")
    _close(rows["LAD"]["Volume (mm3)"], 120.0, "assigned LAD volume")
    _close(rows["Unassigned"]["Agatston"], 420.0, "remaining unassigned Agatston")
    session.undo()
    rows = rescore()
    _close(rows["LAD"]["Agatston"], 0.0, "LAD after undo")
    session.redo()
    rows = rescore()
    _close(rows["LAD"]["Agatston"], 160.0, "LAD after redo")
    _check(ctx.scene.GetNumberOfNodesByClass("vtkMRMLSegmentationNode") == 1, "re-scoring reuses the outputs")
    return {"lad_agatston": 160.0}


# The sample phantom (phantom.py) assigns 5 mm rods -> LAD, 3 mm -> LCX, 1 mm 250 HU -> LM,
# 1 mm 500 HU -> RCA, 1 mm 1000 HU unassigned; per rod numbers from calcium.md §5 (c = 0.8):
SAMPLE_EXPECTED = {
    "LM": (1, 4.0, 6.0, 1.2),
    "LAD": (3, 400.0, 360.0, 168.0),  # 80 + 160 + 160; 3 x 120 mm3; 24 + 48 + 96 mg
    "LCX": (3, 160.0, 144.0, 67.2),  # 32 + 64 + 64; 3 x 48 mm3; 9.6 + 19.2 + 38.4 mg
    "RCA": (1, 8.0, 6.0, 2.4),
    "Unassigned": (1, 8.0, 6.0, 4.8),
    "Total": (9, 580.0, 522.0, 243.6),
}


def scenario_sample_phantom(ctx) -> dict:
    """The Slicer/web sample phantom (thorax-like, LPS geometry) with its artery labels,
    calibrated from its rod and water ROIs: per-artery rows and A3/N4."""
    from quantgpu.mrml import volume_node_from_array

    from . import phantom

    hu, labels, truth = phantom.make_phantom()
    m = phantom.phantom_ijk_to_lps()
    node = volume_node_from_array(ctx, hu, truth["spacing"], m, name="calcium phantom")
    labels_node = volume_node_from_array(ctx, labels, truth["spacing"], m, name="phantom arteries", labelmap=True)
    before = _fingerprint(node)
    params = mrml.parameters_from_settings(calibration_mode="rods", rod_hu=250.0, water_hu=0.0)
    run = mrml.score_volume_node(ctx, node, labels_node=labels_node, params=params)
    _check(_fingerprint(node) == before, "the input volume was modified")
    rows = {row["Artery"]: row for row in table_as_rows(run.table_node)}
    for name, (lesions, agatston, volume, mass) in SAMPLE_EXPECTED.items():
        _close(rows[name]["Lesions"], lesions, f"sample {name} lesions")
        _close(rows[name]["Agatston"], agatston, f"sample {name} Agatston")
        _close(rows[name]["Volume (mm3)"], volume, f"sample {name} volume")
        _close(rows[name]["Mass (mg)"], mass, f"sample {name} mass", tol=1e-9)
    stored = mrml.stored_result(run.parameter_node)
    _check(stored["cac_drs"] == "A3/N4", f"sample CAC-DRS {stored['cac_drs']}")
    return {"agatston": rows["Total"]["Agatston"], "cac_drs": stored["cac_drs"]}


SCENARIOS: dict[str, Callable] = {
    "c1_basic": scenario_c1_basic,
    "c5_connectivity": scenario_c5_connectivity,
    "c6_per_slice_peak": scenario_c6_per_slice_peak,
    "c8_slice_increment": scenario_c8_slice_increment,
    "c9_mass": scenario_c9_mass,
    "qrm_phantom": scenario_qrm_phantom,
    "click_to_assign": scenario_click_to_assign,
    "sample_phantom": scenario_sample_phantom,
}


def run_all(ctx) -> dict[str, dict]:
    """Run every scenario in ``ctx`` (scene cleared before each); return their numbers."""
    results = {}
    for name, scenario in SCENARIOS.items():
        ctx.scene.Clear(0)
        results[name] = scenario(ctx)
    return results
