"""``quantgpu`` command line.

Exit codes: 0 success; 2 bad input or usage (one line on stderr, no traceback);
1 internal error. Each analysis module registers its subcommand from
``<M>Lib/cli.py`` through ``add_parser(subparsers)``; the module's ``run(args)``
returns the result dictionary that is printed as JSON.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
import traceback
from pathlib import Path

from . import __version__
from .backend import BACKEND_CHOICES, available_backends, gpu_name, resolve
from .errors import InputError
from .output import dumps_json, prepare_output_dir, write_json

log = logging.getLogger("quantgpu")

# subcommand -> module providing add_parser(subparsers) and demo(output_dir, backend, force)
ANALYSIS_COMMANDS = {
    "calcium": "CalciumScoringLib.cli",
    "perfusion": "PerfusionAnalysisLib.cli",
    "mammo": "MammoCADLib.cli",
}


class UsageError(InputError):
    """Command-line usage error (exit 2)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2, as for every bad input
        raise UsageError(f"{self.prog}: {message}")


def add_common_arguments(parser: argparse.ArgumentParser, *, output_dir: bool = True) -> None:
    """Options that every analysis subcommand accepts."""
    parser.add_argument(
        "--backend",
        choices=BACKEND_CHOICES,
        default="auto",
        help="compute backend (default: auto = GPU when usable, else CPU)",
    )
    parser.add_argument("--json", metavar="PATH|-", help="write the result JSON to PATH, or '-' for stdout")
    if output_dir:
        parser.add_argument("--output-dir", metavar="DIR", help="write output files (DICOM, NRRD, report) here")
    parser.add_argument("--force", action="store_true", help="overwrite existing output files")


def emit_result(result: dict, args: argparse.Namespace) -> None:
    """Print or write the result JSON as ``--json`` asks (stdout summary otherwise)."""
    target = getattr(args, "json", None)
    if target == "-":
        sys.stdout.write(dumps_json(result) + "\n")
    elif target:
        write_json(target, result, force=getattr(args, "force", False))
    else:
        summary = result.get("summary") if isinstance(result, dict) else None
        sys.stdout.write((summary or dumps_json(result)) + "\n")


def _info(args: argparse.Namespace) -> int:
    from .slicer_env import slicer_core_version

    info = {
        "version": __version__,
        "backends": available_backends(),
        "gpu": gpu_name(),
        "slicer_core": slicer_core_version(),
        "python": sys.version.split()[0],
    }
    if args.json == "-" or args.json is None:
        sys.stdout.write(json.dumps(info, indent=2) + "\n")
    else:
        write_json(args.json, info, force=args.force)
    return 0


def _demo(args: argparse.Namespace) -> int:
    unknown = sorted(set(args.modules) - set(ANALYSIS_COMMANDS))
    if unknown:
        raise UsageError(f"unknown demo module(s): {', '.join(unknown)}; choose from {', '.join(ANALYSIS_COMMANDS)}")
    resolve(args.backend)  # a missing GPU is a usage error before anything is written
    out = prepare_output_dir(args.output_dir or "quantgpu-demo")
    results = {}
    for name in args.modules or list(ANALYSIS_COMMANDS):
        module = importlib.import_module(ANALYSIS_COMMANDS[name])
        sub = out / name
        results[name] = module.demo(sub, backend=args.backend, force=args.force)
        line = results[name].get("summary", "") if isinstance(results[name], dict) else ""
        sys.stdout.write(f"[{name}] {line} -> {sub}\n")
    write_json(out / "demo.json", results, force=True)
    sys.stdout.write(f"demo results in {out.resolve()}\n")
    return 0


def _web(args: argparse.Namespace) -> int:
    from .web.app import serve

    return serve(host=args.host, port=args.port, sample=args.sample, backend=args.backend, open_browser=False)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="quantgpu", description="QuantGPU: calcium scoring, perfusion and mammography CAD")
    parser.add_argument("--version", action="version", version=f"quantgpu {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("info", help="versions, backends and GPU")
    p.add_argument("--json", metavar="PATH|-", default="-")
    p.add_argument("--force", action="store_true")
    p.set_defaults(func=_info)

    for module_name in ANALYSIS_COMMANDS.values():
        importlib.import_module(module_name).add_parser(sub)

    p = sub.add_parser("demo", help="run the analyses on the bundled sample phantoms")
    p.add_argument(
        "modules", nargs="*", metavar="MODULE", help=f"modules to run (default: all of {', '.join(ANALYSIS_COMMANDS)})"
    )
    p.add_argument("--output-dir", metavar="DIR", help="where to write results (default ./quantgpu-demo)")
    p.add_argument("--backend", choices=BACKEND_CHOICES, default="auto")
    p.add_argument("--force", action="store_true", help="overwrite earlier demo results")
    p.set_defaults(func=_demo)

    p = sub.add_parser("web", help="serve the browser workstation (trame-slicer)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1, loopback only)")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--sample", metavar="NAME", help="load a sample data set at start")
    p.add_argument("--backend", choices=BACKEND_CHOICES, default="auto")
    p.set_defaults(func=_web)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    debug = "--debug" in argv or os.environ.get("QUANTGPU_DEBUG") == "1"
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        logging.basicConfig(
            level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
        )
        if not getattr(args, "func", None):
            parser.print_help(sys.stderr)
            return 2
        result = args.func(args)
        if isinstance(result, dict):
            emit_result(result, args)
            return 0
        return int(result or 0)
    except InputError as exc:
        sys.stderr.write(f"quantgpu: error: {_one_line(exc)}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("quantgpu: interrupted\n")
        return 130
    except Exception as exc:  # internal error: exit 1, traceback only on request
        if debug:
            traceback.print_exc()
        sys.stderr.write(f"quantgpu: internal error: {type(exc).__name__}: {_one_line(exc)}\n")
        return 1


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def input_path(value: str) -> Path:
    """argparse type for an input that must exist (checked again by the loaders)."""
    path = Path(value)
    if not path.exists():
        raise InputError("no such file or directory", path)
    return path


if __name__ == "__main__":
    sys.exit(main())
