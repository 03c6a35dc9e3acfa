"""KL divergence from the encoder's Gaussian to the prior N(0, I).

For one example with a diagonal Gaussian q = N(mu, diag(sigma^2)) and
logvar = log sigma^2, the closed form is

    KL(q || N(0, I)) = -1/2 * sum_j (1 + logvar_j - mu_j^2 - exp(logvar_j))

(derived step by step in lessons/04_kl_divergence.py).  Each term is >= 0,
since exp(a) >= 1 + a, and zero exactly at mu = 0, logvar = 0.  The code
writes exp(a) - 1 as expm1(a): near a = 0 that avoids the cancellation in
1 + a - exp(a), so the computed KL is never a rounding error below zero.

Its gradient, per coordinate:

    dKL/dmu     = mu
    dKL/dlogvar = (exp(logvar) - 1) / 2
"""

from __future__ import annotations

from numpy_vae.backend import Backend, get_backend


class GaussianKL:
    """Per-example KL(N(mu, exp(logvar)) || N(0, I)).

    forward(mu, logvar) -> kl           (batch, latent) x 2 -> (batch,)
    backward(dkl) -> (dmu, dlogvar)     dkl: (batch,) -> (batch, latent) x 2
    """

    def __init__(self, backend: Backend | str | None = None):
        self.backend = get_backend(backend)

    def forward(self, mu, logvar):
        xp = self.backend.xp
        self._mu = mu
        self._var_minus_1 = xp.expm1(logvar)  # exp(logvar) - 1
        return 0.5 * (mu * mu + self._var_minus_1 - logvar).sum(axis=1)

    def backward(self, dkl):
        dkl = dkl[:, None]
        dmu = dkl * self._mu
        dlogvar = dkl * 0.5 * self._var_minus_1
        return dmu, dlogvar
