#!/usr/bin/python3
"""Reference for danlu's `eval` in plain PyTorch + pandas + sentencepiece (no Hugging Face
libraries): what Chinese-LLaMA-Alpaca-2's C-Eval/CMMLU evaluators and llama.cpp's
llama-perplexity would report for a LLaMA model in a Hugging Face directory (F32 safetensors).

  eval_reference.py mc  --model DIR --tokenizer T --benchmark ceval|cmmlu --data DIR [--dev DIR]
                        [--shots K] [--with-prompt] [--subjects a,b] [--max-len N]
      JSON {subject stem: [{index, pred, answer, scores: [a, b, c, d], shots}]}
  eval_reference.py ppl --model DIR --tokenizer T --text FILE --ctx N
      JSON {perplexity, nll, stderr, tokens, running: [...]}

Multiple choice follows scripts/ceval/llama_evaluator.py and scripts/cmmlu/llama2_evaluator.py
(constrained decoding, no chain of thought): the CSV read by pandas.read_csv with its defaults,
cells formatted by f-strings, the few-shot history and the Alpaca-2 template joined as the scripts
join them, the prompt tokenized as the slow LlamaTokenizer (legacy=True) does: BOS, then each
stretch between the literal "<s>"/"</s>" strings encoded by SentencePiece on its own. The scores
are generate()'s scores[0] under the scripts' generation config in transformers 4.35: the
repetition penalty (1.1) over the prompt's distinct ids, then the temperature warper (/ 0.2;
do_sample=True turns warpers on; top_k=0 and top_p=1.0 add none). A score per letter X is
scores["▁X"] + scores[last id of "：X"], the answer the first argmax. The model runs in float64
(the scripts run float16 on a GPU; see docs/evaluation.md). --max-len drops few-shot examples
from the front until the prompt fits (danlu's rule for prompts longer than the context).

Perplexity follows llama.cpp tools/perplexity/perplexity.cpp perplexity(): BOS + the whole text,
chunks of ctx tokens whose first token becomes BOS, scoring positions ctx/2 .. ctx-2.
"""
import argparse
import json
import math
import os
import sys

import numpy as np
import pandas as pd
import sentencepiece as spm
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_reference import Cfg, read_safetensors, rms_norm, rope_cos_sin, rotate_half  # noqa: E402

DT = torch.float64
CHOICES = ["A", "B", "C", "D"]
SYSTEM = {"ceval": "You are a helpful assistant. 你是一个乐于助人的助手。", "cmmlu": "你是一个乐于助人的助手。"}
COLS = {"ceval": ("question", "answer"), "cmmlu": ("Question", "Answer")}
TEMPLATE = "[INST] <<SYS>>\n{system_prompt}\n<</SYS>>\n\n{instruction} [/INST]"


# ---- model ---------------------------------------------------------------------------------
def load_model(d):
    with open(os.path.join(d, "config.json")) as f:
        c = Cfg(json.load(f))
    p = read_safetensors(os.path.join(d, "model.safetensors"))
    return c, p


def hidden(c, p, ids):
    """Final-norm hidden states [seq, hidden] of one unpadded sequence (HF 4.35 eager)."""
    s = len(ids)
    hd = c.head_dim
    h = p["model.embed_tokens.weight"][torch.tensor(ids)]
    cos, sin = rope_cos_sin(c, s)
    mask = torch.full((s, s), float("-inf"), dtype=DT).triu(1)
    for i in range(c.layers):
        L = "model.layers.%d." % i
        x = rms_norm(h, p[L + "input_layernorm.weight"], c.eps)
        q = (x @ p[L + "self_attn.q_proj.weight"].T).view(s, c.heads, hd).transpose(0, 1)
        k = (x @ p[L + "self_attn.k_proj.weight"].T).view(s, c.kv_heads, hd).transpose(0, 1)
        v = (x @ p[L + "self_attn.v_proj.weight"].T).view(s, c.kv_heads, hd).transpose(0, 1)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        rep = c.heads // c.kv_heads
        k = k.repeat_interleave(rep, dim=0)
        v = v.repeat_interleave(rep, dim=0)
        att = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(hd) + mask, dim=-1)
        o = (att @ v).transpose(0, 1).reshape(s, c.hidden)
        h = h + o @ p[L + "self_attn.o_proj.weight"].T
        x = rms_norm(h, p[L + "post_attention_layernorm.weight"], c.eps)
        g = x @ p[L + "mlp.gate_proj.weight"].T
        u = x @ p[L + "mlp.up_proj.weight"].T
        h = h + (torch.nn.functional.silu(g) * u) @ p[L + "mlp.down_proj.weight"].T
    return rms_norm(h, p["model.norm.weight"], c.eps)


def head(c, p):
    return p["model.embed_tokens.weight"] if c.tie else p["lm_head.weight"]


# ---- tokenizer (slow LlamaTokenizer, legacy=True) --------------------------------------------
def encode(sp, text, add_bos=True):
    ids = [sp.bos_id()] if add_bos else []
    i = 0
    while True:
        hits = [(text.find(t, i), t) for t in ("<s>", "</s>") if text.find(t, i) >= 0]
        if not hits:
            if i < len(text):
                ids += sp.encode(text[i:])
            return ids
        at, tok = min(hits)
        if at > i:
            ids += sp.encode(text[i:at])
        ids.append(sp.bos_id() if tok == "<s>" else sp.eos_id())
        i = at + len(tok)


# ---- multiple choice -------------------------------------------------------------------------
def format_example(line, qcol, acol, include_answer):
    example = line[qcol]
    for choice in CHOICES:
        example += f'\n{choice}. {line[f"{choice}"]}'
    if include_answer:
        example += '\n答案：' + line[acol] + '\n\n'
    else:
        example += '\n答案：'
    return example


def few_shot_history(bench, subject, dev_df, k, with_prompt, first=0):
    qcol, acol = COLS[bench]
    prompt = f"以下是中国关于{subject}考试的单项选择题，请选出其中的正确答案。\n\n"
    if with_prompt:
        prompt = (TEMPLATE + "好的，我会结合{subject}相关知识回答").format_map(
            {"instruction": prompt, "system_prompt": SYSTEM[bench], "subject": subject})
        for i in range(first, k):
            line = dev_df.iloc[i, :]
            q = line[qcol]
            for choice in CHOICES:
                q += f'\n{choice}. {line[f"{choice}"]}'
            prompt += "[INST] " + q + "\n答案：[/INST]" + line[acol] + "\n"
    else:
        for i in range(first, k):
            prompt += format_example(dev_df.iloc[i, :], qcol, acol, True)
    return prompt


def subject_name(bench, stem):
    if bench == "ceval":
        for suffix in ("_val", "_test", "_dev"):
            if stem.endswith(suffix):
                return stem[: -len(suffix)]
    return stem


def mc(args):
    c, p = load_model(args.model)
    W = head(c, p)
    sp = spm.SentencePieceProcessor(model_file=args.tokenizer)
    s_ids = [sp.encode(x)[0] for x in CHOICES]          # encode("A", add_special_tokens=False)[0]
    c_ids = [encode(sp, "：" + x)[-1] for x in CHOICES]   # encode("：A")[-1]
    qcol, acol = COLS[args.benchmark]
    files = sorted(f for f in os.listdir(args.data) if f.endswith(".csv"))
    if args.subjects:
        files = [f for f in files if f[:-4] in args.subjects.split(",")]
    out = {}
    for f in files:
        stem = f[:-4]
        subject = subject_name(args.benchmark, stem)
        test_df = pd.read_csv(os.path.join(args.data, f))
        dev_df = None
        if args.shots > 0:
            dev_name = subject + "_dev.csv" if args.benchmark == "ceval" else f
            dev_df = pd.read_csv(os.path.join(args.dev, dev_name))
        answers = list(test_df[acol]) if acol in test_df.columns else ["NA"] * len(test_df)
        res = []
        for row_index, row in test_df.iterrows():
            instruction = format_example(row, qcol, acol, False)
            if args.with_prompt:
                instruction = TEMPLATE.format_map({"instruction": instruction, "system_prompt": SYSTEM[args.benchmark]})
            first = 0
            while True:
                history = few_shot_history(args.benchmark, subject, dev_df, args.shots, args.with_prompt, first) \
                    if args.shots > 0 else ""
                ids = encode(sp, history + instruction)
                if args.max_len is None or len(ids) <= args.max_len or first >= args.shots:
                    break
                first += 1
            h = hidden(c, p, ids)[-1]
            logits = h @ W.T
            # RepetitionPenaltyLogitsProcessor(1.1) over input_ids, then TemperatureLogitsWarper(0.2)
            idx = torch.tensor(sorted(set(ids)))
            sc = logits[idx]
            logits[idx] = torch.where(sc < 0, sc * 1.1, sc / 1.1)
            scores = logits / 0.2
            allc = (scores[s_ids] + scores[c_ids]).numpy()
            assert not (np.any(np.isinf(allc)) or np.any(np.isnan(allc)))
            res.append({"index": int(row_index), "pred": CHOICES[int(np.argmax(allc))],
                        "answer": answers[row_index], "scores": [float(v) for v in allc],
                        "shots": args.shots - first})
        out[stem] = res
    json.dump(out, sys.stdout, ensure_ascii=False)


# ---- perplexity ------------------------------------------------------------------------------
def ppl(args):
    c, p = load_model(args.model)
    W = head(c, p)
    sp = spm.SentencePieceProcessor(model_file=args.tokenizer)
    with open(args.text, encoding="utf-8") as f:
        text = f.read()
    tokens = [sp.bos_id()] + sp.encode(text)
    n_ctx = args.ctx
    assert len(tokens) >= 2 * n_ctx, "need at least 2*ctx tokens"
    n_chunk = len(tokens) // n_ctx
    first = n_ctx // 2
    nll = nll2 = 0.0
    count = 0
    running = []
    for i in range(n_chunk):
        start = i * n_ctx
        ids = tokens[start:start + n_ctx]
        ids[0] = sp.bos_id()
        logits = hidden(c, p, ids)[first:n_ctx - 1] @ W.T
        lp = torch.log_softmax(logits, dim=-1)
        tgt = torch.tensor(tokens[start + first + 1:start + n_ctx])
        v = -lp[torch.arange(len(tgt)), tgt]
        nll += float(v.sum())
        nll2 += float((v * v).sum())
        count += len(tgt)
        running.append(math.exp(nll / count))
    nll2 /= count
    nll /= count
    ppl_v = math.exp(nll)
    var = nll2 - nll * nll
    stderr = math.sqrt(var / (count - 1)) * ppl_v if var > 0 else float("nan")
    json.dump({"perplexity": ppl_v, "nll": nll, "stderr": stderr, "tokens": count,
               "running": running}, sys.stdout)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("mc")
    m.add_argument("--model", required=True)
    m.add_argument("--tokenizer", required=True)
    m.add_argument("--benchmark", choices=["ceval", "cmmlu"], required=True)
    m.add_argument("--data", required=True)
    m.add_argument("--dev")
    m.add_argument("--shots", type=int, default=0)
    m.add_argument("--with-prompt", action="store_true")
    m.add_argument("--subjects")
    m.add_argument("--max-len", type=int)
    q = sub.add_parser("ppl")
    q.add_argument("--model", required=True)
    q.add_argument("--tokenizer", required=True)
    q.add_argument("--text", required=True)
    q.add_argument("--ctx", type=int, required=True)
    args = ap.parse_args()
    torch.set_num_threads(1)
    {"mc": mc, "ppl": ppl}[args.cmd](args)


if __name__ == "__main__":
    main()
