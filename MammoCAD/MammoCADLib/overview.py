"""PNG/PDF overview: the exam in the four-view hanging (RCC LCC / RMLO LMLO) with the CAD marks.

Marks follow the usual CAD glyphs: triangles for calcification clusters, circles for masses; only
marks displayed at the chosen operating point are drawn. Images are shown in the radiological
hanging (mgio.hanging), so mark columns are mirrored when the display flips the stored image.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from . import mgio

MAX_DISPLAY_PX = 900  # longest image side drawn (decimated): the overview is a map, not a reading image
SLOT_TITLES = ("RCC", "LCC", "RMLO", "LMLO")


def _panel_image(mammogram: mgio.Mammogram) -> tuple[np.ndarray, int]:
    image = mgio.hanging(mammogram)
    step = max(1, int(np.ceil(max(image.shape) / MAX_DISPLAY_PX)))
    return image[::step, ::step], step


def render_overview(items: Sequence, operating_point: str):
    """A matplotlib Figure of the exam (``items``: export.ExamImage)."""
    from matplotlib.figure import Figure

    from .export import is_displayed

    by_mammogram = {id(item.mammogram): item for item in items}
    slots = mgio.hanging_order([item.mammogram for item in items])
    extra = [item for item in items if not any(m is item.mammogram for m in slots)]
    n_rows = 2 + (len(extra) + 1) // 2
    fig = Figure(figsize=(8.27, 4.6 * n_rows), dpi=110)
    fig.suptitle(f"QuantGPU MammoCAD — operating point: {operating_point}", fontsize=11)
    panels = list(zip(SLOT_TITLES, slots)) + [(None, item.mammogram) for item in extra]
    for n, (title, mammogram) in enumerate(panels):
        ax = fig.add_subplot(n_rows, 2, n + 1)
        ax.set_axis_off()
        if mammogram is None:
            ax.set_title(f"{title}: not in this exam", fontsize=9, color="0.4")
            continue
        item = by_mammogram[id(mammogram)]
        image, step = _panel_image(mammogram)
        ax.imshow(image, cmap="gray", vmin=0.0, vmax=1.0, interpolation="antialiased")
        flipped = mgio.hanging_flipped(mammogram)
        cols = mammogram.image.shape[1]
        shown = 0
        for f in item.analysis.findings:
            if not is_displayed(f, operating_point):
                continue
            shown += 1
            r, c = f.center_px
            c = cols - 1 - c if flipped else c
            marker, color = ("^", "#ffcc00") if f.type == "calcification_cluster" else ("o", "#ff3030")
            ax.plot(
                c / step,
                r / step,
                marker=marker,
                markersize=12,
                markerfacecolor="none",
                markeredgecolor=color,
                markeredgewidth=1.8,
            )
            ax.annotate(
                f"{f.score:.1f}",
                (c / step, r / step),
                xytext=(8, 8),
                textcoords="offset points",
                color=color,
                fontsize=7,
            )
        a = item.analysis
        density = "PD n/a" if a.percent_density is None else f"PD {a.percent_density:.0f}% ({a.density_category})"
        label = title or f"{mammogram.laterality}{mammogram.view or '?'}"
        ax.set_title(f"{label}: {density}, {shown} mark(s)", fontsize=9)
    fig.text(
        0.5,
        0.01,
        "▲ calcification cluster  ● mass  (score beside each mark). "
        "Density category is PD-derived, not a BI-RADS assessment.",
        ha="center",
        fontsize=7,
    )
    return fig


def write_overview(path: str | Path, items: Sequence, operating_point: str, force: bool = False) -> Path:
    """Write the overview as PNG or PDF (chosen by the suffix), atomically."""
    from quantgpu.output import write_with

    path = Path(path)
    if path.suffix.lower() not in (".png", ".pdf"):
        raise ValueError(f"overview must be .png or .pdf, got {path.name}")
    fig = render_overview(items, operating_point)
    return write_with(path, lambda tmp: fig.savefig(tmp, format=path.suffix[1:].lower()), force=force)
