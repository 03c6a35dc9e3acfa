# %% [markdown]
# # Lesson 09 -- How many numbers a digit needs; denoising and filling in
#
# First the compression question from lesson 01, answered with the ELBO: how
# many latent numbers does a digit need?  We train VAEs with 2, 5, 10 and 20
# latent dimensions and compare their test ELBO, and how much of that
# capacity each one actually uses.
#
# Then we use the same models on damaged digits.  A VAE's decoder only knows
# how to draw digits, so the round trip x -> mu(x) -> decode(mu) can act as
# a cleaning operation: noise is not something the decoder can draw.  Two
# kinds of damage:
#
# * **salt and pepper noise**: a fraction of the pixels set to black or
#   white at random -- 10%, and then a heavy 25%;
# * **a hidden half**: the bottom half of the image blanked out.  One round
#   trip is timid here, so we iterate: keep the visible pixels, replace the
#   hidden ones with the model's guess, and encode again.
#
# Both work within limits, and the limits are instructive: the encoder was
# trained on clean digits only.
#
# The models are the package's `VAE` (numpy_vae/models.py), trained with the
# loop of lesson 06 (`train` in lessons/_common.py); `model.reconstruct(x)`
# is decode(mu(x)), the round trip without sampling.
#
# In a notebook, run  %env NUMPY_VAE_QUICK=1  before this cell for quick mode.
# Quick mode trains each model on the first 10,000 MNIST images for 3 epochs
# with the learning rate 3e-3; full mode on all 60,000 for 8 epochs with 1e-3.

# %%
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent if "__file__" in globals() else Path.cwd()
sys.path.insert(0, str(HERE if (HERE / "_common.py").exists() else HERE / "lessons"))

import matplotlib.pyplot as plt
import numpy as np
from _common import claim, done, evaluate, load_digits, savefig, setup, show, train

from numpy_vae import VAE

settings = setup("Lesson 09: denoising and compression")
SEED = settings.seed  # every random draw below derives from it (--seed N, NUMPY_VAE_SEED=N)
data = load_digits(settings, n_train_quick=10000)
epochs = settings.pick(3, 8)
lr = settings.pick(3e-3, 1e-3)
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
    models[k] = VAE(latent_dim=k, seed=SEED)
    train(models[k], data.x_train, epochs=epochs, lr=lr, quiet=settings.quick)

# %% [markdown]
# ## How many numbers a digit needs
#
# For each model: the test ELBO and its two terms, the mean squared error of
# the reconstruction decode(mu(x)) against the grey-level digit, and the
# number of *active* latent dimensions.  Here a dimension j counts as active
# when its KL term, 0.5 (mu_j^2 + sigma_j^2 - 1 - log sigma_j^2) averaged
# over the test digits, exceeds 0.01 nats (a dimension the encoder ignores
# sits at the prior, KL 0; lessons 05 and 10 count the same way).  Lesson 13
# uses another quantity with the same threshold: the variance of the mean
# mu_j across the test digits, Var_x(mu_j) > 0.01.  The table prints both
# counts ("active" by KL, "by Var mu").
#
# More dimensions: a lower reconstruction error and a higher KL, the price of
# the extra information.  The ELBO improves by tens of nats (more than 20)
# from 2 to 10 numbers and by much less (under a third of that) from 10 to
# 20: most of what distinguishes one MNIST digit from another fits in about
# ten numbers.

# %%
table = []
print(f"\n{'latent_dim':>10s} {'test ELBO':>10s} {'recon':>8s} {'KL':>7s} {'MSE/pixel':>10s} {'active':>7s} "
      f"{'by Var mu':>10s}")
for k, model in models.items():
    result = evaluate(model, data.x_test_bin)
    mu, logvar = model.encode(data.x_test)
    kl_per_dim = (0.5 * (mu ** 2 + np.exp(logvar) - 1 - logvar)).mean(axis=0)
    pixel_mse = float(((model.reconstruct(data.x_test) - data.x_test) ** 2).mean())
    active = int((kl_per_dim > 0.01).sum())
    table.append((k, result["elbo"], result["recon"], result["kl"], pixel_mse, active))
    print(f"{k:10d} {result['elbo']:10.2f} {result['recon']:8.2f} {result['kl']:7.2f} "
          f"{pixel_mse:10.4f} {active:4d}/{k} {int((mu.var(axis=0) > 0.01).sum()):7d}/{k}")
table = np.array(table)
elbo = dict(zip(latent_dims, table[:, 1]))
claim("the test ELBO improves by more than 20 nats from 2 to 10 latent numbers",
      elbo[10] - elbo[2] > 20, f"{elbo[10] - elbo[2]:.1f} nats")
claim("from 10 to 20 it improves by under a third of that",
      elbo[20] - elbo[10] < (elbo[10] - elbo[2]) / 3, f"{elbo[20] - elbo[10]:.1f} nats")
claim("more latent numbers, lower reconstruction error: the pixel MSE falls at every step 2 -> 5 -> 10 -> 20",
      np.all(np.diff(table[:, 4]) < 0), ", ".join(f"{v:.4f}" for v in table[:, 4]))
claim("more latent numbers, higher KL: the KL grows at every step 2 -> 5 -> 10 -> 20",
      np.all(np.diff(table[:, 3]) > 0), ", ".join(f"{v:.1f}" for v in table[:, 3]))

fig, (ax_l, ax_r) = plt.subplots(1, 2, figsize=(13, 4.6), gridspec_kw={"width_ratios": [1, 1.25]})
ax_l.plot(table[:, 0], -table[:, 1], "o-", label="-ELBO (lower is better)")
ax_l.plot(table[:, 0], table[:, 2], "s-", label="reconstruction -log p(x|z)")
ax_l.set_xscale("log", base=2)
ax_l.set_xticks(latent_dims, [str(k) for k in latent_dims])
ax_l.set_xlabel("latent dimensions")
ax_l.set_ylabel("nats per test image")
ax_k = ax_l.twinx()
ax_k.plot(table[:, 0], table[:, 3], "^--", color="C2", label="KL (right axis)")
ax_k.set_ylabel("KL (nats)", color="C2")
lines = ax_l.get_legend_handles_labels()[0] + ax_k.get_legend_handles_labels()[0]
ax_l.legend(lines, [h.get_label() for h in lines], fontsize=8, loc="upper center",
            bbox_to_anchor=(0.5, -0.13), ncol=3, frameon=False)
ax_l.set_title("test ELBO and its two terms against the size of z", fontsize=10)
x = data.x_test[:10]
show(ax_r, np.vstack([x] + [models[k].reconstruct(x) for k in latent_dims]), 10,
     "test digits and their reconstructions", row_labels=["test"] + [f"k = {k}" for k in latent_dims])
savefig(fig, "09_latent_dim_sweep.png")

# %% [markdown]
# ## Denoising
#
# The 20-dimensional model sees test digits with 10% and with 25% of their
# pixels replaced by random black or white.  We score images by their mean
# squared error (MSE) against the clean digit, for every latent size.

# %%
rng = np.random.default_rng(SEED)
clean = data.x_test[:1000]


def salt_and_pepper(x, fraction):
    hit = rng.random(x.shape) < fraction
    return np.where(hit, rng.integers(0, 2, x.shape), x).astype(np.float32)


def mse(a, b):
    return float(((a - b) ** 2).mean())


def judge(images, reference=data.x_train[:10000].astype(np.float64), labels=data.y_train[:10000]):
    """The digit of each image, read by its nearest training image (pixel distance): a
    recogniser independent of the VAEs, right for about 9 in 10 clean test digits."""
    images = np.asarray(images, dtype=np.float64)
    ref_sq = (reference ** 2).sum(axis=1)
    nearest = [(ref_sq[None, :] - 2 * chunk @ reference.T).argmin(axis=1)
               for chunk in np.array_split(images, max(1, len(images) // 250))]
    return labels[np.concatenate(nearest)]


noisy = {0.10: salt_and_pepper(clean, 0.10), 0.25: salt_and_pepper(clean, 0.25)}
print(f"{'noise':>6s} {'MSE of the noisy input':>23s}   MSE after one round trip, latent_dim = "
      + ", ".join(str(k) for k in latent_dims))
before, after = {}, {}
for fraction, x_noisy in noisy.items():
    before[fraction] = mse(x_noisy, clean)
    after[fraction] = {k: mse(models[k].reconstruct(x_noisy), clean) for k in latent_dims}
    print(f"{fraction:6.0%} {before[fraction]:23.4f}   " + "  ".join(f"{a:.4f}" for a in after[fraction].values()))
labels = data.y_test[:1000]
right = {"clean": float((judge(clean) == labels).mean()),
         "clean, round trip": float((judge(models[20].reconstruct(clean)) == labels).mean())}
for fraction, x_noisy in noisy.items():
    right[f"{fraction:.0%} noise, round trip"] = float((judge(models[20].reconstruct(x_noisy)) == labels).mean())
print("the right digit, read by the nearest training image (20-number model): "
      + ", ".join(f"{name} {v:.1%}" for name, v in right.items()))

# %% [markdown]
# At 10% the round trip of the 20-number model removes a large part of the
# error: in full mode nearly half (it leaves less than 60% of it), in quick
# mode, with a less trained model, at least 30% (it leaves less than 70%).
# In the figure below, bold digits (the 7, 2, 0 and
# 9) tend to come back clean; thin ones such as the 1s, with little ink to
# outvote the noise, come back as smudges.
#
# At 25% the MSE drops even more, in proportion, than at 10% -- most of the
# noisy input's error is noise, and the decoder cannot draw noise -- yet the
# round trip often fails where it matters: many outputs are the wrong
# digit.  The MSE cannot see that, so we ask a judge independent of the
# VAEs, the nearest training image (`judge` above), which digit each output
# shows.  It reads about 9 in 10 clean test digits right; after the round
# trip of a 10%-noisy digit, still more than 3 in 4; after the round trip of
# a 25%-noisy digit, fewer than 3 in 4, about a third of them wrong.  The
# encoder has only ever seen clean digits on a black background; a quarter
# of random pixels is a kind of input it was never trained on, and it maps
# it to codes away from the digit's own cloud.  The decoder faithfully draws
# whatever those codes mean.  (Remedies: train on corrupted inputs with clean targets -- a
# denoising autoencoder -- or search for the code directly, maximising
# log p(x_noisy | z) + log p(z) with the decoder alone.)

# %%
limit = settings.pick(0.7, 0.6)
claim(f"at 10% noise the 20-number model's round trip leaves less than {limit:.0%} of the noisy input's MSE",
      after[0.10][20] < limit * before[0.10], f"{before[0.10]:.4f} -> {after[0.10][20]:.4f} "
      f"({after[0.10][20] / before[0.10]:.0%})")
claim("at 25% noise the MSE drops even more, in proportion, than at 10% (20 numbers)",
      after[0.25][20] / before[0.25] < after[0.10][20] / before[0.10],
      f"{before[0.25]:.4f} -> {after[0.25][20]:.4f} ({after[0.25][20] / before[0.25]:.0%}), "
      f"against {after[0.10][20] / before[0.10]:.0%} at 10%")
right_10, right_25 = right["10% noise, round trip"], right["25% noise, round trip"]
claim("but many outputs are the wrong digit: the judge reads the right digit in more than 3 of 4 round "
      "trips at 10% noise, in fewer than 3 of 4 at 25%, at least 10 points fewer",
      right_10 > 0.75 > right_25 and right_10 - right_25 > 0.10,
      f"10%: {right_10:.1%}, 25%: {right_25:.1%} (clean digits: {right['clean']:.1%})")

# %% [markdown]
# ## Filling in a hidden half
#
# The bottom 14 rows are set to 0, and we iterate, keeping what we know:
#
#     x_0 = the damaged digit
#     x_{t+1} = visible pixels of the original, and decode(mu(x_t)) in the hidden ones
#
# Each pass the encoder sees a more complete digit, and the second pass
# always improves on the first.  But this is a simple fixed-point scheme, not
# exact inference, and more passes are not always better: the error is
# lowest after a few passes, and for the largest code (20 numbers) the
# passes after the fifth stop helping: by 20 passes its error is no lower
# than at 5.  In quick mode, with less trained models, it creeps clearly
# back up, and the 10-number model's does too.  A
# middle-sized code fills in best: a 5-number model can only draw typical
# digits, a strong prior about what the hidden half should look like, while
# the 10- and 20-number models also reproduce the blank half faithfully.
# Fewer numbers still is not better: 2 numbers are too few to draw the
# digit's details, and the 2-number model fills in worse than the 5.

# %%
hidden = np.zeros((28, 28), dtype=bool)
hidden[14:, :] = True
hidden = hidden.reshape(-1)
damaged = np.where(hidden, 0.0, clean).astype(np.float32)
passes = [1, 2, 5, 10, 20]
filled, fill_errors = {}, {}
print(f"MSE on the hidden pixels: blank {mse(damaged[:, hidden], clean[:, hidden]):.4f}")
for k in latent_dims:
    current, errors = damaged, []
    for t in range(1, passes[-1] + 1):
        current = np.where(hidden, models[k].reconstruct(current), clean).astype(np.float32)
        if t in passes:
            errors.append(mse(current[:, hidden], clean[:, hidden]))
        if t == 10:
            filled[k] = current
    fill_errors[k] = dict(zip(passes, errors))
    print(f"  latent_dim {k:2d}, after " + ", ".join(f"{t} passes {e:.4f}" for t, e in zip(passes, errors)))
claim("feeding the guess back helps: for every latent size, 2 passes leave a lower MSE on the hidden "
      "half than 1, and for 5 numbers 10 passes do too",
      all(fill_errors[k][2] < fill_errors[k][1] for k in latent_dims) and fill_errors[5][10] < fill_errors[5][1],
      ", ".join(f"k={k}: {fill_errors[k][1]:.4f} -> {fill_errors[k][2]:.4f}" for k in latent_dims)
      + f"; k=5, 10 passes: {fill_errors[5][10]:.4f}")
# quick mode: clearly higher after 20 passes than after 5; full mode: no lower (within 1%)
creeping, slack = settings.pick(((10, 20), 1.0), ((20,), 0.99))
claim("more passes are not always better: for " + " and ".join(map(str, creeping)) + " numbers, 20 passes "
      + settings.pick("leave a higher MSE than 5", "leave no lower an MSE than 5 (within 1%)"),
      all(fill_errors[k][20] > slack * fill_errors[k][5] for k in creeping),
      ", ".join(f"k={k}: {fill_errors[k][5]:.4f} -> {fill_errors[k][20]:.4f}" for k in creeping))
claim("after 10 passes the 5-number model fills in best of the four sizes (2 numbers are too few, "
      "10 and 20 too faithful)", min(latent_dims, key=lambda k: fill_errors[k][10]) == 5,
      ", ".join(f"k={k}: {fill_errors[k][10]:.4f}" for k in latent_dims))

rows = [clean[:10], noisy[0.10][:10], models[20].reconstruct(noisy[0.10][:10]),
        noisy[0.25][:10], models[20].reconstruct(noisy[0.25][:10]),
        damaged[:10], filled[5][:10], filled[20][:10]]
labels = ["clean", "10% noise", "round trip", "25% noise", "round trip",
          "half hidden", "filled, k=5", "filled, k=20"]
fig, ax = plt.subplots(figsize=(9, 8.2))
show(ax, np.vstack(rows), 10, "denoising (20-D model) and filling in (10 passes)", row_labels=labels)
savefig(fig, "09_denoising.png")

# %% [markdown]
# ## What we learned
#
# * The test ELBO improves fast from 2 to 10 latent numbers and more slowly
#   after; every extra number buys a sharper reconstruction and costs KL.
# * A VAE trained only on clean digits removes light noise by drawing the
#   digit it recognises, and often draws the wrong digit when the damage
#   takes the input far from anything it was trained on.
# * Filling in benefits from feeding the guess back a few times (not
#   endlessly), and from a small code -- fewer numbers mean a stronger prior
#   about what a digit looks like -- but not too small: 2 numbers cannot
#   draw the details.
# * The MSE is a poor judge of a repair: it rewards removing the noise even
#   when the digit that comes back is the wrong one.

# %%
done()

# %% [markdown]
# ## Your turn: exercises
#
# Derive it yourself; the package's finite-difference checker grades your attempt
# (see `lessons/exercises/README.md`):
#
# - exercise 5: `lessons/exercises/05_bernoulli_nll.py`, checked by `numpy-vae exercise 5`
