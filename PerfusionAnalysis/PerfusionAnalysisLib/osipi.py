"""Reader for the OSIPI DCE-DSC-MRI CodeCollection reference CSVs (Apache-2.0).

The files store each curve as space-separated numbers inside one CSV cell (perfusion.md §5.1).
Cells with several numbers become float64 arrays, single numbers become floats, anything else
stays a string (labels).
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np

from quantgpu.errors import InputError

ENV_VAR = "QUANTGPU_OSIPI_DIR"


def _cell(text: str):
    parts = text.split()
    if not parts:
        return text
    try:
        values = np.array([float(p) for p in parts])
    except ValueError:
        return text
    return float(values[0]) if values.size == 1 and len(parts) == 1 else values


def read_osipi_csv(path) -> list[dict]:
    """Rows of an OSIPI CSV as dicts (curves as arrays, numbers as floats, labels as strings)."""
    path = Path(path)
    if not path.is_file():
        raise InputError("OSIPI reference file not found", path=path)
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames:
            raise InputError("empty OSIPI CSV (no header)", path=path)
        rows = []
        for row in reader:
            parsed = {key.strip(): _cell(value or "") for key, value in row.items() if key is not None}
            if "label" in parsed and not isinstance(parsed["label"], str):
                parsed["label"] = row["label"].strip()
            rows.append(parsed)
    if not rows:
        raise InputError("OSIPI CSV has no data rows", path=path)
    return rows


def osipi_data_dir(repo_root: Path | None = None) -> Path:
    """Location of the OSIPI data: ``$QUANTGPU_OSIPI_DIR`` or ``<repo>/../shared/data/osipi``."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env)
    root = repo_root if repo_root is not None else Path(__file__).resolve().parents[2]
    return (root / ".." / "shared" / "data" / "osipi").resolve()


def read_osipi_reference(name: str, data_dir: Path | None = None) -> list[dict]:
    """Rows of one OSIPI reference file, found through ``osipi_data_dir`` (tests and conformance runs)."""
    path = Path(data_dir if data_dir is not None else osipi_data_dir()) / name
    if not path.is_file():
        raise InputError(f"OSIPI reference data missing (set {ENV_VAR} or place shared/ beside the repository)", path)
    return read_osipi_csv(path)
