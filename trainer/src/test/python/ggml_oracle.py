"""The real ggml/llama.cpp libraries (from node-llama-cpp's prebuilt linux-x64 package, installed by
scripts/setup.sh) as an oracle for danlu's GGUF export, called through ctypes:

  ggml_oracle.py <bins dir> quantize <ggml type id> <n_per_row> <in.f32> <out.bin>
      ggml_quantize_chunk(type, src, dst, 0, nrows, n_per_row, imatrix=NULL): what llama-quantize
      does to a tensor without an importance matrix (ggml's *_ref quantizers)
  ggml_oracle.py <bins dir> dequantize <ggml type id> <n> <in.bin> <out.f32>
      the type's to_float (dequantize_row_*)
  ggml_oracle.py <bins dir> quantize-model <in.gguf> <out.gguf> <llama ftype>
      llama_model_quantize with the default parameters (llama-quantize <in> <out> <type>)

Files are raw little-endian; nothing is computed here but by the libraries.
"""
import ctypes
import os
import sys

import numpy as np

bins = sys.argv[1]
cmd = sys.argv[2]
base = ctypes.CDLL(os.path.join(bins, "libggml-base.so"), mode=ctypes.RTLD_GLOBAL)

if cmd == "quantize":
    t, n_per_row = int(sys.argv[3]), int(sys.argv[4])
    x = np.fromfile(sys.argv[5], dtype="<f4")
    nrows = x.size // n_per_row
    base.ggml_row_size.restype = ctypes.c_size_t
    base.ggml_row_size.argtypes = [ctypes.c_int, ctypes.c_int64]
    row = base.ggml_row_size(t, n_per_row)
    out = ctypes.create_string_buffer(row * nrows)
    base.ggml_quantize_chunk.restype = ctypes.c_size_t
    base.ggml_quantize_chunk.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p,
                                         ctypes.c_int64, ctypes.c_int64, ctypes.c_int64,
                                         ctypes.c_void_p]
    n = base.ggml_quantize_chunk(t, x.ctypes.data, out, 0, nrows, n_per_row, None)
    assert n == row * nrows, (n, row, nrows)
    with open(sys.argv[6], "wb") as f:
        f.write(out.raw)
elif cmd == "dequantize":
    t, n = int(sys.argv[3]), int(sys.argv[4])
    data = open(sys.argv[5], "rb").read()

    class Traits(ctypes.Structure):
        # ggml_type_traits: type_name, blck_size, blck_size_interleave, type_size, is_quantized,
        # to_float, from_float_ref
        _fields_ = [("type_name", ctypes.c_char_p), ("blck_size", ctypes.c_int64),
                    ("blck_size_interleave", ctypes.c_int64), ("type_size", ctypes.c_size_t),
                    ("is_quantized", ctypes.c_bool), ("to_float", ctypes.c_void_p),
                    ("from_float_ref", ctypes.c_void_p)]

    base.ggml_get_type_traits.restype = ctypes.POINTER(Traits)
    base.ggml_get_type_traits.argtypes = [ctypes.c_int]
    tr = base.ggml_get_type_traits(t).contents
    to_float = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64)(tr.to_float)
    src = ctypes.create_string_buffer(data, len(data))
    y = np.zeros(n, dtype="<f4")
    to_float(ctypes.addressof(src), y.ctypes.data, n)
    y.tofile(sys.argv[6])
elif cmd == "quantize-model":
    ggml = ctypes.CDLL(os.path.join(bins, "libggml.v0.4.0.so"), mode=ctypes.RTLD_GLOBAL)
    ggml.ggml_backend_load_all_from_path.argtypes = [ctypes.c_char_p]
    ggml.ggml_backend_load_all_from_path(bins.encode())
    llama = ctypes.CDLL(os.path.join(bins, "libllama.v0.4.0.so"))
    llama.llama_backend_init()

    class Params(ctypes.Structure):
        # llama_model_quantize_params begins {int32 nthread; enum llama_ftype ftype; ...}; the
        # rest is kept as the library's defaults (the buffer is larger than the struct)
        _fields_ = [("nthread", ctypes.c_int32), ("ftype", ctypes.c_int32),
                    ("rest", ctypes.c_uint8 * 248)]

    llama.llama_model_quantize_default_params.restype = Params
    p = llama.llama_model_quantize_default_params()
    p.nthread = 1
    p.ftype = int(sys.argv[5])
    llama.llama_model_quantize.restype = ctypes.c_uint32
    llama.llama_model_quantize.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.POINTER(Params)]
    rc = llama.llama_model_quantize(sys.argv[3].encode(), sys.argv[4].encode(), ctypes.byref(p))
    sys.exit(rc)
else:
    sys.exit("unknown command " + cmd)
