"""The importance-weighted bound (IWAE) as a training objective: two nodes.

Burda, Grosse & Salakhutdinov (2015) train on the bound that evaluation
already uses (numpy_vae/evaluate.py).  For one image x and k samples

    z_i = mu + exp(logvar / 2) * eps_i,      eps_i ~ N(0, I),   i = 1..k
    log w_i = log p(x | z_i) + log p(z_i) - log q(z_i | x)
    L_k(x)  = log (1/k) sum_i w_i                                  (<= log p(x))

and the loss is minus the batch mean of L_k, in nats per example.  k = 1
is the ELBO with its KL estimated from the one sample; L_k never decreases
with k (the mean of k weights is a better estimate of p(x) than any one).

The log ratio of the prior to the posterior, with diagonal Gaussians (the
log(2 pi) terms cancel) and (z - mu) / sigma = eps:

    log p(z_i) - log q(z_i | x) = -1/2 sum_j (z_ij^2 - eps_ij^2 - logvar_j)

The gradient.  Write a_i = log w_i.  Then

    dL_k / da_i = w_i / sum_l w_l = w~_i        the normalised weights

so every sample's gradient is its ELBO gradient weighted by w~_i, and the
w~_i sum to 1: a sample that explains x well (large w_i) gets most of the
gradient, a poor one almost none.  With k = 1, w~_1 = 1: the ELBO gradient.

The two nodes, in the order of the forward pass:

``ImportanceSamples``: mu, logvar -> z_i and log p(z_i) - log q(z_i | x).
With eps held fixed (the reparameterization), d(log ratio) reaches z and
logvar; z then reaches mu and logvar as in numpy_vae/reparameterize.py:

    dz_i      += dratio_i * (-z_i)                       (the prior term)
    dmu        = sum_i dz_i
    dlogvar    = sum_i (dz_i * eps_i * exp(logvar / 2) / 2 + dratio_i / 2)

(the / 2 of the last term is d/dlogvar of +1/2 logvar, the log q term).

``LogMeanExp``: a = log w (k, batch) -> L_k (batch,), and back
da_i = dL * w~_i.  The weights are about e^-100, so the mean is taken with
the log-sum-exp trick, m = max_i a_i:

    L_k = m + log sum_i exp(a_i - m) - log k,     w~_i = exp(a_i - m) / sum_l exp(a_l - m)

Every exp() is at most 1.  The kernel is ``ops.log_mean_exp_weights``
(numpy_vae/ops.py), with a Numba twin.
"""

from __future__ import annotations

from numpy_vae.backend import Backend, get_backend


class ImportanceSamples:
    """k reparameterized samples per example and their log prior-to-posterior ratio.

    forward(mu, logvar, eps) -> (z, log_ratio)
        mu, logvar: (batch, latent); eps: (k, batch, latent)
        z         = mu + exp(logvar / 2) * eps                       (k, batch, latent)
        log_ratio = -1/2 sum_j (z_j^2 - eps_j^2 - logvar_j)          (k, batch)
    backward(dz, dlog_ratio) -> (dmu, dlogvar)
        dz: (k, batch, latent), dlog_ratio: (k, batch) -> (batch, latent) x 2
    """

    def __init__(self, backend: Backend | str | None = None):
        self.backend = get_backend(backend)

    def forward(self, mu, logvar, eps):
        if mu.shape != logvar.shape:
            raise ValueError(f"mu and logvar must have the same shape, got {tuple(mu.shape)} "
                             f"and {tuple(logvar.shape)}")
        if eps.ndim != 3 or eps.shape[1:] != mu.shape:
            raise ValueError(f"eps must have shape (k, {', '.join(map(str, mu.shape))}), "
                             f"got {tuple(eps.shape)}")
        xp = self.backend.xp
        self.eps = eps
        self._std = xp.exp(0.5 * logvar)
        self._z = z = mu + self._std * eps
        log_ratio = -0.5 * (z * z - eps * eps - logvar).sum(axis=2)
        return z, log_ratio

    def backward(self, dz, dlog_ratio):
        dlog_ratio = dlog_ratio[:, :, None]
        dz = dz - dlog_ratio * self._z                  # the prior term -1/2 z^2
        dmu = dz.sum(axis=0)
        dlogvar = (dz * self.eps * self._std * 0.5 + 0.5 * dlog_ratio).sum(axis=0)
        return dmu, dlogvar


class LogMeanExp:
    """L_k = log (1/k) sum_i exp(a_i) over the k samples of each example.

    forward(a) -> L        a: (k, batch) log weights -> (batch,)
    backward(dL) -> da     (batch,) -> (k, batch), da_i = dL * w~_i
    ``weights`` after forward: w~, the normalised weights (k, batch), each
    column summing to 1.
    """

    def __init__(self, backend: Backend | str | None = None):
        self.backend = get_backend(backend)
        self.weights = None

    def forward(self, a):
        if a.ndim != 2:
            raise ValueError(f"expected log weights of shape (k, batch), got {tuple(a.shape)}")
        bound, self.weights = self.backend.ops.log_mean_exp_weights(a)
        return bound

    def backward(self, dbound):
        return dbound[None, :] * self.weights


__all__ = ["ImportanceSamples", "LogMeanExp"]
