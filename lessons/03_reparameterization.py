# %% [markdown]
# # Lesson 03 -- The reparameterization trick
#
# Training means following the gradient of the loss back to every weight.
# In a VAE the path from the encoder to the loss passes through a random
# sample, z ~ N(mu, sigma^2).  This lesson shows why a sample blocks the
# gradient, how writing it as
#
#     z = mu + sigma * eps,   sigma = exp(logvar / 2),   eps ~ N(0, 1)
#
# lets it through, checks the resulting gradients against finite differences,
# and shows what goes wrong with a formula that circulates in blog posts and
# code, z = mu + sigma^2 * eps.
#
# The package's version is one small node, `Reparameterize` in
# numpy_vae/reparameterize.py: `forward(mu, logvar, eps)` and `backward(dz)`.
# (The training step, `VAE.loss_and_grads` in numpy_vae/models.py, runs it
# fused with the KL node of lesson 04 as `ReparameterizeKL`; lesson 04 ends
# by checking that the fused node gives the same numbers.)
#
# **Quick mode** (fewer Monte Carlo samples; seconds): run
# `python lessons/03_reparameterization.py --quick`, or in a notebook run
# `%env NUMPY_VAE_QUICK=1` (or `os.environ["NUMPY_VAE_QUICK"] = "1"`) before
# the setup cell below.  Every sentence the run can confirm is checked by a
# `claim(...)` after the cell that shows it.
#
# Throughout, a toy loss on a single number z makes everything computable by
# hand:
#
#     f(z) = (z - 3)^2
#
# Its average over z ~ N(mu, sigma^2) has a closed form, because
# E[(z - 3)^2] = (E[z] - 3)^2 + Var[z]:
#
#     J(mu, logvar) = E[f(z)] = (mu - 3)^2 + exp(logvar)
#     dJ/dmu     = 2 (mu - 3)
#     dJ/dlogvar = exp(logvar)
#
# These are the true gradients that any method must reproduce on average.

# %%
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent if "__file__" in globals() else Path.cwd()
sys.path.insert(0, str(HERE if (HERE / "_common.py").exists() else HERE / "lessons"))

import matplotlib.pyplot as plt
import numpy as np
from _common import claim, done, savefig, setup

from numpy_vae import VAE, get_backend, gradcheck
from numpy_vae.reparameterize import Reparameterize

settings = setup("Lesson 03: the reparameterization trick")
SEED = settings.seed  # every random draw below derives from it (--seed N, NUMPY_VAE_SEED=N)
rng = np.random.default_rng(SEED)
n_mc = settings.pick(200_000, 2_000_000)  # Monte Carlo samples for the averages below


def f(z):
    return (z - 3.0) ** 2


def df_dz(z):
    return 2.0 * (z - 3.0)


mu, logvar = 1.0, np.log(0.25)  # sigma = 0.5
sigma = np.exp(logvar / 2)
print(f"mu = {mu}, logvar = {logvar:.4f} (sigma = exp(logvar/2) = {sigma})")
print(f"true gradients:  dJ/dmu = 2 (mu - 3) = {2 * (mu - 3):.4f},  dJ/dlogvar = exp(logvar) = {np.exp(logvar):.4f}")

# %% [markdown]
# ## 1. A sample is not a function of mu
#
# `rng.normal(mu, sigma)` returns a number, but the number is not a function
# of mu we can differentiate: call it twice with the same mu and you get two
# different numbers.  The chain rule needs dz/dmu, and the sampler has none.
#
# Try it with finite differences anyway: nudge mu by h = 0.001 up and down,
# draw a new sample each time, and divide the change of f by 2h.  The noise
# of the two draws (of size sigma) is divided by 0.002, so the "derivative"
# is a wild number of order 1000, not -4.

# %%
h = 1e-3
fresh = [(f(rng.normal(mu + h, sigma)) - f(rng.normal(mu - h, sigma))) / (2 * h) for _ in range(2000)]
print("finite differences of f with a fresh sample on each side (five of them):",
      np.round(fresh[:5], 0))
print(f"  their spread (std over 2000 tries): {np.std(fresh):.0f};  the true dJ/dmu is {2 * (mu - 3):.1f}")
claim("finite differences through fresh samples are noise: their spread is more than 100 times the "
      "true gradient", np.std(fresh) > 100 * abs(2 * (mu - 3)), f"spread {np.std(fresh):.0f}, true {2 * (mu - 3):.1f}")

# %% [markdown]
# ## 2. Take the randomness out: z = mu + sigma * eps
#
# Draw the noise eps ~ N(0, 1) first and *hold it fixed*.  Then
# z = mu + sigma * eps is an ordinary function of mu and logvar, with
#
#     dz/dmu     = 1
#     dz/dlogvar = eps * d(exp(logvar / 2))/dlogvar = eps * exp(logvar / 2) / 2 = eps * sigma / 2
#
# so the gradient reaching the encoder's two outputs is, for upstream dz = df/dz,
#
#     dmu     = dz
#     dlogvar = dz * eps * sigma / 2
#
# which is `Reparameterize.backward` line for line.  With the noise fixed the
# finite differences become smooth and agree with these formulas:

# %%
eps = rng.standard_normal()
z = mu + sigma * eps
fixed_fd = (f(mu + h + sigma * eps) - f(mu - h + sigma * eps)) / (2 * h)
fixed_fd_logvar = (f(mu + np.exp((logvar + h) / 2) * eps) - f(mu + np.exp((logvar - h) / 2) * eps)) / (2 * h)
print(f"eps = {eps:.4f}: finite difference {fixed_fd:.6f}, formula dz * 1 = {df_dz(z):.6f}")
print(f"          d/dlogvar: finite difference {fixed_fd_logvar:.6f}, "
      f"formula dz * eps * sigma / 2 = {df_dz(z) * eps * sigma / 2:.6f}")
claim("with eps held fixed, finite differences agree with dmu = dz and dlogvar = dz * eps * sigma / 2 "
      "(relative difference below 1e-6)",
      abs(fixed_fd - df_dz(z)) < 1e-6 * abs(df_dz(z))
      and abs(fixed_fd_logvar - df_dz(z) * eps * sigma / 2) < 1e-6 * abs(df_dz(z) * eps * sigma / 2),
      f"{abs(fixed_fd - df_dz(z)) / abs(df_dz(z)):.1e}, "
      f"{abs(fixed_fd_logvar - df_dz(z) * eps * sigma / 2) / abs(df_dz(z) * eps * sigma / 2):.1e}")

# %% [markdown]
# Each single gradient depends on the eps drawn, but its *average* over eps
# is the true gradient of J.  Averaging the two formulas over many eps:

# %%
eps = rng.standard_normal(n_mc)
z = mu + sigma * eps
dmu_avg = np.mean(df_dz(z))
dlogvar_avg = np.mean(df_dz(z) * eps * sigma / 2)
print(f"average over {n_mc} eps:  dmu = {dmu_avg:.4f} (true {2 * (mu - 3):.4f}),"
      f"  dlogvar = {dlogvar_avg:.4f} (true {np.exp(logvar):.4f})")
se_mu = np.std(df_dz(z)) / np.sqrt(n_mc)
se_logvar = np.std(df_dz(z) * eps * sigma / 2) / np.sqrt(n_mc)
off = max(abs(dmu_avg - 2 * (mu - 3)) / se_mu, abs(dlogvar_avg - np.exp(logvar)) / se_logvar)
claim("averaged over eps, the two formulas give the true gradients of J, within 4 standard errors",
      off < 4, f"largest difference {off:.1f} standard errors")

# %% [markdown]
# ## 3. The check, live, on the package's code
#
# `numpy_vae.gradcheck.check_function` perturbs every input element by
# +-h, measures the change of sum(forward * r) for a random r, and compares
# with what `backward(r)` returns.  The relative error
#
#     |analytic - numeric| / (|analytic| + |numeric|)
#
# is about 1e-8 or smaller for a correct backward pass in float64 (up to
# about 1e-7 for the smallest gradients of a whole model, where the rounding
# of the finite difference weighs most; we call anything below 1e-6 a pass)
# and about 0.1 to 1 for a wrong one.  To see the second, we also check a backward
# pass that forgets the 1/2 of dlogvar = dz * eps * sigma / 2.

# %%
bk = get_backend("numpy", dtype="float64", seed=SEED)
node = Reparameterize(bk)
batch, latent = 4, 3
eps_fixed = bk.standard_normal((batch, latent))


def forward(mu, logvar):
    return node.forward(mu, logvar, eps_fixed)


def backward(dz):
    dmu, dlogvar = node.backward(dz)
    return {"mu": dmu, "logvar": dlogvar}


errors = gradcheck.check_function(forward, backward, {"mu": rng.standard_normal((batch, latent)),
                                                      "logvar": rng.standard_normal((batch, latent))})
print(gradcheck.format_table(errors, threshold=1e-6, title="Reparameterize input"))


def backward_without_half(dz):
    dmu, dlogvar = node.backward(dz)
    return {"mu": dmu, "logvar": 2 * dlogvar}  # the bug: dz * eps * sigma


wrong_errors = gradcheck.check_function(forward, backward_without_half,
                                        {"mu": rng.standard_normal((batch, latent)),
                                         "logvar": rng.standard_normal((batch, latent))})
print(gradcheck.format_table(wrong_errors, threshold=1e-6, title="without the 1/2"))
claim("a backward pass without the 1/2 fails the check with a relative error between 0.1 and 1",
      0.1 < wrong_errors["logvar"] < 1, f"{wrong_errors['logvar']:.2f}")

# %% [markdown]
# And inside a whole (tiny) VAE: every weight of the mu and logvar heads
# receives its gradient through this node (plus the KL term of lesson 04).
# `check_model` holds eps fixed for the same reason as above.  It skips the
# few weights whose nudge by +-h would push a ReLU unit across its kink at 0,
# where the finite difference measures two slopes at once and disagrees with
# any correct derivative.

# %%
tiny = VAE(input_dim=12, hidden_dims=(8,), latent_dim=3, dtype="float64", seed=SEED)
x = rng.random((5, 12))
eps_model = rng.standard_normal((5, 3))
model_errors = gradcheck.check_model(tiny, x, eps=eps_model, skip_kinks=True)
print(gradcheck.format_table(model_errors, threshold=1e-6, title="VAE parameter"))
max_error = max(max(errors.values()), max(model_errors.values()))
print(f"largest relative error: {max_error:.1e}  (weights skipped next to a kink: "
      f"{sum(model_errors.skipped.values())} of {tiny.num_params})")
claim("Reparameterize.backward, and every weight's gradient in a tiny VAE, agree with finite "
      "differences to a relative error below 1e-6", max_error < 1e-6, f"{max_error:.1e}")

# %% [markdown]
# ## 4. The wrong formula: z = mu + sigma^2 * eps
#
# With logvar = log sigma^2 the encoder's variance is exp(logvar), and its
# standard deviation is exp(logvar / 2).  Writing z = mu + exp(logvar) * eps
# multiplies eps by the *variance*.  Two things break.
#
# **The samples have the wrong spread.**  Their standard deviation is
# sigma^2, not sigma: too narrow when sigma < 1, too wide when sigma > 1.
# The KL term (lesson 04) still computes the divergence for a variance of
# exp(logvar), so the model is penalised for one distribution and samples
# from another.

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
spread = {}
for ax, s in zip(axes, (0.5, 2.0)):
    lv = np.log(s ** 2)
    e = rng.standard_normal(200_000)
    right, wrong = mu + np.exp(lv / 2) * e, mu + np.exp(lv) * e
    grid = np.linspace(mu - 5 * max(s, s * s), mu + 5 * max(s, s * s), 400)
    bins = np.linspace(grid[0], grid[-1], 120)
    ax.hist(right, bins=bins, density=True, alpha=0.5, label=f"mu + sigma eps      (std {right.std():.3f})")
    ax.hist(wrong, bins=bins, density=True, alpha=0.5, label=f"mu + sigma^2 eps  (std {wrong.std():.3f})")
    ax.plot(grid, np.exp(-(grid - mu) ** 2 / (2 * s * s)) / (s * np.sqrt(2 * np.pi)), "k", lw=1.2,
            label=f"N(mu, sigma^2), sigma = {s}")
    ax.set_title(f"sigma = {s}: logvar = {lv:.3f}", fontsize=10)
    ax.set_xlabel("z")
    ax.legend(fontsize=8)
    print(f"sigma = {s}: sample std with sigma * eps {right.std():.3f}, with sigma^2 * eps {wrong.std():.3f}")
    spread[s] = (right.std(), wrong.std())
savefig(fig, "03_wrong_formula_samples.png")
claim("samples of mu + sigma^2 * eps have standard deviation sigma^2, not sigma (within 1%): too narrow "
      "for sigma = 0.5, too wide for sigma = 2",
      all(abs(w / s ** 2 - 1) < 0.01 and abs(r / s - 1) < 0.01 for s, (r, w) in spread.items()),
      ", ".join(f"sigma {s}: {r:.3f} and {w:.3f}" for s, (r, w) in spread.items()))

# %% [markdown]
# **The gradient answers a different question.**  Under the wrong formula
# dz/dlogvar = eps * exp(logvar), so the averaged gradient is the derivative
# of E[f] for a normal with variance exp(2 logvar): for our f that is
# 2 exp(2 logvar) instead of the true dJ/dlogvar = exp(logvar).  It agrees
# with the truth at exactly one point, logvar = log(1/2) -- by accident.
#
# The figure averages both gradients over many eps at a range of logvar
# values and puts them next to the true derivative.

# %%
logvars = np.linspace(-3, 1.5, 19)
e = rng.standard_normal(n_mc // 10)
right_grad, wrong_grad, right_se, wrong_se = [], [], [], []
for lv in logvars:
    zr = mu + np.exp(lv / 2) * e
    per_eps = df_dz(zr) * e * np.exp(lv / 2) / 2
    right_grad.append(per_eps.mean())
    right_se.append(per_eps.std() / np.sqrt(len(e)))
    zw = mu + np.exp(lv) * e
    per_eps = df_dz(zw) * e * np.exp(lv)
    wrong_grad.append(per_eps.mean())
    wrong_se.append(per_eps.std() / np.sqrt(len(e)))
right_off = np.abs(np.array(right_grad) - np.exp(logvars)) / np.array(right_se)
wrong_off = np.abs(np.array(wrong_grad) - 2 * np.exp(2 * logvars)) / np.array(wrong_se)

fig, ax = plt.subplots(figsize=(7, 4.5))
fine = np.linspace(logvars[0], logvars[-1], 200)
ax.plot(fine, np.exp(fine), "k", label="true dJ/dlogvar = exp(logvar)")
ax.plot(logvars, right_grad, "o", label="average of dz * eps * sigma / 2   (z = mu + sigma eps)")
ax.plot(logvars, wrong_grad, "s", label="average of dz * eps * sigma^2   (z = mu + sigma^2 eps)")
ax.set_yscale("log")
ax.set_xlabel("logvar")
ax.set_ylabel("gradient of E[(z - 3)^2] with respect to logvar")
ax.legend(fontsize=8)
ax.set_title("the right trick reproduces the true gradient; the wrong one does not", fontsize=10)
savefig(fig, "03_expected_gradient.png")

for k in (4, 16):  # logvar = -2 and logvar = 1
    print(f"at logvar = {logvars[k]:5.2f}: true {np.exp(logvars[k]):.4f}, right trick {right_grad[k]:.4f}, "
          f"wrong formula {wrong_grad[k]:.4f}")
claim("at every logvar, the right trick's average gradient is the true exp(logvar), within 4 standard errors",
      right_off.max() < 4, f"largest difference {right_off.max():.1f} standard errors")
claim("the wrong formula's average gradient is 2 exp(2 logvar), the derivative for variance exp(2 logvar), "
      "within 4 standard errors", wrong_off.max() < 4, f"largest difference {wrong_off.max():.1f} standard errors")
ratio_low, ratio_high = wrong_grad[4] / np.exp(logvars[4]), wrong_grad[16] / np.exp(logvars[16])
claim("the wrong gradient is less than half the true one at logvar = -2 and more than 3 times it at logvar = 1",
      ratio_low < 0.5 and ratio_high > 3, f"{ratio_low:.2f}x and {ratio_high:.2f}x the true gradient")

# %% [markdown]
# ## What we learned
#
# * A random draw has no derivative with respect to its parameters; finite
#   differences through fresh draws are noise.
# * Drawing eps first and computing z = mu + exp(logvar / 2) * eps makes z a
#   smooth function of mu and logvar.  Its gradients, dmu = dz and
#   dlogvar = dz * eps * sigma / 2, match finite differences (relative error
#   below 1e-6; a wrong backward pass scores 0.1 or more) and average to the
#   true gradient of the expected loss.
# * z = mu + exp(logvar) * eps samples with standard deviation sigma^2 and
#   follows the gradient of a different distribution from the one the KL term
#   measures.  Training still "works" -- it just trains the wrong model.

# %%
done()

# %% [markdown]
# ## Your turn: exercises
#
# Derive it yourself; the package's finite-difference checker grades your attempt
# (see `lessons/exercises/README.md`):
#
# - exercise 3: `lessons/exercises/03_reparameterize.py`, checked by `numpy-vae exercise 3`
