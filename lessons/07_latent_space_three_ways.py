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
#
# In a notebook, run  %env NUMPY_VAE_QUICK=1  before this cell for quick mode.
# Quick mode trains on the first 10,000 MNIST images for 3 epochs (300 steps
# per model) with a larger learning rate, 3e-3; full mode on all 60,000 for
# 10 epochs with the usual 1e-3.  The sentences below that a run can check
# are checked (`claim`, lessons/_common.py), and hold in both modes.

# %%
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent if "__file__" in globals() else Path.cwd()
sys.path.insert(0, str(HERE if (HERE / "_common.py").exists() else HERE / "lessons"))

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Circle
from _common import (claim, digit_legend, done, load_digits, nearest_mean_classifier, savefig, scatter_digits,
                     setup, show, train)

from numpy_vae import VAE

settings = setup("Lesson 07: the latent space three ways")
SEED = settings.seed  # every random draw below derives from it (--seed N, NUMPY_VAE_SEED=N)
data = load_digits(settings, n_train_quick=10000)
epochs = settings.pick(3, 10)
lr = settings.pick(3e-3, 1e-3)

# %% [markdown]
# ## A loss made of the KL term alone
#
# `VAE.loss_and_grads` always includes the reconstruction term.  For the
# KL-only model we write the step ourselves from the model's parts: the same
# forward and backward pass as `loss_and_grads` (numpy_vae/models.py) with
# the sampling, the decoder and the likelihood deleted.  The decoder's
# gradients are zero: with the reconstruction weighted 0, nothing depends on
# the decoder.
#
# The parts a `VAE` is made of (all built in `VAE.__init__`, numpy_vae/models.py):
#
# * `model.encoder`: the hidden layers, a `Sequential` of `Linear` and ReLU
#   layers (numpy_vae/layers.py), x (batch, 784) -> h (batch, 400);
# * `model.mu_head`, `model.logvar_head`: two `Linear` layers, h -> mu and
#   h -> log sigma^2, (batch, latent_dim) each;
# * `model.logvar_clip`: a `Clip` layer (numpy_vae/layers.py) that clamps the
#   log-variance to [-30, 20] (`ENCODER_LOGVAR_RANGE` in numpy_vae/models.py), so that
#   exp(logvar) can never overflow, even in float32 and for absurd inputs.
#   Its forward is min(max(x, -30), 20); its backward passes the gradient
#   through where the input was inside the range and sends 0 where it was
#   clamped.  A trained model stays far inside the range, so here it is the
#   identity, but `encode` and `loss_and_grads` always go through it, and so
#   do we;
# * `model.kl`: the closed-form KL of lesson 04 (`GaussianKL`,
#   numpy_vae/kl.py), per example, with its backward.  (`loss_and_grads` uses
#   `ReparameterizeKL` of numpy_vae/reparameterize.py instead, the sampling
#   of lesson 03 and this KL in one node; without the sampling, `kl` alone
#   is what we need.)
#
# Every layer follows one contract (the top of numpy_vae/layers.py):
# `forward(x)` remembers what its backward pass needs; `backward(dy)` takes
# dL/d(output), returns dL/d(input), and writes dL/d(parameter) into the
# layer's dict `.grads`, under the same names as its `.params` ("W", "b";
# "0.W", "0.b", ... for a `Sequential`, one per layer).  The model's own
# names prefix them with the part: "encoder.0.W", "mu.b", "decoder.1.W"
# (`model.params`); the optimizer wants the gradients under those names.


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
models["reconstruction only (beta = 0)"] = m = VAE(latent_dim=2, seed=SEED)
train(m, data.x_train, epochs=epochs, lr=lr, beta=0.0)
print("KL only:")
models["KL only"] = m = VAE(latent_dim=2, seed=SEED)
decoder_before = {k: v.copy() for k, v in m.params.items() if k.startswith("decoder.")}
train(m, data.x_train, epochs=epochs, lr=lr, loss_and_grads=kl_only_step(m))
print("both (beta = 1):")
models["both (beta = 1)"] = m = VAE(latent_dim=2, seed=SEED)
train(m, data.x_train, epochs=epochs, lr=lr, beta=1.0)

# %% [markdown]
# With zero gradients, Adam's step is zero too (its update is a ratio of
# running averages of the gradient, both 0), so the KL-only decoder should
# be exactly its random initialisation:

# %%
decoder_change = max(float(np.abs(models["KL only"].params[k] - v).max()) for k, v in decoder_before.items())
claim("the KL-only decoder is never changed by training", decoder_change == 0.0,
      f"largest change of a decoder weight {decoder_change:g}")

# %% [markdown]
# ## Numbers to go with the pictures
#
# For each model: the average size of the means |mu|, the median cloud width
# sigma, the KL, the share of codes outside the dashed circle of the figure
# (radius 2; for codes drawn from the prior N(0, I) itself that share is
# exp(-2) = 13.5%), and how much the code says about the digit, measured by
# classifying each test digit as the majority label of its 5 nearest
# training codes (5-NN accuracy; chance is about 10%).  Those training codes
# are sampled too, so even a perfect arrangement scores below 100% where
# clouds of different digits overlap.

# %%
rng = np.random.default_rng(SEED)


def sample_codes(model, x):
    mu, logvar = model.encode(x)
    return mu + np.exp(logvar / 2) * rng.standard_normal(mu.shape), mu, logvar


def knn_accuracy(train_codes, train_labels, test_codes, test_labels, k=5):
    d2 = ((test_codes[:, None, :] - train_codes[None, :, :]) ** 2).sum(axis=2)
    nearest = np.argsort(d2, axis=1)[:, :k]
    votes = np.array([np.bincount(train_labels[row], minlength=10).argmax() for row in nearest])
    return (votes == test_labels).mean()


n_ref = min(5000, len(data.x_train))
codes, stats = {}, {}
print(f"{'model':32s} {'mean |mu|':>9s} {'median sigma':>13s} {'KL (nats)':>10s} {'outside r=2':>12s} "
      f"{'5-NN accuracy':>14s}")
for name, model in models.items():
    z_test, mu, logvar = sample_codes(model, data.x_test)
    z_train, _, _ = sample_codes(model, data.x_train[:n_ref])
    codes[name] = z_test
    stats[name] = dict(
        sigma=float(np.median(np.exp(logvar / 2))),
        kl=float((0.5 * (mu ** 2 + np.exp(logvar) - 1 - logvar)).sum(axis=1).mean()),
        outside=float((np.sqrt((z_test ** 2).sum(axis=1)) > 2).mean()),
        knn=float(knn_accuracy(z_train, data.y_train[:n_ref], z_test, data.y_test)))
    print(f"{name:32s} {np.abs(mu).mean():9.3f} {stats[name]['sigma']:13.4f} {stats[name]['kl']:10.2f} "
          f"{stats[name]['outside']:12.1%} {stats[name]['knn']:13.1%}")
rec, kl_only, both = (stats[name] for name in models)

# %% [markdown]
# ## The picture
#
# Top: one sample code per test digit, coloured by digit; the dashed circle
# is two standard deviations of the prior N(0, I).  Note the different
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
# ## What the numbers say
#
# * Reconstruction alone: tiny clouds (median sigma below 0.05; a few
#   thousandths here), and codes spread beyond the prior: more than a
#   quarter of them outside the circle that holds 86.5% of the prior's mass.
#   The digit classes occupy their own regions (5-NN accuracy far above
#   chance) -- not cleanly separated: with two numbers for a whole digit,
#   similar digits such as 4 and 9 overlap, and 5-NN accuracy stays well
#   below 100%.  The prior covers only the middle of the spread, so prior
#   samples decode to the digits whose codes happen to sit near the origin,
#   and to blends of them.

# %%
claim("reconstruction alone: the clouds are tiny (median sigma < 0.05)", rec["sigma"] < 0.05,
      f"median sigma {rec['sigma']:.4f}")
claim("reconstruction alone: more than a quarter of the codes lie outside the prior's radius-2 circle",
      rec["outside"] > 0.25, f"{rec['outside']:.1%} outside (prior: 13.5%)")
claim("reconstruction alone: the code tells the digit far above chance (5-NN accuracy > 30%)",
      rec["knn"] > 0.30, f"5-NN accuracy {rec['knn']:.1%}")

# %% [markdown]
# * KL alone: a match to the prior (KL close to 0) and no information about
#   the digit (5-NN accuracy at chance, about 10%); the decoder never learns
#   anything.

# %%
claim("KL alone: the KL is close to 0 (< 0.1 nats)", kl_only["kl"] < 0.1, f"KL {kl_only['kl']:.3f} nats")
claim("KL alone: 5-NN accuracy is at chance (< 15%)", kl_only["knn"] < 0.15, f"5-NN accuracy {kl_only['knn']:.1%}")

# %% [markdown]
# * Both: the clouds widen (sigma many times larger than with reconstruction
#   alone), the codes are pulled in towards the prior's region (fewer of them
#   outside the circle), and the code still tells the digit far above chance.
#   So a random draw from N(0, I) lands among the training digits' codes,
#   and decodes to a digit.  Lesson 10 turns the dial beta between these
#   extremes.

# %%
claim("both: the clouds are more than 5 times wider than with reconstruction alone",
      both["sigma"] > 5 * rec["sigma"], f"median sigma {both['sigma']:.3f} vs {rec['sigma']:.4f}")
claim("both: fewer codes lie outside the radius-2 circle than with reconstruction alone",
      both["outside"] < rec["outside"], f"{both['outside']:.1%} vs {rec['outside']:.1%}")
claim("both: the code tells the digit far above chance (5-NN accuracy > 30%)",
      both["knn"] > 0.30, f"5-NN accuracy {both['knn']:.1%}")

# %% [markdown]
# "Decodes to a digit", in numbers.  For 200 draws z ~ N(0, I), decoded, we
# measure the pixel distance to the nearest of 2000 training digits, and
# compare it with the same distance for 200 reconstructed test digits,
# decode(mu(x)) (the decoder's output is always a little blurred, so a fair
# comparison is with the decoder's own output; lesson 08 does the same).  A
# decoded draw that is a digit sits about as close to the training digits as
# the reconstruction does; the KL-only model's noise sits far from all of
# them (farther than the ELBO model's reconstructions, which we use as the
# yardstick for all three models).
# And the draws are not one digit over and over: the nearest-class-mean
# recogniser of lesson 08 (`nearest_mean_classifier`, lessons/_common.py)
# finds many different digits among them.  (The reconstruction-only model's
# draws score about as well on the distance: they decode the digits whose
# codes happen to sit near the origin, as said above.  The distance tells a
# decoder that draws digits from one that draws noise, not the two trained
# models apart; the scatter plots do that.)

# %%
def nearest_distance(a, b):
    d2 = (a ** 2).sum(1)[:, None] - 2 * a @ b.T + (b ** 2).sum(1)[None, :]
    return np.sqrt(np.maximum(d2, 0).min(axis=1))


reference = data.x_train[:2000].astype(np.float64)
recognise = nearest_mean_classifier(data.x_train, data.y_train)
prior_z = np.random.default_rng(SEED + 1).standard_normal((200, 2))
name_both, name_kl = "both (beta = 1)", "KL only"
yardstick = float(np.median(nearest_distance(
    models[name_both].reconstruct(data.x_test[:200]).astype(np.float64), reference)))
far_ratio, kinds = {}, {}
for name, model in models.items():
    drawn = model.decode(prior_z).astype(np.float64)
    far_ratio[name] = float(np.median(nearest_distance(drawn, reference))) / yardstick
    kinds[name] = np.bincount(recognise(drawn), minlength=10)
    print(f"{name:32s} decoded N(0, I) draws: {far_ratio[name]:.2f} x as far from the nearest training digit "
          f"as the ELBO model's reconstructions; recognised digits 0..9: {kinds[name].tolist()}")
claim("both: a random draw from N(0, I) decodes to a digit: decoded draws lie less than 1.3 times as far "
      "from the nearest training digit as reconstructed test digits do (KL only: more than 2 times)",
      far_ratio[name_both] < 1.3 and far_ratio[name_kl] > 2,
      f"both {far_ratio[name_both]:.2f}, KL only {far_ratio[name_kl]:.2f}")
claim("both: the decoded draws are many different digits: the recogniser finds at least 6 digits "
      "among the 200 (5 or more each)", (kinds[name_both] >= 5).sum() >= 6,
      f"{int((kinds[name_both] >= 5).sum())} digits: {kinds[name_both].tolist()}")

# %%
done()

# %% [markdown]
# ## Your turn: exercises
#
# Derive it yourself; the package's finite-difference checker grades your attempt
# (see `lessons/exercises/README.md`):
#
# - exercise 4: `lessons/exercises/04_kl.py`, checked by `numpy-vae exercise 4`
# - exercise 5: `lessons/exercises/05_bernoulli_nll.py`, checked by `numpy-vae exercise 5`
