"""Solution of exercise 09: k reparameterized samples and their log prior-to-posterior ratio."""

import numpy as np


def importance_samples(mu, logvar, eps):
    """mu, logvar (batch, latent), eps (k, batch, latent)
    -> z (k, batch, latent), log_ratio (k, batch)."""
    z = mu + np.exp(0.5 * logvar) * eps
    log_ratio = -0.5 * np.sum(z * z - eps * eps - logvar, axis=2)
    return z, log_ratio


def importance_samples_backward(dz, dlog_ratio, mu, logvar, eps):
    """dz (k, batch, latent), dlog_ratio (k, batch) -> dmu, dlogvar (batch, latent)."""
    std = np.exp(0.5 * logvar)
    z = mu + std * eps
    dlog_ratio = dlog_ratio[:, :, None]
    dz = dz - dlog_ratio * z                       # the prior's -1/2 z^2
    dmu = dz.sum(axis=0)
    dlogvar = (dz * eps * std * 0.5 + 0.5 * dlog_ratio).sum(axis=0)
    return dmu, dlogvar
