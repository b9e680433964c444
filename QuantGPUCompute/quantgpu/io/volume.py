"""Image containers shared by every module: a 3D volume and a 4D (time) series.

Conventions (DESIGN.md "Geometry and units"):
- arrays are indexed [k, j, i] (slice, row, column), like Slicer's ``arrayFromVolume``;
- ``spacing`` is (dk, dj, di) in mm, in the same order; dk is the slice increment
  measured from ImagePositionPatient, not SliceThickness;
- ``ijk_to_lps`` maps homogeneous (i, j, k, 1) to DICOM patient coordinates (LPS, mm);
  its columns are the i, j, k steps and the position of voxel (0, 0, 0).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

# LPS <-> RAS flips the first two axes (DICOM PS3.3 C.7.6.2.1.1 vs Slicer's RAS).
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def lps_to_ras_matrix(ijk_to_lps: np.ndarray) -> np.ndarray:
    """IJK->LPS to IJK->RAS (the same matrix converts back)."""
    return LPS_TO_RAS @ np.asarray(ijk_to_lps, dtype=float)


def ijk_to_lps_matrix(origin_lps, directions, spacing_kji) -> np.ndarray:
    """Build IJK->LPS from the origin, unit direction columns (i, j, k) and KJI spacing."""
    directions = np.asarray(directions, dtype=float).reshape(3, 3)
    dk, dj, di = (float(s) for s in spacing_kji)
    m = np.eye(4)
    m[:3, :3] = directions * np.array([di, dj, dk])
    m[:3, 3] = np.asarray(origin_lps, dtype=float)
    return m


def spacing_from_matrix(ijk_to_xyz: np.ndarray) -> tuple[float, float, float]:
    """(dk, dj, di): the lengths of the k, j, i columns."""
    norms = np.linalg.norm(np.asarray(ijk_to_xyz, dtype=float)[:3, :3], axis=0)
    return (float(norms[2]), float(norms[1]), float(norms[0]))


def default_ijk_to_lps(spacing_kji) -> np.ndarray:
    """Axis-aligned geometry at the origin (used when the caller gives no matrix)."""
    return ijk_to_lps_matrix((0.0, 0.0, 0.0), np.eye(3), spacing_kji)


@dataclass
class Volume:
    """A scalar volume: float32 values [k, j, i] with explicit geometry."""

    array: np.ndarray
    spacing: tuple[float, float, float]
    ijk_to_lps: np.ndarray
    modality: str | None = None
    source: str = ""
    headers: list[Any] = field(default_factory=list, repr=False)
    series_instance_uid: str | None = None

    @property
    def ijk_to_ras(self) -> np.ndarray:
        return lps_to_ras_matrix(self.ijk_to_lps)

    @property
    def origin_lps(self) -> np.ndarray:
        return np.asarray(self.ijk_to_lps, dtype=float)[:3, 3].copy()

    @property
    def directions(self) -> np.ndarray:
        """Unit direction columns (i, j, k) in LPS."""
        m = np.asarray(self.ijk_to_lps, dtype=float)[:3, :3]
        return m / np.linalg.norm(m, axis=0)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.array.shape)


@dataclass
class Series4D:
    """A time series of volumes: float32 frames [t, k, j, i] sharing one geometry.

    ``frame`` is the first frame as a ``Volume`` (its geometry and headers);
    the geometry attributes are also available directly on the series.
    ``frame_times_s`` are seconds relative to the first frame (non-uniform kept).
    """

    frames: np.ndarray
    frame_times_s: np.ndarray
    frame: Volume
    echo_time_s: float | None = None
    repetition_time_s: float | None = None
    flip_angle_deg: float | None = None

    @property
    def spacing(self) -> tuple[float, float, float]:
        return self.frame.spacing

    @property
    def ijk_to_lps(self) -> np.ndarray:
        return self.frame.ijk_to_lps

    @property
    def ijk_to_ras(self) -> np.ndarray:
        return self.frame.ijk_to_ras

    @property
    def headers(self) -> list[Any]:
        return self.frame.headers

    @property
    def modality(self) -> str | None:
        return self.frame.modality

    @property
    def source(self) -> str:
        return self.frame.source

    @property
    def series_instance_uid(self) -> str | None:
        return self.frame.series_instance_uid

    @property
    def n_frames(self) -> int:
        return int(self.frames.shape[0])

    def volume(self, t: int) -> Volume:
        """Frame ``t`` as a Volume (a view of the frame's values, same geometry)."""
        f = self.frame
        return Volume(self.frames[t], f.spacing, f.ijk_to_lps, f.modality, f.source, [], f.series_instance_uid)


@dataclass
class SeriesInfo:
    """What ``list_series`` reports about one DICOM series (no patient data)."""

    series_instance_uid: str
    series_number: int | None
    series_description: str
    modality: str | None
    files: list[str] = field(repr=False)
    rows: int | None = None
    columns: int | None = None
    n_positions: int = 0
    n_frames: int = 1

    @property
    def n_files(self) -> int:
        return len(self.files)

    @property
    def is_4d(self) -> bool:
        return self.n_frames > 1

    def label(self) -> str:
        """Short description for messages: number, description, modality, file count."""
        num = f"#{self.series_number}" if self.series_number is not None else "#?"
        desc = f" '{self.series_description}'" if self.series_description else ""
        return f"series {num}{desc} ({self.modality or '?'}, {self.n_files} files)"
