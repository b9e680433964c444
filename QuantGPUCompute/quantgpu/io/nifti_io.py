"""NIfTI-1/2 input through nibabel.

nibabel returns data indexed [i, j, k(, t)] and an affine from voxel (i, j, k) to
RAS+ mm (the sform, else the qform: nibabel's ``img.affine``); we transpose to
[k, j, i] and flip to LPS. The 4th axis is time; its step (pixdim[4]) counts only
with a known unit (xyzt_units: s, ms, us), otherwise the caller gives the interval.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import InputError
from .volume import LPS_TO_RAS, spacing_from_matrix

_TIME_SCALE = {"sec": 1.0, "msec": 1e-3, "usec": 1e-6}


def read_nifti(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, tuple, float | None]:
    """(array [k,j,i] or [t,k,j,i] float32, ijk_to_lps, spacing (dk,dj,di), frame interval s or None)."""
    import nibabel as nib  # not bundled with desktop Slicer, imported on use

    path = Path(path)
    try:
        img = nib.load(str(path))
        data = np.asanyarray(img.dataobj)  # applies scl_slope / scl_inter
    except Exception as exc:
        raise InputError(f"unreadable NIfTI file ({type(exc).__name__}: {exc})", path) from None
    if data.dtype.kind not in "biuf":
        raise InputError(f"unsupported NIfTI data type {data.dtype}", path)
    while data.ndim > 4 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim == 2:
        data = data[..., None]
    if data.ndim not in (3, 4):
        raise InputError(f"expected a 3D or 4D image, got shape {data.shape}", path)
    m = LPS_TO_RAS @ np.asarray(img.affine, dtype=float)
    unit = m[:3, :3] / np.linalg.norm(m[:3, :3], axis=0)
    if np.max(np.abs(unit.T @ unit - np.eye(3))) > 1e-3:
        raise InputError("sheared geometry: the image axes are not orthogonal", path)
    interval = None
    if data.ndim == 4:
        zooms = img.header.get_zooms()
        _, time_unit = img.header.get_xyzt_units()
        step = float(zooms[3]) if len(zooms) > 3 else 0.0
        if time_unit in _TIME_SCALE and step > 0:
            interval = step * _TIME_SCALE[time_unit]
        array = np.transpose(data, (3, 2, 1, 0))
    else:
        array = np.transpose(data, (2, 1, 0))
    return np.ascontiguousarray(array, dtype=np.float32), m, spacing_from_matrix(m), interval
