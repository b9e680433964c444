"""The MRML helpers behind the panels: what an input node stands for, AIF/VOF masks from clicks and
segmentations, panel settings to analysis options, exports. Headless scene (slicer-core)."""

from __future__ import annotations

import numpy as np
import pytest

from PerfusionAnalysisLib.mrml import (
    analysis_options,
    export_results,
    input_sequence_node,
    input_series,
    mask_from_input,
)
from PerfusionAnalysisLib.pipeline import PerfusionResult
from quantgpu.errors import InputError, OutputExistsError
from quantgpu.io import Series4D, Volume
from quantgpu.mrml import segmentation_node_from_labels, sequence_node_from_series4d, volume_node_from_array

SHAPE = (3, 8, 10)  # k, j, i
SPACING = (4.0, 2.0, 1.0)  # mm, k j i order
ORIGIN_LPS = np.array([10.0, -20.0, 30.0])


def _ijk_to_lps():
    m = np.diag([SPACING[2], SPACING[1], SPACING[0], 1.0])
    m[:3, 3] = ORIGIN_LPS
    return m


def _series(n_frames=4, times=(0.0, 1.5, 3.0, 4.5)):
    frames = np.arange(n_frames * np.prod(SHAPE), dtype=np.float32).reshape(n_frames, *SHAPE)
    return Series4D(frames, np.array(times[:n_frames]), Volume(frames[0], SPACING, _ijk_to_lps(), modality="CT"))


def _ras_of_voxel(i, j, k):
    """RAS of voxel (i, j, k): LPS = origin + (i·di, j·dj, k·dk), then x and y negated."""
    lps = ORIGIN_LPS + np.array([i * SPACING[2], j * SPACING[1], k * SPACING[0]])
    return [-lps[0], -lps[1], lps[2]]


def test_sequence_browser_and_proxy_stand_for_the_same_sequence(mrml):
    nodes = sequence_node_from_series4d(mrml, _series(), name="Series")
    assert input_sequence_node(mrml, nodes.sequence) is nodes.sequence
    assert input_sequence_node(mrml, nodes.browser) is nodes.sequence
    assert input_sequence_node(mrml, nodes.proxy) is nodes.sequence
    plain = volume_node_from_array(mrml, np.zeros(SHAPE, np.float32), SPACING, _ijk_to_lps(), name="Plain CT")
    with pytest.raises(InputError, match="'Plain CT' is a single 3-D volume"):
        input_sequence_node(mrml, plain)
    with pytest.raises(InputError, match="choose a 4-D series"):
        input_sequence_node(mrml, None)


def test_input_series_keeps_or_replaces_the_frame_times(mrml):
    nodes = sequence_node_from_series4d(mrml, _series(), name="Series")
    series = input_series(mrml, nodes.proxy)
    np.testing.assert_allclose(series.frame_times_s, [0.0, 1.5, 3.0, 4.5])
    np.testing.assert_array_equal(series.frames, _series().frames)
    np.testing.assert_allclose(series.ijk_to_lps, _ijk_to_lps(), atol=1e-9)
    np.testing.assert_allclose(input_series(mrml, nodes.sequence, 2.0).frame_times_s, [0.0, 2.0, 4.0, 6.0])
    with pytest.raises(InputError, match="positive"):
        input_series(mrml, nodes.sequence, -1.0)


def test_a_click_becomes_a_3x3_region_on_its_slice(mrml):
    series = _series()
    points = mrml.scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "AIF points")
    points.AddControlPointWorld(*_ras_of_voxel(4, 3, 1))
    mask = mask_from_input(points, series)
    expected = np.zeros(SHAPE, bool)
    expected[1, 2:5, 3:6] = True
    np.testing.assert_array_equal(mask, expected)
    # A second click at the volume's corner adds the part of its square inside the grid (2 x 2).
    points.AddControlPointWorld(*_ras_of_voxel(0, 0, 2))
    expected[2, 0:2, 0:2] = True
    np.testing.assert_array_equal(mask_from_input(points, series), expected)
    points.AddControlPointWorld(*_ras_of_voxel(12, 0, 0))  # i = 12 is past the 10 columns
    with pytest.raises(InputError, match="outside the series"):
        mask_from_input(points, series)


def test_a_segmentation_selects_its_voxels_on_the_frame_grid(mrml):
    series = _series()
    reference = volume_node_from_array(mrml, np.zeros(SHAPE, np.float32), SPACING, _ijk_to_lps(), name="grid")
    labels = np.zeros(SHAPE, np.uint8)
    labels[0, 1:3, 6:9] = 1  # 6 voxels of an "artery"
    labels[2, 5, 2] = 2  # one more segment: its voxel counts too
    segmentation = segmentation_node_from_labels(mrml, labels, reference, [(1, "AIF", (1, 0, 0)), (2, "B", (0, 1, 0))])
    mask = mask_from_input(segmentation, series)
    assert mask.dtype == bool and int(mask.sum()) == 7
    np.testing.assert_array_equal(mask, labels != 0)
    volumes = mrml.scene.GetNumberOfNodesByClass("vtkMRMLVolumeNode")
    displays = mrml.scene.GetNumberOfNodesByClass("vtkMRMLVolumeDisplayNode")
    mask_from_input(segmentation, series)
    # the temporary frame-grid volume and its display node are removed again
    assert mrml.scene.GetNumberOfNodesByClass("vtkMRMLVolumeNode") == volumes
    assert mrml.scene.GetNumberOfNodesByClass("vtkMRMLVolumeDisplayNode") == displays


def test_analysis_options_zero_means_from_the_header():
    options = analysis_options(kh=0.73, density=1.04, te_s=0.0, flip_angle_deg=0.0, tr_s=0.0)
    assert (options["te_s"], options["flip_angle_deg"], options["tr_s"]) == (None, None, None)
    options = analysis_options(kh=0.8, density=1.0, model="patlak", te_s=0.03, flip_angle_deg=15, tr_s=0.005)
    assert options["te_s"] == 0.03 and options["flip_angle_deg"] == 15.0 and options["tr_s"] == 0.005
    assert options["model"] == "patlak" and options["kh"] == 0.8
    with pytest.raises(InputError, match="k_H"):
        analysis_options(kh=0.0, density=1.04)


def _result():
    maps = {"cbf": np.ones(SHAPE, np.float32)}
    return PerfusionResult(
        modality="dce",
        method="tofts",
        frame_times_s=np.arange(4.0),
        frame_interval_s=1.0,
        maps=maps,
        tissue_mask=np.ones(SHAPE, bool),
        aif_mask=np.zeros(SHAPE, bool),
        aif_curve=np.zeros(4, np.float32),
        aif_peak_time_s=0.0,
        vof_mask=None,
        vof_curve=None,
        tissue_curve=np.zeros(4, np.float32),
        spacing=SPACING,
        ijk_to_lps=_ijk_to_lps(),
    )


def test_export_checks_before_writing(tmp_path):
    result = _result()
    with pytest.raises(InputError, match="unknown export 'pdf'"):
        export_results(result, tmp_path, ["pdf"])
    with pytest.raises(InputError, match="source headers"):
        export_results(result, tmp_path, ["pm"])
    with pytest.raises(InputError, match="output folder"):
        export_results(result, "", ["nrrd"])
    written = export_results(result, tmp_path, ["nrrd"])
    assert list(written) == ["cbf"] and (tmp_path / "cbf.nrrd").exists()
    with pytest.raises(OutputExistsError):
        export_results(result, tmp_path, ["nrrd"])
    assert export_results(result, tmp_path, ["nrrd"], force=True) == written
