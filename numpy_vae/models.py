"""The MLP VAE and its deterministic baseline, the Autoencoder.

The VAE, one forward pass, for a batch x of shape (batch, D):

    h          = encoder(x)                        hidden layers, each Linear + activation
    mu, logvar = mu_head(h), logvar_head(h)        (batch, latent_dim) each
    z          = mu + exp(logvar / 2) * eps        Reparameterize, eps ~ N(0, I)
    out        = decoder(z)                        hidden layers, then a Linear output
    recon      = -log p(x | z)                     likelihood, summed over pixels
    kl         = KL(q(z | x) || N(0, I))           closed form
    loss       = mean over the batch of (recon + beta * kl)

With beta = 1 the loss is the negative ELBO in nats per example:
-ELBO = E_q[-log p(x|z)] + KL(q(z|x) || p(z)), estimated with one z per example.

The backward pass runs the same steps in reverse.  The gradient reaching mu
and logvar is the sum of two paths: through z (Reparameterize.backward) and
through the KL term (GaussianKL.backward).  The training step runs those two
nodes as one, ReparameterizeKL (numpy_vae/reparameterize.py): the same
numbers in one kernel call each way, which the Numba and CuPy backends fuse.

``objective="iwae"`` trains on the importance-weighted bound instead
(numpy_vae/iwae.py): k samples z_i per example, and the loss is
-mean_batch log (1/k) sum_i p(x, z_i) / q(z_i | x).

The encoder's log-variance is clamped to ENCODER_LOGVAR_RANGE = [-30, 20]
(a Clip layer after the logvar head): sigma then stays between 3e-7 and
2.2e4, so exp(logvar) cannot overflow even in float32 however extreme the
input, and trained models never come near either end.  Outside the range the
gradient to the logvar head is zero.  It is only an overflow guard, hence
wide; the decoder's learned pixel variance has a narrower clamp that shapes
the model (likelihoods.LearnedGaussianLikelihood.PIXEL_LOGVAR_RANGE, [-10, 10]).

Parameter names (the stable contract other code relies on):
    encoder.{i}.W, encoder.{i}.b   i-th hidden layer of the encoder
    mu.W, mu.b, logvar.W, logvar.b the two heads
    decoder.{i}.W, decoder.{i}.b   decoder layers; the last one is the output
                                   layer (for "gaussian_learned" it has 2 D
                                   outputs: means, then log-variances)
"""

from __future__ import annotations

from numpy_vae.backend import get_backend
from numpy_vae.flat import pack
from numpy_vae.iwae import ImportanceSamples, LogMeanExp
from numpy_vae.kl import GaussianKL
from numpy_vae.layers import ACTIVATIONS, Clip, Linear, Sequential, make_activation
from numpy_vae.likelihoods import LIKELIHOODS, make_likelihood
from numpy_vae.reparameterize import Reparameterize, ReparameterizeKL


ENCODER_LOGVAR_RANGE = (-30.0, 20.0)
OBJECTIVES = ("elbo", "iwae")

# What a kind of model can be asked for; each class says which it supports
# (``_Model.CAPABILITIES``) and why not the others (``_Model.WHY_NOT``).  The
# trainer, the evaluation and the command line all ask the model, so there
# is no second list of model kinds to keep in step.
FEATURES = {
    "iwae_objective": "training on the importance-weighted bound",
    "iwae_bound": "the importance-weighted bound on -log p(x)",
    "kl_weight": "a KL weight beta (KL warm-up)",
    "active_units": "active units",
}


class UnsupportedError(ValueError):
    """A model was asked for something its kind does not do (``feature``: a key of FEATURES)."""

    def __init__(self, message: str, feature: str):
        super().__init__(message)
        self.feature = feature


def check_objective(objective: str, k: int, beta: float = 1.0) -> None:
    """Refuse an unknown objective, a k below 1, k > 1 with the ELBO, and beta != 1 with IWAE."""
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r}; choose one of: {', '.join(OBJECTIVES)}")
    if int(k) != k or k < 1:
        raise ValueError(f"the number of importance samples k must be a positive integer, got {k!r}")
    if objective == "elbo" and k != 1:
        raise ValueError(f"k={k} samples need objective='iwae'; the ELBO objective uses one sample (k=1)")
    if objective == "iwae" and beta != 1:
        raise ValueError(f"beta={beta:g} is not defined for the IWAE objective: the bound weighs "
                         f"log p(x|z), log p(z) and log q(z|x) inside one log-mean-exp, so there "
                         f"is no KL term to scale (use beta=1, or objective='elbo')")


def _mlp(sizes, activation, backend, final_activation, first_input_grad=True):
    """Linear layers between consecutive ``sizes``, an activation after each
    (after the last only if ``final_activation``)."""
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(Linear(n_in, n_out, backend,
                             input_grad=first_input_grad or i > 0))
        if i < len(sizes) - 2 or final_activation:
            layers.append(make_activation(activation, backend))
    return Sequential(layers, backend)


def _check_names(activation, likelihood):
    """Fail early on unknown names, even where a model would not build the layer.

    Only the names are looked up: building a layer here would build it a
    backend of its own, from $NUMPY_VAE_BACKEND, whatever the model's is."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; choose one of: {', '.join(ACTIVATIONS)}")
    if likelihood not in LIKELIHOODS:
        raise ValueError(f"unknown likelihood {likelihood!r}; choose one of: {', '.join(LIKELIHOODS)}")


def _check_sizes(input_dim, hidden_dims, latent_dim):
    hidden_dims = tuple(int(h) for h in hidden_dims)
    if input_dim < 1 or latent_dim < 1 or any(h < 1 for h in hidden_dims):
        raise ValueError(f"layer sizes must be positive: input_dim={input_dim}, "
                         f"hidden_dims={hidden_dims}, latent_dim={latent_dim}")
    return int(input_dim), hidden_dims, int(latent_dim)


class _Model:
    """What the VAE and the Autoencoder share: params, batch checks, config,
    and what the kind supports (``supports``, ``require``, ``check_training``)."""

    CAPABILITIES: frozenset = frozenset()   # keys of FEATURES this kind supports
    WHY_NOT: dict = {}                      # feature -> why not, for the others
    conditional = False                     # True: every batch comes with its labels

    @classmethod
    def supports(cls, feature: str) -> bool:
        """Does this kind of model do ``feature`` (a key of models.FEATURES)?"""
        if feature not in FEATURES:
            raise KeyError(f"unknown feature {feature!r}; known: {', '.join(FEATURES)}")
        return feature in cls.CAPABILITIES

    @classmethod
    def require(cls, feature: str) -> None:
        """Raise UnsupportedError, in words, unless this kind does ``feature``."""
        if not cls.supports(feature):
            why = cls.WHY_NOT.get(feature, "not implemented for it")
            raise UnsupportedError(f"{FEATURES[feature]} is not available for a {cls.__name__}: "
                                   f"{why}", feature)

    @classmethod
    def check_training(cls, objective: str = "elbo", kl_warmup: float = 0.0,
                       eval_iwae_k: int = 0) -> None:
        """Raise UnsupportedError for a training setting this kind cannot honour
        (before any work: the trainer and the command line both call it)."""
        if objective != "elbo":
            cls.require("iwae_objective")
        if kl_warmup > 0:
            cls.require("kl_weight")
        if eval_iwae_k > 0:
            cls.require("iwae_bound")

    def _setup(self, kind, input_dim, hidden_dims, latent_dim, likelihood, activation,
               backend, dtype, seed):
        """Check the arguments; set sizes, backend, config and likelihood."""
        self.input_dim, self.hidden_dims, self.latent_dim = _check_sizes(input_dim, hidden_dims, latent_dim)
        _check_names(activation, likelihood)
        self.backend = get_backend(backend, dtype=dtype, seed=seed)
        self.config = dict(model=kind, input_dim=self.input_dim, hidden_dims=list(self.hidden_dims),
                           latent_dim=self.latent_dim, likelihood=likelihood,
                           activation=activation, dtype=str(self.backend.dtype), seed=seed)
        self.likelihood = make_likelihood(likelihood, self.backend)

    def _collect_params(self, parts):
        """Name every parameter "{part}.{name}" and move them all, and their
        gradients, into two flat, aligned buffers (numpy_vae/flat.py says
        why); the parts keep working on views."""
        self._parts = parts
        params = {f"{prefix}.{name}": value
                  for prefix, part in parts
                  for name, value in part.params.items()}
        xp, dtype = self.backend.xp, self.backend.dtype
        _, self.params = pack(params, xp, dtype)
        _, grads = pack(params, xp, dtype, copy=False)
        for prefix, part in parts:
            names = list(part.params)
            part.adopt({name: self.params[f"{prefix}.{name}"] for name in names},
                       {name: grads[f"{prefix}.{name}"] for name in names})

    def _collect_grads(self):
        """name -> gradient array, the model's gradient buffers: every
        ``loss_and_grads`` overwrites them (copy them to keep them)."""
        return {f"{prefix}.{name}": g for prefix, part in self._parts for name, g in part.grads.items()}

    def _as_batch(self, x):
        x = self.backend.asarray(x)
        if x.ndim == 1:
            x = x[None, :]
        if x.ndim != 2 or x.shape[1] != self.input_dim:
            raise ValueError(f"expected inputs of shape (batch, {self.input_dim}), got {tuple(x.shape)}")
        if x.shape[0] == 0:
            raise ValueError("expected at least one example, got an empty batch")
        return x

    @property
    def num_params(self) -> int:
        return int(sum(p.size for p in self.params.values()))


class VAE(_Model):
    """A variational autoencoder with MLP encoder and decoder.

    Parameters
    ----------
    input_dim : int           D, pixels per example (784 for MNIST).
    hidden_dims : tuple       Widths of the hidden layers; the decoder mirrors them.
    latent_dim : int          Size of z.
    likelihood : str          "bernoulli", "gaussian" or "gaussian_learned".
    activation : str          "relu", "leaky_relu", "tanh", "sigmoid" or "softplus".
    backend : str or Backend  "numpy" (default, or $NUMPY_VAE_BACKEND), "numba", "cupy".
    dtype : str               "float32" or "float64".
    seed : int                Seeds the backend's generator: weights and eps.
    """

    CAPABILITIES = frozenset(FEATURES)

    def __init__(self, input_dim=784, hidden_dims=(400,), latent_dim=20,
                 likelihood="bernoulli", activation="relu", backend=None,
                 dtype="float32", seed=0):
        self._setup("vae", input_dim, hidden_dims, latent_dim, likelihood, activation,
                    backend, dtype, seed)
        bk = self.backend
        self._build_networks(activation)
        self.logvar_clip = Clip(*ENCODER_LOGVAR_RANGE, backend=bk)
        self.reparameterize = Reparameterize(bk)
        self.kl = GaussianKL(bk)
        self.reparameterize_kl = ReparameterizeKL(bk)  # the two above in one node, for training
        self.importance_samples = ImportanceSamples(bk)  # the IWAE objective's two nodes
        self.log_mean_exp = LogMeanExp(bk)
        self._collect_params([("encoder", self.encoder), ("mu", self.mu_head),
                              ("logvar", self.logvar_head), ("decoder", self.decoder)])

    def _build_networks(self, activation):
        """The encoder, the two heads and the decoder (ConvVAE overrides this)."""
        bk = self.backend
        last_hidden = self.hidden_dims[-1] if self.hidden_dims else self.input_dim
        self.encoder = _mlp((self.input_dim, *self.hidden_dims), activation, bk,
                            final_activation=True, first_input_grad=False)
        self.mu_head = Linear(last_hidden, self.latent_dim, bk, input_grad=bool(self.hidden_dims))
        self.logvar_head = Linear(last_hidden, self.latent_dim, bk, input_grad=bool(self.hidden_dims))
        self.decoder = _mlp((self.latent_dim, *reversed(self.hidden_dims),
                             self.likelihood.out_dim(self.input_dim)),
                            activation, bk, final_activation=False)

    # --- the training step -------------------------------------------------

    def loss_and_grads(self, x, eps=None, beta=1.0, objective="elbo", k=1):
        """Negative ELBO (or IWAE bound) of a batch and its gradient for every parameter.

        Parameters
        ----------
        x : (batch, input_dim)          data, in [0, 1] for "bernoulli".
        eps : (batch, latent_dim) | (k, batch, latent_dim) | None
            The noise of the reparameterization, (batch, latent_dim) for the
            ELBO, (k, batch, latent_dim) for IWAE; None draws it from the
            backend's generator.  Passing it makes the call deterministic.
        beta : float                     Weight of the KL term (1: the ELBO);
                                         IWAE allows only 1.
        objective : "elbo" | "iwae"      The ELBO with its analytic KL, or
                                         the importance-weighted bound.
        k : int                          Samples per example for "iwae".

        Returns
        -------
        loss : scalar      mean over the batch of recon + beta * kl (nats per
                           example); for "iwae", -mean_batch L_k
        grads : dict       name -> dloss/dparam, the keys and shapes of ``params``;
                           the model's own gradient arrays, overwritten by
                           the next call (copy them to keep them)
        info : dict        "loss", "recon", "kl" (batch means) and "beta";
                           for "iwae" recon and kl are the means over the k
                           samples of -log p(x|z_i) and log q(z_i|x) - log p(z_i)
                           (their sum is the k-sample average -ELBO, >= loss)
        """
        check_objective(objective, k, beta)
        if objective == "iwae":
            return self._iwae_loss_and_grads(x, eps, int(k))
        x = self._as_batch(x)
        if eps is not None:
            eps = self.backend.asarray(eps)
        batch = x.shape[0]
        xp = self.backend.xp

        # forward
        h = self.encoder.forward(x)
        mu = self.mu_head.forward(h)
        logvar = self.logvar_clip.forward(self.logvar_head.forward(h))
        z, kl = self.reparameterize_kl.forward(mu, logvar, eps)
        out = self.decoder.forward(z)
        recon = self.likelihood.forward(out, x)
        recon_mean, kl_mean = recon.mean(), kl.mean()
        loss = recon_mean + beta * kl_mean

        # backward: loss = (1/batch) sum_n (recon_n + beta * kl_n)
        dnll = xp.full((batch,), 1.0 / batch, dtype=self.backend.dtype)
        dz = self.decoder.backward(self.likelihood.backward(dnll))
        dmu, dlogvar = self.reparameterize_kl.backward(dz, beta * dnll)  # both paths, summed
        self._encoder_backward(dmu, dlogvar)

        grads = self._collect_grads()
        info = {"loss": loss, "recon": recon_mean, "kl": kl_mean, "beta": beta}
        return loss, grads, info

    def _iwae_loss_and_grads(self, x, eps, k):
        """The IWAE objective's step (numpy_vae/iwae.py derives it):

            z_i   = mu + exp(logvar / 2) * eps_i                  (k, batch, latent)
            a_i   = -nll(x, z_i) + log p(z_i) - log q(z_i | x)    (k, batch)
            loss  = -(1/batch) sum_n log (1/k) sum_i exp(a_i)

        and back: da_i = -(1/batch) w~_i, through the decoder (as dnll = -da),
        the prior term and log q, then mu and logvar.
        """
        x = self._as_batch(x)
        batch = x.shape[0]
        bk, xp = self.backend, self.backend.xp
        if eps is None:
            eps = bk.standard_normal((k, batch, self.latent_dim))
        else:
            eps = bk.asarray(eps)
            if eps.shape != (k, batch, self.latent_dim):
                raise ValueError(f"eps for the IWAE objective must have shape (k, batch, latent_dim) = "
                                 f"{(k, batch, self.latent_dim)}, got {tuple(eps.shape)}")

        # forward
        h = self.encoder.forward(x)
        mu = self.mu_head.forward(h)
        logvar = self.logvar_clip.forward(self.logvar_head.forward(h))
        z, log_ratio = self.importance_samples.forward(mu, logvar, eps)
        out = self.decoder.forward(z.reshape(k * batch, self.latent_dim))
        # each image beside each of its k samples: rows i * batch + n
        x_rows = xp.broadcast_to(x, (k, batch, self.input_dim)).reshape(k * batch, self.input_dim)
        nll = self.likelihood.forward(out, x_rows).reshape(k, batch)
        bound = self.log_mean_exp.forward(log_ratio - nll)
        loss = -bound.mean()

        # backward
        dbound = xp.full((batch,), -1.0 / batch, dtype=bk.dtype)
        da = self.log_mean_exp.backward(dbound)                      # (k, batch)
        dz = self.decoder.backward(self.likelihood.backward(-da.reshape(k * batch)))
        dmu, dlogvar = self.importance_samples.backward(dz.reshape(k, batch, self.latent_dim), da)
        self._encoder_backward(dmu, dlogvar)

        grads = self._collect_grads()
        info = {"loss": loss, "recon": nll.mean(), "kl": -log_ratio.mean(), "beta": 1.0}
        return loss, grads, info

    def loss(self, x, eps=None, beta=1.0):
        """The loss of ``loss_and_grads`` without the backward pass (and no caches)."""
        x = self._as_batch(x)
        recon, kl = self.terms(x, eps)
        return (recon + beta * kl).mean()

    def terms(self, x, eps=None):
        """Per-example reconstruction NLL and KL, each (batch,), for one z per example."""
        x = self._as_batch(x)
        mu, logvar = self.encode(x)
        if eps is None:
            eps = self.backend.standard_normal(mu.shape)
        z = self.reparameterize.forward(mu, logvar, self.backend.asarray(eps))
        out = self.decoder.forward(z)
        return self.likelihood.nll(out, x), self.kl.forward(mu, logvar)

    # --- using a trained model ----------------------------------------------

    def _encoder_backward(self, dmu, dlogvar):
        """The encoder's backward pass from dloss/dmu and dloss/dlogvar, both (batch, latent).

        Each head sends its gradient back to the hidden features h, where the
        two add up (h feeds both heads), and the sum goes through the trunk.
        With no hidden layer the heads read x itself and nothing goes further.
        """
        dh = self.mu_head.backward(dmu)
        dh_logvar = self.logvar_head.backward(self.logvar_clip.backward(dlogvar))
        if dh is not None:
            self.encoder.backward(dh + dh_logvar)

    def encode(self, x):
        """q(z | x): (batch, input_dim) -> mu, logvar, each (batch, latent_dim)."""
        h = self.encoder.forward(self._as_batch(x))
        return self.mu_head.forward(h), self.logvar_clip.forward(self.logvar_head.forward(h))

    def decode(self, z):
        """Mean of p(x | z): (batch, latent_dim) -> (batch, input_dim);
        probabilities for "bernoulli", means for the Gaussians."""
        z = self.backend.asarray(z)
        if z.ndim == 1:
            z = z[None, :]
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"expected z of shape (batch, {self.latent_dim}), got {tuple(z.shape)}")
        return self.likelihood.mean(self.decoder.forward(z))

    def sample(self, n: int):
        """Decode n draws from the prior N(0, I): (n, input_dim) means of p(x | z)."""
        if n < 1:
            raise ValueError(f"n must be at least 1, got {n}")
        return self.decode(self.backend.standard_normal((int(n), self.latent_dim)))

    def reconstruct(self, x):
        """Decode the posterior mean: decode(mu(x)), (batch, input_dim)."""
        mu, _ = self.encode(x)
        return self.decode(mu)

    def __repr__(self):
        c = self.config
        dims = "-".join(str(d) for d in (c["input_dim"], *c["hidden_dims"], c["latent_dim"]))
        return (f"VAE({dims}, likelihood={c['likelihood']!r}, activation={c['activation']!r}, "
                f"backend={self.backend.name!r}, dtype={c['dtype']!r})")


class Autoencoder(_Model):
    """A deterministic autoencoder from the same layers: the VAE's baseline.

    code = encoder(x) -> Linear to latent_dim;  out = decoder(code);
    loss = mean over the batch of -log p(x | out), no KL, no noise.

    Parameter names: encoder.{i}.*, code.W, code.b, decoder.{i}.*.
    ``loss_and_grads(x, eps=None, beta=1.0, objective="elbo", k=1)`` accepts
    (and ignores) eps and beta so training code can treat both models alike; info has "kl" = 0.
    """

    WHY_NOT = {"iwae_objective": "an autoencoder has no q(z|x) to weigh samples with",
               "iwae_bound": "an autoencoder has no q(z|x) to weigh samples with",
               "kl_weight": "an autoencoder has no KL term",
               "active_units": "its code is not a distribution"}

    def __init__(self, input_dim=784, hidden_dims=(400,), latent_dim=20,
                 likelihood="bernoulli", activation="relu", backend=None,
                 dtype="float32", seed=0):
        self._setup("autoencoder", input_dim, hidden_dims, latent_dim, likelihood, activation,
                    backend, dtype, seed)
        bk = self.backend
        last_hidden = self.hidden_dims[-1] if self.hidden_dims else self.input_dim
        self.encoder = _mlp((self.input_dim, *self.hidden_dims), activation, bk,
                            final_activation=True, first_input_grad=False)
        self.code_head = Linear(last_hidden, self.latent_dim, bk, input_grad=bool(self.hidden_dims))
        self.decoder = _mlp((self.latent_dim, *reversed(self.hidden_dims),
                             self.likelihood.out_dim(self.input_dim)),
                            activation, bk, final_activation=False)
        self._collect_params([("encoder", self.encoder), ("code", self.code_head),
                              ("decoder", self.decoder)])

    def loss_and_grads(self, x, eps=None, beta=1.0, objective="elbo", k=1):
        """Mean reconstruction NLL of the batch and its gradients (eps, beta unused;
        objective="iwae" is refused: an autoencoder has no q(z|x) to weigh)."""
        if objective != "elbo" or k != 1:
            raise UnsupportedError(f"the autoencoder has no importance-weighted objective "
                                   f"(objective={objective!r}, k={k}): it trains on its "
                                   f"reconstruction only", "iwae_objective")
        x = self._as_batch(x)
        batch = x.shape[0]
        code = self.code_head.forward(self.encoder.forward(x))
        recon = self.likelihood.forward(self.decoder.forward(code), x)
        loss = recon.mean()
        dnll = self.backend.xp.full((batch,), 1.0 / batch, dtype=self.backend.dtype)
        dcode = self.decoder.backward(self.likelihood.backward(dnll))
        dh = self.code_head.backward(dcode)
        if dh is not None:
            self.encoder.backward(dh)
        grads = self._collect_grads()
        zero = self.backend.xp.zeros((), dtype=self.backend.dtype)  # on the device, like loss
        return loss, grads, {"loss": loss, "recon": loss, "kl": zero, "beta": beta}

    def loss(self, x, eps=None, beta=1.0):
        x = self._as_batch(x)
        return self.likelihood.nll(self.decoder.forward(self.encode(x)), x).mean()

    def encode(self, x):
        """x (batch, input_dim) -> code (batch, latent_dim)."""
        return self.code_head.forward(self.encoder.forward(self._as_batch(x)))

    def decode(self, z):
        """code (batch, latent_dim) -> mean of p(x | code), (batch, input_dim)."""
        z = self.backend.asarray(z)
        if z.ndim == 1:
            z = z[None, :]
        return self.likelihood.mean(self.decoder.forward(z))

    def reconstruct(self, x):
        return self.decode(self.encode(x))

    def sample(self, n: int):
        """Decode n standard-normal codes.  An autoencoder has no prior, so
        these are usually not digits: the point lesson 01 makes."""
        if n < 1:
            raise ValueError(f"n must be at least 1, got {n}")
        return self.decode(self.backend.standard_normal((int(n), self.latent_dim)))

    def __repr__(self):
        c = self.config
        dims = "-".join(str(d) for d in (c["input_dim"], *c["hidden_dims"], c["latent_dim"]))
        return f"Autoencoder({dims}, likelihood={c['likelihood']!r}, backend={self.backend.name!r})"


__all__ = ["VAE", "Autoencoder", "check_objective", "OBJECTIVES", "FEATURES", "UnsupportedError"]
