"""The conditional VAE: a VAE told which class each example belongs to.

Kingma et al. 2014 ("Semi-Supervised Learning with Deep Generative Models",
model M2 with the label observed) and Sohn et al. 2015.  The label y, one
of C classes, enters both networks as a one-hot vector concatenated to
their inputs:

    onehot     = one_hot(y)                         (batch, C)
    h          = encoder([x | onehot])              (batch, D + C) -> hidden
    mu, logvar = mu_head(h), logvar_head(h)         q(z | x, y)
    z          = mu + exp(logvar / 2) * eps         ReparameterizeKL, as in the VAE
    out        = decoder([z | onehot])              (batch, latent_dim + C) -> p(x | z, y)
    loss       = mean over the batch of (-log p(x | z, y) + beta * KL(q(z | x, y) || N(0, I)))

With beta = 1 the loss is the negative conditional ELBO, a bound on
-log p(x | y).  The prior on z is still N(0, I) and does not depend on y:
the label carries the class, so z is free to carry what the label does not
(slant, stroke width), which is what lets ``sample(n, labels)`` ask for a
digit and a "style transfer" decode one z with each of the ten labels.

Backward: the decoder's first Linear returns the gradient for its whole
input [z | onehot]; the first latent_dim columns are dz, the rest (the
gradient with respect to the labels) is dropped.  Everything else is the
VAE's backward pass.

Parameter names (the VAE's, so optimizers, flat buffers and checkpoints
work unchanged; only two shapes differ):
    encoder.0.W  (input_dim + n_classes, hidden_dims[0])
    decoder.0.W  (latent_dim + n_classes, hidden_dims[-1])
"""

from __future__ import annotations

import numpy as np

from numpy_vae.layers import Linear
from numpy_vae.models import VAE, _mlp, check_objective


class ConditionalVAE(VAE):
    """A VAE with the class label concatenated to encoder and decoder inputs.

    Parameters
    ----------
    input_dim, hidden_dims, latent_dim, likelihood, activation, backend, dtype, seed
        as for ``numpy_vae.models.VAE``.
    n_classes : int           C, the number of labels (10 for MNIST digits).

    Labels are integers in [0, n_classes), one per example: shape (batch,).
    """

    conditional = True  # training and evaluation pass the labels (numpy_vae/train.py)
    CAPABILITIES = frozenset({"kl_weight"})
    WHY_NOT = {"iwae_objective": "its training step is the conditional ELBO's only",
               "iwae_bound": "it would bound -log p(x | y) and need the labels; not implemented",
               "active_units": "its encoder needs the labels; not implemented"}

    def __init__(self, input_dim=784, hidden_dims=(400,), latent_dim=20, n_classes=10,
                 likelihood="bernoulli", activation="relu", backend=None,
                 dtype="float32", seed=0):
        n_classes = int(n_classes)
        if n_classes < 2:
            raise ValueError(f"n_classes must be at least 2, got {n_classes}")
        self.n_classes = n_classes
        super().__init__(input_dim=input_dim, hidden_dims=hidden_dims, latent_dim=latent_dim,
                         likelihood=likelihood, activation=activation, backend=backend,
                         dtype=dtype, seed=seed)
        self.config["model"] = "cvae"
        self.config["n_classes"] = n_classes

    def _build_networks(self, activation):
        bk, C = self.backend, self.n_classes
        last_hidden = self.hidden_dims[-1] if self.hidden_dims else self.input_dim + C
        self.encoder = _mlp((self.input_dim + C, *self.hidden_dims), activation, bk,
                            final_activation=True, first_input_grad=False)
        self.mu_head = Linear(last_hidden, self.latent_dim, bk, input_grad=bool(self.hidden_dims))
        self.logvar_head = Linear(last_hidden, self.latent_dim, bk, input_grad=bool(self.hidden_dims))
        self.decoder = _mlp((self.latent_dim + C, *reversed(self.hidden_dims),
                             self.likelihood.out_dim(self.input_dim)),
                            activation, bk, final_activation=False)

    # --- labels ---------------------------------------------------------------

    def one_hot(self, y, batch: int):
        """Integer labels (batch,) -> one-hot rows (batch, n_classes), checked.

        Raises ValueError for labels that are not whole numbers, are out of
        [0, n_classes), or do not match the batch size.
        """
        y_host = np.asarray(self.backend.to_numpy(y))
        if y_host.dtype.kind == "f":
            if not np.all(np.isfinite(y_host)) or np.any(y_host != np.round(y_host)):
                raise ValueError(f"labels must be whole numbers in [0, {self.n_classes}), "
                                 f"got non-integer values such as {y_host[y_host != np.round(y_host)][:3]}")
        elif y_host.dtype.kind not in "iu":
            raise ValueError(f"labels must be integers, got dtype {y_host.dtype}")
        if y_host.ndim == 0:
            y_host = y_host[None]
        if y_host.ndim != 1 or y_host.shape[0] != batch:
            raise ValueError(f"expected {batch} labels, shape ({batch},), got shape {tuple(y_host.shape)}")
        y_int = y_host.astype(np.int64)
        bad = (y_int < 0) | (y_int >= self.n_classes)
        if bad.any():
            raise ValueError(f"labels must be in [0, {self.n_classes}), got {sorted(set(y_int[bad].tolist()))[:5]}")
        onehot = np.zeros((batch, self.n_classes), dtype=self.backend.dtype)
        onehot[np.arange(batch), y_int] = 1.0
        return self.backend.asarray(onehot)

    def _with_label(self, a, onehot):
        return self.backend.xp.concatenate([a, onehot], axis=1)

    # --- the training step ----------------------------------------------------

    def loss_and_grads(self, x, y, eps=None, beta=1.0, objective="elbo", k=1):
        """Negative conditional ELBO of a batch and its gradient for every parameter.

        Parameters
        ----------
        x : (batch, input_dim)          data, in [0, 1] for "bernoulli".
        y : (batch,)                    integer labels in [0, n_classes).
        eps : (batch, latent_dim) | None  the reparameterization noise (None: drawn).
        beta : float                    weight of the KL term.
        objective, k                    "elbo" and 1 only: anything else raises
                                        UnsupportedError (models.py), never a silent ELBO.

        Returns loss, grads, info as ``VAE.loss_and_grads``.
        """
        check_objective(objective, k, beta)
        if objective != "elbo":
            self.require("iwae_objective")
        x = self._as_batch(x)
        batch = x.shape[0]
        onehot = self.one_hot(y, batch)
        if eps is not None:
            eps = self.backend.asarray(eps)
        xp = self.backend.xp

        # forward
        h = self.encoder.forward(self._with_label(x, onehot))
        mu = self.mu_head.forward(h)
        logvar = self.logvar_clip.forward(self.logvar_head.forward(h))
        z, kl = self.reparameterize_kl.forward(mu, logvar, eps)
        out = self.decoder.forward(self._with_label(z, onehot))
        recon = self.likelihood.forward(out, x)
        recon_mean, kl_mean = recon.mean(), kl.mean()
        loss = recon_mean + beta * kl_mean

        # backward
        dnll = xp.full((batch,), 1.0 / batch, dtype=self.backend.dtype)
        dz_and_label = self.decoder.backward(self.likelihood.backward(dnll))
        dz = dz_and_label[:, :self.latent_dim]  # the label's columns get no use
        dmu, dlogvar = self.reparameterize_kl.backward(dz, beta * dnll)
        self._encoder_backward(dmu, dlogvar)

        grads = self._collect_grads()
        info = {"loss": loss, "recon": recon_mean, "kl": kl_mean, "beta": beta}
        return loss, grads, info

    def loss(self, x, y, eps=None, beta=1.0):
        """The loss of ``loss_and_grads`` without the backward pass."""
        recon, kl = self.terms(x, y, eps)
        return (recon + beta * kl).mean()

    def terms(self, x, y, eps=None):
        """Per-example reconstruction NLL and KL, each (batch,), for one z per example."""
        x = self._as_batch(x)
        onehot = self.one_hot(y, x.shape[0])
        mu, logvar = self._encode(x, onehot)
        if eps is None:
            eps = self.backend.standard_normal(mu.shape)
        z = self.reparameterize.forward(mu, logvar, self.backend.asarray(eps))
        out = self.decoder.forward(self._with_label(z, onehot))
        return self.likelihood.nll(out, x), self.kl.forward(mu, logvar)

    # --- using a trained model --------------------------------------------------

    def _encode(self, x, onehot):
        h = self.encoder.forward(self._with_label(x, onehot))
        return self.mu_head.forward(h), self.logvar_clip.forward(self.logvar_head.forward(h))

    def encode(self, x, y):
        """q(z | x, y): (batch, input_dim), (batch,) -> mu, logvar, each (batch, latent_dim)."""
        x = self._as_batch(x)
        return self._encode(x, self.one_hot(y, x.shape[0]))

    def decode(self, z, y):
        """Mean of p(x | z, y): (batch, latent_dim), (batch,) -> (batch, input_dim)."""
        z = self.backend.asarray(z)
        if z.ndim == 1:
            z = z[None, :]
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"expected z of shape (batch, {self.latent_dim}), got {tuple(z.shape)}")
        onehot = self.one_hot(y, z.shape[0])
        return self.likelihood.mean(self.decoder.forward(self._with_label(z, onehot)))

    def sample(self, n: int, labels):
        """Decode n prior draws z ~ N(0, I), each with its label: (n, input_dim).

        labels: one integer (every sample gets it) or n integers.
        """
        if n < 1:
            raise ValueError(f"n must be at least 1, got {n}")
        labels = np.asarray(labels)
        if labels.ndim == 0:
            labels = np.full(int(n), labels)
        return self.decode(self.backend.standard_normal((int(n), self.latent_dim)), labels)

    def reconstruct(self, x, y):
        """Decode the posterior mean with the same labels: decode(mu(x, y), y)."""
        mu, _ = self.encode(x, y)
        return self.decode(mu, y)

    def __repr__(self):
        c = self.config
        dims = "-".join(str(d) for d in (c["input_dim"], *c["hidden_dims"], c["latent_dim"]))
        return (f"ConditionalVAE({dims}, n_classes={self.n_classes}, likelihood={c['likelihood']!r}, "
                f"activation={c['activation']!r}, backend={self.backend.name!r}, dtype={c['dtype']!r})")


__all__ = ["ConditionalVAE"]
