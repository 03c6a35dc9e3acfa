"""Exercise 07 (lesson 10): the Gaussian likelihood with a learned variance, and its gradient.

Check your work:   numpy-vae exercise 7

A decoder can output, per pixel, a mean m_d and a log-variance s_d = log
sigma_d^2.  The negative log-likelihood of an image x under
N(m_d, exp(s_d)) for each pixel, summed over the D pixels, is

    nll = 1/2 sum_d [ (x_d - m_d)^2 exp(-s_d) + s_d + log(2 pi) ]

    mean, logvar, x (batch, D)  ->  nll (batch,)

Task: derive this from the Gaussian density, write it, and derive the
backward pass: given dnll (batch,), return dmean and dlogvar (batch, D).

Hints:
- The density is exp(-(x - m)^2 / (2 sigma^2)) / sqrt(2 pi sigma^2): take
  minus its log; every piece of the normaliser stays in the NLL.
- Dividing by exp(s) is multiplying by exp(-s): at s = -25 (the checker's
  tiny variance) one of the two forms is safer.
- Two terms depend on s; differentiate both, and keep the 1/2.
- The package's version: numpy_vae/likelihoods.py, LearnedGaussianLikelihood.
"""

import numpy as np


def gaussian_nll(mean, logvar, x):
    """mean, logvar, x (batch, D) -> nll (batch,)."""
    raise NotImplementedError("return the NLL of each image, summed over its pixels")


def gaussian_nll_backward(dnll, mean, logvar, x):
    """dnll (batch,) -> (dmean, dlogvar), each (batch, D)."""
    raise NotImplementedError("return the tuple (dmean, dlogvar)")
