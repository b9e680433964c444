"""Deterministic digital calcium phantom (QRM-like), exact on its grid (calcium.md section 5).

A thorax-like slab: air outside, a water-equivalent body ellipse (0 HU), two lungs
(-800 HU), a heart (40 HU) and, inside the heart, nine calcium rods 2 slices (6 mm)
long: diameters 5 / 3 / 1 mm x densities 200 / 400 / 800 mg HA/cm3, i.e.
250 / 500 / 1000 HU at c_HA = 0.8 mg/cm3/HU. There is no bone: without a heart
ROI, bone >= 130 HU would be scored. Each rod is a disk centred on a pixel corner:
with 0.5 mm pixels the 5 / 3 / 1 mm disks hold exactly 80 / 32 / 4 pixels
(20 / 8 / 1 mm2), so the expected scores follow by hand (calcium.md table):
Agatston 580, volume 522 mm3, mass 243.6 mg.

Calibration: the 200 mg/cm3 rod (250 HU) and the water body (0 HU) serve as the
calibration ROIs, c_HA = 200 / (250 - 0) = 0.8 mg/cm3/HU (McCollough 2007).

Artery labels (1 LM, 2 LAD, 3 LCX, 4 RCA) cover each rod with a 2-pixel margin:
5 mm rods -> LAD, 3 mm rods -> LCX, 1 mm rod 250 HU -> LM, 1 mm rod 500 HU -> RCA;
the 1 mm 1000 HU rod is left unassigned (it counts in the total only).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

PIXEL_MM = 0.5
SLICE_MM = 3.0
SHAPE = (12, 256, 256)  # k, j, i
ROD_SLICES = (5, 7)  # [start, stop): two 3 mm slices = 6 mm
C_HA = 0.8  # mg HA / cm3 / HU
ROD_DENSITIES_MG_CM3 = (200.0, 400.0, 800.0)
ROD_DIAMETERS_MM = (5.0, 3.0, 1.0)
ROD_PITCH_PX = 30  # 15 mm between rod centres
WATER_HU, HEART_HU, LUNG_HU, AIR_HU = 0.0, 40.0, -800.0, -1000.0
LABEL_MARGIN_PX = 2
SERIES_DESCRIPTION = "QuantGPU digital calcium phantom"


def rod_artery(diameter_mm: float, density: float) -> int:
    """Artery label value of a rod (0 = unassigned)."""
    if diameter_mm == 5.0:
        return 2  # LAD
    if diameter_mm == 3.0:
        return 3  # LCX
    return {200.0: 1, 400.0: 4}.get(density, 0)  # LM, RCA; the 800 mg/cm3 1 mm rod unassigned


def _disk(shape_ji: tuple[int, int], corner_j: int, corner_i: int, radius_px: float) -> np.ndarray:
    """Pixels whose centres lie within ``radius_px`` of the pixel corner (corner_j, corner_i)."""
    jj = np.arange(shape_ji[0])[:, None] + 0.5 - corner_j
    ii = np.arange(shape_ji[1])[None, :] + 0.5 - corner_i
    return jj**2 + ii**2 <= radius_px**2 + 1e-9


def _ellipse(shape_ji, centre_j, centre_i, semi_j, semi_i) -> np.ndarray:
    jj = np.arange(shape_ji[0])[:, None] + 0.5 - centre_j
    ii = np.arange(shape_ji[1])[None, :] + 0.5 - centre_i
    return (jj / semi_j) ** 2 + (ii / semi_i) ** 2 <= 1.0


def make_phantom() -> tuple[np.ndarray, np.ndarray, dict]:
    """Return (hu float32 [k, j, i], artery labels uint8 [k, j, i], truth dict).

    The truth dict holds the geometry (spacing, rods with pixel counts, areas) and
    the calibration ROIs; expected scores are stated in calcium.md and tested.
    """
    nk, nj, ni = SHAPE
    plane = np.full((nj, ni), AIR_HU, dtype=np.float32)
    cj, ci = nj / 2, ni / 2
    plane[_ellipse((nj, ni), cj, ci, 110, 124)] = WATER_HU
    plane[_ellipse((nj, ni), cj, ci - 72, 70, 38)] = LUNG_HU
    plane[_ellipse((nj, ni), cj, ci + 72, 70, 38)] = LUNG_HU
    plane[_ellipse((nj, ni), cj, ci, 58, 50)] = HEART_HU
    hu = np.repeat(plane[None], nk, axis=0)
    labels = np.zeros(SHAPE, dtype=np.uint8)

    rods = []
    k0, k1 = ROD_SLICES
    for row, diameter in enumerate(ROD_DIAMETERS_MM):
        for col, density in enumerate(ROD_DENSITIES_MG_CM3):
            corner = (int(cj) + (row - 1) * ROD_PITCH_PX, int(ci) + (col - 1) * ROD_PITCH_PX)
            radius_px = diameter / 2 / PIXEL_MM
            disk = _disk((nj, ni), *corner, radius_px)
            rod_hu = density / C_HA
            hu[k0:k1, disk] = rod_hu
            artery = rod_artery(diameter, density)
            if artery:
                labels[k0:k1, _disk((nj, ni), *corner, radius_px + LABEL_MARGIN_PX)] = artery
            pixels = int(disk.sum())
            rods.append(
                {
                    "diameter_mm": diameter,
                    "density_mg_cm3": density,
                    "hu": rod_hu,
                    "corner_ji": corner,
                    "slices": [k0, k1],
                    "pixels_per_slice": pixels,
                    "area_mm2": pixels * PIXEL_MM**2,
                    "artery": artery,
                }
            )
    cal_rod = next(r for r in rods if r["diameter_mm"] == 5.0 and r["density_mg_cm3"] == 200.0)
    rod_roi = np.zeros(SHAPE, dtype=bool)
    rod_roi[k0:k1] = _disk((nj, ni), *cal_rod["corner_ji"], 3)  # inside the 5 px radius rod
    water_roi = np.zeros(SHAPE, dtype=bool)
    water_roi[k0:k1] = _disk((nj, ni), int(cj) + 90, int(ci), 8)  # body water below the heart
    truth = {
        "spacing": (SLICE_MM, PIXEL_MM, PIXEL_MM),
        "c_ha_mg_per_cm3_per_hu": C_HA,
        "rods": rods,
        "calibration_rod_roi": rod_roi,
        "calibration_water_roi": water_roi,
        "calibration_rod_density_mg_cm3": 200.0,
    }
    return hu, labels, truth


def phantom_ijk_to_lps() -> np.ndarray:
    """Axis-aligned geometry with the slab centred on the LPS origin."""
    from quantgpu.io.volume import ijk_to_lps_matrix

    nk, nj, ni = SHAPE
    origin = (-(ni - 1) / 2 * PIXEL_MM, -(nj - 1) / 2 * PIXEL_MM, -(nk - 1) / 2 * SLICE_MM)
    return ijk_to_lps_matrix(origin, np.eye(3), (SLICE_MM, PIXEL_MM, PIXEL_MM))


def sample_volume():
    """The phantom as a ``quantgpu.io.Volume`` (web workstation and Slicer sample data)."""
    from quantgpu.io.volume import Volume

    hu, _labels, truth = make_phantom()
    return Volume(
        array=hu,
        spacing=truth["spacing"],
        ijk_to_lps=phantom_ijk_to_lps(),
        modality="CT",
        source=SERIES_DESCRIPTION,
    )


def write_phantom_dicom(out_dir: str | Path, force: bool = False) -> list[Path]:
    """Write the phantom as a DICOM CT series (one file per slice) into ``out_dir``."""
    from quantgpu.io import write_ct_series

    hu, _labels, truth = make_phantom()
    return write_ct_series(
        Path(out_dir),
        hu,
        truth["spacing"],
        ijk_to_lps=phantom_ijk_to_lps(),
        modality="CT",
        series_description=SERIES_DESCRIPTION,
        study_description="Cardiac CT for calcium scoring (digital phantom)",
        body_part="HEART",
        kvp=120.0,
        force=force,
    )


def write_phantom_labels(path: str | Path, force: bool = False) -> Path:
    """Write the artery label volume (same grid) as NRRD, for ``quantgpu calcium --labels``."""
    from quantgpu.io import write_nrrd

    _hu, labels, truth = make_phantom()
    write_nrrd(Path(path), labels, truth["spacing"], phantom_ijk_to_lps(), force=force)
    return Path(path)
