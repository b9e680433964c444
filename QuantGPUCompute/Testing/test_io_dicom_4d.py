"""4D DICOM: frames grouped by position, ordered and timed from the headers."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from quantgpu.errors import InputError
from quantgpu.io import list_series, load_series_4d, load_volume, write_ct_series
from quantgpu.io.testing import write_slice

UID = "1.2.826.0.1.3680043.8.498.3"


def _pixels(t: int, k: int) -> np.ndarray:
    return np.full((3, 4), 1000 * t + 10 * k, dtype=np.int16)


def _tm(seconds: float) -> str:
    seconds %= 86400
    return f"{int(seconds // 3600):02d}{int(seconds % 3600 // 60):02d}{seconds % 60:09.6f}"


def _write_4d(tmp_path, n_t, n_k, attrs_for, seed=0):
    """Write n_t x n_k slices under shuffled file names; attrs_for(t, k) gives extra attributes."""
    order = np.random.default_rng(seed).permutation(n_t * n_k)
    for name, flat in enumerate(order):
        t, k = divmod(int(flat), n_k)
        write_slice(
            tmp_path / f"IM{name:04d}", _pixels(t, k), position=(0, 0, 5.0 * k), series_uid=UID, **attrs_for(t, k)
        )


def _check_frames(series, n_t, n_k):
    assert series.frames.shape == (n_t, n_k, 3, 4)
    for t in range(n_t):
        for k in range(n_k):
            assert series.frames[t, k, 0, 0] == 1000 * t + 10 * k


def test_shuffled_files_non_uniform_acquisition_times(tmp_path):
    times = [0.0, 2.0, 3.5, 10.0]
    start = 9 * 3600 + 30 * 60  # 09:30:00
    # Slices of one frame are acquired 0.1 s apart; the frame time is their mean.
    _write_4d(tmp_path, 4, 3, lambda t, k: {"AcquisitionTime": _tm(start + times[t] + 0.1 * k)})
    series = load_series_4d(tmp_path)
    _check_frames(series, 4, 3)
    np.testing.assert_allclose(series.frame_times_s, times, atol=1e-6)
    assert series.spacing == pytest.approx((5.0, 1.0, 1.0))
    np.testing.assert_allclose(series.ijk_to_lps[:3, 3], [0, 0, 0])
    assert len(series.headers) == 3
    assert [float(h.ImagePositionPatient[2]) for h in series.headers] == [0.0, 5.0, 10.0]
    info = list_series(tmp_path)[0]
    assert (info.n_positions, info.n_frames, info.is_4d) == (3, 4, True)


def test_scan_across_midnight(tmp_path):
    clock = [23 * 3600 + 59 * 60 + 58.0, 23 * 3600 + 59 * 60 + 59.5, 1.0, 4.0]  # 23:59:58 ... 00:00:04
    _write_4d(tmp_path, 4, 2, lambda t, k: {"AcquisitionTime": _tm(clock[t])})
    series = load_series_4d(tmp_path)
    _check_frames(series, 4, 2)
    np.testing.assert_allclose(series.frame_times_s, [0.0, 1.5, 3.0, 6.0], atol=1e-6)


def test_content_time_when_acquisition_time_is_absent(tmp_path):
    _write_4d(tmp_path, 3, 2, lambda t, k: {"ContentTime": _tm(3600 + 1.5 * t)})
    np.testing.assert_allclose(load_series_4d(tmp_path).frame_times_s, [0.0, 1.5, 3.0], atol=1e-6)


def test_trigger_time_in_ms(tmp_path):
    _write_4d(tmp_path, 3, 2, lambda t, k: {"TriggerTime": f"{[0, 250, 900][t]}"})
    np.testing.assert_allclose(load_series_4d(tmp_path).frame_times_s, [0.0, 0.25, 0.9])


def test_temporal_position_needs_an_interval(tmp_path):
    # Same AcquisitionTime on every slice (it cannot order frames); TemporalPositionIdentifier can.
    _write_4d(tmp_path, 4, 3, lambda t, k: {"AcquisitionTime": "101010", "TemporalPositionIdentifier": t + 1})
    with pytest.raises(InputError, match=r"frame times missing.*TemporalPositionIdentifier.*frame interval"):
        load_series_4d(tmp_path)
    series = load_series_4d(tmp_path, frame_interval_s=1.5)
    _check_frames(series, 4, 3)
    np.testing.assert_allclose(series.frame_times_s, [0.0, 1.5, 3.0, 4.5])


def test_acquisition_number_orders_frames(tmp_path):
    _write_4d(tmp_path, 3, 2, lambda t, k: {"AcquisitionNumber": 7 + t})
    series = load_series_4d(tmp_path, frame_interval_s=2.0)
    _check_frames(series, 3, 2)
    np.testing.assert_allclose(series.frame_times_s, [0.0, 2.0, 4.0])


def test_explicit_interval_overrides_header_times(tmp_path, caplog):
    _write_4d(tmp_path, 3, 2, lambda t, k: {"AcquisitionTime": _tm(100 + 7 * t)})
    with caplog.at_level("WARNING", logger="quantgpu.io"):
        np.testing.assert_allclose(load_series_4d(tmp_path, frame_interval_s=1.0).frame_times_s, [0, 1, 2])
    assert "overrides the frame times in AcquisitionTime (last frame at 14 s, not 2 s)" in caplog.text


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan")])
def test_bad_interval(tmp_path, bad):
    _write_4d(tmp_path, 2, 2, lambda t, k: {"AcquisitionTime": _tm(100 + t)})
    with pytest.raises(InputError, match="frame interval must be a positive number"):
        load_series_4d(tmp_path, frame_interval_s=bad)


def test_no_temporal_attribute(tmp_path):
    _write_4d(tmp_path, 2, 2, lambda t, k: {})
    with pytest.raises(InputError, match="cannot order the 2 frames in time"):
        load_series_4d(tmp_path)


def test_incomplete_time_series(tmp_path):
    _write_4d(tmp_path, 3, 3, lambda t, k: {"AcquisitionTime": _tm(100 + t)})
    # Remove one slice of one frame.
    victim = next(p for p in sorted(tmp_path.iterdir()) if load_volume([p]).array[0, 0, 0] == 1000 * 2 + 10 * 1)
    victim.unlink()
    with pytest.raises(InputError, match="incomplete time series: 2 frames"):
        load_series_4d(tmp_path)


def test_writer_4d_round_trip_with_shuffled_copies(tmp_path):
    rng = np.random.default_rng(3)
    data = np.round(rng.normal(40.0, 15.0, size=(5, 3, 6, 7)))
    times = np.array([0.0, 1.0, 2.5, 4.5, 9.0])
    files = write_ct_series(tmp_path / "w", data, (4.0, 0.8, 0.8), frame_times_s=times, series_description="perf")
    assert len(files) == 15
    shuffled = tmp_path / "shuffled"
    shuffled.mkdir()
    for n, src in enumerate(rng.permutation(files)):
        shutil.copy(src, shuffled / f"x{n:03d}")
    series = load_series_4d(shuffled)
    np.testing.assert_array_equal(series.frames, data)
    np.testing.assert_allclose(series.frame_times_s, times, atol=1e-5)
    assert series.modality == "CT"


def test_writer_mr_parameters(tmp_path):
    data = np.arange(2 * 2 * 3 * 3, dtype=float).reshape(2, 2, 3, 3)
    write_ct_series(
        tmp_path,
        data,
        (3.0, 1.0, 1.0),
        frame_times_s=[0.0, 1.6],
        modality="MR",
        echo_time_s=0.03,
        repetition_time_s=1.6,
        flip_angle_deg=90.0,
    )
    series = load_series_4d(tmp_path)
    assert series.modality == "MR"
    assert series.echo_time_s == pytest.approx(0.03)
    assert series.repetition_time_s == pytest.approx(1.6)
    assert series.flip_angle_deg == pytest.approx(90.0)
    np.testing.assert_array_equal(series.frames, data)
