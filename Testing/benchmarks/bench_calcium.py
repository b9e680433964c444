"""Benchmark: calcium scoring of 512x512x60 and 512x512x320 CT volumes per backend (median seconds).

    python Testing/benchmarks/bench_calcium.py [--backend all|cpu|gpu] [--repeats 5] [--slices 60 320]

The volume is a synthetic thorax: body 40 HU with noise (SD 15 HU), lungs -800 HU, a
spine and sternum of bone (scored too: no heart ROI, as in a whole-field score) and 40
calcified plaques. The timing covers ``score_calcium`` from a host array to host results
(labelling, per-lesion statistics, 3-D lesion counts, lesion map back on the host); the
first run is a warm-up and is not counted. Not a timed test: a script, its numbers go
into the README.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
from _common import backends_to_run, median_seconds

from CalciumScoringLib.agatston import CalciumParameters, score_calcium
from quantgpu.backend import gpu_name


def thorax_volume(slices: int, size: int = 512, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    j, i = np.ogrid[0:size, 0:size]
    c = size / 2
    plane = np.full((size, size), -1000.0, dtype=np.float32)
    plane[((j - c) / (0.38 * size)) ** 2 + ((i - c) / (0.46 * size)) ** 2 <= 1] = 40.0
    for side in (-1, 1):
        plane[((j - c) / (0.28 * size)) ** 2 + ((i - c - side * 0.22 * size) / (0.15 * size)) ** 2 <= 1] = -800.0
    plane[((j - c - 0.27 * size) ** 2 + (i - c) ** 2) <= (0.06 * size) ** 2] = 450.0  # vertebral body
    plane[((j - c + 0.33 * size) / (0.02 * size)) ** 2 + ((i - c) / (0.05 * size)) ** 2 <= 1] = 350.0  # sternum
    volume = np.repeat(plane[None], slices, axis=0)
    volume += rng.normal(0.0, 15.0, size=volume.shape).astype(np.float32)
    for _ in range(40):  # plaques: 1-4 mm blobs over 1-3 slices near the heart
        k = int(rng.integers(0, max(1, slices - 3)))
        y, x = (int(v) for v in rng.integers(int(0.4 * size), int(0.6 * size), size=2))
        r = int(rng.integers(2, 8))
        depth = int(rng.integers(1, 4))
        volume[k : k + depth, y - r : y + r, x - r : x + r] = rng.uniform(150.0, 900.0)
    return volume


def bench(volume: np.ndarray, backend: str, repeats: int) -> tuple[float, object]:
    spacing = (3.0 if volume.shape[0] <= 100 else 0.5, 0.4, 0.4)
    params = CalciumParameters()
    return median_seconds(lambda: score_calcium(volume, spacing, params=params, backend=backend), repeats)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("all", "cpu", "gpu"), default="all")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--slices", type=int, nargs="+", default=[60, 320])
    args = parser.parse_args(argv)
    backends = backends_to_run(args.backend)
    print(f"calcium scoring benchmark; GPU: {gpu_name() or 'none'}; repeats {args.repeats}")
    for slices in args.slices:
        volume = thorax_volume(slices)
        for backend in backends:
            median, result = bench(volume, backend, args.repeats)
            print(
                f"| calcium 512x512x{slices} | {result.backend} | median {median:.3f} s | "
                f"Agatston {result.agatston:.1f}, {result.lesion_count} lesions |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
