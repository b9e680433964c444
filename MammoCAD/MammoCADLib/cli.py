"""``quantgpu mammo``: mammography CAD on DICOM MG files or directories.

quantgpu mammo INPUT... [--operating-point NAME] [--pixel-spacing MM] [--json PATH|-]
                        [--output-dir DIR] [--backend auto|cpu|gpu] [--force]

The result JSON holds ``images`` (one per image, issue 5 item 9 keys), ``operating_point`` and
``backend``. With --output-dir, the CAD SR, one SEG per image, the overview PNG/PDF and
result.json are written there.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from quantgpu.backend import report, resolve
from quantgpu.cli import add_common_arguments, input_path
from quantgpu.errors import InputError

log = logging.getLogger("quantgpu.mammo")


def _positive_mm(value: str) -> float:
    try:
        mm = float(value)
    except ValueError:
        raise InputError(f"--pixel-spacing: not a number: {value!r}") from None
    if not 0.001 <= mm <= 5.0:
        raise InputError(f"--pixel-spacing: {mm} mm is outside 0.001-5 mm")
    return mm


def add_parser(subparsers) -> argparse.ArgumentParser:
    from .export import DEFAULT_OPERATING_POINT

    p = subparsers.add_parser(
        "mammo",
        help="mammography CAD: density, calcification clusters, masses, CAD SR",
        description="Mammography CAD on DICOM MG (For Presentation / For Processing) or Secondary Capture "
        "with Modality MG. Marks are shown at a named operating point; every candidate is in the JSON.",
    )
    p.add_argument("inputs", nargs="+", type=input_path, metavar="INPUT", help="DICOM files or directories")
    p.add_argument(
        "--operating-point",
        default=DEFAULT_OPERATING_POINT,
        metavar="NAME",
        help="high-sensitivity, balanced (default) or high-specificity",
    )
    p.add_argument(
        "--pixel-spacing",
        type=_positive_mm,
        metavar="MM",
        help="pixel spacing in mm, overriding the header (needed for mm outputs when the header has none)",
    )
    add_common_arguments(p)
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> dict:
    from . import export

    operating_point = export.check_operating_point(args.operating_point)
    backend = resolve(args.backend)
    report(backend)
    items = export.analyze_exam(args.inputs, pixel_spacing_mm=args.pixel_spacing, backend=backend)
    ran = {getattr(item.analysis, "backend", backend.name) for item in items}
    backend_name = ran.pop() if len(ran) == 1 else ",".join(sorted(ran))
    if args.output_dir:
        export.write_outputs(args.output_dir, items, operating_point, backend_name, force=args.force)
    result = export.result_json(items, operating_point, backend_name)
    if args.output_dir:
        result["output_dir"] = str(Path(args.output_dir).resolve())
    return result


def demo(output_dir: Path, backend: str = "auto", force: bool = False) -> dict:
    """Write a generated four-view phantom exam as DICOM MG, analyse it and write every output."""
    from quantgpu.output import prepare_output_dir

    from . import export
    from .mgio import write_phantom_exam

    out = prepare_output_dir(output_dir)
    paths = write_phantom_exam(out / "dicom", shape=(1536, 1248), seed=0, force=force)
    resolved = resolve(backend)
    items = export.analyze_exam(paths, backend=resolved)
    backend_name = items[0].analysis.backend if items else resolved.name
    written = export.write_outputs(out, items, export.DEFAULT_OPERATING_POINT, backend_name, force=force)
    result = export.result_json(items, export.DEFAULT_OPERATING_POINT, backend_name)
    result["outputs"] = written
    return result
