"""PDF report of a calcium score: table per artery and total, category, CAC-DRS, parameters,
calibration, key axial images with the lesions coloured and, when it can be made, a 3D rendering.

Scores are shown with one decimal (calcium.md 2.3: a 10.4 must not read "10" next to
the label "11-100"); categories were computed on the unrounded values. Reporting
checklist items (Obisesan 2021) shown: vessels with calcium, LM calcium, CAC > 1000.
"""

from __future__ import annotations

import datetime
import io
import logging
from pathlib import Path

import numpy as np

from quantgpu import __version__
from quantgpu.output import write_with

from .agatston import ARTERIES, SEGMENT_COLOURS, SEGMENT_NAMES, ArteryScore, CalciumResult

log = logging.getLogger("quantgpu.calcium")

WINDOW_LEVEL_HU, WINDOW_WIDTH_HU = 40.0, 600.0  # mediastinal window; calcium shows white under its colour
KEY_IMAGES = 3
DISCLAIMER = "Research software. Check the lesion outlines and the artery assignment before clinical use."


def key_slices(lesion_labels: np.ndarray, count: int = KEY_IMAGES) -> list[int]:
    """Up to ``count`` slice indices holding the most counted calcium, in slice order."""
    per_slice = np.count_nonzero(lesion_labels.reshape(lesion_labels.shape[0], -1), axis=1)
    ranked = [int(k) for k in np.argsort(-per_slice, kind="stable") if per_slice[k] > 0][:count]
    return sorted(ranked)


def axial_image_png(hu_slice: np.ndarray, labels_slice: np.ndarray, title: str) -> bytes:
    """One axial slice in a mediastinal window with counted lesions coloured by territory."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.colors import ListedColormap
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    fig = Figure(figsize=(4.2, 4.2), dpi=110)
    ax = fig.add_axes((0, 0, 1, 0.93))
    lo, hi = WINDOW_LEVEL_HU - WINDOW_WIDTH_HU / 2, WINDOW_LEVEL_HU + WINDOW_WIDTH_HU / 2
    ax.imshow(hu_slice, cmap="gray", vmin=lo, vmax=hi, interpolation="nearest")
    colours = [(0, 0, 0, 0)] + [(*SEGMENT_COLOURS[name], 1.0) for name in SEGMENT_NAMES]
    overlay = np.ma.masked_equal(labels_slice.astype(int), 0)
    ax.imshow(overlay, cmap=ListedColormap(colours), vmin=0, vmax=len(SEGMENT_NAMES), interpolation="nearest")
    present = sorted(set(np.unique(labels_slice).tolist()) - {0})
    if present:
        handles = [Patch(color=SEGMENT_COLOURS[SEGMENT_NAMES[v - 1]], label=SEGMENT_NAMES[v - 1]) for v in present]
        ax.legend(handles=handles, loc="lower right", fontsize=7, framealpha=0.8)
    ax.set_axis_off()
    fig.suptitle(title, fontsize=9)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", facecolor="white")
    return buf.getvalue()


def render_3d_png(volume, result: CalciumResult, path: Path) -> Path | None:
    """Volume rendering of the CT with the calcium segments as surfaces (slicer-core, off screen).

    Best effort: returns None (and logs why) when no OpenGL context can be made here.
    """
    try:
        from quantgpu.mrml import segmentation_node_from_labels, volume_node_from_volume
        from quantgpu.render import render_volume_png
        from quantgpu.slicer_env import headless_context

        ctx = headless_context()
        node = volume_node_from_volume(ctx, volume, name="Calcium CT")
        segments = [
            (value, name, SEGMENT_COLOURS[name])
            for value, name in enumerate(SEGMENT_NAMES, start=1)
            if np.any(result.lesion_labels == value)
        ]
        seg = (
            segmentation_node_from_labels(ctx, result.lesion_labels, node, segments, name="Calcium")
            if segments
            else None
        )
        return render_volume_png(ctx, node, path, size=(480, 480), segmentation_node=seg, force=True)
    except Exception as exc:  # rendering is an illustration; the report is complete without it
        log.warning("3D rendering skipped: %s: %s", type(exc).__name__, exc)
        return None


def _fmt(value: float | None, digits: int = 1, unit: str = "") -> str:
    if value is None:
        return "n/a"
    return f"{value:.{digits}f}{(' ' + unit) if unit else ''}"


def _rows(result: CalciumResult) -> list[tuple[str, ArteryScore]]:
    rows = []
    if result.per_artery is not None:
        rows += [(name, result.per_artery[name]) for name in ARTERIES]
        rows.append(("Unassigned", result.unassigned))
    rows.append(("Total", ArteryScore(result.agatston, result.volume_mm3, result.mass_mg, result.lesion_count)))
    return rows


def _identity_lines(headers) -> list[str]:
    """Patient and study lines from the first source header (the report is for people, not a log)."""
    if not headers:
        return []
    ds = getattr(headers[0], "ds", headers[0])
    fields = [
        ("Patient", "PatientName"),
        ("Patient ID", "PatientID"),
        ("Study date", "StudyDate"),
        ("Series", "SeriesDescription"),
    ]
    return [f"{label}: {ds.get(key)}" for label, key in fields if ds.get(key) not in (None, "")]


def write_pdf(
    result: CalciumResult,
    path: str | Path,
    *,
    hu: np.ndarray,
    source: str = "",
    headers=None,
    rendering_png: Path | None = None,
    force: bool = False,
) -> Path:
    """Write the PDF report atomically (no overwrite without ``force``)."""
    from fpdf import FPDF

    pdf = FPDF(format="A4", unit="mm")
    pdf.set_auto_page_break(True, margin=15)
    pdf.set_title("Coronary artery calcium score")
    pdf.set_creator(f"QuantGPU {__version__}")
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(0, 9, "Coronary artery calcium score", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 9)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    pdf.multi_cell(
        0,
        4.5,
        f"QuantGPU {__version__} CalciumScoring, {stamp}. Input: {source or 'array'}",
        new_x="LMARGIN",
        new_y="NEXT",
    )
    for line in _identity_lines(headers):
        pdf.cell(0, 4.5, line, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)

    pdf.set_font("Helvetica", "B", 12)
    pdf.cell(
        0,
        7,
        f"Agatston score {_fmt(result.agatston)}   category {result.category}   CAC-DRS {result.cac_drs}",
        new_x="LMARGIN",
        new_y="NEXT",
    )
    pdf.set_font("Helvetica", "", 10)
    mass_text = _fmt(result.mass_mg, 1, "mg") if result.mass_mg is not None else "not reported (no calibration)"
    pdf.cell(
        0,
        6,
        f"Volume {_fmt(result.volume_mm3, 1, 'mm³')}   mass {mass_text}   lesions {result.lesion_count}",
        new_x="LMARGIN",
        new_y="NEXT",
    )
    pdf.ln(2)

    widths = (36, 22, 30, 34, 30)
    pdf.set_font("Helvetica", "B", 10)
    for w, head in zip(widths, ("Territory", "Lesions", "Agatston", "Volume (mm³)", "Mass (mg)")):
        pdf.cell(w, 7, head, border=1, align="C")
    pdf.ln()
    pdf.set_font("Helvetica", "", 10)
    for name, s in _rows(result):
        pdf.set_font("Helvetica", "B" if name == "Total" else "", 10)
        cells = (name, str(s.lesion_count), _fmt(s.agatston), _fmt(s.volume_mm3), _fmt(s.mass_mg))
        for w, text in zip(widths, cells):
            pdf.cell(w, 6.5, text, border=1, align="L" if w == widths[0] else "R")
        pdf.ln()
    pdf.ln(2)

    pdf.set_font("Helvetica", "", 9)
    for line in _checklist(result) + _parameter_lines(result):
        pdf.multi_cell(0, 4.5, line, new_x="LMARGIN", new_y="NEXT")

    images = [
        (k, axial_image_png(hu[k], result.lesion_labels[k], f"Slice {k + 1} of {hu.shape[0]}"))
        for k in key_slices(result.lesion_labels)
    ]
    if images or rendering_png:
        pdf.add_page()
        pdf.set_font("Helvetica", "B", 12)
        pdf.cell(0, 7, "Key images", new_x="LMARGIN", new_y="NEXT")
        x, y = pdf.l_margin, pdf.get_y() + 1
        for n, (_k, png) in enumerate(images):
            pdf.image(io.BytesIO(png), x=x + (n % 2) * 92, y=y + (n // 2) * 92, w=88)
        slot = len(images)
        if rendering_png:
            pdf.image(str(rendering_png), x=x + (slot % 2) * 92, y=y + (slot // 2) * 92, w=88)
        elif images:
            pdf.set_xy(x + (slot % 2) * 92, y + (slot // 2) * 92 + 40)
            pdf.cell(88, 6, "3D rendering not available on this machine", align="C")
    pdf.set_y(-22)
    pdf.set_font("Helvetica", "I", 8)
    pdf.multi_cell(0, 4, DISCLAIMER)
    return write_with(Path(path), lambda tmp: pdf.output(str(tmp)), force=force)


def _checklist(result: CalciumResult) -> list[str]:
    lines = []
    if result.per_artery is not None:
        vessels = [name for name in ARTERIES if result.per_artery[name].agatston > 0]
        lines.append(f"Vessels with calcium: {len(vessels)} ({', '.join(vessels) or 'none'})")
        lm = result.per_artery["LM"].agatston
        lines.append(f"Left main calcium: {'yes, Agatston ' + _fmt(lm) if lm > 0 else 'no'}")
        if result.unassigned is not None and result.unassigned.agatston > 0:
            lines.append(
                f"Calcium not assigned to an artery: Agatston {_fmt(result.unassigned.agatston)} "
                "(counted in the total only)"
            )
    else:
        lines.append("No artery labels: per-artery scores and the CAC-DRS vessel count are not available")
    if result.agatston > 1000:
        lines.append("FLAG: CAC > 1000")
    if result.mesa is not None:
        m = result.mesa
        lines.append(f"MESA 10-year CHD risk with CAC (McClelland 2015): {m['risk_percent']:.1f} % (not clamped)")
        lines += [f"  note: {w}" for w in m.get("warnings", [])]
    return lines


def _parameter_lines(result: CalciumResult) -> list[str]:
    p = result.parameters
    min_area = "none" if p.get("min_area_mm2") is None else f">= {p['min_area_mm2']:g} mm²"
    min_px = "" if p.get("min_pixels") is None else f", >= {p['min_pixels']} pixels"
    c = p.get("mass_calibration_mg_per_cm3_per_hu")
    calibration = (
        f"c_HA = {c:.4g} mg HA/cm³ per HU ({p.get('calibration_source') or 'source not given'})"
        if c is not None
        else "none (mass not reported)"
    )
    return [
        f"Profile: {p['profile']}; threshold >= {p['threshold_hu']:g} HU; minimum lesion area {min_area}{min_px}; "
        f"{p['connectivity']}-connected 2-D lesions per slice; weight from the per-slice peak "
        f"(bands from {', '.join(f'{b:g}' for b in p['weight_band_lower_edges_hu'])} HU); kVp {p['kvp']:g}.",
        f"Slice increment {result.slice_increment_mm:g} mm (from slice positions); Agatston x increment / 3 mm.",
        f"Mass calibration: {calibration}. Compute backend: {result.backend}.",
    ]
