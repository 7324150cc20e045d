#!/usr/bin/env bash
# Builds llama-server from the llama.cpp source node-llama-cpp ships in its npm package
# (node_modules/node-llama-cpp/llama/gitRelease.bundle), for the benchmark baseline.
# Offline, CPU, Release, native arch + OpenMP. Output outside the repo:
#   ${SHIMMY_BASELINE_DIR:-~/.cache/shimmy/baseline}/llama-server
# About 20 minutes on 2 cores. Progress is ninja's own output.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
bundle="$repo/node_modules/node-llama-cpp/llama/gitRelease.bundle"
out="${SHIMMY_BASELINE_DIR:-$HOME/.cache/shimmy/baseline}"
src="$out/llama.cpp"
jobs="${JOBS:-$(nproc)}"

[ -f "$bundle" ] || { echo "missing $bundle: run npm ci first" >&2; exit 1; }
command -v cmake >/dev/null || { echo "cmake is required (apt-get install cmake)" >&2; exit 1; }
mkdir -p "$out"
if [ ! -d "$src/.git" ]; then
  echo "cloning llama.cpp from the npm-shipped bundle into $src"
  git clone --quiet "$bundle" "$src"
fi
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
cmake -S "$src" -B "$src/build" "${generator[@]}" \
  -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DGGML_OPENMP=ON -DLLAMA_OPENSSL=OFF \
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=ON -DBUILD_SHARED_LIBS=OFF
cmake --build "$src/build" --target llama-server -j "$jobs"
cp "$src/build/bin/llama-server" "$out/llama-server"
echo "built $out/llama-server ($("$out/llama-server" --version 2>&1 | head -1))"
