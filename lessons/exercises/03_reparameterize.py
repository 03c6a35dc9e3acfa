"""Exercise 03 (lesson 03): the reparameterization node, forward and backward.

Check your work:   numpy-vae exercise 3

The encoder predicts, per example and latent coordinate, a mean mu and a
log-variance logvar = log sigma^2.  A sample z ~ N(mu, sigma^2) is written
as a function of them and of noise eps ~ N(0, 1) drawn outside:

    z = mu + sigma * eps,     sigma = exp(logvar / 2)

    mu, logvar, eps, z: all (batch, latent)

Task: write the forward pass, and derive the backward pass: given
dz = dL/dz, return dmu = dL/dmu and dlogvar = dL/dlogvar (eps held fixed).

Hints:
- logvar is the log of the *variance*: what is the standard deviation?
- dz/dlogvar needs the chain rule through exp(logvar / 2): the derivative
  of exp(u) is exp(u), and u = logvar / 2 has a derivative of its own.
- The checker also tries logvar = -30 (sigma = 3e-7): nothing special is
  needed there if the formula is right.
- The package's version: numpy_vae/reparameterize.py, class Reparameterize.
"""

import numpy as np


def reparameterize(mu, logvar, eps):
    """z = mu + exp(logvar / 2) * eps.   All (batch, latent)."""
    raise NotImplementedError("return z = mu + sigma * eps")


def reparameterize_backward(dz, mu, logvar, eps):
    """dz (batch, latent) -> (dmu, dlogvar), each (batch, latent)."""
    raise NotImplementedError("return the tuple (dmu, dlogvar)")
