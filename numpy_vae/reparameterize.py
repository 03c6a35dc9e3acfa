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
"""

from __future__ import annotations

from numpy_vae.backend import Backend, get_backend


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
        if mu.shape != logvar.shape:
            raise ValueError(f"mu and logvar must have the same shape, got {tuple(mu.shape)} and {tuple(logvar.shape)}")
        if eps is None:
            eps = self.backend.standard_normal(mu.shape)
        elif eps.shape != mu.shape:
            raise ValueError(f"eps must have the shape of mu {tuple(mu.shape)}, got {tuple(eps.shape)}")
        xp = self.backend.xp
        self.eps = eps
        self._std = xp.exp(0.5 * logvar)
        return mu + self._std * eps

    def backward(self, dz):
        dmu = dz
        dlogvar = dz * self.eps * self._std * 0.5
        return dmu, dlogvar
