#!/usr/bin/env python3
"""Opens a safetensors file the way any Python user could, with json + numpy only (the
`safetensors` package, when installed, is used as well), and prints one line per tensor:
name dtype shape sum. Exits non-zero if the file does not parse."""
import json
import struct
import sys

import numpy as np

DTYPES = {"F32": "<f4", "F64": "<f8", "F16": "<f2", "I32": "<i4", "I64": "<i8", "U8": "u1", "U32": "<u4"}


def main(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    meta = header.pop("__metadata__", {})
    for key in sorted(meta):
        print(f"meta {key}={meta[key]}")
    for name in sorted(header):
        e = header[name]
        begin, end = e["data_offsets"]
        arr = np.frombuffer(data[begin:end], dtype=DTYPES[e["dtype"]]).reshape(e["shape"])
        print(f"tensor {name} {e['dtype']} {list(arr.shape)} {float(arr.astype(np.float64).sum()):.9g}")
    try:
        from safetensors.numpy import load_file
    except ImportError:
        return
    loaded = load_file(path)
    for name, arr in loaded.items():
        assert arr.shape == tuple(header[name]["shape"]), name


if __name__ == "__main__":
    main(sys.argv[1])
