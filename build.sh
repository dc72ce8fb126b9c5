#!/usr/bin/env bash
# prunelab's one entry point.
#
#   ./build.sh serve   build the page, then serve it on http://127.0.0.1:${PORT:-8080}/
#   ./build.sh site DIR
#                      a self-contained static site (both labs, the embed page)
#                      for any static host, at its root or under a sub-path
#   ./build.sh test    the whole suite: Rust unit and integration tests, CLI
#                      end-to-end and fault-injection tests, headless-Chromium
#                      tests of the page, a Slurm job-array test
#   ./build.sh build   the native CLI and the wasm packages (static/pkg, static/pkg-gpu)
#   ./build.sh wasm    only the wasm packages: the CPU one every page loads, the WebGPU one
#   ./build.sh wasm-gpu
#                      only the WebGPU one (static/pkg-gpu)
#   ./build.sh wasm-threads
#                      the CIFAR lab's multi-threaded CPU module (static/pkg-mt;
#                      nightly Rust; serve and site build it where nightly
#                      is installed; not part of `test`: docs/operations.md)
#
# It installs what it needs when missing: the wasm32 target, wasm-bindgen-cli
# (pinned to the wasm-bindgen crate's version), and for the browser tests
# Debian's chromium + chromium-driver and npm's playwright-core.
# CARGO_TARGET_DIR is honoured (CI keeps it in a cache outside the clone).
set -euo pipefail
cd "$(dirname "$0")"

WASM_BINDGEN_VERSION=0.2.130 # = the `wasm-bindgen` crate in Cargo.lock; they must match
TARGET_DIR="${CARGO_TARGET_DIR:-target}"
BIN="$TARGET_DIR/release/prunelab"
export PATH="$HOME/.cargo/bin:$PATH"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

need_wasm_tools() {
  if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    say "adding the wasm32-unknown-unknown target"
    rustup target add wasm32-unknown-unknown
  fi
  if ! wasm-bindgen --version 2>/dev/null | grep -q " $WASM_BINDGEN_VERSION"; then
    say "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION"
    cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION"
  fi
}

# Debian packages for the browser tests (and SwiftShader's Vulkan driver,
# which ships inside chromium, for the native cpu-vs-vulkan test).
need_browser() {
  if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ] && ldconfig -p | grep -q libvulkan.so.1; then return; fi
  say "installing chromium, chromium-driver and the Vulkan loader"
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  local packages="chromium chromium-driver libvulkan1"
  $sudo apt-get install -y -q $packages ||
    { $sudo apt-get update -q && $sudo apt-get install -y -q $packages; }
}

# Debian's Slurm and munge for the job-array test (tests/slurm/run.sh). Not
# fatal: without them the test says it skipped.
need_slurm() {
  if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null; then return; fi
  say "installing slurmctld, slurmd and munge (for the Slurm sweep test)"
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get install -y -q slurmctld slurmd munge ||
    { $sudo apt-get update -q && $sudo apt-get install -y -q slurmctld slurmd munge; } ||
    say "could not install Slurm; its test will be skipped"
}

need_node_deps() {
  if [ ! -d node_modules/playwright-core ]; then
    say "installing playwright-core (npm)"
    npm ci --no-audit --no-fund
  fi
}

build_native() {
  say "building the native CLI (release)"
  cargo build --release -p prunelab --bin prunelab
}

# The page's two modules (web/worker.js): static/pkg, burn's CPU backend
# alone, which every page loads first (~1.5 MB gzipped), and static/pkg-gpu
# with WebGPU (~6 MB gzipped), fetched only when a session asks for WebGPU.
build_wasm() {
  need_wasm_tools
  wasm_package static/pkg web-bindings "$TARGET_DIR/cpu"
  wasm_package static/pkg-gpu web "$TARGET_DIR"
}

# wasm_package DIR FEATURES TARGET: builds the library with FEATURES in the
# target directory TARGET into DIR. One target directory per package: both
# modules are the file prunelab.wasm (a cdylib's name has no hash), so in one
# directory each build would make the other's stale.
wasm_package() {
  local dir="$1" features="$2" target="$3"
  say "building the wasm package into $dir (features: $features)"
  CARGO_TARGET_DIR="$target" cargo build -p prunelab --lib --target wasm32-unknown-unknown --profile wasm \
    --no-default-features --features "$features"
  local built="$target/wasm32-unknown-unknown/wasm/prunelab.wasm"
  # Nothing rebuilt since the package was made: keep it (a second serve
  # starts in seconds).
  if [ "$dir/prunelab_bg.wasm" -nt "$built" ] && [ "$dir/prunelab.js" -nt "$built" ]; then
    return 0
  fi
  # Made beside (a folder of its own, as two builds may run at once) and
  # swapped in with two renames: a page loading in that instant may miss
  # the package (a reload fixes it); it is never left half-written.
  local made
  made="$(mktemp -d "$dir.new.XXXXXX")"
  wasm-bindgen --target web --no-typescript --out-dir "$made" "$built"
  # Optional shrinking with npm's binaryen (Debian's binaryen 108 breaks the module).
  if [ "${PRUNELAB_WASM_OPT:-0}" = 1 ]; then
    need_node_deps
    say "shrinking $dir with wasm-opt -Oz"
    node node_modules/binaryen/bin/wasm-opt -Oz --enable-bulk-memory --enable-nontrapping-float-to-int \
      --enable-sign-ext --enable-mutable-globals --enable-reference-types --enable-multivalue \
      --strip-debug "$made/prunelab_bg.wasm" -o "$made/prunelab_bg.wasm"
  fi
  chmod 755 "$made" # mktemp's 700 would keep a static host (or its copy) out
  rm -rf "$dir"
  mv "$made" "$dir"
}

# The multi-threaded CPU module for the CIFAR lab: std rebuilt with atomics
# (nightly's -Z build-std), rayon's pool on Web Workers, no WebGPU. The page
# uses it when it is cross-origin isolated and static/pkg-mt exists.
build_wasm_threads() {
  need_wasm_tools
  if ! has_nightly; then
    say "installing nightly Rust with rust-src (for -Z build-std)"
    rustup toolchain install nightly --profile minimal --component rust-src --target wasm32-unknown-unknown
  fi
  say "building the multi-threaded wasm package into static/pkg-mt"
  # The link arguments (a shared, imported memory and the thread-local
  # storage exports wasm-bindgen's threads need) go to the final crate only,
  # so that changing them does not rebuild the dependency graph.
  CARGO_TARGET_DIR="$TARGET_DIR/mt" \
  RUSTFLAGS='--cfg getrandom_backend="wasm_js" -C target-feature=+simd128,+atomics,+bulk-memory,+mutable-globals -C link-arg=--max-memory=4294967296' \
    cargo +nightly rustc -Z build-std=panic_abort,std -p prunelab --lib \
    --target wasm32-unknown-unknown --profile wasm --no-default-features --features web-threads -- \
    -C link-arg=--shared-memory -C link-arg=--import-memory -C link-arg=--export=__wasm_init_tls \
    -C link-arg=--export=__tls_size -C link-arg=--export=__tls_align -C link-arg=--export=__tls_base
  local built="$TARGET_DIR/mt/wasm32-unknown-unknown/wasm/prunelab.wasm"
  # Nothing rebuilt since the package was made: keep it.
  if [ static/pkg-mt/prunelab_bg.wasm -nt "$built" ] && [ static/pkg-mt/prunelab.js -nt "$built" ]; then
    return 0
  fi
  # Made beside and swapped in, as wasm_package does: never half-written.
  local made
  made="$(mktemp -d static/pkg-mt.new.XXXXXX)"
  wasm-bindgen --target web --no-typescript --out-dir "$made" "$built"
  # wasm-bindgen-rayon's worker imports its package as '../../..', which only
  # a bundler resolves; point it at the module's file.
  sed -i "s#import('../../..')#import('../../../prunelab.js')#" "$made"/snippets/*/src/workerHelpers.js
  chmod 755 "$made"
  rm -rf static/pkg-mt
  mv "$made" static/pkg-mt
}

# Nightly Rust with the std sources, which the threaded module's
# `-Z build-std` needs (installed by `./build.sh wasm-threads`, not by serve).
has_nightly() {
  rustup component list --toolchain nightly --installed 2>/dev/null | grep -q rust-src
}

# What `serve` and `site` say where nightly Rust is missing.
NIGHTLY_HINT="the CIFAR lab runs on one thread: for every core, install nightly Rust (rustup toolchain install nightly --profile minimal --component rust-src --target wasm32-unknown-unknown) and run this again"

# A package built from older engine sources than the page's would meet a
# newer page: put it away until its build replaces it.
put_away_stale() {
  local dir="$1"
  if [ -d "$dir" ] && [ -n "$(find crate/src crate/Cargo.toml Cargo.toml Cargo.lock vendor \
      -newer "$dir/prunelab_bg.wasm" -print -quit 2>/dev/null)" ]; then
    rm -rf "$dir"
  fi
}

# The static site: static/ as it is — the page's folder is its served
# layout (HTML, web/ modules, wasm packages, _headers) — with relative URLs
# only, so any static host serves it under any sub-path.
build_site() {
  local dir="$1"
  build_wasm
  # The threaded module too, where nightly Rust is (PRUNELAB_SITE_THREADS=0
  # skips it: the test suite's site check, which CI's time budget keeps to
  # the two stable modules).
  if [ "${PRUNELAB_SITE_THREADS:-1}" = 1 ]; then
    if has_nightly; then build_wasm_threads; else say "$NIGHTLY_HINT"; fi
  fi
  say "writing the static site to $dir"
  rm -rf "$dir"
  mkdir -p "$dir"
  cp -r static/. "$dir/"
  rm -rf "$dir"/pkg*.new.*
  # No data on a static host: an empty listing, which the CIFAR lab reads
  # without a 404 (offer_data fills it in for ./build.sh serve).
  mkdir -p "$dir/data"
  echo '[]' > "$dir/data/index.json"
  offer_pretrained "$dir"
  # GitHub Pages: serve the files as they are (no Jekyll).
  touch "$dir/.nojekyll"
}

# What `prunelab data fetch cifar10` put in ./data, offered to the page as
# data/ (the listing the CIFAR lab reads, and links to the files).
offer_data() {
  local site="$1" data="${PRUNELAB_DATA:-data}/cifar-10-batches-bin"
  [ -f "$data/test_batch.bin" ] || return 0
  mkdir -p "$site/data"
  local names=()
  for f in "$data"/*.bin; do
    ln -sf "$(cd "$(dirname "$f")" && pwd)/$(basename "$f")" "$site/data/"
    names+=("\"$(basename "$f")\"")
  done
  (IFS=,; echo "[${names[*]}]") > "$site/data/index.json"
  say "offering $data to the CIFAR lab"
}

# The public pretrained ResNet-20 (BSD-2-Clause; its licence beside it) as
# the page reads it: a .plm that records its input normalisation, written
# into SITE/pretrained/ by the native CLI from the .th that `prunelab data
# fetch resnet20-cifar10` (or ../shared/data) holds. The CIFAR lab offers
# "Start from a trained ResNet-20" when the file is there.
offer_pretrained() {
  local site="$1" th=""
  for dir in "${PRUNELAB_DATA:-data}/pretrained" ../shared/data/pretrained; do
    [ -f "$dir/resnet20-12fca82f.th" ] && { th="$dir/resnet20-12fca82f.th"; break; }
  done
  if [ -z "$th" ] || [ ! -x "$BIN" ]; then
    say "no pretrained start in the page: needs ./build.sh build and \`prunelab data fetch resnet20-cifar10\`"
    return 0
  fi
  mkdir -p "$site/pretrained"
  [ "$site/pretrained/resnet20-cifar10.plm" -nt "$th" ] ||
    "$BIN" export "$th" --to "$site/pretrained/resnet20-cifar10.plm" > /dev/null
  cp crate/src/interop/pretrained-license.txt "$site/pretrained/LICENSE.txt"
  say "offering the pretrained ResNet-20 ($th) to the CIFAR lab"
}

# The page needs only the CPU wasm package and static files: no native
# build, and the WebGPU package (which the page fetches only for a WebGPU
# session) builds in the background while the page is up. A native CLI
# built earlier serves it with cross-origin isolation (the CIFAR lab's
# threads); otherwise Python's static server does, from a folder of links.
serve_page() {
  need_wasm_tools
  wasm_package static/pkg web-bindings "$TARGET_DIR/cpu"
  # Packages older than the engine's sources would meet a newer page and
  # CPU package: put away until the background builds replace them.
  put_away_stale static/pkg-gpu
  put_away_stale static/pkg-mt
  local gpu_log="$TARGET_DIR/wasm-gpu.log"
  say "building the WebGPU package in the background (log: $gpu_log); until it is there, a WebGPU session runs on the CPU"
  # Then the CIFAR lab's threaded CPU module, one build after the other
  # (two cores), where nightly Rust is; until it is there, one thread.
  local background="./build.sh wasm-gpu"
  if has_nightly; then
    say "then the CIFAR lab's multi-threaded module (same log); until it is there, the lab uses one thread"
    background="$background && ./build.sh wasm-threads"
  else
    say "$NIGHTLY_HINT"
  fi
  # Its own session (so Ctrl-C reaches only this script); the traps stop it
  # and the server on Ctrl-C, on `kill` and on any other exit. The server
  # runs in the background so that `wait` lets the traps run at once.
  setsid bash -c "$background" > "$gpu_log" 2>&1 < /dev/null &
  local gpu=$!
  SERVER=""
  trap 'kill -- -'"$gpu"' 2>/dev/null || true; [ -z "$SERVER" ] || kill "$SERVER" 2>/dev/null || true' EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  if [ -x "$BIN" ]; then
    offer_pretrained static
    say "serving the playground with $BIN"
    "$BIN" serve --dir static "$@" &
  else
    local site="$TARGET_DIR/site" port="${PORT:-8080}"
    rm -rf "$site"
    mkdir -p "$site/data"
    # Linked, not copied: the WebGPU package lands in static/ when its
    # background build ends, and is served from then on.
    for f in static/* static/_headers; do ln -s "$PWD/$f" "$site/"; done
    for f in pkg pkg-gpu pkg-mt; do [ -e "$site/$f" ] || ln -s "$PWD/static/$f" "$site/$f"; done
    echo '[]' > "$site/data/index.json"
    offer_data "$site"
    say "serving the playground on http://127.0.0.1:$port/ (Python's static server; ./build.sh build adds the native CLI)"
    python3 -m http.server "$port" --bind 127.0.0.1 --directory "$site" &
  fi
  SERVER=$!
  wait "$SERVER"
}

run_tests() {
  # Vulkan and Chromium want a runtime directory; CI shells often lack one.
  export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
  build_native
  build_wasm
  need_browser
  need_node_deps
  offer_pretrained static
  say "Rust tests (unit, integration, CLI end-to-end)"
  # The same dependency graph as the CLI above: nothing is compiled twice.
  cargo test --release -p prunelab
  say "ONNX exports in tract (an independent runtime; its own crate, so its features stay out of burn's graph)"
  cargo run --release -q -p onnx-check -- target/interop
  say "browser tests (headless Chromium)"
  PRUNELAB_BIN="$BIN" node tests/browser/run.mjs
  say "browser tests of the static site (./build.sh site) under a sub-path of Python's static server"
  PRUNELAB_SITE_THREADS=0 build_site "$TARGET_DIR/site-test"
  PRUNELAB_SITE="$TARGET_DIR/site-test" PRUNELAB_BIN="$BIN" node tests/browser/run.mjs
  say "Slurm job-array test (sweep shards, a failed shard, re-submission, USR1 requeue)"
  need_slurm
  tests/slurm/run.sh "$BIN"
}

case "${1:-}" in
  serve) serve_page "${@:2}" ;;
  site)
    [ -n "${2:-}" ] || { echo "usage: ./build.sh site DIR" >&2; exit 2; }
    build_site "$2"
    ;;
  test) run_tests ;;
  build) build_native && build_wasm ;;
  wasm) build_wasm ;;
  wasm-gpu) need_wasm_tools && wasm_package static/pkg-gpu web "$TARGET_DIR" ;;
  wasm-threads) build_wasm_threads ;;
  *)
    sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
