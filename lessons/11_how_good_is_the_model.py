# %% [markdown]
# # Lesson 11 -- How good is the model?  The ELBO and the importance-weighted bound
#
# The number that says how well a generative model fits held-out data is
# the test log-likelihood, log p(x), averaged over test images (papers report
# -log p(x) in nats: lower is better).  The ELBO is only a lower bound on it,
# and lesson 05 showed the gap: KL(q(z | x) || p(z | x)), large when the
# encoder's Gaussian is a poor match for the true posterior.  Averaging more
# samples inside the ELBO does not close that gap.  A different average
# does.
#
# ## The importance-weighted bound
#
# For any z drawn from q(z | x), the *importance weight*
#
#     w = p(x | z) p(z) / q(z | x)
#
# has expectation p(x) (the q's cancel inside the integral).  So for k
# samples z_1 ... z_k from q,
#
#     L_k(x) = E[ log (1/k) sum_i w_i ]  <=  log E[ (1/k) sum_i w_i ]  =  log p(x)      (Jensen)
#
# * k = 1 gives E[log w] = E_q[log p(x|z) + log p(z) - log q(z|x)]: the ELBO.
# * L_k never decreases as k grows, and L_k -> log p(x) as k -> infinity
#   (Burda, Grosse & Salakhutdinov (2015), "Importance Weighted
#   Autoencoders", arXiv 1509.00519, ICLR 2016): the average inside the log
#   becomes p(x) itself.  The letter k is the package's too: `--iwae-k` of
#   `numpy-vae evaluate`, `--k` of `numpy-vae train --objective iwae`.
# * If q were the true posterior, every w would equal p(x) exactly, and
#   L_1 would already be tight (the remark at the end of lesson 05's first
#   section).
#
# The package computes it in numpy_vae/evaluate.py: `log_weights` gives
# log w for k samples per image, `iwae_log_likelihood` the bound L_k per
# image.  This lesson first does one image by hand, to see the one
# numerical trap, then measures L_k for growing k.
#
# In a notebook, run  %env NUMPY_VAE_QUICK=1  before this cell for quick mode.
# Quick mode trains on the first 5,000 MNIST images for 4 epochs and bounds
# 100 test images with k up to 100; full mode trains on all 60,000 for 10
# epochs and bounds 2,000 test images with k up to 1000.

# %%
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent if "__file__" in globals() else Path.cwd()
sys.path.insert(0, str(HERE if (HERE / "_common.py").exists() else HERE / "lessons"))

import matplotlib.pyplot as plt
import numpy as np
from _common import claim, done, load_digits, savefig, setup, train

from numpy_vae import VAE
from numpy_vae.evaluate import iwae_log_likelihood, log_weights, negative_elbo

settings = setup("Lesson 11: how good is the model?")
SEED = settings.seed  # every random draw below derives from it (--seed N, NUMPY_VAE_SEED=N)
data = load_digits(settings)
model = VAE(latent_dim=20, seed=SEED)
train(model, data.x_train, epochs=settings.pick(4, 10))

# %% [markdown]
# ## One image by hand: the log-sum-exp trick
#
# The log weights of a digit are around -100 nats, and -200 for a badly
# fitting one: p(x | z) is the probability of all 784 pixels at once.  In
# float32, exp(-104) is already below the smallest positive number (about
# 1.4e-45 = exp(-103.3)), so taking the mean of exp(log w) and then the log
# gives log(0) = -infinity.  (float64 lasts until exp(-745); a
# Gaussian decoder, whose densities can be large, overflows at exp(+710)
# instead -- lesson 10's model had log-likelihoods of +700 nats and more.)
#
# The fix is to factor out the largest term m = max_i log w_i:
#
#     log (1/k) sum_i exp(a_i) = m + log (1/k) sum_i exp(a_i - m)
#
# Now every exponent is <= 0, the largest term is exp(0) = 1, and nothing
# can overflow or underflow to an all-zero sum.

# %%
with np.errstate(under="ignore"):
    print(f"in float32: exp(-103) = {np.exp(np.float32(-103)):.3g}, exp(-104) = {np.exp(np.float32(-104))}")

# We take the test image (of the first 1000) with the lowest ELBO, a badly
# fitting digit, whose log weights are the most negative.

# %%
recon, kl = model.terms(data.x_test_bin[:1000], np.zeros((1000, model.latent_dim), dtype=np.float32))
worst = int(np.argmax(recon + kl))
x = data.x_test_bin[worst:worst + 1]
k_hand = 1000
eps = np.random.default_rng(SEED).standard_normal((1, k_hand, model.latent_dim)).astype(np.float32)
a = log_weights(model, x, eps)[0]  # (k_hand,) log w_i, float32
print(f"test image {worst} (a {data.y_test[worst]}), k = {k_hand}: "
      f"log w ranges from {a.min():.1f} to {a.max():.1f} nats")
with np.errstate(divide="ignore", under="ignore"):
    naive32 = np.log(np.mean(np.exp(a)))
naive64 = np.log(np.mean(np.exp(a.astype(np.float64))))
m = a.max()
stable = m + np.log(np.mean(np.exp(a - m)))
print(f"  log mean exp(log w): naive float32 {naive32}, naive float64 {naive64:.4f}, "
      f"log-sum-exp float32 {stable:.4f}")
print(f"  the same image's ELBO-type average, mean of log w: {a.mean():.4f}")
claim("for this image the naive float32 average of the weights underflows to log(0) = -inf",
      naive32 == -np.inf, f"{naive32}")
claim("the log-sum-exp trick in float32 agrees with the naive float64 value (within 0.01 nats)",
      abs(stable - naive64) < 0.01, f"{stable:.4f} vs {naive64:.4f}")

# %% [markdown]
# The importance-weighted estimate is higher than the plain average of
# log w (which estimates the ELBO): the log of a mean is at least the mean of
# the logs -- for any numbers, so for this image too (printed above) -- and
# the difference is larger the more the weights vary.  That last part is a
# fact about this model, not about arithmetic; we check it on 100 test
# images, 100 samples each: rank the images by the spread (standard
# deviation) of their log weights, and by the difference log-mean-exp minus
# mean; the two rankings agree closely (rank correlation above 0.7).

# %%
x_rank = data.x_test_bin[:100]
eps_rank = np.random.default_rng(SEED + 2).standard_normal((100, 100, model.latent_dim)).astype(np.float32)
a_rank = log_weights(model, x_rank, eps_rank).astype(np.float64)  # (100 images, 100 samples)
m_rank = a_rank.max(axis=1, keepdims=True)
jensen_gap = (m_rank[:, 0] + np.log(np.mean(np.exp(a_rank - m_rank), axis=1))) - a_rank.mean(axis=1)
spread = a_rank.std(axis=1)


def ranks(v):
    return np.argsort(np.argsort(v)).astype(np.float64)


rank_corr = float(np.corrcoef(ranks(spread), ranks(jensen_gap))[0, 1])
print(f"100 test images, 100 samples each: log-mean-exp minus mean of log w from {jensen_gap.min():.2f} "
      f"to {jensen_gap.max():.2f} nats; spread of log w from {spread.min():.2f} to {spread.max():.2f}; "
      f"rank correlation {rank_corr:.3f}")
claim("the more an image's log weights vary, the larger log-mean-exp minus mean (rank correlation > 0.7)",
      rank_corr > 0.7, f"{rank_corr:.3f}")

# %% [markdown]
# How
# much they vary shows in the *effective sample size*
#
#     ESS = (sum_i w_i)^2 / sum_i w_i^2
#
# (k if all weights are equal, 1 if one dominates), computed from the
# normalised weights exp(a_i - m):

# %%
w = np.exp((a - m).astype(np.float64))
print(f"  effective sample size: {w.sum() ** 2 / (w * w).sum():.1f} of {k_hand}")

# %% [markdown]
# ## The bound as k grows
#
# `iwae_log_likelihood(model, x, k)` does the same for every image, in
# chunks, with the running version of the log-sum-exp.  We compute L_k for
# k = 1, 10, 100 (and 1000 in full mode) on the same test images, next to
# the single-sample ELBO from `negative_elbo` (which uses the closed-form KL
# of lesson 04 instead of log p(z) - log q(z|x) for one z; same expectation,
# less noise).

# %%
n_images = settings.pick(100, 2000)
ks = settings.pick([1, 10, 100], [1, 10, 100, 1000])
x_eval = data.x_test_bin[:n_images]
elbo = -negative_elbo(model, x_eval, seed=SEED + 1)["nelbo"]
bounds = {}
for k in ks:
    start = time.time()
    bounds[k] = iwae_log_likelihood(model, x_eval, k, seed=SEED + 1)
    print(f"k = {k:5d}: L_k = {bounds[k].mean():8.2f} nats per image  [{time.time() - start:5.1f} s]")
print(f"ELBO (closed-form KL, one z per image): {elbo:8.2f}")
kmax = ks[-1]
gain = bounds[kmax] - bounds[1]
print(f"L_{kmax} - L_1 = {gain.mean():.2f} nats per image (standard error {gain.std() / np.sqrt(n_images):.2f})")
means_by_k = [float(bounds[k].mean()) for k in ks]
steps_up = np.diff(means_by_k)
claim("L_1 and the closed-form ELBO estimate the same number (within 2 nats)",
      abs(means_by_k[0] - elbo) < 2, f"L_1 {means_by_k[0]:.2f}, ELBO {elbo:.2f}")
claim("the bound rises with every tenfold k", np.all(steps_up > 0),
      ", ".join(f"{v:+.2f}" for v in steps_up) + " nats")
claim("each tenfold k gains less than the one before", np.all(np.diff(steps_up) < 0),
      ", ".join(f"{v:.2f}" for v in steps_up) + " nats")
claim("but not ten times less: each tenfold k gains more than a fifth of the one before (a gap like 1/k "
      "would give a tenth)", np.all(steps_up[1:] > 0.2 * steps_up[:-1]),
      ", ".join(f"{b / a:.2f}" for a, b in zip(steps_up[:-1], steps_up[1:])) + " of the step before")
se = gain.std() / np.sqrt(n_images)
claim(f"the gain L_{kmax} - L_1 is positive on average, by more than 3 standard errors", gain.mean() > 3 * se,
      f"{gain.mean():.2f} nats, standard error {se:.2f}")

# %% [markdown]
# Left: the bound climbs with k, quickly at first, then by less with every
# tenfold increase: it is approaching log p(x) from below.  But the gains
# shrink slowly: each tenfold k still gains more than a fifth of what the
# previous one gained, so on the log-k axis the curve bends only gently.
# (Once k is large enough for the average of the weights to sit close to
# p(x), the remaining distance does shrink like 1/k -- and each tenfold k
# gains a tenth of the step before -- but these k are far from that.)  The
# -log p(x) we would report for this model is -L_k at the largest k we can
# afford.
#
# Right: the improvement from k = 1 to the largest k, image by image.  It is
# positive on average (a single image can come out slightly negative: each
# L_k here is one random draw of the estimator) and varies a lot: digits
# whose true posterior is far from the encoder's Gaussian gain the most.

# %%
means = np.array([bounds[k].mean() for k in ks])
ses = np.array([(bounds[k] - bounds[1]).std() / np.sqrt(n_images) for k in ks])
fig, (ax_l, ax_r) = plt.subplots(1, 2, figsize=(12, 4.3))
ax_l.errorbar(ks, means, yerr=2 * ses, fmt="o-", capsize=3,
              label="importance-weighted bound L_k\n(bars: 2 standard errors of L_k - L_1)")
ax_l.axhline(elbo, color="C3", ls="--", label=f"ELBO (closed-form KL) = {elbo:.2f}")
ax_l.set_xscale("log")
ax_l.set_xlabel("k, importance samples per image")
ax_l.set_ylabel("nats per test image (higher is tighter)")
ax_l.set_title(f"lower bounds on log p(x), {n_images} test images", fontsize=10)
ax_l.legend(fontsize=8)
ax_r.hist(gain, bins=40, color="C0")
ax_r.axvline(gain.mean(), color="k", ls="--", label=f"mean {gain.mean():.2f} nats")
ax_r.set_xlabel(f"L_{kmax}(x) - L_1(x), nats")
ax_r.set_ylabel("test images")
ax_r.set_title(f"per-image gain from k = 1 to k = {kmax}", fontsize=10)
ax_r.legend(fontsize=8)
savefig(fig, "11_elbo_vs_iwae.png")

# %% [markdown]
# ## What we learned
#
# * log p(x) = log E_q[w]: averaging the importance weights *before* the log
#   gives a bound that tightens as k grows, unlike averaging the ELBO.
# * The weights are tiny (or huge) numbers: always average them in log
#   space, with the log-sum-exp trick.
# * Report -L_k for a large k (papers use 5000) as the model's test NLL; the
#   gap to the ELBO is what the Gaussian encoder costs.

# %%
done()

# %% [markdown]
# ## Your turn: exercises
#
# Derive it yourself; the package's finite-difference checker grades your attempt
# (see `lessons/exercises/README.md`):
#
# - exercise 8: `lessons/exercises/08_log_mean_exp.py`, checked by `numpy-vae exercise 8`
