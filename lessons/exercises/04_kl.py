"""Exercise 04 (lesson 04): the KL divergence to N(0, I) and its gradient.

Check your work:   numpy-vae exercise 4

For one example with q = N(mu, diag(exp(logvar))) and the prior N(0, I),
the closed form (lesson 04 derives it) is

    KL = -1/2 * sum_j (1 + logvar_j - mu_j^2 - exp(logvar_j))

    mu, logvar (batch, latent)  ->  kl (batch,), one number per example

Task: write the forward pass, and derive the backward pass: given
dkl (batch,), the gradient of the loss with respect to each example's KL,
return dmu and dlogvar, each (batch, latent).

Hints:
- Sanity check before you run the checker: when q is the prior (mu = 0,
  logvar = 0) the KL must be exactly 0, and it is never negative.
- Differentiate the sum term by term; a constant term has no derivative,
  but it still belongs in the forward pass.
- Each example's dkl scales the gradient of that example's row only.
- The package's version: numpy_vae/kl.py, class GaussianKL.
"""

import numpy as np


def gaussian_kl(mu, logvar):
    """mu, logvar (batch, latent) -> kl (batch,)."""
    raise NotImplementedError("return the KL of each example (sum over the latent axis)")


def gaussian_kl_backward(dkl, mu, logvar):
    """dkl (batch,) -> (dmu, dlogvar), each (batch, latent)."""
    raise NotImplementedError("return the tuple (dmu, dlogvar)")
