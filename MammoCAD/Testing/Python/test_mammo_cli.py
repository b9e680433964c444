"""``quantgpu mammo``: exit codes, result JSON keys (issue 5 item 9), outputs, demo."""

from __future__ import annotations

import json

import pydicom
import pytest

from MammoCADLib import cli, mgio
from MammoCADLib.operating_points import OPERATING_POINTS
from quantgpu.cli import main

IMAGE_KEYS = {
    "file",
    "sop_instance_uid",
    "laterality",
    "view",
    "pixel_spacing_mm",
    "breast_area_fraction",
    "breast_area_cm2",
    "percent_density",
    "density_category",
    "findings",
}
FINDING_KEYS = {"type", "center_px", "bbox_px", "score", "displayed", "n_calcifications"}
SHAPE = (1024, 832)


@pytest.fixture(scope="module")
def exam(tmp_path_factory):
    return mgio.write_phantom_exam(tmp_path_factory.mktemp("exam"), shape=SHAPE, seed=2)


@pytest.fixture(scope="module")
def exam_without_spacing(tmp_path_factory):
    """Two views written without any spacing tag (mm outputs must then be null)."""
    out = tmp_path_factory.mktemp("nospacing")
    from MammoCADLib.phantom import make_phantom

    paths = []
    for lat in ("L", "R"):
        p = make_phantom(shape=SHAPE, view="CC", laterality=lat, seed=7)
        paths.append(mgio.write_mg(out / f"{lat}CC.dcm", p.image, None, lat, "CC"))
    return out


def _run(capsys, *argv):
    code = main(["mammo", *map(str, argv)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_result_json_keys_and_values(capsys, exam):
    code, out, err = _run(capsys, exam[0].parent, "--json", "-", "--backend", "cpu")
    assert code == 0, err
    result = json.loads(out)
    assert {"images", "operating_point", "backend"} <= set(result)
    assert result["operating_point"] == "balanced" and result["backend"] == "numpy"
    assert len(result["images"]) == 4
    headers = {str(p.resolve()): pydicom.dcmread(p, stop_before_pixels=True) for p in exam}
    for image in result["images"]:
        assert set(image) == IMAGE_KEYS
        ds = headers[image["file"]]
        assert image["sop_instance_uid"] == ds.SOPInstanceUID
        assert (image["laterality"], image["view"]) == (ds.ImageLaterality, ds.ViewPosition)
        assert image["pixel_spacing_mm"] == pytest.approx(0.07)
        # cm² = fraction × rows × cols × spacing² / 100 (mm² -> cm²)
        expected_cm2 = image["breast_area_fraction"] * SHAPE[0] * SHAPE[1] * 0.07**2 / 100.0
        assert image["breast_area_cm2"] == pytest.approx(expected_cm2, rel=1e-6)
        assert image["density_category"] in ("a", "b", "c", "d")
        for f in image["findings"]:
            assert set(f) == FINDING_KEYS
            assert f["type"] in ("calcification_cluster", "mass")
            r, c = f["center_px"]
            r0, c0, r1, c1 = f["bbox_px"]
            assert 0 <= r < SHAPE[0] and 0 <= c < SHAPE[1]
            assert r0 <= r <= r1 and c0 <= c <= c1
            assert (f["n_calcifications"] is None) == (f["type"] == "mass")
            threshold = OPERATING_POINTS["balanced"][f["type"]]
            assert f["displayed"] == (f["score"] >= threshold)


def test_operating_point_changes_displayed_marks_only(capsys, exam):
    counts, candidates = {}, set()
    for name in ("high-sensitivity", "high-specificity"):
        code, out, err = _run(capsys, *exam, "--operating-point", name, "--json", "-", "--backend", "cpu")
        assert code == 0, err
        result = json.loads(out)
        assert result["operating_point"] == name
        counts[name] = sum(f["displayed"] for i in result["images"] for f in i["findings"])
        candidates.add(json.dumps([[(f["type"], f["center_px"]) for f in i["findings"]] for i in result["images"]]))
    assert len(candidates) == 1  # every candidate is reported whatever the operating point
    assert counts["high-sensitivity"] >= counts["high-specificity"]


def test_missing_spacing_gives_null_mm_outputs_and_user_spacing_restores_them(capsys, exam_without_spacing):
    code, out, err = _run(capsys, exam_without_spacing, "--json", "-", "--backend", "cpu")
    assert code == 0, err
    result = json.loads(out)
    for image in result["images"]:
        assert image["pixel_spacing_mm"] is None and image["breast_area_cm2"] is None
        assert any("pixel spacing unknown" in w for w in result["warnings"][image["file"]])
    code, out, err = _run(capsys, exam_without_spacing, "--pixel-spacing", "0.1", "--json", "-", "--backend", "cpu")
    assert code == 0, err
    for image in json.loads(out)["images"]:
        assert image["pixel_spacing_mm"] == 0.1
        assert image["breast_area_cm2"] == pytest.approx(
            image["breast_area_fraction"] * SHAPE[0] * SHAPE[1] * 0.01 / 100
        )


def test_output_dir_files_and_overwrite_rules(capsys, exam, tmp_path):
    out_dir = tmp_path / "out"
    code, out, err = _run(capsys, *exam[:2], "--output-dir", out_dir, "--backend", "cpu")
    assert code == 0, err
    assert "mark(s)" in out  # the one-line summary without --json
    names = {p.name for p in out_dir.iterdir()}
    assert {"cad_sr.dcm", "result.json", "overview.png", "overview.pdf"} <= names
    assert len([n for n in names if n.startswith("seg_")]) == 2
    sr = pydicom.dcmread(out_dir / "cad_sr.dcm")
    assert sr.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.50"
    result = json.loads((out_dir / "result.json").read_text())
    displayed = sum(f["displayed"] for i in result["images"] for f in i["findings"])
    summary = sr.ContentSequence[2]
    assert len(summary.get("ContentSequence", [])) == displayed  # one SR finding per displayed mark
    assert (out_dir / "overview.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out_dir / "overview.pdf").read_bytes()[:5] == b"%PDF-"
    code, _, err = _run(capsys, *exam[:2], "--output-dir", out_dir, "--backend", "cpu")
    assert code == 2 and "exists" in err and len(err.strip().splitlines()) == 1
    code, _, err = _run(capsys, *exam[:2], "--output-dir", out_dir, "--backend", "cpu", "--force")
    assert code == 0, err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ((), "required"),
        (("/nonexistent/mammo.dcm",), "no such file"),
        (("--operating-point", "everything"), "unknown operating point"),
        (("--pixel-spacing", "abc"), "not a number"),
        (("--pixel-spacing", "0"), "outside"),
        (("--backend", "tpu"), "invalid choice"),
    ],
)
def test_bad_usage_exits_2_with_one_line(capsys, exam, argv, message):
    args = list(argv)
    if args and args[0].startswith("--"):
        args = [str(exam[0]), *args]
    code, _out, err = _run(capsys, *args)
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1


def test_non_mammogram_input_exits_2_naming_the_file(capsys, tmp_path):
    bad = tmp_path / "report.txt"
    bad.write_text("hello")
    code, _, err = _run(capsys, bad)
    assert code == 2 and "report.txt" in err and "not a readable DICOM" in err


def test_demo_writes_exam_and_outputs(tmp_path):
    result = cli.demo(tmp_path / "demo", backend="cpu")
    assert "mark(s)" in result["summary"]
    assert len(result["images"]) == 4
    assert (tmp_path / "demo" / "dicom" / "truth.json").exists()
    assert (tmp_path / "demo" / "cad_sr.dcm").exists()
    with pytest.raises(Exception, match="exists"):
        cli.demo(tmp_path / "demo", backend="cpu")
