"""Mammography CAD SR (TID 4000), mammo.md §6 and M12: validated by dciodvfy and dsrdump."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pydicom
import pytest

from MammoCADLib import cad_sr, mgio

needs_tools = pytest.mark.skipif(
    shutil.which("dciodvfy") is None or shutil.which("dsrdump") is None, reason="dicom3tools/dcmtk missing"
)
FOUR_VIEWS = [("R", "CC"), ("L", "CC"), ("R", "MLO"), ("L", "MLO")]
SHAPE = (120, 96)


def _exam(tmp_path):
    rr, cc = np.mgrid[0 : SHAPE[0], 0 : SHAPE[1]]
    left = np.exp(-((rr - SHAPE[0] / 2) ** 2 + cc**2) / (2 * 40.0**2)).astype(np.float32)
    study = {"StudyInstanceUID": pydicom.uid.generate_uid(), "SeriesInstanceUID": pydicom.uid.generate_uid()}
    images = []
    for n, (lat, view) in enumerate(FOUR_VIEWS):
        image = left if lat == "L" else left[:, ::-1]
        path = mgio.write_mg(tmp_path / f"{lat}{view}.dcm", image, 0.07, lat, view, study=study, instance_number=n + 1)
        m = mgio.read_mammogram(path)
        images.append(cad_sr.SRImage(m.dataset, m.laterality, m.view))
    return images


def _dsrdump(path):
    run = subprocess.run(["dsrdump", "-Ee", str(path)], capture_output=True, text=True, check=False)
    return run.returncode, run.stdout + run.stderr


def _dciodvfy_errors(path):
    run = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, check=False)
    return [line for line in (run.stdout + run.stderr).splitlines() if line.startswith("Error")]


FINDINGS = [
    cad_sr.SRFinding(0, "mass", (60, 70), 81.0),
    cad_sr.SRFinding(3, "calcification_cluster", (10, 20), 55.5),
    cad_sr.SRFinding(3, "mass", (119, 95), 50.0),  # the last pixel: its centre is (95.5, 119.5)
]


@needs_tools
def test_four_image_cad_sr_passes_validators_and_lists_exactly_the_inputs(tmp_path):
    images = _exam(tmp_path)
    path = cad_sr.write_cad_sr(tmp_path / "cad_sr.dcm", cad_sr.build_cad_sr(images, FINDINGS))
    assert _dciodvfy_errors(path) == []
    code, text = _dsrdump(path)
    assert code == 0
    assert not [line for line in text.splitlines() if line.startswith("E:")]

    ds = pydicom.dcmread(path)
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.50"
    assert ds.file_meta.MediaStorageSOPClassUID == "1.2.840.10008.5.1.4.1.1.88.50"
    assert ds.ConceptNameCodeSequence[0].CodeValue == "111036"
    assert ds.ConceptNameCodeSequence[0].CodingSchemeDesignator == "DCM"
    template = ds.ContentTemplateSequence[0]
    assert (template.MappingResource, template.TemplateIdentifier) == ("DCMR", "4000")
    # Image Library: exactly the input SOP Instance UIDs, in input order
    assert cad_sr.image_library_uids(ds) == [i.dataset.SOPInstanceUID for i in images]
    # Evidence lists the same instances
    evidence = {
        sop.ReferencedSOPInstanceUID
        for study in ds.CurrentRequestedProcedureEvidenceSequence
        for series in study.ReferencedSeriesSequence
        for sop in series.ReferencedSOPSequence
    }
    assert evidence == {i.dataset.SOPInstanceUID for i in images}


def test_findings_points_certainty_and_references(tmp_path):
    images = _exam(tmp_path)
    ds = cad_sr.build_cad_sr(images, FINDINGS)
    points = cad_sr.finding_points(ds)
    assert len(points) == len(FINDINGS)
    expected_codes = {"mass": "129788004", "calcification_cluster": "129769006"}
    for got, want in zip(points, FINDINGS):
        row, col = want.center_px
        # SCOORD (0, 0) is the outer corner of the top-left pixel: centre of (r, c) is (c + 0.5, r + 0.5).
        assert got["point"] == pytest.approx([col + 0.5, row + 0.5])
        assert got["code"] == expected_codes[want.type]
        assert got["certainty_percent"] == pytest.approx(want.certainty_percent)
        image = images[want.image_index].dataset
        assert got["sop_instance_uid"] == image.SOPInstanceUID
        assert 0 <= got["point"][0] <= image.Columns and 0 <= got["point"][1] <= image.Rows


def test_tree_rows_by_hand(tmp_path):
    """Template rows that dsrdump does not check (it says "template constraints not yet supported")."""
    ds = cad_sr.build_cad_sr(_exam(tmp_path), FINDINGS)
    top = [(i.RelationshipType, i.ValueType, i.ConceptNameCodeSequence[0].CodeValue) for i in ds.ContentSequence]
    assert top == [
        ("HAS CONCEPT MOD", "CODE", "121049"),
        ("CONTAINS", "CONTAINER", "111028"),
        ("CONTAINS", "CODE", "111017"),
        ("CONTAINS", "CODE", "111064"),
        ("CONTAINS", "CODE", "111065"),
    ]
    library, summary, detections, analyses = ds.ContentSequence[1:]
    for entry in library.ContentSequence:  # TID 4020 entries are unnamed
        assert entry.ValueType == "IMAGE" and "ConceptNameCodeSequence" not in entry
        context = [(c.RelationshipType, c.ConceptNameCodeSequence[0].CodeValue) for c in entry.ContentSequence]
        assert context == [("HAS ACQ CONTEXT", "111027"), ("HAS ACQ CONTEXT", "111031")]
    assert [e.ContentSequence[0].ConceptCodeSequence[0].CodeValue for e in library.ContentSequence] == [
        "73056007",
        "80248007",
        "73056007",
        "80248007",
    ]
    assert summary.ConceptCodeSequence[0].CodeValue == "111242"  # with findings (111241 is without)
    assert len(summary.ContentSequence) == len(FINDINGS)
    for impression in summary.ContentSequence:
        assert impression.RelationshipType == "INFERRED FROM"
        name = impression.ConceptNameCodeSequence[0]
        assert (name.CodeValue, name.CodeMeaning) == ("111034", "Individual Impression/Recommendation")
        assert "\u200b" not in name.CodeMeaning
        intent, finding = impression.ContentSequence
        assert intent.ConceptNameCodeSequence[0].CodeValue == "111056"
        assert intent.ConceptCodeSequence[0].CodeValue == "111150"
        scoord = next(c for c in finding.ContentSequence if c.ValueType == "SCOORD")
        assert scoord.GraphicType == "POINT"
        selected = scoord.ContentSequence[0]
        assert selected.RelationshipType == "SELECTED FROM" and "ConceptNameCodeSequence" not in selected
    assert detections.ConceptCodeSequence[0].CodeValue == "111222"
    successful = detections.ContentSequence[0]
    assert successful.ConceptNameCodeSequence[0].CodeValue == "111063"
    for performed in successful.ContentSequence:
        refs = [
            c.ReferencedContentItemIdentifier
            for c in performed.ContentSequence
            if "ReferencedContentItemIdentifier" in c
        ]
        assert [list(r) for r in refs] == [[1, 2, k] for k in range(1, 5)]  # each Image Library entry
    assert analyses.ConceptCodeSequence[0].CodeValue == "111225"


@needs_tools
def test_report_without_findings_says_so(tmp_path):
    ds = cad_sr.build_cad_sr(_exam(tmp_path), [])
    path = cad_sr.write_cad_sr(tmp_path / "sr.dcm", ds)
    assert ds.ContentSequence[2].ConceptCodeSequence[0].CodeValue == "111241"
    assert "ContentSequence" not in ds.ContentSequence[2]
    assert _dsrdump(path)[0] == 0
    assert cad_sr.finding_points(ds) == []


@needs_tools
def test_negative_control_code_containing_container_fails_dsrdump(tmp_path):
    """The validator must be able to fail: a CODE item that CONTAINS a CONTAINER breaks the IOD rules."""
    ds = cad_sr.build_cad_sr(_exam(tmp_path), FINDINGS)
    analyses = ds.ContentSequence[4]
    bad = pydicom.Dataset()
    bad.RelationshipType = "CONTAINS"
    bad.ValueType = "CONTAINER"
    bad.ContinuityOfContent = "SEPARATE"
    name = pydicom.Dataset()
    name.CodeValue, name.CodingSchemeDesignator, name.CodeMeaning = "111028", "DCM", "Image Library"
    bad.ConceptNameCodeSequence = [name]
    analyses.ContentSequence = [bad]
    path = cad_sr.write_cad_sr(tmp_path / "bad.dcm", ds)
    code, text = _dsrdump(path)
    assert code == 1
    assert "Invalid by-value Relationship" in text


def test_bad_findings_are_refused(tmp_path):
    images = _exam(tmp_path)
    with pytest.raises(ValueError, match="outside"):
        cad_sr.build_cad_sr(images, [cad_sr.SRFinding(0, "mass", (SHAPE[0], 5), 50.0)])
    with pytest.raises(ValueError, match="unknown finding type"):
        cad_sr.build_cad_sr(images, [cad_sr.SRFinding(0, "vessel", (5, 5), 50.0)])
    with pytest.raises(ValueError, match="image 4 of 4"):
        cad_sr.build_cad_sr(images, [cad_sr.SRFinding(4, "mass", (5, 5), 50.0)])


def test_writer_refuses_to_overwrite(tmp_path):
    ds = cad_sr.build_cad_sr(_exam(tmp_path), [])
    cad_sr.write_cad_sr(tmp_path / "sr.dcm", ds)
    with pytest.raises(Exception, match="exists"):
        cad_sr.write_cad_sr(tmp_path / "sr.dcm", ds)
