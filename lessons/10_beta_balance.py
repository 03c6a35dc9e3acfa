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
# KL_j > 0.01 nats (as lessons 05 and 09 do).  Lesson 13 counts differently,
# with Burda et al.'s measure: a unit is active when the variance over the
# test images of its posterior mean, Var_x(mu_j(x)), exceeds 0.01 -- the
# same number for a different quantity (a variance of means, not a KL in
# nats), so the two counts need not agree on the same model.  When many dimensions, or all, go inactive, that is
# **posterior collapse**: q(z | x) = p(z), the code says nothing about x.
#
# Then two remedies and one trap:
#
# * **KL warm-up**: start training with beta = 0 and raise it linearly to 1,
#   so the decoder learns to use z before the KL term starts charging for it.
# * **A Gaussian decoder that learns its variance per pixel**
#   (`likelihood="gaussian_learned"`, `LearnedGaussianLikelihood` in
#   numpy_vae/likelihoods.py): principled, but MNIST's always-black border
#   pixels let it cheat -- which is why the package clamps its log-variance.
#
# In a notebook, run  %env NUMPY_VAE_QUICK=1  before this cell for quick mode.
# Quick mode trains every model on the first 5,000 MNIST images for 3 epochs
# with the learning rate 3e-3; full mode on all 60,000 for 4 epochs with 1e-3.

# %%
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent if "__file__" in globals() else Path.cwd()
sys.path.insert(0, str(HERE if (HERE / "_common.py").exists() else HERE / "lessons"))

import matplotlib.pyplot as plt
import numpy as np
from _common import claim, done, evaluate, load_digits, savefig, setup, show, train

from numpy_vae import VAE

settings = setup("Lesson 10: the beta balance")
SEED = settings.seed  # every random draw below derives from it (--seed N, NUMPY_VAE_SEED=N)
data = load_digits(settings, n_train_quick=5000)
epochs = settings.pick(3, 4)
lr = settings.pick(3e-3, 1e-3)
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
    model = VAE(latent_dim=20, seed=SEED)
    history = train(model, data.x_train, epochs=epochs, lr=lr, beta=beta, quiet=settings.quick)
    sweep[beta] = (model, evaluate(model, data.x_test_bin), kl_per_dimension(model, data.x_test), history)

print(f"\n{'beta':>5s} {'recon':>8s} {'KL':>7s} {'active dims':>12s} {'test ELBO':>10s}")
for beta, (model, result, kl_j, _) in sweep.items():
    active = int((kl_j > 0.01).sum())
    print(f"{beta:5.1f} {result['recon']:8.2f} {result['kl']:7.2f} {active:8d}/20 {result['elbo']:10.2f}")
recons = np.array([sweep[b][1]["recon"] for b in betas])
kls = np.array([sweep[b][1]["kl"] for b in betas])
actives = np.array([int((sweep[b][2] > 0.01).sum()) for b in betas])
elbos = np.array([sweep[b][1]["elbo"] for b in betas])
for beta in betas:
    print(f"beta {beta}: KL_j sorted, largest first: " + " ".join(f"{v:.3f}" for v in np.sort(sweep[beta][2])[::-1]))

# %% [markdown]
# Left: each model's 20 per-dimension KLs, sorted from largest to smallest;
# the dashed line is the 0.01-nat threshold.  With beta = 0.5 nearly every
# dimension carries information.  As beta grows the KL price of information
# rises and every dimension carries less: rank for rank (largest against
# largest, ..., weakest against weakest), each dimension at beta = 8
# carries less than two thirds of its counterpart at beta = 0.5, most far
# less, and the weakest one less than a tenth.  The weakest dimensions head
# for the 0.01 line; in quick mode's short runs (150 steps) they reach it
# only at the largest beta, and whether one has crossed it by then depends
# on the seed, so the active counts in the table are often all 20.  Full
# mode's longer runs take several across: fewer active dimensions at
# beta = 8 than at beta = 0.5.  The total KL falls at every step of beta.
# Right: reconstructions get blurrier as beta grows -- less information
# gets through z, and the reconstruction term rises at every step.  In the
# table, the test ELBO gets worse at every step of beta above 1, the only
# setting whose training loss *is* the (negative) ELBO; beta = 0.5 ends
# close to beta = 1 (within 5 nats), and in short runs can even come out a
# little ahead: these models are far from converged, and a smaller KL price
# lets the encoder learn faster at first.

# %%
profiles = {b: np.sort(sweep[b][2])[::-1] for b in betas}  # per-dimension KLs, largest first
rank_ratio = profiles[8.0] / profiles[0.5]
claim("with beta = 0.5 nearly every dimension is active (18 or more of 20)", actives[0] >= 18,
      f"{actives[0]}/20")
claim("rank for rank, every dimension at beta = 8 carries less than two thirds of the KL of its counterpart at beta = 0.5",
      np.all(rank_ratio < 2 / 3), f"largest ratio {rank_ratio.max():.2f}")
claim("the weakest dimension at beta = 8 carries less than a tenth of the weakest at beta = 0.5",
      profiles[8.0][-1] < 0.1 * profiles[0.5][-1],
      f"{profiles[8.0][-1]:.4f} vs {profiles[0.5][-1]:.4f} nats")
if not settings.quick:
    claim("full mode: fewer active dimensions at beta = 8 than at beta = 0.5", actives[-1] < actives[0],
          f"active: {actives.tolist()}")
claim("the KL falls at every step of beta", np.all(np.diff(kls) < 0), ", ".join(f"{v:.2f}" for v in kls))
claim("the reconstruction term rises at every step of beta", np.all(np.diff(recons) > 0),
      ", ".join(f"{v:.2f}" for v in recons))
claim("the test ELBO gets worse at every step of beta above 1", np.all(np.diff(elbos[1:]) < 0),
      ", ".join(f"beta {b}: {e:.2f}" for b, e in zip(betas, elbos)))
claim("beta = 0.5 ends within 5 nats of beta = 1", abs(elbos[0] - elbos[1]) < 5,
      f"{elbos[0]:.2f} vs {elbos[1]:.2f}")

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
# (the schedule of `numpy-vae train --kl-warmup EPOCHS`, which counts the
# warm-up in epochs: `kl_weight` in numpy_vae/train.py).  We compare
# beta = 1 from the start with a warm-up over the first half of training.

# %%
steps_per_epoch = len(data.x_train) // 100
warmup_steps = max(1, epochs * steps_per_epoch // 2)
warm = VAE(latent_dim=20, seed=SEED)
print(f"warm-up over {warmup_steps} steps:")
history_warm = train(warm, data.x_train, epochs=epochs, lr=lr, beta=lambda step: min(1.0, step / warmup_steps),
                     quiet=settings.quick)
cold, _, _, history_cold = sweep[1.0]  # the beta = 1 model of the sweep

ends = {}
for name, model in (("beta = 1 throughout", cold), ("warm-up", warm)):
    kl_j = kl_per_dimension(model, data.x_test)
    result = evaluate(model, data.x_test_bin)
    ends[name] = dict(elbo=result["elbo"], kl=result["kl"], active=int((kl_j > 0.01).sum()))
    print(f"{name:20s}: test ELBO {result['elbo']:8.2f}, KL {result['kl']:6.2f}, "
          f"active dimensions {ends[name]['active']}/20")

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
# While beta is small, information in z is nearly free and the KL shoots up
# (its peak during the warm-up is above where it ends); as beta reaches 1
# the encoder gives back what is not worth its price, and both runs end at
# about the same test KL (within 20%).  For this model there is little to
# rescue: with beta = 1 nearly all dimensions (18 or more of 20) stay active
# anyway, and the two test ELBOs end close together (within 5 nats).
# Warm-up earns its keep where collapse does happen -- powerful decoders
# that can model x without z (autoregressive ones, for text or images),
# where without it z is abandoned early and for good.

# %%
kl_warm = np.convolve(history_warm["kl"], smooth, mode="valid")
peak, last = float(kl_warm.max()), float(kl_warm[-1])
cold_end, warm_end = ends["beta = 1 throughout"], ends["warm-up"]
claim("with warm-up the training KL peaks above where it ends", peak > 1.1 * last,
      f"peak {peak:.1f}, end {last:.1f} nats (smoothed over {k} steps)")
claim("both runs end at about the same test KL (within 20%)",
      abs(warm_end["kl"] - cold_end["kl"]) < 0.2 * cold_end["kl"],
      f"{cold_end['kl']:.2f} vs {warm_end['kl']:.2f} nats")
claim("with beta = 1 from the start, 18 or more of the 20 dimensions stay active", cold_end["active"] >= 18,
      f"{cold_end['active']}/20")
claim("the two test ELBOs end within 5 nats of each other", abs(warm_end["elbo"] - cold_end["elbo"]) < 5,
      f"{cold_end['elbo']:.2f} vs {warm_end['elbo']:.2f}")

# %% [markdown]
# ## A Gaussian decoder that learns its variance
#
# Instead of fixing the variance (lesson 05), let the decoder output a mean
# m_d and a log-variance s_d for every pixel:
#
#     -log p(x | z) = 1/2 sum_d [ (x_d - m_d)^2 exp(-s_d) + s_d + log(2 pi) ]
#
# For each pixel the best s_d is the log of the squared error the decoder
# makes there: setting the derivative 1/2 (1 - (x_d - m_d)^2 exp(-s_d)) to
# zero gives s_d = log (x_d - m_d)^2.  Uncertain pixels get a wide Gaussian,
# predictable pixels a narrow one.  The balance with the KL is now learned,
# not chosen.
#
# Now the trap.  Some of MNIST's border pixels are 0 in *every* training
# image.  A decoder that predicts such a pixel exactly (m_d = 0 = x_d) pays
#
#     1/2 (0 * exp(-s_d) + s_d + log(2 pi))  ->  minus infinity as s_d -> minus infinity:
#
# this is a *density*, and a density on a value that never varies can be
# made as tall as we like.  Nothing in the loss stops s_d; only how exactly
# m_d hits 0 does (the best s_d is log m_d^2).  The NLL -- a density over
# continuous pixel values, so it can be negative -- can fall without bound
# without the model getting any better at digits.
#
# **The clamp.**  So the package limits the log-variance:
# `LearnedGaussianLikelihood.PIXEL_LOGVAR_RANGE = (-10, 10)` in
# numpy_vae/likelihoods.py.  Its `forward` clips s to [-10, 10] before using
# it (sigma between 0.0067 and 148), and its `backward` sends no gradient to
# s where s was outside the range, like the `Clip` layer of lesson 07.  Each
# pixel's NLL is then at least (-10 + log 2 pi) / 2 = -4.08 nats, so the
# density stays bounded and the training well posed.
#
# First an ordinary training run with the clamp, on the grey levels (no
# binarization: this is a density on [0, 1]), watching the learned
# log-variances of the always-black pixels against all the others after
# every epoch.

# %%
always_black = data.x_train.max(axis=0) == 0
print(f"{int(always_black.sum())} of 784 pixels are 0 in every training image")
gauss = VAE(latent_dim=20, likelihood="gaussian_learned", seed=SEED)
print(f"the package's clamp on the decoder's log-variance: {gauss.likelihood.PIXEL_LOGVAR_RANGE}")
watch = {"epoch": [], "nll": [], "s_black": [], "s_other": []}


def log_variances(model, x):
    """The decoder's log-variance s for each pixel at z = mu(x), clamped as the likelihood uses it: (n, 784)."""
    mu, _ = model.encode(x)
    s = model.decoder.forward(mu)[:, 784:]
    return np.clip(s, *model.likelihood.PIXEL_LOGVAR_RANGE)


def after_epoch(epoch):
    s = log_variances(gauss, data.x_test).mean(axis=0)
    nll = -evaluate(gauss, data.x_test)["elbo"]
    watch["epoch"].append(epoch)
    watch["nll"].append(nll)
    watch["s_black"].append(float(s[always_black].mean()))
    watch["s_other"].append(float(s[~always_black].mean()))
    print(f"  epoch {epoch}: test -ELBO {nll:9.1f} nats; mean log-variance: always-black pixels "
          f"{watch['s_black'][-1]:6.2f}, others {watch['s_other'][-1]:6.2f}")


train(gauss, data.x_train, epochs=epochs, lr=lr, binarize=False, after_epoch=after_epoch, quiet=True)
s = log_variances(gauss, data.x_test).mean(axis=0)
print(f"smallest learned standard deviation: {np.exp(s.min() / 2):.2e} (pixel {int(s.argmin())}); "
      f"a pixel at the centre: {np.exp(s[14 * 28 + 14] / 2):.2e}")
free = float(-0.5 * (s[always_black] + np.log(2 * np.pi)).sum())
n_black = int(always_black.sum())
narrowest = np.argsort(s)[:n_black]  # as many pixels as there are always-black ones
black_share = float(always_black[narrowest].mean())
others_narrow = narrowest[~always_black[narrowest]]
ink_share = (data.x_train[:, others_narrow] > 0).mean(axis=0)  # how often each is inked in training
print(f"the {n_black} narrowest Gaussians: {black_share:.0%} on always-black pixels (which are "
      f"{n_black / 784:.0%} of all pixels); the others are inked in a median {np.median(ink_share):.2%} "
      f"of the training images")
print(f"the {int(always_black.sum())} always-black pixels alone add about {free:.0f} nats to log p(x|z)")

# %% [markdown]
# The always-black pixels get narrow Gaussians: their mean log-variance is
# lower than the other pixels' by more than 1.5, and although they are a
# small share of the pixels (printed above), at least 40% of the narrowest
# Gaussians -- take as many as there are always-black pixels -- are theirs.
# The rest of the narrowest are mostly pixels that are black in nearly
# every training image (the median one is inked in under 1% of them): the
# decoder hardly tells "always" from "almost always".  Their log-variance
# falls during training, and the test NLL is far below zero.  How far it
# gets depends on how long we train: in quick mode's short run the
# decoder's means for those pixels are not exactly 0 (every Adam step
# jiggles them a little), so it levels off near log m_d^2, above the clamp
# (above -9.5); full mode's longer run takes it down to the clamp itself
# (below -9.9).

# %%
s_black, s_other = watch["s_black"][-1], watch["s_other"][-1]
claim("the always-black pixels' mean log-variance is lower than the other pixels' by more than 1.5",
      s_black < s_other - 1.5, f"{s_black:.2f} vs {s_other:.2f}")
claim("at least 40% of the narrowest Gaussians (as many as there are always-black pixels) are on always-black pixels",
      black_share >= 0.4, f"{black_share:.0%} of {n_black}")
claim("the other narrowest ones are on pixels inked in a median of under 1% of the training images",
      np.median(ink_share) < 0.01, f"median {np.median(ink_share):.2%}")
claim("their log-variance falls during training (last epoch below the first)",
      watch["s_black"][-1] < watch["s_black"][0], f"{watch['s_black'][0]:.2f} -> {watch['s_black'][-1]:.2f}")
claim("the test NLL (a continuous density) is far below zero (< -100 nats)", watch["nll"][-1] < -100,
      f"{watch['nll'][-1]:.1f} nats")
if settings.quick:
    claim("quick mode: the always-black pixels' log-variance ends above the clamp (above -9.5)",
          watch["s_black"][-1] > -9.5, f"{watch['s_black'][-1]:.2f}")
else:
    claim("full mode: the always-black pixels' log-variance ends at the clamp (below -9.9)",
          watch["s_black"][-1] < -9.9, f"{watch['s_black'][-1]:.2f}")

# %% [markdown]
# ## With and without the clamp, where it matters
#
# Where training is heading, the decoder predicts the always-black pixels
# exactly.  The architecture can do that exactly: a mean m_d = W_d . h + b_d
# is 0 for every input when its weights W_d and bias b_d are 0.  So we take
# two copies of the trained model, set those weights to 0 (and they stay 0:
# with x_d = m_d = 0 their gradient (m_d - x_d) exp(-s_d) is exactly 0), and
# train both for 300 more steps (30 passes over 1,000 images): one with the
# package's clamp, one with the clamp removed (`PIXEL_LOGVAR_RANGE = (-inf, inf)`
# on that model's likelihood).  Every 10 steps we measure the mean
# log-variance of the always-black pixels and the test NLL on 200 digits --
# separately for the digits that have some ink on an always-black pixel,
# if any do (a pixel black in every *training* image can still be inked in
# a test image), and for the others.

# %%
def copy_of(model):
    twin = VAE(latent_dim=model.latent_dim, likelihood="gaussian_learned", seed=SEED)
    for name, value in model.params.items():
        twin.params[name][...] = value
    return twin


out_layer = f"decoder.{len(gauss.hidden_dims)}"  # the decoder's output Linear: W (400, 2 * 784), b (2 * 784,)
x_watch = data.x_test[:200]
inked = (x_watch[:, always_black] > 0).any(axis=1)  # test digits with ink where no training digit has any
print(f"of the 200 test digits, {int(inked.sum())} have ink on an always-black pixel: "
      f"{np.flatnonzero(inked).tolist()} (largest such value {x_watch[:, always_black].max():.3f})")
runs = {}
for name, limits in (("with the clamp [-10, 10]", (-10.0, 10.0)), ("without a clamp", (-np.inf, np.inf))):
    model = copy_of(gauss)
    model.params[f"{out_layer}.W"][:, :784][:, always_black] = 0  # the means of the always-black pixels
    model.params[f"{out_layer}.b"][:784][always_black] = 0
    model.likelihood.PIXEL_LOGVAR_RANGE = limits
    trace = {"step": [], "s_black": [], "nll": [], "nll_inked": []}

    def watch_steps(epoch, model=model, trace=trace):
        with np.errstate(all="ignore"):  # without the clamp, exp(-s) overflows float32 at s < -88.7
            trace["step"].append(10 * epoch)
            trace["s_black"].append(float(log_variances(model, x_watch)[:, always_black].mean()))
            trace["nll"].append(-evaluate(model, x_watch[~inked])["elbo"])
            trace["nll_inked"].append(-evaluate(model, x_watch[inked])["elbo"] if inked.any() else np.nan)

    with np.errstate(all="ignore"):
        train(model, data.x_train[:1000], epochs=30, lr=1e-3, binarize=False, after_epoch=watch_steps, quiet=True)
    runs[name] = trace
    print(f"{name}:")
    for i in range(2, 30, 3):
        print(f"  step {trace['step'][i]:3d}: mean log-variance of the always-black pixels "
              f"{trace['s_black'][i]:8.2f}; test NLL {trace['nll'][i]:10.1f} nats on the {int((~inked).sum())} "
              f"digits without ink there" + (f", {trace['nll_inked'][i]:10.4g} on the inked one(s)" if inked.any() else ""))

clamped, free_run = runs["with the clamp [-10, 10]"], runs["without a clamp"]

# %% [markdown]
# With the clamp, the always-black pixels' log-variance runs down to the
# floor, -10, and stops there (no gradient beyond it); the NLL stays finite.
# Without it, the log-variance falls far past -10 and keeps falling (over
# the last 100 steps it averages more than 5 below the 100 before), and
# the NLL dives below anything the clamped run reaches.  The path is
# erratic -- the log-variance jumps back up now and then, and a run can
# even end in NaN (not a number: exp(-s) overflows float32 once s < -88.7)
# -- and its exact course depends on the machine: a run whose numbers grow
# without bound amplifies every rounding difference of the matrix
# products, so two CPUs (two OpenBLAS kernels) print different numbers.
# What the claims below check is what every run shows.
#
# Then the bill comes.  A Gaussian this narrow is a bet that the pixel is
# exactly 0 in every image, and the test set need not agree.  In quick mode
# one of the 200 test digits has a faint trace of ink, 0.016, on a pixel
# that is black in all 5,000 training images.  That pixel's term
# (x_d - m_d)^2 exp(-s_d) / 2 is 1.2e-4 exp(-s_d) nats: under 3 nats at the
# clamp (s = -10), 3e13 nats at s = -40.  With the clamp the digit fares
# badly anyway -- it is an unusual digit, and its NLL climbs during the
# 300 steps as the model sharpens on its 1,000 training images -- but
# without it, its NLL shoots above a million nats (or NaN), more than
# a hundred times the clamped run's worst, while the other 199 digits'
# NLL is still diving.  The model that looks best on most digits is
# absurdly sure of itself, and one unexpected stroke exposes it.  (In full
# mode the always-black pixels are those black in all 60,000 training
# images; the run prints how many of the 200 test digits have ink on one,
# and the claims about it are checked only when there is such a digit.)

# %%
claim("with the clamp, the always-black pixels' log-variance ends at the floor (between -10 and -9.5)",
      -10 <= clamped["s_black"][-1] < -9.5, f"{clamped['s_black'][-1]:.2f}")
claim("with the clamp, the NLL stays finite throughout", np.all(np.isfinite(clamped["nll"])),
      f"last {clamped['nll'][-1]:.1f} nats")
lowest_free = float(np.nanmin(free_run["s_black"]))
claim("without it, the log-variance falls far past the clamp (below -15)", lowest_free < -15,
      f"lowest mean log-variance {lowest_free:.1f}")
with np.errstate(all="ignore"):
    late, before = np.nanmean(free_run["s_black"][20:]), np.nanmean(free_run["s_black"][10:20])
claim("without it, the log-variance keeps falling (over the last 100 steps it averages more than 5 below the 100 before)",
      late < before - 5, f"{before:.1f} over steps 110-200, {late:.1f} over steps 210-300")
claim("without it, the NLL of the digits without ink there dives below the clamped run's lowest",
      np.nanmin(free_run["nll"]) < min(clamped["nll"]),
      f"{np.nanmin(free_run['nll']):.1f} vs {min(clamped['nll']):.1f} nats")
if settings.quick:
    claim("quick mode: one of the 200 test digits has ink (about 0.016) on an always-black pixel",
          inked.sum() == 1 and abs(x_watch[:, always_black].max() - 0.016) < 0.001,
          f"{int(inked.sum())} digit(s), largest value {x_watch[:, always_black].max():.4f}")
if inked.any():
    worst_clamped = max(clamped["nll_inked"])
    worst_free = np.nanmax(free_run["nll_inked"]) if not np.all(np.isnan(free_run["nll_inked"])) else np.inf
    claim("with the clamp, the inked digit's NLL climbs during the 300 steps (ends above where it starts)",
          clamped["nll_inked"][-1] > clamped["nll_inked"][0],
          f"{clamped['nll_inked'][0]:.1f} -> {clamped['nll_inked'][-1]:.1f} nats")
    claim("without it, the inked digit's NLL shoots above a million nats (or NaN)",
          worst_free > 1e6 or np.isnan(free_run["nll_inked"]).any(), f"highest {worst_free:.4g} nats")
    claim("that is more than a hundred times the clamped run's worst for that digit",
          worst_free > 100 * max(worst_clamped, 1.0), f"{worst_free:.4g} vs {worst_clamped:.1f} nats")

# %%
fig, axes = plt.subplots(1, 4, figsize=(20, 4.4), layout="constrained")
im = axes[0].imshow(s.reshape(28, 28), cmap="magma")
fig.colorbar(im, ax=axes[0], label="learned log-variance s_d")
axes[0].set_xticks([])
axes[0].set_yticks([])
axes[0].set_title("learned log-variance per pixel\n(averaged over test digits)", fontsize=10)
axes[1].plot(watch["epoch"], watch["s_black"], "o-", label="pixels black in every training image")
axes[1].plot(watch["epoch"], watch["s_other"], "s-", label="all other pixels")
axes[1].set_xlabel("epoch")
axes[1].set_ylabel("mean learned log-variance")
axes[1].set_xticks(watch["epoch"])
axes[1].legend(fontsize=8)
axes[1].set_title("training with the clamp: the always-black\npixels get narrow Gaussians", fontsize=10)
for i, (name, trace) in enumerate(runs.items()):
    axes[2].plot(trace["step"], trace["s_black"], "o-", ms=3, color=f"C{i}", label=name)
    axes[3].plot(trace["step"], trace["nll"], "o-", ms=3, color=f"C{i}", label=f"{name}: digits without ink there")
    if inked.any():
        axes[3].plot(trace["step"], trace["nll_inked"], "x--", ms=4, color=f"C{i}", label=f"{name}: the inked digit(s)")
axes[2].axhline(-10, color="k", ls=":", lw=1)
axes[2].set_xlabel("steps after pinning the black pixels' means at 0")
axes[2].set_ylabel("mean log-variance, always-black pixels")
axes[2].set_title("the clamp stops the log-variance at -10", fontsize=10)
axes[2].legend(fontsize=8)
axes[3].set_yscale("symlog")
axes[3].set_xlabel("steps after pinning the black pixels' means at 0")
axes[3].set_ylabel("test NLL (nats; missing points are NaN)")
axes[3].set_title("without the clamp: most digits dive,\na digit inked where training never was explodes", fontsize=10)
axes[3].legend(fontsize=8)
savefig(fig, "10_learned_variance.png")

# %% [markdown]
# The clamp is one remedy: a floor under the variance.  Others: add a small
# constant to exp(s_d), share one variance across pixels, or add uniform
# noise to the pixel values ("dequantization") so that no pixel is exactly
# constant.  For MNIST the Bernoulli likelihood avoids the issue
# altogether: a probability cannot exceed 1, so a perfectly predicted pixel
# costs 0 nats, not minus infinity.
#
# ## What we learned
#
# * beta trades reconstruction against KL: raising it makes every latent
#   dimension carry less (its KL_j heads for 0; below 0.01 nats we call it
#   switched off) and blurs the reconstructions.
# * Warm-up lets the decoder learn to use z before the KL charges for it;
#   for this MLP VAE at beta = 1 it changes little.
# * A learned per-pixel variance is elegant and exploitable: on pixels that
#   never vary the likelihood is unbounded, so the package clamps the
#   log-variance to [-10, 10]; even so, its NLL (a density) cannot be
#   compared with a Bernoulli model's (a probability).

# %%
done()

# %% [markdown]
# ## Your turn: exercises
#
# Derive it yourself; the package's finite-difference checker grades your attempt
# (see `lessons/exercises/README.md`):
#
# - exercise 7: `lessons/exercises/07_learned_gaussian.py`, checked by `numpy-vae exercise 7`
