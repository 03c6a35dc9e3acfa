# %% [markdown]
# # Lesson 05 -- The ELBO: what the VAE maximises
#
# A generative model p(x) = integral p(x | z) p(z) dz should give the data a
# high probability.  log p(x) itself is an integral over every z, which we
# cannot compute for a neural decoder.  The encoder's q(z | x) gives a lower
# bound we *can* compute.  Multiply and divide by q inside the integral:
#
#     log p(x) = log E_{z ~ q}[ p(x | z) p(z) / q(z | x) ]
#             >= E_{z ~ q}[ log p(x | z) + log p(z) - log q(z | x) ]     (Jensen: log E >= E log)
#              = E_{z ~ q}[ log p(x | z) ]  -  KL(q(z | x) || p(z))
#              = ELBO(x)                     the Evidence Lower BOund
#
# Two terms: the reconstruction term (how well samples from the cloud
# redraw x; lessons 01-02) minus the KL to the prior (lesson 04).  The gap is
# itself a KL divergence, between q and the true posterior p(z | x):
#
#     log p(x) - ELBO(x) = KL(q(z | x) || p(z | x))   >= 0
#
# so the bound is tight exactly when the encoder gets the posterior right.
#
# In the package, `VAE.loss_and_grads` returns -ELBO averaged over a batch,
# with the expectation estimated by one sample z per example
# (numpy_vae/models.py); `VAE.terms(x, eps)` returns the two terms per
# example, -log p(x | z) and KL, for the noise eps you pass.
#
# **Quick mode** (fewer samples, shorter trainings on a third of MNIST; under
# a minute): run `python lessons/05_elbo.py --quick`, or in a notebook run
# `%env NUMPY_VAE_QUICK=1` (or `os.environ["NUMPY_VAE_QUICK"] = "1"`) before
# the setup cell below.  Every sentence the run can confirm is checked by a
# `claim(...)` after the cell that shows it.

# %%
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent if "__file__" in globals() else Path.cwd()
sys.path.insert(0, str(HERE if (HERE / "_common.py").exists() else HERE / "lessons"))

import matplotlib.pyplot as plt
import numpy as np
from _common import binarize_batch, claim, done, load_digits, savefig, setup, show

from numpy_vae import VAE, Adam

settings = setup("Lesson 05: the ELBO")
SEED = settings.seed  # every random draw below derives from it (--seed N, NUMPY_VAE_SEED=N)
rng = np.random.default_rng(SEED)

# %% [markdown]
# ## 1. A model where log p(x) is known exactly
#
# To *see* that the ELBO is a lower bound we need log p(x) exactly.  A VAE
# with no hidden layers, one latent number and a Gaussian decoder of variance
# 1 is a linear-Gaussian model:
#
#     z ~ N(0, 1),   x | z ~ N(w z + b, I)      (x has D numbers; w, b are D-vectors)
#
# Its marginal is Gaussian too, x ~ N(b, I + w w^T) (x = w z + b + noise,
# a sum of Gaussians: mean b, covariance w w^T from z plus I from the noise),
# so log p(x) has a formula.  So does the true posterior, by Bayes' rule,
# log p(z | x) = log p(x | z) + log p(z) - log p(x).  Keep only what depends
# on z (the rest is a constant c, c', c''):
#
#     log p(z | x) = -1/2 |x - b - w z|^2 - 1/2 z^2 + c
#                  = -1/2 [ (1 + |w|^2) z^2 - 2 z w.(x - b) ] + c'
#                       (|x - b - w z|^2 = |x - b|^2 - 2 z w.(x - b) + z^2 |w|^2)
#
# A quadratic in z.  Complete the square: with v = 1 / (1 + |w|^2) and
# m = v w.(x - b),
#
#     (1 + |w|^2) z^2 - 2 z w.(x - b) = (z^2 - 2 z m) / v = (z - m)^2 / v - m^2 / v
#
# and the m^2 / v, free of z, joins the constant:
#
#     log p(z | x) = -(z - m)^2 / (2 v) + c''
#
# which is the log density of a Gaussian in z, so
#
#     p(z | x) = N(m, v),   v = 1 / (1 + |w|^2),   m = v * w . (x - b)
#
# (c'' must be -1/2 log(2 pi v), or the density would not integrate to 1;
# the check below confirms that too.)
#
# The package builds this model as `VAE(input_dim=D, hidden_dims=(),
# latent_dim=1, likelihood="gaussian")`.  We set its weights by hand: a
# decoder, and an encoder that outputs the exact posterior.

# %%
D = 5
model = VAE(input_dim=D, hidden_dims=(), latent_dim=1, likelihood="gaussian", dtype="float64", seed=SEED)
w, b = rng.normal(0, 1, D), rng.normal(0, 0.5, D)
model.params["decoder.0.W"][...] = w[None, :]
model.params["decoder.0.b"][...] = b
v_post = 1 / (1 + w @ w)


def set_encoder(shift=0.0, logvar_shift=0.0):
    """mu(x) = v w.(x - b) + shift,  logvar(x) = log v + logvar_shift (no dependence on x)."""
    model.params["mu.W"][...] = (v_post * w)[:, None]
    model.params["mu.b"][...] = -v_post * (w @ b) + shift
    model.params["logvar.W"][...] = 0.0
    model.params["logvar.b"][...] = np.log(v_post) + logvar_shift


x = w * rng.standard_normal() + b + rng.standard_normal(D)  # one draw from the model
cov = np.eye(D) + np.outer(w, w)
log_px = -0.5 * (D * np.log(2 * np.pi) + np.linalg.slogdet(cov)[1] + (x - b) @ np.linalg.solve(cov, x - b))
print(f"exact log p(x) = {log_px:.6f} nats")

# %% [markdown]
# Check the completed square: on a grid of z, Bayes' rule
# log p(x | z) + log p(z) - log p(x) must equal log N(z; m, v) -- which
# checks the marginal's formula at the same time.

# %%
m_post = v_post * w @ (x - b)
zs = np.linspace(m_post - 4 * np.sqrt(v_post), m_post + 4 * np.sqrt(v_post), 41)
log_lik = -0.5 * (D * np.log(2 * np.pi) + ((x[None, :] - b - zs[:, None] * w) ** 2).sum(axis=1))
bayes = log_lik - 0.5 * (np.log(2 * np.pi) + zs ** 2) - log_px
log_gauss = -0.5 * (np.log(2 * np.pi * v_post) + (zs - m_post) ** 2 / v_post)
print(f"posterior N(m, v): m = {m_post:.4f}, v = {v_post:.4f};  "
      f"largest |Bayes - log N(z; m, v)| on the grid: {np.abs(bayes - log_gauss).max():.1e}")
claim("completing the square is right: Bayes' rule and log N(z; m, v) agree on a grid of z (to 1e-10)",
      np.abs(bayes - log_gauss).max() < 1e-10, f"{np.abs(bayes - log_gauss).max():.1e}")


def one_sample_elbos(n):
    """n one-sample estimates of the ELBO: -log p(x|z) - KL for n draws z ~ q."""
    eps = rng.standard_normal((n, 1))
    recon, kl = model.terms(np.repeat(x[None, :], n, axis=0), eps)
    return -recon - kl


def elbo_estimate(L):
    """The L-sample estimate: -(mean of -log p(x|z_l) over L draws) - KL."""
    return one_sample_elbos(L).mean()


set_encoder()
mu_enc, logvar_enc = model.encode(x[None, :])
claim("the hand-set encoder outputs the exact posterior: mu(x) = m and logvar(x) = log v",
      abs(mu_enc[0, 0] - m_post) < 1e-12 and abs(logvar_enc[0, 0] - np.log(v_post)) < 1e-12,
      f"mu {mu_enc[0, 0]:.6f}, m {m_post:.6f}")
n_big = settings.pick(100_000, 2_000_000)
one_sample = [elbo_estimate(1) for _ in range(5)]
many = one_sample_elbos(n_big)
print("encoder = exact posterior: five one-sample ELBO estimates:", np.round(one_sample, 3))
print(f"  their average over {n_big} samples: {many.mean():.4f} +- {many.std() / np.sqrt(n_big):.4f}"
      f"  (log p(x) = {log_px:.4f})")
off = abs(many.mean() - log_px) / (many.std() / np.sqrt(n_big))
claim("with q the exact posterior, one-sample estimates are noisy but average to log p(x), "
      "within 4 standard errors", many.std() > 0.05 and off < 4,
      f"spread {many.std():.3f}, average off by {off:.1f} standard errors")

# %% [markdown]
# Each one-sample estimate is noisy, because log p(x | z) changes with the z
# drawn, but their average is log p(x): with q equal to the true posterior
# the bound is tight.  (The noise is not in the bound but in our way of
# estimating it; lesson 11 meets an estimator that is exactly log p(x) for
# every z when q is the posterior.)

# %% [markdown]
# Now a worse encoder: its mean shifted by 0.8, its variance e times too big.
# The ELBO drops below log p(x) by exactly KL(q || p(z | x)), which for two
# 1-D Gaussians N(m_q, v_q) and N(m, v) is
#
#     1/2 [ log(v / v_q) + (v_q + (m_q - m)^2) / v - 1 ]

# %%
shift, logvar_shift = 0.8, 1.0
set_encoder(shift, logvar_shift)
v_q = v_post * np.exp(logvar_shift)
gap_formula = 0.5 * (np.log(v_post / v_q) + (v_q + shift ** 2) / v_post - 1)
many = one_sample_elbos(n_big)
elbo_mc, elbo_se = many.mean(), many.std() / np.sqrt(n_big)
print(f"worse encoder: ELBO (average of {n_big} samples) = {elbo_mc:.4f} +- {elbo_se:.4f}")
print(f"  gap log p(x) - ELBO = {log_px - elbo_mc:.4f};  KL(q || posterior) from the formula = {gap_formula:.4f}")
elbo_exact = log_px - gap_formula
off = abs(elbo_mc - elbo_exact) / elbo_se
claim("with a worse encoder the ELBO drops below log p(x) by KL(q || p(z|x)), within 4 standard errors",
      off < 4, f"gap {log_px - elbo_mc:.4f}, formula {gap_formula:.4f}, {off:.1f} standard errors")

# %% [markdown]
# ## 2. Estimating the ELBO with L samples
#
# For a neural decoder E_q[log p(x | z)] has no formula, so we average
# over L samples z_l = mu + sigma * eps_l:
#
#     ELBO_L(x) = (1/L) sum_l log p(x | z_l)  -  KL(q || p)
#
# Each ELBO_L is a random number whose average is the ELBO for any L; more
# samples only shrink its spread, like 1 / sqrt(L).  They never bring it
# closer to log p(x): that takes a better encoder, or a different bound
# (the importance-weighted bound of lesson 11).  Training uses L = 1: the
# noise averages out over many steps.

# %%
Ls = [1, 3, 10, 30, 100, 1000]
repeats = settings.pick(200, 1000)
estimates = [np.array([elbo_estimate(L) for _ in range(repeats)]) for L in Ls]
for L, est in zip(Ls, estimates):
    print(f"L = {L:4d}: mean of {repeats} estimates {est.mean():8.4f}, spread (std) {est.std():.4f}")
shrink = estimates[0].std() / estimates[4].std()
claim("100 samples shrink the spread about 10 times (1 / sqrt(L)): between 7 and 14 times",
      7 < shrink < 14, f"{shrink:.1f} times")
off = max(abs(est.mean() - elbo_exact) / (est.std() / np.sqrt(repeats)) for est in estimates)
claim("for every L the estimates average to the ELBO, within 4 standard errors, and not to log p(x): "
      "with L = 1000 they still sit more than 0.5 nats below it",
      off < 4 and log_px - estimates[-1].mean() > 0.5,
      f"largest difference {off:.1f} standard errors; L = 1000: {log_px - estimates[-1].mean():.3f} nats below")

fig, ax = plt.subplots(figsize=(7.5, 4.5))
ax.boxplot(estimates, showfliers=False, showmeans=True,
           meanprops=dict(marker="^", markerfacecolor="k", markeredgecolor="k"))
ax.set_xticks(range(1, len(Ls) + 1), [str(L) for L in Ls])
for k, est in enumerate(estimates, start=1):
    ax.plot(k + rng.uniform(-0.25, 0.25, 60), est[:60], ".", color="gray", ms=3, alpha=0.6)
ax.axhline(log_px, color="C2", label=f"log p(x) = {log_px:.3f} (exact)")
ax.axhline(elbo_exact, color="C3", ls="--", label=f"ELBO = {elbo_exact:.3f} (exact)")
ax.set_xlabel("L, samples per estimate")
ax.set_ylabel("estimate of the ELBO (nats)")
ax.set_title("more samples shrink the noise, not the gap to log p(x)\n"
             "(boxes: middle half and median of the estimates; triangles: their mean)", fontsize=10)
ax.legend(fontsize=8, loc="lower right")
savefig(fig, "05_elbo_estimates.png")

# %% [markdown]
# ## 3. Which likelihood: Bernoulli (BCE) or Gaussian (MSE)?
#
# The reconstruction term -log p(x | z) depends on what distribution the
# decoder's output describes (numpy_vae/likelihoods.py):
#
#     Bernoulli, p = sigmoid(logits):  -log p(x|z) = sum_d -[x_d log p_d + (1 - x_d) log(1 - p_d)]   (BCE)
#     Gaussian, mean m, variance s2:   -log p(x|z) = sum_d (x_d - m_d)^2 / (2 s2) + D/2 log(2 pi s2)
#
# The Bernoulli is a distribution over 0/1 pixels, so we feed it binarized
# digits: each pixel is 1 with probability equal to its grey level, drawn
# afresh every time (`binarize(x, "dynamic", rng)` in numpy_vae/data.py).
# The Gaussian with variance 1 is "MSE / 2 summed over pixels" plus a
# constant.
#
# Both are summed over the D = 784 pixels, and that matters as much as which
# one we pick: the KL term is summed over the latent coordinates, and the
# two terms trade against each other.  How many nats is a *good*
# reconstruction worth, compared with a poor one?  Below, for 1000 test
# digits: the average over all digits as a (poor) reconstruction, and the
# average of the digit's own class as a (better) one.

# %%
data = load_digits(settings, n_train_quick=20_000)
x_test, y_test = data.x_test, data.y_test
x_bin = data.x_test_bin
overall = np.clip(data.x_train.mean(axis=0), 1e-3, 1 - 1e-3)
per_class = np.clip(np.stack([data.x_train[data.y_train == d].mean(axis=0) for d in range(10)]), 1e-3, 1 - 1e-3)


def bce(x, p):
    return -(x * np.log(p) + (1 - x) * np.log(1 - p)).sum(axis=1).mean()


def half_sq(x, m):
    return 0.5 * ((x - m) ** 2).sum(axis=1).mean()


rows = [("BCE summed over pixels (Bernoulli NLL)", bce),
        ("squared error / 2 summed (Gaussian NLL, s2 = 1, minus const)", half_sq),
        ("BCE averaged over pixels", lambda x, p: bce(x, p) / x.shape[1])]
print(f"\n{'reconstruction term':62s} {'overall mean':>12s} {'class mean':>11s} {'difference':>11s}")
worth = []
for name, fn in rows:
    poor, good = fn(x_bin, overall), fn(x_bin, per_class[y_test])
    worth.append(poor - good)
    print(f"{name:62s} {poor:12.3f} {good:11.3f} {poor - good:11.3f}")

claim("knowing the class is worth tens of nats under the summed BCE (more than 10)", worth[0] > 10,
      f"{worth[0]:.1f} nats")
claim("a few nats under the Gaussian of variance 1 (between 1 and 10)", 1 < worth[1] < 10, f"{worth[1]:.2f} nats")
claim("a few hundredths of a nat under the BCE averaged over pixels (between 0.01 and 0.1)",
      0.01 < worth[2] < 0.1, f"{worth[2]:.3f} nats")

# %% [markdown]
# Under the summed BCE, knowing the digit's class is worth tens of nats,
# while encoding it in z costs a few nats of KL (the summed-Bernoulli model
# trained below spends well under 2 nats of KL per latent coordinate; the
# total grows with training, and the run prints it every quarter epoch).  Under the Gaussian with
# variance 1 the same knowledge is worth a few nats, and with BCE averaged
# over pixels a few hundredths of a nat.  The KL price of information in z
# does not change, so with the two weaker reconstruction terms the cheapest
# ELBO puts *less* into z: a smaller KL and blurrier reconstructions -- in
# the extreme, nothing at all, and every digit is reconstructed as the same
# average blob.
#
# (Averaging the reconstruction over pixels while summing the KL is the same
# as multiplying the KL by 784 -- lesson 10's beta = 784 -- up to an overall
# scale, which Adam's per-weight step sizes almost completely ignore.)
#
# Three short trainings show the effect: the same 784-400-20 VAE with the
# Bernoulli likelihood summed over pixels (the package default), averaged
# over pixels (trained as beta = 784), and with the Gaussian likelihood of
# variance 1.  The loop is the one of lesson 01; lesson 06 takes it apart.
# Full mode trains each for 8 epochs on all of MNIST; quick mode for 2
# epochs on a third of it, with batches of 200 and a learning rate of 0.002.


# %%
def test_kl(model):
    """The KL of the test digits' clouds, averaged over the digits (nats)."""
    mu, logvar = model.encode(x_test)
    return float((0.5 * (mu ** 2 + np.exp(logvar) - 1 - logvar)).sum(axis=1).mean())


def fit(likelihood, beta, epochs, binarize, seed=SEED, kl_log=None):
    """Train a 784-400-20 VAE; kl_log, if a list, gets the test KL after every
    quarter of an epoch (from the first quarter on)."""
    model = VAE(latent_dim=20, likelihood=likelihood, seed=seed)
    opt = Adam(model.params, lr=learning_rate, backend=model.backend)
    fit_rng = np.random.default_rng(seed)
    for epoch in range(epochs):
        order = fit_rng.permutation(len(data.x_train))
        starts = range(0, len(order), batch_size)
        for i, start in enumerate(starts):
            xb = data.x_train[order[start:start + batch_size]]
            loss, grads, info = model.loss_and_grads(binarize_batch(xb, fit_rng) if binarize else xb, beta=beta)
            opt.step(grads)
            if kl_log is not None and (4 * (i + 1)) % len(starts) < 4:
                kl_log.append(test_kl(model))
    return model


epochs, batch_size, learning_rate = settings.pick((2, 200, 2e-3), (8, 100, 1e-3))
kl_during = []  # the summed-Bernoulli model's test KL as it trains
variants = {
    "Bernoulli, summed": fit("bernoulli", 1.0, epochs, binarize=True, kl_log=kl_during),
    "Bernoulli, averaged (beta 784)": fit("bernoulli", 784.0, epochs, binarize=True),
    "Gaussian, variance 1": fit("gaussian", 1.0, epochs, binarize=False),
}
print(f"\n{'variant':32s} {'MSE per pixel':>14s} {'KL (nats)':>10s} {'latent coords used':>19s} "
      f"{'(by Var mu)':>12s}")
result = {}
for name, model in variants.items():
    mu, logvar = model.encode(x_test)
    kl_per_coord = (0.5 * (mu ** 2 + np.exp(logvar) - 1 - logvar)).mean(axis=0)
    mse = ((np.clip(model.reconstruct(x_test), 0, 1) - x_test) ** 2).mean()
    result[name] = (mse, kl_per_coord.sum(), int((kl_per_coord > 0.01).sum()))
    by_var = int((mu.var(axis=0) > 0.01).sum())
    print(f"{name:32s} {mse:14.4f} {kl_per_coord.sum():10.2f} {result[name][2]:>12d} of 20 {by_var:>8d} of 20")
print("(a coordinate counts as used when its KL term, 0.5 (mu^2 + sigma^2 - 1 - log sigma^2) averaged over\n"
      " the test digits, exceeds 0.01 nats -- as in lessons 09 and 10.  Lesson 13 counts a unit as active by\n"
      " another quantity, the variance of its mean mu over the test digits, Var_x(mu) > 0.01; the same\n"
      " threshold, a different number, printed here as 'by Var mu')")
print("the summed-Bernoulli model's test KL during training, every quarter epoch: "
      + ", ".join(f"{v:.1f}" for v in kl_during))
(mse_sum, kl_sum, used_sum), (mse_avg, kl_avg, used_avg), (mse_gauss, kl_gauss, used_gauss) = result.values()

# %% [markdown]
# The figure: test digits, then each model's reconstructions and eight
# samples from its prior.  The summed Bernoulli keeps the most detail and
# spends the most KL.  The Gaussian of variance 1 is blurrier, with a smaller
# KL.  The pixel-averaged Bernoulli has collapsed: KL about 0, no latent
# coordinate used, the code carries nothing, and every reconstruction and
# every sample is the same average blob.

# %%
claim("the summed-Bernoulli model spends well under 2 nats of KL per latent coordinate",
      kl_sum / 20 < 2, f"{kl_sum:.2f} nats in all, {kl_sum / 20:.2f} per coordinate")
claim("the summed-Bernoulli model's total KL grows with training: higher at the end than after the "
      "first quarter epoch, and higher on average in the second half of training than in the first",
      kl_during[-1] > kl_during[0]
      and np.mean(kl_during[len(kl_during) // 2:]) > np.mean(kl_during[:len(kl_during) // 2]),
      ", ".join(f"{v:.1f}" for v in kl_during) + " nats")
claim("the summed Bernoulli keeps the most detail (smallest MSE) and spends the most KL",
      mse_sum < min(mse_gauss, mse_avg) and kl_sum > max(kl_gauss, kl_avg),
      f"MSE {mse_sum:.4f} / {mse_gauss:.4f} / {mse_avg:.4f}, KL {kl_sum:.2f} / {kl_gauss:.2f} / {kl_avg:.2f} "
      f"(summed / Gaussian / averaged)")
claim("the Gaussian of variance 1 is blurrier than the summed Bernoulli, with a smaller KL, but not collapsed",
      mse_gauss > mse_sum and kl_avg < kl_gauss < kl_sum and used_gauss > 0,
      f"MSE {mse_gauss:.4f}, KL {kl_gauss:.2f}, {used_gauss} of 20 coordinates used")
claim("the pixel-averaged Bernoulli has collapsed: KL below 0.1 nats and no latent coordinate used",
      kl_avg < 0.1 and used_avg == 0, f"KL {kl_avg:.3f}, {used_avg} of 20 used")

# %%
fig, axes = plt.subplots(len(variants) + 1, 2, figsize=(12, 4.6), gridspec_kw={"width_ratios": [10, 8]})
show(axes[0, 0], x_test[:10], 10, "test digits")
axes[0, 1].axis("off")
for row, (name, model) in enumerate(variants.items(), start=1):
    show(axes[row, 0], np.clip(model.reconstruct(x_test[:10]), 0, 1), 10, f"{name}: reconstructions")
    show(axes[row, 1], np.clip(model.sample(8), 0, 1), 8, f"{name}: samples")
savefig(fig, "05_likelihood_balance.png")

# %% [markdown]
# ## What we learned
#
# * ELBO = E_q[log p(x|z)] - KL(q || p) <= log p(x), with equality when q is
#   the true posterior; the gap is KL(q || p(z|x)).  Checked exactly on a
#   linear-Gaussian VAE.
# * Averaging over L samples estimates the ELBO with less noise; it does not
#   approach log p(x).
# * The reconstruction term must be a real log-likelihood summed over pixels
#   for the ELBO's balance with the KL to mean anything.  Averaging over
#   pixels, or a Gaussian of variance 1 on [0, 1] pixels, quietly turns the
#   KL up and the information in z down.

# %%
done()

# %% [markdown]
# ## Your turn: exercises
#
# Derive it yourself; the package's finite-difference checker grades your attempt
# (see `lessons/exercises/README.md`):
#
# - exercise 5: `lessons/exercises/05_bernoulli_nll.py`, checked by `numpy-vae exercise 5`
