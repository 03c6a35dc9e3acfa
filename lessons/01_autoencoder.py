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
# code space is *gappy*.  Codes of real digits sit in a few clusters of
# arbitrary shape and scale, and a code picked at random usually lands between
# them, where the decoder has never been asked to produce anything.  That is
# the problem the variational autoencoder (lessons 02-06) fixes.

# %%
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent if "__file__" in globals() else Path.cwd()
sys.path.insert(0, str(HERE if (HERE / "_common.py").exists() else HERE / "lessons"))

import matplotlib.pyplot as plt
import numpy as np
from _common import digit_legend, done, load_digits, savefig, scatter_digits, setup, show

from numpy_vae import Adam, Autoencoder

settings = setup("Lesson 01: the autoencoder")
data = load_digits(settings)
epochs = settings.pick(3, 10)

# %% [markdown]
# ## Training two autoencoders
#
# One squeezes each digit through 2 numbers (so we can draw the code space),
# one through 10.  The loop below is the whole training procedure; lesson 06
# takes it apart line by line.  For now: show the model 100 images, get the
# loss and the gradient of every weight (`loss_and_grads`), let Adam
# (numpy_vae/optim.py) nudge the weights downhill, repeat.


# %%
def fit(model, x, epochs, seed=0):
    rng = np.random.default_rng(seed)
    opt = Adam(model.params, lr=1e-3, backend=model.backend)
    for epoch in range(epochs):
        order = rng.permutation(len(x))
        losses = []
        for start in range(0, len(x), 100):
            loss, grads, info = model.loss_and_grads(x[order[start:start + 100]])
            opt.step(grads)
            losses.append(float(loss))
        print(f"  latent_dim={model.latent_dim:2d}  epoch {epoch + 1}: mean training loss {np.mean(losses):6.1f} nats")
    return model


ae2 = fit(Autoencoder(latent_dim=2, seed=0), data.x_train, epochs)
ae10 = fit(Autoencoder(latent_dim=10, seed=0), data.x_train, epochs)

for model in (ae2, ae10):
    print(f"{model}: test reconstruction loss {float(model.loss(data.x_test)):.1f} nats per image")

# %% [markdown]
# ## Reconstructions
#
# Top row: test digits the models never saw.  Then what comes back after the
# squeeze through 10 numbers, and through 2.  Ten numbers keep most of the
# shape; two keep the "gist" -- often the right digit, sometimes a neighbour
# (4 and 9, 3 and 5 share a lot of ink).

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
# at the top).  Grid points on a cluster decode to that digit.  Grid points
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


rng = np.random.default_rng(0)
real = codes.astype(np.float64)
half = len(real) // 2
typical = np.median(nearest_distance(real[:half], real[half:]))
box = lo + (hi - lo) * rng.random((500, 2))
gap = np.median(nearest_distance(box, real[half:])) / typical
print(f"2-number AE: a random code in the box is {gap:.1f}x farther from the nearest real code "
      f"than real codes are from each other")

# %% [markdown]
# For the 10-number model we cannot draw the code space, so we decode random
# codes directly.  Two guesses at a distribution: the standard normal
# N(0, I), and a Gaussian fitted to the codes of the training digits (their
# mean and per-coordinate spread).  The first gives faint smudges: the real
# codes are nowhere near that scale.  The second does better, but many
# samples are still not digits: the real codes fill only thin, curved parts
# of the fitted Gaussian.

# %%
train_codes = ae10.encode(data.x_train[:5000])
standard = rng.standard_normal((24, 10))
fitted = train_codes.mean(axis=0) + train_codes.std(axis=0) * rng.standard_normal((24, 10))
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

# %%
done()
