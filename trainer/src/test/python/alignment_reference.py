#!/usr/bin/python3
"""Reference fixtures for danlu's preference objectives (reward model, DPO), in plain PyTorch.

Reuses make_reference.py's re-implementation of Hugging Face LlamaForCausalLM + PEFT LoRA and the
committed tiny model and adapter it wrote (reference/tiny-llama, reference/tiny-adapter), without
TRL: the losses below are written from the papers / TRL's documented formulas.

- policy = tiny-llama + tiny-adapter's LoRA (B non-zero) + its embed_tokens / lm_head copies cut to
  the base vocabulary (131 rows: "adapter off" must be able to score every token);
- reference = tiny-llama alone (the adapter switched off: base embed_tokens / lm_head, no LoRA);
- a micro-batch of 2 pairs: rows [chosen0, chosen1, rejected0, rejected1], right-padded, prompt
  tokens labelled -100 (prep-pairs' layout).

DPO (TRL loss_type="sigmoid"): logp = sum over labelled tokens of log softmax; z = (pc - pr) -
(rc - rr); loss = mean(-(1-eps) logsigmoid(beta z) - eps logsigmoid(-beta z)), beta 0.1, eps 0.1.
Reward model (TRL RewardTrainer / LLaMA-Factory): r = v_head(final normed hidden state at the last
non-pad token); loss = mean(-logsigmoid(r_chosen - r_rejected)).

PPO (TRL PPOTrainer 0.7's compute_rewards / compute_advantages / loss, written from their
definitions): random rollouts of 3 samples x 6 response tokens with padding, the KL-penalised
per-token rewards, GAE (gamma 1, lam 0.95), whitened advantages (unbiased masked variance),
returns, the clipped policy loss and clipped value loss (cliprange 0.2, cliprange_value 0.2,
vf_coef 0.1) of new log-probabilities and values some of which lie outside the clip ranges, their
gradients by autograd, and the adaptive KL controller's update; all float64 (ppo.safetensors, F64).
One PPO iteration through the model on fixed rollouts (ppo-iteration*.safetensors): rollout-time
log-probabilities of policy and reference and values, rewards, GAE, whitening, then the first
update's loss and gradients.

Float64 from float32-exact parameters, stored as F32. Run from the repository root:
    /usr/bin/python3 trainer/src/test/python/alignment_reference.py
Output: trainer/src/test/resources/alignment-reference/ (or --out DIR).
"""
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_reference as mr  # noqa: E402
from read_safetensors import read  # noqa: E402

DT = torch.float64
BETA, EPS = 0.1, 0.1


def load(path):
    _, ts = read(path)
    return {k: torch.from_numpy(a.astype(np.float64)) for k, (_, _, a, _) in ts.items()}


def seq_logps(logits, labels):
    """Sum over t with labels[t+1] != -100 of log softmax(logits[t])[labels[t+1]], per row."""
    lp = torch.log_softmax(logits[:, :-1, :], dim=-1)
    tgt = labels[:, 1:]
    mask = tgt != -100
    picked = lp.gather(-1, tgt.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return (picked * mask).sum(-1)


def main(out_dir):
    ref_dir = mr.OUT
    p = load(os.path.join(ref_dir, "tiny-llama", "model.safetensors"))
    ad = load(os.path.join(ref_dir, "tiny-adapter", "adapter_model.safetensors"))
    pre = mr.PREFIX
    V = mr.BASE_VOCAB

    def fresh():
        lora = {k[len(pre):]: v.clone().requires_grad_() for k, v in ad.items() if ".lora_" in k}
        embed = ad[pre + "model.embed_tokens.weight"][:V].clone().requires_grad_()
        head = ad[pre + "lm_head.weight"][:V].clone().requires_grad_()
        return lora, embed, head

    # 2 pairs, prompts of 4 and 3 tokens; rows: chosen0, chosen1, rejected0, rejected1
    P = mr.PAD_ID
    input_ids = torch.tensor([[1, 17, 40, 9, 55, 99, 2, P],
                              [1, 64, 8, 3, 7, 12, 30, 2],
                              [1, 17, 40, 9, 77, 2, P, P],
                              [1, 64, 8, 120, 2, P, P, P]], dtype=torch.int64)
    attention_mask = (input_ids != P).to(torch.int64)
    labels = input_ids.clone()
    labels[0:3:2, :4] = -100
    labels[1:4:2, :3] = -100
    labels[attention_mask == 0] = -100
    cfg = mr.Cfg(mr.hf_config(V))

    # ---- DPO ----
    lora, embed, head = fresh()
    pa = dict(p)
    pa["model.embed_tokens.weight"] = embed
    pa["lm_head.weight"] = head
    pol = seq_logps(mr.forward(cfg, pa, input_ids, attention_mask, lora), labels)
    with torch.no_grad():
        ref = seq_logps(mr.forward(cfg, p, input_ids, attention_mask), labels)
    z = (pol[:2] - pol[2:]) - (ref[:2] - ref[2:])
    lsg = torch.nn.functional.logsigmoid
    dpo_loss = (-(1 - EPS) * lsg(BETA * z) - EPS * lsg(-BETA * z)).mean()
    dpo_loss.backward()
    dpo_grads = [(pre + k, mr.stored(v.grad)) for k, v in lora.items()]
    dpo_grads += [(pre + "model.embed_tokens.weight", mr.stored(embed.grad)),
                  (pre + "lm_head.weight", mr.stored(head.grad))]

    # ---- reward model ----
    gen = torch.Generator().manual_seed(20261202)
    v_w = mr.f32(torch.randn(1, mr.HIDDEN, generator=gen, dtype=DT) / mr.HIDDEN ** 0.5).requires_grad_()
    v_b = mr.f32(0.1 * torch.randn(1, generator=gen, dtype=DT)).requires_grad_()
    lora2, embed2, head2 = fresh()
    pr = dict(p)
    pr["model.embed_tokens.weight"] = embed2
    pr["lm_head.weight"] = torch.eye(mr.HIDDEN, dtype=DT)  # the forward then returns the normed hidden state
    hidden = mr.forward(mr.Cfg(mr.hf_config(mr.HIDDEN)), pr, input_ids, attention_mask, lora2)
    last = attention_mask.sum(-1) - 1  # right padding: the last non-pad token
    values = (hidden @ v_w.T + v_b).squeeze(-1)  # [rows, seq]
    rewards = values[torch.arange(4), last]
    rm_loss = -lsg(rewards[:2] - rewards[2:]).mean()
    rm_loss.backward()
    rm_grads = [(pre + k, mr.stored(v.grad)) for k, v in lora2.items()]
    rm_grads += [(pre + "model.embed_tokens.weight", mr.stored(embed2.grad)),
                 ("v_head.summary.weight", mr.stored(v_w.grad)),
                 ("v_head.summary.bias", mr.stored(v_b.grad))]

    # ---- one PPO mini-batch through the model: new log-probs (LM head) and values (v_head) ----
    lora3, embed3, head3 = fresh()
    v_w3 = v_w.detach().clone().requires_grad_()
    v_b3 = v_b.detach().clone().requires_grad_()
    q_ids = input_ids[:2]
    q_mask = attention_mask[:2]
    q_labels = labels[:2]
    p3 = dict(p)
    p3["model.embed_tokens.weight"] = embed3
    p3["lm_head.weight"] = head3
    logits3 = mr.forward(cfg, p3, q_ids, q_mask, lora3)
    p3h = dict(p3)
    p3h["lm_head.weight"] = torch.eye(mr.HIDDEN, dtype=DT)
    hidden3 = mr.forward(mr.Cfg(mr.hf_config(mr.HIDDEN)), p3h, q_ids, q_mask, lora3)
    values3 = (hidden3 @ v_w3.T + v_b3).squeeze(-1)  # [2, 8]: value at each position
    lp_all = torch.log_softmax(logits3[:, :-1, :], dim=-1)
    tgt = q_labels[:, 1:]
    pmask = torch.zeros(2, 8, dtype=DT)
    pmask[:, :-1] = (tgt != -100).to(DT)  # position p carries token p+1
    new_lp = torch.zeros(2, 8, dtype=DT)
    new_lp[:, :-1] = lp_all.gather(-1, tgt.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    g3 = torch.Generator().manual_seed(20261204)
    old_lp3 = ((new_lp.detach() + 0.3 * torch.randn(2, 8, generator=g3, dtype=DT)) * pmask)
    old_v3 = ((values3.detach() + 0.3 * torch.randn(2, 8, generator=g3, dtype=DT)) * pmask)
    adv3 = torch.randn(2, 8, generator=g3, dtype=DT) * pmask
    ret3 = torch.randn(2, 8, generator=g3, dtype=DT) * pmask
    clip, clip_v, vf_coef = 0.2, 0.2, 0.1
    vclip = torch.max(torch.min(values3, old_v3 + clip_v), old_v3 - clip_v)
    vf3 = 0.5 * masked_mean(torch.max((values3 - ret3) ** 2, (vclip - ret3) ** 2), pmask)
    ratio3 = torch.exp(new_lp - old_lp3)
    pg3 = masked_mean(torch.max(-adv3 * ratio3, -adv3 * torch.clamp(ratio3, 1 - clip, 1 + clip)), pmask)
    ppo_loss = pg3 + vf_coef * vf3
    ppo_loss.backward()
    ppo_grads = [(pre + k, mr.stored(v.grad)) for k, v in lora3.items()]
    ppo_grads += [(pre + "model.embed_tokens.weight", mr.stored(embed3.grad)),
                  (pre + "lm_head.weight", mr.stored(head3.grad)),
                  ("v_head.summary.weight", mr.stored(v_w3.grad)),
                  ("v_head.summary.bias", mr.stored(v_b3.grad))]

    # ---- one PPO iteration on fixed rollouts: rows 0-1 as query + response, fixed scores ----
    it_tensors, it_grads = ppo_iteration(p, fresh, v_w, v_b, q_ids, q_mask, q_labels, cfg)

    os.makedirs(out_dir, exist_ok=True)
    mr.write_safetensors(os.path.join(out_dir, "ppo-model.safetensors"), [
        ("old_logprobs", old_lp3), ("old_values", old_v3), ("advantages", adv3), ("returns", ret3),
        ("loss", ppo_loss.detach()), ("pg_loss", pg3.detach()), ("vf_loss", vf3.detach()),
    ])
    mr.write_safetensors(os.path.join(out_dir, "ppo-model-grads.safetensors"), ppo_grads)
    mr.write_safetensors(os.path.join(out_dir, "ppo-iteration.safetensors"), it_tensors)
    mr.write_safetensors(os.path.join(out_dir, "ppo-iteration-grads.safetensors"), it_grads)
    adapter = [(pre + k, mr.stored(v)) for k, v in lora.items()]
    adapter += [(pre + "model.embed_tokens.weight", mr.stored(embed)),
                (pre + "lm_head.weight", mr.stored(head))]
    mr.write_safetensors(os.path.join(out_dir, "policy-adapter.safetensors"), adapter)
    mr.write_safetensors(os.path.join(out_dir, "value_head.safetensors"),
                         [("v_head.summary.bias", mr.stored(v_b)), ("v_head.summary.weight", mr.stored(v_w))])
    mr.write_safetensors(os.path.join(out_dir, "io.safetensors"), [
        ("input_ids", input_ids), ("attention_mask", attention_mask), ("labels", labels),
        ("policy_logps", mr.stored(pol)), ("reference_logps", mr.stored(ref)),
        ("dpo_loss", mr.stored(dpo_loss)), ("rm_rewards", mr.stored(rewards)), ("rm_loss", mr.stored(rm_loss)),
    ])
    mr.write_safetensors(os.path.join(out_dir, "dpo-grads.safetensors"), dpo_grads)
    mr.write_safetensors(os.path.join(out_dir, "rm-grads.safetensors"), rm_grads)
    ppo_fixture(out_dir)
    print("dpo loss %.10f rm loss %.10f; wrote %s" % (dpo_loss.item(), rm_loss.item(), os.path.normpath(out_dir)),
          file=sys.stderr)


def ppo_iteration(p, fresh, v_w, v_b, q_ids, q_mask, q_labels, cfg):
    """TRL 0.7's step on fixed rollouts (query + response rows, reward-model scores): the policy's
    and the reference's (adapter off) per-token log-probabilities and the policy's values at
    rollout time, KL-penalised rewards (kl_coef 0.2), GAE (gamma 1, lam 0.95) over the response
    positions, advantages whitened over the batch; then the first PPO mini-batch on all of it (new
    = old: every ratio 1), its loss and every gradient."""
    pre = mr.PREFIX
    n, T = q_ids.shape
    lora, embed, head = fresh()
    v_w = v_w.detach().clone().requires_grad_()
    v_b = v_b.detach().clone().requires_grad_()
    pp = dict(p)
    pp["model.embed_tokens.weight"] = embed
    pp["lm_head.weight"] = head
    logits = mr.forward(cfg, pp, q_ids, q_mask, lora)
    ph = dict(pp)
    ph["lm_head.weight"] = torch.eye(mr.HIDDEN, dtype=DT)
    hidden = mr.forward(mr.Cfg(mr.hf_config(mr.HIDDEN)), ph, q_ids, q_mask, lora)
    values = (hidden @ v_w.T + v_b).squeeze(-1)  # value at each position
    tgt = q_labels[:, 1:]
    mask = torch.zeros(n, T, dtype=DT)
    mask[:, :-1] = (tgt != -100).to(DT)  # position t carries response token t+1

    def token_lp(lg):
        out = torch.zeros(n, T, dtype=DT)
        out[:, :-1] = torch.log_softmax(lg[:, :-1, :], dim=-1).gather(
            -1, tgt.clamp(min=0).unsqueeze(-1)).squeeze(-1)
        return out * mask

    lp = token_lp(logits)
    with torch.no_grad():
        ref_lp = token_lp(mr.forward(cfg, p, q_ids, q_mask))
    old_lp = lp.detach()
    old_v = values.detach() * mask
    scores = torch.tensor([1.25, -0.75], dtype=DT)
    kl_coef, gamma, lam, clip, clip_v, vf_coef = 0.2, 1.0, 0.95, 0.2, 0.2, 0.1
    rewards = -kl_coef * (old_lp - ref_lp) * mask
    for i in range(n):
        rewards[i, int(mask[i].nonzero()[-1])] += scores[i]
    last, rev = torch.zeros(n, dtype=DT), []
    for t in reversed(range(T)):
        nxt = old_v[:, t + 1] if t < T - 1 else torch.zeros(n, dtype=DT)
        last = rewards[:, t] + gamma * nxt - old_v[:, t] + gamma * lam * last
        rev.append(last)
    adv = torch.stack(rev[::-1], dim=1)
    returns = adv + old_v
    mean = masked_mean(adv, mask)
    var = masked_mean((adv - mean) ** 2, mask) * (mask.sum() / (mask.sum() - 1))
    white = (adv - mean) * torch.rsqrt(var + 1e-8)
    vclip = torch.max(torch.min(values, old_v + clip_v), old_v - clip_v)
    vf = 0.5 * masked_mean(torch.max((values - returns) ** 2, (vclip - returns) ** 2), mask)
    ratio = torch.exp(lp - old_lp)
    pg = masked_mean(torch.max(-white * ratio, -white * torch.clamp(ratio, 1 - clip, 1 + clip)), mask)
    loss = pg + vf_coef * vf
    loss.backward()
    grads = [(pre + k, mr.stored(v.grad)) for k, v in lora.items()]
    grads += [(pre + "model.embed_tokens.weight", mr.stored(embed.grad)),
              (pre + "lm_head.weight", mr.stored(head.grad)),
              ("v_head.summary.weight", mr.stored(v_w.grad)),
              ("v_head.summary.bias", mr.stored(v_b.grad))]
    tensors = [("scores", scores), ("old_logprobs", old_lp), ("ref_logprobs", ref_lp),
               ("old_values", old_v), ("rewards", rewards), ("advantages", white * mask),
               ("returns", returns * mask), ("loss", loss.detach()), ("pg_loss", pg.detach()),
               ("vf_loss", vf.detach())]
    return tensors, grads


def masked_mean(x, m):
    return (x * m).sum() / m.sum()


def ppo_fixture(out_dir):
    gen = torch.Generator().manual_seed(20261203)
    n, T = 3, 6
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0], [1, 1, 0, 0, 0, 0]], dtype=DT)
    old_lp = -torch.rand(n, T, generator=gen, dtype=DT) * 3
    ref_lp = old_lp + 0.3 * torch.randn(n, T, generator=gen, dtype=DT)
    old_v = torch.randn(n, T, generator=gen, dtype=DT)
    scores = torch.randn(n, generator=gen, dtype=DT)
    kl_coef, gamma, lam, clip, clip_v, vf_coef = 0.2, 1.0, 0.95, 0.2, 0.2, 0.1
    # per-token rewards: -kl_coef * (logprob - ref) plus the score on the last response token
    rewards = -kl_coef * (old_lp - ref_lp) * mask
    for i in range(n):
        last = int(mask[i].nonzero()[-1])
        rewards[i, last] += scores[i]
    # GAE with values and rewards masked
    v, r = old_v * mask, rewards * mask
    last, rev = torch.zeros(n, dtype=DT), []
    for t in reversed(range(T)):
        nxt = v[:, t + 1] if t < T - 1 else torch.zeros(n, dtype=DT)
        delta = r[:, t] + gamma * nxt - v[:, t]
        last = delta + gamma * lam * last
        rev.append(last)
    adv = torch.stack(rev[::-1], dim=1)
    returns = adv + v
    mean = masked_mean(adv, mask)
    var = masked_mean((adv - mean) ** 2, mask) * (mask.sum() / (mask.sum() - 1))
    white = (adv - mean) * torch.rsqrt(var + 1e-8)
    # new log-probs and values: some ratios and values beyond the clip ranges
    new_lp = (old_lp + 0.3 * torch.randn(n, T, generator=gen, dtype=DT)).requires_grad_()
    new_v = (old_v + 0.3 * torch.randn(n, T, generator=gen, dtype=DT)).requires_grad_()
    vclip = torch.max(torch.min(new_v, old_v + clip_v), old_v - clip_v)
    vf_loss = 0.5 * masked_mean(torch.max((new_v - returns) ** 2, (vclip - returns) ** 2), mask)
    ratio = torch.exp(new_lp - old_lp)
    pg1 = -white * ratio
    pg2 = -white * torch.clamp(ratio, 1 - clip, 1 + clip)
    pg_loss = masked_mean(torch.max(pg1, pg2), mask)
    clipfrac = masked_mean((pg2 > pg1).to(DT), mask)
    approxkl = 0.5 * masked_mean((new_lp - old_lp) ** 2, mask)
    loss = pg_loss + vf_coef * vf_loss
    loss.backward()
    # adaptive KL controller (init 0.2, target 6, horizon 10000) after a batch of 256 at KL 9
    kl_value = 0.2 * (1 + max(-0.2, min(0.2, 9.0 / 6 - 1)) * 256 / 10000)
    mr.write_safetensors(os.path.join(out_dir, "ppo.safetensors"), [
        ("mask", mask), ("old_logprobs", old_lp), ("ref_logprobs", ref_lp), ("old_values", old_v),
        ("scores", scores), ("rewards", rewards), ("advantages", white), ("returns", returns),
        ("new_logprobs", new_lp.detach()), ("new_values", new_v.detach()),
        ("loss", loss.detach()), ("pg_loss", pg_loss.detach()), ("vf_loss", vf_loss.detach()),
        ("clipfrac", clipfrac), ("approxkl", approxkl.detach()),
        ("d_logprobs", new_lp.grad), ("d_values", new_v.grad),
        ("kl_coef_after", torch.tensor(kl_value, dtype=DT)),
    ])


if __name__ == "__main__":
    out = os.path.join(mr.OUT, "..", "alignment-reference")
    if len(sys.argv) == 3 and sys.argv[1] == "--out":
        out = sys.argv[2]
    main(out)
