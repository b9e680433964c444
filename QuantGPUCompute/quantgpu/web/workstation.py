"""The browser workstation's state that the module panels work with.

``Workstation`` owns one headless Slicer application (scene, logics, views
streamed to the browser by trame-slicer's remote controlled areas) and exposes
to the module panels (``<M>Lib/web_panel.build(ws)``): ``server``, ``state``,
``ctrl``, ``mrml`` (``quantgpu.slicer_env.MRMLContext``), ``backend`` ("cpu" or
"gpu", ready for ``quantgpu.backend.resolve``), ``output_dir``,
``show_volume(node, volume_rendering=True)`` and ``notify(text)``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ..render import configure_offscreen_opengl, preset_names, show_volume_rendering

log = logging.getLogger(__name__)

DEFAULT_LAYOUT = "Quad View"  # axial, sagittal, coronal and 3D


class Workstation:
    def __init__(self, server, backend: str, output_dir: Path):
        configure_offscreen_opengl()  # before the first view's render window
        from trame_slicer.core import LayoutManager
        from trame_slicer.rca_view import register_rca_factories

        from ..slicer_env import headless_context

        self.server = server
        self.backend = backend
        self.output_dir = Path(output_dir)
        self.mrml = headless_context()
        self.slicer_app = self.mrml.app
        register_rca_factories(
            self.slicer_app.view_manager, server, slice_view_ui_f=_slice_view_ui, three_d_view_ui_f=_threed_view_ui
        )
        self.layout_manager = LayoutManager(self.mrml.scene, self.slicer_app.view_manager, server)
        self.layout_manager.register_layout_dict(LayoutManager.default_grid_configuration())
        self.layout_manager.set_layout(DEFAULT_LAYOUT)
        self.volume_node: Any = None
        self.panels: list = []  # the module panels shown in the drawer (set when the page is built)
        self.page: Any = None

        state = self.state
        state.qg_layouts = self.layout_manager.get_layout_ids()
        state.qg_layout = DEFAULT_LAYOUT
        state.qg_vr_presets = preset_names(self.mrml)
        state.qg_vr_preset = None
        state.qg_volume_name = ""
        state.qg_volume_summary = "No volume loaded"
        state.qg_notify_text = ""
        state.qg_notify_visible = False
        state.qg_backend = backend
        state.qg_output_dir = str(self.output_dir)
        state.change("qg_layout")(self._on_layout)
        state.change("qg_vr_preset")(self._on_vr_preset)

    @property
    def state(self):
        return self.server.state

    @property
    def ctrl(self):
        return self.server.controller

    def show_volume(self, node, volume_rendering: bool = True) -> None:
        """Show ``node`` in the slice views and, unless told not to, volume-rendered in the 3D view."""
        if node.GetDisplayNode() is None:
            node.CreateDefaultDisplayNodes()  # window/level from the data (auto)
        display = self.slicer_app.display_manager
        display.show_volume_in_slice_background(node)
        display.show_volume_in_slice_foreground(None)
        if volume_rendering:
            vr = show_volume_rendering(self.mrml, node)
            self.state.qg_vr_preset = vr.GetVolumePropertyNode().GetName() or None
        display.reset_views()
        self.volume_node = node
        self.state.qg_volume_name = node.GetName()
        self.state.qg_volume_summary = _summary(node)
        self.state.flush()

    def notify(self, text: str) -> None:
        """Show ``text`` to the user (a snackbar) and log it."""
        log.info("%s", text)
        self.state.qg_notify_text = str(text)
        self.state.qg_notify_visible = True
        self.state.flush()

    def load_sample(self, name: str) -> Any:
        """Load a sample by name (``quantgpu.samples``), show it and return its volume node."""
        from ..mrml import volume_node_from_volume
        from ..samples import load_sample

        volume = load_sample(name)
        node = volume_node_from_volume(self.mrml.scene, volume, name)
        self.show_volume(node, volume_rendering=volume.array.shape[0] > 1)
        return node

    def _on_layout(self, qg_layout, **_):
        if qg_layout in self.layout_manager.get_layout_ids():
            self.layout_manager.set_layout(qg_layout)

    def _on_vr_preset(self, qg_vr_preset, **_):
        if qg_vr_preset:
            self.set_vr_preset(qg_vr_preset)

    def set_vr_preset(self, preset: str) -> None:
        """Volume-render the shown volume with ``preset`` (one of the logic's preset names)."""
        if self.volume_node is None:
            return
        display = self.mrml.volume_rendering_logic.GetFirstVolumeRenderingDisplayNode(self.volume_node)
        if display is None or display.GetVolumePropertyNode().GetName() != preset:
            show_volume_rendering(self.mrml, self.volume_node, preset=preset)
        self.state.qg_vr_preset = preset

    def reset_views(self) -> None:
        self.slicer_app.display_manager.reset_views()


# trame-slicer's view singleton tags (Slicer's red/yellow/green slice views) and what they show.
VIEW_NAMES = {"Red": "Axial", "Yellow": "Sagittal", "Green": "Coronal", "ThreeD": "3D"}


def _view_label(view) -> None:
    """The view's name in its top right corner; its DOM id lets tests find the view."""
    from trame.widgets import html

    name = VIEW_NAMES.get(view.get_singleton_tag(), view.get_singleton_tag())
    html.Div(
        name,
        id=f"qg-view-{name.lower()}",
        classes="qg-view-label text-caption",
        style="position: absolute; top: 4px; right: 10px; color: #ddd; pointer-events: none;",
    )


def _slice_view_ui(server, view_id, view) -> None:
    from trame_slicer.app.ui import create_vertical_slice_view_gutter_ui

    create_vertical_slice_view_gutter_ui(server, view_id, view)
    _view_label(view)


def _threed_view_ui(server, view_id, view) -> None:
    from trame_slicer.app.ui import create_vertical_view_gutter_ui

    create_vertical_view_gutter_ui(server, view_id, view)
    _view_label(view)


def _summary(node) -> str:
    image = node.GetImageData()
    dims = image.GetDimensions() if image is not None else (0, 0, 0)
    spacing = node.GetSpacing()
    low, high = image.GetScalarRange() if image is not None else (0.0, 0.0)
    return (
        f"{dims[0]}×{dims[1]}×{dims[2]} voxels, "
        f"{spacing[0]:.2g}×{spacing[1]:.2g}×{spacing[2]:.2g} mm, values {low:.0f} to {high:.0f}"
    )
