#!/usr/bin/python3
"""Reference fixtures for danlu's LLaMA + LoRA math, in plain PyTorch.

Re-implements what Hugging Face transformers 4.35 LlamaForCausalLM computes (eager attention)
with PEFT 0.3.0 LoRA on all seven projections and trainable embed_tokens / lm_head
("modules_to_save"), without transformers, peft or safetensors (none are installable here).
Everything is computed in float64 from parameters that were first rounded to float32, so a
float32 implementation reading the stored F32 parameters starts from exactly the same numbers;
results are stored as F32 (rounding adds at most 6e-8 relative error).

Run from the repository root:  /usr/bin/python3 trainer/src/test/python/make_reference.py
Output: trainer/src/test/resources/reference/ (see README.md there), or --out DIR. Deterministic: the same
torch version writes byte-identical files.
"""
import json
import math
import os
import struct
import sys

import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "resources", "reference")
DT = torch.float64

# ---- configuration -------------------------------------------------------------------------
HIDDEN, INTER, LAYERS, HEADS, KV_HEADS = 32, 88, 2, 4, 2
HEAD_DIM = HIDDEN // HEADS
BASE_VOCAB, NEW_VOCAB = 131, 147  # the adapter resizes the vocabulary, like 32000 -> 55296
EPS, THETA, MAX_POS = 1e-5, 10000.0, 64
R, ALPHA = 4, 6  # scaling alpha/r = 1.5: a value that exposes alpha vs alpha/r mix-ups
SCALING = ALPHA / R
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
PAD_ID = 130
PREFIX = "base_model.model."  # PEFT's prefix: PeftModel.base_model (LoraModel).model


def hf_config(vocab, tie=False, rope_scaling=None, max_pos=MAX_POS):
    """config.json as transformers 4.35 writes it for LlamaForCausalLM."""
    return {
        "architectures": ["LlamaForCausalLM"],
        "attention_bias": False,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "hidden_act": "silu",
        "hidden_size": HIDDEN,
        "initializer_range": 0.02,
        "intermediate_size": INTER,
        "max_position_embeddings": max_pos,
        "model_type": "llama",
        "num_attention_heads": HEADS,
        "num_hidden_layers": LAYERS,
        "num_key_value_heads": KV_HEADS,
        "pad_token_id": PAD_ID,
        "pretraining_tp": 1,
        "rms_norm_eps": EPS,
        "rope_scaling": rope_scaling,
        "rope_theta": THETA,
        "tie_word_embeddings": tie,
        "torch_dtype": "float32",
        "transformers_version": "4.35.2",
        "use_cache": True,
        "vocab_size": vocab,
    }


def shape_of(name):
    """[out, in] of a projection."""
    kv = KV_HEADS * HEAD_DIM
    return {
        "q_proj": (HIDDEN, HIDDEN),
        "k_proj": (kv, HIDDEN),
        "v_proj": (kv, HIDDEN),
        "o_proj": (HIDDEN, HIDDEN),
        "gate_proj": (INTER, HIDDEN),
        "up_proj": (INTER, HIDDEN),
        "down_proj": (HIDDEN, INTER),
    }[name]


def module_path(layer, proj):
    part = "self_attn" if proj in ("q_proj", "k_proj", "v_proj", "o_proj") else "mlp"
    return "model.layers.%d.%s.%s" % (layer, part, proj)


# ---- a minimal safetensors writer (header JSON + raw little-endian bytes) --------------------
DTYPES = {torch.float32: "F32", torch.float64: "F64", torch.int64: "I64", torch.int16: "I16",
          torch.float16: "F16", torch.bfloat16: "BF16"}


def write_safetensors(path, tensors):
    """tensors: list of (name, tensor) in file order."""
    header, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    for name, t in tensors:
        t = t.detach().contiguous()
        # numpy has no bfloat16: write its 16-bit patterns (little-endian, as safetensors)
        a = (t.view(torch.int16) if t.dtype == torch.bfloat16 else t).numpy()
        data = a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [off, off + len(data)]}
        blobs.append(data)
        off += len(data)
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * (-len(h) % 8)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def f32(t):
    """Rounds to float32 and back: the parameters the Java side will read."""
    return t.to(torch.float32).to(DT)


def stored(t):
    return t.detach().to(torch.float32)


def write_json(path, obj):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
        f.write("\n")


# ---- the model (transformers 4.35 semantics) -------------------------------------------------
class Cfg:
    """The config.json fields the forward pass reads."""

    def __init__(self, c):
        self.hidden = c["hidden_size"]
        self.heads = c["num_attention_heads"]
        self.kv_heads = c.get("num_key_value_heads", self.heads)
        self.head_dim = self.hidden // self.heads
        self.layers = c["num_hidden_layers"]
        self.eps = c["rms_norm_eps"]
        self.theta = c.get("rope_theta", 10000.0)
        self.max_pos = c["max_position_embeddings"]
        self.rope_scaling = c.get("rope_scaling")
        self.tie = c.get("tie_word_embeddings", False)


def rms_norm(x, w, eps):
    # HF upcasts to float32 for the statistics; here everything is float64 already.
    var = x.pow(2).mean(-1, keepdim=True)
    return w * (x * torch.rsqrt(var + eps))


def rope_cos_sin(c, seq_len):
    """LlamaRotaryEmbedding / LinearScaling / DynamicNTKScaling as in 4.35 for one forward of
    seq_len tokens (the cache is (re)built for seq_len when seq_len > max_position_embeddings)."""
    base, d = c.theta, c.head_dim
    t = torch.arange(seq_len, dtype=DT)
    if c.rope_scaling is not None:
        factor = c.rope_scaling["factor"]
        if c.rope_scaling["type"] == "linear":
            t = t / factor
        elif c.rope_scaling["type"] == "dynamic":
            if seq_len > c.max_pos:
                base = c.theta * ((factor * seq_len / c.max_pos) - (factor - 1)) ** (d / (d - 2))
        else:
            raise ValueError(c.rope_scaling)
    inv_freq = 1.0 / (base ** (torch.arange(0, d, 2, dtype=DT) / d))
    freqs = torch.outer(t, inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)  # [seq, head_dim]: HF's half-split layout
    return emb.cos(), emb.sin()


def rotate_half(x):
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def linear(x, p, key, lora):
    """PEFT LoRA Linear: W x + B(A(dropout(x))) * alpha/r (dropout 0 here, no bias)."""
    y = x @ p[key + ".weight"].T
    if lora is not None and key + ".lora_A.weight" in lora:
        y = y + (x @ lora[key + ".lora_A.weight"].T) @ lora[key + ".lora_B.weight"].T * SCALING
    return y


def forward(c, p, input_ids, attention_mask, lora=None):
    """Logits [batch, seq, vocab]. c: Cfg; p: weights by HF name; lora: LoRA A/B by module key."""
    b, s = input_ids.shape
    hd = c.head_dim
    embed = p["model.embed_tokens.weight"]
    h = embed[input_ids]
    # Causal + padding mask, additive with the dtype's min like HF 4.35 (not -inf).
    neg = torch.finfo(DT).min
    causal = torch.full((s, s), neg, dtype=DT).triu(1)
    mask = causal[None, None].expand(b, 1, s, s).clone()
    mask = mask.masked_fill(attention_mask[:, None, None, :] == 0, neg)
    cos, sin = rope_cos_sin(c, s)
    for i in range(c.layers):
        L = "model.layers.%d." % i
        x = rms_norm(h, p[L + "input_layernorm.weight"], c.eps)
        q = linear(x, p, L + "self_attn.q_proj", lora).view(b, s, c.heads, hd).transpose(1, 2)
        k = linear(x, p, L + "self_attn.k_proj", lora).view(b, s, c.kv_heads, hd).transpose(1, 2)
        v = linear(x, p, L + "self_attn.v_proj", lora).view(b, s, c.kv_heads, hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        rep = c.heads // c.kv_heads  # repeat_kv: kv head j serves query heads j*rep .. j*rep+rep-1
        k = k[:, :, None].expand(b, c.kv_heads, rep, s, hd).reshape(b, c.heads, s, hd)
        v = v[:, :, None].expand(b, c.kv_heads, rep, s, hd).reshape(b, c.heads, s, hd)
        att = q @ k.transpose(2, 3) / math.sqrt(hd) + mask
        att = torch.softmax(att, dim=-1)
        o = (att @ v).transpose(1, 2).reshape(b, s, c.hidden)
        h = h + linear(o, p, L + "self_attn.o_proj", lora)
        x = rms_norm(h, p[L + "post_attention_layernorm.weight"], c.eps)
        g = linear(x, p, L + "mlp.gate_proj", lora)
        u = linear(x, p, L + "mlp.up_proj", lora)
        h = h + linear(torch.nn.functional.silu(g) * u, p, L + "mlp.down_proj", lora)
    h = rms_norm(h, p["model.norm.weight"], c.eps)
    head = embed if c.tie else p["lm_head.weight"]
    return h @ head.T


def causal_lm_loss(logits, labels):
    """HF LlamaForCausalLM: predict token t+1 from position t; mean over labels != -100."""
    v = logits.shape[-1]
    return torch.nn.functional.cross_entropy(
        logits[:, :-1, :].reshape(-1, v), labels[:, 1:].reshape(-1), ignore_index=-100)


# ---- fixtures --------------------------------------------------------------------------------
def base_weights(gen):
    p = {"model.embed_tokens.weight": torch.randn(BASE_VOCAB, HIDDEN, generator=gen, dtype=DT)}
    for i in range(LAYERS):
        L = "model.layers.%d." % i
        p[L + "input_layernorm.weight"] = 1 + 0.1 * torch.randn(HIDDEN, generator=gen, dtype=DT)
        for proj in TARGETS:
            out, inp = shape_of(proj)
            p[module_path(i, proj) + ".weight"] = torch.randn(out, inp, generator=gen, dtype=DT) / math.sqrt(inp)
        p[L + "post_attention_layernorm.weight"] = 1 + 0.1 * torch.randn(HIDDEN, generator=gen, dtype=DT)
    p["model.norm.weight"] = 1 + 0.1 * torch.randn(HIDDEN, generator=gen, dtype=DT)
    p["lm_head.weight"] = torch.randn(BASE_VOCAB, HIDDEN, generator=gen, dtype=DT) / math.sqrt(HIDDEN)
    return {k: f32(v) for k, v in p.items()}


def hf_order(names):
    """Hugging Face writes tensors sorted by name; mimic that."""
    return sorted(names)


def main(out_dir):
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(20261122)
    p = base_weights(gen)

    # LoRA: A ~ kaiming_uniform(a=sqrt(5)) as PEFT/nn.Linear init (bound 1/sqrt(in)); B random
    # and non-zero (a fresh adapter has B = 0, which would make every dA zero).
    lora = {}
    for i in range(LAYERS):
        for proj in TARGETS:
            out, inp = shape_of(proj)
            key = module_path(i, proj)
            bound = 1.0 / math.sqrt(inp)
            a = (torch.rand(R, inp, generator=gen, dtype=DT) * 2 - 1) * bound
            bm = 0.2 * torch.randn(out, R, generator=gen, dtype=DT)
            lora[key + ".lora_A.weight"] = f32(a).requires_grad_()
            lora[key + ".lora_B.weight"] = f32(bm).requires_grad_()
    # modules_to_save: trained copies, resized to NEW_VOCAB (old rows perturbed, new rows fresh).
    embed = torch.cat([p["model.embed_tokens.weight"] + 0.05 * torch.randn(BASE_VOCAB, HIDDEN, generator=gen, dtype=DT),
                       torch.randn(NEW_VOCAB - BASE_VOCAB, HIDDEN, generator=gen, dtype=DT)])
    head = torch.cat([p["lm_head.weight"] + 0.05 * torch.randn(BASE_VOCAB, HIDDEN, generator=gen, dtype=DT) / math.sqrt(HIDDEN),
                      torch.randn(NEW_VOCAB - BASE_VOCAB, HIDDEN, generator=gen, dtype=DT) / math.sqrt(HIDDEN)])
    embed = f32(embed).requires_grad_()
    head = f32(head).requires_grad_()

    # Inputs: batch 2, seq 7; row 1 (the second) right-padded by 2 with PAD_ID; ids >= 131 use
    # the rows the resize added; -100 labels on a "prompt" token and on the pads.
    input_ids = torch.tensor([[1, 17, 140, 55, 131, 99, 2],
                              [1, 64, 8, 146, 3, PAD_ID, PAD_ID]], dtype=torch.int64)
    attention_mask = torch.tensor([[1, 1, 1, 1, 1, 1, 1],
                                   [1, 1, 1, 1, 1, 0, 0]], dtype=torch.int64)
    labels = input_ids.clone()
    labels[0, 1] = -100
    labels[1, 2] = -100
    labels[attention_mask == 0] = -100

    pa = dict(p)
    pa["model.embed_tokens.weight"] = embed
    pa["lm_head.weight"] = head
    cfg = Cfg(hf_config(NEW_VOCAB))
    logits = forward(cfg, pa, input_ids, attention_mask, lora)
    loss = causal_lm_loss(logits, labels)
    loss.backward()

    # Base model alone (no adapter, original vocabulary) on ids < 131, for "fresh adapter == base".
    base_ids = input_ids.clone()
    base_ids[base_ids >= BASE_VOCAB] = 5
    with torch.no_grad():
        base_logits = forward(Cfg(hf_config(BASE_VOCAB)), p, base_ids, attention_mask)
        tied_logits = forward(Cfg(hf_config(BASE_VOCAB, tie=True)), p, base_ids, attention_mask)
        rope_linear = forward(Cfg(hf_config(NEW_VOCAB, rope_scaling={"type": "linear", "factor": 2.0})),
                              pa, input_ids, attention_mask, lora)
        rope_dynamic = forward(Cfg(hf_config(NEW_VOCAB, rope_scaling={"type": "dynamic", "factor": 2.0}, max_pos=4)),
                               pa, input_ids, attention_mask, lora)
        # Merged model: W + (B @ A) * alpha/r, embed/lm_head replaced; must give the same logits.
        merged = dict(p)
        for key in [k[: -len(".lora_A.weight")] for k in lora if k.endswith(".lora_A.weight")]:
            merged[key + ".weight"] = p[key + ".weight"] + (lora[key + ".lora_B.weight"] @ lora[key + ".lora_A.weight"]) * SCALING
        merged["model.embed_tokens.weight"] = embed
        merged["lm_head.weight"] = head
        merged_logits = forward(cfg, merged, input_ids, attention_mask)
        assert torch.allclose(merged_logits, logits, rtol=1e-10, atol=1e-10)

    os.makedirs(out_dir, exist_ok=True)
    write_json(os.path.join(out_dir, "tiny-llama", "config.json"), hf_config(BASE_VOCAB))
    write_safetensors(os.path.join(out_dir, "tiny-llama", "model.safetensors"),
                      [(k, stored(p[k])) for k in hf_order(p)])
    # Tied variant: HF drops lm_head.weight from the file when it is tied to embed_tokens.
    write_json(os.path.join(out_dir, "tiny-llama-tied", "config.json"), hf_config(BASE_VOCAB, tie=True))
    write_safetensors(os.path.join(out_dir, "tiny-llama-tied", "model.safetensors"),
                      [(k, stored(p[k])) for k in hf_order(p) if k != "lm_head.weight"])
    write_json(os.path.join(out_dir, "rope-linear.config.json"),
               hf_config(BASE_VOCAB, rope_scaling={"type": "linear", "factor": 2.0}))
    write_json(os.path.join(out_dir, "rope-dynamic.config.json"),
               hf_config(BASE_VOCAB, rope_scaling={"type": "dynamic", "factor": 2.0}, max_pos=4))

    write_json(os.path.join(out_dir, "tiny-adapter", "adapter_config.json"), {
        "base_model_name_or_path": "tiny-llama",
        "bias": "none",
        "fan_in_fan_out": False,
        "inference_mode": True,
        "init_lora_weights": True,
        "lora_alpha": ALPHA,
        "lora_dropout": 0.0,
        "modules_to_save": ["embed_tokens", "lm_head"],
        "peft_type": "LORA",
        "r": R,
        "target_modules": ["q_proj", "v_proj", "k_proj", "o_proj", "gate_proj", "down_proj", "up_proj"],
        "task_type": "CAUSAL_LM",
    })
    adapter = [(PREFIX + k, stored(v)) for k, v in lora.items()]
    adapter += [(PREFIX + "model.embed_tokens.weight", stored(embed)), (PREFIX + "lm_head.weight", stored(head))]
    write_safetensors(os.path.join(out_dir, "tiny-adapter", "adapter_model.safetensors"), adapter)

    write_json(os.path.join(out_dir, "tiny-merged", "config.json"), hf_config(NEW_VOCAB))
    write_safetensors(os.path.join(out_dir, "tiny-merged", "model.safetensors"),
                      [(k, stored(merged[k])) for k in hf_order(merged)])

    write_safetensors(os.path.join(out_dir, "io.safetensors"), [
        ("input_ids", input_ids), ("attention_mask", attention_mask), ("labels", labels),
        ("logits", stored(logits)), ("loss", stored(loss)),
        ("base_input_ids", base_ids), ("base_logits", stored(base_logits)),
        ("tied_logits", stored(tied_logits)),
        ("rope_linear_logits", stored(rope_linear)), ("rope_dynamic_logits", stored(rope_dynamic)),
    ])
    grads = [(PREFIX + k, stored(v.grad)) for k, v in lora.items()]
    grads += [(PREFIX + "model.embed_tokens.weight", stored(embed.grad)),
              (PREFIX + "lm_head.weight", stored(head.grad))]
    write_safetensors(os.path.join(out_dir, "grads.safetensors"), grads)
    half_fixtures(out_dir, p, lora, embed, head, input_ids, attention_mask, labels, base_ids)
    rounding_fixture(out_dir)
    print("loss %.10f; wrote %s" % (loss.item(), os.path.normpath(out_dir)), file=sys.stderr)


# ---- half-precision storage (torch_dtype float16 / bfloat16) ---------------------------------
HALF_TYPES = [("f16", torch.float16, "float16"), ("bf16", torch.bfloat16, "bfloat16")]


def half_fixtures(out_dir, p, lora, embed, head, input_ids, attention_mask, labels, base_ids):
    """What a model loaded with torch_dtype=float16 / bfloat16 computes when the math is float32
    (danlu's design): every frozen base weight is .half().float() / .bfloat16().float(); LoRA and
    the trained embed_tokens / lm_head stay as they are. The outputs are computed in float64 from
    those rounded values like everything else here. Also writes the rounded base model as torch
    saves it in that dtype (tiny-llama-f16/, tiny-llama-bf16/: F16 / BF16 tensors)."""
    tensors = []
    for tag, hdt, name in HALF_TYPES:
        ph = {k: v.to(torch.float32).to(hdt).to(DT) for k, v in p.items()}
        la = {k: v.detach().clone().requires_grad_() for k, v in lora.items()}
        e = embed.detach().clone().requires_grad_()
        h = head.detach().clone().requires_grad_()
        pa = dict(ph)
        pa["model.embed_tokens.weight"] = e
        pa["lm_head.weight"] = h
        logits = forward(Cfg(hf_config(NEW_VOCAB)), pa, input_ids, attention_mask, la)
        loss = causal_lm_loss(logits, labels)
        loss.backward()
        with torch.no_grad():
            base_logits = forward(Cfg(hf_config(BASE_VOCAB)), ph, base_ids, attention_mask)
        tensors += [(tag + ".logits", stored(logits)), (tag + ".loss", stored(loss)),
                    (tag + ".base_logits", stored(base_logits))]
        tensors += [(tag + ".grad." + PREFIX + k, stored(v.grad)) for k, v in la.items()]
        tensors += [(tag + ".grad." + PREFIX + "model.embed_tokens.weight", stored(e.grad)),
                    (tag + ".grad." + PREFIX + "lm_head.weight", stored(h.grad))]
        cfg = hf_config(BASE_VOCAB)
        cfg["torch_dtype"] = name
        write_json(os.path.join(out_dir, "tiny-llama-" + tag, "config.json"), cfg)
        write_safetensors(os.path.join(out_dir, "tiny-llama-" + tag, "model.safetensors"),
                          [(k, p[k].to(torch.float32).to(hdt)) for k in hf_order(p)])
    write_safetensors(os.path.join(out_dir, "half.safetensors"), tensors)


def f32_bits(bits):
    return torch.tensor(bits, dtype=torch.int64).to(torch.int32).view(torch.float32)


def rounding_fixture(out_dir):
    """torch's float32 -> float16 / bfloat16 rounding on edge cases and random bit patterns."""
    u = lambda b: b - (1 << 32) if b >= 1 << 31 else b  # noqa: E731 (uint32 -> int32)
    edges = [
        0x00000000, 0x80000000,  # +-0
        0x3f800000, 0xbf800000, 0x3eaaaaab,  # 1, -1, 1/3
        0x3f801000, 0x3f803000, 0x3f801001, 0xbf801000,  # f16 ties at 1 (to even), above, negative
        0x477fe000, 0x477fefff, 0x477ff000, 0x477ff001, 0x47800000,  # 65504 .. 65520 (tie -> inf)
        0x501502f9, 0x7f7fffff, 0xff7fffff,  # 1e10, +-max float: overflow
        0x38800000, 0x387fffff, 0x387fe000, 0x387ff000,  # f16 min normal and just below
        0x33800000, 0x33000000, 0x33000001, 0x33c00000, 0x34200000, 0x32ffffff,  # f16 subnormals
        0x00000001, 0x00400000, 0x80000001,  # float subnormals
        0x3f808000, 0x3f818000, 0x3f808001, 0xbf808000,  # bf16 ties at 1
        0x7f7f8000, 0x7f7effff, 0x00010000, 0x00008000, 0x00018000,  # bf16 overflow, subnormals
        0x7f800000, 0xff800000,  # +-inf
        0x7fc00000, 0xffc00000, 0x7fc12345, 0x7f800001, 0xff812345,  # NaNs: quiet, payload, signaling
    ]
    gen = torch.Generator().manual_seed(16)
    rand_bits = torch.randint(0, 1 << 32, (2000,), generator=gen, dtype=torch.int64).tolist()
    x = torch.cat([f32_bits([u(b) for b in edges + rand_bits]),
                   torch.randn(2000, generator=gen, dtype=torch.float32) * 10 ** torch.randint(-9, 6, (2000,), generator=gen).float()])
    write_safetensors(os.path.join(out_dir, "rounding.safetensors"), [
        ("input", x),
        ("f16_bits", x.to(torch.float16).view(torch.int16)),
        ("bf16_bits", x.to(torch.bfloat16).view(torch.int16)),
    ])


def read_safetensors(path):
    """The inverse of write_safetensors, for the stories260K self-check (F32 only)."""
    import numpy as np
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for k, e in header.items():
        if k == "__metadata__":
            continue
        assert e["dtype"] == "F32", (path, k, e["dtype"])
        b, en = e["data_offsets"]
        out[k] = torch.from_numpy(np.frombuffer(data[b:en], dtype="<f4").copy()).reshape(e["shape"]).to(DT)
    return out


def check_stories260k(shared):
    """Validates this forward pass itself: greedy decoding of the real stories260K model from BOS
    must reproduce llama2.c's published output token for token."""
    import sentencepiece
    d = os.path.join(shared, "fixtures", "stories260K")
    with open(os.path.join(d, "config.json")) as f:
        c = Cfg(json.load(f))
    p = read_safetensors(os.path.join(d, "model.safetensors"))
    sp = sentencepiece.SentencePieceProcessor(model_file=os.path.join(d, "tokenizer.model"))
    with open(os.path.join(d, "expected-greedy-from-bos.txt")) as f:
        expected = f.read()
    ids = [1]
    with torch.no_grad():
        while len(ids) <= 256:  # llama2.c runs 256 forward steps, each emitting a token
            t = torch.tensor([ids])
            nxt = int(forward(c, p, t, torch.ones_like(t))[0, -1].argmax())
            if nxt == 1:  # llama2.c's run stops at BOS
                break
            ids.append(nxt)
    text = sp.decode(ids[1:])
    ok = expected.strip() == text.strip()
    print("stories260K greedy from BOS (%d tokens) %s llama2.c" % (len(ids), "MATCHES" if ok else "DIFFERS FROM"),
          file=sys.stderr)
    if not ok:
        print(text, file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--check-stories260k":
        check_stories260k(sys.argv[2] if len(sys.argv) > 2 else os.path.join(OUT, "../../../../../../shared"))
    elif len(sys.argv) > 2 and sys.argv[1] == "--out":
        main(sys.argv[2])  # the Java test regenerates into a temporary directory and compares
    else:
        main(OUT)
