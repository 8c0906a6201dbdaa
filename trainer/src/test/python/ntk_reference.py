#!/usr/bin/python3
"""Reference logits for danlu's long-context rotary modes, in plain PyTorch (float64).

The reference project's NTK patch (Chinese-LLaMA-Alpaca-2 scripts/attn_and_long_ctx_patches.py,
re-derived here from its description, not copied): with a fixed alpha the rotary base becomes
base * alpha ** (d / (d - 2)) at every length; with alpha "auto" the base stays as it is up to
max_position_embeddings and beyond it alpha = (seq_len / (max_position_embeddings / 2) - 1) * coeff
for the current length. Positions are divided by the linear rope_scaling factor (position
interpolation, PI) in both. Everything else is make_reference.py's LlamaForCausalLM forward.

Run (NtkReferenceTest does, into a temporary directory):
    /usr/bin/python3 trainer/src/test/python/ntk_reference.py OUT_DIR
Reads the committed tiny model (src/test/resources/reference/tiny-llama, max_position_embeddings 64)
and writes OUT_DIR/ntk.safetensors: input_ids, attention_mask [2, SEQ] (row 2 right-padded) and
logits_<case> [2, SEQ, vocab] for each case below, SEQ = 100 > 64.
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_reference as mr  # noqa: E402

SEQ, PAD = 100, 10
# name: (rope_scaling or None, ntk alpha: None, a number or "auto")
CASES = {
    "pi2": ({"type": "linear", "factor": 2.0}, None),
    "ntk2": (None, 2.0),
    "ntk_auto": (None, "auto"),
    "ntk_auto_pi2": ({"type": "linear", "factor": 2.0}, "auto"),
    "ntk1.5_pi2": ({"type": "linear", "factor": 2.0}, 1.5),
}
AUTO_COEFF = 1.0


def rope_cos_sin_ntk(alpha):
    def rope(c, seq_len):
        d = c.head_dim
        base = c.theta
        t = torch.arange(seq_len, dtype=mr.DT)
        if c.rope_scaling is not None:
            assert c.rope_scaling["type"] == "linear"
            t = t / c.rope_scaling["factor"]
        if alpha == "auto":
            if seq_len > c.max_pos:
                a = (seq_len / (c.max_pos / 2) - 1) * AUTO_COEFF
                base = base * a ** (d / (d - 2))
        elif alpha is not None:
            base = base * alpha ** (d / (d - 2))
        inv_freq = 1.0 / (base ** (torch.arange(0, d, 2, dtype=mr.DT) / d))
        freqs = torch.outer(t, inv_freq)
        emb = torch.cat((freqs, freqs), dim=-1)
        return emb.cos(), emb.sin()
    return rope


def main(out_dir):
    model = os.path.join(mr.OUT, "tiny-llama")
    with open(os.path.join(model, "config.json")) as f:
        base_cfg = json.load(f)
    p = mr.read_safetensors(os.path.join(model, "model.safetensors"))
    gen = torch.Generator().manual_seed(21)
    vocab = base_cfg["vocab_size"]
    input_ids = torch.randint(3, vocab - 1, (2, SEQ), generator=gen, dtype=torch.int64)
    input_ids[:, 0] = 1
    attention_mask = torch.ones(2, SEQ, dtype=torch.int64)
    attention_mask[1, SEQ - PAD:] = 0
    input_ids[1, SEQ - PAD:] = mr.PAD_ID
    out = [("input_ids", input_ids), ("attention_mask", attention_mask)]
    with torch.no_grad():
        for name, (scaling, alpha) in CASES.items():
            cfg = dict(base_cfg)
            cfg["rope_scaling"] = scaling
            mr.rope_cos_sin = rope_cos_sin_ntk(alpha)  # the forward below looks it up by name
            logits = mr.forward(mr.Cfg(cfg), p, input_ids, attention_mask)
            out.append(("logits_" + name, mr.stored(logits)))
    mr.write_safetensors(os.path.join(out_dir, "ntk.safetensors"), out)


if __name__ == "__main__":
    main(sys.argv[1])
