#!/usr/bin/python3
"""Reference fixture for danlu's AdaLoRA, in plain PyTorch (no PEFT: not installable here).

Re-implements what PEFT's AdaLoRA computes (tuners/adalora: SVDLinear, AdaLoraModel.forward's
orthogonality regulariser, RankAllocator) on the committed tiny LLaMA (reference/tiny-llama, via
make_reference.py's forward pass), in float64 from float32-rounded parameters:

  * SVD-form update on all seven projections of both layers: y = W x + (x (A*E)^T B^T) * alpha /
    (ranknum + 1e-5), ranknum = init_r;
  * loss = causal LM cross-entropy + orth_reg_weight * mean over A, B of ||P P^T - I||_F
    (A: P P^T, B: P^T P), and its gradient with respect to every A, B, E;
  * six steps of training (plain SGD, so that the optimizer is not what is being compared) with
    update_and_allocate after each: EMA sensitivity / uncertainty, the cubic budget, masking E at
    and below the (init - budget)-th smallest triplet score; the masks, E and the loss per step.

Run from the repository root:  /usr/bin/python3 trainer/src/test/python/adalora_reference.py
Output: trainer/src/test/resources/adalora/adalora.safetensors (or --out FILE).
"""
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_reference as mr  # noqa: E402

DT = torch.float64
REF = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "resources", "reference")
INIT_R, TARGET_R, ALPHA = 4, 2, 6
TINIT, TFINAL, DELTA_T, TOTAL_STEP = 1, 2, 1, 7
BETA1, BETA2, ORTH = 0.85, 0.85, 0.5
LR = 0.05
STEPS = 6  # 0..5: warm-up (0, 1), cubic masks (2, 3, 4), the final mask (5 = total - tfinal)
SCALE = ALPHA / (torch.tensor(float(INIT_R), dtype=torch.float32) + 1e-5).item()


def ada_linear(ada):
    def linear(x, p, key, lora):
        y = x @ p[key + ".weight"].T
        if key in ada:
            a, b, e = ada[key]
            y = y + (x @ (a * e).T) @ b.T * SCALE
        return y
    return linear


def orth_reg(ada):
    total, n = 0, 0
    for a, b, _ in ada.values():
        for m in (a @ a.T, b.T @ b):
            total = total + torch.norm(m - torch.eye(m.shape[0], dtype=DT), p="fro")
            n += 1
    return total / n


def loss_of(c, p, ada, ids, mask, labels):
    mr.linear = ada_linear(ada)
    logits = mr.forward(c, p, ids, mask)
    return mr.causal_lm_loss(logits, labels) + ORTH * orth_reg(ada)


class Allocator:
    """PEFT's RankAllocator + AdaLoraModel.update_and_allocate (step = the 0-based step index)."""

    def __init__(self, ada):
        self.ipt, self.unc = {}, {}
        self.init_bgt = INIT_R * len(ada)
        self.target_bgt = TARGET_R * len(ada)
        self.pattern = None

    def budget(self, step):
        if step <= TINIT:
            return self.init_bgt, False
        if step > TOTAL_STEP - TFINAL:
            return self.target_bgt, True
        mul = 1 - (step - TINIT) / (TOTAL_STEP - TFINAL - TINIT)
        return int((self.init_bgt - self.target_bgt) * mul ** 3 + self.target_bgt), step % DELTA_T == 0

    def update_ipt(self, ada):
        for key, ps in ada.items():
            for name, q in zip("ABE", ps):
                k = key + name
                ipt = (q * q.grad).abs()
                if k not in self.ipt:
                    self.ipt[k] = torch.zeros_like(q)
                    self.unc[k] = torch.zeros_like(q)
                self.ipt[k] = BETA1 * self.ipt[k] + (1 - BETA1) * ipt
                self.unc[k] = BETA2 * self.unc[k] + (1 - BETA2) * (ipt - self.ipt[k]).abs()

    def mask(self, ada, budget):
        scores = {}
        for key in ada:
            s = {n: self.ipt[key + n] * self.unc[key + n] for n in "ABE"}
            scores[key] = s["E"].view(-1) + (s["A"].mean(dim=1) + s["B"].mean(dim=0))
        allv = torch.cat([scores[k] for k in ada])
        k = self.init_bgt - budget
        thr = torch.kthvalue(allv, k)[0].item()
        srt = allv.sort()[0]
        # the reference is only useful if no score sits within float32 noise of the threshold
        gap = min((srt[k] - srt[k - 1]).item(), (srt[k - 1] - srt[k - 2]).item() if k >= 2 else 1e9)
        self.min_gap = min(getattr(self, "min_gap", 1e9), gap / max(abs(thr), 1e-30))
        self.pattern = {key: scores[key] > thr for key in ada}
        with torch.no_grad():
            for key, (a, b, e) in ada.items():
                e.masked_fill_(~self.pattern[key].view(-1, 1), 0.0)

    def step(self, ada, step):
        end = TOTAL_STEP - TFINAL
        if step < end:
            self.update_ipt(ada)
            budget, do = self.budget(step)
            if do:
                self.mask(ada, budget)
        elif step == end:
            self.mask(ada, self.budget(step)[0])
            self.ipt, self.unc = {}, {}
        elif self.pattern is not None:
            with torch.no_grad():
                for key, (a, b, e) in ada.items():
                    e.masked_fill_(~self.pattern[key].view(-1, 1), 0.0)


def main(out_file):
    torch.manual_seed(0)
    p = mr.read_safetensors(os.path.join(REF, "tiny-llama", "model.safetensors"))
    import json
    with open(os.path.join(REF, "tiny-llama", "config.json")) as f:
        c = mr.Cfg(json.load(f))
    io = {}
    import numpy as np
    import struct
    with open(os.path.join(REF, "io.safetensors"), "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    for k in ("base_input_ids", "attention_mask", "labels"):
        e = header[k]
        b, en = e["data_offsets"]
        io[k] = torch.from_numpy(np.frombuffer(data[b:en], dtype="<i8").copy()).reshape(e["shape"])
    ids, mask = io["base_input_ids"], io["attention_mask"]
    labels = io["labels"].clone()
    labels[labels >= mr.BASE_VOCAB] = -100  # the base vocabulary only (no resize here)

    gen = torch.Generator().manual_seed(20261202)
    ada = {}
    for i in range(mr.LAYERS):
        for proj in mr.TARGETS:
            out, inp = mr.shape_of(proj)
            key = mr.module_path(i, proj)
            # A, B orthogonal-ish scale; E non-zero so every gradient is informative
            a = mr.f32(torch.randn(INIT_R, inp, generator=gen, dtype=DT) / math.sqrt(inp))
            b = mr.f32(torch.randn(out, INIT_R, generator=gen, dtype=DT) / math.sqrt(out))
            e = mr.f32(0.5 * torch.randn(INIT_R, 1, generator=gen, dtype=DT))
            ada[key] = [t.clone().requires_grad_(True) for t in (a, b, e)]

    tensors = [("ids", ids), ("attention_mask", mask), ("labels", labels)]
    for key, (a, b, e) in ada.items():
        pre = mr.PREFIX + key
        tensors += [(pre + ".lora_A", mr.stored(a)), (pre + ".lora_B", mr.stored(b)),
                    (pre + ".lora_E", mr.stored(e))]
    loss = loss_of(c, p, ada, ids, mask, labels)
    loss.backward()
    tensors.append(("loss", torch.tensor([loss.item()], dtype=torch.float32)))
    tensors.append(("orth_reg", torch.tensor([orth_reg(ada).item()], dtype=torch.float32)))
    for key, (a, b, e) in ada.items():
        pre = "grad." + mr.PREFIX + key
        tensors += [(pre + ".lora_A", mr.stored(a.grad)), (pre + ".lora_B", mr.stored(b.grad)),
                    (pre + ".lora_E", mr.stored(e.grad))]

    alloc = Allocator(ada)
    for step in range(STEPS):
        for q in (t for ps in ada.values() for t in ps):
            q.grad = None
        loss = loss_of(c, p, ada, ids, mask, labels)
        loss.backward()
        with torch.no_grad():
            for q in (t for ps in ada.values() for t in ps):
                q -= LR * q.grad
        alloc.step(ada, step)
        tensors.append(("step%d.loss" % step, torch.tensor([loss.item()], dtype=torch.float32)))
        bits = []
        for key, (a, b, e) in ada.items():
            tensors.append(("step%d.E.%s" % (step, key), mr.stored(e)))
            if alloc.pattern is not None:
                bits += [1.0 if x else 0.0 for x in alloc.pattern[key].tolist()]
        if bits:
            tensors.append(("step%d.pattern" % step, torch.tensor(bits, dtype=torch.float32)))
    for key, (a, b, e) in ada.items():
        tensors += [("final." + mr.PREFIX + key + ".lora_A", mr.stored(a)),
                    ("final." + mr.PREFIX + key + ".lora_B", mr.stored(b))]
    print("smallest relative gap around a mask threshold: %.3e" % alloc.min_gap, file=sys.stderr)
    assert alloc.min_gap > 1e-4, "a triplet score is too close to the threshold for a float32 check"
    mr.write_safetensors(out_file, tensors)


if __name__ == "__main__":
    main(sys.argv[2] if len(sys.argv) > 2 and sys.argv[1] == "--out"
         else os.path.join(REF, "..", "adalora", "adalora.safetensors"))
