# %% [markdown]
# # Lesson 07 -- The latent space three ways
#
# The VAE's loss has two terms pulling in different directions:
#
#     loss = reconstruction (-log p(x | z))  +  beta * KL(q(z | x) || N(0, I))
#
# This lesson trains the same 2-D VAE three times -- with each term alone and
# with both -- and looks at where the test digits land in the latent plane:
#
# 1. **Reconstruction only** (beta = 0).  Nothing keeps the codes near the
#    origin or the clouds wide.  The encoder shrinks its variance towards 0
#    (noise only hurts reconstruction) and spreads the classes apart: an
#    autoencoder again, with lesson 01's gaps.
# 2. **KL only** (the reconstruction term weighted 0).  Every cloud is pulled
#    onto the prior N(0, I), whatever the digit: the KL is zero exactly when
#    q(z | x) = N(0, I) for every x.  All classes land on the same blob and
#    the code says nothing about the digit.  The decoder receives no
#    gradient at all and stays at its random initial weights.
# 3. **Both** (beta = 1, the ELBO).  The classes stay apart, as
#    reconstruction needs, inside the region the prior covers, as the KL
#    needs.  Now a random draw from N(0, I) decodes to a digit.
#
# Each dot below is one sample z = mu + sigma * eps per test digit: where the
# codes really land, cloud width included.

# %%
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent if "__file__" in globals() else Path.cwd()
sys.path.insert(0, str(HERE if (HERE / "_common.py").exists() else HERE / "lessons"))

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Circle
from _common import digit_legend, done, load_digits, savefig, scatter_digits, setup, show, train

from numpy_vae import VAE

settings = setup("Lesson 07: the latent space three ways")
data = load_digits(settings)
epochs = settings.pick(2, 10)

# %% [markdown]
# ## A loss made of the KL term alone
#
# `VAE.loss_and_grads` always includes the reconstruction term.  For the
# KL-only model we write the step ourselves from the model's parts: the same
# forward and backward pass as `loss_and_grads` (numpy_vae/models.py) with
# the sampling, the decoder and the likelihood deleted.  The decoder's
# gradients are zero: with the reconstruction weighted 0, nothing depends on
# the decoder.


# %%
def kl_only_step(model):
    """A replacement for model.loss_and_grads whose loss is the mean KL alone."""
    xp = model.backend.xp

    def step(x, beta):
        batch = x.shape[0]
        h = model.encoder.forward(x)
        mu = model.mu_head.forward(h)
        logvar = model.logvar_clip.forward(model.logvar_head.forward(h))
        kl = model.kl.forward(mu, logvar).mean()
        dkl = xp.full((batch,), 1.0 / batch, dtype=model.backend.dtype)  # d(mean)/d(kl_n)
        dmu, dlogvar = model.kl.backward(dkl)
        dh = model.mu_head.backward(dmu) + model.logvar_head.backward(model.logvar_clip.backward(dlogvar))
        model.encoder.backward(dh)
        grads = {f"encoder.{k}": g for k, g in model.encoder.grads.items()}
        grads.update({f"mu.{k}": g for k, g in model.mu_head.grads.items()})
        grads.update({f"logvar.{k}": g for k, g in model.logvar_head.grads.items()})
        grads.update({k: xp.zeros_like(p) for k, p in model.params.items() if k.startswith("decoder.")})
        return kl, grads, {"loss": kl, "recon": float("nan"), "kl": kl}

    return step


# %% [markdown]
# ## Three trainings

# %%
models = {}
print("reconstruction only (beta = 0):")
models["reconstruction only (beta = 0)"] = m = VAE(latent_dim=2, seed=0)
train(m, data.x_train, epochs=epochs, beta=0.0)
print("KL only:")
models["KL only"] = m = VAE(latent_dim=2, seed=0)
train(m, data.x_train, epochs=epochs, loss_and_grads=kl_only_step(m))
print("both (beta = 1):")
models["both (beta = 1)"] = m = VAE(latent_dim=2, seed=0)
train(m, data.x_train, epochs=epochs, beta=1.0)

# %% [markdown]
# ## Numbers to go with the pictures
#
# For each model: the average size of the means |mu|, the median cloud width
# sigma, the KL, and how much the code says about the digit, measured by
# classifying each test digit as the majority label of its 5 nearest
# training codes (chance is about 10%).

# %%
rng = np.random.default_rng(0)


def sample_codes(model, x):
    mu, logvar = model.encode(x)
    return mu + np.exp(logvar / 2) * rng.standard_normal(mu.shape), mu, logvar


def knn_accuracy(train_codes, train_labels, test_codes, test_labels, k=5):
    d2 = ((test_codes[:, None, :] - train_codes[None, :, :]) ** 2).sum(axis=2)
    nearest = np.argsort(d2, axis=1)[:, :k]
    votes = np.array([np.bincount(train_labels[row], minlength=10).argmax() for row in nearest])
    return (votes == test_labels).mean()


n_ref = min(5000, len(data.x_train))
codes = {}
print(f"{'model':32s} {'mean |mu|':>9s} {'median sigma':>13s} {'KL (nats)':>10s} {'5-NN accuracy':>14s}")
for name, model in models.items():
    z_test, mu, logvar = sample_codes(model, data.x_test)
    z_train, _, _ = sample_codes(model, data.x_train[:n_ref])
    codes[name] = z_test
    kl = (0.5 * (mu ** 2 + np.exp(logvar) - 1 - logvar)).sum(axis=1).mean()
    acc = knn_accuracy(z_train, data.y_train[:n_ref], z_test, data.y_test)
    print(f"{name:32s} {np.abs(mu).mean():9.3f} {np.median(np.exp(logvar / 2)):13.4f} {kl:10.2f} {acc:13.1%}")

# %% [markdown]
# ## The picture
#
# Top: one sample code per test digit, coloured by digit; the dashed circle
# is two standard deviations of the prior N(0, I).  Note the very different
# axis scales.  Bottom: 36 codes drawn from the prior, decoded -- what each
# model would *generate*.  The KL-only decoder was never trained: its
# "samples" are the noise of its random initial weights.

# %%
fig, axes = plt.subplots(2, 3, figsize=(16, 10), gridspec_kw={"height_ratios": [1.1, 1]})
for col, (name, model) in enumerate(models.items()):
    ax = axes[0, col]
    scatter_digits(ax, codes[name], data.y_test, name, s=4)
    ax.add_patch(Circle((0, 0), 2, fill=False, ls="--", color="k", lw=1))
    ax.autoscale_view()
    show(axes[1, col], model.sample(36), 6, f"{name}: decoded prior samples")
digit_legend(axes[0, 2])
savefig(fig, "07_latent_three_ways.png")

# %% [markdown]
# ## What we learned
#
# * Reconstruction alone: well separated classes, tiny clouds (sigma of a
#   few thousandths), codes spread far outside N(0, I).  The prior covers
#   only the middle of that spread, so prior samples decode to the few
#   digits whose codes happen to sit near the origin, and to blends of them.
# * KL alone: a perfect match to the prior and no information about the
#   digit (5-NN accuracy at chance); the decoder never learns anything.
# * Both: the classes arranged inside the prior's circle, so prior samples
#   decode to digits.  Lesson 10 turns the dial beta between these extremes.

# %%
done()
