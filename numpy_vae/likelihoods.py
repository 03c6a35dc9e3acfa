"""Decoder likelihoods p(x | z): the reconstruction term of the ELBO.

Each likelihood turns the decoder's raw output ``out`` into a negative
log-likelihood per example, summed over the D pixels (nats per image):

    forward(out, x) -> nll            (batch, out_dim), (batch, D) -> (batch,)
    backward(dnll) -> dout            (batch,) -> (batch, out_dim)
    nll(out, x) -> nll                the same number, keeping nothing
    nll_samples(out, x) -> nll        for K decoded samples per image: (B, K, out_dim),
                                      (B, D) -> (B, K) float64 (the IWAE evaluation)
    mean(out) -> E[x | z]             what ``VAE.decode`` returns
    out_dim(D)                        decoder outputs needed for D pixels

Three of them:

- ``BernoulliLikelihood``: out are logits, p = sigmoid(out); the NLL is the
  binary cross-entropy, computed from logits so it stays finite at any logit.
- ``GaussianLikelihood``: out is the mean, the variance is a fixed number.
- ``LearnedGaussianLikelihood``: out holds the mean and a per-pixel log-variance.
"""

from __future__ import annotations

import math

from numpy_vae.backend import Backend, get_backend

LOG_2PI = math.log(2 * math.pi)


class Likelihood:
    """Base class; see the module docstring for the contract."""

    name = "?"

    def __init__(self, backend: Backend | str | None = None):
        self.backend = get_backend(backend)

    def out_dim(self, data_dim: int) -> int:
        return data_dim

    def nll_samples(self, out, x):
        """-log p(x_b | z_bk): out (B, K, out_dim), x (B, D) -> (B, K) float64.

        Each image is repeated beside each of its K samples; the Bernoulli
        likelihood overrides this with a kernel that does not need the copies."""
        B, K = out.shape[:2]
        D = x.shape[1]
        xp = self.backend.xp
        rows = xp.broadcast_to(x[:, None, :], (B, K, D)).reshape(B * K, D)
        return self.nll(out.reshape(B * K, out.shape[2]), rows).reshape(B, K).astype(xp.float64)

    def __repr__(self):
        return f"{type(self).__name__}()"


class BernoulliLikelihood(Likelihood):
    """Each pixel x_d in [0, 1] is Bernoulli with p_d = sigmoid(l_d).

        nll = sum_d softplus(l_d) - x_d * l_d        (binary cross-entropy)
        dnll/dl_d = sigmoid(l_d) - x_d

    For non-binary x in [0, 1] the same formula is the usual "continuous"
    BCE of the PyTorch VAE example; it is then not a normalised density.
    """

    name = "bernoulli"

    def nll(self, out, x):
        return self.backend.ops.bernoulli_nll(out, x)

    def forward(self, out, x):
        nll, self._dlogits = self.backend.ops.bernoulli_nll_and_grad(out, x)
        return nll

    def nll_samples(self, out, x):
        return self.backend.ops.bernoulli_nll_samples(out, x)

    def backward(self, dnll):
        dlogits, self._dlogits = self._dlogits, None  # scaled in place: once per forward
        dlogits *= dnll[:, None]
        return dlogits

    def mean(self, out):
        return self.backend.ops.sigmoid(out)


class GaussianLikelihood(Likelihood):
    """Each pixel is N(m_d, variance) with m = out and a fixed variance.

        nll = sum_d (x_d - m_d)^2 / (2 variance) + D/2 * log(2 pi variance)
            = D / (2 variance) * MSE(x, m) + D/2 * log(2 pi variance)

    So minimising it is minimising the mean squared error, scaled by
    D / (2 variance); the constant does not change the gradient but keeps the
    number a true NLL in nats.  The variance sets the balance against the KL
    term: a small variance weighs reconstruction heavily.

        dnll/dm_d = (m_d - x_d) / variance
    """

    name = "gaussian"

    def __init__(self, variance: float = 1.0, backend=None):
        super().__init__(backend)
        if not variance > 0:
            raise ValueError(f"variance must be positive, got {variance}")
        self.variance = float(variance)

    def nll(self, out, x):
        diff = out - x
        D = x.shape[1]
        const = 0.5 * D * (LOG_2PI + math.log(self.variance))
        return (diff * diff).sum(axis=1) / (2 * self.variance) + const

    def forward(self, out, x):
        self._diff = out - x
        return self.nll(out, x)

    def backward(self, dnll):
        return dnll[:, None] * self._diff / self.variance

    def mean(self, out):
        return out

    def __repr__(self):
        return f"GaussianLikelihood(variance={self.variance})"


class LearnedGaussianLikelihood(Likelihood):
    """Each pixel is N(m_d, exp(s_d)); the decoder outputs both halves.

    out = [m | s] of shape (batch, 2 D): the first D columns are the means,
    the last D the log-variances s = log sigma^2.

        nll = 1/2 * sum_d [ (x_d - m_d)^2 exp(-s_d) + s_d + log(2 pi) ]
        dnll/dm_d = (m_d - x_d) exp(-s_d)
        dnll/ds_d = (1 - (x_d - m_d)^2 exp(-s_d)) / 2

    A pixel that is always 0 (MNIST's borders) would let s_d fall without
    bound and the NLL go to minus infinity.  So s is clamped to
    PIXEL_LOGVAR_RANGE = [-10, 10] (sigma between 0.0067 and 148), with zero
    gradient outside, which keeps the density finite: the NLL per pixel is
    then at least (-10 + log(2 pi)) / 2 = -4.08 nats.  This clamp shapes the
    model (training reaches its lower end), so it is far narrower than the
    encoder's overflow guard, models.ENCODER_LOGVAR_RANGE = [-30, 20], which
    trained models never reach.
    """

    PIXEL_LOGVAR_RANGE = (-10.0, 10.0)

    name = "gaussian_learned"

    def out_dim(self, data_dim: int) -> int:
        return 2 * data_dim

    def _split(self, out, x):
        D = x.shape[1]
        if out.shape[1] != 2 * D:
            raise ValueError(f"expected decoder output of width 2 * {D}, got {out.shape[1]}")
        return out[:, :D], out[:, D:]

    def nll(self, out, x):
        xp = self.backend.xp
        m, s = self._split(out, x)
        s = xp.clip(s, *self.PIXEL_LOGVAR_RANGE)
        diff = x - m
        return 0.5 * (diff * diff * xp.exp(-s) + s + LOG_2PI).sum(axis=1)

    def forward(self, out, x):
        xp = self.backend.xp
        m, s = self._split(out, x)
        low, high = self.PIXEL_LOGVAR_RANGE
        self._s_inside = (s >= low) & (s <= high)
        s = xp.clip(s, low, high)
        self._diff = x - m
        self._inv_var = xp.exp(-s)
        self._sq = self._diff * self._diff * self._inv_var
        return 0.5 * (self._sq + s + LOG_2PI).sum(axis=1)

    def backward(self, dnll):
        xp = self.backend.xp
        dnll = dnll[:, None]
        dm = -dnll * self._diff * self._inv_var
        ds = dnll * 0.5 * (1 - self._sq) * self._s_inside
        return xp.concatenate([dm, ds], axis=1)

    def mean(self, out):
        return out[:, : out.shape[1] // 2]


LIKELIHOODS = {"bernoulli": BernoulliLikelihood, "gaussian": GaussianLikelihood,
               "gaussian_learned": LearnedGaussianLikelihood}


def make_likelihood(name: str, backend=None, **kwargs) -> Likelihood:
    """The likelihood called ``name`` (one of ``LIKELIHOODS``)."""
    try:
        cls = LIKELIHOODS[name]
    except KeyError:
        raise ValueError(f"unknown likelihood {name!r}; choose one of: {', '.join(LIKELIHOODS)}") from None
    return cls(backend=backend, **kwargs)
