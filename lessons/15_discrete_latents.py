# %% [markdown]
# # Lesson 15 -- Discrete latents: the VQ-VAE
#
# Image and audio models (VQ-VAE, VQ-GAN, the tokenisers of image
# generators) describe their input with *symbols*: a few integers, each one
# of K codebook entries.  The VQ-VAE (van den Oord, Vinyals & Kavukcuoglu
# 2017, "Neural Discrete Representation Learning") is the plainest of them:
#
#     z_e = encoder(x)                       D slots of d numbers, (D, d)
#     k_j = argmin_k ||z_e[j] - e_k||^2       the nearest of K codebook vectors
#     z_q[j] = e_{k_j}                         x is now D integers: D log2 K bits
#     x  ~  p(x | z_q) = decoder(z_q)
#
#     loss = -log p(x | z_q) + ||sg[z_e] - e||^2 + beta_commit ||z_e - sg[e]||^2
#
# (sg: stop-gradient; its value passes, its gradient does not.)  Four
# questions in this lesson:
#
# 1. How can a gradient pass through an argmin?  (It cannot; the
#    straight-through estimator pretends it can, and we check what it is.)
# 2. Are all K codes used?  (No: dead codes, and a remedy.)
# 3. With the same number of bits, how does it reconstruct next to the
#    Gaussian VAE?
# 4. How do we sample from it, and why is the simplest prior poor?
#
# The code: numpy_vae/quantize.py (the quantization node, its two loss terms
# and the straight-through gradient, derived in its docstring) and
# numpy_vae/vqvae.py (the model, codebook usage, dead-code restarts, the
# code prior).
#
# **Quick mode** (a subset of MNIST, fewer epochs; under a minute): run
# `python lessons/15_discrete_latents.py --quick`, or in a notebook run
# `%env NUMPY_VAE_QUICK=1` before the setup cell below.  Every sentence the
# run can confirm is checked by a `claim(...)` after the cell that shows it.

# %%
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent if "__file__" in globals() else Path.cwd()
sys.path.insert(0, str(HERE if (HERE / "_common.py").exists() else HERE / "lessons"))

import math
import time

import matplotlib.pyplot as plt
import numpy as np
from _common import binarize_batch, claim, done, load_digits, savefig, setup, show

from numpy_vae import VAE, Adam, gradcheck
from numpy_vae.quantize import VectorQuantize, nearest_codes
from numpy_vae.vqvae import VQVAE

settings = setup("Lesson 15: discrete latents")
SEED = settings.seed  # every random draw below derives from it (--seed N, NUMPY_VAE_SEED=N)
data = load_digits(settings)
epochs = 5  # in both modes: quick mode has 5,000 training images, full mode 60,000
hidden = settings.pick((128,), (400,))
batch_size, lr = settings.pick(50, 100), settings.pick(2e-3, 1e-3)

# %% [markdown]
# ## 1. Nearest-neighbour quantization
#
# Eight codes in the plane and a cloud of points: every point is replaced
# by its nearest code.  The squared distances come from one matrix product,
# ||z - e||^2 = ||z||^2 - 2 z.e + ||e||^2 (`nearest_codes`); we check the
# result against the distances computed one by one.

# %%
rng = np.random.default_rng(SEED)
codebook = rng.uniform(-2, 2, (8, 2))
points = rng.standard_normal((400, 2))
codes = nearest_codes(points, codebook, np)
direct = ((points[:, None, :] - codebook[None]) ** 2).sum(axis=2)
claim("every point's code is its nearest codebook vector (checked against all distances)",
      np.all(direct[np.arange(len(points)), codes] <= direct.min(axis=1) + 1e-12), "400 points, 8 codes")

fig, ax = plt.subplots(figsize=(5, 5))
ax.scatter(points[:, 0], points[:, 1], c=codes, cmap="tab10", s=8)
ax.scatter(codebook[:, 0], codebook[:, 1], c=np.arange(8), cmap="tab10", s=160, marker="*",
           edgecolors="black")
ax.set_title("points coloured by their nearest code (stars)", fontsize=10)
ax.set_aspect("equal")
savefig(fig, "15_nearest_codes.png")

# %% [markdown]
# ## 2. The straight-through estimator
#
# z_q is piecewise constant in z_e: move z_e a little and z_q does not move
# at all, until z_e crosses into another code's cell and z_q jumps.  Its
# derivative is zero almost everywhere, useless for training the encoder.
# The straight-through estimator copies the decoder's gradient dL/dz_q to
# z_e unchanged, as if quantization were the identity.  It is the exact
# gradient of a *surrogate*,
#
#     z_q = z_e + sg[z_q - z_e]
#
# which has z_q's value and the identity's derivative.  That part is a
# definition, not something to test: the node copies dL/dz_q to z_e.  What
# a run can check is the rest of the node's backward pass, written out in
# numpy_vae/quantize.py: with the codebook and commitment terms added, the
# surrogate loss of one VectorQuantize node (float64) is
#
#     g = sum(r * (z_e + sg[z_q - z_e])) + sum_n a_n ||sg[z_e] - e||^2 + sum_n b_n ||z_e - sg[e]||^2
#
# for random r, a, b.  Freeze every sg[...] at its current value, and g is
# an ordinary function of z_e and the codebook: its finite differences
# must match the node's backward (dz_e, and the codebook's gradient).  And
# finite differences of the real quantization, sum(r * z_q), give exactly 0.

# %%
from numpy_vae.backend import get_backend  # noqa: E402

node = VectorQuantize(8, 2, get_backend("numpy", dtype="float64"))
node.params["codebook"][...] = codebook
z_e = rng.standard_normal((5, 3, 2))
r, a, b = rng.standard_normal(z_e.shape), rng.uniform(0.5, 1.5, 5), rng.uniform(0.5, 1.5, 5)
z_q0, _ = node.forward(z_e)
frozen_codes, frozen_z_e, frozen_offset = node.codes.copy(), z_e.copy(), z_q0 - z_e  # the sg[...] values
true = gradcheck.numerical_gradient(lambda: float((r * node.forward(z_e)[0]).sum()), z_e, 1e-5)


def surrogate():
    e = node.params["codebook"][frozen_codes]                       # (5, 3, 2), moves with the codebook
    return float((r * (z_e + frozen_offset)).sum()
                 + (a[:, None, None] * (frozen_z_e - e) ** 2).sum()   # codebook term: sg[z_e]
                 + (b[:, None, None] * (z_e - z_q0) ** 2).sum())      # commitment term: sg[e]


fd_z_e = gradcheck.numerical_gradient(surrogate, z_e, 1e-5)
fd_codebook = gradcheck.numerical_gradient(surrogate, node.params["codebook"], 1e-5)
node.forward(z_e)
dz_e = node.backward(r, a, b)
st_error = max(gradcheck.relative_error(dz_e, fd_z_e),
               gradcheck.relative_error(node.grads["codebook"], fd_codebook))
print(f"largest |finite difference| of the real quantization: {np.abs(true).max()}")
print(f"node backward vs finite differences of the surrogate loss: relative error {st_error:.1e}")
claim("the true derivative of the quantized output is zero: finite differences give exactly 0",
      np.all(true == 0), f"max |fd| = {np.abs(true).max()}")
claim("the node's backward (straight-through + both sg terms, z_e and codebook) is the exact gradient of the surrogate",
      st_error < 1e-7, f"relative error {st_error:.1e}")

# %% [markdown]
# The two loss terms with sg are then ordinary functions with ordinary
# gradients: the codebook term moves each chosen code towards the encoder
# outputs that chose it, the commitment term pulls the encoder outputs
# towards their codes.  tests/test_quantize.py and tests/test_vqvae.py
# check both, and every other gradient of the model, against finite
# differences (the encoder's with the surrogate in place of quantization).
#
# The models below learn their codebook the paper's other way (its appendix
# A.1; `codebook_update="ema"`, the default): after every step each code is
# set to the running mean of the encoder outputs that chose it -- where the
# codebook term pulls it, but at once.  Why not let Adam learn the
# codebook from the codebook term, like every other parameter?  Adam moves
# a weight by lr * m / sqrt(v) (bias-corrected running means of g and g^2):
# on the first step exactly lr * g / (|g| + eps), about lr whatever the
# size of g; later steps can be larger, but never more than about 7.3 lr
# with the usual betas (0.9, 0.999): |m| / sqrt(v) <= (1 - b1) /
# sqrt((1 - b2) (1 - b1^2 / b2)) by Cauchy-Schwarz; and they are much
# smaller when the gradient's sign keeps changing.  So a code moves at
# most a few lr per step, whatever its gradient, while an encoder output,
# a sum over hundreds of weights that each move that much, can move far
# faster: the encoder outputs run away from their codes.  Section 4 trains one VQ-VAE that way
# (`codebook_update="gradient"`) for one epoch and measures both.
#
# ## 3. A Gaussian VAE, and a VQ-VAE with as many bits
#
# How do we match the number of bits?  The VQ-VAE's code is D symbols of
# log2 K bits each: D log2 K bits per image, fixed.  A Gaussian VAE's code
# costs its KL: with bits-back coding an image's z can be sent in
# KL(q(z|x) || p(z)) nats on average (Hinton & van Camp 1993; Frey & Hinton
# 1997), so KL / ln 2 is its rate in bits.  We train the VAE first, measure
# its test KL, and give the VQ-VAE K = 512 codes (9 bits a slot) and the D
# that comes closest to the same number of bits.

# %%


def train(model, x, *, epochs, seed=SEED, log_usage=False, watch_codebook=False):
    """Lesson 06's loop, plus the VQ-VAE's ``after_step`` (dead-code restarts).

    Returns the codebook usage of each epoch (log_usage), or the largest
    change of a codebook entry in one optimizer step (watch_codebook)."""
    rng = np.random.default_rng(seed)
    opt = Adam(model.params, lr=lr, backend=model.backend)
    usage, largest_step = [], 0.0
    for epoch in range(1, epochs + 1):
        t0, losses = time.time(), []
        order = rng.permutation(len(x))
        for start in range(0, len(x) - batch_size + 1, batch_size):
            loss, grads, _ = model.loss_and_grads(binarize_batch(x[order[start:start + batch_size]], rng))
            before = model.params["quantizer.codebook"].copy() if watch_codebook else None
            opt.step(grads)
            if watch_codebook:  # the optimizer's step only (a restart, below, jumps)
                largest_step = max(largest_step, float(np.abs(model.params["quantizer.codebook"] - before).max()))
            if isinstance(model, VQVAE):
                model.after_step()
            losses.append(float(loss))
        line = f"  epoch {epoch}/{epochs}: train loss {np.mean(losses[-100:]):.2f}"
        if log_usage:
            usage.append(model.usage())  # counted over this epoch's training steps, then reset
            line += f", perplexity {usage[-1]['perplexity']:.1f}, dead codes {usage[-1]['dead_codes']}"
        print(line + f"  [{time.time() - t0:.1f} s]")
    return largest_step if watch_codebook else usage


x_test = data.x_test_bin
vae = VAE(hidden_dims=hidden, latent_dim=settings.pick(8, 20), seed=SEED)
print(vae)
train(vae, data.x_train, epochs=epochs)
eps = np.random.default_rng(SEED).standard_normal((len(x_test), vae.latent_dim)).astype(np.float32)
vae_recon, vae_kl = (float(t.mean()) for t in vae.terms(x_test, eps))
vae_bits = vae_kl / math.log(2)

K = 512
D = max(1, round(vae_bits / math.log2(K)))
vq = VQVAE(hidden_dims=hidden, n_slots=D, slot_dim=4, n_codes=K, restart_every=50, seed=SEED)
print(vq)
last_usage = train(vq, data.x_train, epochs=epochs, log_usage=True)[-1]
vq_recon = float(vq.terms(x_test)[0].mean())
vq_bits = D * math.log2(K)
print(f"\nGaussian VAE: KL {vae_kl:.2f} nats = {vae_bits:.1f} bits, reconstruction {vae_recon:.2f} nats")
print(f"VQ-VAE:       D = {D} slots x log2 {K} = {vq_bits:.0f} bits, reconstruction {vq_recon:.2f} nats")
print("(D is chosen to match the bits, so the two agree within half a slot, 4.5 bits, by construction)")

# %% [markdown]
# ## 4. Codebook usage and dead codes
#
# A code that no encoder output is nearest to is not updated: the running
# means, like the codebook term, only move chosen codes (an unused code
# stays put for about a thousand steps, then its running mean shrinks
# towards 0).  It comes back only if the encoder outputs wander into its
# cell, or near 0 once it has shrunk there.  Some do, slowly (in our runs
# hardly any in quick mode's 500 steps, about half in full mode's 3,000):
# without a remedy a large part of the codebook stays unused, *dead
# codes*.  Two numbers describe the usage of the codebook:
#
# * dead codes: how many of the K codes no slot chooses;
# * perplexity: exp(entropy) of the codes' frequencies -- the number of
#   equally used codes that would have the same entropy (K at best).
#
# The remedy used here is the *random restart* (as in Jukebox, Dhariwal et
# al. 2020): every 50 training steps, each code that no slot chose since the
# last restart is moved onto an encoder output of the latest batch, where
# it is certain to be chosen (`VQVAE.restart_dead_codes`).  We train the
# same VQ-VAE again without restarts and compare the codebook usage of
# both over their last epoch of training (D slots of every training image).

# %%
vq_plain = VQVAE(hidden_dims=hidden, n_slots=D, slot_dim=4, n_codes=K, restart_every=0, seed=SEED)
print(vq_plain, "(no restarts)")
plain_epochs = train(vq_plain, data.x_train, epochs=epochs, log_usage=True)
plain_usage = plain_epochs[-1]
dead_per_epoch = [u["dead_codes"] for u in plain_epochs]
with_p, with_dead = last_usage["perplexity"], last_usage["dead_codes"]
plain_p, plain_dead = plain_usage["perplexity"], plain_usage["dead_codes"]
plain_recon = float(vq_plain.terms(x_test)[0].mean())
print(f"{'':18s} {'dead codes':>10s} {'perplexity':>10s} {'recon':>8s}")
print(f"{'with restarts':18s} {with_dead:10d} {with_p:10.1f} {vq_recon:8.2f}")
print(f"{'without restarts':18s} {plain_dead:10d} {plain_p:10.1f} {plain_recon:8.2f}")
claim("without restarts, a large part of the codebook is still dead in the last epoch (over a third)",
      plain_dead > K / 3, f"dead codes per epoch: {dead_per_epoch} of {K}")
claim("some come back, slowly: fewer dead codes in the last epoch than in the second",
      dead_per_epoch[-1] < dead_per_epoch[1], f"{dead_per_epoch[1]} -> {dead_per_epoch[-1]}")
claim("restarts leave fewer dead codes and a higher perplexity",
      with_dead < plain_dead and with_p > plain_p,
      f"dead {with_dead} vs {plain_dead}, perplexity {with_p:.1f} vs {plain_p:.1f}")

# %% [markdown]
# And the codebook learned by Adam from the codebook term
# (`codebook_update="gradient"`), also without restarts, for one epoch: the
# largest distance a code entry moved in one Adam step, in units of lr; and
# on the test digits, how far the encoder outputs end up from their codes,
# next to the EMA model without restarts.  (Restarts hide the run-away:
# they keep putting codes back onto the encoder outputs.)  How far they
# run depends on the step size: in our runs, after one epoch the encoder
# outputs were about 20 times the size of their codes in quick mode
# (lr 2e-3), about 4 times in full mode (lr 1e-3).

# %%


def vq_distances(model, x):
    """Mean |z_e| entry, mean |e| entry of the chosen codes, mean ||z_e - e||^2 per slot."""
    z = model._z_e(x)
    chosen, z_q = model.quantizer.quantize(z)
    return float(np.abs(z).mean()), float(np.abs(z_q).mean()), float(((z - z_q) ** 2).sum(axis=2).mean())


vq_adam = VQVAE(hidden_dims=hidden, n_slots=D, slot_dim=4, n_codes=K, restart_every=0,
                codebook_update="gradient", seed=SEED)
code_step = train(vq_adam, data.x_train, epochs=1, watch_codebook=True)
ema_ze, ema_e, ema_dist = vq_distances(vq_plain, x_test)
adam_ze, adam_e, adam_dist = vq_distances(vq_adam, x_test)
print(f"largest move of a code entry in one Adam step: {code_step / lr:.2f} lr")
print(f"{'':22s} {'mean |z_e|':>10s} {'mean |e|':>10s} {'||z_e - e||^2':>14s}")
print(f"{'EMA, 5 epochs':22s} {ema_ze:10.3f} {ema_e:10.3f} {ema_dist:14.3f}")
print(f"{'Adam, 1 epoch':22s} {adam_ze:10.3f} {adam_e:10.3f} {adam_dist:14.3f}")
claim("trained by Adam, a code entry moves at most a few lr per step (under Adam's bound, 7.3 lr)",
      code_step < 7.3 * lr, f"largest step {code_step / lr:.2f} lr")
claim("and the codes fall behind the encoder outputs: mean |z_e| over 2.5 times mean |e|, "
      "||z_e - e||^2 over 2.5 times the EMA model's",
      adam_ze > 2.5 * adam_e and adam_dist > 2.5 * ema_dist,
      f"|z_e| {adam_ze:.3g} vs |e| {adam_e:.3g}; ||z_e - e||^2 {adam_dist:.3g} vs {ema_dist:.3g} per slot")


# %% [markdown]
# ## Reconstructions at the same number of bits

# %%
x = data.x_test[:10]
fig, ax = plt.subplots(figsize=(8, 3.6))
show(ax, np.vstack([x, vae.reconstruct(x), vq.reconstruct(x)]), 10,
     f"test digits; Gaussian VAE ({vae_bits:.0f} bits by its KL); VQ-VAE ({vq_bits:.0f} bits)",
     row_labels=["test", "VAE", "VQ-VAE"])
savefig(fig, "15_reconstructions.png")
better = "the Gaussian VAE" if vae_recon < vq_recon else "the VQ-VAE"
print(f"in this run {better} reconstructs the test digits better: -log p(x | z) "
      f"{vae_recon:.2f} (VAE) vs {vq_recon:.2f} (VQ-VAE) nats")

# %% [markdown]
# Which one wins depends on the budget, the training time and the
# architecture; the line above says which did in this run.  (In the paper,
# with convolutional networks, a large codebook and a learned prior, the
# VQ-VAE matches a continuous VAE's likelihood on CIFAR-10.)  Note what the
# two numbers mean: the VAE's bits are an average (its KL), the VQ-VAE's a
# hard budget: every image gets exactly D log2 K bits.
#
# ## 5. A prior over codes, and its samples
#
# To *generate*, we need p(k_1, ..., k_D).  During training the VQ-VAE
# assumes a uniform prior (its KL is the constant D log K, so it drops out
# of the loss).  The simplest honest prior fitted afterwards: count, slot by
# slot, how often each code is chosen on the training digits, and draw each
# slot independently from its own frequencies (`VQVAE.fit_prior`).
#
# Its samples are poorer than the model's reconstructions, and the reason
# is measurable: the slots of a real digit are not independent -- the code
# in one slot tells something about the code in the next.
#
# First the dependence itself.  We compare two priors on the *test* digits'
# codes: the independent one, and the next simplest, a chain
# p(k_j | k_{j-1}) fitted from counts of neighbouring pairs.  With K = 512
# most pairs are never seen in training, so each row of counts gets alpha
# pseudo-counts spread as the independent prior p_j spreads them:
#
#     p(k_j = b | k_{j-1} = a) = (count(a, b) + alpha p_j(b)) / (count(a) + alpha)
#
# (a row seen rarely falls back on the independent prior; alpha -> infinity
# is the independent prior itself).  alpha is chosen from 1, 10, ..., 10^5
# on the last tenth of the training codes, counted from the rest.  If the
# chain assigns the test codes a higher likelihood, the slots depend on
# each other, and the independent prior throws that away.  (With D slots
# the chain has D - 1 links; the gain is printed per link.)
#
# Then the samples.  We need a judge that is not the VQ-VAE: the Gaussian
# VAE trained above, whose -ELBO of an image says how unlike a digit it
# finds it.  It scores three sets of decoded images (decoder means, as grey
# values): the training digits' own codes (the reconstructions); the same
# codes with each slot's column shuffled across the digits, which
# keeps every slot's frequencies and breaks only how the slots go together;
# and samples from the independent prior.

# %%
train_codes = np.concatenate([vq.encode(data.x_train[i:i + 1000]) for i in range(0, len(data.x_train), 1000)])
test_codes = vq.encode(x_test)
vq.fit_prior(data.x_train)
independent = float(vq.log_prior(test_codes).mean())

prior = vq.prior()                      # (D, K), the independent prior p_j


def chain_log_likelihood(fit_codes, codes, alpha):
    """Mean log p(codes) under the chain counted from fit_codes (nats per image)."""
    logp = np.log(prior[0][codes[:, 0]])
    for j in range(1, D):
        pairs = np.zeros((K, K))        # pairs[a, b]: slot j-1 had code a and slot j code b
        np.add.at(pairs, (fit_codes[:, j - 1], fit_codes[:, j]), 1)
        conditional = (pairs + alpha * prior[j][None, :]) / (pairs.sum(axis=1, keepdims=True) + alpha)
        logp = logp + np.log(conditional[codes[:, j - 1], codes[:, j]])
    return float(logp.mean())


split = len(train_codes) * 9 // 10
alphas = [10.0 ** e for e in range(6)]
alpha = max(alphas, key=lambda a: chain_log_likelihood(train_codes[:split], train_codes[split:], a))
chain = chain_log_likelihood(train_codes, test_codes, alpha)
print(f"alpha chosen on held-out training codes: {alpha:g}")
print(f"log-likelihood of the test codes: independent slots {independent:.2f} nats, "
      f"chain over slots {chain:.2f} nats, uniform {-D * math.log(K):.2f} nats")
claim("the fitted independent prior beats the uniform one on the test codes",
      independent > -D * math.log(K), f"{independent:.2f} vs {-D * math.log(K):.2f} nats")
gain_per_link = (chain - independent) / max(D - 1, 1)
print(f"the chain's gain: {gain_per_link:.2f} nats per link ({D - 1} link(s))")
claim("a chain p(k_j | k_j-1) gives the test codes a higher likelihood than independent slots "
      "(by over 0.05 nats per link, with alpha below 10^5): the slots depend on each other",
      D > 1 and gain_per_link > 0.05 and alpha < 1e5,
      f"{chain:.2f} vs {independent:.2f} nats per image, {gain_per_link:.2f} per link, alpha {alpha:g}")

judge_rng = np.random.default_rng(SEED + 2)
shuffled = np.stack([judge_rng.permutation(train_codes[:, j]) for j in range(D)], axis=1)
prior_codes = vq.sample_codes(len(train_codes), judge_rng)
judge_eps = judge_rng.standard_normal((len(train_codes), vae.latent_dim)).astype(np.float32)


def judged(codes):
    """The Gaussian VAE's mean -ELBO of the decoded codes (nats per image)."""
    total = 0.0
    for i in range(0, len(codes), 1000):
        recon, kl = vae.terms(vq.decode(codes[i:i + 1000]), judge_eps[i:i + 1000])
        total += float((recon + kl).sum())
    return total / len(codes)


judge_real, judge_shuffled, judge_prior = judged(train_codes), judged(shuffled), judged(prior_codes)
print(f"the Gaussian VAE's -ELBO of decoded codes: test digits' own {judge_real:.2f}, slots shuffled "
      f"{judge_shuffled:.2f}, independent prior {judge_prior:.2f} nats")
claim("its samples are poor: the Gaussian VAE scores prior samples worse than reconstructions (by over 1 nat)",
      judge_prior > judge_real + 1, f"-ELBO {judge_prior:.2f} vs {judge_real:.2f} nats")
claim("and shuffling the slots of real codes also costs over half a nat: the damage is in how the slots combine",
      judge_shuffled > judge_real + 0.5, f"-ELBO {judge_shuffled:.2f} vs {judge_real:.2f} nats")

samples = vq.decode(vq.sample_codes(20, np.random.default_rng(SEED + 3)))
fig, ax = plt.subplots(figsize=(8, 2.2))
show(ax, samples, 10, "VQ-VAE samples, each slot's code drawn independently")
savefig(fig, "15_prior_samples.png")

# %% [markdown]
# Look at the samples: some are clean digits, others may mix the parts of
# two: each slot's code is plausible on its own, the combination need not
# be (the judge's numbers above measure it).  The paper's
# answer is an autoregressive prior, a PixelCNN over the grid of codes:
# p(k) = prod_j p(k_j | k_1, ..., k_{j-1}), each factor a neural network.
# The chain above is the smallest step in that direction (one previous
# slot, a table instead of a network), and already fits the test codes
# better.
#
# ## What we learned
#
# * Quantization has no useful derivative; the straight-through estimator
#   is the exact gradient of the surrogate z_e + sg[z_q - z_e], and the two
#   loss terms with stop-gradients keep codes and encoder outputs together.
# * Codes die, and few come back by themselves; restarting them on encoder
#   outputs brings them back.  A codebook learned by Adam, without
#   restarts, falls behind the encoder outputs: the running means keep up.
# * A VQ-VAE's rate is D log2 K bits by construction; a Gaussian VAE's is
#   its KL.
# * Sampling needs a prior over codes that knows how the slots depend on
#   each other; independent slots do not.
#
# From the command line: `numpy-vae train --model vqvae` (perplexity and
# dead codes per epoch in metrics.jsonl).

# %%
done()

# %% [markdown]
# ## Your turn: exercises
#
# Derive it yourself; the package's finite-difference checker grades your attempt
# (see `lessons/exercises/README.md`):
#
# - exercise 11: `lessons/exercises/11_vq_straight_through.py`, checked by `numpy-vae exercise 11`
