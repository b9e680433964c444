"""DICOM Parametric Maps and core/penumbra SEG: dciodvfy, highdicom read-back, perfusion.md §6 codes."""

from __future__ import annotations

import highdicom as hd
import numpy as np
import pydicom
import pytest

from PerfusionAnalysisLib.export import (
    core_penumbra_seg_dataset,
    write_core_penumbra_seg,
    write_parametric_map,
    write_parametric_maps,
)
from PerfusionAnalysisLib.phantom import make_phantom, write_phantom
from PerfusionAnalysisLib.pipeline import analyze
from quantgpu import io
from quantgpu.errors import InputError, OutputExistsError
from quantgpu.validate import dciodvfy

# perfusion.md §6: the only message dciodvfy may still print for a Parametric Map
QUANTITY_WARNING = "Unrecognized defined term <QUANTITY>"
EXPECTED_CODES = {
    "cbf": ("126390", "ml/[100]g/min"),
    "cbv": ("126391", "ml/[100]g"),
    "mtt": ("113052", "s"),
    "tmax": ("113084", "s"),
    "ttp": ("113069", "s"),
}


@pytest.fixture(scope="module")
def analysed(tmp_path_factory):
    root = tmp_path_factory.mktemp("perf_export")
    phantom = make_phantom()
    series = io.load_series_4d(write_phantom(root / "in", phantom, nrrd=False)["dicom"])
    result = analyze(series, "ct", "csvd", aif_mask=phantom.aif_mask, vof_mask=phantom.vof_mask, backend="cpu")
    out = root / "out"
    files = write_parametric_maps(out, result.maps, series.headers)
    seg = write_core_penumbra_seg(out / "seg.dcm", result.stroke.labels, series.headers)
    return series, result, files, seg


def _frames_by_position(ds, values_kji, series):
    """Parametric Map frames re-ordered to the source slice order through ImagePositionPatient."""
    z_source = [float(h.ImagePositionPatient[2]) for h in series.headers]
    pixels = ds.pixel_array.reshape(-1, *values_kji.shape[1:])
    out = np.full(values_kji.shape, -1.0, dtype=np.float32)
    for f, frame in enumerate(ds.PerFrameFunctionalGroupsSequence):
        z = float(frame.PlanePositionSequence[0].ImagePositionPatient[2])
        out[z_source.index(z)] = pixels[f]
    return out


def test_parametric_maps_valid_and_values_equal(analysed):
    series, result, files, _seg = analysed
    assert set(files) == set(EXPECTED_CODES)
    for name, path in files.items():
        ok, messages = dciodvfy(path)
        assert ok, messages
        assert all(QUANTITY_WARNING in m for m in messages if m.startswith("Warning")), messages
        ds = pydicom.dcmread(path)
        pm = hd.pm.ParametricMap.from_dataset(ds)
        assert pm.SOPClassUID == "1.2.840.10008.5.1.4.1.1.30"
        assert ds.pixel_array.dtype == np.float32
        np.testing.assert_array_equal(_frames_by_position(ds, result.maps[name], series), result.maps[name])


def test_parametric_map_codes_anatomy_and_window(analysed):
    series, result, files, _seg = analysed
    for name, path in files.items():
        ds = pydicom.dcmread(path)
        shared = ds.SharedFunctionalGroupsSequence[0]
        rwvm = shared.RealWorldValueMappingSequence[0]
        code, unit = EXPECTED_CODES[name]
        assert rwvm.QuantityDefinitionSequence[0].ConceptCodeSequence[0].CodeValue == code
        assert rwvm.MeasurementUnitsCodeSequence[0].CodeValue == unit
        assert rwvm.MeasurementUnitsCodeSequence[0].CodingSchemeDesignator == "UCUM"
        assert rwvm.RealWorldValueSlope == 1 and rwvm.RealWorldValueIntercept == 0
        finite = result.maps[name][np.isfinite(result.maps[name])]
        assert rwvm.DoubleFloatRealWorldValueFirstValueMapped == pytest.approx(float(finite.min()))
        assert rwvm.DoubleFloatRealWorldValueLastValueMapped == pytest.approx(float(finite.max()))
        anatomy = shared.FrameAnatomySequence[0]
        assert anatomy.FrameLaterality == "U"
        assert anatomy.AnatomicRegionSequence[0].CodeValue == "12738006"
        assert "FrameVOILUTSequence" in shared
        assert ds.BodyPartExamined == series.headers[0].BodyPartExamined == "HEAD"
        assert ds.RecognizableVisualFeatures == "NO"
        assert ds.StudyInstanceUID == series.headers[0].StudyInstanceUID


def test_seg_valid_and_labels_read_back(analysed):
    series, result, _files, seg_path = analysed
    ok, messages = dciodvfy(seg_path)
    assert ok, messages
    seg = hd.seg.segread(seg_path)
    assert [seg.get_segment_description(n).SegmentLabel for n in (1, 2)] == ["Ischemic core", "Penumbra"]
    uids = [h.SOPInstanceUID for h in series.headers]
    labels = seg.get_pixels_by_source_instance(
        source_sop_instance_uids=uids, segment_numbers=[1, 2], combine_segments=True, relabel=False
    )
    np.testing.assert_array_equal(labels, result.stroke.labels)
    assert np.count_nonzero(labels == 1) == 1536  # the phantom's core: 16 x 24 px x 4 slices


def test_no_overwrite_without_force(analysed, tmp_path):
    series, result, _files, _seg = analysed
    target = tmp_path / "cbf_pm.dcm"
    write_parametric_map(target, result.maps["cbf"], "cbf", series.headers)
    before = target.read_bytes()
    with pytest.raises(OutputExistsError):
        write_parametric_map(target, result.maps["cbf"], "cbf", series.headers)
    assert target.read_bytes() == before
    write_parametric_map(target, result.maps["cbv"], "cbv", series.headers, force=True)
    assert target.read_bytes() != before


def test_bad_input(analysed):
    series, result, _files, _seg = analysed
    with pytest.raises(InputError, match="DICOM"):
        write_parametric_map("x.dcm", result.maps["cbf"], "cbf", [])
    with pytest.raises(InputError, match="slices"):
        write_parametric_map("x.dcm", result.maps["cbf"][:2], "cbf", series.headers)
    with pytest.raises(InputError, match="unknown"):
        write_parametric_map("x.dcm", result.maps["cbf"], "flow", series.headers)
    with pytest.raises(InputError, match="unexpected"):
        core_penumbra_seg_dataset(np.full(result.stroke.labels.shape, 7, np.uint8), series.headers)


def test_empty_seg_is_still_valid(analysed, tmp_path):
    series, result, _files, _seg = analysed
    path = write_core_penumbra_seg(tmp_path / "empty.dcm", np.zeros_like(result.stroke.labels), series.headers)
    ok, messages = dciodvfy(path)
    assert ok, messages
