#!/usr/bin/python3
"""Reference fixture for dev.danlu.train.optim.AdamW: torch.optim.AdamW (PyTorch 1.13 single-tensor
path) on three parameters with Hugging Face's two parameter groups (decay / no decay), a changing
learning rate and fixed gradients per step.

Regenerate:  /usr/bin/python3 trainer/src/test/python/adamw_fixture.py > trainer/src/test/resources/optim/adamw-torch.json
"""
import json
import math

import torch

torch.manual_seed(1234)
shapes = {"layers.0.mlp.up_proj.lora_A.weight": (4, 6), "layers.0.bias": (5,), "model.norm.weight": (3,)}
params = {n: torch.nn.Parameter(torch.randn(*s, dtype=torch.float32)) for n, s in shapes.items()}
decay = [p for n, p in params.items() if "bias" not in n and "norm" not in n]
no_decay = [p for n, p in params.items() if "bias" in n or "norm" in n]
opt = torch.optim.AdamW(
    [{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
    lr=2e-4, betas=(0.9, 0.999), eps=1e-8, foreach=False)

out = {"names": list(shapes), "initial": {n: p.detach().flatten().tolist() for n, p in params.items()},
       "steps": []}
for step in range(6):
    lr = 2e-4 * (0.5 + 0.5 * math.cos(step))  # any varying lr; the Java side reads it from here
    for g in opt.param_groups:
        g["lr"] = lr
    grads = {}
    for n, p in params.items():
        # gradients of mixed magnitude, including tiny ones where eps matters
        g = torch.randn(p.shape, dtype=torch.float32) * (10.0 ** (step % 3 - 2))
        p.grad = g
        grads[n] = g.flatten().tolist()
    opt.step()
    out["steps"].append({"lr": lr, "grads": grads,
                         "params": {n: p.detach().flatten().tolist() for n, p in params.items()}})
print(json.dumps(out))
