"""Solution of exercise 12 (capstone): a VAE's loss and gradients from the pieces of exercises 01-05."""

import numpy as np


def loss_and_grads(params, x, eps, pieces):
    """Negative ELBO (mean over the batch) and its gradient for every array in params."""
    p, B, L = params, x.shape[0], eps.shape[1]
    # encoder: x -> h -> [mu | logvar]
    h_pre = pieces.linear_forward(x, p["W1"], p["b1"])
    h = pieces.relu_forward(h_pre)
    enc = pieces.linear_forward(h, p["W2"], p["b2"])
    mu, logvar = enc[:, :L], enc[:, L:]
    z = pieces.reparameterize(mu, logvar, eps)
    # decoder: z -> g -> logits
    g_pre = pieces.linear_forward(z, p["W3"], p["b3"])
    g = pieces.relu_forward(g_pre)
    logits = pieces.linear_forward(g, p["W4"], p["b4"])
    nll = pieces.bernoulli_nll(logits, x)
    kl = pieces.gaussian_kl(mu, logvar)
    loss = np.mean(nll + kl)

    grads = {}
    dnll = np.full(B, 1.0 / B, dtype=x.dtype)   # d mean / d each example's term
    dlogits = pieces.bernoulli_nll_backward(dnll, logits, x)
    dg, grads["W4"], grads["b4"] = pieces.linear_backward(dlogits, g, p["W4"])
    dg_pre = pieces.relu_backward(dg, g_pre)
    dz, grads["W3"], grads["b3"] = pieces.linear_backward(dg_pre, z, p["W3"])
    dmu, dlogvar = pieces.reparameterize_backward(dz, mu, logvar, eps)
    dmu_kl, dlogvar_kl = pieces.gaussian_kl_backward(dnll, mu, logvar)
    denc = np.concatenate([dmu + dmu_kl, dlogvar + dlogvar_kl], axis=1)
    dh, grads["W2"], grads["b2"] = pieces.linear_backward(denc, h, p["W2"])
    dh_pre = pieces.relu_backward(dh, h_pre)
    _, grads["W1"], grads["b1"] = pieces.linear_backward(dh_pre, x, p["W1"])
    return loss, grads
