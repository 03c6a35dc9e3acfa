"""Inputs shared by the backend parity tests (test_backends_numba.py, test_backends_cupy.py)."""

import numpy as np


def random_arrays(shape, dtype, seed, n=2):
    """n arrays of ``shape``: normal values with scale 3, about 1 in 8 exactly 0
    (the kink of relu and leaky_relu)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        a = 3 * rng.standard_normal(shape)
        a[rng.random(shape) < 0.125] = 0.0
        out.append(a.astype(dtype))
    return out


def random_pixels(shape, dtype, seed):
    """Targets in [0, 1] like MNIST: mostly 0, some 1, some in between."""
    rng = np.random.default_rng(seed + 1)
    x = rng.random(shape)
    x[x < 0.6] = 0.0
    x[x > 0.9] = 1.0
    return x.astype(dtype)
