#!/usr/bin/env bash
# Builds lunet for the GPU machine and collects what must travel there into .gpu/
# (gitignored), to be carried to the machine and run with .gpu/gpu_run.sh.
#
#   build-gpu/        Release build, CUDA on for sm_90 (H100), bindings on when
#                     bindings/main.c exists (Lua linked statically)
#   .gpu/tests/c.tar.xz  the C test binaries (xz: they share most of their bytes)
#   .gpu/lunet        the executable, when built
#   .gpu/lua/, .gpu/tests/lua/, .gpu/tests/gpu/   Lua sources and specs, when present
#   .gpu/lib/         shared libraries the GPU machine lacks (found with ldd: all but
#                     glibc, libstdc++, libgcc_s, libgomp, CUDA, cuBLAS and cuDNN);
#                     those over 8 MiB gzip'd (gpu_run.sh unpacks them)
#   .gpu/gpu_run.sh   the runner; .gpu/MANIFEST what was built from what
#
# The GPU machine (Ubuntu 24.04, CUDA 13.0, cuBLAS 13, cuDNN 9.14) has no oneDNN, Lua
# or libturbojpeg. The bundle must stay under 50 MiB (it is about 20). Usage: scripts/gpu_bundle.sh
# (JOBS=N for a parallel build; default 2).
set -euo pipefail
cd "$(dirname "$0")/.."

build="build-gpu"
out=.gpu
limit_mib=50
big_lib=$((8 << 20))

bindings=OFF
[ -f bindings/main.c ] && bindings=ON

echo "gpu_bundle: configuring $build (CUDA arch 90, bindings $bindings)"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DLUNET_CUDA=ON \
      -DCMAKE_CUDA_ARCHITECTURES=90 -DLUNET_BINDINGS="$bindings" | tee "$build.configure.log"
if ! grep -q 'lunet: CUDA backend ON' "$build.configure.log"; then
  rm -f "$build.configure.log"
  echo "gpu_bundle: CUDA backend not enabled (toolkit or cuDNN missing?)" >&2
  exit 1
fi
rm -f "$build.configure.log"
cmake --build "$build" -j"${JOBS:-2}"

rm -rf "$out"
mkdir -p "$out/tests/c" "$out/lib"
elves=()
for f in "$build"/tests/*; do
  if [ ! -f "$f" ] || [ ! -x "$f" ]; then continue; fi
  cp "$f" "$out/tests/c/"
  elves+=("$f")
done
if [ ${#elves[@]} -eq 0 ]; then
  echo "gpu_bundle: no test binaries in $build/tests" >&2
  exit 1
fi
if [ -x "$build/bin/lunet" ]; then
  cp "$build/bin/lunet" "$out/lunet"
  elves+=("$build/bin/lunet")
fi
[ -d lua ] && cp -r lua "$out/lua"
[ -d tests/lua ] && cp -r tests/lua "$out/tests/lua"
[ -d tests/gpu ] && cp -r tests/gpu "$out/tests/gpu"
cp scripts/gpu_run.sh "$out/gpu_run.sh"

# Libraries the GPU machine provides itself: the C/C++ runtimes, CUDA, cuBLAS, cuDNN.
provided='^(linux-vdso|ld-linux-x86-64|libc|libm|libdl|librt|libpthread|libresolv|libutil|libstdc\+\+|libgcc_s|libgomp|libcuda|libcudart|libcublas|libcublasLt|libcudnn[a-z_]*|libnvrtc|libnvJitLink)\.so'
declare -A shipped=()
for f in "${elves[@]}"; do
  while read -r name arrow path _; do
    if [ "$arrow" = "=>" ] && [ "$path" = "not" ]; then
      echo "gpu_bundle: $f needs $name, which is not found here" >&2
      exit 1
    fi
    [ "$arrow" = "=>" ] || continue
    [[ "$name" =~ $provided ]] && continue
    [ -n "${shipped[$name]:-}" ] && continue
    shipped[$name]=1
    size=$(stat -L -c %s "$path")
    if [ "$size" -gt "$big_lib" ]; then
      gzip -9 -c "$path" > "$out/lib/$name.gz"
    else
      cp -L "$path" "$out/lib/$name"
    fi
    echo "gpu_bundle: shipping $name ($((size >> 20)) MiB) from $path"
  done < <(ldd "$f")
done

# The test binaries each hold a static copy of the core (mostly the same bytes):
# one xz archive of them is about 20 times smaller (gpu_run.sh unpacks it).
tar -C "$out/tests" -cf - c | xz -6 -T2 > "$out/tests/c.tar.xz"
rm -rf "$out/tests/c"

{
  echo "built: $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname)"
  echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (with uncommitted changes)')"
  echo "cuda arch: $(sed -n 's/^CMAKE_CUDA_ARCHITECTURES:[A-Z]*=//p' "$build/CMakeCache.txt")"
  echo "nvcc: $(sed -n 's/^set(CMAKE_CUDA_COMPILER_VERSION "\(.*\)")$/\1/p' "$build"/CMakeFiles/*/CMakeCUDACompiler.cmake)"
  echo "bindings: $bindings"
  echo "files:"
  (cd "$out" && find . -type f | sort | while read -r f; do echo "  $f $(stat -c %s "$f")"; done)
} > "$out/MANIFEST"

bytes=$(du -sb "$out" | cut -f1)
echo "gpu_bundle: $out is $((bytes >> 20)) MiB ($(find "$out" -type f | wc -l) files)"
if [ "$bytes" -gt $((limit_mib << 20)) ]; then
  echo "gpu_bundle: $out exceeds $limit_mib MiB" >&2
  exit 1
fi
