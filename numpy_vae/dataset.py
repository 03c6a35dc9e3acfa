"""The training data of a run: MNIST scaled, cut to a subset, binarized as the run asks.

Finding, fetching and checking the files is numpy_vae/data.py's job; this
module turns its arrays into what ``Trainer.fit`` takes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from numpy_vae.data import binarize, mnist_arrays
from numpy_vae.data import binarize_mode as data_binarize_mode

TEST_BINARIZE_SEED = 0   # the test set's one Bernoulli draw for "dynamic"


@dataclass
class Dataset:
    """Images as floats in [0, 1] on the host, and their labels.

    x_train (N, 784), y_train (N,), x_test (N_test, 784), y_test (N_test,).
    x_test is already binarized as the run asks (once, with a fixed seed,
    so every epoch and every evaluation sees the same test images); x_train
    is binarized here for "threshold" and at every epoch for "dynamic".
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    binarize: str = "none"


def load_dataset(data_dir=None, *, subset=None, binarize_mode="none", dtype="float32",
                 quiet=False) -> Dataset:
    """MNIST (or the IDX files in ``data_dir``) ready for training.

    ``data.mnist_arrays`` (the four arrays scaled to [0, 1]), then the first
    ``subset`` training images, then the binarization the run asks for.
    """
    x_train, y_train, x_test, y_test = mnist_arrays(data_dir, dtype=dtype, quiet=quiet)
    if subset is not None:
        x_train, y_train = x_train[:subset], y_train[:subset]
    binarize_mode = data_binarize_mode(binarize_mode)
    if binarize_mode == "threshold":
        x_train = binarize(x_train, "threshold")
    if binarize_mode != "none":
        x_test = binarize(x_test, binarize_mode, np.random.default_rng(TEST_BINARIZE_SEED))
    return Dataset(x_train, y_train, x_test, y_test, binarize_mode)


__all__ = ["Dataset", "load_dataset", "TEST_BINARIZE_SEED"]
