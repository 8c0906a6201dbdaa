// Drives a real llama.cpp (the npm package node-llama-cpp, installed by scripts/setup.sh under
// $NLC_DIR, prebuilt CPU binaries) for danlu's GGUF export tests. Usage:
//   NLC_DIR=<dir> node llama_cpp.mjs <request.json>
// The request is {"runs": [{"model": path, "lora": path?, "ops": [op...]}, ...]} (several models
// in one process: loading the runtime costs seconds); the answer on stdout is
// {"llamaCpp": release, "runs": [[result per op], ...]}:
//   {"op": "tokenize", "texts": [..]}          -> [[ids..], ..]   (no BOS, text only: no special tokens)
//   {"op": "greedy", "prompt": [ids], "n": k}  -> [ids..]         (temperature 0, k new tokens or fewer
//                                                                   when llama.cpp stops at end-of-generation)
//   {"op": "probs", "tokens": [ids]}           -> [[p(v) for v in vocab] per position]  (softmax of the
//                                                                   logits after each token, float32)
import path from "node:path";
import fs from "node:fs";
import { pathToFileURL } from "node:url";

const dir = process.env.NLC_DIR;
if (!dir) throw new Error("NLC_DIR must name the node-llama-cpp install (scripts/setup.sh)");
const { getLlama, LlamaLogLevel } = await import(
  pathToFileURL(path.join(dir, "node_modules/node-llama-cpp/dist/index.js")).href);

const req = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const llama = await getLlama({
  gpu: false, build: "never", usePrebuiltBinaries: true, progressLogs: false,
  logLevel: LlamaLogLevel.error, logger: (level, msg) => process.stderr.write(msg),
});
const runs = [];
for (const run of req.runs) {
  runs.push(await runOne(run));
}
process.stdout.write(JSON.stringify({ llamaCpp: llama.llamaCppRelease, runs }));
await llama.dispose();

async function runOne(req) {
const model = await llama.loadModel({ modelPath: req.model, gpuLayers: 0 });
const results = [];
for (const op of req.ops) {
  if (op.op === "tokenize") {
    results.push(op.texts.map((t) => Array.from(model.tokenize(t, false))));
    continue;
  }
  const need = op.op === "greedy" ? op.prompt.length + op.n : op.tokens.length;
  const context = await model.createContext({
    contextSize: Math.max(need + 1, 32), batchSize: Math.max(need + 1, 32), threads: 1, // ggml's workers spin-wait: on a shared 2-core box 2 threads were 20x slower
    // float32 K/V cache (llama.cpp's default is f16) so the comparison with danlu's float32
    // forward measures the exported weights, not the cache's rounding
    experimentalKvCacheKeyType: "F32", experimentalKvCacheValueType: "F32", flashAttention: false,
    ...(req.lora ? { lora: { adapters: [{ filePath: req.lora }] } } : {}),
  });
  const seq = context.getSequence();
  if (op.op === "greedy") {
    const out = [];
    for await (const t of seq.evaluate(op.prompt, { temperature: 0 })) {
      out.push(t);
      if (out.length >= op.n) break;
    }
    results.push(out);
  } else if (op.op === "probs") {
    const input = op.tokens.map((t) => [t, { generateNext: { probabilities: true } }]);
    const res = await seq.controlledEvaluate(input);
    const nVocab = model.tokens.count ?? model.fileInsights?.vocabSize;
    results.push(res.map((r) => {
      const p = new Array(nVocab).fill(0);
      for (const [tok, prob] of r.next.probabilities) p[tok] = prob;
      return p;
    }));
  } else {
    throw new Error("unknown op " + op.op);
  }
  await context.dispose();
}
await model.dispose();
return results;
}
