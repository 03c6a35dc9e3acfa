"""Fixtures shared by the tests of the core engine.

Kept small on purpose: a test should read on its own, so anything more
specific than "a float64 backend" or "a seeded generator" lives in its file.
"""

import numpy as np
import pytest

from numpy_vae import get_backend


@pytest.fixture
def backend64():
    """A float64 NumPy backend with a fixed seed: gradient checks need float64."""
    return get_backend("numpy", dtype="float64", seed=0)


@pytest.fixture
def rng():
    """A seeded generator for test inputs, separate from any backend's."""
    return np.random.default_rng(20240611)
