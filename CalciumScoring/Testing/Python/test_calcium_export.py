"""DICOM SEG, TID 1500 SR, CSV and PDF of the phantom: validators pass, values read back equal.

Expected values are the phantom table of calcium.md section 5 and the artery layout of
phantom.py (5 mm rods LAD, 3 mm LCX, 1 mm 200 mg/cm3 LM, 1 mm 400 RCA, 1 mm 800 unassigned).
"""

from __future__ import annotations

import csv
import subprocess

import highdicom as hd
import numpy as np
import pytest
from pydicom import dcmread

from CalciumScoringLib.agatston import CalciumParameters, score_calcium
from CalciumScoringLib.export import csv_text, write_csv, write_seg, write_sr
from CalciumScoringLib.phantom import make_phantom, write_phantom_dicom
from CalciumScoringLib.report import key_slices, write_pdf
from quantgpu.errors import InputError, OutputExistsError
from quantgpu.io import load_volume
from quantgpu.validate import dciodvfy, validate

# name: (agatston, volume mm3, mass mg at c_HA = 0.8, voxels = volume / 0.75 mm3)
EXPECTED = {
    "LM": (4.0, 6.0, 1.2),
    "LAD": (400.0, 360.0, 168.0),
    "LCX": (160.0, 144.0, 67.2),
    "RCA": (8.0, 6.0, 2.4),
    "Unassigned": (8.0, 6.0, 4.8),
}


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    root = tmp_path_factory.mktemp("calcium_export")
    write_phantom_dicom(root / "ct")
    volume = load_volume(root / "ct")
    _hu, labels, _truth = make_phantom()
    params = CalciumParameters(mass_calibration_mg_per_cm3_per_hu=0.8, calibration_source="test value")
    result = score_calcium(volume.array, volume.spacing, labels=labels, params=params, backend="cpu")
    seg_path, seg = write_seg(result, volume.headers, root / "seg.dcm", algorithm_type="SEMIAUTOMATIC")
    sr_path, _sr = write_sr(result, volume.headers, root / "sr.dcm", seg=seg)
    return root, volume, result, seg_path, sr_path


def test_seg_passes_dciodvfy(scored):
    _root, _volume, _result, seg_path, _sr = scored
    ok, messages = validate(seg_path)
    assert ok, messages


def test_seg_reads_back(scored):
    _root, volume, _result, seg_path, _sr = scored
    seg = hd.seg.segread(seg_path)
    assert seg.SegmentationType == "BINARY"
    assert seg.BodyPartExamined == volume.headers[0].BodyPartExamined == "HEART"
    assert seg.SeriesInstanceUID != volume.series_instance_uid
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == volume.series_instance_uid
    labels = {int(d.SegmentNumber): d.SegmentLabel for d in seg.SegmentSequence}
    assert sorted(labels.values()) == sorted(
        f"Calcium {n}" if n != "Unassigned" else "Calcium unassigned" for n in EXPECTED
    )
    uids = [ds.SOPInstanceUID for ds in volume.headers]
    pixels = seg.get_pixels_by_source_instance(uids, combine_segments=True, skip_overlap_checks=True)
    for number, label in labels.items():
        name = label.split()[-1].replace("unassigned", "Unassigned")
        assert np.count_nonzero(pixels == number) * 0.75 == pytest.approx(EXPECTED[name][1]), name
        description = seg.get_segment_description(number)
        assert description.segmented_property_type.value == "18115005"
        assert description.segmented_property_category.value == "49755003"
    lad = next(n for n, label in labels.items() if label == "Calcium LAD")
    assert seg.get_segment_description(lad).anatomic_regions[0].value == "59438005"


def test_sr_passes_dciodvfy_and_dsrdump(scored):
    ok, messages = validate(scored[4])
    assert ok, messages


def test_sr_reads_back(scored):
    _root, volume, result, seg_path, sr_path = scored
    sr = hd.sr.srread(sr_path)
    assert sr.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.34"  # Comprehensive 3D SR
    report = sr.content
    seg_uid = dcmread(seg_path, stop_before_pixels=True).SOPInstanceUID
    groups = report.get_volumetric_roi_measurement_groups()
    assert {g.tracking_identifier for g in groups} == {
        f"Calcium {n}" if n != "Unassigned" else "Calcium unassigned" for n in EXPECTED
    }
    sites = {"LM": "3227004", "LAD": "59438005", "LCX": "57396003", "RCA": "13647002", "Unassigned": "41801008"}
    for g in groups:
        name = g.tracking_identifier.split()[-1].replace("unassigned", "Unassigned")
        values = {m.name.value: (m.value, m.unit.value) for m in g.get_measurements()}
        agatston, volume_mm3, mass = EXPECTED[name]
        assert values["450360000"] == (pytest.approx(agatston), "1")
        assert values["122660"] == (pytest.approx(volume_mm3), "mm3")
        assert values["122661"] == (pytest.approx(mass), "mg")
        assert g.finding_type.value == "18115005"
        assert g.finding_sites[0].value.value == sites[name]
        assert g.referenced_segment[0].ReferencedSOPSequence[0].ReferencedSOPInstanceUID == seg_uid
    # the total group (TID 1501)
    totals = report.get_image_measurement_groups()
    assert len(totals) == 1
    values = {m.name.value: m.value for m in totals[0].get_measurements()}
    assert values == pytest.approx({"450360000": 580.0, "122660": 522.0, "122661": 243.6})
    assert totals[0].finding_sites[0].value.value == "41801008"
    evidence = {
        item.SeriesInstanceUID for item in sr.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence
    }
    assert volume.series_instance_uid in evidence and len(evidence) == 2  # the CT and the SEG
    assert result.agatston == 580.0


def test_sr_procedure_code(scored):
    ds = dcmread(scored[4])
    procedure = [
        item.ConceptCodeSequence[0].CodeValue
        for item in ds.ContentSequence
        if item.ConceptNameCodeSequence[0].CodeValue == "121058"
    ]  # DCM "Procedure reported"
    assert procedure == ["426005005"]


def test_csv(scored, tmp_path):
    _root, _volume, result, _seg, _sr = scored
    path = write_csv(result, tmp_path / "scores.csv")
    rows = list(csv.DictReader(path.open()))
    by_name = {r["territory"]: r for r in rows}
    assert list(by_name) == ["LM", "LAD", "LCX", "RCA", "Unassigned", "Total"]
    for name, (agatston, volume_mm3, mass) in EXPECTED.items():
        r = by_name[name]
        assert (float(r["agatston"]), float(r["volume_mm3"]), float(r["mass_mg"])) == pytest.approx(
            (agatston, volume_mm3, mass)
        )
    total = by_name["Total"]
    assert (float(total["agatston"]), total["category"], total["cac_drs"], total["lesion_count"]) == (
        580.0,
        ">400",
        "A3/N4",
        "9",
    )
    with pytest.raises(OutputExistsError):
        write_csv(result, path)


def test_csv_without_calibration_has_empty_mass():
    hu, _labels, truth = make_phantom()
    result = score_calcium(hu, truth["spacing"], backend="cpu")
    rows = list(csv.DictReader(csv_text(result).splitlines()))
    assert [r["territory"] for r in rows] == ["Total"] and rows[0]["mass_mg"] == ""


def test_pdf_report(scored, tmp_path):
    _root, volume, result, _seg, _sr = scored
    path = write_pdf(result, tmp_path / "report.pdf", hu=volume.array, source="ct", headers=volume.headers)
    text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout
    for needle in ("580.0", "522.0", "243.6", "A3/N4", ">400", "LAD", "Unassigned", "standard", "0.8", "test value"):
        assert needle in text, needle
    images = subprocess.run(["pdfimages", "-list", str(path)], capture_output=True, text=True, check=True).stdout
    assert len(images.strip().splitlines()) - 2 == len(key_slices(result.lesion_labels)) == 2  # rods on 2 slices
    with pytest.raises(OutputExistsError):
        write_pdf(result, path, hu=volume.array)


def test_zero_calcium_writes_sr_without_seg(tmp_path):
    from quantgpu.io import write_ct_series

    write_ct_series(tmp_path / "ct", np.full((3, 16, 16), 40.0), (3.0, 0.5, 0.5), body_part="HEART")
    volume = load_volume(tmp_path / "ct")
    result = score_calcium(volume.array, volume.spacing, backend="cpu")
    assert write_seg(result, volume.headers, tmp_path / "seg.dcm") is None
    sr_path, _ = write_sr(result, volume.headers, tmp_path / "sr.dcm")
    ok, messages = validate(sr_path)
    assert ok, messages
    groups = hd.sr.srread(sr_path).content.get_image_measurement_groups()
    assert {m.name.value: m.value for m in groups[0].get_measurements()} == {"450360000": 0.0, "122660": 0.0}


def test_dicom_outputs_need_dicom_input(scored):
    _root, _volume, result, _seg, _sr = scored
    with pytest.raises(InputError, match="needs DICOM input"):
        write_seg(result, [], "/tmp/never.dcm")


def test_validator_reports_errors(scored, tmp_path):
    files = sorted((scored[0] / "ct").glob("*.dcm"))
    ds = dcmread(files[0])
    del ds.ImageType  # type 1 in the CT Image module
    broken = tmp_path / "broken.dcm"
    ds.save_as(broken, enforce_file_format=True)
    ok, messages = dciodvfy(broken)
    assert not ok and any(m.startswith("Error") for m in messages)
    assert validate(files[0])[0]
