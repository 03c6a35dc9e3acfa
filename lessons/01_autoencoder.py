# %% [markdown]
# # Lesson 01 -- The autoencoder: 784 numbers down to a few, and back
#
# An MNIST digit is a 28 x 28 image: 784 numbers between 0 (black) and 1
# (white).  Most 784-number vectors are noise, not digits; the digits live in
# a small corner of that space.  An **autoencoder** tries to find a short
# description of that corner:
#
#     code  = encoder(x)        784 numbers -> k numbers  (k = 2 or 10 here)
#     x_hat = decoder(code)     k numbers -> 784 pixel probabilities
#
# and learns both halves by making x_hat look like x.  "Look like" is measured
# per pixel with the binary cross-entropy, summed over the 784 pixels:
#
#     loss(x) = sum_d -[ x_d log x_hat_d + (1 - x_d) log(1 - x_hat_d) ]
#
# with x_d the grey level of pixel d and x_hat_d the decoder's output for it.
# In the package: `Autoencoder` in numpy_vae/models.py (encoder MLP, a Linear
# "code" head, decoder MLP), the loss in numpy_vae/likelihoods.py
# (`BernoulliLikelihood`, computed from logits so it never takes log 0).
# Lesson 05 comes back to what this loss means as a probability.
#
# What to look for in this lesson: the autoencoder reconstructs well, but its
# code space is *gappy*.  Codes of real digits group by digit into clusters of
# arbitrary shape and scale, and a code picked at random usually lands between
# them, where the decoder has never been asked to produce anything.  That is
# the problem the variational autoencoder (lessons 02-06) fixes.
#
# Every sentence below that this run can confirm is checked by it: a
# `claim(...)` line after the cell that produces the evidence, and a checklist
# at the end.
#
# **Quick mode** (a third of MNIST, fewer epochs; under a minute): run
# `python lessons/01_autoencoder.py --quick`, or in a notebook run
# `%env NUMPY_VAE_QUICK=1` (or `os.environ["NUMPY_VAE_QUICK"] = "1"`) before
# the setup cell below.

# %%
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent if "__file__" in globals() else Path.cwd()
sys.path.insert(0, str(HERE if (HERE / "_common.py").exists() else HERE / "lessons"))

import matplotlib.pyplot as plt
import numpy as np
from _common import claim, digit_legend, done, knn_accuracy, load_digits, savefig, scatter_digits, setup, show

from numpy_vae import Adam, Autoencoder

settings = setup("Lesson 01: the autoencoder")
SEED = settings.seed  # every random draw below derives from it (--seed N, NUMPY_VAE_SEED=N)
# Quick mode: a third of the data, fewer epochs, larger batches and a larger
# learning rate -- enough for the clusters to form in well under a minute.
data = load_digits(settings, n_train_quick=20_000)
epochs = settings.pick(4, 10)
batch_size = settings.pick(200, 100)
learning_rate = settings.pick(3e-3, 1e-3)

# %% [markdown]
# ## Training two autoencoders
#
# One squeezes each digit through 2 numbers (so we can draw the code space),
# one through 10.  The loop below is the whole training procedure; lesson 06
# takes it apart line by line.  For now: show the model 100 images, get the
# loss and the gradient of every weight (`loss_and_grads`), let Adam
# (numpy_vae/optim.py) nudge the weights downhill, repeat.


# %%
def fit(model, x, epochs, seed=SEED):
    rng = np.random.default_rng(seed)
    opt = Adam(model.params, lr=learning_rate, backend=model.backend)
    for epoch in range(epochs):
        order = rng.permutation(len(x))
        losses = []
        for start in range(0, len(x), batch_size):
            loss, grads, info = model.loss_and_grads(x[order[start:start + batch_size]])
            opt.step(grads)
            losses.append(float(loss))
        print(f"  latent_dim={model.latent_dim:2d}  epoch {epoch + 1}: mean training loss {np.mean(losses):6.1f} nats")
    return model


ae2 = fit(Autoencoder(latent_dim=2, seed=SEED), data.x_train, epochs)
ae10 = fit(Autoencoder(latent_dim=10, seed=SEED), data.x_train, epochs)

test_loss = {}
for model in (ae2, ae10):
    test_loss[model.latent_dim] = float(model.loss(data.x_test))
    print(f"{model}: test reconstruction loss {test_loss[model.latent_dim]:.1f} nats per image")
# The baseline: every pixel predicted by its average grey level over the training set.
mean_image = np.clip(data.x_train.mean(axis=0), 1e-3, 1 - 1e-3)
baseline = float(-(data.x_test * np.log(mean_image) + (1 - data.x_test) * np.log(1 - mean_image)).sum(1).mean())
print(f"baseline, the average training image for every digit: {baseline:.1f} nats per image")

# %% [markdown]
# The squeeze costs something, and more numbers cost less: both autoencoders
# reconstruct test digits far better than the average image does, and the
# 10-number one better than the 2-number one.

# %%
claim("both autoencoders reconstruct test digits better than the average image, by more than 20 nats",
      baseline - max(test_loss.values()) > 20,
      f"baseline {baseline:.1f}, 2 numbers {test_loss[2]:.1f}, 10 numbers {test_loss[10]:.1f} nats")
claim("10 numbers reconstruct better than 2", test_loss[10] < test_loss[2],
      f"{test_loss[10]:.1f} < {test_loss[2]:.1f} nats")

# %% [markdown]
# ## Reconstructions
#
# Top row: test digits the models never saw.  Then what comes back after the
# squeeze through 10 numbers, and through 2.  Ten numbers keep most of the
# shape; two keep the "gist" -- often the right digit, sometimes a neighbour
# (4 and 9, 3 and 5 share a lot of ink; the code space below shows which
# digits the 2 numbers mix up).

# %%
x = data.x_test[:12]
fig, axes = plt.subplots(3, 1, figsize=(9, 3.4))
show(axes[0], x, 12, "test digits")
show(axes[1], ae10.reconstruct(x), 12, "through 10 numbers")
show(axes[2], ae2.reconstruct(x), 12, "through 2 numbers")
savefig(fig, "01_reconstructions.png")

# %% [markdown]
# ## The code space of the 2-number autoencoder
#
# Left: the codes of the test digits, coloured by digit, and a regular grid
# of points (black) laid over the box that holds them.  Right: what the
# decoder makes of each grid point, in the same arrangement (top of the box
# at the top).  Digits of one kind gather in their own regions; some
# (often 1 and 0) stand apart, others (4 and 9, 3, 5 and 8) overlap --
# two numbers are few.  Grid points on a cluster decode to that digit.  Grid points
# in the empty parts of the box decode to whatever the decoder happens to
# extrapolate: stretched copies of the nearest digit, or broken strokes (look
# at the corners).  Nothing in the loss asked the empty space to mean
# anything -- and much of the box is empty.

# %%
codes = ae2.encode(data.x_test)
lo, hi = codes.min(axis=0), codes.max(axis=0)
n_grid = 12
gx = np.linspace(lo[0], hi[0], n_grid)
gy = np.linspace(hi[1], lo[1], n_grid)  # top row = largest y, as in the scatter
grid = np.array([(a, b) for b in gy for a in gx])

fig, (ax_l, ax_r) = plt.subplots(1, 2, figsize=(12, 5.5))
scatter_digits(ax_l, codes, data.y_test, "codes of the test digits (2-number autoencoder)")
ax_l.scatter(grid[:, 0], grid[:, 1], s=6, c="k", marker="x", linewidths=0.7)
digit_legend(ax_l)
show(ax_r, ae2.decode(grid), n_grid, "decoded grid points (same layout)")
savefig(fig, "01_latent_space.png")

print("code statistics of the 2-number autoencoder (nothing asked them to be near 0 or of size 1):")
print(f"  mean {np.round(codes.mean(axis=0), 2)}, std {np.round(codes.std(axis=0), 2)}, "
      f"range {np.round(lo, 1)} .. {np.round(hi, 1)}")

# %% [markdown]
# Two numbers behind the picture.  "Digits gather by kind": for each test
# digit, take the 5 codes nearest to its own and let them vote on its digit
# (`knn_accuracy` in lessons/_common.py); guessing would be right 10% of the
# time.  "No shape we chose": the codes' mean and spread are whatever
# training made them, not 0 and 1.

# %%
knn2 = knn_accuracy(codes, data.y_test)
print(f"5-nearest-neighbour accuracy of the 2-number codes: {knn2:.0%} (guessing: 10%)")
claim("the 2-number codes of test digits gather by digit: 5-nearest-neighbour accuracy above 40%, "
      "four times guessing", knn2 > 0.40, f"{knn2:.0%}")
scale = np.abs(codes.mean(axis=0)).max(), codes.std(axis=0)
claim("the codes have a scale nobody chose: a mean far from 0 or a spread far from 1 "
      "(|mean| > 1 or std outside 0.5..2 in some coordinate)",
      scale[0] > 1 or np.any((scale[1] < 0.5) | (scale[1] > 2)),
      f"mean {np.round(codes.mean(axis=0), 2)}, std {np.round(codes.std(axis=0), 2)}")


# %% [markdown]
# Which digits share a region?  For each pair of digits a and b: the share
# of the 5 nearest codes of a's that are b's, and of b's that are a's,
# averaged -- 0 for two digits that never meet, larger the more they mix.
# Of the 45 pairs, the 4-9 pair and the three pairs among 3, 5 and 8 rank
# high (which pair is on top changes from run to run), and the 1s and 0s
# keep to themselves more than most digits do.


# %%
def neighbour_labels(points, labels, k=5):
    """The labels of each point's k nearest other points: (n, k)."""
    points = np.asarray(points, dtype=np.float64)
    sq = (points ** 2).sum(axis=1)
    found = []
    for start in range(0, len(points), 1000):
        d2 = sq[start:start + 1000, None] - 2 * points[start:start + 1000] @ points.T + sq[None, :]
        d2[np.arange(len(d2)), np.arange(start, start + len(d2))] = np.inf
        found.append(np.argpartition(d2, k, axis=1)[:, :k])
    return labels[np.concatenate(found)]


near = neighbour_labels(codes, data.y_test.astype(int))
share = np.array([[np.mean(near[data.y_test == a] == b) for b in range(10)] for a in range(10)])
mixing = (share + share.T) / 2
pairs = sorted(((mixing[a, b], a, b) for a in range(10) for b in range(a + 1, 10)), reverse=True)
rank = {(a, b): r + 1 for r, (_, a, b) in enumerate(pairs)}
own = np.diag(share)
print("most mixed pairs of digits (share of neighbours): "
      + ", ".join(f"{a}-{b} {m:.2f}" for m, a, b in pairs[:6]))
print("own-digit share of neighbours, digits 0..9: " + " ".join(f"{v:.2f}" for v in own))
named = [(4, 9), (3, 5), (3, 8), (5, 8)]
typical_pair = float(np.median([m for m, _, _ in pairs]))
claim("4 and 9 overlap, and 3, 5 and 8 do: each of the pairs 4-9, 3-5, 3-8 and 5-8 is among the 15 "
      "most mixed of the 45 (the top third)",
      all(rank[p] <= 15 for p in named),
      ", ".join(f"{a}-{b} rank {rank[(a, b)]} ({mixing[a, b]:.2f})" for a, b in named)
      + f"; median pair {typical_pair:.3f}")
claim("0 and 1 stand apart: both keep more of their neighbours than the median digit does",
      min(own[0], own[1]) > np.median(own), f"0: {own[0]:.2f}, 1: {own[1]:.2f}, median {np.median(own):.2f}")

# %% [markdown]
# ## How gappy?  Random codes against real ones
#
# If we wanted to *generate* digits we would pick a code at random and decode
# it.  But from which distribution?  The autoencoder does not say.
#
# For the 2-number model, a number that measures the gaps: pick codes
# uniformly in the box that holds the real codes, and measure the distance
# from each to the nearest code of a real test digit, divided by the typical
# distance between a real code and its nearest real neighbour.  Near 1 would
# mean random codes land among the real ones; much more than 1 means they
# land in the gaps.


# %%
def nearest_distance(points, reference):
    """For each point, the Euclidean distance to its nearest row of ``reference``."""
    d2 = (points ** 2).sum(1)[:, None] - 2 * points @ reference.T + (reference ** 2).sum(1)[None, :]
    return np.sqrt(np.maximum(d2, 0).min(axis=1))


rng = np.random.default_rng(SEED)
real = codes.astype(np.float64)
half = len(real) // 2
typical = np.median(nearest_distance(real[:half], real[half:]))
box = lo + (hi - lo) * rng.random((500, 2))
gap = np.median(nearest_distance(box, real[half:])) / typical
print(f"2-number AE: a random code in the box is {gap:.1f}x farther from the nearest real code "
      f"than real codes are from each other")
claim("random codes in the box land in the gaps: more than 1.5 times farther from the nearest "
      "real code than real codes are from each other", gap > 1.5, f"{gap:.1f}x")

# %% [markdown]
# For the 10-number model we cannot draw the code space, so we decode random
# codes directly.  Two guesses at a distribution: the standard normal
# N(0, I), and a Gaussian fitted to the codes of the training digits (their
# mean and per-coordinate spread).  The first gives faint smudges: the real
# codes are nowhere near that scale.  The second gives bright strokes, but
# some samples are still not digits: the real codes fill only parts of the
# fitted Gaussian, and its samples land farther from the nearest real code
# than real codes lie from each other (the distance ratio of the 2-number
# model, now in 10 dimensions).

# %%
train_codes = ae10.encode(data.x_train[:5000])
standard = rng.standard_normal((200, 10))
fitted = train_codes.mean(axis=0) + train_codes.std(axis=0) * rng.standard_normal((200, 10))
print(f"10-number AE: the codes of training digits have spread (std) {np.round(train_codes.std(axis=0), 1)}")
decoded = {"real codes (reconstructions)": ae10.reconstruct(data.x_test[:200]),
           "N(0, I) codes": ae10.decode(standard), "fitted-Gaussian codes": ae10.decode(fitted)}


def brightness(images):
    """How bright an image's strokes are: its 99th-percentile pixel, median over the images."""
    return float(np.median(np.percentile(images, 99, axis=1)))


bright = {name: brightness(images) for name, images in decoded.items()}
for name, value in bright.items():
    print(f"  decoded {name:30s} stroke brightness {value:.2f}")
claim("decoded N(0, I) codes are faint smudges: their strokes are less than 2/3 as bright as "
      "reconstructions of real digits", bright["N(0, I) codes"] < 2 / 3 * bright["real codes (reconstructions)"],
      f"brightness {bright['N(0, I) codes']:.2f} against {bright['real codes (reconstructions)']:.2f}")
claim("codes from the fitted Gaussian decode brighter than N(0, I) codes",
      bright["fitted-Gaussian codes"] > bright["N(0, I) codes"],
      f"{bright['fitted-Gaussian codes']:.2f} against {bright['N(0, I) codes']:.2f}")
real_codes = ae10.encode(data.x_test).astype(np.float64)
typical10 = np.median(nearest_distance(real_codes[:half], real_codes[half:]))
gap_fitted = np.median(nearest_distance(fitted.astype(np.float64), real_codes[half:])) / typical10
print(f"10-number AE: a fitted-Gaussian code is {gap_fitted:.1f}x farther from the nearest real code "
      f"than real codes are from each other")
claim("the real codes do not fill the fitted Gaussian: its samples land more than 1.2x farther from "
      "the nearest real code than real codes are from each other", gap_fitted > 1.2, f"{gap_fitted:.1f}x")
standard, fitted = standard[:24], fitted[:24]
fig, axes = plt.subplots(2, 1, figsize=(9, 4.2))
show(axes[0], ae10.decode(standard), 12, "10-number autoencoder: decoded N(0, I) codes")
show(axes[1], ae10.decode(fitted), 12, "10-number autoencoder: decoded codes from a Gaussian fitted to real codes")
savefig(fig, "01_random_codes.png")

# %% [markdown]
# ## What we learned
#
# * A few numbers are enough to redraw a digit recognisably: the digits
#   really do live in a small corner of the 784-dimensional space.
# * The autoencoder's code space has no shape we chose: clusters wherever
#   training put them, at whatever scale, with gaps between them.  Random
#   codes fall into the gaps, and decode to smudges.
# * To generate, we need the codes to fill a region we know how to sample
#   from.  Lesson 02 starts the fix: the encoder predicts not a point but a
#   small cloud, a Gaussian with a mean and a variance.
#
# (Quick mode trains on 20,000 digits for 4 epochs, full mode on all 60,000
# for 10; the checks above are the same in both.)

# %%
done()

# %% [markdown]
# ## Your turn: exercises
#
# Derive it yourself; the package's finite-difference checker grades your attempt
# (see `lessons/exercises/README.md`):
#
# - exercise 1: `lessons/exercises/01_linear.py`, checked by `numpy-vae exercise 1`
# - exercise 2: `lessons/exercises/02_activations.py`, checked by `numpy-vae exercise 2`
