#!/usr/bin/env bash
# Training throughput, lunet against PyTorch eager in the same run (issue 6's
# benchmark): for each model, `lunet bench` and bench/torch_train_bench.py time the
# same full step (forward, cross-entropy + 10 x orthogonality penalty, backward, SGD
# with momentum and weight decay) on one fixed synthetic batch, fp32, and the ratio
# lunet/torch of images per second is printed (higher is better; >= 1.00 meets the
# target). Meant for the GPU machine (scripts/gpu-check runs it there); any device
# works for a rehearsal:
#   bench/gpu_train.sh [LUNET]          LUNET: the lunet executable (build/bin/lunet)
#   env: MODELS (ResNet34_DoubleShared ResNet50_SharedSingle MobileNetV2_SharedDouble),
#        BATCH (256), STEPS (20), WARMUP (5), IMAGE_SIZE (224), DEVICE (cuda:0),
#        PYTHON (python3: one with torch)
# Prints one line per model, then "N passed, N failed" (a model fails when either
# side cannot run it; a ratio below 1 is reported, not failed: timing is not a test).
set -uo pipefail
cd "$(dirname "$0")/.."

lunet=${1:-build/bin/lunet}
models=${MODELS:-"ResNet34_DoubleShared ResNet50_SharedSingle MobileNetV2_SharedDouble"}
batch=${BATCH:-256}
steps=${STEPS:-20}
warmup=${WARMUP:-5}
size=${IMAGE_SIZE:-224}
device=${DEVICE:-cuda:0}
python=${PYTHON:-python3}
torch_device=${device%%:*}

echo "gpu_train: batch $batch, ${size}x${size}, $steps timed steps after $warmup, device $device"
"$python" -c 'import torch; print("torch", torch.__version__, "|", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA")' \
  || { echo "gpu_train: $python has no torch"; echo "0 passed, 1 failed"; exit 1; }
passed=0 failed=0
for m in $models; do
  l=$("$lunet" bench --model="$m" --batch_size="$batch" --device="$device" --steps="$steps" \
        --warmup="$warmup" --image_size="$size" --json) || { echo "$m: lunet bench failed"; failed=$((failed + 1)); continue; }
  t=$("$python" bench/torch_train_bench.py --model "$m" --batch_size "$batch" --device "$torch_device" \
        --steps "$steps" --warmup "$warmup" --image_size "$size" --json) \
    || { echo "$m: torch_train_bench.py failed"; failed=$((failed + 1)); continue; }
  "$python" - "$m" "$l" "$t" <<'PY'
import json, sys
m, l, t = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
r = l["images_per_s"] / t["images_per_s"]
print("%-26s lunet %8.1f img/s  torch %8.1f img/s  ratio %.2f  (peak %s MiB; loss %.4g vs %.4g)" % (
    m, l["images_per_s"], t["images_per_s"], r,
    "%.0f" % (l["peak_device_bytes"] / 2**20) if l.get("peak_device_bytes") else "-", l["loss"], t["loss"]))
PY
  passed=$((passed + 1))
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
