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

# %%
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent if "__file__" in globals() else Path.cwd()
sys.path.insert(0, str(HERE if (HERE / "_common.py").exists() else HERE / "lessons"))

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Circle, Ellipse
from _common import digit_legend, done, load_digits, savefig, scatter_digits, setup, show

from numpy_vae import VAE, Adam

settings = setup("Lesson 02: from points to distributions")
data = load_digits(settings)

# %% [markdown]
# ## What an encoder outputs
#
# A fresh (untrained) VAE with a 2-number latent space, shown one digit:

# %%
model = VAE(latent_dim=2, seed=0)
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
rng = np.random.default_rng(0)
n = 100_000
eps = rng.standard_normal((n, 2))
z = mu + sigma * eps
print(f"{n} samples:  mean {np.round(z.mean(axis=0), 3)} (mu {np.round(mu[0], 3)}),"
      f"  std {np.round(z.std(axis=0), 3)} (sigma {np.round(sigma[0], 3)})")

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
epochs = settings.pick(3, 10)
opt = Adam(model.params, lr=1e-3, backend=model.backend)
for epoch in range(epochs):
    order = rng.permutation(len(data.x_train))
    for start in range(0, len(order), 100):
        loss, grads, info = model.loss_and_grads(data.x_train[order[start:start + 100]])
        opt.step(grads)
    print(f"  epoch {epoch + 1}: loss {float(info['loss']):6.1f} = reconstruction "
          f"{float(info['recon']):6.1f} + KL {float(info['kl']):4.1f} nats")

mu, logvar = model.encode(data.x_test)
sigma = np.exp(logvar / 2)
print(f"means of the test digits: average {np.round(mu.mean(axis=0), 2)}, spread (std) {np.round(mu.std(axis=0), 2)}")
print(f"posterior standard deviations sigma: median {np.round(np.median(sigma, axis=0), 3)} per coordinate")
print(f"-> each digit's cloud is about {np.median(mu.std(axis=0) / np.median(sigma, axis=0)):.0f} times "
      f"narrower than the spread of all the means")

# %% [markdown]
# ## The clouds
#
# Every dot is the mean mu(x) of one test digit.  For a dozen digits we also
# draw the cloud itself, an ellipse of two standard deviations around the
# mean (it holds about 86% of the samples).  The dashed circle is two
# standard deviations of the prior N(0, I), the distribution we will sample
# new codes from in lesson 08.  The clouds are small, so different digits
# stay distinguishable; the means fill the prior's circle, so a random draw
# from N(0, I) usually lands near some digit.

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

# %% [markdown]
# ## Decoding samples from one cloud
#
# For each digit on the left: the decoded mean, then eight decoded samples
# z = mu + sigma * eps.  Small moves inside the cloud change the stroke a
# little, not the digit: the decoder has learned that the whole cloud means
# "this digit", which is exactly the property the autoencoder lacked.  (With
# only two numbers, similar digits share a region: a 4 may come back as a 9.)

# %%
rows = []
for i in range(6):
    eps = rng.standard_normal((8, 2))
    samples = mu[i] + sigma[i] * eps
    rows += [data.x_test[i], model.decode(mu[i])[0], *model.decode(samples)]
fig, ax = plt.subplots(figsize=(8, 5.5))
show(ax, np.array(rows), 10, "left to right: the test digit, decode(mu), decode(mu + sigma * eps) for 8 draws of eps")
savefig(fig, "02_samples_from_q.png")

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
