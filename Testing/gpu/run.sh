#!/usr/bin/env bash
# GPU check: on a machine with an NVIDIA GPU and CuPy (no network needed), run the
# backend-parametrized tests on the GPU (marker `gpu`: every algorithm test and the
# CPU-versus-GPU agreement tests), then the benchmarks on both backends, and print a
# short table last. See DESIGN.md "GPU checks" and the README's performance section.
#
#   bash Testing/gpu/run.sh [OUTDIR]
#
# Python packages that the machine lacks (pydicom, highdicom, pynrrd, ...) can be
# installed beforehand from carried wheels; the project itself is used from the
# source tree (PYTHONPATH), nothing is installed from the network.
set -uo pipefail
cd "$(dirname "$(readlink -f "$0")")/../.."
OUT=${1:-${OUT:-Testing/gpu/out}}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
export PYTHONPATH="$PWD/QuantGPUCompute:$PWD/CalciumScoring:$PWD/PerfusionAnalysis:$PWD/MammoCAD:$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1

"$PY" - <<'PY' | tee "$OUT/device.txt"
import cupy, numpy
from quantgpu.backend import gpu_name, resolve
b = resolve("gpu")
print(f"gpu: {gpu_name()}; cupy {cupy.__version__}; numpy {numpy.__version__}; backend {b.name}")
PY
[ "${PIPESTATUS[0]}" = 0 ] || { echo "no usable GPU backend: stop"; exit 2; }

# 1. GPU-parametrized tests (and their CPU twins for agreement tests that compare both)
"$PY" -m pytest -p no:cacheprovider -o addopts="" --import-mode=importlib -q -m gpu -rs \
  --continue-on-collection-errors --junitxml="$OUT/gpu-tests.xml" \
  QuantGPUCompute/Testing CalciumScoring/Testing/Python PerfusionAnalysis/Testing/Python MammoCAD/Testing/Python \
  2>&1 | tee "$OUT/gpu-tests.log"

# 2. Benchmarks, each backend
for bench in Testing/benchmarks/bench_*.py; do
  for backend in gpu cpu; do
    echo "== $bench --backend $backend"
    timeout 900 "$PY" "$bench" --backend "$backend" 2>&1
  done
done | tee "$OUT/benchmarks.log"

# 3. Table
"$PY" Testing/gpu/summary.py "$OUT"
