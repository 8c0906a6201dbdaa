#!/usr/bin/env python3
"""Synthetic but real preference pairs for trying stage rm / dpo / ppo on a tiny model.

The preference: after an instruction asking for a short story, the chosen response contains the
target word (default "happy") and the rejected one has another word in its place; everything else
is equal, so a reward model or DPO must learn exactly that word. Records are
{instruction, input, chosen, rejected} JSON lines (prep-pairs' input), seeded and deterministic.

  python3 scripts/synthetic-pairs.py [--n 400] [--seed 1] [--target happy] > pairs.jsonl

--continuations puts the story up to "... was very" in the prompt (the record's `input`) and only
the ending in the responses ("happy." vs "sad."): the layout for stage ppo, whose prompts are the
pairs' prompts and whose sampled continuation then decides the feeling (conf/tiny-ppo.yaml).
"""
import argparse
import json
import random

NAMES = ["Lily", "Tom", "Ben", "Sue", "Max", "Mia", "Sam", "Anna", "Tim", "Lucy", "Bob", "Sara"]
THINGS = ["ball", "dog", "cat", "box", "tree", "car", "cake", "bird", "toy", "hat", "boat", "book"]
ADJS = ["big", "red", "little", "blue", "soft", "shiny", "old", "green"]
OTHER = ["sad", "tired", "angry", "scared", "bored", "sleepy"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=400)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--target", default="happy")
    ap.add_argument("--continuations", action="store_true")
    a = ap.parse_args()
    r = random.Random(a.seed)
    for _ in range(a.n):
        name, thing, adj = r.choice(NAMES), r.choice(THINGS), r.choice(ADJS)
        story = "%s had a %s %s. %s played with the %s all day. %s was very %%s." % (
            name, adj, thing, name, thing, name)
        instruction = "Tell a short story about %s and a %s." % (name, thing)
        other = r.choice(OTHER)
        if a.continuations:
            record = {"instruction": instruction, "input": story[:story.index(" %s.")],
                      "chosen": a.target + ".", "rejected": other + "."}
        else:
            record = {"instruction": instruction, "input": "",
                      "chosen": story % a.target, "rejected": story % other}
        print(json.dumps(record, ensure_ascii=False))


if __name__ == "__main__":
    main()
