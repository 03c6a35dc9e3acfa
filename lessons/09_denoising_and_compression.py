# %% [markdown]
# # Lesson 09 -- Denoising, filling in, and how many numbers a digit needs
#
# A VAE's decoder only knows how to draw digits.  Whatever code the encoder
# produces, the output is digit-shaped.  That makes the round trip
# x -> mu(x) -> decode(mu) a cleaning operation: noise the model has never
# seen is simply not something it can draw.  This lesson tries it on two
# kinds of damage:
#
# * **salt and pepper noise**: 20% of the pixels set to black or white at random;
# * **a hidden half**: the bottom half of the image blanked out.  Here one
#   round trip is not enough, so we iterate: keep the visible pixels, replace
#   the hidden ones with the model's guess, and encode again.
#
# Then the compression question from lesson 01, answered with the ELBO: how
# many latent numbers does a digit need?  We train VAEs with 2, 5, 10 and 20
# latent dimensions and compare their test ELBO, and how much of that
# capacity each one actually uses.

# %%
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent if "__file__" in globals() else Path.cwd()
sys.path.insert(0, str(HERE if (HERE / "_common.py").exists() else HERE / "lessons"))

import matplotlib.pyplot as plt
import numpy as np
from _common import done, evaluate, load_digits, savefig, setup, show, train

from numpy_vae import VAE

settings = setup("Lesson 09: denoising and compression")
data = load_digits(settings)
epochs = settings.pick(2, 8)
latent_dims = [2, 5, 10, 20]

# %% [markdown]
# ## Four models, from 2 to 20 latent numbers
#
# Same 784-400-k architecture, same training (the loop of lesson 06), only
# the latent size k changes.

# %%
models = {}
for k in latent_dims:
    print(f"latent_dim = {k}:")
    models[k] = VAE(latent_dim=k, seed=0)
    train(models[k], data.x_train, epochs=epochs, quiet=settings.quick)

# %% [markdown]
# ## How many numbers a digit needs
#
# For each model: the test ELBO and its two terms, the mean squared error of
# the reconstruction decode(mu(x)) against the grey-level digit, and the
# number of *active* latent dimensions -- those whose KL, averaged over the
# test digits, exceeds 0.01 nats (a dimension the encoder ignores sits at the
# prior, KL 0; lesson 10).
#
# More dimensions: a lower reconstruction error and a higher KL, the price of
# the extra information.  The ELBO improves quickly from 2 to 10 numbers and
# little after: most of what distinguishes one MNIST digit from another fits
# in about ten numbers.

# %%
rows = []
print(f"\n{'latent_dim':>10s} {'test ELBO':>10s} {'recon':>8s} {'KL':>7s} {'MSE/pixel':>10s} {'active':>7s}")
for k, model in models.items():
    result = evaluate(model, data.x_test_bin)
    mu, logvar = model.encode(data.x_test)
    kl_per_dim = (0.5 * (mu ** 2 + np.exp(logvar) - 1 - logvar)).mean(axis=0)
    mse = float(((model.reconstruct(data.x_test) - data.x_test) ** 2).mean())
    active = int((kl_per_dim > 0.01).sum())
    rows.append((k, result["elbo"], result["recon"], result["kl"], mse, active))
    print(f"{k:10d} {result['elbo']:10.2f} {result['recon']:8.2f} {result['kl']:7.2f} {mse:10.4f} {active:4d}/{k}")
rows = np.array(rows)

fig, (ax_l, ax_r) = plt.subplots(1, 2, figsize=(13, 4.6), gridspec_kw={"width_ratios": [1, 1.25]})
ax_l.plot(rows[:, 0], -rows[:, 1], "o-", label="-ELBO (lower is better)")
ax_l.plot(rows[:, 0], rows[:, 2], "s-", label="reconstruction -log p(x|z)")
ax_l.set_xscale("log", base=2)
ax_l.set_xticks(latent_dims, [str(k) for k in latent_dims])
ax_l.set_xlabel("latent dimensions")
ax_l.set_ylabel("nats per test image")
ax_k = ax_l.twinx()
ax_k.plot(rows[:, 0], rows[:, 3], "^--", color="C2", label="KL (right axis)")
ax_k.set_ylabel("KL (nats)", color="C2")
lines = ax_l.get_legend_handles_labels()[0] + ax_k.get_legend_handles_labels()[0]
ax_l.legend(lines, [h.get_label() for h in lines], fontsize=8, loc="center right")
ax_l.set_title("test ELBO and its two terms against the size of z", fontsize=10)
x = data.x_test[:10]
show(ax_r, np.vstack([x] + [models[k].reconstruct(x) for k in latent_dims]), 10,
     "test digits and their reconstructions", row_labels=["test"] + [f"k = {k}" for k in latent_dims])
savefig(fig, "09_latent_dim_sweep.png")

# %% [markdown]
# ## Denoising
#
# The 20-dimensional model sees digits with 20% of their pixels replaced by
# random black or white.  We score images by their mean squared error
# against the clean digit.

# %%
model = models[20]
rng = np.random.default_rng(0)
clean = data.x_test[:1000]
hit = rng.random(clean.shape) < 0.2
noisy = np.where(hit, rng.integers(0, 2, clean.shape), clean).astype(np.float32)
denoised = model.reconstruct(noisy)


def mse(a, b):
    return float(((a - b) ** 2).mean())


print(f"salt and pepper: MSE noisy {mse(noisy, clean):.4f} -> after one round trip {mse(denoised, clean):.4f}")

# %% [markdown]
# ## Filling in a hidden half
#
# The bottom 14 rows are set to 0.  One round trip fills the hole with the
# model's guess, but the encoder saw a half-blank digit, and its guess is
# timid.  So we iterate, keeping what we know:
#
#     x_0 = the damaged digit
#     x_{t+1} = visible pixels of the original, and decode(mu(x_t)) in the hidden ones
#
# Each pass the encoder sees a more complete digit and the guess sharpens.
# (This is a simple fixed-point scheme, not exact inference; the IWAE
# machinery of lesson 11 or MCMC would be the principled tools.)

# %%
hidden = np.zeros((28, 28), dtype=bool)
hidden[14:, :] = True
hidden = hidden.reshape(-1)
damaged = np.where(hidden, 0.0, clean).astype(np.float32)
fills = {0: damaged}
current = damaged
for t in range(1, 21):
    current = np.where(hidden, model.reconstruct(current), clean).astype(np.float32)
    fills[t] = current


def hidden_mse(a):
    return float(((a[:, hidden] - clean[:, hidden]) ** 2).mean())


for t in (0, 1, 5, 20):
    print(f"hidden half, {t:2d} passes: MSE on the hidden pixels {hidden_mse(fills[t]):.4f}")

fig, axes = plt.subplots(6, 1, figsize=(9, 7.4))
show(axes[0], clean[:10], 10, "clean test digits")
show(axes[1], noisy[:10], 10, "20% salt and pepper")
show(axes[2], denoised[:10], 10, "decode(mu(noisy))")
show(axes[3], damaged[:10], 10, "bottom half hidden")
show(axes[4], fills[1][:10], 10, "filled in, 1 pass (top half kept)")
show(axes[5], fills[20][:10], 10, "filled in, 20 passes")
savefig(fig, "09_denoising.png")

# %% [markdown]
# ## What we learned
#
# * A VAE trained only on clean digits removes salt-and-pepper noise: its
#   decoder draws digits, not noise.  Filling in a hidden half works better
#   when the guess is fed back a few times.
# * The test ELBO improves fast from 2 to about 10 latent numbers and slowly
#   after; extra dimensions beyond what the data needs are left unused
#   (lesson 10 looks at that closely).

# %%
done()
