#!/usr/bin/env python3
"""Converts CIFAR-10's python version (the pickled batches Keras downloads into
cifar-10-batches-py/) into the binary version libenn reads (cifar-10-batches-bin/): each
record 1 label byte, then the 1024 red, 1024 green and 1024 blue bytes of the image,
which is the row layout of the pickles' "data" arrays, so the bytes are copied as they are.

    python3 tools/cifar10_to_binary.py DIR    # DIR: cifar-10-batches-py or its parent

writes DIR's sibling (or child) cifar-10-batches-bin/ and prints the --data argument to use.
Needs numpy (Debian: python3-numpy), which the pickles reference.
"""
import os
import pickle
import sys

import numpy as np

BATCHES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    given = os.path.abspath(sys.argv[1])
    src = os.path.join(given, "cifar-10-batches-py")
    if not os.path.isfile(os.path.join(src, "test_batch")):
        src = given
    if not os.path.isfile(os.path.join(src, "test_batch")):
        sys.exit(f"{given}: no test_batch here or in cifar-10-batches-py/ (not CIFAR-10's python version)")
    parent = os.path.dirname(src) if os.path.basename(src) == "cifar-10-batches-py" else src
    out = os.path.join(parent, "cifar-10-batches-bin")
    os.makedirs(out, exist_ok=True)
    for name in BATCHES:
        with open(os.path.join(src, name), "rb") as f:
            batch = pickle.load(f, encoding="bytes")
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[b"labels"], dtype=np.uint8)
        if data.ndim != 2 or data.shape[1] != 3072 or labels.shape != (data.shape[0],):
            sys.exit(f"{name}: data {data.shape}, labels {labels.shape}: not a CIFAR-10 batch")
        records = np.concatenate([labels[:, None], data], axis=1)
        tmp = os.path.join(out, name + ".bin.part")
        records.tofile(tmp)
        os.replace(tmp, os.path.join(out, name + ".bin"))
    print(f"wrote {out}; train with: enn train --data cifar10 {parent}")


if __name__ == "__main__":
    main()
