# %% [markdown]
# # Lesson 02 -- From points to distributions
#
# The autoencoder of lesson 01 maps each digit to one point.  The VAE's
# encoder maps each digit to a small *cloud* of points instead: a Gaussian
# q(z | x) with a mean mu(x) and a variance sigma^2(x) per coordinate,
#
#     h          = encoder(x)                   hidden layer(s)
#     mu         = mu_head(h)                   (batch, latent_dim)
#     logvar     = logvar_head(h)               (batch, latent_dim), log sigma^2
#     q(z | x)   = N(mu, diag(exp(logvar)))
#
# (numpy_vae/models.py, `VAE.encode`, two `Linear` heads on the same hidden
# layer.)  Why predict log sigma^2 and not sigma?  A Linear layer can output
# any real number; exp turns any real number into a positive variance, and
# small variances (logvar = -6 means sigma = 0.05) are as easy to reach as
# large ones.  From logvar:
#
#     sigma = exp(logvar / 2)          (the square root of exp(logvar))
#
# To use the cloud we sample from it.  With eps a standard normal number,
#
#     z = mu + sigma * eps
#
# is a draw from N(mu, sigma^2): shifting a standard normal by mu moves its
# mean to mu, stretching it by sigma stretches its standard deviation to
# sigma.  (Lesson 03 explains why this way of writing the sample is also the
# key to training.)
#
# **Quick mode** (a third of MNIST, fewer epochs; under a minute): run
# `python lessons/02_points_to_distributions.py --quick`, or in a notebook run
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
from matplotlib.patches import Circle, Ellipse
from _common import claim, digit_legend, done, knn_accuracy, load_digits, savefig, scatter_digits, setup, show

from numpy_vae import VAE, Adam

settings = setup("Lesson 02: from points to distributions")
SEED = settings.seed  # every random draw below derives from it (--seed N, NUMPY_VAE_SEED=N)
data = load_digits(settings, n_train_quick=20_000)

# %% [markdown]
# ## What an encoder outputs
#
# A fresh (untrained) VAE with a 2-number latent space, shown one digit:

# %%
model = VAE(latent_dim=2, seed=SEED)
x = data.x_test[:1]
mu, logvar = model.encode(x)
sigma = np.exp(logvar / 2)
print(f"digit {data.y_test[0]}:  mu = {np.round(mu[0], 3)}   logvar = {np.round(logvar[0], 3)}"
      f"   sigma = exp(logvar/2) = {np.round(sigma[0], 3)}")

# %% [markdown]
# Sampling from q(z | x): many draws z = mu + sigma * eps.  Their mean and
# standard deviation should be mu and sigma, up to sampling noise of about
# sigma / sqrt(n).

# %%
rng = np.random.default_rng(SEED)
n = 100_000
eps = rng.standard_normal((n, 2))
z = mu + sigma * eps
print(f"{n} samples:  mean {np.round(z.mean(axis=0), 3)} (mu {np.round(mu[0], 3)}),"
      f"  std {np.round(z.std(axis=0), 3)} (sigma {np.round(sigma[0], 3)})")
# Standard errors: sigma / sqrt(n) for the mean, about sigma / sqrt(2 n) for the std.
z_mean = np.abs(z.mean(axis=0) - mu[0]) / (sigma[0] / np.sqrt(n))
z_std = np.abs(z.std(axis=0) - sigma[0]) / (sigma[0] / np.sqrt(2 * n))
claim("the samples' mean is mu and their std is sigma, within 4 standard errors",
      np.all(z_mean < 4) and np.all(z_std < 4),
      f"mean off by {z_mean.max():.1f}, std off by {z_std.max():.1f} standard errors")

# %% [markdown]
# ## After training
#
# We train this VAE the way lesson 01 trained the autoencoder (lesson 05
# explains the loss, lesson 06 the loop).  Its loss has a second term besides
# the reconstruction error: the KL divergence (lesson 04), which pulls every
# cloud towards the standard normal N(0, I).  That pull is what gives the
# code space a known shape: compare the means below with the autoencoder's
# codes in lesson 01, which sat anywhere, at any scale.

# %%
# Quick mode: fewer epochs on a third of the data, with larger batches and a
# larger learning rate; full mode: all of MNIST for 10 epochs.
epochs, batch_size, learning_rate = settings.pick((4, 200, 3e-3), (10, 100, 1e-3))
opt = Adam(model.params, lr=learning_rate, backend=model.backend)
for epoch in range(epochs):
    order = rng.permutation(len(data.x_train))
    for start in range(0, len(order), batch_size):
        loss, grads, info = model.loss_and_grads(data.x_train[order[start:start + batch_size]])
        opt.step(grads)
    print(f"  epoch {epoch + 1}: loss {float(info['loss']):6.1f} = reconstruction "
          f"{float(info['recon']):6.1f} + KL {float(info['kl']):4.1f} nats")

mu, logvar = model.encode(data.x_test)
sigma = np.exp(logvar / 2)
print(f"means of the test digits: average {np.round(mu.mean(axis=0), 2)}, spread (std) {np.round(mu.std(axis=0), 2)}")
print(f"posterior standard deviations sigma: median {np.round(np.median(sigma, axis=0), 3)} per coordinate")
narrower = np.median(mu.std(axis=0) / np.median(sigma, axis=0))
print(f"-> each digit's cloud is about {narrower:.0f} times narrower than the spread of all the means")
claim("each digit's cloud is narrower than the spread of all the means, by more than 3 times",
      narrower > 3, f"{narrower:.1f} times")

# %% [markdown]
# ## The clouds
#
# Every dot is the mean mu(x) of one test digit.  For a dozen digits we also
# draw the cloud itself, an ellipse of two standard deviations around the
# mean (it holds about 86% of the samples: for a 2-D Gaussian the share
# inside k standard deviations is 1 - exp(-k^2 / 2), and 1 - exp(-2) = 86.5%;
# 20 draws z = mu + sigma * eps for each test digit check it below).  The dashed circle is two
# standard deviations of the prior N(0, I), the distribution we will sample
# new codes from in lesson 08.  The clouds are small, so different digits
# stay distinguishable; the means fill the prior's circle, so a random draw
# from N(0, I) usually lands near some digit.  The checks after the figure
# put numbers on each of these: the 5-nearest-neighbour accuracy of the means
# (lesson 01's measure), the share of means inside the circle, and how far a
# draw from N(0, I) lands from the nearest mean compared with how far means
# lie from each other (lesson 01's autoencoder: several times farther).

# %%
fig, ax = plt.subplots(figsize=(7.5, 6.5))
scatter_digits(ax, mu, data.y_test, "means mu(x) of the test digits, and 2-sigma clouds of twelve of them")
for i in range(12):
    ax.add_patch(Ellipse(mu[i], 4 * sigma[i, 0], 4 * sigma[i, 1], fill=False, lw=1.5,
                         color=plt.get_cmap("tab10")(data.y_test[i])))
    ax.annotate(str(data.y_test[i]), mu[i], fontsize=9, ha="center", va="center", weight="bold")
ax.add_patch(Circle((0, 0), 2, fill=False, ls="--", color="k", lw=1))
digit_legend(ax)
savefig(fig, "02_posteriors.png")


def nearest_distance(points, reference):
    """For each point, the Euclidean distance to its nearest row of ``reference``."""
    d2 = (points ** 2).sum(1)[:, None] - 2 * points @ reference.T + (reference ** 2).sum(1)[None, :]
    return np.sqrt(np.maximum(d2, 0).min(axis=1))


knn = knn_accuracy(mu, data.y_test)
inside = float((np.hypot(mu[:, 0], mu[:, 1]) < 2).mean())
means = mu.astype(np.float64)
half = len(means) // 2
prior_draws = rng.standard_normal((500, 2))
gap = (np.median(nearest_distance(prior_draws, means[half:]))
       / np.median(nearest_distance(means[:half], means[half:])))
print(f"5-NN accuracy of the means {knn:.0%};  means inside the prior's 2-sigma circle {inside:.0%};  "
      f"a draw from N(0, I) is {gap:.1f}x farther from the nearest mean than means are from each other")
draws = mu[None] + sigma[None] * rng.standard_normal((20,) + mu.shape)  # 20 draws from each cloud
in_ellipse = float(((((draws - mu[None]) / sigma[None]) ** 2).sum(axis=-1) < 4).mean())
print(f"draws z = mu + sigma * eps inside their own cloud's 2-sigma ellipse: {in_ellipse:.1%} "
      f"of {draws.shape[0] * draws.shape[1]}")
claim("a cloud's 2-sigma ellipse holds about 86% of its samples (within 1 percentage point)",
      abs(in_ellipse - 0.865) < 0.01, f"{in_ellipse:.1%} of {draws.shape[0] * draws.shape[1]} draws")
claim("different digits stay distinguishable: 5-nearest-neighbour accuracy of the means above 35%, "
      "more than three times guessing", knn > 0.35, f"{knn:.0%}")
claim("the means fill the prior's circle: centred within 0.5 of 0, spread (std) between 0.5 and 1.5 "
      "per coordinate, and more than 70% inside the circle",
      np.all(np.abs(mu.mean(axis=0)) < 0.5) and np.all((mu.std(axis=0) > 0.5) & (mu.std(axis=0) < 1.5))
      and inside > 0.70,
      f"average {np.round(mu.mean(axis=0), 2)}, std {np.round(mu.std(axis=0), 2)}, inside {inside:.0%}")
claim("a draw from N(0, I) lands near some digit: less than 2x farther from the nearest mean than "
      "means are from each other", gap < 2, f"{gap:.1f}x")

# %% [markdown]
# ## Decoding samples from one cloud
#
# For each digit on the left: the decoded mean, then eight decoded samples
# z = mu + sigma * eps.  Small moves inside the cloud change the stroke a
# little, not the digit: the decoder has learned that the whole cloud means
# "this digit", which is exactly the property the autoencoder lacked.  (With
# only two numbers, similar digits share a region: a 4 may come back as a 9.)

# %%
rows, within = [], []
for i in range(6):
    eps = rng.standard_normal((8, 2))
    samples = mu[i] + sigma[i] * eps
    at_mean, at_samples = model.decode(mu[i])[0], model.decode(samples)
    rows += [data.x_test[i], at_mean, *at_samples]
    within.append(np.sqrt(((at_samples - at_mean) ** 2).sum(axis=1)).mean())
fig, ax = plt.subplots(figsize=(8, 5.5))
show(ax, np.array(rows), 10, "left to right: the test digit, decode(mu), decode(mu + sigma * eps) for 8 draws of eps")
savefig(fig, "02_samples_from_q.png")

# %% [markdown]
# "A little" in numbers: the pixel distance between decode(mu) and a decoded
# sample of the same cloud, against the distance between decode(mu) of two
# different test digits.

# %%
decoded_means = model.decode(mu[:200])
between = np.sqrt(((decoded_means[:100] - decoded_means[100:200]) ** 2).sum(axis=1)).mean()
print(f"pixel distance: sample to its cloud's decoded mean {np.mean(within):.2f};  "
      f"between the decoded means of two different digits {between:.2f}")
claim("moves inside a cloud change the picture less than half as much as moving to another digit's mean",
      np.mean(within) < 0.5 * between, f"{np.mean(within):.2f} against {between:.2f}")

# %% [markdown]
# ## What we learned
#
# * The VAE's encoder outputs two vectors, mu and logvar = log sigma^2: a
#   Gaussian cloud per digit instead of a point.
# * z = mu + sigma * eps, with sigma = exp(logvar / 2) and eps ~ N(0, I),
#   is a sample from that cloud.
# * The decoder is trained on samples, so every point of a cloud must decode
#   to the digit, and the KL term keeps the clouds inside N(0, I).
#
# Next: how can we train through a random sample?  Lesson 03.

# %%
done()

# %% [markdown]
# ## Your turn: exercises
#
# Derive it yourself; the package's finite-difference checker grades your attempt
# (see `lessons/exercises/README.md`):
#
# - exercise 3: `lessons/exercises/03_reparameterize.py`, checked by `numpy-vae exercise 3`
