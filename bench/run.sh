#!/usr/bin/env bash
# Convolution benchmark, lunet vs PyTorch on the CPU (forward + backward to x and w).
# Builds bench_conv if needed, then runs build/bench/bench_conv and bench/torch_conv.py
# with the same thread count, alternating them for ROUNDS rounds; each run reports per
# shape the median of ITERS timed iterations (after 3 warm-up ones), and the best of the
# rounds is kept (which filters out interference from other processes on the machine).
# Prints per shape: ms lunet, ms torch, ratio lunet/torch (lower is better), and totals.
#
# Usage: bench/run.sh [THREADS (default: nproc)] [ITERS (default 10)] [ROUNDS (default 3)]
# Environment: BUILD (build directory, default build), PYTHON (default /usr/bin/python3).
set -euo pipefail
cd "$(dirname "$0")/.."

THREADS=${1:-$(nproc)}
ITERS=${2:-10}
ROUNDS=${3:-3}
BUILD=${BUILD:-build}
PYTHON=${PYTHON:-/usr/bin/python3}

if [ ! -f "$BUILD/CMakeCache.txt" ]; then
  cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
cmake --build "$BUILD" --target bench_conv -j "$(nproc)" >/dev/null

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for r in $(seq 1 "$ROUNDS"); do
  "$BUILD/bench/bench_conv" "$THREADS" "$ITERS" | grep -v '^#' >>"$tmp/lunet"
  "$PYTHON" bench/torch_conv.py "$THREADS" "$ITERS" | grep -v '^#' >>"$tmp/torch"
done

echo "conv2d forward+backward (grad x, w), f32, CPU, $THREADS threads," \
     "median of $ITERS iterations, best of $ROUNDS rounds"
awk -v OFS='' '
  FNR == 1 { file++ }
  {
    name = $1; ms = $2
    if (!(name in seen)) { seen[name] = 1; order[++n] = name }
    if (file == 1) { if (!(name in lun) || ms < lun[name]) lun[name] = ms }
    else { if (!(name in tor) || ms < tor[name]) tor[name] = ms }
  }
  END {
    printf "%-22s %12s %12s %8s\n", "shape", "lunet ms", "torch ms", "ratio"
    for (i = 1; i <= n; i++) {
      k = order[i]
      printf "%-22s %12.2f %12.2f %8.2f\n", k, lun[k], tor[k], lun[k] / tor[k]
      tl += lun[k]; tt += tor[k]
    }
    printf "%-22s %12.2f %12.2f %8.2f\n", "total", tl, tt, tl / tt
  }' "$tmp/lunet" "$tmp/torch"
