#!/usr/bin/env bash
# Before/after on the CPU, side by side: runs `prunelab bench` with each given
# binary and then PyTorch's reference, round after round, so the machine's
# drift touches every side alike. One line per run: model, side, round,
# train img/s, infer img/s.
#   bench/alternate.sh MODEL ROUNDS BIN...   e.g.
#   PYTHON=/tmp/torchenv/bin/python bench/alternate.sh resnet20 3 /tmp/prunelab-before target/release/prunelab
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:?model}; rounds=${2:?rounds}; shift 2
py=${PYTHON:-python3}
"$py" -c 'import torch' 2>/dev/null || { echo "bench/alternate.sh: $py has no PyTorch (set PYTHON)" >&2; exit 1; }
fields='import json,sys; d=json.load(sys.stdin); print(sys.argv[1], round(d["train_img_s"],1), round(d["infer_img_s"],1), d.get("torch",""))'
for r in $(seq "$rounds"); do
  for bin in "$@"; do
    "$bin" bench --model "$model" --batch 128 --device cpu 2>/dev/null | python3 -c "$fields" "$model $bin $r"
  done
  "$py" bench/torch_reference.py --model "$model" --batch 128 | python3 -c "$fields" "$model torch $r"
done
