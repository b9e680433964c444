"""Check written DICOM files with the standard validators (used by the tests of every module).

- ``dciodvfy`` (dicom3tools) checks an object against its IOD; its lines start with
  "Error - " or "Warning - ". A file is valid when there is no Error line.
- ``dsrdump`` (DCMTK) parses and prints a Structured Report; it fails (exit status
  != 0 or "E:" lines) when the content tree cannot be read.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path

from pydicom import dcmread

from .errors import QuantGPUError

SR_MODALITY = "SR"
_TIMEOUT_S = 120


def _run(tool: str, args: list[str]) -> tuple[int, list[str]]:
    exe = shutil.which(tool)
    if exe is None:
        raise QuantGPUError(f"{tool} is not installed (Debian packages dicom3tools / dcmtk)")
    proc = subprocess.run([exe, *args], capture_output=True, text=True, errors="replace", timeout=_TIMEOUT_S)
    return proc.returncode, (proc.stdout + proc.stderr).splitlines()


def dciodvfy(path: str | os.PathLike, ignore: Iterable[str] = ()) -> tuple[bool, list[str]]:
    """Run ``dciodvfy``; returns (no Error lines, the Error and Warning lines).

    ``ignore``: regular expressions of Error lines known to be false alarms (say why
    at the call site).
    """
    _rc, lines = _run("dciodvfy", [str(path)])
    patterns = [re.compile(p) for p in ignore]
    messages = [line for line in lines if line.startswith(("Error", "Warning"))]
    errors = [m for m in messages if m.startswith("Error") and not any(p.search(m) for p in patterns)]
    return not errors, messages


def dsrdump(path: str | os.PathLike) -> tuple[bool, list[str]]:
    """Run ``dsrdump``; returns (parsed without error, its output lines)."""
    rc, lines = _run("dsrdump", [str(path)])
    failed = rc != 0 or any(line.startswith(("E:", "F:")) for line in lines)
    return not failed, lines


def validate(path: str | os.PathLike, ignore: Iterable[str] = ()) -> tuple[bool, list[str]]:
    """``dciodvfy`` on any object, plus ``dsrdump`` on Structured Reports.

    Returns (ok, messages): messages are dciodvfy's Error/Warning lines and, for an
    SR that dsrdump cannot read, dsrdump's output.
    """
    path = Path(path)
    ok, messages = dciodvfy(path, ignore)
    modality = dcmread(path, stop_before_pixels=True, specific_tags=["Modality"]).get("Modality")
    if modality == SR_MODALITY:
        sr_ok, lines = dsrdump(path)
        if not sr_ok:
            messages = [*messages, *[f"dsrdump: {line}" for line in lines]]
        ok = ok and sr_ok
    return ok, messages
