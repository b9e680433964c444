"""Split a 4D DICOM series into frames and give each frame its time.

Each slice position of a dynamic series (CT perfusion, MR DSC/DCE) appears once
per frame. At every position the slices are ordered by the first attribute,
in this order, that is present on all slices and distinguishes them:
AcquisitionDateTime, AcquisitionTime, ContentTime, TemporalPositionIdentifier,
AcquisitionNumber, TriggerTime. Frame times come from the clock attributes
(seconds, the mean over the frame's slices, relative to the first frame; sampling
that is not uniform stays as it is) or TriggerTime (ms); with only counters
(TemporalPositionIdentifier, AcquisitionNumber) the caller must give the frame
interval. An explicit ``frame_interval_s`` always wins.
"""

from __future__ import annotations

import datetime
import logging

import numpy as np
from pydicom.valuerep import DT, TM

from ..errors import InputError
from .dicom_scan import Header

_DAY_S = 86400.0
log = logging.getLogger(__name__)


def _tm_seconds(value) -> float | None:
    if value in (None, ""):
        return None
    try:
        tm = value if isinstance(value, TM) else TM(str(value))
    except ValueError:
        return None
    return tm.hour * 3600 + tm.minute * 60 + tm.second + tm.microsecond * 1e-6


def _dt_seconds(value) -> float | None:
    if value in (None, ""):
        return None
    try:
        dt = value if isinstance(value, DT) else DT(str(value))
    except ValueError:
        return None
    if dt.tzinfo is not None:
        return dt.timestamp()
    return (dt - datetime.datetime(1970, 1, 1)).total_seconds()


def _number(value) -> float | None:
    if value in (None, ""):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


# (attribute, parser, is a clock: its differences are durations)
_KEYS = (
    ("AcquisitionDateTime", _dt_seconds, True),
    ("AcquisitionTime", _tm_seconds, True),
    ("ContentTime", _tm_seconds, True),
    ("TemporalPositionIdentifier", _number, False),
    ("AcquisitionNumber", _number, False),
    ("TriggerTime", _number, True),  # ms; converted below
)


def _values(headers: list[Header], keyword: str, parse) -> np.ndarray | None:
    vals = [parse(h.get(keyword)) for h in headers]
    if any(v is None for v in vals):
        return None
    return np.array(vals, dtype=float)


def order_frames(
    positions: list[list[Header]], source: str, frame_interval_s: float | None
) -> tuple[list[list[Header]], np.ndarray]:
    """Frames (each a list of headers ordered like ``positions``) and frame times in s."""
    n_frames = len(positions[0])
    for group in positions:
        if len(group) != n_frames:
            raise InputError(
                f"incomplete time series: {len(group)} frames at the slice of {group[0].name}, "
                f"{n_frames} at the slice of {positions[0][0].name}",
                source,
            )
    if frame_interval_s is not None and not (np.isfinite(frame_interval_s) and frame_interval_s > 0):
        raise InputError(f"frame interval must be a positive number of seconds, got {frame_interval_s}")

    flat = [h for group in positions for h in group]
    chosen = None
    for keyword, parse, is_clock in _KEYS:
        vals = _values(flat, keyword, parse)
        if vals is None:
            continue
        if parse is _tm_seconds and vals.max() - vals.min() > _DAY_S / 2:
            # A scan across midnight: times after midnight belong to the next day.
            vals = np.where(vals < _DAY_S / 2, vals + _DAY_S, vals)
        per_pos = vals.reshape(len(positions), n_frames)
        if all(len(np.unique(row)) == n_frames for row in per_pos):
            chosen = (keyword, per_pos, is_clock)
            break
    if chosen is None:
        raise InputError(
            f"cannot order the {n_frames} frames in time: no AcquisitionTime, ContentTime, TemporalPositionIdentifier, "
            "AcquisitionNumber or TriggerTime tells the repeated slices apart",
            source,
        )
    keyword, per_pos, is_clock = chosen
    order = np.argsort(per_pos, axis=1, kind="stable")
    frames = [[positions[p][order[p, t]] for p in range(len(positions))] for t in range(n_frames)]

    if frame_interval_s is not None:
        uniform = np.arange(n_frames, dtype=float) * float(frame_interval_s)
        if is_clock:
            header = _header_times(per_pos, order, keyword)
            if np.max(np.abs(header - uniform)) > 1e-3:
                log.warning(
                    "frame interval %.4g s overrides the frame times in %s (last frame at %.4g s, not %.4g s)",
                    frame_interval_s,
                    keyword,
                    header[-1],
                    uniform[-1],
                )
        return frames, uniform
    if not is_clock:
        raise InputError(
            f"frame times missing: frames are numbered ({keyword}) but carry no acquisition time; "
            "give the frame interval in seconds",
            source,
        )
    times = _header_times(per_pos, order, keyword)
    if np.any(np.diff(times) <= 0):
        raise InputError(f"frame times from {keyword} do not increase from frame to frame", source)
    return frames, times


def _header_times(per_pos: np.ndarray, order: np.ndarray, keyword: str) -> np.ndarray:
    """Frame times in s relative to frame 0: the mean over each frame's slices (mid-acquisition)."""
    sorted_vals = np.take_along_axis(per_pos, order, axis=1)
    if keyword == "TriggerTime":
        sorted_vals = sorted_vals / 1000.0  # ms -> s
    frame_mean = sorted_vals.mean(axis=0)
    return frame_mean - frame_mean[0]
