#!/usr/bin/python3
"""Plain-Python reference of danlu's SFT data rules (docs/sft.md), after Chinese-LLaMA-Alpaca-2
scripts/training/build_dataset.py, with python3-sentencepiece standing in for transformers'
slow LlamaTokenizer (legacy mode; see docs/sft.md for why they give the same ids here).

usage: sft_reference.py <records.json> <tokenizer.model> <max_seq_length>
prints one JSON line per record: {"input_ids": [...], "labels": [...]}, or {"dropped": true}
when every label is -100 after the cut.
"""
import json
import sys

import sentencepiece as spm

IGNORE_INDEX = -100
PROMPT_TEMPLATE = (
    "[INST] <<SYS>>\n"
    "You are a helpful assistant. 你是一个乐于助人的助手。\n"
    "<</SYS>>\n\n{instruction} [/INST]"
)


def main():
    path, model, max_seq_length = sys.argv[1], sys.argv[2], int(sys.argv[3])
    sp = spm.SentencePieceProcessor(model_file=model)
    with open(path, encoding="utf-8") as f:
        records = json.load(f)
    out = sys.stdout
    for r in records:
        instruction, inp, output = r["instruction"], r.get("input"), r["output"]
        if inp is not None and inp != "":
            instruction = instruction + "\n" + inp
        source = PROMPT_TEMPLATE.format_map({"instruction": instruction})
        # tokenizer(source): BOS + pieces; tokenizer(output + eos_token, add_special_tokens=False):
        # the "</s>" text is split off as the EOS special token, the output keeps the dummy prefix.
        s = [sp.bos_id()] + sp.encode(source)
        t = sp.encode(output) + [sp.eos_id()]
        input_ids = (s + t)[:max_seq_length]
        labels = ([IGNORE_INDEX] * len(s) + t)[:max_seq_length]
        assert len(input_ids) == len(labels)
        if all(x == IGNORE_INDEX for x in labels):
            out.write('{"dropped": true}\n')
        else:
            out.write(json.dumps({"input_ids": input_ids, "labels": labels}) + "\n")


if __name__ == "__main__":
    main()
