#!/usr/bin/env bash
# Runs the checks of a bundle made by scripts/gpu_bundle.sh. Meant for the GPU
# machine, from the repository root (works anywhere: without a device the CUDA test
# reports itself skipped). Prints the devices, runs every C test binary of the bundle
# (passed / failed / skipped each), then, when the bundle has the lunet executable,
# the Lua GPU scripts in tests/gpu/*.lua, a short training run with its evaluation
# (scripts/gpu_train_check.sh, when the bundle has data/fashion-mnist) and the
# benchmark against PyTorch (bench/gpu_train.sh), and ends with "N passed, N failed,
# N skipped". Prepared by scripts/gpu-check.
# A copy of the whole log goes to $OUT/gpu.log when OUT is set. Exit status: 0 when
# nothing failed.
#   LUNET_GPU_BUNDLE   the bundle directory (default .gpu)
#   LUNET_GPU_TIMEOUT  seconds allowed per test (default 300)
#   LUNET_GPU_BENCH    0: leave out the training run and the benchmark
#   LUNET_GPU_REHEARSE 1: without a device, run those two on the CPU, shrunk
set -uo pipefail

bundle=${LUNET_GPU_BUNDLE:-.gpu}
per_test=${LUNET_GPU_TIMEOUT:-300}

run_one() { # name command...: runs it, prints its output and verdict, sets $verdict
  local name=$1 t0 t1 rc
  shift
  echo "== $name"
  t0=$(date +%s%N)
  timeout "$per_test" "$@"
  rc=$?
  t1=$(date +%s%N)
  case $rc in
    0) verdict=passed ;;
    77) verdict=skipped ;;
    124) verdict=failed; echo "(timed out after ${per_test} s)" ;;
    *) verdict=failed ;;
  esac
  printf '== %s: %s (exit %d, %d ms)\n' "$name" "${verdict^^}" "$rc" $(((t1 - t0) / 1000000))
}

count_verdict() { # name: adds $verdict to the counters
  case $verdict in
    passed) passed=$((passed + 1)) ;;
    skipped) skipped=$((skipped + 1)) ;;
    *) failed=$((failed + 1)); failed_names="$failed_names $1" ;;
  esac
}

main() {
  if [ ! -f "$bundle/tests/c.tar.xz" ]; then
    echo "gpu_run: no bundle at $bundle (run scripts/gpu_bundle.sh first)"
    return 2
  fi
  echo "gpu_run: $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname), bundle $bundle"
  [ -f "$bundle/MANIFEST" ] && sed -n '1,5p' "$bundle/MANIFEST"
  if command -v nvidia-smi > /dev/null; then
    nvidia-smi -L
  else
    echo "nvidia-smi: not found"
  fi

  # the bundle's libraries, the gzip'd ones unpacked, in a scratch directory
  cp "$bundle"/lib/* "$libdir"/ 2> /dev/null
  for gz in "$libdir"/*.gz; do
    [ -e "$gz" ] || continue
    gunzip -f "$gz" || { echo "gpu_run: cannot unpack $gz"; return 2; }
  done
  local cuda_libs=""
  for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do
    [ -d "$d" ] && cuda_libs="$cuda_libs:$d"
  done
  export LD_LIBRARY_PATH="$libdir$cuda_libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  export LUA_PATH="$bundle/lua/?.lua;$bundle/lua/?/init.lua;;"

  # the C test binaries, unpacked next to the libraries (python3 if tar lacks xz)
  mkdir -p "$libdir/tests"
  if ! tar -C "$libdir/tests" -xJf "$bundle/tests/c.tar.xz" 2> /dev/null; then
    python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' \
      "$bundle/tests/c.tar.xz" "$libdir/tests" || { echo "gpu_run: cannot unpack the tests"; return 2; }
  fi

  local passed=0 failed=0 skipped=0 failed_names="" verdict
  for t in "$libdir"/tests/c/*; do
    if [ ! -f "$t" ] || [ ! -x "$t" ]; then continue; fi
    run_one "$(basename "$t")" "$t"
    count_verdict "$(basename "$t")"
  done

  if [ -x "$bundle/lunet" ]; then
    local dir=""
    for d in tests/gpu "$bundle/tests/gpu"; do
      [ -d "$d" ] && { dir=$d; break; }
    done
    for s in ${dir:+"$dir"/*.lua}; do
      [ -f "$s" ] || continue
      run_one "lua $(basename "$s")" "$bundle/lunet" "$s"
      count_verdict "$(basename "$s")"
    done
  fi

  # The training run and the benchmark need a device; LUNET_GPU_REHEARSE=1 runs them
  # on the CPU, shrunk, to rehearse this script on any machine.
  local gpu=1
  if [ -x "$bundle/lunet" ] && ! "$bundle/lunet" -e 'os.exit(lunet.cuda.available() and 0 or 1)'; then
    gpu=0
    if [ "${LUNET_GPU_REHEARSE:-0}" = 1 ]; then
      echo "gpu_run: no CUDA device: rehearsing the training run and the benchmark on the CPU, shrunk"
      export DEVICE=cpu EPOCHS=1 BATCH=2 IMAGE_SIZE=64 STEPS=1 WARMUP=1 PYTHON=${PYTHON:-/usr/bin/python3}
    else
      echo "== train + eval, benchmark: SKIPPED (no CUDA device)"
      skipped=$((skipped + 2))
    fi
  fi
  [ "$gpu" = 1 ] || [ "${LUNET_GPU_REHEARSE:-0}" = 1 ] || LUNET_GPU_BENCH=0
  # a short training run and its evaluation on the GPU (needs the packed data)
  if [ -x "$bundle/lunet" ] && [ -d "$bundle/data/fashion-mnist" ] && [ "${LUNET_GPU_BENCH:-1}" = 1 ]; then
    run_one "train + eval (Fashion-MNIST subset)" bash scripts/gpu_train_check.sh "$bundle/lunet" "$bundle/data/fashion-mnist"
    count_verdict "train"
  fi
  # the benchmark against PyTorch (LUNET_GPU_BENCH=0 leaves it out)
  if [ -x "$bundle/lunet" ] && [ "${LUNET_GPU_BENCH:-1}" = 1 ]; then
    run_one "benchmark lunet vs PyTorch" bash bench/gpu_train.sh "$bundle/lunet"
    count_verdict "benchmark"
  fi

  [ -n "$failed_names" ] && echo "failed:$failed_names"
  echo "$passed passed, $failed failed, $skipped skipped"
  [ "$failed" -eq 0 ]
}

libdir=$(mktemp -d)
trap 'rm -rf "$libdir"' EXIT
if [ -n "${OUT:-}" ]; then
  mkdir -p "$OUT"
  main 2>&1 | tee "$OUT/gpu.log"
  exit "${PIPESTATUS[0]}"
fi
main 2>&1
exit $?
