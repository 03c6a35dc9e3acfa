"""The VQ-VAE: an autoencoder whose code is D discrete symbols out of K.

van den Oord, Vinyals & Kavukcuoglu 2017.  One forward pass, for a batch x
of shape (batch, input_dim):

    h    = encoder(x)                     hidden layers, each Linear + activation
    z_e  = to_slots(h)                    Linear to D * d numbers, viewed as (batch, D, d)
    z_q  = quantize(z_e)                  each slot -> its nearest of K codes (numpy_vae/quantize.py)
    out  = decoder(z_q)                   hidden layers, then a Linear output
    loss = mean over the batch of
           recon + ||sg[z_e] - e||^2 + beta_commit * ||z_e - sg[e]||^2
           (the middle term only with codebook_update="gradient", below)

recon = -log p(x | z_q) is one of the VAE's likelihoods.  The encoder's
gradient arrives through the straight-through estimator; the codebook
learns from the codebook term alone, or as running means (below;
numpy_vae/quantize.py derives the gradients).

Rate.  The code of one image is D symbols of log2 K bits: D log2 K bits at
most (96 bits for D = 16, K = 64).  Read as a VAE with the uniform prior
over codes and a one-hot posterior, KL(q || uniform) = D log K nats, a
constant, so recon + D log K is a negative ELBO (the paper's section 3.1);
``info["kl"]`` and ``terms`` report that constant.

How the codebook learns, ``codebook_update``:
- "gradient": from the codebook term, through the optimizer, like every
  other parameter (the gradient is written out in numpy_vae/quantize.py).
  With Adam every parameter moves about lr per step, whatever its
  gradient, while an encoder output, a sum over hundreds of weights, can
  move hundreds of times faster: the encoder outputs run away from the
  codes early in training and the commitment term ends up huge (in one
  trial of ours, 784-256 and D 8, d 4, K 256 on 5,000 digits: mean |z_e|
  47 against codes of 0.01 after one epoch, a mean squared distance of
  17,000).
- "ema" (the paper's appendix A.1, the default): the codebook term leaves
  the loss, and after every step each code is set to the running mean of
  the encoder outputs that chose it,
      N_k <- gamma N_k + (1 - gamma) n_k            n_k: slots that chose k in the batch
      S_k <- gamma S_k + (1 - gamma) sum of those z_e
      e_k  = S_k / (N_k + 1e-5)
  with gamma = ``ema_decay`` (0.99); N and S start at 1 and the initial
  codebook, so an unused code stays where it is for about a thousand steps
  (until gamma^t nears 1e-5), then shrinks towards 0.
  The codebook's gradient is then zero, and the optimizer leaves it alone.

Dead codes.  Codes that no encoder output is nearest to are never moved
(neither the codebook term nor the running means touch unchosen codes) and
stay unused for good.  The
remedy here is the random restart (as in Dhariwal et al. 2020, "Jukebox"):
every ``restart_every`` training steps, ``after_step`` moves each code that
no slot chose since the last restart onto a randomly picked encoder output
of the latest batch, where it is certain to be chosen.  ``restart_every=0``
turns it off.  In "gradient" mode Adam's running moments of a restarted
row are kept; they decay within a few hundred steps.

Sampling needs a prior over codes.  ``fit_prior`` counts, slot by slot, how
often each code is chosen on a data set (plus one, so no code has
probability zero): p(k_1, ..., k_D) = prod_j p_j(k_j), the slots drawn
independently.  That ignores how the slots depend on each other, which is
why its samples are poor; the paper fits an autoregressive PixelCNN over the
codes instead.  Before ``fit_prior`` the prior is uniform (the training prior).

State that is not a parameter, in ``buffers`` (saved in checkpoints):
    code_counts (K,)       slots that chose each code, in training steps since
                           ``usage`` last reset them (an epoch, for the trainer)
    restart_counts (K,)    the same since the last restart
    steps (1,)             training steps taken (``after_step`` calls)
    ema_counts (K,)        N_k of the EMA update ("ema" only, else unused)
    ema_sums (K, d)        S_k of the EMA update
    prior_counts (D, K)    the fitted prior's counts (all zero: not fitted)

Parameter names:
    encoder.{i}.W, encoder.{i}.b   hidden layers of the encoder
    slots.W, slots.b               the Linear to D * d
    quantizer.codebook             (K, d)
    decoder.{i}.W, decoder.{i}.b   decoder layers; the last is the output layer
"""

from __future__ import annotations

import math

import numpy as np

from numpy_vae.layers import Linear
from numpy_vae.models import _mlp, _Model, check_objective
from numpy_vae.quantize import VectorQuantize


class VQVAE(_Model):
    """A vector-quantized autoencoder with MLP encoder and decoder.

    Parameters
    ----------
    input_dim : int           pixels per example (784 for MNIST).
    hidden_dims : tuple       widths of the hidden layers; the decoder mirrors them.
    n_slots : int             D, code symbols per image.
    slot_dim : int            d, size of each slot and of each codebook vector.
    n_codes : int             K, codebook size.
    beta_commit : float       weight of the commitment term (0.25 in the paper).
    restart_every : int       training steps between dead-code restarts (0: never).
    codebook_update : str     "ema" (running means, the default) or "gradient".
    ema_decay : float         gamma of the EMA update, in (0, 1).
    likelihood, activation, backend, dtype, seed   as for the VAE.
    """

    CAPABILITIES = frozenset()
    WHY_NOT = {"iwae_objective": "its code is discrete: there are no samples of z to weigh",
               "iwae_bound": "its code is discrete: the negative ELBO with the uniform prior, "
                             "recon + D log K, is its bound",
               "kl_weight": "its KL from the uniform prior is the constant D log K; the weight "
                            "of its commitment term is beta_commit",
               "active_units": "its code is discrete"}

    def __init__(self, input_dim=784, hidden_dims=(400,), n_slots=16, slot_dim=8, n_codes=64,
                 beta_commit=0.25, restart_every=100, codebook_update="ema", ema_decay=0.99,
                 likelihood="bernoulli", activation="relu", backend=None, dtype="float32", seed=0):
        n_slots, slot_dim, n_codes = int(n_slots), int(slot_dim), int(n_codes)
        if min(n_slots, slot_dim) < 1 or n_codes < 2:
            raise ValueError(f"need n_slots >= 1, slot_dim >= 1 and n_codes >= 2, got "
                             f"n_slots={n_slots}, slot_dim={slot_dim}, n_codes={n_codes}")
        if not beta_commit >= 0:
            raise ValueError(f"beta_commit must be >= 0, got {beta_commit}")
        if int(restart_every) < 0:
            raise ValueError(f"restart_every must be >= 0 (0: no restarts), got {restart_every}")
        if codebook_update not in ("ema", "gradient"):
            raise ValueError(f"codebook_update must be 'ema' or 'gradient', got {codebook_update!r}")
        if not 0 < ema_decay < 1:
            raise ValueError(f"ema_decay must be in (0, 1), got {ema_decay}")
        self.codebook_update, self.ema_decay = codebook_update, float(ema_decay)
        self.n_slots, self.slot_dim, self.n_codes = n_slots, slot_dim, n_codes
        self.beta_commit, self.restart_every = float(beta_commit), int(restart_every)
        self._setup("vqvae", input_dim, hidden_dims, n_slots * slot_dim, likelihood, activation,
                    backend, dtype, seed)
        self.config = dict(model="vqvae", input_dim=self.input_dim, hidden_dims=list(self.hidden_dims),
                           n_slots=n_slots, slot_dim=slot_dim, n_codes=n_codes,
                           beta_commit=self.beta_commit, restart_every=self.restart_every,
                           codebook_update=codebook_update, ema_decay=self.ema_decay,
                           likelihood=likelihood, activation=activation,
                           dtype=str(self.backend.dtype), seed=seed)
        bk = self.backend
        last_hidden = self.hidden_dims[-1] if self.hidden_dims else self.input_dim
        self.encoder = _mlp((self.input_dim, *self.hidden_dims), activation, bk,
                            final_activation=True, first_input_grad=False)
        self.slots_head = Linear(last_hidden, self.latent_dim, bk, input_grad=bool(self.hidden_dims))
        self.quantizer = VectorQuantize(n_codes, slot_dim, bk)
        self.decoder = _mlp((self.latent_dim, *reversed(self.hidden_dims),
                             self.likelihood.out_dim(self.input_dim)),
                            activation, bk, final_activation=False)
        self._collect_params([("encoder", self.encoder), ("slots", self.slots_head),
                              ("quantizer", self.quantizer), ("decoder", self.decoder)])
        xp = bk.xp
        self.buffers = {"code_counts": xp.zeros(n_codes, dtype=np.int64),
                        "restart_counts": xp.zeros(n_codes, dtype=np.int64),
                        "steps": xp.zeros(1, dtype=np.int64),
                        "prior_counts": xp.zeros((n_slots, n_codes), dtype=np.int64),
                        "ema_counts": xp.ones(n_codes, dtype=bk.dtype),
                        "ema_sums": self.quantizer.params["codebook"].copy()}
        self._last_z_e = None

    @property
    def _sq_weight(self) -> float:
        """The codebook term (gradient mode only) and the commitment term have
        the same value, sum_j ||z_e - z_q||^2: the loss counts it this many times."""
        return (1.0 if self.codebook_update == "gradient" else 0.0) + self.beta_commit

    @property
    def kl_uniform(self) -> float:
        """KL(one-hot posterior || uniform prior) = D log K nats, the same for every image."""
        return self.n_slots * math.log(self.n_codes)

    # --- the training step -------------------------------------------------

    def _z_e(self, x):
        h = self.encoder.forward(x)
        return self.slots_head.forward(h).reshape(x.shape[0], self.n_slots, self.slot_dim)

    def loss_and_grads(self, x, eps=None, beta=1.0, objective="elbo", k=1):
        """The VQ-VAE loss of a batch and the gradients that train it.

        x : (batch, input_dim).  eps and beta are accepted and ignored (there
        is no noise; the commitment weight is ``beta_commit``), so training
        code can treat every model alike.  ``objective`` other than "elbo"
        (with k = 1) raises UnsupportedError (models.py).

        Returns loss (scalar), grads (name -> array, the model's buffers) and
        info: "loss"; "recon" (mean -log p(x | z_q)); "vq" (mean of
        sum_j ||z_e - z_q||^2, the value of the codebook term; the
        commitment term is beta_commit times it; the loss holds the
        codebook term in "gradient" mode only); "kl" (D log K, see the
        module docstring); "beta".  Counts the codes chosen in ``buffers``.
        """
        check_objective(objective, k)
        if objective != "elbo":
            self.require("iwae_objective")
        x = self._as_batch(x)
        batch = x.shape[0]
        xp = self.backend.xp

        # forward
        z_e = self._z_e(x)
        z_q, sq = self.quantizer.forward(z_e)
        out = self.decoder.forward(z_q.reshape(batch, self.latent_dim))
        recon = self.likelihood.forward(out, x)
        recon_mean, sq_mean = recon.mean(), sq.mean()
        loss = recon_mean + self._sq_weight * sq_mean

        # backward
        dnll = xp.full((batch,), 1.0 / batch, dtype=self.backend.dtype)
        dz_q = self.decoder.backward(self.likelihood.backward(dnll))
        dsq_code = dnll if self.codebook_update == "gradient" else 0 * dnll  # EMA: no codebook term
        dz_e = self.quantizer.backward(dz_q.reshape(z_e.shape), dsq_code, self.beta_commit * dnll)
        dh = self.slots_head.backward(dz_e.reshape(batch, self.latent_dim))
        if dh is not None:
            self.encoder.backward(dh)

        used = xp.bincount(self.quantizer.codes.reshape(-1), minlength=self.n_codes)
        self.buffers["code_counts"] += used
        self.buffers["restart_counts"] += used
        self._last_z_e = z_e

        grads = self._collect_grads()
        kl = xp.asarray(self.kl_uniform, dtype=self.backend.dtype)
        info = {"loss": loss, "recon": recon_mean, "vq": sq_mean, "kl": kl, "beta": beta}
        return loss, grads, info

    def gradient_targets(self, x) -> dict:
        """What each parameter's training gradient is the true derivative of, here.

        {name: f()} for the parameters whose gradient is not the loss's
        (numpy_vae/gradcheck.py ``check_model`` checks them against these):
        the encoder and slots head against the straight-through surrogate,
        the loss with the codes and z_q - z_e frozen at the current point,

            mean_n [ recon(decoder(z_e + sg[z_q - z_e])) + beta_commit ||z_e - sg[z_q]||^2 ];

        the codebook against the codebook term mean_n ||sg[z_e] - e||^2
        ("gradient") or against nothing, a constant ("ema": the running
        means move it, not the optimizer).  The decoder's is the loss's own.
        """
        x = self._as_batch(x)
        z_e0 = self._z_e(x)
        _, z_q0 = self.quantizer.quantize(z_e0)
        offset = z_q0 - z_e0
        batch = x.shape[0]

        def surrogate():
            z_e = self._z_e(x)
            out = self.decoder.forward((z_e + offset).reshape(batch, self.latent_dim))
            diff = z_e - z_q0
            commit = (diff * diff).sum(axis=(1, 2))
            return float((self.likelihood.nll(out, x) + self.beta_commit * commit).mean())

        def codebook_term():
            return float(self._forward(x)[1].mean()) if self.codebook_update == "gradient" else 0.0

        targets = {name: surrogate for name in self.params if name.startswith(("encoder.", "slots."))}
        targets["quantizer.codebook"] = codebook_term
        return targets

    def after_step(self) -> int:
        """Call after each optimizer step: the EMA codebook update ("ema"),
        and every ``restart_every`` steps, restart the codes no slot chose
        since the last restart.  Returns how many codes it restarted (0 on
        other steps)."""
        self.buffers["steps"] += 1
        if self.codebook_update == "ema" and self._last_z_e is not None:
            self._ema_update()
        if self.restart_every and int(self.buffers["steps"][0]) % self.restart_every == 0:
            return self.restart_dead_codes()
        return 0

    def _ema_update(self):
        """N_k, S_k and e_k = S_k / (N_k + 1e-5) from the latest batch (module docstring)."""
        xp, gamma = self.backend.xp, self.ema_decay
        z = self._last_z_e.reshape(-1, self.slot_dim)
        onehot = xp.zeros((z.shape[0], self.n_codes), dtype=z.dtype)
        onehot[xp.arange(z.shape[0]), self.quantizer.codes.reshape(-1)] = 1.0
        counts, sums = self.buffers["ema_counts"], self.buffers["ema_sums"]
        counts *= gamma
        counts += (1 - gamma) * onehot.sum(axis=0)
        sums *= gamma
        sums += (1 - gamma) * (onehot.T @ z)
        self.quantizer.params["codebook"][...] = sums / (counts[:, None] + 1e-5)

    def restart_dead_codes(self) -> int:
        """Move every code unused since the last restart onto an encoder output
        of the latest training batch, picked at random (the model's
        generator); reset the counts.  Returns the number of codes moved."""
        xp = self.backend.xp
        dead = xp.nonzero(self.buffers["restart_counts"] == 0)[0]
        self.buffers["restart_counts"][...] = 0
        if self._last_z_e is None or dead.size == 0:
            return 0
        rows = self._last_z_e.reshape(-1, self.slot_dim)
        pick = (self.backend.random((int(dead.size),)) * rows.shape[0]).astype(np.int64)
        pick = xp.minimum(pick, rows.shape[0] - 1)  # random() < 1, but float32 rounding may reach it
        self.quantizer.params["codebook"][dead] = rows[pick]
        self.buffers["ema_counts"][dead] = 1.0       # a fresh running mean: one pseudo-observation
        self.buffers["ema_sums"][dead] = rows[pick]
        return int(dead.size)

    def usage(self, reset: bool = True) -> dict:
        """Codebook usage since the last reset: {"perplexity", "dead_codes"}.

        perplexity = exp(-sum_k p_k log p_k), p_k the share of slots that chose
        code k: K if all codes are used equally, 1 if one code takes all.
        dead_codes = codes no slot chose.
        """
        counts = self.backend.to_numpy(self.buffers["code_counts"]).astype(np.float64)
        if reset:
            self.buffers["code_counts"][...] = 0
        return {"perplexity": perplexity(counts), "dead_codes": int((counts == 0).sum())}

    def loss(self, x, eps=None, beta=1.0):
        """The loss of ``loss_and_grads`` without the backward pass (and no counting)."""
        x = self._as_batch(x)
        recon, sq, _ = self._forward(x)
        return (recon + self._sq_weight * sq).mean()

    def terms(self, x, eps=None):
        """Per-example recon NLL and the KL from the uniform prior (D log K), each (batch,)."""
        x = self._as_batch(x)
        recon, _, _ = self._forward(x)
        return recon, self.backend.xp.full(recon.shape, self.kl_uniform, dtype=self.backend.dtype)

    def _forward(self, x):
        z_e = self._z_e(x)
        codes, z_q = self.quantizer.quantize(z_e)
        out = self.decoder.forward(z_q.reshape(x.shape[0], self.latent_dim))
        diff = z_e - z_q
        return self.likelihood.nll(out, x), (diff * diff).sum(axis=(1, 2)), codes

    # --- using a trained model ----------------------------------------------

    def encode(self, x):
        """x (batch, input_dim) -> codes (batch, D), integers in [0, K)."""
        codes, _ = self.quantizer.quantize(self._z_e(self._as_batch(x)))
        return codes

    def decode(self, codes):
        """codes (batch, D) integers in [0, K) -> mean of p(x | z_q), (batch, input_dim)."""
        xp = self.backend.xp
        codes = xp.asarray(codes)
        if codes.ndim == 1:
            codes = codes[None, :]
        if codes.ndim != 2 or codes.shape[1] != self.n_slots:
            raise ValueError(f"expected codes of shape (batch, {self.n_slots}), got {tuple(codes.shape)}")
        if codes.dtype.kind not in "iu":
            raise ValueError(f"codes must be integers, got dtype {codes.dtype}")
        if codes.size and (int(codes.min()) < 0 or int(codes.max()) >= self.n_codes):
            raise ValueError(f"codes must be in [0, {self.n_codes}), got values from "
                             f"{int(codes.min())} to {int(codes.max())}")
        z_q = self.quantizer.params["codebook"][codes].reshape(codes.shape[0], self.latent_dim)
        return self.likelihood.mean(self.decoder.forward(z_q))

    def reconstruct(self, x):
        """decode(encode(x)): (batch, input_dim)."""
        return self.decode(self.encode(x))

    def fit_prior(self, x, batch_size: int = 1000):
        """Count each slot's codes on x (plus one each): the independent per-slot prior."""
        x = self._as_batch(x)
        counts = self.buffers["prior_counts"]
        counts[...] = 1  # add-one: no code gets probability zero
        xp = self.backend.xp
        for start in range(0, x.shape[0], batch_size):
            codes = self.encode(x[start:start + batch_size])
            for j in range(self.n_slots):
                counts[j] += xp.bincount(codes[:, j], minlength=self.n_codes)
        return self.prior()

    def prior(self):
        """p_j(k): (D, K) probabilities, rows summing to 1 (uniform before ``fit_prior``)."""
        counts = self.backend.to_numpy(self.buffers["prior_counts"]).astype(np.float64)
        if not counts.any():
            return np.full((self.n_slots, self.n_codes), 1.0 / self.n_codes)
        return counts / counts.sum(axis=1, keepdims=True)

    def sample_codes(self, n: int, rng=None):
        """n code sequences (n, D), each slot drawn independently from the prior.

        rng: a NumPy Generator (default: the model's backend generator)."""
        if n < 1:
            raise ValueError(f"n must be at least 1, got {n}")
        cdf = np.cumsum(self.prior(), axis=1)                     # (D, K)
        if rng is not None:
            u = rng.random((int(n), self.n_slots))
        else:
            u = self.backend.to_numpy(self.backend.random((int(n), self.n_slots))).astype(np.float64)
        codes = (u[:, :, None] >= cdf[None, :, :]).sum(axis=2)   # inverse CDF: first k with cdf > u
        return np.minimum(codes, self.n_codes - 1)              # cdf[-1] may round below 1

    def sample(self, n: int):
        """Decode n code sequences drawn from the prior: (n, input_dim)."""
        return self.decode(self.sample_codes(n))

    def log_prior(self, codes):
        """log p(codes) under the prior, (batch,) nats: sum_j log p_j(k_j)."""
        logp = np.log(self.prior())
        codes = np.asarray(self.backend.to_numpy(codes))
        return logp[np.arange(self.n_slots)[None, :], codes].sum(axis=1)

    def __repr__(self):
        c = self.config
        return (f"VQVAE({c['input_dim']}-{'-'.join(map(str, c['hidden_dims']))}, D={self.n_slots}, "
                f"d={self.slot_dim}, K={self.n_codes}, beta_commit={self.beta_commit}, "
                f"backend={self.backend.name!r})")


def perplexity(counts) -> float:
    """exp(entropy) of the distribution proportional to ``counts`` (0 if all are zero)."""
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum()
    if total == 0:
        return 0.0
    p = counts[counts > 0] / total
    return float(np.exp(-(p * np.log(p)).sum()))


__all__ = ["VQVAE", "perplexity"]
