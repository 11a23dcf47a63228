#!/usr/bin/env bash
# Data-pipeline benchmark, lunet vs torchvision on the CPU: makes a temporary folder of
# JPEGs of ImageNet's typical size (bench/make_jpegs.py: ~500x375, quality 90) and runs
# `lunet bench-data` on it, which times lunet's loader and, in the same run,
# torchvision's ImageFolder + DataLoader (bench/torchvision_data.py) with the same
# worker count, for the train and eval transforms of method.md section 6. Prints
# images/s of both and their ratio (higher is better for lunet); the two are run
# alternately ROUNDS times and the best figure of each kept (other jobs on the machine
# only slow runs down). The folder is removed at the end.
#
# Usage: bench/bench_data.sh [WORKERS (default: nproc)] [IMAGES (default 400)]
#                            [EPOCHS (default 2)] [ROUNDS (default 3)]
# Environment: BUILD (build directory, default build), PYTHON (default /usr/bin/python3).
set -euo pipefail
cd "$(dirname "$0")/.."

WORKERS=${1:-$(nproc)}
IMAGES=${2:-400}
EPOCHS=${3:-2}
ROUNDS=${4:-3}
BUILD=${BUILD:-build}
PYTHON=${PYTHON:-/usr/bin/python3}

if [ ! -f "$BUILD/CMakeCache.txt" ]; then
  cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
cmake --build "$BUILD" --target lunet -j "$(nproc)" >/dev/null

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$PYTHON" bench/make_jpegs.py "$tmp/images" "$IMAGES" 0
# the index cache goes to a temporary folder too, never into the dataset
LUNET_CACHE_DIR="$tmp/cache" "$BUILD/bin/lunet" bench-data --dataset_path="$tmp/images" \
  --workers="$WORKERS" --epochs="$EPOCHS" --rounds="$ROUNDS" --python="$PYTHON"
