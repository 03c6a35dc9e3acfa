"""Exercise 05 (lesson 05): the Bernoulli negative log-likelihood from logits, stable at any logit.

Check your work:   numpy-vae exercise 5

The decoder outputs one logit l_d per pixel; the pixel's probability of
being on is p_d = sigmoid(l_d) = 1 / (1 + exp(-l_d)).  For an image x with
pixels x_d in [0, 1] the negative log-likelihood (the binary cross-entropy)
is

    nll = -sum_d [ x_d log p_d + (1 - x_d) log(1 - p_d) ]

    logits, x (batch, D)  ->  nll (batch,), summed over the D pixels

Task: rewrite nll in terms of the logits so that it stays finite and exact
for any logit (the checker tries l = +-1000), write it, and derive the
backward pass: given dnll (batch,), return dlogits (batch, D).

Hints:
- In float64, sigmoid(-1000) is exactly 0 and sigmoid(1000) exactly 1, so
  log(p) or log(1 - p) is -inf there, though the true NLL is 1000 or 0.
  Never go through p: simplify log(sigmoid(l)) and log(1 - sigmoid(l))
  on paper first, into something with log(1 + exp(.)).
- log(1 + exp(l)) overflows for l = 1000 if written that way; NumPy has a
  function that computes log(exp(a) + exp(b)) safely.
- The derivative of log(1 + exp(l)) is a function you already know.
- The package's version: numpy_vae/likelihoods.py, BernoulliLikelihood
  (its kernel: numpy_vae/ops.py, bernoulli_nll_and_grad).
"""

import numpy as np


def bernoulli_nll(logits, x):
    """logits, x (batch, D) -> nll (batch,)."""
    raise NotImplementedError("return the NLL of each image, written with the logits only")


def bernoulli_nll_backward(dnll, logits, x):
    """dnll (batch,) -> dlogits (batch, D)."""
    raise NotImplementedError("return dlogits, finite for every logit")
