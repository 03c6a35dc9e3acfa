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
    if binarize_mode == "threshold":
        x_test = binarize(x_test, "threshold")
    elif binarize_mode == "dynamic":
        x_test = fixed_test_draw(x_test)
    return Dataset(x_train, y_train, x_test, y_test, binarize_mode)


def fixed_test_draw(x_test):
    """The test set's one Bernoulli draw for "dynamic", the same whatever x_test's dtype.

    The uniforms are drawn in float32 with TEST_BINARIZE_SEED and compared
    with the float32 grey levels: k/255 rounded to float32 is the same number
    whether it was computed in float32 or in float64 and rounded (all 256
    levels), so a float64 run is scored on exactly the images a float32 run
    is (drawing in x's dtype gave float64 runs another test set).  Returns
    0/1 values in x_test's dtype.
    """
    x32 = np.asarray(x_test, dtype=np.float32)
    u = np.random.default_rng(TEST_BINARIZE_SEED).random(x32.shape, dtype=np.float32)
    return (u < x32).astype(np.asarray(x_test).dtype)


__all__ = ["Dataset", "load_dataset", "fixed_test_draw", "TEST_BINARIZE_SEED"]
