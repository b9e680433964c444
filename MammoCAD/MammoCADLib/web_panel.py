"""MammoCAD panel of the browser workstation (trame vuetify3 widgets in the side drawer).

The panel runs the same exam driver as the CLI (``export.analyze_exam``), hangs the exam with the
MRML layer (``mrml.load_exam``), shows one view at a time in the workstation's slice view with its
marks and density overlay, and switches the operating point live. State keys start with ``mammo_``.
"""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger("quantgpu.mammo.web")

TITLE = "MammoCAD (mammography CAD)"


class MammoPanel:
    """Panel logic without widgets (the callbacks are plain methods, testable with a fake state)."""

    def __init__(self, ws):
        self.ws = ws
        self.items = None
        self.nodes = None
        s = ws.state
        s.mammo_input = ""
        s.mammo_operating_points = ["high-sensitivity", "balanced", "high-specificity"]
        s.mammo_operating_point = "balanced"
        s.mammo_pixel_spacing = ""
        s.mammo_views = []
        s.mammo_view = None
        s.mammo_density_overlay = True
        s.mammo_summary = ""
        s.mammo_findings = []
        s.mammo_busy = False

    def run_demo(self) -> None:
        """Generate the phantom exam (DICOM MG) in the output folder and analyse it."""
        from .mgio import write_phantom_exam

        target = Path(self.ws.output_dir) / "mammo" / "phantom_exam"
        if not any(target.glob("*.dcm")):
            write_phantom_exam(target, shape=(1536, 1248), seed=0)
        self.ws.state.mammo_input = str(target)
        self.run()

    def run(self) -> None:
        from quantgpu.errors import InputError

        from . import export, mrml

        s = self.ws.state
        s.mammo_busy = True
        try:
            spacing = float(s.mammo_pixel_spacing) if str(s.mammo_pixel_spacing).strip() else None
            if not str(s.mammo_input).strip():
                raise InputError("give a DICOM file or folder on the server")
            self.items = export.analyze_exam(
                [Path(str(s.mammo_input).strip())], pixel_spacing_mm=spacing, backend=self.ws.backend
            )
            self.nodes = mrml.load_exam(self.ws.mrml, self.items, s.mammo_operating_point)
            s.mammo_views = [
                f"{i.mammogram.laterality}{i.mammogram.view or '?'} ({n + 1})" for n, i in enumerate(self.items)
            ]
            s.mammo_view = s.mammo_views[0] if s.mammo_views else None
            self.show_view(s.mammo_view)
            self._update_summary()
        except (InputError, ValueError) as exc:
            self.ws.notify(f"MammoCAD: {exc}")
        finally:
            s.mammo_busy = False

    def show_view(self, label) -> None:
        from . import mrml

        if not self.items or label not in self.ws.state.mammo_views:
            return
        index = self.ws.state.mammo_views.index(label)
        mrml.show_only_image(self.ws.mrml, self.nodes, index)
        volume = self.ws.mrml.scene.GetNodeByID(self.nodes.volume_ids[index])
        self.ws.show_volume(volume, volume_rendering=False)
        mrml.set_density_overlay(self.ws.mrml, self.nodes, bool(self.ws.state.mammo_density_overlay))
        self._update_findings(index)

    def set_operating_point(self, name) -> None:
        from . import mrml

        if self.nodes is None or name not in self.ws.state.mammo_operating_points:
            return
        mrml.set_operating_point(self.ws.mrml, self.nodes, name)
        self._update_summary()
        if self.ws.state.mammo_view in self.ws.state.mammo_views:
            self._update_findings(self.ws.state.mammo_views.index(self.ws.state.mammo_view))

    def set_density_overlay(self, visible) -> None:
        from . import mrml

        if self.nodes is not None:
            mrml.set_density_overlay(self.ws.mrml, self.nodes, bool(visible))

    def _update_summary(self) -> None:
        from .export import result_json

        backend = self.items[0].analysis.backend if self.items else self.ws.backend
        self.ws.state.mammo_summary = result_json(self.items, self.ws.state.mammo_operating_point, backend)["summary"]

    def _update_findings(self, index: int) -> None:
        from .export import image_json

        entry = image_json(self.items[index], self.ws.state.mammo_operating_point)
        pd = entry["percent_density"]
        self.ws.state.mammo_findings = [
            f"PD {pd:.1f} % (category {entry['density_category']}, PD-derived, not BI-RADS)"
            if pd is not None
            else "PD n/a"
        ] + [
            f"{'●' if f['displayed'] else '○'} {f['type'].replace('_', ' ')} score {f['score']:.2f} at {f['center_px']}"
            for f in sorted(entry["findings"], key=lambda f: -f["score"])
        ]


def build(ws) -> None:
    from trame.widgets import html
    from trame.widgets import vuetify3 as v3

    panel = MammoPanel(ws)
    ws.mammo_panel = panel
    ws.state.change("mammo_operating_point")(
        lambda mammo_operating_point, **_: panel.set_operating_point(mammo_operating_point)
    )
    ws.state.change("mammo_view")(lambda mammo_view, **_: panel.show_view(mammo_view))
    ws.state.change("mammo_density_overlay")(
        lambda mammo_density_overlay, **_: panel.set_density_overlay(mammo_density_overlay)
    )

    with v3.VContainer(id="mammo-panel", classes="pa-2"):
        v3.VTextField(
            v_model=("mammo_input",),
            label="DICOM MG file or folder (on the server)",
            density="compact",
            id="mammo-input",
        )
        v3.VTextField(
            v_model=("mammo_pixel_spacing",),
            label="Pixel spacing mm (blank = header)",
            density="compact",
            id="mammo-pixel-spacing",
        )
        v3.VSelect(
            v_model=("mammo_operating_point",),
            items=("mammo_operating_points",),
            label="Operating point",
            density="compact",
            id="mammo-operating-point",
        )
        with html.Div(classes="d-flex ga-2"):
            v3.VBtn("Run CAD", click=panel.run, loading=("mammo_busy",), color="primary", id="mammo-run")
            v3.VBtn("Phantom exam", click=panel.run_demo, loading=("mammo_busy",), id="mammo-demo")
        v3.VSelect(v_model=("mammo_view",), items=("mammo_views",), label="View", density="compact", id="mammo-view")
        v3.VSwitch(v_model=("mammo_density_overlay",), label="Density overlay", density="compact", hide_details=True)
        html.Div("{{ mammo_summary }}", classes="text-body-2 my-2", id="mammo-summary")
        with v3.VList(density="compact"):
            v3.VListItem(v_for="(line, i) in mammo_findings", key="i", title=("line",))
