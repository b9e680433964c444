"""What the benchmark scripts share: which backends to time, and the median of repeated runs."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

from quantgpu.backend import gpu_available


def backends_to_run(choice: str) -> list[str]:
    """``all`` / ``cpu`` / ``gpu`` -> the backends to time; the GPU is dropped (with a line) when there is none."""
    backends = ["cpu", "gpu"] if choice == "all" else [choice]
    if "gpu" in backends and not gpu_available():
        print("no usable GPU (CuPy): no GPU rows")
        backends.remove("gpu")
    return backends


def median_seconds(run: Callable[[], Any], repeats: int, warm_up: bool = True) -> tuple[float, Any]:
    """Median wall time of ``repeats`` calls of ``run`` (after one uncounted warm-up), and the last result."""
    result = run() if warm_up else None  # GPU kernels compile on the first call
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result
