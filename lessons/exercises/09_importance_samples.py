"""Exercise 09 (lesson 13): k reparameterized samples and their log prior-to-posterior ratio.

Check your work:   numpy-vae exercise 9

The IWAE draws k samples per image with the reparameterization of exercise 03,

    z_i = mu + exp(logvar / 2) * eps_i,        i = 1..k

and needs, for each, log p(z_i) - log q(z_i | x) with the prior N(0, I) and
q = N(mu, diag(exp(logvar))).  The log(2 pi) terms cancel and
(z - mu) / sigma = eps, which leaves

    log_ratio_i = -1/2 sum_j (z_ij^2 - eps_ij^2 - logvar_j)

    mu, logvar (batch, latent), eps (k, batch, latent)
    ->  z (k, batch, latent), log_ratio (k, batch)

Task: write the forward pass and derive the backward pass: given dz
(k, batch, latent) and dlog_ratio (k, batch), return dmu and dlogvar,
each (batch, latent), with eps held fixed.

Hints:
- log_ratio depends on mu and logvar through z_i (the z_i^2 term) and on
  logvar directly (the -logvar term, from log q).  Add every path.
- mu and logvar are shared by the k samples: sum their gradients over axis 0.
- The package's version: numpy_vae/iwae.py, ImportanceSamples.
"""

import numpy as np


def importance_samples(mu, logvar, eps):
    """-> (z (k, batch, latent), log_ratio (k, batch))."""
    raise NotImplementedError("return the tuple (z, log_ratio)")


def importance_samples_backward(dz, dlog_ratio, mu, logvar, eps):
    """dz (k, batch, latent), dlog_ratio (k, batch) -> (dmu, dlogvar), each (batch, latent)."""
    raise NotImplementedError("return the tuple (dmu, dlogvar)")
