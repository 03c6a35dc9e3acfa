"""The reparameterization trick as one node.

Sampling z ~ N(mu, sigma^2) directly gives no gradient with respect to mu
and sigma.  Writing the sample as a deterministic function of the encoder's
outputs and outside noise fixes that:

    z = mu + sigma * eps,   sigma = exp(logvar / 2),   eps ~ N(0, I)

Now z is differentiable in mu and logvar, with eps held fixed:

    dz/dmu     = 1                       ->  dmu     = dz
    dz/dlogvar = eps * exp(logvar/2) / 2 ->  dlogvar = dz * eps * exp(logvar / 2) / 2

The standard deviation is exp(logvar / 2), not exp(logvar): the encoder
predicts log sigma^2.  And eps is drawn once per forward pass and kept, so
backward differentiates exactly the z that forward produced.

``ReparameterizeKL``, at the end, is this node and the KL node of
numpy_vae/kl.py in one step, for the training step; the lessons teach the
two separately.
"""

from __future__ import annotations

from numpy_vae.backend import Backend, get_backend


def _noise(backend, mu, logvar, eps):
    """The eps of z = mu + sigma * eps: ``eps`` checked against mu's shape if
    given, else drawn from the backend's generator (shared by both nodes)."""
    if mu.shape != logvar.shape:
        raise ValueError(f"mu and logvar must have the same shape, got {tuple(mu.shape)} and {tuple(logvar.shape)}")
    if eps is None:
        return backend.standard_normal(mu.shape)
    if eps.shape != mu.shape:
        raise ValueError(f"eps must have the shape of mu {tuple(mu.shape)}, got {tuple(eps.shape)}")
    return eps


class Reparameterize:
    """z = mu + exp(logvar / 2) * eps.

    forward(mu, logvar, eps=None) -> z        all (batch, latent_dim)
        eps is drawn from the backend's generator unless given; passing it
        makes the node deterministic (gradient checks, parity tests).
    backward(dz) -> (dmu, dlogvar)
    """

    def __init__(self, backend: Backend | str | None = None):
        self.backend = get_backend(backend)
        self.eps = None

    def forward(self, mu, logvar, eps=None):
        eps = _noise(self.backend, mu, logvar, eps)
        xp = self.backend.xp
        self.eps = eps
        self._std = xp.exp(0.5 * logvar)
        return mu + self._std * eps

    def backward(self, dz):
        dmu = dz
        dlogvar = dz * self.eps * self._std * 0.5
        return dmu, dlogvar


class ReparameterizeKL:
    """Reparameterize and GaussianKL (numpy_vae/kl.py) in one node, for the training step.

    forward(mu, logvar, eps=None) -> (z, kl)
        mu, logvar, eps: (batch, latent_dim)
        z  = mu + exp(logvar / 2) * eps                         (batch, latent_dim)
        kl = 1/2 sum_j (mu_j^2 + exp(logvar_j) - 1 - logvar_j)  (batch,)
        eps is drawn from the backend's generator unless given, as in Reparameterize.
    backward(dz, dkl) -> (dmu, dlogvar)
        dz: (batch, latent_dim), dkl: (batch,) -> (batch, latent_dim) x 2

    mu and logvar feed both z and the KL, so each gradient is the sum of the
    two paths: the same numbers as Reparameterize and GaussianKL run one after
    the other with their gradients added, in one kernel call each way
    (``ops.reparameterize_kl`` and ``ops.reparameterize_kl_backward``).
    """

    def __init__(self, backend: Backend | str | None = None):
        self.backend = get_backend(backend)
        self.eps = None

    def forward(self, mu, logvar, eps=None):
        eps = _noise(self.backend, mu, logvar, eps)
        self.eps = eps
        self._mu = mu
        z, kl, self._std, self._var_minus_1 = self.backend.ops.reparameterize_kl(mu, logvar, eps)
        return z, kl

    def backward(self, dz, dkl):
        return self.backend.ops.reparameterize_kl_backward(dz, dkl, self._mu, self.eps,
                                                           self._std, self._var_minus_1)
