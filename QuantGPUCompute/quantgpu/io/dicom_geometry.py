"""Slice order, spacing and orientation of a DICOM series, with the checks that
keep a wrong geometry from passing silently.

- Slices are ordered by ImagePositionPatient projected on the slice normal
  n = row cosine x column cosine (DICOM PS3.3 C.7.6.2.1.1); the slice increment is
  measured from those positions, never taken from SliceThickness (which differs
  from the increment for overlapping reconstructions).
- A series is refused when its slices are not equally spaced (a missing slice),
  when positions move within the image plane from slice to slice (gantry tilt or
  shear: a single IJK->LPS matrix cannot describe it), when sizes or orientations
  are mixed, or when positions repeat in a 3D series.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from .dicom_scan import Header

ORIENTATION_TOL = 1e-4  # direction cosine difference tolerated between slices
POSITION_TOL_MM = 0.01  # positions closer than this along the normal are "the same"
SPACING_ABS_TOL_MM = 0.01
SPACING_REL_TOL = 0.01  # slice gaps may differ from the median by 1 % or 0.01 mm
SHEAR_REL_TOL = 0.01  # in-plane shift per slice tolerated, relative to the increment


@dataclass
class SliceStack:
    """Slices (one header per position, ordered along the normal) and the geometry."""

    positions: list[list[Header]]  # per position (ascending along the normal), the headers there
    origin_lps: np.ndarray
    directions: np.ndarray  # unit columns i (row direction), j (column direction), k (normal)
    spacing: tuple[float, float, float]  # (dk, dj, di) mm


def _floats(value, n: int, what: str, h: Header) -> np.ndarray:
    try:
        arr = np.array([float(v) for v in value], dtype=float)
    except (TypeError, ValueError):
        raise InputError(f"invalid {what}", h.path) from None
    if arr.shape != (n,) or not np.all(np.isfinite(arr)):
        raise InputError(f"invalid {what} (expected {n} numbers)", h.path)
    return arr


def pixel_spacing(h: Header) -> tuple[float, float]:
    """(dj, di): PixelSpacing is (row spacing, column spacing) = (between rows, between columns)."""
    value = h.get("PixelSpacing") or h.get("ImagerPixelSpacing")
    if value is None:
        return (1.0, 1.0)
    ps = _floats(value, 2, "PixelSpacing", h)
    if np.any(ps <= 0):
        raise InputError(f"PixelSpacing must be positive, got {ps.tolist()}", h.path)
    return (float(ps[0]), float(ps[1]))


def _orientation(h: Header) -> np.ndarray:
    iop = _floats(h.get("ImageOrientationPatient"), 6, "ImageOrientationPatient", h)
    row, col = iop[:3], iop[3:]
    if abs(np.linalg.norm(row) - 1) > 1e-3 or abs(np.linalg.norm(col) - 1) > 1e-3 or abs(row @ col) > 1e-3:
        raise InputError("ImageOrientationPatient is not two orthogonal unit vectors", h.path)
    return iop


def _check_same_grid(headers: list[Header]) -> None:
    first = headers[0]
    size0 = (int(first.get("Rows")), int(first.get("Columns")))
    ps0 = pixel_spacing(first)
    for h in headers[1:]:
        size = (int(h.get("Rows")), int(h.get("Columns")))
        if size != size0:
            raise InputError(
                f"mixed image sizes in one series: {size[0]}x{size[1]} here, {size0[0]}x{size0[1]} in {first.name}",
                h.path,
            )
        ps = pixel_spacing(h)
        if not np.allclose(ps, ps0, rtol=1e-4, atol=1e-6):
            raise InputError(f"mixed pixel spacing in one series: {ps} here, {ps0} in {first.name}", h.path)


def stack_slices(headers: list[Header], source: str, allow_repeats: bool) -> SliceStack:
    """Order the slices of one series along the normal and check the geometry.

    With ``allow_repeats`` (4D), several headers may share a position; each
    position must then hold the same number of them (checked by the caller).
    """
    _check_same_grid(headers)
    dj, di = pixel_spacing(headers[0])
    has_geometry = [
        h.get("ImagePositionPatient") is not None and h.get("ImageOrientationPatient") is not None for h in headers
    ]
    if not all(has_geometry):
        if len(headers) == 1:
            # A projection image (MG, DX) has no patient position: one slice, axis-aligned.
            thickness = headers[0].get("SliceThickness")
            dk = float(thickness) if thickness not in (None, "") and float(thickness) > 0 else 1.0
            return SliceStack([headers], np.zeros(3), np.eye(3), (dk, dj, di))
        missing = headers[has_geometry.index(False)]
        raise InputError(
            f"no ImagePositionPatient/ImageOrientationPatient: cannot order the {len(headers)} slices of this series",
            missing.path,
        )

    iop0 = _orientation(headers[0])
    for h in headers[1:]:
        iop = _orientation(h)
        if np.max(np.abs(iop - iop0)) > ORIENTATION_TOL:
            raise InputError(
                f"mixed slice orientations in one series: {np.round(iop, 4).tolist()} here, "
                f"{np.round(iop0, 4).tolist()} in {headers[0].name}",
                h.path,
            )
    row, col = iop0[:3], iop0[3:]
    normal = np.cross(row, col)
    ipp = np.array([_floats(h.get("ImagePositionPatient"), 3, "ImagePositionPatient", h) for h in headers])
    along = ipp @ normal
    order = np.argsort(along, kind="stable")

    # Group equal positions (4D series repeat each position once per frame).
    positions: list[list[int]] = [[int(order[0])]]
    for a, b in itertools.pairwise(order):
        if along[b] - along[a] > POSITION_TOL_MM:
            positions.append([int(b)])
        else:
            positions[-1].append(int(b))
    if not allow_repeats:
        for group in positions:
            if len(group) > 1:
                a, b = headers[group[0]], headers[group[1]]
                raise InputError(
                    f"duplicate slice position {along[group[0]]:.3f} mm along the normal in {a.name} and "
                    f"{b.name} ({len(group)} slices there); if this is a time series, load it as 4D",
                    source,
                )

    firsts = np.array([g[0] for g in positions])
    # Representative location of each position: mean of its slices (they agree within tolerance).
    loc = np.array([ipp[g].mean(axis=0) for g in positions])
    if len(positions) == 1:
        thickness = headers[0].get("SpacingBetweenSlices") or headers[0].get("SliceThickness")
        dk = float(thickness) if thickness not in (None, "") and float(thickness) > 0 else 1.0
    else:
        steps = np.diff(loc, axis=0)
        increments = steps @ normal
        median = float(np.median(increments))
        tol = max(SPACING_ABS_TOL_MM, SPACING_REL_TOL * median)
        bad = np.flatnonzero(np.abs(increments - median) > tol)
        if bad.size:
            n = int(bad[0])
            a, b = headers[firsts[n]], headers[firsts[n + 1]]
            raise InputError(
                f"non-uniform slice spacing: gap of {increments[n]:.3f} mm between {a.name} and {b.name} "
                f"(slices {n} and {n + 1} of {len(positions)}), expected {median:.3f} mm"
                f"{' (missing slices?)' if increments[n] > median else ''}",
                source,
            )
        in_plane = steps - np.outer(increments, normal)
        shift = np.linalg.norm(in_plane, axis=1)
        worst = int(np.argmax(shift))
        if shift[worst] > SHEAR_REL_TOL * median:
            tilt = headers[0].get("GantryDetectorTilt")
            tilt_text = f", GantryDetectorTilt {float(tilt):g} deg" if tilt not in (None, "") else ""
            raise InputError(
                f"gantry tilt or sheared slices: positions shift {shift[worst]:.3f} mm within the image plane per "
                f"{median:.3f} mm slice step{tilt_text}; one IJK->LPS matrix cannot describe this series "
                "(resample it first, e.g. with Slicer's DICOM acquisition geometry regularization)",
                source,
            )
        # Mean increment over the whole stack: more precise than any single gap.
        dk = float((loc[-1] - loc[0]) @ normal / (len(positions) - 1))

    return SliceStack(
        positions=[[headers[i] for i in g] for g in positions],
        origin_lps=loc[0],
        directions=np.column_stack([row, col, normal]),
        spacing=(dk, dj, di),
    )
