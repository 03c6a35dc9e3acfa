# %% [markdown]
# # Lesson 14 -- Asking for a digit: the conditional VAE
#
# The VAE of lessons 02-12 draws digits, but we cannot ask it for a 7: the
# class is somewhere in z, mixed with everything else.  The conditional VAE
# (Kingma et al. 2014, "Semi-Supervised Learning with Deep Generative
# Models"; Sohn et al. 2015) hands the label y to both networks:
#
#     q(z | x, y) = N(mu(x, y), sigma^2(x, y))      encoder input [x | one_hot(y)]
#     p(x | z, y)                                   decoder input [z | one_hot(y)]
#     p(z) = N(0, I)                                 the prior does not see y
#
# and maximises the conditional ELBO, a lower bound on log p(x | y):
#
#     log p(x | y) >= E_q[log p(x | z, y)] - KL(q(z | x, y) || N(0, I))
#
# The code is `ConditionalVAE` in numpy_vae/cvae.py: the VAE's layers, with
# one-hot columns concatenated to the two inputs (and the gradient of the
# decoder's input cut back to its z columns).  Its gradient is checked
# against finite differences in tests/test_cvae.py, like the VAE's.
#
# Three things to see:
#
# 1. a 10 x 10 grid: row c asks for digit c, column j is one prior draw z_j;
# 2. "style transfer": encode a test digit with its own label, then decode
#    that z with each of the ten labels;
# 3. the KL: the label already says which digit it is, so z needs to carry
#    less, and the KL term of the CVAE is smaller than the VAE's.
#
# **Quick mode** (a subset of MNIST, fewer epochs; under a minute): run
# `python lessons/14_asking_for_a_digit.py --quick`, or in a notebook run
# `%env NUMPY_VAE_QUICK=1` before the setup cell below.  Every sentence the
# run can confirm is checked by a `claim(...)` after the cell that shows it.

# %%
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent if "__file__" in globals() else Path.cwd()
sys.path.insert(0, str(HERE if (HERE / "_common.py").exists() else HERE / "lessons"))

import math
import time

import matplotlib.pyplot as plt
import numpy as np
from _common import (binarize_batch, claim, done, load_digits, nearest_mean_classifier, savefig,
                     setup, show)

from numpy_vae import VAE, Adam
from numpy_vae.cvae import ConditionalVAE

settings = setup("Lesson 14: asking for a digit")
SEED = settings.seed  # every random draw below derives from it (--seed N, NUMPY_VAE_SEED=N)
data = load_digits(settings)
epochs = 5  # in both modes: quick mode has 5,000 training images, full mode 60,000
hidden, latent = settings.pick((128,), (400,)), 4
batch_size, lr = settings.pick(50, 100), settings.pick(2e-3, 1e-3)  # quick: more, bolder steps

# %% [markdown]
# ## Training both, the same way
#
# A VAE and a CVAE of the same size (784-hidden-4), the same data, the
# same seed and the same loop as lesson 06: shuffle, a fresh binarization
# of every batch, one Adam step per batch.  The only difference is that the
# CVAE's step also gets the batch's labels.
#
# Why only 4 latent numbers?  With a roomy z the encoder also writes the
# digit's identity into z, and the decoder learns to half-ignore the label.
# A small z has no room to spare, so the class is left to the label.  The
# last section trains a CVAE with 20 numbers the same way and measures it.
# (Change ``latent`` and see.)

# %%


def train(model, x, y, *, epochs, batch_size=100, lr=1e-3, seed=SEED):
    """Lesson 06's loop; ``y`` is None for the VAE, the labels for the CVAE."""
    rng = np.random.default_rng(seed)
    opt = Adam(model.params, lr=lr, backend=model.backend)
    for epoch in range(1, epochs + 1):
        t0, losses = time.time(), []
        order = rng.permutation(len(x))
        for start in range(0, len(x) - batch_size + 1, batch_size):
            idx = order[start:start + batch_size]
            xb = binarize_batch(x[idx], rng)
            if y is None:
                loss, grads, _ = model.loss_and_grads(xb)
            else:
                loss, grads, _ = model.loss_and_grads(xb, y[idx])
            opt.step(grads)
            losses.append(float(loss))
        print(f"  {type(model).__name__} epoch {epoch}/{epochs}: train loss "
              f"{np.mean(losses[-100:]):.2f}  [{time.time() - t0:.1f} s]")


def test_terms(model, x, y=None, seed=SEED):
    """Mean reconstruction NLL and KL over x, one sampled z per image (nats)."""
    eps = np.random.default_rng(seed).standard_normal((len(x), model.latent_dim)).astype(np.float32)
    recon, kl = model.terms(x, eps) if y is None else model.terms(x, y, eps)
    return float(recon.mean()), float(kl.mean())


vae = VAE(hidden_dims=hidden, latent_dim=latent, seed=SEED)
cvae = ConditionalVAE(hidden_dims=hidden, latent_dim=latent, n_classes=10, seed=SEED)
cvae20 = ConditionalVAE(hidden_dims=hidden, latent_dim=20, n_classes=10, seed=SEED)  # for the last section
print(vae, "\n", cvae, "\n", cvae20, sep="")
train(vae, data.x_train, None, epochs=epochs, batch_size=batch_size, lr=lr)
train(cvae, data.x_train, data.y_train, epochs=epochs, batch_size=batch_size, lr=lr)
train(cvae20, data.x_train, data.y_train, epochs=epochs, batch_size=batch_size, lr=lr)

# %% [markdown]
# ## The KL when the label carries the class
#
# On the test digits: the reconstruction term and the KL of both models.
# The KL is the number of nats the encoder spends describing x in z.  For
# the VAE, part of them say which digit it is; the CVAE gets that from y for
# free, so its KL is smaller.  The class itself is worth about log 10 = 2.30
# nats (ten nearly equally likely classes), and the KL would shrink by that
# much only if the VAE's z named the class exactly and the CVAE's z said
# nothing about it.  Neither is so (the VAE's z leaves some digits
# ambiguous, and the CVAE's z keeps a little of the class, see below): the
# saving we measure is smaller than log 10.
#
# The two -ELBOs bound different things: the VAE's bounds -log p(x), the
# CVAE's -log p(x | y).  Bayes' rule gives
#
#     -log p(x | y) = -log p(x) - log p(y | x) + log p(y)  >=  -log p(x) + log p(y)
#
# so the true -log p(x | y) is smaller than -log p(x) by at most -log p(y),
# about log 10 on average over the test digits (exactly: the cross-entropy
# of the test labels under the training labels' frequencies, printed
# below).  The gap we measure between the two bounds is larger than that:
# the rest is not the label's worth but the VAE's bound being looser, its
# model worse.  Most of it is reconstruction: with 4 numbers for class and
# style together, the VAE redraws the digits less faithfully.

# %%
x_test, y_test = data.x_test_bin, data.y_test
vae_recon, vae_kl = test_terms(vae, x_test)
cvae_recon, cvae_kl = test_terms(cvae, x_test, y_test)
label_freq = np.bincount(data.y_train, minlength=10) / len(data.y_train)
label_nats = float(-np.log(label_freq[y_test]).mean())  # mean -log p(y): what the label can be worth
gap, kl_saving, recon_saving = (vae_recon + vae_kl) - (cvae_recon + cvae_kl), vae_kl - cvae_kl, vae_recon - cvae_recon
print(f"{'':6s} {'recon':>8s} {'KL':>7s} {'-ELBO':>8s}")
print(f"{'VAE':6s} {vae_recon:8.2f} {vae_kl:7.2f} {vae_recon + vae_kl:8.2f}   bound on -log p(x)")
print(f"{'CVAE':6s} {cvae_recon:8.2f} {cvae_kl:7.2f} {cvae_recon + cvae_kl:8.2f}   bound on -log p(x | y)")
print(f"saving: KL {kl_saving:.2f}, reconstruction {recon_saving:.2f}, -ELBO {gap:.2f} nats; "
      f"the label is worth at most {label_nats:.2f} nats (mean -log p(y))")
claim("the CVAE's KL is smaller than the VAE's of the same size: the label carries the class",
      kl_saving > 0, f"KL {cvae_kl:.2f} vs {vae_kl:.2f} nats")
claim("but by less than log 10 = 2.30 nats: the VAE's z does not name the class exactly",
      kl_saving < math.log(10), f"KL saving {kl_saving:.2f} nats")
claim("the gap between the bounds is larger than the most the label can be worth (mean -log p(y))",
      gap > label_nats, f"gap {gap:.2f} nats, label at most {label_nats:.2f} nats")
claim("and most of the gap is reconstruction, not KL",
      recon_saving > kl_saving, f"reconstruction {recon_saving:.2f} vs KL {kl_saving:.2f} nats")

# %% [markdown]
# ## Does it draw the digit we ask for?
#
# We need a judge that is not the model.  The simplest classifier there is:
# the mean training image of each digit, and a digit is called the class
# whose mean it is nearest to (in squared pixel distance).  It is a weak
# judge (its accuracy on real test digits is printed below), but it is
# independent of everything we trained.

# %%
classify = nearest_mean_classifier(data.x_train, data.y_train)  # lesson 08's recogniser

judge_accuracy = float((classify(data.x_test) == data.y_test).mean())
print(f"nearest-mean judge on real test digits: {judge_accuracy:.1%} correct")

rng = np.random.default_rng(SEED + 1)
z = rng.standard_normal((10, latent)).astype(np.float32)        # one z per column
grid = np.concatenate([cvae.decode(z, np.full(10, c)) for c in range(10)])  # row c: digit c
asked = np.repeat(np.arange(10), 10)

# A larger batch for the number: 50 prior draws per digit
z_many = rng.standard_normal((500, latent)).astype(np.float32)
labels_many = np.repeat(np.arange(10), 50)
hit = float((classify(cvae.decode(z_many, labels_many)) == labels_many).mean())
print(f"samples judged to be the digit asked for: {hit:.1%} (of 500; chance is 10%)")
claim("the judge reads the asked-for digit in most CVAE samples (well above the 10% of chance)",
      hit > 0.5, f"{hit:.1%} of 500 samples; the judge scores {judge_accuracy:.1%} on real digits")

# Each column with all ten labels, for 200 prior draws: how often does the
# judge read the label, and how often does z override it (the judge reads
# one and the same digit for at least half of the ten labels)?
z_cols = rng.standard_normal((200, latent)).astype(np.float32)
col_images = np.stack([cvae.decode(z_cols, np.full(len(z_cols), c)) for c in range(10)], axis=1)  # (200, 10, 784)
col_judged = classify(col_images.reshape(-1, 784)).reshape(len(z_cols), 10)
col_hits = (col_judged == np.arange(10)).sum(axis=1)
top_share = np.array([np.bincount(row, minlength=10).max() for row in col_judged])
overriding = float((top_share >= 5).mean())
grid_judged = classify(grid).reshape(10, 10)          # the figure's grid: [row c, column j]
grid_hits = (grid_judged == np.arange(10)[:, None]).sum(axis=0)
print(f"labels read per column of the figure (of 10): {' '.join(map(str, grid_hits))}")
print(f"over {len(z_cols)} prior draws: median {np.median(col_hits):.0f} of 10 labels read; "
      f"z overrides the label (one digit for >= 5 labels) in {overriding:.0%} of them")
claim("in most columns the label wins: z overrides it in a minority of prior draws (under a third)",
      overriding < 1 / 3, f"{overriding:.0%} of {len(z_cols)} draws; median {np.median(col_hits):.0f} of 10 labels read")

fig, ax = plt.subplots(figsize=(6.5, 6.8))
show(ax, grid, 10, "row: the digit asked for; column: one prior draw z",
     row_labels=[str(c) for c in range(10)])
savefig(fig, "14_digit_grid.png")

# %% [markdown]
# Along a row the ten digits share the label and differ in z; along a
# column they share z and differ in the label.  Look down a column: in
# most columns the same z gives the same *style* -- slant, width, stroke --
# for every digit.  Not in every one: a z far out in the region where the
# encoder put, say, the thin upright strokes of the 1s can override the
# label, and the decoder draws nearly the same shape for most labels.  The
# line above counts, per column of the figure, the labels the judge reads,
# and how often z overrides the label over 200 prior draws.
#
# ## Style transfer
#
# Encode a real test digit with its own label, keep its mean mu(x, y), and
# decode it with each of the ten labels.  If z holds what the label does
# not, the ten outputs are ten digits written by the same hand.
#
# We measure two things about handwriting, from the ink (pixel intensities
# as weights):
#
# * **slant**: the regression slope of the column on the row of the ink,
#   cov(col, row) / var(row): negative for a digit leaning right;
# * **ink**: the total intensity, thick or thin strokes and big or small digits.
#
# For 200 test digits we compare the source's value with the mean over its
# ten transfers.  The same measure down the prior columns above: how much
# of the variation of slant among the 2,000 decoded digits is explained by
# which z (column) they came from, once each label's mean slant is removed.

# %%
rows, cols = np.mgrid[0:28, 0:28].reshape(2, -1).astype(np.float64)


def slant(images):
    w = np.asarray(images, dtype=np.float64)
    w = w / w.sum(axis=1, keepdims=True)
    r_mean, c_mean = w @ rows, w @ cols
    cov = w @ (rows * cols) - r_mean * c_mean
    var = w @ (rows * rows) - r_mean ** 2
    return cov / var


def ink(images):
    return np.asarray(images, dtype=np.float64).sum(axis=1)


n_sources = 200
sources, source_labels = data.x_test[:n_sources], data.y_test[:n_sources]
mu, _ = cvae.encode(sources, source_labels)
transfers = np.stack([cvae.decode(mu, np.full(n_sources, c)) for c in range(10)], axis=1)  # (n, 10, 784)
flat = transfers.reshape(-1, 784)
slant_r = float(np.corrcoef(slant(sources), slant(flat).reshape(n_sources, 10).mean(axis=1))[0, 1])
ink_r = float(np.corrcoef(ink(sources), ink(flat).reshape(n_sources, 10).mean(axis=1))[0, 1])
transfer_hit = float((classify(flat) == np.tile(np.arange(10), n_sources)).mean())
print(f"correlation between source and transfers, over {n_sources} test digits: "
      f"slant {slant_r:.2f}, ink {ink_r:.2f}")
print(f"transfers judged to be the label they were decoded with: {transfer_hit:.1%}")
claim("the slant of a test digit carries over to its ten transfers (correlation above 0.5)",
      slant_r > 0.5, f"r = {slant_r:.2f} over {n_sources} digits")
claim("the amount of ink carries over too (correlation above 0.5)",
      ink_r > 0.5, f"r = {ink_r:.2f}")
claim("and the transfers are the digits their labels ask for (judged, above 50%)",
      transfer_hit > 0.5, f"{transfer_hit:.1%} of {n_sources * 10}")

col_slant = slant(col_images.reshape(-1, 784)).reshape(len(z_cols), 10)
col_slant = col_slant - col_slant.mean(axis=0)        # each label's mean slant removed
slant_by_z = float(col_slant.mean(axis=1).var() / col_slant.var())
print(f"share of the slant variance down the prior columns explained by z: {slant_by_z:.0%}")
claim("down a column of prior draws the same z gives the same slant: z explains most of its variance",
      slant_by_z > 0.5, f"{slant_by_z:.0%} of the variance, over {len(z_cols)} columns x 10 labels")

row_hits = (classify(flat).reshape(n_sources, 10) == np.arange(10)).sum(axis=1)
picked = np.arange(6)
fig, ax = plt.subplots(figsize=(7.5, 4.6))
panel = np.concatenate([np.concatenate([sources[i:i + 1], transfers[i]]) for i in picked])
show(ax, panel, 11, "left: a test digit; then its z decoded with labels 0..9 (labels judged read)",
     row_labels=[f"a {source_labels[i]} ({row_hits[i]}/10)" for i in picked])
savefig(fig, "14_style_transfer.png")
print("labels judged read per source: " + ", ".join(
    f"{c}: {row_hits[source_labels == c].mean():.1f}" for c in range(10)))

# %% [markdown]
# The row labels of the figure count the labels the judge reads in each
# row; as down the prior columns, some sources' z overrides the label.
#
# ## A roomier z
#
# The CVAE with 20 latent numbers, trained alongside the others, on the
# same 200 test digits: with room to spare, the encoder also writes the
# digit's identity into z, and the decoder learns to trust z over the
# label.  Fewer of its transfers are the digit asked for, and many of the
# others are the source digit again.  (In our full-mode run, seed 0, 5
# epochs on all of MNIST: 44% of its transfers judged to be the digit
# asked for, against 74% with 4 numbers, and 45% of its misses the source
# digit; quick mode: about 24% and 60%.  The lines below give this run's
# numbers.)

# %%
mu20, _ = cvae20.encode(sources, source_labels)
judged20 = classify(np.concatenate([cvae20.decode(mu20, np.full(n_sources, c)) for c in range(10)]))
judged20 = judged20.reshape(10, n_sources).T                    # (n_sources, 10): [source, label]
asked20 = np.broadcast_to(np.arange(10), judged20.shape)
hit20 = float((judged20 == asked20).mean())
missed = judged20 != asked20
source_again = float((judged20 == source_labels[:, None])[missed].mean()) if missed.any() else 0.0
print(f"transfers judged to be the label asked for: latent 4 {transfer_hit:.1%}, latent 20 {hit20:.1%}; "
      f"of the latent-20 misses, {source_again:.0%} are the source digit again")
claim("with 20 latent numbers fewer transfers are the digit asked for than with 4 (by 10 points or more)",
      hit20 < transfer_hit - 0.10, f"{hit20:.1%} vs {transfer_hit:.1%}")
claim("and over a third of its misses are the source digit again (an even spread over the nine wrong digits: one in nine)",
      source_again > 1 / 3, f"{source_again:.0%} of its {int(missed.sum())} misses")

# %% [markdown]
# ## What we learned
#
# * Giving the label to both networks turns "draw a digit" into "draw a 7":
#   the label picks the digit, z picks the handwriting -- mostly: some z
#   override the label.
# * Because the label carries the class, z carries less, and the KL -- what
#   the code costs -- goes down, by less than the log 10 the class is
#   worth.  The CVAE's bound is a bound on -log p(x | y), at most about
#   log 10 below -log p(x); the two are not the same quantity, so a lower
#   CVAE bound is no sign of a better model of x, and a gap larger than
#   log 10 says the VAE's bound is the looser one.
# * What z holds is style: slant and stroke survive a change of label.  A
#   roomier z holds the class too, and the label loses its grip.
#
# From the command line: `numpy-vae train --model cvae` trains one (with
# checkpoints and these two figures), and `numpy-vae sample RUN --label 7`
# draws sevens.

# %%
done()

# %% [markdown]
# ## Your turn: exercises
#
# Derive it yourself; the package's finite-difference checker grades your attempt
# (see `lessons/exercises/README.md`):
#
# - exercise 12: `lessons/exercises/12_capstone.py`, checked by `numpy-vae exercise 12`
