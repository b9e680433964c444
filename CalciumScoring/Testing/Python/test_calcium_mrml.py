"""CalciumScoring MRML layer: terminology, parameters from panel settings, label inputs, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from CalciumScoringLib import mrml as cmrml
from CalciumScoringLib.scenarios import table_as_rows, volume_node
from quantgpu.errors import InputError


def _two_lesions():
    hu = np.zeros((3, 20, 20), np.float32)
    hu[1, 2:6, 2:6] = 400  # 4 mm2, weight 4 -> 16
    hu[1, 10:14, 10:14] = 250  # 4 mm2, weight 2 -> 8
    return hu


def test_terminology_entries_deserialize_with_the_artery_codes(mrml):
    import slicer

    logic = mrml.app.terminologies_logic
    for name, (code, meaning) in cmrml.SITE_CODES.items():
        entry = slicer.vtkSlicerTerminologyEntry()
        assert logic.DeserializeTerminologyEntry(cmrml.terminology_entry(name), entry)
        assert entry.GetCategoryObject().GetCodeValue() == "49755003"
        assert entry.GetTypeObject().GetCodeValue() == "18115005"
        assert entry.GetRegionObject().GetCodeValue() == code
        assert entry.GetRegionObject().GetCodeMeaning() == meaning


def test_parameters_from_settings_profiles_overrides_and_calibration():
    assert cmrml.parameters_from_settings("siemens", min_area_mm2=0.0).min_area_mm2 is None
    assert cmrml.parameters_from_settings("philips", min_area_mm2=0.5).min_area_mm2 == 0.5
    canon = cmrml.parameters_from_settings("canon", min_area_mm2=0.0)
    assert (canon.min_area_mm2, canon.min_pixels) == (None, 3)
    assert cmrml.parameters_from_settings("standard", min_area_mm2=2.0).min_area_mm2 == 2.0
    assert cmrml.parameters_from_settings("ge", min_area_mm2=0.0).min_area_mm2 is None
    rods = cmrml.parameters_from_settings(calibration_mode="rods", rod_hu=260.0, water_hu=10.0)
    assert rods.mass_calibration_mg_per_cm3_per_hu == pytest.approx(200.0 / 250.0)
    assert "rod ROI 260 HU" in rods.calibration_source
    assert cmrml.parameters_from_settings().mass_calibration_mg_per_cm3_per_hu is None
    with pytest.raises(InputError, match="needs a calibration factor"):
        cmrml.parameters_from_settings(calibration_mode="factor")
    with pytest.raises(InputError, match="calibration mode"):
        cmrml.parameters_from_settings(calibration_mode="phantom")
    with pytest.raises(InputError, match="profile"):
        cmrml.parameters_from_settings("toshiba")


def test_artery_labels_from_a_segmentation_by_name_and_by_terminology(mrml):
    import slicer
    import slicer.util
    import vtk

    hu = _two_lesions()
    node = volume_node(mrml, hu)
    seg = mrml.scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "arteries")
    seg.SetReferenceImageGeometryParameterFromVolumeNode(node)
    labels = np.zeros(hu.shape, np.uint8)
    labels[:, 0:8, 0:8] = 1  # -> segment "Calcium LAD"
    labels[:, 8:16, 8:16] = 2  # -> segment "vessel B" carrying the RCA terminology code
    cmrml_ids = ["a", "b"]
    for seg_id, name in zip(cmrml_ids, ("Calcium LAD", "vessel B")):
        seg.GetSegmentation().AddEmptySegment(seg_id, name, (1, 0, 0))
    seg.GetSegmentation().GetSegment("b").SetTerminology(cmrml.terminology_entry("RCA"))
    temp = mrml.volumes_logic.CreateAndAddLabelVolume(mrml.scene, node, "tmp")
    slicer.util.updateVolumeFromArray(temp, labels)
    ids = vtk.vtkStringArray()
    for seg_id in cmrml_ids:
        ids.InsertNextValue(seg_id)
    assert slicer.vtkSlicerSegmentationsModuleLogic.ImportLabelmapToSegmentationNode(temp, seg, ids)

    run = cmrml.score_volume_node(mrml, node, labels_node=seg)
    rows = {r["Artery"]: r for r in table_as_rows(run.table_node)}
    assert rows["LAD"]["Agatston"] == 16.0 and rows["RCA"]["Agatston"] == 8.0
    assert rows["Total"]["Agatston"] == 24.0 and rows["Unassigned"]["Agatston"] == 0.0
    assert cmrml.stored_result(run.parameter_node)["cac_drs"] == "A1/N2"


def test_bad_inputs_are_input_errors(mrml):
    hu = _two_lesions()
    node = volume_node(mrml, hu)
    small = volume_node(mrml, np.zeros((3, 20, 19), np.uint8), name="labels", label=True)
    with pytest.raises(InputError, match="not on the grid"):
        cmrml.score_volume_node(mrml, node, labels_node=small)
    with pytest.raises(InputError, match="scalar volume"):
        cmrml.score_volume_node(mrml, mrml.scene.AddNewNodeByClass("vtkMRMLTableNode"))
    empty_seg = mrml.scene.AddNewNodeByClass("vtkMRMLSegmentationNode")
    empty_seg.GetSegmentation().AddEmptySegment("x", "heart", (1, 1, 1))
    with pytest.raises(InputError, match="no segment named LM"):
        cmrml.score_volume_node(mrml, node, labels_node=empty_seg)
    air = volume_node(mrml, np.full((2, 8, 8), -1000.0, np.float32), name="air")
    with pytest.raises(InputError, match="no tissue"):
        cmrml.score_volume_node(mrml, air)
    # nothing half-created after the errors
    assert mrml.scene.GetNumberOfNodesByClass("vtkMRMLTableNode") == 1


def test_zero_score_is_a_result_and_outputs_are_reused(mrml):
    node = volume_node(mrml, np.zeros((2, 8, 8), np.float32))
    run = cmrml.score_volume_node(mrml, node)
    assert table_as_rows(run.table_node)[-1]["Agatston"] == 0.0
    assert cmrml.stored_result(run.parameter_node)["category"] == "0"
    again = cmrml.score_volume_node(
        mrml,
        node,
        segmentation_node=run.segmentation_node,
        table_node=run.table_node,
        parameter_node=run.parameter_node,
    )
    assert again.segmentation_node is run.segmentation_node
    assert mrml.scene.GetNumberOfNodesByClass("vtkMRMLTableNode") == 1
    assert mrml.scene.GetNumberOfNodesByClass("vtkMRMLSegmentationNode") == 1
    assert run.segmentation_node.GetSegmentation().GetNumberOfSegments() == 5
    assert "Agatston 0.0 (category 0, CAC-DRS A0)" in run.parameter_node.GetParameter(cmrml.SUMMARY_PARAMETER)


def test_assignment_session_copies_the_input_labels(mrml):
    import slicer.util

    hu = _two_lesions()
    node = volume_node(mrml, hu)
    labels = np.zeros(hu.shape, np.uint8)
    labels[1, 10:14, 10:14] = 4  # second lesion pre-labelled RCA
    labels_node = volume_node(mrml, labels, name="labels", label=True)
    session = cmrml.ArteryAssignmentSession(mrml, node, labels_node=labels_node)
    assert session.label_node is not labels_node
    ras = session.ijk_to_ras @ np.array([3.0, 3.0, 1.0, 1.0])  # i=3, j=3 in slice 1: first lesion
    assert session.assign_at_ras(ras[:3], "LM").voxel_count == 16
    out = slicer.util.arrayFromVolume(session.label_node)
    assert int((out == 1).sum()) == 16 and int((out == 4).sum()) == 16
    assert np.array_equal(slicer.util.arrayFromVolume(labels_node), labels)  # input untouched
    run = cmrml.score_volume_node(mrml, node, labels_node=session.label_node)
    rows = {r["Artery"]: r for r in table_as_rows(run.table_node)}
    assert (rows["LM"]["Agatston"], rows["RCA"]["Agatston"]) == (16.0, 8.0)
    assert cmrml.stored_result(run.parameter_node)["cac_drs"] == "A1/N2"


def test_show_results_adds_volume_rendering_and_calcium_surfaces(mrml):
    node = volume_node(mrml, _two_lesions())
    run = cmrml.score_volume_node(mrml, node, show=True)
    assert mrml.volume_rendering_logic.GetFirstVolumeRenderingDisplayNode(node) is not None
    assert run.segmentation_node.GetSegmentation().ContainsRepresentation("Closed surface")


def test_sample_data_files_are_reproducible_and_load_in_slicer(mrml, tmp_path):
    import slicer

    from CalciumScoringLib import phantom, sample_data

    sources = sample_data.sample_sources(tmp_path)  # generates the files on first use
    paths = {s["sampleName"]: tmp_path / s["fileNames"] for s in sources}
    for source in sources:
        # the registered checksum is the one of the file written now: generation is deterministic
        assert source["checksums"] == f"SHA256:{sample_data.file_sha256(paths[source['sampleName']])}"
        assert source["uris"].startswith("file://")
    assert sources[1]["loadFileProperties"] == {"labelmap": True}
    nodes = {}
    for name, cls in (
        ("CalciumPhantom", "vtkMRMLScalarVolumeNode"),
        ("CalciumPhantomArteries", "vtkMRMLLabelMapVolumeNode"),
    ):
        node = mrml.scene.AddNewNodeByClass(cls, name)
        storage = mrml.scene.AddNewNodeByClass("vtkMRMLVolumeArchetypeStorageNode")
        storage.SetFileName(str(paths[name]))
        assert storage.ReadData(node)
        nodes[name] = node
    hu, labels, _ = phantom.make_phantom()
    assert np.array_equal(slicer.util.arrayFromVolume(nodes["CalciumPhantom"]), hu)
    assert np.array_equal(slicer.util.arrayFromVolume(nodes["CalciumPhantomArteries"]), labels)
    params = cmrml.parameters_from_settings(calibration_mode="factor", calibration_factor=0.8)
    run = cmrml.score_volume_node(
        mrml, nodes["CalciumPhantom"], labels_node=nodes["CalciumPhantomArteries"], params=params
    )
    total = table_as_rows(run.table_node)[-1]
    assert (total["Agatston"], total["Volume (mm3)"]) == (580.0, 522.0)  # calcium.md §5
    assert total["Mass (mg)"] == pytest.approx(243.6)
    # a damaged cache file is regenerated
    paths["CalciumPhantom"].write_bytes(b"broken")
    sample_data.ensure_sample_files(tmp_path)
    assert sample_data.file_sha256(paths["CalciumPhantom"]) == sample_data.SHA256["CalciumPhantom"]


def test_export_from_a_dicom_loaded_volume(mrml, tmp_path):
    import highdicom as hd

    from CalciumScoringLib import phantom
    from quantgpu.errors import OutputExistsError
    from quantgpu.io import load_volume
    from quantgpu.mrml import volume_node_from_array, volume_node_from_volume

    phantom.write_phantom_dicom(tmp_path / "ct")
    volume = load_volume(tmp_path / "ct")
    node = volume_node_from_volume(mrml, volume, name="phantom CT")
    _hu, labels, truth = phantom.make_phantom()
    labels_node = volume_node_from_array(mrml, labels, truth["spacing"], volume.ijk_to_lps, "arteries", labelmap=True)
    params = cmrml.parameters_from_settings(calibration_mode="rods", rod_hu=250.0, water_hu=0.0)
    run = cmrml.score_volume_node(mrml, node, labels_node=labels_node, params=params)
    shuffled = list(reversed(volume.headers))  # any order in, grid order out
    out = cmrml.export_results(
        mrml, run, node, tmp_path / "out", ("sr", "csv", "pdf"), headers=shuffled, rendering=False
    )
    assert set(out) == {"seg", "sr", "csv", "pdf"}  # the SR needs the SEG it references
    seg = hd.seg.segread(out["seg"])
    labels_in_seg = {d.SegmentLabel for d in seg.SegmentSequence}
    assert len(labels_in_seg) == 5  # LM, LAD, LCX, RCA and Unassigned all hold calcium
    assert seg.SegmentSequence[0].SegmentAlgorithmType == "SEMIAUTOMATIC"
    ref_uids = {r.ReferencedSOPInstanceUID for r in seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence}
    assert ref_uids <= {h.SOPInstanceUID for h in volume.headers}
    sr = hd.sr.srread(out["sr"])
    assert sr.SeriesInstanceUID != volume.series_instance_uid
    assert Path(out["pdf"]).read_bytes()[:5] == b"%PDF-"
    csv_text = Path(out["csv"]).read_text()
    assert "Total" in csv_text and "580" in csv_text
    with pytest.raises(OutputExistsError):
        cmrml.export_results(mrml, run, node, tmp_path / "out", ("csv",))
    # the SR alone, without force, references the SEG written before
    (tmp_path / "out" / "calcium_sr.dcm").unlink()
    again = cmrml.export_results(mrml, run, node, tmp_path / "out", ("sr",), headers=volume.headers)
    assert set(again) == {"sr"}


def test_dicom_exports_need_dicom_input(mrml, tmp_path):
    node = volume_node(mrml, _two_lesions())
    run = cmrml.score_volume_node(mrml, node)
    with pytest.raises(InputError, match="needs DICOM input"):
        cmrml.export_results(mrml, run, node, tmp_path, ("seg",))
    with pytest.raises(InputError, match="choose an output folder"):
        cmrml.export_results(mrml, run, node, "", ("csv",))
    assert set(cmrml.export_results(mrml, run, node, tmp_path, ("csv",))) == {"csv"}


def test_risk_summary_lines():
    result = {
        "agatston": 1200.0,
        "category": ">400",
        "cac_drs": "A3/N2",
        "per_artery": {
            "LM": {"agatston": 5.0},
            "LAD": {"agatston": 0.0},
            "LCX": {"agatston": 0.0},
            "RCA": {"agatston": 1190.0},
        },
        "unassigned": {"agatston": 5.0},
    }
    text = cmrml.risk_summary(result)
    assert "Vessels with calcium: 2 (LM, RCA)" in text
    assert "Left main calcium present" in text and "CAC > 1000" in text
    assert "Unassigned calcium: Agatston 5.0" in text
    zero = cmrml.risk_summary({"agatston": 0.0, "category": "0", "cac_drs": "A0"})
    assert "rescan interval" in zero and "No artery labels" in zero
