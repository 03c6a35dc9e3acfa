# %% [markdown]
# # Lesson 10 -- Balancing the two terms: beta, posterior collapse, warm-up, learned variances
#
# The training loss is
#
#     loss = reconstruction + beta * KL
#
# with beta = 1 for the true ELBO (`beta=` of `VAE.loss_and_grads`,
# numpy_vae/models.py).  Lesson 07 showed the two extremes.  This lesson
# turns the dial in between and measures what happens, one latent dimension
# at a time.
#
# **Active dimensions.**  For latent dimension j, average its KL over the
# test digits:
#
#     KL_j = mean over x of 1/2 (mu_j(x)^2 + sigma_j(x)^2 - 1 - log sigma_j(x)^2)
#
# A dimension the encoder ignores outputs mu_j = 0, sigma_j = 1 for every
# digit -- exactly the prior -- and has KL_j = 0: it carries no information
# and the decoder learns to ignore it.  We call dimension j *active* when
# KL_j > 0.01 nats.  When many dimensions, or all, go inactive, that is
# **posterior collapse**: q(z | x) = p(z), the code says nothing about x.
#
# Then two remedies and one trap:
#
# * **KL warm-up**: start training with beta = 0 and raise it linearly to 1,
#   so the decoder learns to use z before the KL term starts charging for it.
# * **A Gaussian decoder that learns its variance per pixel**
#   (`likelihood="gaussian_learned"`, `LearnedGaussianLikelihood` in
#   numpy_vae/likelihoods.py): principled, but MNIST's always-black border
#   pixels let it cheat.

# %%
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent if "__file__" in globals() else Path.cwd()
sys.path.insert(0, str(HERE if (HERE / "_common.py").exists() else HERE / "lessons"))

import matplotlib.pyplot as plt
import numpy as np
from _common import done, evaluate, load_digits, savefig, setup, show, train

from numpy_vae import VAE

settings = setup("Lesson 10: the beta balance")
data = load_digits(settings, n_train_quick=3000)
epochs = settings.pick(2, 8)
betas = [0.5, 1.0, 2.0, 4.0, 8.0]


def kl_per_dimension(model, x):
    """KL_j averaged over x: (latent_dim,) nats."""
    mu, logvar = model.encode(x)
    return (0.5 * (mu ** 2 + np.exp(logvar) - 1 - logvar)).mean(axis=0)


# %% [markdown]
# ## A beta sweep
#
# Five 784-400-20 VAEs, identical but for beta.  For each: the test
# reconstruction error, the KL, the number of active dimensions, and the
# test ELBO (always computed with beta = 1, the honest bound).

# %%
sweep = {}
for beta in betas:
    print(f"beta = {beta}:")
    model = VAE(latent_dim=20, seed=0)
    history = train(model, data.x_train, epochs=epochs, beta=beta, quiet=settings.quick)
    sweep[beta] = (model, evaluate(model, data.x_test_bin), kl_per_dimension(model, data.x_test), history)

print(f"\n{'beta':>5s} {'recon':>8s} {'KL':>7s} {'active dims':>12s} {'test ELBO':>10s}")
for beta, (model, result, kl_j, _) in sweep.items():
    active = int((kl_j > 0.01).sum())
    print(f"{beta:5.1f} {result['recon']:8.2f} {result['kl']:7.2f} {active:8d}/20 {result['elbo']:10.2f}")

# %% [markdown]
# Left: each model's 20 per-dimension KLs, sorted from largest to smallest;
# the dashed line is the 0.01-nat threshold.  With beta = 0.5 nearly every
# dimension carries information; as beta grows the KL price of information
# rises, dimensions drop below the line one after another, and the ones that
# stay active carry less each.  Right: reconstructions get blurrier as beta
# grows -- less information gets through z.  In the table, the best test
# ELBO belongs to beta = 1, the only setting whose training loss *is* the
# (negative) ELBO.

# %%
fig, (ax_l, ax_r) = plt.subplots(1, 2, figsize=(13, 4.8), gridspec_kw={"width_ratios": [1, 1.2]})
for beta, (_, _, kl_j, _) in sweep.items():
    ax_l.plot(np.arange(1, 21), np.sort(kl_j)[::-1], "o-", ms=3,
              label=f"beta = {beta}: {int((kl_j > 0.01).sum())} active")
ax_l.axhline(0.01, color="k", ls="--", lw=1)
ax_l.set_yscale("log")
ax_l.set_ylim(1e-4, None)
ax_l.set_xlabel("latent dimension, sorted by its KL")
ax_l.set_ylabel("KL_j averaged over the test set (nats)")
ax_l.set_xticks(range(1, 21, 2))
ax_l.legend(fontsize=8)
ax_l.set_title("per-dimension KL: dimensions switch off as beta grows", fontsize=10)
x = data.x_test[:10]
show(ax_r, np.vstack([x] + [m.reconstruct(x) for m, _, _, _ in sweep.values()]), 10,
     "reconstructions", row_labels=["test"] + [f"beta {b}" for b in betas])
savefig(fig, "10_beta_sweep.png")

# %% [markdown]
# ## KL warm-up
#
# Early in training the decoder is poor, so information in z buys little
# reconstruction -- but the KL charges for it from the first step.  The
# cheapest move for the encoder is then to send nothing (mu = 0, sigma = 1)
# in some dimensions, and once the decoder has learned to ignore them they
# never come back.  Warm-up makes information free at first:
#
#     beta(step) = min(1, step / warmup_steps)
#
# (the same schedule `numpy-vae train --warmup-epochs` uses).  We compare
# beta = 1 from the start with a warm-up over the first half of training.

# %%
steps_per_epoch = len(data.x_train) // 100
warmup_steps = max(1, epochs * steps_per_epoch // 2)
warm = VAE(latent_dim=20, seed=0)
print(f"warm-up over {warmup_steps} steps:")
history_warm = train(warm, data.x_train, epochs=epochs, beta=lambda step: min(1.0, step / warmup_steps),
                     quiet=settings.quick)
cold, _, _, history_cold = sweep[1.0]  # the beta = 1 model of the sweep

for name, model in (("beta = 1 throughout", cold), ("warm-up", warm)):
    kl_j = kl_per_dimension(model, data.x_test)
    result = evaluate(model, data.x_test_bin)
    print(f"{name:20s}: test ELBO {result['elbo']:8.2f}, KL {result['kl']:6.2f}, "
          f"active dimensions {int((kl_j > 0.01).sum())}/20")

fig, ax = plt.subplots(figsize=(8, 4.2))
k = max(5, len(history_warm["kl"]) // 60)
smooth = np.ones(k) / k
for name, hist, color in (("beta = 1 throughout", history_cold, "C0"), ("warm-up", history_warm, "C1")):
    ax.plot(np.convolve(hist["kl"], smooth, mode="valid"), color=color, label=f"{name}: KL")
ax.plot(np.array(history_warm["beta"]) * ax.get_ylim()[1], "k:", lw=1, label="beta of the warm-up (scaled to the axis)")
ax.set_xlabel("training step")
ax.set_ylabel("KL of the training batches (nats)")
ax.set_title("warm-up: the KL overshoots while beta is small, then settles", fontsize=10)
ax.legend(fontsize=8)
savefig(fig, "10_warmup.png")

# %% [markdown]
# While beta is small, information in z is nearly free and the KL shoots up;
# as beta reaches 1 the encoder gives back what is not worth its price, and
# both runs end at about the same KL.  For this model there is little to
# rescue: with beta = 1 all 20 dimensions stay active anyway, and the two
# test ELBOs end close together.  Warm-up earns its keep where collapse
# does happen -- powerful decoders that can model x without z (autoregressive
# ones, for text or images), where without it z is abandoned early and for good.

# %% [markdown]
# ## A Gaussian decoder that learns its variance
#
# Instead of fixing the variance (lesson 05), let the decoder output a mean
# m_d and a log-variance s_d for every pixel:
#
#     -log p(x | z) = 1/2 sum_d [ (x_d - m_d)^2 exp(-s_d) + s_d + log(2 pi) ]
#
# For each pixel the best s_d is the log of the mean squared error the
# decoder makes there: uncertain pixels get a wide Gaussian, predictable
# pixels a narrow one.  The balance with the KL is now learned, not chosen.
#
# Now the trap.  Some of MNIST's border pixels are 0 in *every* training
# image.  The decoder learns to predict them almost exactly (m_d close to 0),
# so the best variance there is almost 0: s_d heads for minus infinity,
# limited only by how exactly m_d hits 0, and each such pixel adds
# -(s_d + log 2 pi) / 2 nats, more and more, to the log-likelihood.  Milder,
# the same happens to background pixels that are black in almost every
# image.  The NLL (a density over continuous pixel values, so it can be
# negative) keeps falling without the model getting any better at digits.
#
# We train on the grey levels (no binarization: this is a density on [0, 1])
# and watch the learned log-variances of the always-black pixels against all
# the others after every epoch.

# %%
always_black = data.x_train.max(axis=0) == 0
print(f"{int(always_black.sum())} of 784 pixels are 0 in every training image")
gauss = VAE(latent_dim=20, likelihood="gaussian_learned", seed=0)
watch = {"epoch": [], "nll": [], "s_black": [], "s_other": []}


def mean_log_variance(model, x):
    """The decoder's log-variance s for each pixel, averaged over x at z = mu(x): (784,)."""
    mu, _ = model.encode(x)
    return model.decoder.forward(mu)[:, 784:].mean(axis=0)


def after_epoch(epoch):
    s = mean_log_variance(gauss, data.x_test)
    nll = -evaluate(gauss, data.x_test)["elbo"]
    watch["epoch"].append(epoch)
    watch["nll"].append(nll)
    watch["s_black"].append(float(s[always_black].mean()))
    watch["s_other"].append(float(s[~always_black].mean()))
    print(f"  epoch {epoch}: test -ELBO {nll:9.1f} nats; mean log-variance: always-black pixels "
          f"{watch['s_black'][-1]:6.2f}, others {watch['s_other'][-1]:6.2f}")


train(gauss, data.x_train, epochs=epochs, binarize=False, after_epoch=after_epoch, quiet=True)
s = mean_log_variance(gauss, data.x_test)
print(f"smallest learned standard deviation: {np.exp(s.min() / 2):.2e} (pixel {int(s.argmin())}); "
      f"a pixel at the centre: {np.exp(s[14 * 28 + 14] / 2):.2e}")
free = float(-0.5 * (s[always_black] + np.log(2 * np.pi)).sum())
print(f"the {int(always_black.sum())} always-black pixels alone add about {free:.0f} nats to log p(x|z)")

fig, axes = plt.subplots(1, 3, figsize=(16, 4.4), layout="constrained")
im = axes[0].imshow(s.reshape(28, 28), cmap="magma")
fig.colorbar(im, ax=axes[0], label="learned log-variance s_d")
axes[0].set_xticks([])
axes[0].set_yticks([])
axes[0].set_title("learned log-variance per pixel\n(averaged over test digits)", fontsize=10)
axes[1].plot(watch["epoch"], watch["s_black"], "o-", label="pixels black in every training image")
axes[1].plot(watch["epoch"], watch["s_other"], "s-", label="all other pixels")
axes[1].set_xlabel("epoch")
axes[1].set_ylabel("mean learned log-variance")
axes[1].legend(fontsize=8)
axes[1].set_title("variances shrink, the always-black pixels' most", fontsize=10)
axes[2].plot(watch["epoch"], watch["nll"], "o-", color="C3")
axes[2].set_xlabel("epoch")
for ax in axes[1:]:
    ax.set_xticks(watch["epoch"])
axes[2].set_ylabel("test -ELBO (nats, continuous density)")
axes[2].set_title("the NLL is far below zero and keeps falling", fontsize=10)
savefig(fig, "10_learned_variance.png")

# %% [markdown]
# The remedies are to put a floor under the variance (clip s_d, or add a
# small constant to exp(s_d)), to share one variance across pixels, or to
# add uniform noise to the pixel values ("dequantization") so that no pixel
# is exactly constant.  For MNIST the Bernoulli likelihood avoids the issue
# altogether: a probability cannot exceed 1, so a perfectly predicted pixel
# costs 0 nats, not minus infinity.
#
# ## What we learned
#
# * beta trades reconstruction against KL: raising it switches latent
#   dimensions off (KL_j < 0.01 nats) and blurs the reconstructions.
# * Warm-up lets the decoder learn to use z before the KL charges for it;
#   for this MLP VAE at beta = 1 it changes little.
# * A learned per-pixel variance is elegant and exploitable: on pixels that
#   never vary, the likelihood is unbounded, and its NLL cannot be compared
#   with a Bernoulli model's.

# %%
done()
