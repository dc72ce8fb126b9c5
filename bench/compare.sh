#!/usr/bin/env bash
# Runs `prunelab bench` and the PyTorch reference side by side on one machine
# and writes one JSON per mode (train, infer) under bench/results/ with the
# ratio ours/torch.
#   bench/compare.sh MODEL BATCH [DEVICE]     e.g. bench/compare.sh resnet56 128 vulkan
#   (CONV=burn|gemm picks the convolution path; PYTHON the interpreter with torch)
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:?model}; batch=${2:?batch}; device=${3:-vulkan}
bin=${PRUNELAB_BIN:-target/release/prunelab}
py=${PYTHON:-python3}
# A fresh clone has neither: say what to do instead of a bare "not found".
[ -x "$bin" ] || { echo "bench/compare.sh: no $bin: build it (cargo build --release -p prunelab --bin prunelab) or set PRUNELAB_BIN" >&2; exit 1; }
"$py" -c 'import torch' 2>/dev/null || { echo "bench/compare.sh: $py has no PyTorch (pip install torch, or set PYTHON=/path/to/python)" >&2; exit 1; }
mkdir -p bench/results
ours=$("$bin" --conv "${CONV:-auto}" bench --model "$model" --batch "$batch" --device "$device")
torch=$("$py" bench/torch_reference.py --model "$model" --batch "$batch")
python3 - "$ours" "$torch" <<'PY'
import json, sys, datetime, pathlib
ours, torch = json.loads(sys.argv[1]), json.loads(sys.argv[2])
assert ours["params"] == torch["params"], f"models differ: {ours['params']} vs {torch['params']} params"
for mode in ("train", "infer"):
    row = {
        "model": ours["model"], "batch": ours["batch"], "mode": mode,
        "device": ours["device"], "torch_device": torch["device"], "torch": torch["torch"],
        "ours_img_s": ours[f"{mode}_img_s"], "torch_img_s": torch[f"{mode}_img_s"],
        "ratio": ours[f"{mode}_img_s"] / torch[f"{mode}_img_s"],
        "ours_warmup_seconds": ours["warmup_seconds"], "date": datetime.date.today().isoformat(),
        "conv": ours.get("conv"), "energy_j": ours.get("energy_j"),
    }
    out = pathlib.Path("bench/results") / f"{row['date']}-{row['model']}-b{row['batch']}-{mode}.json"
    out.write_text(json.dumps(row, indent=2) + "\n")
    print(f"{mode}: ours {row['ours_img_s']:.0f} img/s, torch {row['torch_img_s']:.0f} img/s, ratio {row['ratio']:.3f} -> {out}")
PY
