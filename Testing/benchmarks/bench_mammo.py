"""Benchmark: MammoCAD analysis of a four-view 3328x4096 phantom exam per backend (median seconds).

    python Testing/benchmarks/bench_mammo.py [--backend all|cpu|gpu] [--repeats 3] [--shape 4096 3328]

The exam is ``phantom.make_exam`` (LCC, RCC, LMLO, RMLO at 0.07 mm, one calcification cluster and one
mass per view). The timing covers ``analysis.analyze_image`` on all four views from host arrays to host
results (breast mask, pectoral line, density, calcification clusters, masses); phantom generation is not
timed and the first run is a warm-up. Not a timed test: a script, its numbers go into the README
(issue 5: under 20 s on the 2-core CPU machines).
"""

from __future__ import annotations

import argparse
import sys

from _common import backends_to_run, median_seconds

from MammoCADLib.analysis import analyze_image
from MammoCADLib.phantom import make_exam
from quantgpu.backend import gpu_name


def bench(exam, backend: str, repeats: int):
    def run():
        return [analyze_image(p.image, p.pixel_spacing_mm, p.view, p.laterality, backend=backend) for p in exam]

    return median_seconds(run, repeats)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("all", "cpu", "gpu"), default="all")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--shape", type=int, nargs=2, default=[4096, 3328], metavar=("ROWS", "COLS"))
    args = parser.parse_args(argv)
    backends = backends_to_run(args.backend)
    rows, cols = args.shape
    print(f"MammoCAD four-view benchmark {cols}x{rows}; GPU: {gpu_name() or 'none'}; repeats {args.repeats}")
    exam = make_exam(shape=(rows, cols), seed=0, n_clusters=1, n_masses=1)
    for backend in backends:
        median, results = bench(exam, backend, args.repeats)
        n_findings = sum(len(r.findings) for r in results)
        pd = ", ".join(f"{r.percent_density:.1f}" for r in results)
        print(
            f"| mammo 4 x {cols}x{rows} | {results[0].backend} | median {median:.2f} s "
            f"({median / len(exam):.2f} s/view) | {n_findings} candidates, PD% {pd} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
