#!/usr/bin/env bash
# The GPU check's short training run (scripts/gpu_run.sh runs it): the demo recipe
# (ResNet14_DoubleShared S8U1) trains for EPOCHS epochs with --device on the
# Fashion-MNIST subset that scripts/gpu-check packs, then `lunet eval` of the last
# checkpoint, selecting the GPU the other way (--visible_device), must count exactly
# the correct test images that training reported for its last epoch, and the
# training loss must have fallen. Run from the repository root:
#   scripts/gpu_train_check.sh LUNET DATA_DIR
#   env: DEVICE (cuda:0; cpu rehearses it anywhere), EPOCHS (2), PYTHON (python3),
#        OUT (when set, metrics.jsonl and curves.svg are copied there)
set -euo pipefail
lunet=$1
data=$2
device=${DEVICE:-cuda:0}
epochs=${EPOCHS:-2}
python=${PYTHON:-python3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if [ "$device" = cpu ]; then eval_dev=(--device=cpu); else eval_dev=(--visible_device="${device#cuda:}" --device=cuda); fi
"$lunet" train recipes/fashion_mnist_demo.lua --dataset_path="$data" --epochs="$epochs" --device="$device" \
  --workers=4 --out="$work/run" --progress=lines --save_every=0
"$lunet" eval --pretrained="$work/run/last.safetensors" --dataset=fashion-mnist --dataset_path="$data" \
  "${eval_dev[@]}" | tee "$work/eval.txt"
if [ -n "${OUT:-}" ]; then cp "$work/run/metrics.jsonl" "$work/run/curves.svg" "$OUT/"; fi
"$python" - "$work/run/metrics.jsonl" "$work/eval.txt" <<'PY'
import json, re, sys
epochs = [r for r in map(json.loads, open(sys.argv[1])) if r.get("event") == "epoch"]
m = re.search(r"top-1 error [0-9.]+% \((\d+)/(\d+)\)", open(sys.argv[2]).read())
if not epochs or not m:
    sys.exit("gpu_train_check: no epoch record or no eval line")
last = epochs[-1]
wrong, count = int(m.group(1)), int(m.group(2))
print("train: %d epochs, loss %.4f -> %.4f, test top-1 %.2f%% (%d/%d); eval: %d/%d correct" % (
    len(epochs), epochs[0]["train_loss"], last["train_loss"], last["test_acc1"],
    last["test_correct1"], last["test_count"], count - wrong, count))
ok = count == last["test_count"] and count - wrong == last["test_correct1"]
ok = ok and (len(epochs) < 2 or last["train_loss"] < epochs[0]["train_loss"])
sys.exit(0 if ok else "gpu_train_check: eval differs from training, or the loss did not fall")
PY
