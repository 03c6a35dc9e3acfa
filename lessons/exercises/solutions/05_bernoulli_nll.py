"""Solution of exercise 05: the Bernoulli negative log-likelihood from logits, stable at any logit."""

import numpy as np


def bernoulli_nll(logits, x):
    """sum_d softplus(l_d) - x_d l_d.   logits, x (batch, D) -> nll (batch,).

    softplus(l) = log(1 + exp(l)) = logaddexp(0, l): never exp() of a large number.
    """
    return np.sum(np.logaddexp(0, logits) - x * logits, axis=1)


def bernoulli_nll_backward(dnll, logits, x):
    """dnll (batch,) -> dlogits (batch, D) = dnll * (sigmoid(l) - x)."""
    p = np.exp(-np.logaddexp(0, -logits))  # sigmoid(l) = 1 / (1 + exp(-l)), without overflow
    return dnll[:, None] * (p - x)
