"""Exercise 12, the capstone (lesson 06): a VAE's training step from your own pieces.

Check your work:   numpy-vae exercise 12          (about a minute of training on MNIST)
                   numpy-vae exercise 12 --quick  (a few seconds, a looser bound)

Finish exercises 01 to 06 first: the checker loads your functions from the
files beside this one and hands them to you as ``pieces``:

    pieces.linear_forward, pieces.linear_backward            (01)
    pieces.relu_forward, pieces.relu_backward                (02)
    pieces.reparameterize, pieces.reparameterize_backward    (03)
    pieces.gaussian_kl, pieces.gaussian_kl_backward          (04)
    pieces.bernoulli_nll, pieces.bernoulli_nll_backward      (05)
    (and pieces.adam_step (06), which the checker's training loop calls)

The model, with D = 784 pixels, H hidden units and L latent dimensions:

    encoder   h = relu(x W1 + b1)                 W1 (D, H),  b1 (H,)
              [mu | logvar] = h W2 + b2           W2 (H, 2L), b2 (2L,): the first L columns
                                                  are mu, the last L logvar
    sample    z = mu + exp(logvar / 2) * eps      eps (batch, L) is given
    decoder   g = relu(z W3 + b3)                 W3 (L, H),  b3 (H,)
              logits = g W4 + b4                  W4 (H, D),  b4 (D,)
    loss      mean over the batch of  bernoulli_nll(logits, x) + gaussian_kl(mu, logvar)

Task: return the loss (a float, nats per image) and the gradient of that
loss for every array in ``params``, as a dict with the same keys.

Hints:
- Keep what the backward pass needs from the forward pass (h's input, z, ...),
  then go backwards one piece at a time.
- The loss is a mean over the batch: each example's NLL and KL enter with
  weight 1 / batch, so that is their dnll and dkl.
- mu and logvar feed both z and the KL: each gets the sum of both gradients,
  joined back into one array for W2 and b2.
- The checker gradient-checks your loss on a tiny model, then trains the real
  one with your adam_step and measures the test negative ELBO with its own code.
"""

import numpy as np


def loss_and_grads(params, x, eps, pieces):
    """params: dict W1, b1, ..., W4, b4;  x (batch, D) in [0, 1];  eps (batch, L).

    Returns (loss, grads): the mean negative ELBO and a dict of arrays shaped like params.
    """
    raise NotImplementedError("return (loss, grads), built from the functions in pieces")
