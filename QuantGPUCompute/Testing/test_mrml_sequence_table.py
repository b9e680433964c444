"""Series4D <-> volume sequence (with browser and proxy), and table nodes."""

from __future__ import annotations

import numpy as np
import pytest

from quantgpu import mrml as mrml_layer
from quantgpu.errors import InputError
from quantgpu.io import Series4D, Volume


def _series() -> Series4D:
    rng = np.random.default_rng(11)
    frames = rng.normal(100.0, 20.0, size=(4, 3, 5, 6)).astype(np.float32)
    m = np.array([[0.0, 0.0, 3.0, 1.0], [0.8, 0.0, 0.0, 2.0], [0.0, 0.8, 0.0, 3.0], [0, 0, 0, 1]])
    first = Volume(frames[0], (3.0, 0.8, 0.8), m, modality="CT", source="test")
    return Series4D(frames=frames, frame_times_s=np.array([0.0, 1.0, 2.5, 6.0]), frame=first)


def _proxy_array(proxy) -> np.ndarray:
    return mrml_layer.array_from_volume_node(proxy)[0]


def test_sequence_frames_times_and_browsing(mrml):
    series = _series()
    kept = series.frames.copy()
    nodes = mrml_layer.sequence_node_from_series4d(mrml, series, "perfusion")
    seq, browser, proxy = nodes
    assert seq.GetNumberOfDataNodes() == 4
    assert [float(seq.GetNthIndexValue(n)) for n in range(4)] == [0.0, 1.0, 2.5, 6.0]
    assert seq.GetIndexUnit() == "s"
    assert browser.GetMasterSequenceNode() is seq
    # The proxy shows the selected frame, with the series geometry (origin in RAS: -1, -2, 3).
    assert proxy.GetOrigin() == pytest.approx((-1.0, -2.0, 3.0))
    np.testing.assert_array_equal(_proxy_array(proxy), series.frames[0])
    browser.SetSelectedItemNumber(2)
    np.testing.assert_array_equal(_proxy_array(browser.GetProxyNode(seq)), series.frames[2])
    np.testing.assert_array_equal(series.frames, kept)

    back = mrml_layer.series4d_from_sequence_node(seq)
    np.testing.assert_array_equal(back.frames, series.frames)
    np.testing.assert_allclose(back.frame_times_s, series.frame_times_s)
    np.testing.assert_allclose(back.ijk_to_lps, series.ijk_to_lps, atol=1e-9)
    assert back.spacing == pytest.approx(series.spacing)
    assert back.modality == "CT"


def test_sequence_in_milliseconds_and_bad_sequences(mrml):
    import slicer

    seq = mrml.scene.AddNewNodeByClass("vtkMRMLSequenceNode", "ms")
    with pytest.raises(InputError, match="is empty"):
        mrml_layer.series4d_from_sequence_node(seq)
    seq.SetIndexUnit("ms")
    for n, t_ms in enumerate([100.0, 600.0]):
        frame = slicer.vtkMRMLScalarVolumeNode()
        slicer.util.updateVolumeFromArray(frame, np.full((2, 2, 2), n, np.float32))
        seq.SetDataNodeAtValue(frame, f"{t_ms:g}")
    np.testing.assert_allclose(mrml_layer.series4d_from_sequence_node(seq).frame_times_s, [0.0, 0.5])
    seq.SetIndexUnit("frames")
    with pytest.raises(InputError, match="index unit 'frames'"):
        mrml_layer.series4d_from_sequence_node(seq)


def test_table_columns(mrml):
    node = mrml_layer.add_table(mrml, "scores", {"artery": ["LAD", "RCA"], "agatston": [120.5, 3], "lesions": [2, 1]})
    table = node.GetTable()
    assert (table.GetNumberOfRows(), table.GetNumberOfColumns()) == (2, 3)
    assert table.GetColumnByName("artery").GetValue(1) == "RCA"
    assert table.GetColumnByName("agatston").GetValue(0) == 120.5
    assert node.GetName() == "scores"
    assert mrml_layer.table_columns(node) == {"artery": ["LAD", "RCA"], "agatston": [120.5, 3.0], "lesions": [2.0, 1.0]}
    with pytest.raises(InputError, match="different lengths"):
        mrml_layer.add_table(mrml, "bad", {"a": [1, 2], "b": [1]})
