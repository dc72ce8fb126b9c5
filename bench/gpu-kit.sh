#!/usr/bin/env bash
# Prepares, on this (CPU) machine, everything the GPU machine cannot fetch —
# it reaches no package registry — for bench/gpu-session.sh:
#   out/gpu-kit/prunelab.xz        the release CLI, stripped and compressed (the carry
#                                  limit is 64 MiB; stripped it is ~125 MB, compressed ~22)
#   out/gpu-kit/conv_gemm.xz       the GPU tests (crate/tests/gpu: conv_gemm.rs, the conv-path equivalence),
#                                  run first on the GPU: gemm must be right there before it is timed
#   out/gpu-kit/debs/*.deb         Debian's Vulkan loader (libvulkan1), unpacked there
#   out/gpu-kit/resnet56-pruned.plm  ResNet-56 physically pruned by L1 to ~half its MACs
#                                  (its architecture is what the session measures)
#   bench/gpu-kit.sh [KIT]         (default out/gpu-kit; ~25 min on 2 cores cold, ~3 after a build:
#                                  both are built with `--features gpu-cache`, in target/gpu-kit)
# Then, with a device: run(command="bench/gpu-session.sh out/gpu", carry=["out/gpu-kit"]).
set -euo pipefail
cd "$(dirname "$0")/.."
kit=${1:-out/gpu-kit}
say() { printf '\n== %s\n' "$*" >&2; }
# The GPU machine keeps autotune results on disk (`gpu-cache`); a target
# directory of its own, so the CPU build and the test graph stay as they are.
build="${CARGO_TARGET_DIR:-target}/gpu-kit"
say "the CLI with the autotune cache (--features gpu-cache), in $build"
CARGO_TARGET_DIR="$build" cargo build --release -p prunelab --bin prunelab --features gpu-cache
bin=${PRUNELAB_BIN:-$build/release/prunelab}
mkdir -p "$kit/debs"

pack() { # FILE NAME: stripped, xz-compressed into the kit
  cp "$1" "$kit/$2"
  strip "$kit/$2"
  xz -T2 -6 -f "$kit/$2"
  du -h "$kit/$2.xz" >&2
}
say "the CLI and the conv-path test, stripped and compressed"
pack "$bin" prunelab
CARGO_TARGET_DIR="$build" cargo test --release -p prunelab --features gpu-cache --test gpu --no-run --message-format=json > "$kit/.build.json"
test_bin=$(python3 -c 'import json,sys
paths = {m["executable"] for m in map(json.loads, open(sys.argv[1]))
         if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "gpu"}
if len(paths) != 1: sys.exit(f"expected one gpu test binary, found {sorted(paths)}")
print(paths.pop())' "$kit/.build.json")
rm -f "$kit/.build.json"
pack "$test_bin" conv_gemm

say "the Vulkan loader (Debian's libvulkan1)"
(cd "$kit/debs" && rm -f ./*.deb && apt-get download libvulkan1 >&2)
ls -l "$kit/debs" >&2

say "a ResNet-56 pruned to about half its MACs (L1 filters, no fine-tuning)"
data=$(mktemp -d)
trap 'rm -rf "$data"' EXIT
python3 - "$data" <<'PY'
import os, sys
d = sys.argv[1]
def batch(n, salt):
    out = bytearray()
    for i in range(n):
        out.append(i % 10)
        out.extend(((i * 31 + j * 7 + salt) % 256) for j in range(3072))
    return bytes(out)
for b in range(1, 6):
    open(os.path.join(d, f"data_batch_{b}.bin"), "wb").write(batch(8, b))
open(os.path.join(d, "test_batch.bin"), "wb").write(batch(16, 9))
PY
"$bin" train --model resnet56 --data "$data" --epochs 1 --batch-size 8 --device cpu \
    --save "$kit/resnet56-dense.plm" >&2
"$bin" prune --model-file "$kit/resnet56-dense.plm" --method l1 --target macs=0.5 \
    --finetune-epochs 0 --data "$data" --batch-size 8 --device cpu \
    --save "$kit/resnet56-pruned.plm" >&2
rm -f "$kit/resnet56-dense.plm"
"$bin" info --model resnet56 --json > "$kit/resnet56-dense-info.json"
du -sh "$kit" >&2
