#!/usr/bin/python3
"""An independent safetensors reader (json + numpy only) used by the Java tests to check that
files danlu writes are readable by something other than danlu.

  read_safetensors.py summary FILE...   JSON to stdout: per file, metadata and per tensor
                                        dtype, shape, float64 sum, sum of squares and first value
  read_safetensors.py rounding FILE     for every tensor NAME.f16 / NAME.bf16 with a sibling
                                        NAME.f32, checks the half values equal the float32 values
                                        rounded by numpy (f16) / torch (bf16); prints "ok N"
"""
import json
import struct
import sys

import numpy as np

NP = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2",
      "I8": "i1", "U8": "u1", "BOOL": "?"}


def read(path):
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    data = blob[8 + n:]
    meta = header.pop("__metadata__", {})
    spans = sorted(tuple(v["data_offsets"]) for v in header.values())
    pos = 0
    for b, e in spans:
        assert b == pos, "%s: hole or overlap at %d" % (path, pos)
        pos = e
    assert pos == len(data), "%s: header covers %d of %d data bytes" % (path, pos, len(data))
    out = {}
    for name, v in header.items():
        b, e = v["data_offsets"]
        raw = data[b:e]
        if v["dtype"] == "BF16":
            arr = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            arr = np.frombuffer(raw, dtype=NP[v["dtype"]])
        shape = v["shape"]
        assert arr.size == int(np.prod(shape, dtype=np.int64)), (path, name)
        out[name] = (v["dtype"], shape, arr.reshape(shape), raw)
    return meta, out


def summary(paths):
    res = {}
    for p in paths:
        meta, ts = read(p)
        res[p] = {"metadata": meta, "tensors": {
            k: {"dtype": d, "shape": s, "sum": float(a.astype(np.float64).sum()),
                "sumsq": float((a.astype(np.float64) ** 2).sum()),
                "first": float(a.reshape(-1)[0]) if a.size else None}
            for k, (d, s, a, _) in ts.items()}}
    json.dump(res, sys.stdout)


def rounding(path):
    _, ts = read(path)
    n = 0
    for name, (d, _, a, raw) in ts.items():
        if not name.endswith(".f32"):
            continue
        base = name[:-4]
        if base + ".f16" in ts:
            with np.errstate(over="ignore"):
                want = a.astype(np.float16).view("<u2")
            got = np.frombuffer(ts[base + ".f16"][3], dtype="<u2")
            bad = np.nonzero(want != got)[0]
            assert bad.size == 0, "%s.f16: %d mismatches, first at %d: %r -> %04x, file %04x" % (
                base, bad.size, bad[0], a.reshape(-1)[bad[0]], want[bad[0]], got[bad[0]])
            n += 1
        if base + ".bf16" in ts:
            import torch
            want = torch.from_numpy(a.copy()).to(torch.bfloat16).view(torch.int16).numpy().view("<u2")
            want = want.reshape(-1)
            got = np.frombuffer(ts[base + ".bf16"][3], dtype="<u2")
            # Any NaN payload is a NaN (torch 1.13 writes 0xffff, newer versions 0x7fc0).
            nan = lambda u: ((u & 0x7f80) == 0x7f80) & ((u & 0x7f) != 0)
            bad = np.nonzero((want != got) & ~(nan(want) & nan(got)))[0]
            assert bad.size == 0, "%s.bf16: %d mismatches, first at %d" % (base, bad.size, bad[0])
            n += 1
    print("ok %d" % n)


if __name__ == "__main__":
    if sys.argv[1] == "summary":
        summary(sys.argv[2:])
    elif sys.argv[1] == "rounding":
        rounding(sys.argv[2])
    else:
        sys.exit("usage: read_safetensors.py summary FILE... | rounding FILE")
