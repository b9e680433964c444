"""The shared scenarios (also run by PerfusionAnalysisTest in Slicer) on the headless MRML scene."""

from __future__ import annotations

from PerfusionAnalysisLib import scenarios


def test_stroke_phantom_scenario(mrml):
    out = scenarios.stroke_phantom_scenario(mrml, backend="cpu")
    assert out["volumes_ml"]["core"] == out["truth_ml"]["core"]


def test_grid_maps_scenario(mrml):
    out = scenarios.grid_maps_scenario(mrml, backend="cpu")
    assert out["osvd"]["cbf_r"] > 0.95


def test_dsc_scenario(mrml):
    scenarios.dsc_scenario(mrml, backend="cpu")
