"""A real MRML scene with Slicer's application and module logics, without Qt.

Desktop Slicer provides ``slicer.mrmlScene`` and ``slicer.modules.*``; headless
front ends (tests, CLI, web workstation) build the same objects from slicer-core
through trame-slicer's ``SlicerApp``, which also ships the share data
(terminologies, volume rendering presets) that the logics expect.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any


def slicer_core_version() -> str | None:
    try:
        from importlib.metadata import version

        return version("slicer-core")
    except Exception:
        return None


@dataclass
class MRMLContext:
    """The scene and the logics that the MRML layers use."""

    scene: Any
    app_logic: Any
    volumes_logic: Any
    segmentations_logic: Any
    volume_rendering_logic: Any
    sequences_logic: Any
    tables_logic: Any
    plots_logic: Any
    markups_logic: Any
    app: Any = None  # trame-slicer SlicerApp, when headless

    def clear(self) -> None:
        self.scene.Clear(0)
        ensure_subject_hierarchy(self.scene)


def ensure_subject_hierarchy(scene) -> None:
    """Create the scene's subject hierarchy singleton now, as the desktop application always has one.

    Without this, the first logic that looks it up creates it as a side effect.
    """
    from slicer import vtkMRMLSubjectHierarchyNode

    vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(scene)


def headless_context() -> MRMLContext:
    """Build a new headless Slicer application (scene + logics) from slicer-core."""
    _quiet_vtk()
    from slicer import (
        vtkSlicerPlotsLogic,
        vtkSlicerSequencesLogic,
        vtkSlicerTablesLogic,
    )
    from trame_slicer.core.slicer_app import SlicerApp

    app = SlicerApp()
    sequences = app.register_module_logic(vtkSlicerSequencesLogic(), logic_name="Sequences")
    tables = app.register_module_logic(vtkSlicerTablesLogic(), logic_name="Tables")
    plots = app.register_module_logic(vtkSlicerPlotsLogic(), logic_name="Plots")
    ensure_subject_hierarchy(app.scene)
    return MRMLContext(
        scene=app.scene,
        app_logic=app.app_logic,
        volumes_logic=app.volumes_logic,
        segmentations_logic=app.segmentations_logic,
        volume_rendering_logic=app.app_logic.GetModuleLogic("VolumeRendering"),
        sequences_logic=sequences,
        tables_logic=tables,
        plots_logic=plots,
        markups_logic=getattr(app, "markups_logic", None),
        app=app,
    )


def slicer_context() -> MRMLContext:
    """The running desktop Slicer's scene and logics (inside the application only)."""
    import slicer

    m = slicer.modules
    return MRMLContext(
        scene=slicer.mrmlScene,
        app_logic=slicer.app.applicationLogic(),
        volumes_logic=m.volumes.logic(),
        segmentations_logic=m.segmentations.logic(),
        volume_rendering_logic=m.volumerendering.logic(),
        sequences_logic=m.sequences.logic(),
        tables_logic=m.tables.logic(),
        plots_logic=m.plots.logic(),
        markups_logic=m.markups.logic(),
    )


@functools.cache
def _quiet_vtk() -> None:
    """Send VTK warnings to stderr instead of a window (no display here)."""
    from vtkmodules.vtkCommonCore import vtkOutputWindow

    out = vtkOutputWindow()
    out.SetDisplayModeToAlwaysStdErr()
    vtkOutputWindow.SetInstance(out)
