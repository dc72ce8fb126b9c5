#!/usr/bin/env bash
# The GPU session: one command, at most 8 minutes, every GPU figure of
# docs/benchmarks.md. On the GPU machine (PyTorch is there; no registry is):
#   bench/gpu-session.sh OUT                 with out/gpu-kit from bench/gpu-kit.sh carried
# Here, before any GPU time is spent (SwiftShader Vulkan, tiny sizes, ~10 min on 2 cores):
#   DRY_RUN=1 PYTHON=/tmp/torchenv/bin/python bench/gpu-session.sh out/gpu-dry
#
# In order, each step logged with its time and none able to stop the rest:
#  1. the Vulkan loader unpacked from the kit's .debs (and an ICD file for
#     the NVIDIA driver if the machine has none);
#  2. `prunelab bench` for ResNet-20 and ResNet-56 at batch 128, train and
#     infer, once per conv path (burn, gemm), each beside
#     bench/torch_reference.py on the same GPU; energy metered (NVML);
#  3. the kit's physically pruned ResNet-56 (~2x fewer MACs) against the dense
#     one, per conv path;
#  4. with minutes to spare, `prunelab reproduce s3 --budget quick` (needs
#     CIFAR-10 at $PRUNELAB_CIFAR10);
#  5. OUT/summary.json and OUT/summary.md: the side-by-side table.
# Every JSON lands in OUT.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: bench/gpu-session.sh OUT}
mkdir -p "$out"
out=$(cd "$out" && pwd)
kit=${PRUNELAB_KIT:-out/gpu-kit}
py=${PYTHON:-python3}
# The kit's binaries, decompressed (xz, or Python's lzma where xz is absent).
unxz_to() { xz -dc "$1" > "$2" 2>/dev/null || "$py" -c 'import lzma,shutil,sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2],"wb"))' "$1" "$2"; chmod +x "$2"; }
mkdir -p "$out/bin"
for b in prunelab conv_gemm; do
  [ -e "$kit/$b.xz" ] && unxz_to "$kit/$b.xz" "$out/bin/$b"
done
bin=${PRUNELAB_BIN:-$out/bin/prunelab}
[ -x "$bin" ] || bin=target/release/prunelab
budget=${BUDGET_S:-470}
log() { echo "[$(date +%T) +${SECONDS}s] $*" | tee -a "$out/session.log" >&2; }
left() { echo $((budget - SECONDS)); }

if [ "${DRY_RUN:-0}" = 1 ]; then
  models=(resnet20); batch=4; warmup=1; steps=2; torch_device=cpu
  export VK_ICD_FILENAMES=${VK_ICD_FILENAMES:-/usr/lib/chromium/vk_swiftshader_icd.json}
  export PRUNELAB_FUSION=0   # SwiftShader miscompiles fused kernels (docs/devices.md)
else
  models=(resnet20 resnet56); batch=128; warmup=10; steps=20; torch_device=cuda
fi
log "session: bin=$bin kit=$kit models=${models[*]} batch=$batch dry=${DRY_RUN:-0}"

# 1. Vulkan: the loader from the kit when the system has none, and an ICD
#    file naming the NVIDIA driver's Vulkan library when none is installed.
# (A dry run unpacks them too, to test this step.)
if [ "${DRY_RUN:-0}" = 1 ] || ! ldconfig -p 2>/dev/null | grep 'libvulkan.so.1 ' >/dev/null; then
  root="$out/vulkan-root"
  for deb in "$kit"/debs/*.deb; do
    [ -e "$deb" ] && dpkg-deb -x "$deb" "$root" && log "unpacked $(basename "$deb")"
  done
  export LD_LIBRARY_PATH="$root/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}"
fi
if [ -z "${VK_ICD_FILENAMES:-}" ] && ! compgen -G '/usr/share/vulkan/icd.d/nvidia*' >/dev/null \
    && ! compgen -G '/etc/vulkan/icd.d/nvidia*' >/dev/null; then
  lib=$(ldconfig -p 2>/dev/null | awk '/libGLX_nvidia.so.0 .*x86-64/{print $NF; exit}')
  if [ -n "$lib" ]; then
    printf '{"file_format_version":"1.0.0","ICD":{"library_path":"%s","api_version":"1.3.0"}}\n' "$lib" > "$out/nvidia_icd.json"
    export VK_ICD_FILENAMES="$out/nvidia_icd.json"
    log "wrote an ICD file for $lib"
  else
    log "no NVIDIA Vulkan library found (libGLX_nvidia.so.0); Vulkan may not open"
  fi
fi
nvidia-smi --query-gpu=name,driver_version,power.draw,power.limit --format=csv > "$out/nvidia-smi.csv" 2>&1 \
  || echo "nvidia-smi: not available" > "$out/nvidia-smi.csv"
"$py" -c 'import torch, json; print(json.dumps({"torch": torch.__version__, "cuda": torch.cuda.is_available(), "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}))' \
  > "$out/torch.json" 2>>"$out/session.log" || echo '{"torch": null}' > "$out/torch.json"
log "GPU: $(tail -n +2 "$out/nvidia-smi.csv" | head -1); torch: $(cat "$out/torch.json")"

# 1b. Is the gemm path right on this GPU? (seconds; its verdict goes in the table)
if [ -x "$out/bin/conv_gemm" ]; then
  if timeout 120 "$out/bin/conv_gemm" conv_gemm::gemm_convolution_matches_burn_on_vulkan --nocapture > "$out/conv-check.log" 2>&1; then
    log "conv check: gemm equals burn's convolution on this device ($(grep -m1 'conv shapes' "$out/conv-check.log"))"
  else
    log "conv check FAILED: gemm rows are not to be trusted (see conv-check.log)"
  fi
else
  log "no conv check binary in the kit"
fi

# One measurement: its JSON to OUT/NAME.json, its log to OUT/NAME.log.
measure() {
  local name=$1; shift
  if [ "$(left)" -lt 20 ]; then log "skip $name: the time budget is spent"; return; fi
  log "start $name"
  if timeout "$(left)" "$@" > "$out/$name.json" 2> "$out/$name.log"; then
    log "done $name"
  else
    log "FAILED $name (exit $?; see $name.log)"
    rm -f "$out/$name.json"
  fi
}

# 2. Throughput per model and conv path, PyTorch beside it.
for model in "${models[@]}"; do
  measure "torch-$model" "$py" bench/torch_reference.py --model "$model" --batch "$batch" \
    --device "$torch_device" --warmup "$warmup" --steps "$steps"
  for conv in burn gemm; do
    measure "prunelab-$model-$conv" "$bin" --conv "$conv" bench --model "$model" --batch "$batch" \
      --device vulkan --warmup "$warmup" --steps "$steps"
  done
done

# 3. The pruned ResNet-56 (dense is step 2's resnet56 rows; in a dry run,
#    the pruned file stands alone).
if [ -e "$kit/resnet56-pruned.plm" ]; then
  for conv in burn gemm; do
    measure "prunelab-resnet56-pruned-$conv" "$bin" --conv "$conv" bench \
      --model-file "$kit/resnet56-pruned.plm" --batch "$batch" --device vulkan \
      --warmup "$warmup" --steps "$steps"
  done
else
  log "skip the pruned ResNet-56: no $kit/resnet56-pruned.plm (bench/gpu-kit.sh makes it)"
fi

# 4. S3 at the quick budget, if the data is here and minutes remain.
data=${PRUNELAB_CIFAR10:-}
if [ "${DRY_RUN:-0}" = 1 ]; then
  log "skip reproduce s3: a dry run"
elif [ -z "$data" ] || [ ! -e "$data/test_batch.bin" ]; then
  log "skip reproduce s3: no CIFAR-10 at PRUNELAB_CIFAR10 (${data:-unset})"
elif [ "$(left)" -lt 120 ]; then
  log "skip reproduce s3: $(left) s left"
else
  log "start reproduce s3 --budget quick ($(left) s left)"
  timeout "$(left)" "$bin" reproduce s3 --budget quick --seeds 1 --data "$data" \
    --out "$out/reproduce-s3-quick" > "$out/reproduce-s3.log" 2>&1 \
    && log "done reproduce s3" || log "reproduce s3 stopped (exit $?; partial runs kept)"
fi

# 5. The table.
"$py" bench/gpu_summary.py "$out" 2>>"$out/session.log" | tee "$out/summary.md"
log "session over in ${SECONDS} s; results in $out"
