"""Solution of exercise 08: log-mean-exp over k samples and the IWAE's normalised weights."""

import numpy as np


def log_mean_exp(a):
    """a (k, batch) -> bound (batch,) = log (1/k) sum_i exp(a_i), weights (k, batch)."""
    k = a.shape[0]
    m = a.max(axis=0)
    shifted = np.exp(a - m)            # every entry <= 1
    total = shifted.sum(axis=0)
    bound = m + np.log(total) - np.log(k)
    weights = shifted / total
    return bound, weights


def log_mean_exp_backward(dbound, weights):
    """dbound (batch,) -> da (k, batch) = dbound * weights."""
    return dbound[None, :] * weights
