"""Page layout of the browser workstation (trame vuetify3).

App bar (title, backend), a narrow toolbar (drawer toggle, layouts, reset
views), a side drawer with the built-in Data panel and one expansion panel per
analysis module, the view grid (axial, sagittal, coronal, 3D) and a snackbar
for ``ws.notify``.
"""

from __future__ import annotations

from trame.ui.vuetify3 import VAppLayout
from trame.widgets import html
from trame.widgets import vuetify3 as v3

from ..samples import sample_names
from .panels import ModulePanel
from .workstation import Workstation

DRAWER_WIDTH = 380


def build_page(ws: Workstation, panels: list[ModulePanel]) -> VAppLayout:
    state = ws.state
    state.trame__title = "QuantGPU"
    state.qg_drawer = True
    state.qg_open_panels = ["data", *(panel.package for panel in panels)]
    state.qg_samples = sample_names()
    state.qg_sample = None

    with VAppLayout(ws.server, full_height=True) as layout:
        layout.root.theme = "dark"
        with v3.VAppBar(density="compact", elevation=0, border=True):
            v3.VAppBarNavIcon(click="qg_drawer = !qg_drawer", id="qg-drawer-toggle")
            v3.VToolbarTitle("QuantGPU workstation")
            v3.VSpacer()
            v3.VChip(
                "{{ qg_backend === 'gpu' ? 'GPU (CuPy)' : 'CPU (NumPy)' }}",
                size="small",
                prepend_icon="mdi-chip",
                classes="mr-2",
                id="qg-backend",
            )
            v3.VProgressCircular(indeterminate=("!!trame__busy",), size=18, width=2, classes="mr-4")

        with (
            v3.VNavigationDrawer(
                v_model=("qg_drawer",), permanent=True, location="left", width=DRAWER_WIDTH, id="qg-drawer"
            ),
            v3.VExpansionPanels(v_model=("qg_open_panels",), multiple=True, variant="accordion"),
        ):
            _data_panel(ws)
            for panel in panels:
                with v3.VExpansionPanel(value=panel.package, id=panel.element_id, classes="qg-module-panel"):
                    v3.VExpansionPanelTitle(panel.title)
                    with v3.VExpansionPanelText():
                        panel.module.build(ws)

        with v3.VNavigationDrawer(permanent=True, location="left", width=48, rail=True, id="qg-toolbar"):
            _toolbar(ws)

        with v3.VMain(), html.Div(classes="d-flex fill-height", style="height: calc(100vh - 48px);", id="qg-views"):
            ws.layout_manager.initialize_layout_grid(layout)

        v3.VSnackbar(
            "{{ qg_notify_text }}",
            v_model=("qg_notify_visible",),
            timeout=6000,
            location="bottom right",
            id="qg-notify",
        )
    return layout


def _toolbar(ws: Workstation) -> None:
    with html.Div(classes="d-flex flex-column align-center py-2"):
        with v3.VMenu(location="right"):
            with v3.Template(v_slot_activator="{ props }"):
                v3.VBtn(icon="mdi-view-dashboard", v_bind="props", variant="text", title="Layout", id="qg-layout-btn")
            with v3.VList(density="compact"):
                v3.VListItem(
                    v_for="name in qg_layouts",
                    key="name",
                    title=("name",),
                    active=("name === qg_layout",),
                    click="qg_layout = name",
                )
        v3.VBtn(icon="mdi-camera-flip-outline", variant="text", title="Reset views", click=ws.reset_views)


def _data_panel(ws: Workstation) -> None:
    with v3.VExpansionPanel(value="data", id="panel-data", classes="qg-module-panel"):
        v3.VExpansionPanelTitle("Data")
        with v3.VExpansionPanelText():
            html.Div("{{ qg_volume_name || 'No volume' }}", classes="text-subtitle-2", id="qg-volume-name")
            html.Div("{{ qg_volume_summary }}", classes="text-caption mb-2")
            with html.Div(classes="d-flex align-center"):
                v3.VSelect(
                    label="Sample data",
                    items=("qg_samples",),
                    v_model=("qg_sample",),
                    density="compact",
                    hide_details=True,
                )
                v3.VBtn(
                    "Load",
                    classes="ml-2",
                    disabled=("!qg_sample",),
                    click=(_load_selected_sample(ws),),
                )
            v3.VSelect(
                label="Volume rendering preset",
                items=("qg_vr_presets",),
                v_model=("qg_vr_preset",),
                disabled=("!qg_volume_name",),
                density="compact",
                hide_details=True,
                classes="mt-3",
            )
            html.Div("Results are written to {{ qg_output_dir }}", classes="text-caption mt-2")


def _load_selected_sample(ws: Workstation):
    def load():
        name = ws.state.qg_sample
        try:
            ws.load_sample(name)
        except Exception as exc:  # shown to the user; the server keeps running
            ws.notify(f"Could not load {name}: {exc}")
        else:
            ws.notify(f"Loaded {name}")

    return load
