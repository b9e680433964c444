"""The web workstation's pieces in process (no browser): samples, module panels, workstation, CLI checks."""

from __future__ import annotations

import logging
import sys
import uuid

import numpy as np
import pytest

from quantgpu.backend import gpu_available
from quantgpu.cli import main
from quantgpu.errors import InputError
from quantgpu.samples import SAMPLES, load_sample, sample_names, sphere_volume
from quantgpu.web.panels import MODULE_PACKAGES, find_module_panels

# --- samples -------------------------------------------------------------------------------


def test_sample_names_are_the_registry():
    assert sample_names() == ["Sphere", "CalciumPhantom", "PerfusionPhantom", "MammoPhantom"]
    assert set(SAMPLES) == set(sample_names())


def test_unknown_sample_lists_the_names():
    with pytest.raises(InputError) as info:
        load_sample("Heart")
    message = str(info.value)
    assert "'Heart'" in message
    for name in sample_names():
        assert name in message


def test_sphere_sample_values_and_geometry():
    size, spacing = 64, 2.0
    volume = load_sample("Sphere")
    assert volume.array.shape == (size, size, size) and volume.array.dtype == np.float32
    assert volume.spacing == (spacing, spacing, spacing)
    assert volume.modality == "CT"
    assert set(np.unique(volume.array).tolist()) == {-1000.0, 40.0, 700.0}
    # The ball (radius 0.4 * 64 voxels) holds the core (radius 0.15 * 64): volumes of spheres.
    ball_voxels = np.count_nonzero(volume.array > -1000)
    assert ball_voxels == pytest.approx(4 / 3 * np.pi * (0.4 * size) ** 3, rel=0.02)
    core_voxels = np.count_nonzero(volume.array == 700)
    assert core_voxels == pytest.approx(4 / 3 * np.pi * (0.15 * size) ** 3, rel=0.05)
    # Geometry: the ball's centre at the LPS origin; the core towards right (-x), anterior (-y),
    # superior (+z), each by 0.08 * 64 voxels * 2 mm = 10.24 mm.
    k, j, i = np.nonzero(volume.array == 700)
    centre_ijk = np.array([i.mean(), j.mean(), k.mean(), 1.0])
    core_lps = volume.ijk_to_lps @ centre_ijk
    np.testing.assert_allclose(core_lps[:3], [-10.24, -10.24, 10.24], atol=0.05)
    middle = volume.ijk_to_lps @ np.array([(size - 1) / 2] * 3 + [1.0])
    np.testing.assert_allclose(middle[:3], 0.0, atol=1e-9)
    assert sphere_volume(size=32).array.shape == (32, 32, 32)


# --- module panels -------------------------------------------------------------------------


@pytest.fixture
def fake_packages(tmp_path, monkeypatch):
    """Three throw-away packages: one without a web panel, one with a good one, one with a broken one."""
    tag = uuid.uuid4().hex[:8]
    names = {kind: f"Fake{kind}{tag}Lib" for kind in ("Bare", "Good", "Broken", "Untitled")}
    for package in names.values():
        folder = tmp_path / package
        folder.mkdir()
        (folder / "__init__.py").write_text("")
    (tmp_path / names["Good"] / "web_panel.py").write_text(
        "TITLE = 'Good module'\nBUILT = []\n\ndef build(ws):\n    BUILT.append(ws)\n"
    )
    (tmp_path / names["Broken"] / "web_panel.py").write_text("import no_such_module_for_quantgpu_tests\n")
    (tmp_path / names["Untitled"] / "web_panel.py").write_text("def build(ws):\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield names
    for package in names.values():
        for module in [m for m in sys.modules if m == package or m.startswith(package + ".")]:
            del sys.modules[module]


def test_modules_without_a_web_panel_are_skipped_and_logged(fake_packages, caplog):
    with caplog.at_level(logging.INFO, logger="quantgpu.web.panels"):
        panels = find_module_panels((fake_packages["Bare"], fake_packages["Good"]))
    assert [(panel.package, panel.title) for panel in panels] == [(fake_packages["Good"], "Good module")]
    assert panels[0].element_id == f"panel-{fake_packages['Good']}"
    assert any(fake_packages["Bare"] in record.getMessage() for record in caplog.records)


def test_an_existing_web_panel_that_fails_is_not_hidden(fake_packages):
    with pytest.raises(ModuleNotFoundError, match="no_such_module_for_quantgpu_tests"):
        find_module_panels((fake_packages["Good"], fake_packages["Broken"]))
    with pytest.raises(TypeError, match="TITLE"):
        find_module_panels((fake_packages["Untitled"],))


def test_the_three_analysis_modules_are_asked_for_panels():
    assert MODULE_PACKAGES == ("CalciumScoringLib", "PerfusionAnalysisLib", "MammoCADLib")


# --- the workstation -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def workstation(tmp_path_factory):
    from trame.app import get_server

    from quantgpu.web.app import build_workstation

    server = get_server(f"quantgpu-test-{uuid.uuid4().hex[:8]}", client_type="vue3")
    return build_workstation(server=server, backend="cpu", output_dir=tmp_path_factory.mktemp("web-output"))


def test_workstation_exposes_what_module_panels_use(workstation, tmp_path_factory):
    ws = workstation
    assert ws.backend == "cpu"
    assert ws.output_dir.is_dir()
    assert ws.state is ws.server.state and ws.ctrl is ws.server.controller
    assert ws.mrml.scene is ws.slicer_app.scene
    assert ws.mrml.volume_rendering_logic is not None and ws.mrml.segmentations_logic is not None
    # Every module that has a web panel gets it in the drawer, in the registry's order.
    expected = [package for package in MODULE_PACKAGES if _has_web_panel(package)]
    assert [panel.package for panel in ws.panels] == expected
    # Views of the default layout: three slice views and one 3D view.
    tags = sorted(view.get_singleton_tag() for view in ws.slicer_app.view_manager.get_views())
    assert tags == ["Green", "Red", "ThreeD", "Yellow"]


def test_show_volume_fills_slice_views_and_volume_renders(workstation):
    ws = workstation
    node = ws.load_sample("Sphere")
    assert ws.volume_node is node
    assert ws.state.qg_volume_name == "Sphere"
    assert ws.state.qg_volume_summary.startswith("64×64×64 voxels, 2×2×2 mm")
    for view in ws.slicer_app.view_manager.get_slice_views():
        assert view.get_background_volume_id() == node.GetID()
    display = ws.mrml.volume_rendering_logic.GetFirstVolumeRenderingDisplayNode(node)
    assert display.IsA("vtkMRMLGPURayCastVolumeRenderingDisplayNode") and display.GetVisibility()
    assert ws.state.qg_vr_preset == "CT-Chest-Contrast-Enhanced"  # CT data
    ws.set_vr_preset("CT-Bone")
    assert display.GetVolumePropertyNode().GetName() == "CT-Bone"
    with pytest.raises(InputError, match="preset"):
        ws.set_vr_preset("No-Such-Preset")


def test_notify_reaches_the_page_state(workstation):
    workstation.notify("Scored 3 lesions")
    assert workstation.state.qg_notify_text == "Scored 3 lesions"
    assert workstation.state.qg_notify_visible is True


def _has_web_panel(package: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(f"{package}.web_panel") is not None


# --- command line checks before the server starts ------------------------------------------


def test_cli_unknown_sample_exits_2_with_one_line(capsys):
    assert main(["web", "--sample", "Nope"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Nope" in err and "Sphere" in err


def test_cli_bad_port_exits_2(capsys):
    assert main(["web", "--port", "70000"]) == 2
    assert "70000" in capsys.readouterr().err


@pytest.mark.skipif(gpu_available(), reason="a CUDA device is present")
def test_cli_gpu_backend_without_device_exits_2(capsys):
    assert main(["web", "--backend", "gpu"]) == 2
    assert "gpu" in capsys.readouterr().err
