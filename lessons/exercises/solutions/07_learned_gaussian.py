"""Solution of exercise 07: the Gaussian negative log-likelihood with a learned variance per pixel."""

import numpy as np

LOG_2PI = np.log(2 * np.pi)


def gaussian_nll(mean, logvar, x):
    """1/2 sum_d [(x_d - m_d)^2 exp(-s_d) + s_d + log(2 pi)].   All (batch, D) -> (batch,)."""
    diff = x - mean
    return 0.5 * np.sum(diff * diff * np.exp(-logvar) + logvar + LOG_2PI, axis=1)


def gaussian_nll_backward(dnll, mean, logvar, x):
    """dnll (batch,) -> dmean, dlogvar (batch, D)."""
    dnll = dnll[:, None]
    diff = x - mean
    inv_var = np.exp(-logvar)
    dmean = -dnll * diff * inv_var
    dlogvar = dnll * 0.5 * (1 - diff * diff * inv_var)
    return dmean, dlogvar
