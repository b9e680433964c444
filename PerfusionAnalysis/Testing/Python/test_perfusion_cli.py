"""``quantgpu perfusion`` end to end on the phantom: outputs, JSON keys, geometry, exit codes, no overwrite.

Expected stroke numbers come from the phantom's layout (three 16 x 24 px zones on 4 slices of 20 mm³
voxels = 30.72 mL each; core, Tmax 7 s and Tmax 11 s zones), not from the analysis code.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from PerfusionAnalysisLib.cli import demo, output_names
from PerfusionAnalysisLib.phantom import make_phantom, write_phantom
from quantgpu import io
from quantgpu.cli import main as quantgpu_main

ZONE_ML = 16 * 24 * 4 * 20 / 1000
ISSUE_KEYS = {
    "modality", "method", "frame_interval_s", "frames", "aif", "reference_cbf", "volumes_ml",
    "mismatch_volume_ml", "mismatch_ratio", "hypoperfusion_intensity_ratio", "eligibility", "parameters", "backend",
}  # fmt: skip


def main(argv) -> int:
    return quantgpu_main(["perfusion", *argv])


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("perf_cli")
    return write_phantom(root / "in", make_phantom())


def test_dicom_input_writes_every_output(inputs, tmp_path):
    out = tmp_path / "out"
    argv = [str(inputs["dicom"]), "--modality", "ct", "--method", "csvd", "--aif-mask", str(inputs["aif_mask"]),
            "--vof-mask", str(inputs["vof_mask"]), "--output-dir", str(out), "--json", str(tmp_path / "r.json"),
            "--backend", "cpu"]  # fmt: skip
    assert main(argv) == 0
    result = json.loads((tmp_path / "r.json").read_text())
    assert set(result) == ISSUE_KEYS
    assert set(result["aif"]) == {"voxel_count", "peak_time_s", "curve"}
    assert result["aif"]["voxel_count"] == 16 and result["aif"]["peak_time_s"] == 15.0
    assert set(result["volumes_ml"]) == {"core", "tmax_gt_4s", "tmax_gt_6s", "tmax_gt_8s", "tmax_gt_10s"}
    assert result["frames"] == 60 and result["frame_interval_s"] == 1.0
    v = result["volumes_ml"]
    assert v["core"] == pytest.approx(ZONE_ML, abs=1e-9)
    assert v["tmax_gt_6s"] == pytest.approx(3 * ZONE_ML, abs=1e-9)
    assert v["tmax_gt_10s"] == pytest.approx(2 * ZONE_ML, abs=1e-9)
    assert result["mismatch_volume_ml"] == pytest.approx(2 * ZONE_ML, abs=1e-9)
    assert result["mismatch_ratio"] == pytest.approx(3.0)
    assert result["hypoperfusion_intensity_ratio"] == pytest.approx(2 / 3)
    assert result["eligibility"] == {"defuse3": True, "extend": True}
    assert result["parameters"]["stroke"]["thresholds"]["defuse3_ratio_gt"] == 1.8
    assert sorted(p.name for p in out.iterdir()) == sorted(output_names("ct", dicom=True))

    series = io.load_series_4d(inputs["dicom"])
    for name in ("cbf", "cbv", "mtt", "tmax", "ttp"):
        vol = io.load_volume(out / f"{name}.nrrd")
        assert vol.array.shape == series.frames.shape[1:]
        np.testing.assert_allclose(vol.ijk_to_lps, series.ijk_to_lps, atol=1e-6)
    labels = io.load_volume(out / "core_penumbra.nrrd").array
    assert np.count_nonzero(labels == 1) == 1536
    curves = (out / "curves.csv").read_text().splitlines()
    assert curves[0] == "time_s,aif,vof,tissue_mean" and len(curves) == 61


def test_nrrd_input_frame_interval_override_and_stdout(inputs, capsys):
    argv = [str(inputs["nrrd"]), "--modality", "ct", "--frame-interval", "2", "--aif-mask", str(inputs["aif_mask"]),
            "--json", "-", "--backend", "cpu"]  # fmt: skip
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["frame_interval_s"] == 2.0
    assert result["aif"]["peak_time_s"] == 30.0  # frame 15 at 2 s


def test_nothing_overwritten_without_force(inputs, tmp_path, capsys):
    out = tmp_path / "o"
    argv = [str(inputs["nrrd"]), "--modality", "ct", "--output-dir", str(out), "--backend", "cpu"]
    assert main(argv) == 0
    assert not any(p.suffix == ".dcm" for p in out.iterdir())  # NRRD input: no DICOM objects
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "exists" in err and "--force" in err and len(err.strip().splitlines()) == 1
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert main([*argv, "--force"]) == 0


def test_mask_on_another_grid_is_bad_input(inputs, tmp_path, capsys):
    small = tmp_path / "small_mask.nrrd"
    io.write_nrrd(small, np.ones((5, 32, 32), np.uint8), (5.0, 2.0, 2.0))
    argv = [str(inputs["nrrd"]), "--modality", "ct", "--aif-mask", str(small), "--backend", "cpu"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "small_mask.nrrd" in err and "grid" in err
    shifted = tmp_path / "shifted_mask.nrrd"
    m = np.diag([2.0, 2.0, 5.0, 1.0])
    m[:3, 3] = (10.0, 0.0, 0.0)
    io.write_nrrd(shifted, make_phantom().aif_mask.astype(np.uint8), (5.0, 2.0, 2.0), m)
    assert main([str(inputs["nrrd"]), "--modality", "ct", "--aif-mask", str(shifted)]) == 2
    assert "geometry" in capsys.readouterr().err
    empty = tmp_path / "empty_mask.nrrd"
    io.write_nrrd(empty, np.zeros((5, 64, 64), np.uint8), (5.0, 2.0, 2.0))
    assert main([str(inputs["nrrd"]), "--modality", "ct", "--vof-mask", str(empty)]) == 2


@pytest.mark.parametrize(
    "argv",
    [
        ["does-not-exist", "--modality", "ct"],
        ["{nrrd}"],  # --modality is required
        ["{nrrd}", "--modality", "pet"],
        ["{nrrd}", "--modality", "ct", "--method", "fft"],
        ["{nrrd}", "--modality", "ct", "--kh", "-1"],
        ["{nrrd}", "--modality", "dsc"],  # no echo time in a NRRD and none given
    ],
)
def test_usage_and_input_errors_exit_2(inputs, argv, capsys):
    argv = [a.format(nrrd=inputs["nrrd"]) for a in argv]
    assert main(argv) == 2
    assert capsys.readouterr().err.startswith("quantgpu")


def test_demo(tmp_path):
    result = demo(tmp_path / "demo", backend="cpu")
    assert "DEFUSE 3 +" in result["summary"] and "EXTEND +" in result["summary"]
    assert result["volumes_ml"]["core"] == pytest.approx(result["truth_volumes_ml"]["core"])
    assert (tmp_path / "demo" / "cbf_pm.dcm").exists() and (tmp_path / "demo" / "core_penumbra_seg.dcm").exists()
