"""Importing the I/O and MRML layers stays light: desktop Slicer bundles pydicom and numpy but
not pynrrd or nibabel, and the array modules must not pull in slicer/vtk."""

from __future__ import annotations

import subprocess
import sys


def test_import_does_not_load_optional_or_slicer_packages():
    code = (
        "import sys, quantgpu.io, quantgpu.mrml; "
        "print(sorted(m for m in ('nrrd', 'nibabel', 'slicer', 'vtk', 'cupy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]"
