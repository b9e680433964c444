"""Outputs: DICOM SEG (M13), result JSON keys (issue 5 item 9), CAD SR from an analysed exam (M12), overview."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pydicom
import pytest

from MammoCADLib import export, mgio
from MammoCADLib.phantom import make_phantom

needs_dciodvfy = pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="dicom3tools missing")


def _dciodvfy_errors(path):
    run = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, check=False)
    return [line for line in (run.stdout + run.stderr).splitlines() if line.startswith("Error")]


@pytest.fixture(scope="module")
def mlo_phantom():
    return make_phantom(shape=(1024, 1024), view="MLO", laterality="R", seed=4)


@needs_dciodvfy
def test_breast_mask_seg_one_frame_reads_back_identical(tmp_path, mlo_phantom):
    """M13: breast mask as SEG on a synthetic FOR PRESENTATION image: 1 frame, identical read-back."""
    p = mlo_phantom
    source = mgio.read_mammogram(mgio.write_mg(tmp_path / "mg.dcm", p.image, p.pixel_spacing_mm, "R", "MLO"))
    path = export.write_seg(tmp_path / "seg.dcm", source.dataset, {"breast": p.breast_mask})
    assert _dciodvfy_errors(path) == []
    ds = pydicom.dcmread(path)
    assert int(ds.NumberOfFrames) == 1
    assert ds.BodyPartExamined == "BREAST"
    assert list(ds.PatientOrientation) == ["P", "FL"]
    ref = ds.ReferencedSeriesSequence[0].ReferencedInstanceSequence[0]
    assert ref.ReferencedSOPInstanceUID == source.sop_instance_uid
    back = export.read_seg_masks(path)
    assert list(back) == ["Breast"]
    assert np.array_equal(back["Breast"], p.breast_mask)


@needs_dciodvfy
def test_seg_one_frame_per_segment_even_when_empty(tmp_path, mlo_phantom):
    p = mlo_phantom
    source = mgio.read_mammogram(mgio.write_mg(tmp_path / "mg.dcm", p.image, p.pixel_spacing_mm, "R", "MLO"))
    empty = np.zeros_like(p.breast_mask)
    masks = {"breast": p.breast_mask, "pectoral": p.pectoral_mask, "dense": empty}
    path = export.write_seg(tmp_path / "seg.dcm", source.dataset, masks)
    assert _dciodvfy_errors(path) == []
    assert int(pydicom.dcmread(path).NumberOfFrames) == 3
    back = export.read_seg_masks(path)
    assert np.array_equal(back["Breast"], p.breast_mask)
    assert np.array_equal(back["Pectoral muscle"], p.pectoral_mask)
    assert not back["Dense tissue"].any()
    with pytest.raises(ValueError, match="shape"):
        export.write_seg(tmp_path / "bad.dcm", source.dataset, {"breast": p.breast_mask[:10]})
    with pytest.raises(Exception, match="exists"):
        export.write_seg(tmp_path / "seg.dcm", source.dataset, masks)
