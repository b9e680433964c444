"""Volume rendering with Slicer's volume rendering logic, on screen or off screen to PNG.

``show_volume_rendering`` turns on GPU ray cast volume rendering of a volume in
the application's 3D views (desktop Slicer or the web workstation).
``render_volume_png`` renders one picture without any window: it builds a
private 3D view (a ``vtkMRMLViewNode``, a renderer and the volume rendering and
segmentation displayable managers) on an off-screen OpenGL context (EGL or
OSMesa on machines without a display, Mesa llvmpipe or a real GPU), writes the
PNG atomically and removes everything it added to the scene.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from .errors import InputError
from .output import check_writable, write_with

log = logging.getLogger(__name__)

GPU_RAY_CAST = "vtkMRMLGPURayCastVolumeRenderingDisplayNode"
CT_PRESET = "CT-Chest-Contrast-Enhanced"
MR_PRESET = "MR-Default"

# Camera placement in RAS for each named view: (direction from focal point to camera, view-up).
# The anterior view looks at the patient's face with the head up, so the patient's right
# is on the left of the picture (radiological convention, as Slicer's "A" view button).
CAMERAS: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "anterior": ((0.0, 1.0, 0.0), (0.0, 0.0, 1.0)),
    "posterior": ((0.0, -1.0, 0.0), (0.0, 0.0, 1.0)),
    "left": ((-1.0, 0.0, 0.0), (0.0, 0.0, 1.0)),
    "right": ((1.0, 0.0, 0.0), (0.0, 0.0, 1.0)),
    "superior": ((0.0, 0.0, 1.0), (0.0, 1.0, 0.0)),
    "inferior": ((0.0, 0.0, -1.0), (0.0, -1.0, 0.0)),
}

_FIT_MARGIN = 1.05  # a little air around the volume


def configure_offscreen_opengl() -> str | None:
    """Choose VTK's OpenGL window class when there is no display.

    Without ``DISPLAY`` VTK 9.6 first tries X (and warns) before falling back; naming
    EGL explicitly avoids that and, on a machine with an NVIDIA driver, renders on the
    GPU. ``VTK_DEFAULT_OPENGL_WINDOW`` set by the user (e.g. ``vtkOSOpenGLRenderWindow``
    for OSMesa) wins. Must run before the first render window is created.
    """
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")
    return os.environ.get("VTK_DEFAULT_OPENGL_WINDOW")


def preset_names(ctx) -> list[str]:
    """Names of the volume rendering presets that the logic knows (``CT-Cardiac3``, ``MR-Default``...)."""
    presets = ctx.volume_rendering_logic.GetPresetsScene()
    count = presets.GetNumberOfNodesByClass("vtkMRMLVolumePropertyNode")
    return [presets.GetNthNodeByClass(i, "vtkMRMLVolumePropertyNode").GetName() for i in range(count)]


def default_preset(volume_node) -> str:
    """The MR preset for MR volumes, the CT preset for CT or for values in Hounsfield units (air below -500)."""
    modality = volume_node.GetAttribute("DICOM.Modality")
    if modality in ("CT", "MR"):
        return CT_PRESET if modality == "CT" else MR_PRESET
    image = volume_node.GetImageData()
    low = image.GetScalarRange()[0] if image is not None else 0.0
    return CT_PRESET if low < -500 else MR_PRESET


def _preset_node(ctx, preset: str):
    node = ctx.volume_rendering_logic.GetPresetByName(preset)
    if node is None:
        raise InputError(f"unknown volume rendering preset {preset!r}; choose from {', '.join(preset_names(ctx))}")
    return node


def _check_volume(volume_node) -> None:
    if volume_node is None or not volume_node.IsA("vtkMRMLScalarVolumeNode"):
        raise InputError("volume rendering needs a scalar volume node")
    image = volume_node.GetImageData()
    if image is None or image.GetNumberOfPoints() == 0:
        raise InputError(f"volume {volume_node.GetName()!r} has no voxels")


def show_volume_rendering(ctx, volume_node, preset: str | None = None):
    """Show ``volume_node`` with GPU ray cast volume rendering in the 3D views; return its display node.

    Reuses the volume's existing volume rendering display node when there is one
    (``preset`` then replaces its transfer functions only when given).
    """
    _check_volume(volume_node)
    logic = ctx.volume_rendering_logic
    display = logic.GetFirstVolumeRenderingDisplayNode(volume_node)
    if display is None:
        logic.ChangeVolumeRenderingMethod(GPU_RAY_CAST)
        display = logic.CreateDefaultVolumeRenderingNodes(volume_node)
        preset = preset or default_preset(volume_node)
    if preset:
        display.GetVolumePropertyNode().Copy(_preset_node(ctx, preset))
    display.SetVisibility(True)
    return display


def render_volume_png(
    ctx,
    volume_node,
    path: str | os.PathLike,
    size: Sequence[int] = (512, 512),
    preset: str | None = None,
    segmentation_node=None,
    camera: str = "anterior",
    *,
    background: Sequence[float] = (0.0, 0.0, 0.0),
    force: bool = False,
) -> Path:
    """Render ``volume_node`` (and ``segmentation_node`` as surfaces) off screen to a PNG at ``path``.

    The picture is an orthographic projection seen from ``camera`` (one of
    ``CAMERAS``), centred on the volume, with the volume's extent across the view
    filling the picture (5% margin). ``preset`` names one of the logic's presets
    (default: ``CT-Chest-Contrast-Enhanced`` for CT, ``MR-Default`` otherwise).
    The scene is left as it was: the view, the display nodes and any closed
    surface representation made for the picture are removed afterwards.
    """
    _check_volume(volume_node)
    if camera not in CAMERAS:
        raise InputError(f"unknown camera {camera!r}; choose from {', '.join(CAMERAS)}")
    width, height = (int(v) for v in size)
    if width < 16 or height < 16 or width > 8192 or height > 8192:
        raise InputError(f"picture size {width}x{height} is outside 16..8192 pixels")
    property_node = _preset_node(ctx, preset or default_preset(volume_node))
    check_writable(path, force)  # before spending time on the picture
    configure_offscreen_opengl()

    with ExitStack() as undo:  # leaves the scene as it was, whatever fails
        view_node, renderer, window = undo.enter_context(_offscreen_view(ctx, width, height, background))
        undo.enter_context(_temporary_volume_rendering(ctx, volume_node, property_node, view_node))
        undo.enter_context(_temporary_segmentation_surfaces(segmentation_node, view_node))
        _place_camera(renderer, volume_node, camera, width / height)
        window.Render()
        image = _capture(window)
    return write_with(path, lambda tmp: _write_png(image, tmp), force=force)


@contextmanager
def _offscreen_view(ctx, width: int, height: int, background: Sequence[float]) -> Iterator[tuple[Any, Any, Any]]:
    """A 3D view node in the scene with a renderer and displayable managers on an off-screen window."""
    # Importing these registers the OpenGL window classes and the GPU ray cast mapper.
    import vtkmodules.vtkRenderingOpenGL2
    import vtkmodules.vtkRenderingVolumeOpenGL2  # noqa: F401
    from slicer import (
        vtkMRMLDisplayableManagerGroup,
        vtkMRMLSegmentationsDisplayableManager3D,
        vtkMRMLVolumeRenderingDisplayableManager,
    )
    from vtkmodules.vtkRenderingCore import vtkRenderer, vtkRenderWindow, vtkRenderWindowInteractor

    scene = ctx.scene
    view_node = scene.AddNewNodeByClass("vtkMRMLViewNode", "QuantGPUOffscreenView")
    view_node.SetMappedInLayout(False)  # never shown by a layout manager
    view_node.SetBoxVisible(False)
    view_node.SetAxisLabelsVisible(False)
    view_node.SetBackgroundColor(*background)
    view_node.SetBackgroundColor2(*background)

    renderer = vtkRenderer()
    renderer.SetBackground(*background)
    window = vtkRenderWindow()
    window.SetOffScreenRendering(True)
    window.SetMultiSamples(0)  # multisampled buffers cannot be read back on every driver
    window.SetSize(width, height)
    window.AddRenderer(renderer)
    # Displayable managers observe the interactor; it is never started (no events off screen).
    interactor = vtkRenderWindowInteractor()
    interactor.SetRenderWindow(window)

    managers = vtkMRMLDisplayableManagerGroup()
    managers.SetRenderer(renderer)
    for manager_type in (vtkMRMLVolumeRenderingDisplayableManager, vtkMRMLSegmentationsDisplayableManager3D):
        manager = manager_type()
        manager.SetMRMLApplicationLogic(ctx.app_logic)
        managers.AddDisplayableManager(manager)
    managers.SetMRMLDisplayableNode(view_node)
    try:
        yield view_node, renderer, window
    finally:
        managers.SetMRMLDisplayableNode(None)
        window.Finalize()
        scene.RemoveNode(view_node)


@contextmanager
def _temporary_volume_rendering(ctx, volume_node, property_node, view_node) -> Iterator[None]:
    """A GPU ray cast display node shown only in ``view_node``; removed afterwards."""
    # The preset gives the transfer functions, so the logic's UpdateDisplayNodeFromVolumeNode
    # (window/level copy, cropping ROI node) is not needed and nothing else lands in the scene.
    scene = ctx.scene
    display = scene.AddNewNodeByClass(GPU_RAY_CAST)
    volume_property = scene.AddNewNodeByClass("vtkMRMLVolumePropertyNode")
    volume_property.Copy(property_node)
    display.SetAndObserveVolumePropertyNodeID(volume_property.GetID())
    display.SetViewNodeIDs([view_node.GetID()])
    volume_node.AddAndObserveDisplayNodeID(display.GetID())
    display.SetVisibility(True)
    try:
        yield
    finally:
        scene.RemoveNode(display)  # also drops the reference from the volume node
        scene.RemoveNode(volume_property)


@contextmanager
def _temporary_segmentation_surfaces(segmentation_node, view_node) -> Iterator[None]:
    """Show the segments as closed surfaces in ``view_node``; undo what was added afterwards."""
    if segmentation_node is None:
        yield
        return
    if not segmentation_node.IsA("vtkMRMLSegmentationNode"):
        raise InputError("the overlay must be a segmentation node")
    had_surfaces = segmentation_node.GetSegmentation().ContainsRepresentation("Closed surface")
    added_display = segmentation_node.GetDisplayNode() is None
    if added_display:
        segmentation_node.CreateDefaultDisplayNodes()
    display = segmentation_node.GetDisplayNode()
    if not had_surfaces:
        segmentation_node.CreateClosedSurfaceRepresentation()
    saved = (
        display.GetVisibility(),
        display.GetVisibility3D(),
        [display.GetNthViewNodeID(i) for i in range(display.GetNumberOfViewNodeIDs())],
    )
    if saved[2]:  # restricted to some views: add ours; an empty list already means every view
        display.AddViewNodeID(view_node.GetID())
    display.SetVisibility(True)
    display.SetVisibility3D(True)
    try:
        yield
    finally:
        if added_display:
            segmentation_node.GetScene().RemoveNode(display)
        else:
            display.SetVisibility(saved[0])
            display.SetVisibility3D(saved[1])
            if saved[2]:
                display.SetViewNodeIDs(saved[2])
        if not had_surfaces:
            segmentation_node.RemoveClosedSurfaceRepresentation()


def _place_camera(renderer, volume_node, camera: str, aspect: float) -> None:
    """Orthographic camera on the volume's centre, looking from ``camera``, fitted to its RAS bounds."""
    import numpy as np

    bounds = [0.0] * 6
    volume_node.GetRASBounds(bounds)
    low, high = np.array(bounds[0::2]), np.array(bounds[1::2])
    centre = (low + high) / 2
    direction, view_up = (np.array(v) for v in CAMERAS[camera])
    across = np.cross(view_up, direction)  # picture's horizontal axis in RAS
    half = (high - low) / 2
    half_height = abs(view_up) @ half
    half_width = abs(across) @ half
    half_depth = abs(direction) @ half
    cam = renderer.GetActiveCamera()
    cam.ParallelProjectionOn()
    cam.SetFocalPoint(*centre)
    cam.SetPosition(*(centre + direction * (4 * half_depth + 100.0)))
    cam.SetViewUp(*view_up)
    cam.SetParallelScale(_FIT_MARGIN * max(half_height, half_width / aspect))
    renderer.ResetCameraClippingRange()


def _capture(window):
    """The rendered picture as an RGB vtkImageData (a copy, independent of the window)."""
    from vtkmodules.vtkCommonDataModel import vtkImageData
    from vtkmodules.vtkRenderingCore import vtkWindowToImageFilter

    grab = vtkWindowToImageFilter()
    grab.SetInput(window)
    grab.SetInputBufferTypeToRGB()
    grab.ReadFrontBufferOff()
    grab.Update()
    image = vtkImageData()
    image.DeepCopy(grab.GetOutput())
    return image


def _write_png(image, path: Path) -> None:
    from vtkmodules.vtkIOImage import vtkPNGWriter

    writer = vtkPNGWriter()
    writer.SetFileName(str(path))
    writer.SetInputData(image)
    writer.Write()
    if writer.GetErrorCode():
        raise OSError(f"{path}: could not write PNG (VTK error code {writer.GetErrorCode()})")


def png_pixels(path: str | os.PathLike):
    """Read a PNG into an ``[row, column, channel]`` uint8 array, row 0 at the top."""
    import numpy as np
    from vtkmodules.util.numpy_support import vtk_to_numpy
    from vtkmodules.vtkIOImage import vtkPNGReader

    reader = vtkPNGReader()
    if not reader.CanReadFile(str(path)):
        raise InputError("not a PNG file", path)
    reader.SetFileName(str(path))
    reader.Update()
    image = reader.GetOutput()
    width, height, _ = image.GetDimensions()
    scalars = image.GetPointData().GetScalars()
    pixels = vtk_to_numpy(scalars).reshape(height, width, scalars.GetNumberOfComponents())
    return np.ascontiguousarray(pixels[::-1])  # VTK images start at the bottom row
