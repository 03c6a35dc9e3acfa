"""Solution of exercise 03: the reparameterization z = mu + exp(logvar / 2) * eps and its backward."""

import numpy as np


def reparameterize(mu, logvar, eps):
    """z = mu + sigma * eps with sigma = exp(logvar / 2).   All (batch, latent)."""
    return mu + np.exp(0.5 * logvar) * eps


def reparameterize_backward(dz, mu, logvar, eps):
    """dz (batch, latent) -> dmu, dlogvar (batch, latent), eps held fixed."""
    dmu = dz
    dlogvar = dz * eps * np.exp(0.5 * logvar) * 0.5
    return dmu, dlogvar
