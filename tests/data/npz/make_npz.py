#!/usr/bin/env python3
"""Writes the .npz files tests/test_data_npz.c reads, with numpy itself (the format's
reference writer). Their contents follow formulas the test recomputes in C.

    /usr/bin/python3 tests/data/npz/make_npz.py   # from the repository root
"""
import os

import numpy as np

here = os.path.dirname(os.path.abspath(__file__))


def images(n, offset):
    i, r, c = np.meshgrid(np.arange(n), np.arange(28), np.arange(28), indexing="ij")
    return ((i + offset) * 31 + r * 7 + c * 3) % 256


# Keras's mnist.npz layout (savez_compressed: deflated members), 12 + 5 images.
np.savez_compressed(os.path.join(here, "mnist_small.npz"),
                    x_train=images(12, 0).astype(np.uint8), y_train=(np.arange(12) % 10).astype(np.uint8),
                    x_test=images(5, 100).astype(np.uint8), y_test=((np.arange(5) * 3) % 10).astype(np.uint8))
# savez (stored members), other dtypes and byte orders.
np.savez(os.path.join(here, "stored.npz"), ints=np.arange(6, dtype="<i4").reshape(2, 3),
         doubles=np.array([1.5, -2.25, 1e-3], dtype=">f8"))
