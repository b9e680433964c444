"""quantgpu calcium: score coronary calcium from a CT series or volume file.

    quantgpu calcium INPUT [--labels LABELS] [--threshold-hu 130] [--min-area-mm2 1.0]
        [--connectivity {4,8}] [--profile NAME] [--mass-calibration C]
        [--json PATH|-] [--output-dir DIR] [--backend auto|cpu|gpu] [--force]

INPUT is a directory holding one CT series, or an .nrrd/.nii/.nii.gz volume; LABELS an
.nrrd/.nii/.nii.gz artery label volume (0 none, 1 LM, 2 LAD, 3 LCX, 4 RCA) on the same
grid. With --output-dir: calcium_seg.dcm and calcium_sr.dcm (DICOM input only: NRRD
and NIfTI have no source series to reference), calcium_report.pdf, calcium_scores.csv
and calcium_result.json. Existing outputs are never overwritten without --force.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np

from quantgpu.errors import InputError
from quantgpu.output import check_writable, prepare_output_dir, write_json

from .agatston import (
    PROFILES,
    CalciumParameters,
    CalciumResult,
    calibration_factor,
    interpolated_volume_mm3,
    score_calcium,
)

log = logging.getLogger("quantgpu.calcium")

OUTPUT_FILES = {
    "seg": "calcium_seg.dcm",
    "sr": "calcium_sr.dcm",
    "pdf": "calcium_report.pdf",
    "csv": "calcium_scores.csv",
    "json": "calcium_result.json",
}
DICOM_NEEDS_DICOM = "DICOM SEG and SR need DICOM input; NRRD/NIfTI volumes have no source series to reference"


def add_parser(subparsers) -> argparse.ArgumentParser:
    from quantgpu.cli import add_common_arguments, input_path

    p = subparsers.add_parser(
        "calcium",
        help="coronary calcium scoring (Agatston, volume, mass; per artery with labels)",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument("input", type=input_path, metavar="INPUT", help="CT series directory, or .nrrd/.nii/.nii.gz")
    p.add_argument(
        "--labels",
        type=input_path,
        metavar="LABELS",
        help="artery label volume on the same grid (0 none, 1 LM, 2 LAD, 3 LCX, 4 RCA)",
    )
    p.add_argument(
        "--threshold-hu", type=float, default=None, metavar="HU", help="candidate threshold, inclusive (default 130)"
    )
    p.add_argument(
        "--min-area-mm2",
        type=float,
        default=None,
        metavar="MM2",
        help="minimum 2-D lesion area, inclusive (default: the profile's, 1.0 for standard)",
    )
    p.add_argument("--connectivity", type=int, choices=(4, 8), default=None, help="2-D connectivity (default 8)")
    p.add_argument(
        "--profile",
        choices=tuple(PROFILES),
        default="standard",
        help="vendor minimum-size rule (default standard: area >= 1 mm2)",
    )
    calibration = p.add_mutually_exclusive_group()
    calibration.add_argument(
        "--mass-calibration",
        type=float,
        default=None,
        metavar="C",
        help="c_HA in mg HA per cm3 per HU (mass is null without a calibration)",
    )
    calibration.add_argument(
        "--calibration-hu",
        type=float,
        nargs=2,
        default=None,
        metavar=("ROD_HU", "WATER_HU"),
        help="derive c_HA = 200 / (ROD_HU - WATER_HU) from a 200 mg/cm3 rod and water ROI",
    )
    p.add_argument(
        "--risk-factors",
        type=input_path,
        metavar="JSON",
        help="MESA risk factors (JSON object: age, male, race, diabetes, smoker, "
        "total_cholesterol_mg_dl, hdl_mg_dl, lipid_lowering, systolic_bp_mmhg, bp_medication, "
        "family_history) for the 10-year CHD risk with CAC",
    )
    p.add_argument(
        "--interpolated-volume",
        nargs="?",
        const=0.0,
        type=float,
        default=None,
        metavar="VOXEL_MM",
        help="also report the isotropically interpolated volume (voxel size, default the finest spacing)",
    )
    p.add_argument("--no-3d", action="store_true", help="leave the 3D rendering out of the PDF report")
    add_common_arguments(p)
    p.set_defaults(func=run)
    return p


def parameters_from_args(args: argparse.Namespace, kvp: float | None = None) -> CalciumParameters:
    overrides: dict = {}
    if args.threshold_hu is not None:
        overrides["threshold_hu"] = args.threshold_hu
    if args.min_area_mm2 is not None:
        overrides["min_area_mm2"] = args.min_area_mm2
    if args.connectivity is not None:
        overrides["connectivity"] = args.connectivity
    if args.mass_calibration is not None:
        overrides["mass_calibration_mg_per_cm3_per_hu"] = args.mass_calibration
        overrides["calibration_source"] = "user value"
    elif args.calibration_hu is not None:
        rod, water = args.calibration_hu
        overrides["mass_calibration_mg_per_cm3_per_hu"] = calibration_factor(rod, water)
        overrides["calibration_source"] = f"200 mg/cm3 rod {rod:g} HU, water {water:g} HU"
    if kvp is not None:
        overrides["kvp"] = kvp
    return CalciumParameters.from_profile(args.profile, **overrides)


def _kvp_from_headers(headers) -> float | None:
    for h in headers[:1]:
        value = getattr(h, "ds", h).get("KVP")
        try:
            return float(value) if value not in (None, "") else None
        except (TypeError, ValueError):
            return None
    return None


def load_ct(path) -> object:
    """The CT volume; InputError when it is not CT."""
    from quantgpu.io import load_volume

    volume = load_volume(path)
    if volume.modality is not None and volume.modality.upper() != "CT":
        raise InputError(f"is a {volume.modality} series, not CT: calcium scoring needs a non-contrast CT", path)
    return volume


def load_labels(path, volume) -> np.ndarray:
    """Artery labels as uint8 on the CT grid; InputError on another grid or non-label values."""
    from quantgpu.io import load_volume

    labels = load_volume(path)
    if labels.array.shape != volume.array.shape:
        raise InputError(
            f"label volume shape {labels.array.shape} does not match the CT grid {volume.array.shape}", path
        )
    if not np.allclose(labels.ijk_to_lps, volume.ijk_to_lps, atol=1e-3):
        raise InputError("label volume geometry (origin, spacing or directions) differs from the CT", path)
    values = labels.array
    if not np.array_equal(values, np.round(values)) or values.min() < 0 or values.max() > 4:
        raise InputError("labels must be integers 0..4 (0 none, 1 LM, 2 LAD, 3 LCX, 4 RCA)", path)
    return values.astype(np.uint8)


def load_risk_factors(path):
    """MESA risk factors from a JSON object; InputError on unreadable JSON or unknown keys."""
    import dataclasses
    import json

    from .risk import MesaRiskFactors

    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot read risk factors as JSON: {exc}", path) from exc
    names = {f.name for f in dataclasses.fields(MesaRiskFactors)}
    if not isinstance(data, dict) or not set(data) <= names or "age" not in data or "male" not in data:
        raise InputError(
            f"risk factors must be a JSON object with age, male and any of {', '.join(sorted(names))}", path
        )
    try:
        return MesaRiskFactors(**data)
    except TypeError as exc:
        raise InputError(f"bad risk factors: {exc}", path) from exc


def output_paths(output_dir: Path, dicom: bool) -> dict[str, Path]:
    return {key: output_dir / name for key, name in OUTPUT_FILES.items() if dicom or key not in ("seg", "sr")}


def write_outputs(
    result: CalciumResult, volume, output_dir: Path, *, force: bool, labels_given: bool, render_3d: bool = True
) -> dict:
    """SEG, SR (DICOM input only), PDF, CSV and JSON into ``output_dir``; returns {kind: path or None}."""
    from .export import write_csv, write_seg, write_sr
    from .report import render_3d_png, write_pdf

    dicom = bool(volume.headers)
    paths = output_paths(output_dir, dicom)
    for path in paths.values():  # refuse before writing anything: no half-replaced result sets
        check_writable(path, force)
    written: dict = {"seg": None, "sr": None}
    if dicom:
        algorithm_type = "SEMIAUTOMATIC" if labels_given else "AUTOMATIC"
        seg = write_seg(
            result, volume.headers, paths["seg"], force=force, algorithm_type=algorithm_type, source=volume.source
        )
        seg_ds = None
        if seg is not None:
            written["seg"], seg_ds = str(seg[0]), seg[1]
        written["sr"] = str(
            write_sr(result, volume.headers, paths["sr"], seg=seg_ds, force=force, source=volume.source)[0]
        )
    else:
        written["dicom_note"] = DICOM_NEEDS_DICOM
    written["csv"] = str(write_csv(result, paths["csv"], force=force))
    rendering = None
    if render_3d:
        rendering = render_3d_png(volume, result, output_dir / ".calcium_3d.png")
    try:
        written["pdf"] = str(
            write_pdf(
                result,
                paths["pdf"],
                hu=volume.array,
                source=Path(volume.source).name,
                headers=volume.headers,
                rendering_png=rendering,
                force=force,
            )
        )
    finally:
        if rendering is not None and Path(rendering).exists():
            Path(rendering).unlink()
    written["json"] = str(paths["json"])
    return written


def summary_line(result_json: dict) -> str:
    mass = result_json.get("mass_mg")
    mass_text = f"mass {mass:.1f} mg" if mass is not None else "mass n/a (no calibration)"
    return (
        f"Agatston {result_json['agatston']:.1f} ({result_json['category']}, {result_json['cac_drs']}), "
        f"volume {result_json['volume_mm3']:.1f} mm3, {mass_text}, {result_json['lesion_count']} lesions "
        f"[{result_json['backend']}]"
    )


def score_and_write(
    volume,
    labels,
    params: CalciumParameters,
    *,
    backend: str,
    output_dir,
    force: bool,
    render_3d: bool = True,
    risk_factors=None,
    interpolated_voxel_mm: float | None = None,
) -> dict:
    """Score ``volume`` and write the outputs; returns the result JSON (with "summary" and "outputs")."""
    out_dir = None
    if output_dir is not None:
        out_dir = prepare_output_dir(output_dir)
        for path in output_paths(out_dir, bool(volume.headers)).values():
            check_writable(path, force)  # before the work
    result = score_calcium(volume.array, volume.spacing, labels=labels, params=params, backend=backend)
    if risk_factors is not None:
        from .risk import arterial_age, mesa_chd_risk_10y

        result.mesa = mesa_chd_risk_10y(result.agatston, risk_factors)
        result.mesa["arterial_age_years"] = arterial_age(result.agatston)  # McClelland 2009 (unverified)
    out = result.to_json()
    if interpolated_voxel_mm is not None:
        volume_i, voxel = interpolated_volume_mm3(
            volume.array,
            volume.spacing,
            result.lesion_labels,
            threshold_hu=params.threshold_hu,
            voxel_mm=interpolated_voxel_mm or None,
            backend=backend,
        )
        out["volume_interpolated_mm3"] = volume_i
        out["parameters"]["interpolated_voxel_mm"] = list(voxel)
    warnings = []
    if params.kvp != 120.0:
        warnings.append(f"scan at {params.kvp:g} kVp: the weight bands and the 130 HU threshold are defined at 120 kVp")
    if warnings:
        out["warnings"] = warnings
    out["input"] = Path(volume.source).name if volume.source else None
    out["summary"] = summary_line(out)
    if out_dir is not None:
        out["outputs"] = write_outputs(
            result, volume, out_dir, force=force, labels_given=labels is not None, render_3d=render_3d
        )
        write_json(out["outputs"]["json"], out, force=force)
    return out


def run(args: argparse.Namespace) -> dict:
    volume = load_ct(args.input)
    labels = load_labels(args.labels, volume) if args.labels else None
    params = parameters_from_args(args, kvp=_kvp_from_headers(volume.headers))
    risk_factors = load_risk_factors(args.risk_factors) if args.risk_factors else None
    return score_and_write(
        volume,
        labels,
        params,
        backend=args.backend,
        output_dir=args.output_dir,
        force=args.force,
        render_3d=not args.no_3d,
        risk_factors=risk_factors,
        interpolated_voxel_mm=args.interpolated_volume,
    )


def demo(output_dir: Path, backend: str = "auto", force: bool = False, render_3d: bool = True) -> dict:
    """Write the digital phantom as DICOM, score it with its artery labels and rod calibration, write all outputs."""
    from .phantom import make_phantom, write_phantom_dicom, write_phantom_labels

    out_dir = prepare_output_dir(output_dir)
    for path in output_paths(out_dir, True).values():
        check_writable(path, force)
    write_phantom_dicom(out_dir / "phantom_ct", force=force)
    write_phantom_labels(out_dir / "phantom_labels.nrrd", force=force)
    volume = load_ct(out_dir / "phantom_ct")
    labels = load_labels(out_dir / "phantom_labels.nrrd", volume)
    _hu, _labels, truth = make_phantom()  # the calibration ROIs
    rod = float(volume.array[truth["calibration_rod_roi"]].mean())
    water = float(volume.array[truth["calibration_water_roi"]].mean())
    params = CalciumParameters(
        mass_calibration_mg_per_cm3_per_hu=calibration_factor(rod, water),
        calibration_source=f"phantom ROIs: 200 mg/cm3 rod {rod:g} HU, water {water:g} HU",
        kvp=_kvp_from_headers(volume.headers) or 120.0,
    )
    out = score_and_write(volume, labels, params, backend=backend, output_dir=out_dir, force=force, render_3d=render_3d)
    out["input"] = "digital calcium phantom (DICOM in phantom_ct/, artery labels in phantom_labels.nrrd)"
    out["expected"] = {"agatston": 580.0, "volume_mm3": 522.0, "mass_mg": 243.6}
    write_json(out["outputs"]["json"], out, force=True)  # our own file, just written
    return out
