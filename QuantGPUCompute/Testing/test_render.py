"""Off-screen volume rendering (quantgpu.render) on a real MRML scene, no display.

The phantom is a 48 mm air cube (1 mm voxels, axial DICOM-like orientation:
i -> patient left, j -> posterior, k -> superior) holding two bright spheres:
one 12 mm to the patient's right of the centre, one 12 mm superior. Seen from
the front (anterior camera, head up) the right sphere must appear left of the
picture centre and the superior one above it, each 12 mm x pixels-per-mm away;
the documented fit (orthographic, larger of height and width/aspect filling
the picture with a 5% margin) gives pixels-per-mm independently of the code.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from quantgpu.errors import InputError, OutputExistsError
from quantgpu.render import png_pixels, preset_names, render_volume_png, show_volume_rendering

N = 48  # voxels per side, 1 mm
RADIUS_MM = 7
OFFSET_MM = 12
WIDTH, HEIGHT = 160, 120
# Half the picture height covers 1.05 * max(24 mm, 24 mm / (160/120)) = 25.2 mm.
PX_PER_MM = (HEIGHT / 2) / (1.05 * max(N / 2, (N / 2) / (WIDTH / HEIGHT)))

# Volume centre in IJK is (N-1)/2 per axis; RAS x = -i, y = -j, z = +k (LPS axial directions).
CENTRE = (N - 1) / 2
RIGHT_SPHERE_KJI = (CENTRE, CENTRE, CENTRE - OFFSET_MM)  # smaller i = larger RAS x = patient right
SUPERIOR_SPHERE_KJI = (CENTRE + OFFSET_MM, CENTRE, CENTRE)


def _ball(centre_kji) -> np.ndarray:
    k, j, i = np.mgrid[0:N, 0:N, 0:N]
    ck, cj, ci = centre_kji
    return (k - ck) ** 2 + (j - cj) ** 2 + (i - ci) ** 2 <= RADIUS_MM**2


def _set_axial_geometry(node) -> None:
    node.SetSpacing(1.0, 1.0, 1.0)
    node.SetOrigin(0.0, 0.0, 0.0)
    node.SetIJKToRASDirections(-1, 0, 0, 0, -1, 0, 0, 0, 1)


@pytest.fixture
def phantom(mrml):
    import slicer.util

    array = np.full((N, N, N), -1000.0, dtype=np.float32)  # air, HU
    array[_ball(RIGHT_SPHERE_KJI) | _ball(SUPERIOR_SPHERE_KJI)] = 1500.0  # dense bone
    node = mrml.scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "TwoSpheres")
    slicer.util.updateVolumeFromArray(node, array)
    _set_axial_geometry(node)
    return node


def _segmentation_of_right_sphere(mrml, volume_node):
    import slicer.util

    labelmap = mrml.scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode")
    slicer.util.updateVolumeFromArray(labelmap, _ball(RIGHT_SPHERE_KJI).astype(np.uint8))
    _set_axial_geometry(labelmap)
    segmentation = mrml.scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "RightSphere")
    assert mrml.segmentations_logic.ImportLabelmapToSegmentationNode(labelmap, segmentation)
    mrml.scene.RemoveNode(labelmap)
    segmentation.GetSegmentation().GetNthSegment(0).SetColor(1.0, 0.0, 0.0)
    return segmentation


def _blobs(pixels: np.ndarray) -> list[tuple[float, float, int]]:
    """(row, column, area) of each lit region, largest first."""
    lit = pixels[..., :3].max(axis=2) > 30
    labels, count = ndimage.label(lit)
    found = []
    for index in range(1, count + 1):
        rows, cols = np.nonzero(labels == index)
        found.append((rows.mean(), cols.mean(), rows.size))
    return sorted(found, key=lambda blob: -blob[2])


def _scene_node_ids(scene) -> set[str]:
    return {scene.GetNthNode(i).GetID() for i in range(scene.GetNumberOfNodes())}


def test_anterior_view_places_spheres_radiologically(mrml, phantom, tmp_path):
    nodes_before = _scene_node_ids(mrml.scene)
    path = render_volume_png(mrml, phantom, tmp_path / "spheres.png", size=(WIDTH, HEIGHT), preset="CT-Bone")

    pixels = png_pixels(path)
    assert pixels.shape == (HEIGHT, WIDTH, 3)
    assert pixels.std() > 5  # not blank
    blobs = _blobs(pixels)
    assert len(blobs) == 2, blobs
    centre_row, centre_col = (HEIGHT - 1) / 2, (WIDTH - 1) / 2
    offset_px = OFFSET_MM * PX_PER_MM  # ~28.6 px
    right = min(blobs, key=lambda blob: blob[1])  # leftmost on screen
    superior = min(blobs, key=lambda blob: blob[0])  # topmost on screen
    assert right is not superior
    assert right[1] == pytest.approx(centre_col - offset_px, abs=2.0)
    assert right[0] == pytest.approx(centre_row, abs=2.0)
    assert superior[0] == pytest.approx(centre_row - offset_px, abs=2.0)
    assert superior[1] == pytest.approx(centre_col, abs=2.0)
    # Each sphere projects to a disc of radius ~7 mm; allow for the voxel staircase and edge fade.
    disc_area = np.pi * (RADIUS_MM * PX_PER_MM) ** 2
    for blob in blobs:
        assert 0.6 * disc_area < blob[2] < 1.3 * disc_area
    # Background elsewhere: the corners and the picture centre are the black background.
    for row, col in [(0, 0), (0, WIDTH - 1), (HEIGHT - 1, 0), (HEIGHT - 1, WIDTH - 1), (HEIGHT // 2 + 20, WIDTH // 2)]:
        assert pixels[row, col].tolist() == [0, 0, 0]
    # The scene is as it was: no view, display or property node left behind.
    assert _scene_node_ids(mrml.scene) == nodes_before
    assert phantom.GetNumberOfDisplayNodes() == 0


def test_left_view_stacks_spheres_vertically(mrml, phantom, tmp_path):
    # From the patient's left the right sphere hides behind the volume centre and the superior
    # one sits 12 mm above it: one lit region from 19 mm above the centre to 7 mm below it,
    # 7 mm either side of the centre column.
    pixels = png_pixels(render_volume_png(mrml, phantom, tmp_path / "left.png", size=(WIDTH, HEIGHT), camera="left"))
    rows, cols = np.nonzero(pixels.max(axis=2) > 30)
    centre_row, centre_col = (HEIGHT - 1) / 2, (WIDTH - 1) / 2
    assert rows.min() == pytest.approx(centre_row - (OFFSET_MM + RADIUS_MM) * PX_PER_MM, abs=2.5)
    assert rows.max() == pytest.approx(centre_row + RADIUS_MM * PX_PER_MM, abs=2.5)
    assert cols.min() == pytest.approx(centre_col - RADIUS_MM * PX_PER_MM, abs=2.5)
    assert cols.max() == pytest.approx(centre_col + RADIUS_MM * PX_PER_MM, abs=2.5)


def test_segmentation_overlay_colours_its_sphere_only(mrml, phantom, tmp_path):
    segmentation = _segmentation_of_right_sphere(mrml, phantom)
    assert not segmentation.GetSegmentation().ContainsRepresentation("Closed surface")
    display = segmentation.GetDisplayNode()
    display.SetVisibility3D(False)  # hidden in 3D by the user: the picture still shows it
    pixels = png_pixels(
        render_volume_png(mrml, phantom, tmp_path / "overlay.png", size=(WIDTH, HEIGHT), segmentation_node=segmentation)
    ).astype(int)
    offset_px = round(OFFSET_MM * PX_PER_MM)
    centre_row, centre_col = HEIGHT // 2, WIDTH // 2
    right_patch = pixels[centre_row - 3 : centre_row + 4, centre_col - offset_px - 3 : centre_col - offset_px + 4]
    superior_patch = pixels[centre_row - offset_px - 3 : centre_row - offset_px + 4, centre_col - 3 : centre_col + 4]
    red, green = right_patch[..., 0].mean(), right_patch[..., 1].mean()
    assert red > 60 and red > 2 * green, right_patch.mean(axis=(0, 1))
    r2, g2 = superior_patch[..., 0].mean(), superior_patch[..., 1].mean()
    assert g2 > 30 and r2 < 1.5 * g2, superior_patch.mean(axis=(0, 1))  # no red surface there
    # The surfaces made for the picture are removed again; the input is left as it was.
    assert not segmentation.GetSegmentation().ContainsRepresentation("Closed surface")
    assert segmentation.GetDisplayNode() is display
    assert not display.GetVisibility3D()


def test_bad_requests_raise_input_errors(mrml, phantom, tmp_path):
    with pytest.raises(InputError, match="CT-Cardiac3"):  # the message lists the presets
        render_volume_png(mrml, phantom, tmp_path / "a.png", preset="No-Such-Preset")
    with pytest.raises(InputError, match="camera"):
        render_volume_png(mrml, phantom, tmp_path / "a.png", camera="oblique")
    with pytest.raises(InputError, match="size"):
        render_volume_png(mrml, phantom, tmp_path / "a.png", size=(0, 100))
    existing = tmp_path / "exists.png"
    existing.write_bytes(b"keep me")
    with pytest.raises(OutputExistsError):
        render_volume_png(mrml, phantom, existing, size=(32, 32))
    assert existing.read_bytes() == b"keep me"
    empty = mrml.scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "Empty")
    with pytest.raises(InputError, match="no voxels"):
        render_volume_png(mrml, empty, tmp_path / "b.png")
    assert not (tmp_path / "a.png").exists() and not (tmp_path / "b.png").exists()


def test_show_volume_rendering_uses_gpu_ray_cast_and_named_preset(mrml, phantom):
    assert {"CT-Cardiac3", "CT-Chest-Contrast-Enhanced", "MR-Default"} <= set(preset_names(mrml))
    display = show_volume_rendering(mrml, phantom, preset="CT-Cardiac3")
    assert display.IsA("vtkMRMLGPURayCastVolumeRenderingDisplayNode")
    assert display.GetVisibility()
    preset = mrml.volume_rendering_logic.GetPresetByName("CT-Cardiac3")
    shown = display.GetVolumePropertyNode().GetScalarOpacity()
    expected = preset.GetScalarOpacity()
    assert shown.GetSize() == expected.GetSize()
    for value in (-1000.0, 0.0, 300.0, 1500.0):
        assert shown.GetValue(value) == pytest.approx(expected.GetValue(value))
    # A second call reuses the display node instead of stacking another one.
    assert show_volume_rendering(mrml, phantom) is display
    assert mrml.volume_rendering_logic.GetFirstVolumeRenderingDisplayNode(phantom) is display
