"""Solution of exercise 04: KL(N(mu, exp(logvar)) || N(0, I)) per example and its gradient."""

import numpy as np


def gaussian_kl(mu, logvar):
    """mu, logvar (batch, latent) -> kl (batch,)."""
    return -0.5 * np.sum(1 + logvar - mu * mu - np.exp(logvar), axis=1)


def gaussian_kl_backward(dkl, mu, logvar):
    """dkl (batch,) -> dmu, dlogvar (batch, latent)."""
    dkl = dkl[:, None]
    dmu = dkl * mu
    dlogvar = dkl * 0.5 * (np.exp(logvar) - 1)
    return dmu, dlogvar
