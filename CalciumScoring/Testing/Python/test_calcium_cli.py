"""``quantgpu calcium`` and the calcium demo: JSON keys, exit codes, outputs, no overwrite.

Expected numbers: the phantom table of calcium.md section 5 (580 / 522 mm3 / 243.6 mg at
c_HA = 0.8 mg/cm3/HU) and case C8 (a 3 x 3 mm, 6 mm long 450 HU rod scores 72 at any
slice increment).
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from CalciumScoringLib.cli import demo
from CalciumScoringLib.phantom import make_phantom, phantom_ijk_to_lps, write_phantom_dicom, write_phantom_labels
from quantgpu.cli import main
from quantgpu.io import write_ct_series, write_nrrd

RESULT_KEYS = {
    "agatston",
    "volume_mm3",
    "mass_mg",
    "category",
    "cac_drs",
    "slice_increment_mm",
    "parameters",
    "backend",
    "lesion_count",
}
ARTERY_KEYS = {"agatston", "volume_mm3", "mass_mg", "lesion_count"}


@pytest.fixture(scope="module")
def phantom_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("calcium_cli")
    write_phantom_dicom(root / "ct")
    write_phantom_labels(root / "labels.nrrd")
    hu, labels, truth = make_phantom()
    write_nrrd(root / "ct.nrrd", hu, truth["spacing"], phantom_ijk_to_lps())
    write_nrrd(root / "small_labels.nrrd", labels[:, :, :-1], truth["spacing"], phantom_ijk_to_lps())
    return root


def run_cli(capsys, *argv):
    code = main(["calcium", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def test_json_with_labels_and_calibration(phantom_files, capsys):
    code, out, err = run_cli(
        capsys,
        phantom_files / "ct",
        "--labels",
        phantom_files / "labels.nrrd",
        "--mass-calibration",
        "0.8",
        "--backend",
        "cpu",
        "--json",
        "-",
    )
    assert code == 0, err
    result = json.loads(out)
    assert RESULT_KEYS | {"per_artery", "unassigned"} <= set(result)
    assert (result["agatston"], result["volume_mm3"], result["mass_mg"]) == pytest.approx((580.0, 522.0, 243.6))
    assert (result["category"], result["cac_drs"], result["slice_increment_mm"]) == (">400", "A3/N4", 3.0)
    assert set(result["per_artery"]) == {"LM", "LAD", "LCX", "RCA"}
    assert all(set(a) == ARTERY_KEYS for a in result["per_artery"].values())
    assert result["per_artery"]["LAD"]["agatston"] == pytest.approx(400.0)
    assert result["parameters"]["mass_calibration_mg_per_cm3_per_hu"] == 0.8
    assert result["parameters"]["kvp"] == 120.0  # read from the DICOM header
    assert result["backend"] == "numpy"


def test_without_labels_mass_is_null(phantom_files, capsys):
    code, out, err = run_cli(capsys, phantom_files / "ct.nrrd", "--json", "-", "--backend", "cpu")
    assert code == 0, err
    result = json.loads(out)
    assert result["mass_mg"] is None and "per_artery" not in result
    assert result["agatston"] == pytest.approx(580.0) and result["cac_drs"] == "A3"


def test_parameters_from_flags(phantom_files, capsys):
    code, out, _ = run_cli(
        capsys,
        phantom_files / "ct.nrrd",
        "--profile",
        "siemens",
        "--threshold-hu",
        "130",
        "--connectivity",
        "4",
        "--calibration-hu",
        "250",
        "0",
        "--json",
        "-",
    )
    result = json.loads(out)
    p = result["parameters"]
    assert code == 0 and (p["profile"], p["min_area_mm2"], p["connectivity"]) == ("siemens", None, 4)
    assert p["mass_calibration_mg_per_cm3_per_hu"] == pytest.approx(0.8)
    assert result["mass_mg"] == pytest.approx(243.6)
    code, out, _ = run_cli(capsys, phantom_files / "ct.nrrd", "--min-area-mm2", "1.5", "--json", "-")
    assert json.loads(out)["agatston"] == pytest.approx(560.0)  # the 1 mm2 rods drop out
    assert "volume_interpolated_mm3" not in json.loads(out)


def test_mesa_risk_factors(phantom_files, tmp_path, capsys):
    """C12 patient (male, 70, Hispanic, SBP 130, HDL 50, TC 190, BP medication) with the phantom's CAC 580."""
    factors = {
        "age": 70,
        "male": True,
        "race": "hispanic",
        "systolic_bp_mmhg": 130,
        "hdl_mg_dl": 50,
        "total_cholesterol_mg_dl": 190,
        "bp_medication": True,
    }
    (tmp_path / "risk.json").write_text(json.dumps(factors))
    code, out, err = run_cli(capsys, phantom_files / "ct.nrrd", "--risk-factors", tmp_path / "risk.json", "--json", "-")
    assert code == 0, err
    mesa = json.loads(out)["mesa"]
    # 1 - 0.99833 ** exp(sum beta x), sum = 2.9225 + 0.2743 ln(581) (calcium.md 2.4)
    linear = 0.0172 * 70 + 0.4079 - 0.0222 + 0.0043 * 190 - 0.0114 * 50 + 0.0066 * 130 + 0.2278 + 0.2743 * np.log(581)
    assert mesa["risk_percent"] == pytest.approx(100 * (1 - 0.99833 ** np.exp(linear)))
    assert mesa["arterial_age_years"] == pytest.approx(39.1 + 7.25 * np.log(581))
    (tmp_path / "bad.json").write_text('{"age": 70, "male": true, "weight": 80}')
    code, _, err = run_cli(capsys, phantom_files / "ct.nrrd", "--risk-factors", tmp_path / "bad.json")
    assert code == 2 and "Traceback" not in err and "risk factors" in err


def test_overlapping_reconstruction(tmp_path, capsys):
    """3 mm thick slices every 1.5 mm: the increment (from positions) normalises, not the thickness."""
    hu = np.zeros((6, 20, 20))
    hu[1:5, 4:10, 4:10] = 450  # 4 slices x 1.5 mm = 6 mm rod, 9 mm2
    write_ct_series(tmp_path / "ct", hu, (1.5, 0.5, 0.5), slice_thickness_mm=3.0)
    code, out, err = run_cli(capsys, tmp_path / "ct", "--json", "-")
    assert code == 0, err
    result = json.loads(out)
    assert result["slice_increment_mm"] == pytest.approx(1.5)
    assert result["agatston"] == pytest.approx(72.0) and result["volume_mm3"] == pytest.approx(54.0)
    code, out, err = run_cli(capsys, tmp_path / "ct", "--interpolated-volume", "--json", "-")
    result = json.loads(out)
    assert code == 0, err
    assert result["parameters"]["interpolated_voxel_mm"] == pytest.approx([0.5, 0.5, 0.5])
    # z samples every 0.5 mm at (m + 0.5) x 0.5 - 0.75 mm; slice centres 0, 1.5, ...; the rod (450 HU) fills
    # 1.5..6 mm and falls to 0 at 0 and 7.5 mm, >= 130 HU from 1.5 x 130/450 = 0.433 to 7.067 mm:
    # samples 0.5, 1.0, ..., 7.0 -> 14 x 9 mm2 x 0.5 mm = 63 mm3
    assert result["volume_interpolated_mm3"] == pytest.approx(63.0)


def test_output_dir_and_no_overwrite(phantom_files, tmp_path, capsys):
    args = [
        phantom_files / "ct",
        "--labels",
        phantom_files / "labels.nrrd",
        "--mass-calibration",
        "0.8",
        "--output-dir",
        tmp_path / "out",
        "--no-3d",
        "--backend",
        "cpu",
    ]
    code, out, err = run_cli(capsys, *args)
    assert code == 0, err
    assert "Agatston 580.0 (>400, A3/N4)" in out  # the summary line
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == [
        "calcium_report.pdf",
        "calcium_result.json",
        "calcium_scores.csv",
        "calcium_seg.dcm",
        "calcium_sr.dcm",
    ]
    stored = json.loads((tmp_path / "out" / "calcium_result.json").read_text())
    assert stored["agatston"] == pytest.approx(580.0) and stored["outputs"]["seg"].endswith("calcium_seg.dcm")
    before = (tmp_path / "out" / "calcium_sr.dcm").read_bytes()
    code, _out, err = run_cli(capsys, *args)
    assert code == 2 and "exists" in err and "--force" in err
    assert (tmp_path / "out" / "calcium_sr.dcm").read_bytes() == before
    code, _out, err = run_cli(capsys, *args, "--force")
    assert code == 0, err
    assert (tmp_path / "out" / "calcium_sr.dcm").read_bytes() != before


def test_nrrd_input_writes_no_dicom(phantom_files, tmp_path, capsys):
    code, out, err = run_cli(capsys, phantom_files / "ct.nrrd", "--output-dir", tmp_path, "--no-3d", "--json", "-")
    assert code == 0, err
    outputs = json.loads(out)["outputs"]
    assert outputs["seg"] is None and outputs["sr"] is None and "need DICOM input" in outputs["dicom_note"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "calcium_report.pdf",
        "calcium_result.json",
        "calcium_scores.csv",
    ]


def _assert_one_line_error(code, err, needle):
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err and needle in err


def test_bad_inputs_exit_2(phantom_files, tmp_path, capsys):
    code, _, err = run_cli(capsys, "/no/such/dir")
    _assert_one_line_error(code, err, "no such file")
    code, _, err = run_cli(capsys, phantom_files / "ct", "--labels", phantom_files / "small_labels.nrrd")
    _assert_one_line_error(code, err, "does not match the CT grid")
    write_ct_series(tmp_path / "mr", np.full((3, 16, 16), 100.0), (3.0, 1.0, 1.0), modality="MR")
    code, _, err = run_cli(capsys, tmp_path / "mr")
    _assert_one_line_error(code, err, "not CT")
    write_ct_series(tmp_path / "air", np.full((3, 16, 16), -1000.0), (3.0, 1.0, 1.0))
    code, _, err = run_cli(capsys, tmp_path / "air")
    _assert_one_line_error(code, err, "no tissue")
    (tmp_path / "empty").mkdir()
    code, _, err = run_cli(capsys, tmp_path / "empty")
    assert code == 2 and "Traceback" not in err
    code, _, err = run_cli(capsys, phantom_files / "ct.nrrd", "--connectivity", "6")
    assert code == 2 and "Traceback" not in err


def test_exit_code_in_a_real_process():
    proc = subprocess.run(
        [sys.executable, "-m", "quantgpu.cli", "calcium", "/no/such/dir"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "/no/such/dir" in proc.stderr


def test_demo_writes_everything(tmp_path):
    out = demo(tmp_path / "demo", backend="cpu")
    assert (out["agatston"], out["volume_mm3"], out["mass_mg"]) == pytest.approx((580.0, 522.0, 243.6))
    assert out["summary"].startswith("Agatston 580.0 (>400, A3/N4), volume 522.0 mm3, mass 243.6 mg, 9 lesions")
    for kind in ("seg", "sr", "pdf", "csv", "json"):
        assert (tmp_path / "demo" / out["outputs"][kind].split("/")[-1]).is_file(), kind
    stored = json.loads((tmp_path / "demo" / "calcium_result.json").read_text())
    assert stored["summary"] == out["summary"]
    # 2 key axial images (the rods lie in 2 slices) + the 3D rendering
    pdf = tmp_path / "demo" / "calcium_report.pdf"
    listing = subprocess.run(["pdfimages", "-list", str(pdf)], capture_output=True, text=True, check=True).stdout
    assert len(listing.strip().splitlines()) - 2 == 3
    with pytest.raises(Exception, match="exists"):
        demo(tmp_path / "demo", backend="cpu")
