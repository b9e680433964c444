"""``quantgpu perfusion``: maps, stroke summary or DCE kinetics from a 4-D series (issue 4 item 8).

Output files in ``--output-dir``: ``cbf/cbv/mtt/tmax/ttp.nrrd`` (ct, dsc) or ``ktrans/ve/vp/kep.nrrd``
(dce) on the grid of one input frame with its geometry, ``core_penumbra.nrrd`` (1 core, 2 penumbra),
``curves.csv`` (time, AIF, VOF, mean tissue curve), and when the input is DICOM one Parametric Map per
map (``<map>_pm.dcm``) and a core/penumbra SEG (``core_penumbra_seg.dcm``). Nothing is overwritten
without ``--force``; every planned output is checked before the analysis starts.
Masks (``--aif-mask``, ``--vof-mask``) are label volumes (.nrrd/.nii) on the grid of one frame;
nonzero voxels are selected. A mask on another grid is bad input (exit 2).
"""

from __future__ import annotations

import argparse
import io as _io
import logging
from pathlib import Path

import numpy as np

from quantgpu.errors import InputError
from quantgpu.output import check_writable, prepare_output_dir, write_bytes_atomic

from .deconvolution import DENSITY_DEFAULT, KH_DEFAULT, METHODS, OI_THRESHOLD_DEFAULT
from .pipeline import DCE_MAP_NAMES, DCE_MODELS, MODALITIES, PERFUSION_MAP_NAMES, PerfusionResult, analyze

log = logging.getLogger("PerfusionAnalysisLib.cli")


def add_parser(subparsers) -> argparse.ArgumentParser:
    from quantgpu.cli import add_common_arguments, input_path

    p = subparsers.add_parser(
        "perfusion",
        help="CT/MR perfusion maps, stroke core/penumbra, DCE kinetics",
        description="Perfusion maps (CBF mL/100 g/min, CBV mL/100 g, MTT/Tmax/TTP s), stroke volumes and "
        "DEFUSE 3 / EXTEND eligibility, or DCE Ktrans/ve/vp/kep (/min).",
    )
    p.add_argument("input", type=input_path, help="DICOM directory/file, or 4-D .nrrd/.nii(.gz)")
    p.add_argument("--modality", required=True, choices=MODALITIES)
    p.add_argument("--method", choices=METHODS, default="csvd", help="deconvolution (ct, dsc); default csvd")
    p.add_argument("--aif-mask", type=input_path, metavar="PATH", help="label volume of the AIF voxels")
    p.add_argument("--vof-mask", type=input_path, metavar="PATH", help="label volume of the VOF voxels")
    p.add_argument("--frame-interval", type=float, metavar="S", help="frame interval in s (overrides the header)")
    p.add_argument("--kh", type=float, default=KH_DEFAULT, help=f"haematocrit factor k_H (default {KH_DEFAULT})")
    p.add_argument("--density", type=float, default=DENSITY_DEFAULT, help="tissue density g/mL (default 1.04)")
    p.add_argument("--model", choices=DCE_MODELS, default="tofts", help="DCE model (default tofts)")
    p.add_argument(
        "--oi-threshold",
        type=float,
        default=OI_THRESHOLD_DEFAULT,
        help="oSVD oscillation-index threshold (default 0.095; 0.035 = DSC toolbox)",
    )
    p.add_argument("--te", type=float, metavar="S", help="DSC echo time in s (when the header has none)")
    p.add_argument("--flip-angle", type=float, metavar="DEG", help="DCE flip angle (when the header has none)")
    p.add_argument("--tr", type=float, metavar="S", help="DCE repetition time in s (when the header has none)")
    p.add_argument("--t1", type=float, default=1.4, metavar="S", help="DCE pre-contrast tissue T1 in s (default 1.4)")
    p.add_argument("--motion-correction", action="store_true", help="rigid translation correction of the frames")
    add_common_arguments(p)
    p.set_defaults(func=run)
    return p


def output_names(modality: str, dicom: bool) -> list[str]:
    maps = DCE_MAP_NAMES if modality == "dce" else PERFUSION_MAP_NAMES
    names = [f"{m}.nrrd" for m in maps] + ["curves.csv"]
    if modality != "dce":
        names.append("core_penumbra.nrrd")
    if dicom:
        names += [f"{m}_pm.dcm" for m in maps]
        if modality != "dce":
            names.append("core_penumbra_seg.dcm")
    return names


def _load_mask(path, series, what: str) -> np.ndarray | None:
    if path is None:
        return None
    from quantgpu.io import load_volume

    vol = load_volume(path)
    grid = tuple(series.frames.shape[1:])
    if tuple(vol.array.shape) != grid:
        raise InputError(f"{what} grid {tuple(vol.array.shape)} does not match the frame grid {grid}", path)
    if not np.allclose(vol.ijk_to_lps, series.ijk_to_lps, atol=1e-3, rtol=1e-4):
        raise InputError(f"{what} geometry (origin/spacing/directions) differs from the input frames", path)
    mask = vol.array != 0
    if not mask.any():
        raise InputError(f"{what} selects no voxels", path)
    return mask


def _curves_csv(result: PerfusionResult) -> bytes:
    out = _io.StringIO()
    out.write("time_s,aif,vof,tissue_mean\n")
    vof = result.vof_curve if result.vof_curve is not None else [np.nan] * result.frames
    for t, a, v, c in zip(result.frame_times_s, result.aif_curve, vof, result.tissue_curve):
        out.write(f"{t:.6g},{a:.6g},{'' if not np.isfinite(v) else f'{v:.6g}'},{c:.6g}\n")
    return out.getvalue().encode()


def write_outputs(result: PerfusionResult, output_dir, force: bool = False) -> dict[str, str]:
    """Write the NRRD maps, the curves, the label map and (DICOM input) the Parametric Maps and SEG."""
    from . import export

    out = Path(output_dir)
    kinds = ("nrrd", "pm", "seg") if result.headers else ("nrrd",)
    written = export.write_result_files(result, out, kinds, result.headers, force=force)
    written["curves"] = str(write_bytes_atomic(out / "curves.csv", _curves_csv(result), force))
    return written


def analyze_path(
    input_path,
    *,
    modality: str,
    method: str = "csvd",
    aif_mask=None,
    vof_mask=None,
    frame_interval_s=None,
    output_dir=None,
    force: bool = False,
    **options,
) -> tuple[dict, dict]:
    """Load, check outputs, analyse, write. Returns (result JSON, written files)."""
    from quantgpu.io import load_series_4d

    series = load_series_4d(input_path, frame_interval_s=frame_interval_s)
    out = prepare_output_dir(output_dir)
    if out is not None:  # refuse before computing anything
        for name in output_names(modality, bool(series.headers)):
            check_writable(out / name, force)
    result = analyze(
        series,
        modality,
        method,
        aif_mask=_load_mask(aif_mask, series, "AIF mask"),
        vof_mask=_load_mask(vof_mask, series, "VOF mask"),
        **options,
    )
    written = write_outputs(result, out, force) if out is not None else {}
    return result.to_json(), written


def run(args: argparse.Namespace) -> dict:
    result, written = analyze_path(
        args.input,
        modality=args.modality,
        method=args.method,
        aif_mask=args.aif_mask,
        vof_mask=args.vof_mask,
        frame_interval_s=args.frame_interval,
        output_dir=args.output_dir,
        force=args.force,
        kh=args.kh,
        density=args.density,
        model=args.model,
        oi_threshold=args.oi_threshold,
        te_s=args.te,
        flip_angle_deg=args.flip_angle,
        tr_s=args.tr,
        t1_s=args.t1,
        motion_correction=args.motion_correction,
        backend=args.backend,
    )
    log.info("wrote %d output files", len(written))
    return result


def summary_line(result: dict) -> str:
    if result.get("volumes_ml") is None:
        return f"{result['modality']} {result['method']}: {result['frames']} frames, backend {result['backend']}"
    v = result["volumes_ml"]
    ratio = result["mismatch_ratio"]
    ratio_text = "inf" if ratio is None and result["parameters"]["stroke"]["mismatch_ratio_infinite"] else ratio
    if isinstance(ratio_text, float):
        ratio_text = f"{ratio_text:.2f}"
    e = result["eligibility"]
    return (
        f"core {v['core']:.1f} mL, Tmax>6s {v['tmax_gt_6s']:.1f} mL, mismatch {result['mismatch_volume_ml']:.1f} mL "
        f"(ratio {ratio_text}); DEFUSE 3 {'+' if e['defuse3'] else '-'}, EXTEND {'+' if e['extend'] else '-'}; "
        f"{result['method']} on {result['backend']}"
    )


def demo(output_dir, backend: str = "auto", force: bool = False) -> dict:
    """Analyse the stroke phantom written as DICOM: maps, Parametric Maps, SEG; returns the JSON + summary."""
    from .phantom import make_phantom, write_phantom

    out = Path(output_dir)
    phantom = make_phantom()
    inputs = write_phantom(out / "input", phantom, force=force)
    result, written = analyze_path(
        inputs["dicom"], modality="ct", method="osvd", output_dir=out, force=force, backend=backend
    )
    result = dict(result)
    result["truth_volumes_ml"] = dict(phantom.truth_volumes_ml)
    result["outputs"] = written
    result["summary"] = summary_line(result)
    return result
