"""Backend resolution, CPU fallback, chunking and host conversion."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from quantgpu import backend as qb
from quantgpu.errors import BackendUnavailableError, InputError


def test_cpu_is_numpy_with_scipy_companions():
    b = qb.resolve("cpu")
    assert b.name == "numpy" and b.xp is np and not b.is_gpu
    import scipy.fft
    import scipy.linalg
    import scipy.ndimage

    assert b.ndimage is scipy.ndimage and b.fft is scipy.fft and b.linalg is scipy.linalg


def test_auto_without_gpu_is_cpu(monkeypatch):
    monkeypatch.delenv(qb.ENV_VAR, raising=False)
    monkeypatch.setattr(qb, "_cupy", lambda: None)
    assert qb.resolve("auto").name == "numpy"
    assert qb.resolve(None).name == "numpy"
    assert qb.available_backends() == {"numpy": True, "cupy": False}
    assert qb.gpu_name() is None


def test_gpu_request_without_device_is_a_clear_input_error(monkeypatch):
    monkeypatch.setattr(qb, "_cupy", lambda: None)
    with pytest.raises(BackendUnavailableError, match="no usable CUDA device"):
        qb.resolve("gpu")
    assert issubclass(BackendUnavailableError, InputError)


def test_environment_override(monkeypatch):
    monkeypatch.setattr(qb, "_cupy", lambda: None)
    monkeypatch.setenv(qb.ENV_VAR, "cpu")
    assert qb.resolve("auto").name == "numpy"
    monkeypatch.setenv(qb.ENV_VAR, "gpu")
    with pytest.raises(BackendUnavailableError):
        qb.resolve("auto")
    monkeypatch.setenv(qb.ENV_VAR, "tpu")
    with pytest.raises(InputError, match="QUANTGPU_BACKEND"):
        qb.resolve("auto")
    # an explicit choice wins over the environment
    monkeypatch.setenv(qb.ENV_VAR, "gpu")
    assert qb.resolve("cpu").name == "numpy"


def test_unknown_backend_name():
    with pytest.raises(InputError, match="'quantum' is not one of auto, cpu, gpu"):
        qb.resolve("quantum")


def test_cupy_import_is_lazy():
    import sys

    assert "cupy" not in sys.modules or qb.gpu_available()


def test_chunk_bounds_cover_range_exactly():
    assert qb.chunk_bounds(10, 4) == [(0, 4), (4, 8), (8, 10)]
    assert qb.chunk_bounds(0, 4) == []
    assert qb.chunk_bounds(3, 0) == [(0, 1), (1, 2), (2, 3)]


def test_map_chunks_runs_every_item_once(backend):
    data = np.arange(1000, dtype=np.float32)

    def square(b, start, stop):
        x = b.asarray(data[start:stop])
        return qb.to_numpy(x * x)

    parts, ran = qb.map_chunks(square, data.size, bytes_per_item=8, backend=backend, cpu_chunk=64)
    np.testing.assert_array_equal(np.concatenate(parts), data**2)
    assert ran.name == backend.name


class _FakeOOM(Exception):
    pass


class _FakePool:
    def free_all_blocks(self):
        pass

    def free_bytes(self):
        return 0


class _FakeCupy:
    """Just enough of CuPy to drive the out-of-memory path on a machine without a GPU."""

    class cuda:
        class memory:
            OutOfMemoryError = _FakeOOM

        class runtime:
            CUDARuntimeError = _FakeOOM

            @staticmethod
            def memGetInfo():
                return (80_000, 100_000)

    @staticmethod
    def get_default_memory_pool():
        return _FakePool()

    asarray = staticmethod(np.asarray)


def test_map_chunks_halves_then_falls_back_to_cpu_on_device_oom(monkeypatch, caplog):
    monkeypatch.setattr(qb, "_cupy", lambda: _FakeCupy)
    fake_gpu = qb.Backend("cupy", _FakeCupy)
    n = 10_000
    calls = []

    def work(b, start, stop):
        calls.append((b.name, stop - start))
        if b.is_gpu:
            raise _FakeOOM("out of memory allocating 1 GB")
        return np.arange(start, stop)

    with caplog.at_level(logging.WARNING, logger="quantgpu.backend"):
        parts, ran = qb.map_chunks(work, n, bytes_per_item=4, backend=fake_gpu)
    np.testing.assert_array_equal(np.concatenate(parts), np.arange(n))
    assert ran.name == "numpy"
    gpu_sizes = [size for name, size in calls if name == "cupy"]
    assert gpu_sizes == sorted(gpu_sizes, reverse=True) and gpu_sizes[0] == n  # 0.5 * 80 kB / 4 B = 10 000
    assert "continuing on the CPU" in caplog.text


def test_map_chunks_does_not_swallow_other_errors(backend):
    def broken(b, start, stop):
        raise ValueError("a bug")

    with pytest.raises(ValueError, match="a bug"):
        qb.map_chunks(broken, 10, 4, backend)


def test_to_numpy_returns_host_arrays(backend):
    x = backend.asarray([1.0, 2.0])
    y = qb.to_numpy(x)
    assert isinstance(y, np.ndarray) and y.tolist() == [1.0, 2.0]


def test_report_names_the_backend(backend, caplog):
    with caplog.at_level(logging.INFO, logger="quantgpu.backend"):
        assert qb.report(backend) == backend.name
    assert "QuantGPU compute backend" in caplog.text


def test_run_or_fall_back_reruns_on_the_cpu_after_device_oom(monkeypatch, caplog):
    monkeypatch.setattr(qb, "_cupy", lambda: _FakeCupy)
    fake_gpu = qb.Backend("cupy", _FakeCupy)
    calls = []

    def work(b):
        calls.append(b.name)
        if b.is_gpu:
            raise _FakeOOM("out of memory allocating 2 GB")
        return 6 * 7

    with caplog.at_level(logging.WARNING, logger="quantgpu.backend"):
        result, ran = qb.run_or_fall_back(work, fake_gpu)
    assert (result, ran.name, calls) == (42, "numpy", ["cupy", "numpy"])
    assert "continuing on the CPU" in caplog.text


def test_run_or_fall_back_keeps_the_backend_and_other_errors(backend):
    assert qb.run_or_fall_back(lambda b: b.name, backend) == (backend.name, backend)

    def broken(b):
        raise ValueError("a bug")

    with pytest.raises(ValueError, match="a bug"):
        qb.run_or_fall_back(broken, backend)
