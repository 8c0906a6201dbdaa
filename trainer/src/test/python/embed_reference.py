#!/usr/bin/python3
"""Reference for danlu serve's /v1/embeddings in plain PyTorch + sentencepiece (no Hugging Face
libraries): Chinese-LLaMA-Alpaca-2's openai_api_server.py get_embedding() for one unpadded text:
the final-norm hidden states (transformers 4.35's hidden_states[-1]) of tokenizer(text) (BOS +
SentencePiece ids, as the slow LlamaTokenizer gives them), averaged over the tokens and
L2-normalized (F.normalize, eps 1e-12); the model runs in float64.

  embed_reference.py --model DIR --tokenizer T TEXT...
      JSON [[floats of text 1], [floats of text 2], ...]
"""
import argparse
import json
import os
import sys

import sentencepiece as spm
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from eval_reference import encode, hidden, load_model  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--tokenizer", required=True)
    ap.add_argument("texts", nargs="+")
    a = ap.parse_args()
    c, p = load_model(a.model)
    sp = spm.SentencePieceProcessor(model_file=a.tokenizer)
    out = []
    for t in a.texts:
        h = hidden(c, p, encode(sp, t))
        e = torch.nn.functional.normalize(h.mean(dim=0), p=2, dim=0)
        out.append(e.tolist())
    print(json.dumps(out))


if __name__ == "__main__":
    main()
