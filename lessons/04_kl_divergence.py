# %% [markdown]
# # Lesson 04 -- The KL divergence to the prior, in closed form
#
# The VAE's loss has a term that pulls every encoder cloud q(z | x) towards
# the prior p(z) = N(0, I): the Kullback-Leibler divergence
#
#     KL(q || p) = E_{z ~ q}[ log q(z) - log p(z) ]
#
# the average, over samples from q, of how much more likely q finds the
# sample than p does.  It is never negative, and zero only when q = p.
# For two Gaussians it has a closed form; this lesson derives it, checks it
# against a Monte Carlo average, and checks its gradient.
#
# The package computes it in `GaussianKL` (numpy_vae/kl.py); the training
# step runs it fused with lesson 03's node as `ReparameterizeKL`
# (numpy_vae/reparameterize.py), checked at the end of this lesson.
#
# **Quick mode** (fewer Monte Carlo samples; seconds): run
# `python lessons/04_kl_divergence.py --quick`, or in a notebook run
# `%env NUMPY_VAE_QUICK=1` (or `os.environ["NUMPY_VAE_QUICK"] = "1"`) before
# the setup cell below.  Every sentence the run can confirm is checked by a
# `claim(...)` after the cell that shows it.
#
# ## Derivation, one coordinate at a time
#
# Take one coordinate: q = N(mu, s2) with s2 = sigma^2 = exp(logvar), and
# p = N(0, 1).  The log densities are
#
#     log q(z) = -1/2 log(2 pi) - 1/2 log s2 - (z - mu)^2 / (2 s2)
#     log p(z) = -1/2 log(2 pi)             - z^2 / 2
#
# so the log(2 pi) cancels in the difference:
#
#     log q(z) - log p(z) = -1/2 log s2 - (z - mu)^2 / (2 s2) + z^2 / 2
#
# Average over z ~ q, using two facts about q:
#
#     E[(z - mu)^2] = s2                  (that is what the variance is)
#     E[z^2]        = mu^2 + s2           (mean squared plus variance)
#
#     KL = -1/2 log s2 - s2 / (2 s2) + (mu^2 + s2) / 2
#        = 1/2 (mu^2 + s2 - 1 - log s2)
#        = -1/2 (1 + logvar - mu^2 - exp(logvar))
#
# A diagonal Gaussian in J dimensions is J independent coordinates, and the
# log densities add, so the KLs add:
#
#     KL(q || N(0, I)) = -1/2 sum_j (1 + logvar_j - mu_j^2 - exp(logvar_j))
#
# Each term is >= 0: mu_j^2 >= 0, and exp(a) >= 1 + a for every a.  Both
# hold with equality only at mu_j = 0, logvar_j = 0.
#
# The gradient, per coordinate, read off the formula:
#
#     dKL/dmu_j     = mu_j
#     dKL/dlogvar_j = (exp(logvar_j) - 1) / 2

# %%
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent if "__file__" in globals() else Path.cwd()
sys.path.insert(0, str(HERE if (HERE / "_common.py").exists() else HERE / "lessons"))

import matplotlib.pyplot as plt
import numpy as np
from _common import claim, done, savefig, setup

from numpy_vae import get_backend, gradcheck
from numpy_vae.kl import GaussianKL
from numpy_vae.reparameterize import Reparameterize, ReparameterizeKL

settings = setup("Lesson 04: the KL divergence")
SEED = settings.seed  # every random draw below derives from it (--seed N, NUMPY_VAE_SEED=N)
rng = np.random.default_rng(SEED)
bk = get_backend("numpy", dtype="float64", seed=SEED)
kl_node = GaussianKL(bk)

# %% [markdown]
# ## The closed form against a Monte Carlo average
#
# The definition is an average over samples from q, so we can estimate it
# directly: draw z = mu + sigma * eps many times, compute
# log q(z) - log p(z) for each draw, and average.  The estimate has a
# standard error of std / sqrt(n); the closed form should lie within a few
# standard errors of it.


# %%
def log_normal(z, mean, logvar):
    """log N(z; mean, exp(logvar)) per row, summed over the last axis."""
    return -0.5 * (np.log(2 * np.pi) + logvar + (z - mean) ** 2 / np.exp(logvar)).sum(axis=-1)


def kl_monte_carlo(mu, logvar, n, chunk=100_000):
    """Per-sample values of log q(z) - log p(z) for n draws z ~ q."""
    values = []
    for start in range(0, n, chunk):
        eps = rng.standard_normal((min(chunk, n - start), len(mu)))
        z = mu + np.exp(logvar / 2) * eps
        values.append(log_normal(z, mu, logvar) - log_normal(z, 0.0, 0.0))
    return np.concatenate(values)


n = settings.pick(200_000, 4_000_000)
cases = {
    "the prior itself": (np.zeros(1), np.zeros(1)),
    "shifted: mu = 2": (np.array([2.0]), np.zeros(1)),
    "narrow: sigma = 0.1": (np.zeros(1), np.array([np.log(0.01)])),
    "wide: sigma = 3": (np.zeros(1), np.array([np.log(9.0)])),
    "20-D, like an encoder output": (rng.normal(0, 1, 20), rng.normal(-2, 1, 20)),
}
print(f"{'case':30s} {'closed form':>12s} {'Monte Carlo (n=' + str(n) + ')':>28s}")
worst = 0.0
for name, (mu, logvar) in cases.items():
    closed = float(kl_node.forward(mu[None, :], logvar[None, :])[0])
    values = kl_monte_carlo(mu, logvar, n)
    se = values.std() / np.sqrt(n)
    # q = p makes every sample exactly 0: no noise, and the closed form must be 0 too
    off = abs(values.mean() - closed) / se if se > 0 else (0.0 if abs(values.mean() - closed) < 1e-12 else np.inf)
    worst = max(worst, off)
    print(f"{name:30s} {closed:12.5f} {values.mean():16.5f} +- {se:.5f}"
          f"   ({(values.mean() - closed) / max(se, 1e-300):+.1f} standard errors)")
claim("in all five cases the Monte Carlo average of log q - log p lies within 4 standard errors "
      "of the closed form", worst < 4, f"largest difference {worst:.1f} standard errors")
closed20, values20 = closed, values  # the last case, kept for the figure
print(f"20-D case: relative difference |MC - closed| / closed = {abs(values20.mean() - closed20) / closed20:.1e}")

# %% [markdown]
# The figure shows the Monte Carlo estimate of the 20-D case as it uses more
# and more samples: it wanders at first, then settles on the closed form,
# inside a band of two standard errors that shrinks like 1 / sqrt(n).  The
# closed form gives the exact number in one line, with no noise -- the reason
# the VAE uses it instead of sampling.

# %%
counts = np.unique(np.logspace(1, np.log10(n), 60).astype(int))
running = np.cumsum(values20)[counts - 1] / counts
running_se = np.array([values20[:k].std() / np.sqrt(k) for k in counts])
fig, ax = plt.subplots(figsize=(7.5, 4.2))
ax.fill_between(counts, running - 2 * running_se, running + 2 * running_se, alpha=0.25,
                label="Monte Carlo +- 2 standard errors")
ax.plot(counts, running, label="Monte Carlo estimate")
ax.axhline(closed20, color="k", ls="--", label=f"closed form = {closed20:.3f} nats")
ax.set_xscale("log")
ax.set_xlabel("number of samples z ~ q")
ax.set_ylabel("KL(q || N(0, I)) in nats")
ax.set_title("20-dimensional q: the sampled average converges to the closed form", fontsize=10)
ax.legend(fontsize=8)
savefig(fig, "04_kl_monte_carlo.png")

# %% [markdown]
# ## The shape of the penalty
#
# Left: the KL of one coordinate as a function of mu and logvar, zero only at
# (0, 0).  Right: two slices.  Moving the mean costs mu^2 / 2, a parabola.
# Changing the variance costs (exp(logvar) - 1 - logvar) / 2: steep (growing
# like exp) for a wider cloud, gentle (growing like -logvar / 2) for a
# narrower one.  A digit's cloud can therefore afford to be much narrower
# than the prior -- which is what the encoder of lesson 02 learned -- while a
# cloud wider than the prior is costly and buys nothing.

# %%
m_grid, lv_grid = np.meshgrid(np.linspace(-3, 3, 201), np.linspace(-6, 3, 201))
kl_grid = -0.5 * (1 + lv_grid - m_grid ** 2 - np.exp(lv_grid))
fig, (ax_l, ax_r) = plt.subplots(1, 2, figsize=(11.5, 4.3))
cs = ax_l.contourf(m_grid, lv_grid, kl_grid, levels=np.linspace(0, 6, 25), cmap="viridis", extend="max")
ax_l.contour(m_grid, lv_grid, kl_grid, levels=[0.5, 1, 2, 4], colors="w", linewidths=0.7)
ax_l.plot(0, 0, "r*", ms=12)
fig.colorbar(cs, ax=ax_l, label="KL in nats")
ax_l.set_xlabel("mu")
ax_l.set_ylabel("logvar")
ax_l.set_title("one coordinate's KL; minimum 0 at mu = 0, logvar = 0", fontsize=10)
t = np.linspace(-3, 3, 200)
ax_r.plot(t, t ** 2 / 2, label="vary mu (logvar = 0): mu^2 / 2")
ax_r.plot(t, (np.exp(t) - 1 - t) / 2, label="vary logvar (mu = 0): (exp(logvar) - 1 - logvar) / 2")
ax_r.set_xlabel("mu, or logvar")
ax_r.set_ylabel("KL in nats")
ax_r.set_ylim(0, 5)
ax_r.legend(fontsize=8)
ax_r.set_title("slices through the minimum", fontsize=10)
savefig(fig, "04_kl_shape.png")

at_min = np.unravel_index(kl_grid.argmin(), kl_grid.shape)
step = lv_grid[1, 0] - lv_grid[0, 0]
kl_at_prior = float(kl_node.forward(np.zeros((1, 1)), np.zeros((1, 1)))[0])
claim("the KL of one coordinate is never negative on the grid, its smallest value lies within one grid "
      "step of mu = 0, logvar = 0, and there it is exactly 0",
      kl_grid.min() >= 0 and abs(m_grid[at_min]) <= step and abs(lv_grid[at_min]) <= step and kl_at_prior == 0,
      f"min {kl_grid.min():.1e} at mu = {m_grid[at_min]:.2f}, logvar = {lv_grid[at_min]:.2f}; "
      f"KL(0, 0) = {kl_at_prior}")
# The package's node (not the formula of the slice above) prices the two clouds:
wide = float(kl_node.forward(np.zeros((1, 1)), np.full((1, 1), 2.0))[0])
narrow = float(kl_node.forward(np.zeros((1, 1)), np.full((1, 1), -2.0))[0])
claim("a cloud wider than the prior costs more than a narrower one: GaussianKL prices logvar = +2 at "
      "more than 3 times logvar = -2", wide > 3 * narrow, f"{wide:.2f} against {narrow:.2f} nats")

# %% [markdown]
# ## The gradient, checked by finite differences
#
# `GaussianKL.backward(dkl)` returns dkl * mu and dkl * (exp(logvar) - 1) / 2
# (numpy_vae/kl.py); `gradcheck.check_function` compares them with central
# differences of the forward pass.  In the code, exp(logvar) - 1 is written
# `expm1(logvar)`: for logvar near 0, exp(logvar) is close to 1 and the
# subtraction loses digits; expm1 computes the difference directly.  The
# table after the check shows how much is lost in float32 for an unused latent
# coordinate, whose logvar sits near 0.

# %%
errors = gradcheck.check_function(
    lambda mu, logvar: kl_node.forward(mu, logvar),
    lambda dkl: dict(zip(("mu", "logvar"), kl_node.backward(dkl))),
    {"mu": rng.standard_normal((6, 5)), "logvar": rng.normal(-1, 1.5, (6, 5))})
print(gradcheck.format_table(errors, threshold=1e-6, title="GaussianKL input"))
claim("GaussianKL.backward agrees with finite differences of the closed form (relative error below 1e-7)",
      max(errors.values()) < 1e-7, f"{max(errors.values()):.1e}")

print("one coordinate's variance term exp(a) - 1 - a, in float32 (the training precision):")
print(f"{'a = logvar':>12s} {'exp(a) - 1 - a':>16s} {'expm1(a) - a':>14s} {'true (~ a^2/2)':>15s}")
naive_err, expm1_err = [], []
for a in np.array([1e-3, -3e-4, 1e-5, -2e-5], dtype=np.float32):
    print(f"{a:12.0e} {np.exp(a) - 1 - a:16.3e} {np.expm1(a) - a:14.3e} {float(a) ** 2 / 2:15.3e}")
    true = np.expm1(np.float64(a)) - np.float64(a)
    naive_err.append(abs(float(np.exp(a) - 1 - a) / true - 1))
    expm1_err.append(abs(float(np.expm1(a) - a) / true - 1))
claim("in float32, expm1(a) - a keeps the variance term to 1% for all four values of a, while "
      "exp(a) - 1 - a is off by more than 100% for the smallest two",
      max(expm1_err) < 0.01 and min(naive_err[2:]) > 1.0,
      f"expm1: worst {max(expm1_err):.1e};  exp - 1: {', '.join(f'{e:.0%}' for e in naive_err)}")

# %% [markdown]
# ## Lessons 03 and 04 in one node: `ReparameterizeKL`
#
# In a VAE, mu and logvar feed two things: the sample z (lesson 03) and the
# KL term (this lesson).  The gradient reaching them is the sum of the two
# paths:
#
#     dmu     = dz                       + dkl * mu
#     dlogvar = dz * eps * sigma / 2     + dkl * (exp(logvar) - 1) / 2
#
# `VAE.loss_and_grads` (numpy_vae/models.py) computes both in one node,
# `ReparameterizeKL` in numpy_vae/reparameterize.py: `forward(mu, logvar,
# eps) -> (z, kl)` and `backward(dz, dkl) -> (dmu, dlogvar)`, one kernel call
# each way (the Numba and CuPy backends fuse them).  It must give exactly the
# numbers of the two nodes run one after the other, gradients added -- and
# its backward must agree with finite differences of its forward.  Here the
# forward's two outputs are checked as one array, [z, kl] side by side.

# %%
batch, latent = 6, 5
mu, logvar = rng.standard_normal((batch, latent)), rng.normal(-1, 1.5, (batch, latent))
eps = rng.standard_normal((batch, latent))
dz, dkl = rng.standard_normal((batch, latent)), rng.standard_normal(batch)

fused = ReparameterizeKL(bk)
z_fused, kl_fused = fused.forward(mu, logvar, eps)
dmu_fused, dlogvar_fused = fused.backward(dz, dkl)

reparam = Reparameterize(bk)
z_sep, kl_sep = reparam.forward(mu, logvar, eps), kl_node.forward(mu, logvar)
dmu_z, dlogvar_z = reparam.backward(dz)
dmu_kl, dlogvar_kl = kl_node.backward(dkl)
difference = max(np.abs(z_fused - z_sep).max(), np.abs(kl_fused - kl_sep).max(),
                 np.abs(dmu_fused - (dmu_z + dmu_kl)).max(), np.abs(dlogvar_fused - (dlogvar_z + dlogvar_kl)).max())
print(f"ReparameterizeKL against Reparameterize + GaussianKL: largest difference {difference:.1e}")
claim("the fused node gives the same z, KL and summed gradients as the two separate nodes (to 1e-12)",
      difference < 1e-12, f"{difference:.1e}")


def fused_forward(mu, logvar):
    z, kl = fused.forward(mu, logvar, eps)
    return np.concatenate([z, kl[:, None]], axis=1)


def fused_backward(d):
    dmu, dlogvar = fused.backward(d[:, :-1], d[:, -1])
    return {"mu": dmu, "logvar": dlogvar}


fused_errors = gradcheck.check_function(fused_forward, fused_backward, {"mu": mu, "logvar": logvar})
print(gradcheck.format_table(fused_errors, threshold=1e-6, title="ReparameterizeKL input"))
claim("ReparameterizeKL.backward agrees with finite differences of its forward (relative error below 1e-7)",
      max(fused_errors.values()) < 1e-7, f"{max(fused_errors.values()):.1e}")

# %% [markdown]
# ## What we learned
#
# * KL(N(mu, sigma^2) || N(0, 1)) = 1/2 (mu^2 + sigma^2 - 1 - log sigma^2),
#   summed over latent coordinates: exact, cheap, noise-free.
# * A Monte Carlo average of log q - log p agrees with it within its standard
#   error, and the gradient formulas agree with finite differences.
# * The penalty is mild for narrow clouds and steep for wide ones.
# * The training step adds this node's gradient to lesson 03's in one fused
#   node, `ReparameterizeKL`, with the same numbers.
#
# Lesson 05 puts this term next to the reconstruction term and shows why
# their sum bounds log p(x).

# %%
done()

# %% [markdown]
# ## Your turn: exercises
#
# Derive it yourself; the package's finite-difference checker grades your attempt
# (see `lessons/exercises/README.md`):
#
# - exercise 4: `lessons/exercises/04_kl.py`, checked by `numpy-vae exercise 4`
