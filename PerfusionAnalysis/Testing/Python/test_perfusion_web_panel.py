"""The PerfusionAnalysis panel of the browser workstation, in process (a real workstation, no browser).

Expected numbers come from the phantom's construction (phantom.py): 64 x 64 px slices, 4 stroke
slices of 5 x 2 x 2 mm voxels (20 mm³); each stroke zone is 16 rows x 24 columns per slice, so
1536 voxels = 30.72 mL: the core (label 1, CBF 10 vs 60 normal, Tmax 11 s), and two penumbra zones
(Tmax 7 s and 11 s). Tmax > 6 s = 3 zones = 92.16 mL; mismatch = 61.44 mL; ratio 3, so DEFUSE 3
(core < 70, mismatch > 15, ratio > 1.8) and EXTEND (core <= 70, ratio > 1.2, mismatch > 10) hold.
The arterial region is slice 0, rows 4-7, columns 30-33 (voxel centre i 32, j 6 after rounding),
identity LPS directions at the origin.
"""

from __future__ import annotations

import asyncio
import uuid

import nrrd
import numpy as np
import pytest

VOXEL_ML = 5.0 * 2.0 * 2.0 / 1000.0
ZONE_VOXELS = 4 * 16 * 24
CORE_ML = ZONE_VOXELS * VOXEL_ML  # 30.72
TMAX6_ML = 3 * ZONE_VOXELS * VOXEL_ML  # 92.16


@pytest.fixture(scope="module")
def workstation(tmp_path_factory):
    from trame.app import get_server

    from quantgpu.web.app import build_workstation

    server = get_server(f"quantgpu-perf-test-{uuid.uuid4().hex[:8]}", client_type="vue3")
    return build_workstation(server=server, backend="cpu", output_dir=tmp_path_factory.mktemp("perf-web"))


@pytest.fixture(scope="module")
def panel(workstation):
    panel = workstation.perfusion_panel
    panel.load_phantom()
    return panel


def _row(panel, quantity):
    return next(r for r in panel.ws.state.perf_rows if r["quantity"] == quantity)


def test_panel_is_in_the_drawer_with_its_defaults(workstation):
    from PerfusionAnalysisLib import web_panel

    assert "PerfusionAnalysisLib" in [p.package for p in workstation.panels]
    assert web_panel.TITLE.startswith("Perfusion")
    s = workstation.state
    assert (s.perf_modality, s.perf_method, s.perf_model) == ("ct", "csvd", "tofts")
    assert (s.perf_kh, s.perf_density) == (0.73, 1.04)
    assert s.perf_modalities == ["ct", "dsc", "dce"]
    assert s.perf_methods == ["ssvd", "csvd", "osvd", "tikhonov"]
    assert s.perf_models == ["tofts", "extended-tofts", "patlak"]


def test_phantom_loads_as_a_sequence_with_its_dicom_headers(panel):
    ws = panel.ws
    node = ws.mrml.scene.GetNodeByID(ws.state.perf_input_id)
    assert node.IsA("vtkMRMLSequenceNode") and node.GetNumberOfDataNodes() == 60  # 60 frames of 1 s
    assert len(panel.headers[node.GetID()]) == 5  # one frame: the arterial slice + 4 stroke slices
    assert ws.volume_node.GetImageData().GetDimensions() == (64, 64, 5)


def test_run_with_aif_placed_at_the_crosshair(panel):
    ws, s = panel.ws, panel.ws.state
    # The arterial region's centre voxel (i 32, j 6, k 0): LPS (64, 12, 0) mm, RAS (-64, -12, 0).
    crosshair = ws.mrml.scene.GetFirstNodeByClass("vtkMRMLCrosshairNode")
    crosshair.SetCrosshairRAS(-64.0, -12.0, 0.0)
    panel.place_aif_at_crosshair()
    assert s.perf_aif_id == panel.aif_points_node().GetID()
    s.perf_method = "osvd"
    asyncio.run(panel.run())

    result = panel.nodes.result
    assert int(np.count_nonzero(result.aif_mask)) == 9  # a click marks 3 x 3 voxels on its slice
    assert result.aif_mask[0, 5:8, 31:34].all()
    assert s.perf_busy is False and s.perf_progress == 100
    assert s.perf_summary.startswith(
        f"core {CORE_ML:.1f} mL, Tmax>6s {TMAX6_ML:.1f} mL, mismatch {TMAX6_ML - CORE_ML:.1f} mL (ratio 3.00); "
        "DEFUSE 3 +, EXTEND +; osvd"
    )
    assert float(_row(panel, "core (rCBF < 30 %)")["value"]) == pytest.approx(CORE_ML, abs=1e-9)
    assert float(_row(panel, "Tmax > 6 s")["value"]) == pytest.approx(TMAX6_ML, abs=1e-9)
    assert float(_row(panel, "mismatch ratio")["value"]) == pytest.approx(3.0)
    assert _row(panel, "DEFUSE 3 eligible")["value"] == "1"

    # The Tmax map in the slice views and volume-rendered in 3-D; the other maps can be chosen.
    assert s.perf_maps == ["cbf", "cbv", "mtt", "tmax", "ttp"] and s.perf_map == "tmax"
    for view in ws.slicer_app.view_manager.get_slice_views():
        assert view.get_background_volume_id() == panel.nodes.maps["tmax"].GetID()
    assert panel.nodes.volume_rendering.GetVisibility()
    panel.show_map("cbf")
    assert ws.volume_node is panel.nodes.maps["cbf"]
    # The core/penumbra output is not offered as an AIF/VOF mask.
    offered = {o["value"] for o in s.perf_mask_options}
    assert panel.nodes.segmentation.GetID() not in offered


def test_exports_parametric_maps_seg_and_nrrd(panel, workstation):
    s = workstation.state
    out = workstation.output_dir / "perfusion"
    for kind in ("pm", "seg", "nrrd"):
        panel.export([kind])
    names = {p.rsplit("/", 1)[-1] for p in s.perf_exported}
    assert {f"{m}_pm.dcm" for m in ("cbf", "cbv", "mtt", "tmax", "ttp")} <= names
    assert {"core_penumbra_seg.dcm", "tmax.nrrd", "core_penumbra.nrrd"} <= names
    labels, _header = nrrd.read(str(out / "core_penumbra.nrrd"), index_order="C")
    assert int(np.count_nonzero(labels == 1)) == ZONE_VOXELS
    assert int(np.count_nonzero(labels == 2)) == 2 * ZONE_VOXELS
    before = len(s.perf_exported)
    panel.export(["nrrd"])  # exists, no overwrite asked: refused with a message
    assert len(s.perf_exported) == before and "exists" in s.qg_notify_text


def test_cancel_stops_the_run_and_keeps_the_previous_result(panel):
    s = panel.ws.state
    previous = panel.nodes
    s.perf_method = "osvd"

    async def run_and_cancel():
        panel.start_run()  # what the Run button calls: returns at once, the run is a task
        while not s.perf_busy:
            await asyncio.sleep(0)
        panel.cancel()  # what the Cancel button calls, while the run is in progress
        await panel.task

    asyncio.run(run_and_cancel())
    assert panel.nodes is previous
    assert "cancelled" in s.qg_notify_text and s.perf_busy is False


def test_a_plain_volume_is_refused_with_a_message(panel):
    ws, s = panel.ws, panel.ws.state
    node = ws.load_sample("Sphere")
    saved = s.perf_input_id
    s.perf_input_id = node.GetID()
    asyncio.run(panel.run())
    assert "single 3-D volume" in s.qg_notify_text
    s.perf_input_id = saved
