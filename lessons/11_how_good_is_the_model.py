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
# has expectation p(x) (the q's cancel inside the integral).  So for K
# samples z_1 ... z_K from q,
#
#     L_K(x) = E[ log (1/K) sum_k w_k ]  <=  log E[ (1/K) sum_k w_k ]  =  log p(x)      (Jensen)
#
# * K = 1 gives E[log w] = E_q[log p(x|z) + log p(z) - log q(z|x)]: the ELBO.
# * L_K never decreases as K grows, and L_K -> log p(x) as K -> infinity
#   (Burda, Grosse & Salakhutdinov, 2016): the average inside the log
#   becomes p(x) itself.
# * If q were the true posterior, every w would equal p(x) exactly, and
#   L_1 would already be tight (the remark at the end of lesson 05's first
#   section).
#
# The package computes it in numpy_vae/evaluate.py: `log_weights` gives
# log w for K samples per image, `iwae_log_likelihood` the bound L_K per
# image.  This lesson first does one image by hand, to see the one
# numerical trap, then measures L_K for growing K.
#
# In a notebook, run  %env NUMPY_VAE_QUICK=1  before this cell for quick mode.
# Quick mode trains on the first 5,000 MNIST images for 4 epochs and bounds
# 100 test images with K up to 100; full mode trains on all 60,000 for 10
# epochs and bounds 2,000 test images with K up to 1000.

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
# instead -- lesson 10's model had log-likelihoods near +700.)
#
# The fix is to factor out the largest term m = max_k log w_k:
#
#     log (1/K) sum_k exp(a_k) = m + log (1/K) sum_k exp(a_k - m)
#
# Now every exponent is <= 0, the largest term is exp(0) = 1, and nothing
# can overflow or underflow to an all-zero sum.

# %%
with np.errstate(under="ignore"):
    claim("in float32, exp(-104) is 0", np.exp(np.float32(-104)) == 0, f"{np.exp(np.float32(-104))}")

# We take the test image (of the first 1000) with the lowest ELBO, a badly
# fitting digit, whose log weights are the most negative.

# %%
recon, kl = model.terms(data.x_test_bin[:1000], np.zeros((1000, model.latent_dim), dtype=np.float32))
worst = int(np.argmax(recon + kl))
x = data.x_test_bin[worst:worst + 1]
K = 1000
eps = np.random.default_rng(SEED).standard_normal((1, K, model.latent_dim)).astype(np.float32)
a = log_weights(model, x, eps)[0]  # (K,) log w_k, float32
print(f"test image {worst} (a {data.y_test[worst]}), K = {K}: log w ranges from {a.min():.1f} to {a.max():.1f} nats")
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
# the logs, and the difference is larger the more the weights vary.

# %%
claim("log of the mean weight >= mean of the log weights (Jensen)", stable >= a.mean(),
      f"{stable:.2f} >= {a.mean():.2f}")

# %% [markdown]
# How
# much they vary shows in the *effective sample size*
#
#     ESS = (sum_k w_k)^2 / sum_k w_k^2
#
# (K if all weights are equal, 1 if one dominates), computed from the
# normalised weights exp(a_k - m):

# %%
w = np.exp((a - m).astype(np.float64))
print(f"  effective sample size: {w.sum() ** 2 / (w * w).sum():.1f} of {K}")

# %% [markdown]
# ## The bound as K grows
#
# `iwae_log_likelihood(model, x, K)` does the same for every image, in
# chunks, with the running version of the log-sum-exp.  We compute L_K for
# K = 1, 10, 100 (and 1000 in full mode) on the same test images, next to
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
    print(f"K = {k:5d}: L_K = {bounds[k].mean():8.2f} nats per image  [{time.time() - start:5.1f} s]")
print(f"ELBO (closed-form KL, one z per image): {elbo:8.2f}")
kmax = ks[-1]
gain = bounds[kmax] - bounds[1]
print(f"L_{kmax} - L_1 = {gain.mean():.2f} nats per image (standard error {gain.std() / np.sqrt(n_images):.2f})")
means_by_k = [float(bounds[k].mean()) for k in ks]
steps_up = np.diff(means_by_k)
claim("L_1 and the closed-form ELBO estimate the same number (within 2 nats)",
      abs(means_by_k[0] - elbo) < 2, f"L_1 {means_by_k[0]:.2f}, ELBO {elbo:.2f}")
claim("the bound rises with every tenfold K", np.all(steps_up > 0),
      ", ".join(f"{v:+.2f}" for v in steps_up) + " nats")
claim("each tenfold K gains less than the one before", np.all(np.diff(steps_up) < 0),
      ", ".join(f"{v:.2f}" for v in steps_up) + " nats")
se = gain.std() / np.sqrt(n_images)
claim(f"the gain L_{kmax} - L_1 is positive on average, by more than 3 standard errors", gain.mean() > 3 * se,
      f"{gain.mean():.2f} nats, standard error {se:.2f}")

# %% [markdown]
# Left: the bound climbs with K, quickly at first, then by less with every
# tenfold increase: it is approaching log p(x) from below, and the remaining
# distance shrinks roughly like 1/K.  The -log p(x) we would report for
# this model is -L_K at the largest K we can afford.
#
# Right: the improvement from K = 1 to the largest K, image by image.  It is
# positive on average (a single image can come out slightly negative: each
# L_K here is one random draw of the estimator) and varies a lot: digits
# whose true posterior is far from the encoder's Gaussian gain the most.

# %%
means = np.array([bounds[k].mean() for k in ks])
ses = np.array([(bounds[k] - bounds[1]).std() / np.sqrt(n_images) for k in ks])
fig, (ax_l, ax_r) = plt.subplots(1, 2, figsize=(12, 4.3))
ax_l.errorbar(ks, means, yerr=2 * ses, fmt="o-", capsize=3,
              label="importance-weighted bound L_K\n(bars: 2 standard errors of L_K - L_1)")
ax_l.axhline(elbo, color="C3", ls="--", label=f"ELBO (closed-form KL) = {elbo:.2f}")
ax_l.set_xscale("log")
ax_l.set_xlabel("K, importance samples per image")
ax_l.set_ylabel("nats per test image (higher is tighter)")
ax_l.set_title(f"lower bounds on log p(x), {n_images} test images", fontsize=10)
ax_l.legend(fontsize=8)
ax_r.hist(gain, bins=40, color="C0")
ax_r.axvline(gain.mean(), color="k", ls="--", label=f"mean {gain.mean():.2f} nats")
ax_r.set_xlabel(f"L_{kmax}(x) - L_1(x), nats")
ax_r.set_ylabel("test images")
ax_r.set_title(f"per-image gain from K = 1 to K = {kmax}", fontsize=10)
ax_r.legend(fontsize=8)
savefig(fig, "11_elbo_vs_iwae.png")

# %% [markdown]
# ## What we learned
#
# * log p(x) = log E_q[w]: averaging the importance weights *before* the log
#   gives a bound that tightens as K grows, unlike averaging the ELBO.
# * The weights are tiny (or huge) numbers: always average them in log
#   space, with the log-sum-exp trick.
# * Report -L_K for a large K (papers use 5000) as the model's test NLL; the
#   gap to the ELBO is what the Gaussian encoder costs.

# %%
done()
