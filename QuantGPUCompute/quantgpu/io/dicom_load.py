"""Load DICOM series as ``Volume`` / ``Series4D`` (headers first, then pixels)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import InputError
from .dicom_geometry import SliceStack, stack_slices
from .dicom_scan import Header, dcmread, expand_paths, group_by_series, read_headers, series_label
from .dicom_time import order_frames
from .volume import Series4D, SeriesInfo, Volume, ijk_to_lps_matrix

PathInput = str | os.PathLike | Sequence[str | os.PathLike]


def _scan(path_or_paths: PathInput) -> tuple[dict[str, list[Header]], str]:
    files, source = expand_paths(path_or_paths)
    headers = read_headers(files, source)
    return group_by_series(headers), source


def list_dicom_series(path_or_paths: PathInput) -> list[SeriesInfo]:
    """The image series under a directory (or in a file list), sorted by series number."""
    groups, _ = _scan(path_or_paths)
    infos = []
    for uid, headers in groups.items():
        ds = headers[0].ds
        n_frames = 1
        n_positions = len(headers)
        try:
            stack = stack_slices(headers, str(headers[0].path.parent), allow_repeats=True)
            n_positions = len(stack.positions)
            n_frames = len(headers) // n_positions if len(headers) % n_positions == 0 else 1
        except InputError:
            pass  # listing never fails on a broken series; loading it reports the problem
        num = ds.get("SeriesNumber")
        infos.append(
            SeriesInfo(
                series_instance_uid=uid,
                series_number=int(num) if num not in (None, "") else None,
                series_description=str(ds.get("SeriesDescription", "") or ""),
                modality=str(ds.get("Modality")) if ds.get("Modality") else None,
                files=list(dict.fromkeys(str(h.path) for h in headers)),
                rows=int(ds.Rows),
                columns=int(ds.Columns),
                n_positions=n_positions,
                n_frames=n_frames,
            )
        )
    infos.sort(key=lambda s: (s.series_number is None, s.series_number or 0, s.series_description))
    return infos


def _one_series(groups: dict[str, list[Header]], source: str) -> list[Header]:
    if len(groups) == 1:
        return next(iter(groups.values()))
    labels = "; ".join(series_label(h) for h in groups.values())
    raise InputError(f"{len(groups)} series found where one is expected: {labels}; choose one series", source)


class PixelReader:
    """Reads slices' stored values; an enhanced multi-frame file is decoded once for all its frames."""

    def __init__(self) -> None:
        self._frames: dict[Path, np.ndarray] = {}

    def _decode(self, h: Header) -> np.ndarray:
        try:
            ds = dcmread(h.path)
        except Exception as exc:
            raise InputError(f"unreadable DICOM file ({type(exc).__name__}: {exc})", h.path) from None
        if "PixelData" not in ds and "FloatPixelData" not in ds and "DoubleFloatPixelData" not in ds:
            raise InputError("DICOM image has no pixel data", h.path)
        if int(ds.get("SamplesPerPixel", 1)) != 1:
            raise InputError(f"colour images are not supported ({ds.get('PhotometricInterpretation')})", h.path)
        n_frames = int(ds.get("NumberOfFrames", 1) or 1)
        if n_frames > 1 and h.frame is None:
            raise InputError(
                "multi-frame image without per-frame geometry (functional groups) is not supported", h.path
            )
        try:
            stored = ds.pixel_array
        except Exception as exc:
            ts = getattr(ds.file_meta, "TransferSyntaxUID", "?")
            raise InputError(f"cannot decode pixel data (transfer syntax {ts}): {exc}", h.path) from None
        expected = (int(ds.Rows), int(ds.Columns)) if n_frames == 1 else (n_frames, int(ds.Rows), int(ds.Columns))
        if stored.shape != expected:
            raise InputError(f"pixel data shape {stored.shape} does not match the header {expected}", h.path)
        return stored

    def __call__(self, h: Header) -> np.ndarray:
        """One slice's values with the modality rescale applied, float32 [rows, columns]."""
        if h.frame is None:
            stored = self._decode(h)
        else:
            if h.path not in self._frames:
                self._frames[h.path] = self._decode(h)
            stored = self._frames[h.path][h.frame]
        # Modality LUT (PS3.3 C.11.1): output = stored * RescaleSlope + RescaleIntercept.
        slope = float(h.get("RescaleSlope", 1.0) or 1.0)
        intercept = float(h.get("RescaleIntercept", 0.0) or 0.0)
        values = stored.astype(np.float32)
        if slope != 1.0:
            values *= np.float32(slope)
        if intercept != 0.0:
            values += np.float32(intercept)
        return values


def _volume_from_stack(stack: SliceStack, slices: list[Header], source: str, array: np.ndarray) -> Volume:
    ds = slices[0].ds
    uid = ds.get("SeriesInstanceUID")
    return Volume(
        array=array,
        spacing=stack.spacing,
        ijk_to_lps=ijk_to_lps_matrix(stack.origin_lps, stack.directions, stack.spacing),
        modality=str(ds.get("Modality")) if ds.get("Modality") else None,
        source=source,
        headers=[h.ds for h in slices],
        series_instance_uid=str(uid) if uid else None,
    )


def load_dicom_volume(path_or_paths: PathInput) -> Volume:
    groups, source = _scan(path_or_paths)
    headers = _one_series(groups, source)
    stack = stack_slices(headers, source, allow_repeats=False)
    slices = [group[0] for group in stack.positions]
    rows, cols = int(slices[0].ds.Rows), int(slices[0].ds.Columns)
    array = np.empty((len(slices), rows, cols), dtype=np.float32)
    read = PixelReader()
    for k, h in enumerate(slices):
        array[k] = read(h)
    return _volume_from_stack(stack, slices, source, array)


def _seconds(value, scale: float) -> float | None:
    if value in (None, ""):
        return None
    try:
        return float(value) * scale
    except (TypeError, ValueError):
        return None


def load_dicom_series_4d(path_or_paths: PathInput, frame_interval_s: float | None = None) -> Series4D:
    groups, source = _scan(path_or_paths)
    headers = _one_series(groups, source)
    stack = stack_slices(headers, source, allow_repeats=True)
    frames, times = order_frames(stack.positions, source, frame_interval_s)
    rows, cols = int(headers[0].ds.Rows), int(headers[0].ds.Columns)
    data = np.empty((len(frames), len(stack.positions), rows, cols), dtype=np.float32)
    read = PixelReader()
    for t, frame in enumerate(frames):
        for k, h in enumerate(frame):
            data[t, k] = read(h)
    first = _volume_from_stack(stack, frames[0], source, data[0])
    ds = headers[0].ds
    return Series4D(
        frames=data,
        frame_times_s=times,
        frame=first,
        echo_time_s=_seconds(ds.get("EchoTime"), 1e-3),  # DICOM stores ms
        repetition_time_s=_seconds(ds.get("RepetitionTime"), 1e-3),
        flip_angle_deg=_seconds(ds.get("FlipAngle"), 1.0),
    )
