"""The digital QRM-like phantom scores as calcium.md section 5 states (hand-derived table)."""

from __future__ import annotations

import numpy as np
import pytest

from CalciumScoringLib.agatston import CalciumParameters, calibration_factor, score_calcium
from CalciumScoringLib.phantom import make_phantom, sample_volume, write_phantom_dicom, write_phantom_labels
from quantgpu.errors import OutputExistsError
from quantgpu.io import load_volume


@pytest.fixture(scope="module")
def phantom():
    return make_phantom()


def test_rod_geometry(phantom):
    _hu, _labels, truth = phantom
    pixels = {(r["diameter_mm"], r["density_mg_cm3"]): r["pixels_per_slice"] for r in truth["rods"]}
    # disks centred on a pixel corner, 0.5 mm pixels: 5 / 3 / 1 mm -> 80 / 32 / 4 px (calcium.md 5)
    for density in (200.0, 400.0, 800.0):
        assert (pixels[5.0, density], pixels[3.0, density], pixels[1.0, density]) == (80, 32, 4)
    assert truth["spacing"] == (3.0, 0.5, 0.5)


def test_calibration_rois(phantom):
    hu, _labels, truth = phantom
    rod = hu[truth["calibration_rod_roi"]]
    water = hu[truth["calibration_water_roi"]]
    assert np.all(rod == 250.0) and np.all(water == 0.0)
    assert calibration_factor(rod.mean(), water.mean()) == pytest.approx(0.8)


def test_phantom_scores(backend, phantom):
    hu, labels, truth = phantom
    c_ha = calibration_factor(hu[truth["calibration_rod_roi"]].mean(), hu[truth["calibration_water_roi"]].mean())
    r = score_calcium(
        hu,
        truth["spacing"],
        labels=labels,
        backend=backend,
        params=CalciumParameters(mass_calibration_mg_per_cm3_per_hu=c_ha),
    )
    assert r.agatston == pytest.approx(580.0)
    assert r.volume_mm3 == pytest.approx(522.0)
    assert r.mass_mg == pytest.approx(243.6)
    assert r.lesion_count == 9
    assert (r.category, r.cac_drs) == (">400", "A3/N4")
    # per artery, from the table: 5 mm rods -> LAD, 3 mm -> LCX, 1 mm 200 -> LM, 1 mm 400 -> RCA
    expected = {
        "LAD": (80 + 160 + 160, 3 * 120, 24 + 48 + 96, 3),
        "LCX": (32 + 64 + 64, 3 * 48, 9.6 + 19.2 + 38.4, 3),
        "LM": (4, 6, 1.2, 1),
        "RCA": (8, 6, 2.4, 1),
    }
    for name, (agatston, volume, mass, count) in expected.items():
        s = r.per_artery[name]
        assert (s.agatston, s.volume_mm3, s.mass_mg) == pytest.approx((agatston, volume, mass)), name
        assert s.lesion_count == count
    u = r.unassigned  # the 1 mm 800 mg/cm3 rod
    assert (u.agatston, u.volume_mm3, u.mass_mg, u.lesion_count) == pytest.approx((8, 6, 4.8, 1))


def test_phantom_strict_area_rule(phantom):
    hu, _labels, truth = phantom
    r = score_calcium(hu, truth["spacing"], backend="cpu", params=CalciumParameters(min_area_mm2=1.0 + 1e-6))
    assert (r.agatston, r.volume_mm3) == pytest.approx((560.0, 504.0))  # "> 1 mm2" drops the 1 mm rods


def test_phantom_is_deterministic(phantom):
    hu, labels, _ = make_phantom()
    assert np.array_equal(hu, phantom[0]) and np.array_equal(labels, phantom[1])
    assert hu.min() == -1000.0 and set(np.unique(labels)) == {0, 1, 2, 3, 4}
    assert not np.any((hu >= 130) & (hu < 250))  # no bone or other calcium-like tissue


def test_sample_volume():
    vol = sample_volume()
    assert vol.modality == "CT" and vol.spacing == (3.0, 0.5, 0.5)
    assert vol.array.dtype == np.float32
    assert np.allclose(np.linalg.norm(vol.ijk_to_lps[:3, :3], axis=0), (0.5, 0.5, 3.0))


def test_dicom_round_trip(tmp_path, phantom):
    files = write_phantom_dicom(tmp_path / "ct")
    assert len(files) == phantom[0].shape[0]
    vol = load_volume(tmp_path / "ct")
    assert vol.modality == "CT"
    assert np.array_equal(vol.array, phantom[0])
    assert vol.spacing == pytest.approx((3.0, 0.5, 0.5))
    assert vol.headers[0].BodyPartExamined == "HEART"
    with pytest.raises(OutputExistsError):
        write_phantom_dicom(tmp_path / "ct")
    labels = load_volume(write_phantom_labels(tmp_path / "labels.nrrd"))
    assert np.array_equal(labels.array, phantom[1])
