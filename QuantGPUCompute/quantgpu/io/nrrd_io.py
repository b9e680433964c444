"""NRRD volumes and volume sequences, with the geometry Slicer and ITK use.

Files are written with ``space: left-posterior-superior``, ``space directions``
(the i, j, k steps in mm) and ``space origin`` (the centre of voxel 0), so that
Slicer, ITK and ``read_nrrd`` agree. A 4D file is a Slicer volume sequence
(Slicer Docs, developer_guide/modules/sequences.md): axes I, J, K, list with
``kinds: domain domain domain list`` and the frame times in the custom field
``axis 3 index values`` (seconds). Reading accepts the list axis first or last
and RAS or LPS space.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..output import write_with
from .volume import LPS_TO_RAS, Volume, spacing_from_matrix

_SPACES_LPS = {"left-posterior-superior", "lps"}
_SPACES_RAS = {"right-anterior-superior", "ras"}


def _check_matrix(m: np.ndarray, path) -> None:
    cols = m[:3, :3]
    norms = np.linalg.norm(cols, axis=0)
    if np.any(norms <= 0) or not np.all(np.isfinite(cols)):
        raise InputError("invalid space directions (zero or non-finite axis)", path)
    unit = cols / norms
    off = unit.T @ unit - np.eye(3)
    if np.max(np.abs(off)) > 1e-3:
        raise InputError("sheared geometry: the image axes are not orthogonal", path)


def read_nrrd(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, tuple, np.ndarray | None]:
    """(array [k,j,i] or [t,k,j,i] float32, ijk_to_lps, spacing (dk,dj,di), frame times or None)."""
    import nrrd  # pynrrd: not bundled with desktop Slicer, imported on use

    path = Path(path)
    try:
        data, header = nrrd.read(str(path), index_order="C")
    except Exception as exc:
        raise InputError(f"unreadable NRRD file ({type(exc).__name__}: {exc})", path) from None
    if data.dtype.kind not in "biuf":
        raise InputError(f"unsupported NRRD pixel type {data.dtype}", path)
    n = data.ndim
    space = str(header.get("space", "")).lower()
    directions = header.get("space directions")
    if directions is None:
        # No world space: axis-aligned at the origin, spacings when given.
        if n != 3:
            raise InputError(f"{n}-D NRRD without space directions is not supported", path)
        spacings = np.asarray(header.get("spacings", [1.0, 1.0, 1.0]), dtype=float)
        directions = np.diag(np.where(np.isfinite(spacings), spacings, 1.0))
        origin = np.zeros(3)
        space = "left-posterior-superior"
    else:
        directions = np.asarray(directions, dtype=float)
        origin = np.asarray(header.get("space origin", np.zeros(3)), dtype=float)
    if space not in _SPACES_LPS | _SPACES_RAS:
        raise InputError(f"unsupported NRRD space {space!r} (expected left-posterior-superior or RAS)", path)
    domain = [a for a in range(n) if np.all(np.isfinite(directions[a]))]
    others = [a for a in range(n) if a not in domain]
    if len(domain) != 3 or len(others) > 1:
        raise InputError(f"expected 3 spatial axes and at most one time axis, got sizes {list(data.shape[::-1])}", path)
    m = np.eye(4)
    m[:3, :3] = np.column_stack([directions[a] for a in domain])
    m[:3, 3] = origin
    if space in _SPACES_RAS:
        m = LPS_TO_RAS @ m
    _check_matrix(m, path)
    times = None
    if others:
        axis = others[0]  # file axis order; C order reverses it
        data = np.moveaxis(data, n - 1 - axis, 0)
        times = _frame_times(header, axis, data.shape[0], path)
    return np.ascontiguousarray(data, dtype=np.float32), m, spacing_from_matrix(m), times


def _frame_times(header: dict, axis: int, n_frames: int, path) -> np.ndarray | None:
    """Frame times in s from a Slicer sequence or MultiVolume header; None when absent."""
    text = header.get(f"axis {axis} index values")
    scale = 1.0
    if text is None and "MultiVolume.FrameLabels" in header:
        text = str(header["MultiVolume.FrameLabels"]).replace(",", " ")
        unit = str(header.get("MultiVolume.FrameIdentifyingDICOMTagUnits", "ms")).strip().lower()
        scale = {"ms": 1e-3, "s": 1.0, "sec": 1.0}.get(unit)
        if scale is None:
            raise InputError(f"unknown MultiVolume frame label unit {unit!r}", path)
    if text is None:
        return None
    try:
        values = np.array([float(v) for v in str(text).split()], dtype=float) * scale
    except ValueError:
        raise InputError(f"frame times in the NRRD header are not numbers: {str(text)[:60]}", path) from None
    if values.size != n_frames:
        raise InputError(f"{values.size} frame times in the header for {n_frames} frames", path)
    return values - values[0]


def write_nrrd(
    path: str | os.PathLike,
    array: np.ndarray,
    spacing,
    ijk_to_lps: np.ndarray | None = None,
    force: bool = False,
    *,
    frame_times_s=None,
    compress: bool = True,
) -> Path:
    """Write [k,j,i] (or [t,k,j,i] with ``frame_times_s``) as NRRD in LPS space, atomically."""
    import nrrd

    array = np.asarray(array)
    dk, dj, di = (float(s) for s in spacing)
    if ijk_to_lps is None:
        m = np.diag([di, dj, dk, 1.0])
    else:
        m = np.asarray(ijk_to_lps, dtype=float)
        if not np.allclose(spacing_from_matrix(m), (dk, dj, di), rtol=1e-4, atol=1e-6):
            raise InputError(f"spacing {tuple(spacing)} does not match the ijk_to_lps column lengths")
    directions = [m[:3, 0].tolist(), m[:3, 1].tolist(), m[:3, 2].tolist()]
    header = {
        "space": "left-posterior-superior",
        "space origin": m[:3, 3].tolist(),
        "encoding": "gzip" if compress else "raw",
    }
    if frame_times_s is None:
        if array.ndim != 3:
            raise InputError(f"expected a [k, j, i] array, got shape {array.shape}")
        header["space directions"] = directions
        header["kinds"] = ["domain"] * 3
        data = array
    else:
        times = np.asarray(frame_times_s, dtype=float).ravel()
        if array.ndim != 4 or array.shape[0] != times.size:
            raise InputError(f"expected a [t, k, j, i] array with {times.size} frames, got shape {array.shape}")
        header["space directions"] = [*directions, [np.nan] * 3]
        header["kinds"] = ["domain", "domain", "domain", "list"]
        header["labels"] = ["", "", "", "time"]
        header["axis 3 index type"] = "numeric"
        header["axis 3 index values"] = " ".join(f"{t:.9g}" for t in times)
        header["DataNodeClassName"] = "vtkMRMLScalarVolumeNode"
        data = array
    custom = dict.fromkeys(("axis 3 index type", "axis 3 index values", "DataNodeClassName"), "string")
    return write_with(
        path,
        lambda tmp: nrrd.write(str(tmp), np.ascontiguousarray(data), header, index_order="C", custom_field_map=custom),
        force,
    )


def load_nrrd_volume(path: str | os.PathLike) -> Volume:
    array, m, spacing, _times = read_nrrd(path)
    if array.ndim != 3:
        raise InputError(f"holds a {array.shape[0]}-frame time series, not one volume", path)
    return Volume(array=array, spacing=spacing, ijk_to_lps=m, source=str(path))
