"""CPU/GPU compute backend.

Algorithms are written once against ``backend.xp`` (NumPy or CuPy) and the
matching ``ndimage``/``fft``/``linalg`` namespaces. CuPy imports without a GPU
but fails on first device use, so the GPU is chosen only when
``cupy.is_available()`` says a device is usable. ``QUANTGPU_BACKEND`` overrides
``"auto"``.
"""

from __future__ import annotations

import functools
import importlib
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from .errors import BackendUnavailableError, InputError

log = logging.getLogger("quantgpu.backend")

BACKEND_CHOICES = ("auto", "cpu", "gpu")
ENV_VAR = "QUANTGPU_BACKEND"


@functools.cache
def _cupy() -> ModuleType | None:
    """Return the cupy module when a CUDA device is usable, else None."""
    try:
        import cupy
    except Exception:  # ImportError, or a broken CUDA install
        return None
    try:
        return cupy if cupy.is_available() else None
    except Exception:
        return None


def gpu_available() -> bool:
    return _cupy() is not None


def gpu_name() -> str | None:
    cp = _cupy()
    if cp is None:
        return None
    try:
        props = cp.cuda.runtime.getDeviceProperties(cp.cuda.Device().id)
        name = props["name"]
        return name.decode() if isinstance(name, bytes) else str(name)
    except Exception:
        return "CUDA device"


def available_backends() -> dict[str, bool]:
    return {"numpy": True, "cupy": gpu_available()}


@dataclass(frozen=True)
class Backend:
    """The array namespace of one backend and its SciPy-like companions."""

    name: str  # "numpy" or "cupy"
    xp: ModuleType

    @property
    def is_gpu(self) -> bool:
        return self.name == "cupy"

    def _sub(self, cpu_mod: str, gpu_mod: str) -> ModuleType:
        # cupyx.scipy submodules can fail to import without the CUDA libraries, so
        # they are imported lazily, on first use, and the failure is reported clearly.
        module = gpu_mod if self.is_gpu else cpu_mod
        try:
            return importlib.import_module(module)
        except Exception as exc:  # pragma: no cover - needs a broken CUDA install
            raise BackendUnavailableError(f"cannot import {module} for the GPU backend: {exc}") from exc

    @property
    def ndimage(self) -> ModuleType:
        return self._sub("scipy.ndimage", "cupyx.scipy.ndimage")

    @property
    def fft(self) -> ModuleType:
        return self._sub("scipy.fft", "cupyx.scipy.fft")

    @property
    def linalg(self) -> ModuleType:
        return self._sub("scipy.linalg", "cupyx.scipy.linalg")

    def asarray(self, a: Any, dtype: Any = None):
        """Move ``a`` to this backend (one copy at the algorithm's entry)."""
        return self.xp.asarray(a, dtype=dtype)

    def free_memory_bytes(self) -> int | None:
        """Free device memory (GPU) or None on the CPU."""
        if not self.is_gpu:
            return None
        free, _total = self.xp.cuda.runtime.memGetInfo()
        return int(free) + int(self.xp.get_default_memory_pool().free_bytes())


CPU = Backend("numpy", np)


def to_numpy(a: Any) -> np.ndarray:
    """Return a host NumPy array for a NumPy or CuPy array (or array-like)."""
    if hasattr(a, "get") and type(a).__module__.startswith("cupy"):
        return a.get()
    return np.asarray(a)


def resolve(backend: str | Backend | None = "auto") -> Backend:
    """Choose the backend for ``"auto" | "cpu" | "gpu"``.

    ``auto`` takes ``QUANTGPU_BACKEND`` when set, else the GPU when one is usable,
    else the CPU. Asking for ``gpu`` where there is none is an ``InputError``.
    """
    if isinstance(backend, Backend):
        return backend
    choice = (backend or "auto").lower()
    if choice == "auto":
        choice = os.environ.get(ENV_VAR, "auto").strip().lower() or "auto"
        if choice not in BACKEND_CHOICES:
            raise InputError(f"{ENV_VAR}={choice!r} is not one of {', '.join(BACKEND_CHOICES)}")
    if choice not in BACKEND_CHOICES:
        raise InputError(f"backend {choice!r} is not one of {', '.join(BACKEND_CHOICES)}")
    if choice == "cpu":
        return CPU
    cp = _cupy()
    if choice == "gpu" and cp is None:
        raise BackendUnavailableError("backend 'gpu' was requested but no usable CUDA device (CuPy) is available")
    return Backend("cupy", cp) if cp is not None else CPU


def _is_out_of_memory(exc: BaseException) -> bool:
    cp = _cupy()
    if cp is None:
        return False
    if isinstance(exc, cp.cuda.memory.OutOfMemoryError):
        return True
    # cudaErrorMemoryAllocation surfaces as a runtime error from some kernels and libraries
    runtime_error = getattr(cp.cuda.runtime, "CUDARuntimeError", ())
    return isinstance(exc, runtime_error) and "memory" in str(exc).lower()


def run_or_fall_back(fn: Callable[[Backend], Any], backend: Backend) -> tuple[Any, Backend]:
    """``fn(backend)``; on a device out-of-memory error, free the pool and run ``fn(CPU)`` with a logged
    warning (for work that is not split into chunks). Returns the result and the backend that ran."""
    try:
        return fn(backend), backend
    except Exception as exc:
        if not (backend.is_gpu and _is_out_of_memory(exc)):
            raise
        backend.xp.get_default_memory_pool().free_all_blocks()
        log.warning("GPU out of memory; continuing on the CPU")
        return fn(CPU), CPU


def chunk_bounds(n_items: int, chunk: int) -> list[tuple[int, int]]:
    """Split ``range(n_items)`` into [start, stop) pieces of at most ``chunk`` items."""
    chunk = max(1, int(chunk))
    return [(s, min(s + chunk, n_items)) for s in range(0, n_items, chunk)]


def chunk_size_for(
    backend: Backend, n_items: int, bytes_per_item: int, fraction: float = 0.5, cpu_chunk: int = 262_144
) -> int:
    """Items per chunk so that a chunk uses at most ``fraction`` of free device memory."""
    if not backend.is_gpu:
        return max(1, min(n_items, cpu_chunk))
    free = backend.free_memory_bytes() or 0
    return max(1, min(n_items, int(free * fraction) // max(1, bytes_per_item)))


def map_chunks(
    fn: Callable[[Backend, int, int], Sequence[np.ndarray] | np.ndarray],
    n_items: int,
    bytes_per_item: int,
    backend: Backend,
    *,
    cpu_chunk: int = 262_144,
) -> tuple[list, Backend]:
    """Run ``fn(backend, start, stop)`` over chunks of ``n_items`` items.

    ``fn`` returns host arrays for its chunk. On a device out-of-memory error the
    chunk size is halved and retried; when even small chunks fail, the remaining
    work runs on the CPU with a logged warning. Returns the list of per-chunk
    results and the backend that finished the work.
    """
    results: list = []
    size = chunk_size_for(backend, n_items, bytes_per_item, cpu_chunk=cpu_chunk)
    start = 0
    while start < n_items:
        stop = min(start + size, n_items)
        try:
            results.append(fn(backend, start, stop))
            start = stop
        except Exception as exc:
            if not (backend.is_gpu and _is_out_of_memory(exc)):
                raise
            backend.xp.get_default_memory_pool().free_all_blocks()
            if size > 1024:
                size //= 2
                log.warning("GPU out of memory; retrying with chunks of %d items", size)
                continue
            log.warning("GPU out of memory even for small chunks; continuing on the CPU")
            backend = CPU
            size = chunk_size_for(CPU, n_items, bytes_per_item, cpu_chunk=cpu_chunk)
    return results, backend


def report(backend: Backend) -> str:
    """Log and return which backend runs (shown in results, logs and panels)."""
    name = backend.name if not backend.is_gpu else f"cupy ({gpu_name()})"
    log.info("QuantGPU compute backend: %s", name)
    return backend.name
