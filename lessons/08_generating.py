# %% [markdown]
# # Lesson 08 -- Generating digits
#
# A trained VAE is a generator: draw z from the prior N(0, I), decode it.
# Because the KL term packed the training digits' clouds into the prior's
# region (lesson 07), the decoder has learned to turn (almost) any z there
# into a digit.  This lesson uses that in four ways:
#
# 1. **samples** from the prior, decode(z) with z ~ N(0, I);
# 2. the **manifold** of a 2-D model: decode a regular grid of z and see every
#    digit the model knows, laid out in one picture;
# 3. **interpolation**: walk in a straight line from the code of one real
#    digit to the code of another, decoding along the way;
# 4. **latent arithmetic**: move a digit along the difference of two class
#    means, z + t * (mean code of class b - mean code of class a).
#
# The models are the package's VAE (numpy_vae/models.py): `sample`,
# `decode`, `encode` (we use the mean mu as "the code" of a digit).
#
# Pictures are checked with numbers.  To say which digit an image shows we
# use the simplest digit recogniser there is: the *nearest class mean* --
# average the training images of each digit, and label an image with the
# digit whose average it is closest to in pixel distance.  It is crude (it
# gets about 80% of real test digits right, as a claim below checks), but
# it is independent of the VAE.
#
# In a notebook, run  %env NUMPY_VAE_QUICK=1  before this cell for quick mode.
# Quick mode trains on the first 10,000 MNIST images for 3 epochs with the
# learning rate 3e-3; full mode on all 60,000 for 10 epochs with 1e-3.

# %%
import sys
from pathlib import Path
from statistics import NormalDist

HERE = Path(__file__).resolve().parent if "__file__" in globals() else Path.cwd()
sys.path.insert(0, str(HERE if (HERE / "_common.py").exists() else HERE / "lessons"))

import matplotlib.pyplot as plt
import numpy as np
from _common import (claim, done, evaluate, load_digits, nearest_mean_classifier, savefig, setup,
                     show, train)

from numpy_vae import VAE

settings = setup("Lesson 08: generating digits")
SEED = settings.seed  # every random draw below derives from it (--seed N, NUMPY_VAE_SEED=N)
data = load_digits(settings, n_train_quick=10000)
epochs = settings.pick(3, 10)
lr = settings.pick(3e-3, 1e-3)

print("a 20-dimensional VAE, for samples, interpolation and arithmetic:")
vae20 = VAE(latent_dim=20, seed=SEED)
train(vae20, data.x_train, epochs=epochs, lr=lr)
print("a 2-dimensional VAE, for the manifold:")
vae2 = VAE(latent_dim=2, seed=SEED)
train(vae2, data.x_train, epochs=epochs, lr=lr)
for model in (vae20, vae2):
    print(f"{model}: test ELBO {evaluate(model, data.x_test_bin)['elbo']:.1f} nats")

# %% [markdown]
# The digit recogniser: one mean image per class, and the nearest one wins
# (`nearest_mean_classifier` in lessons/_common.py: an image's label is the
# class whose mean training image is nearest in squared pixel distance.)

# %%
recognise = nearest_mean_classifier(data.x_train, data.y_train)

recogniser_accuracy = float((recognise(data.x_test) == data.y_test).mean())
claim("the nearest-class-mean recogniser labels most real test digits correctly (> 70%)",
      recogniser_accuracy > 0.70, f"{recogniser_accuracy:.1%} of {len(data.y_test)} test digits")

# %% [markdown]
# ## 1. Samples from the prior
#
# Each image is decode(z) for one z ~ N(0, I): the pixel probabilities the
# model assigns, not a 0/1 draw from them.
#
# Are these new digits, or copies of training digits?  For each sample we
# measure the pixel distance to the nearest training image, and do the same
# for real test digits.  If the model copied, samples would sit closer to the
# training set than test digits do.

# %%
samples = vae20.sample(100)
fig, ax = plt.subplots(figsize=(8, 8))
show(ax, samples, 10, "100 samples from the 20-D VAE: decode(z), z ~ N(0, I)")
savefig(fig, "08_prior_samples.png")


def nearest_distance(a, b):
    d2 = (a ** 2).sum(1)[:, None] - 2 * a @ b.T + (b ** 2).sum(1)[None, :]
    return np.sqrt(np.maximum(d2, 0).min(axis=1))


reference = data.x_train[:settings.pick(2000, 10000)].astype(np.float64)
recon_test = vae20.reconstruct(data.x_test[:200]).astype(np.float64)  # blurred like the samples
d_samples = np.median(nearest_distance(samples.astype(np.float64), reference))
d_test = np.median(nearest_distance(recon_test, reference))
ratio = d_samples / d_test
print(f"median distance to the nearest training image: reconstructed test digits {d_test:.2f}, "
      f"samples {d_samples:.2f} (ratio {ratio:.2f})")
sample_digits = np.bincount(recognise(samples), minlength=10)
print(f"the recogniser's labels of the 100 samples, digits 0..9: {sample_digits}")

# %% [markdown]
# We compare with *reconstructed* test digits because the decoder's output
# is always a little blurred, and a blurred image is farther from any sharp
# training digit than a sharp one is.  The samples are not closer to the
# training set than held-out digits are -- they are not copies -- and only
# somewhat farther (less than 1.5 times as far): a little less typical than
# real digits, as the picture shows.  (Pixel distances cannot tell a good
# digit from a bad one much better than that; lesson 11 measures the model
# properly.)  And the samples are not all one digit: the recogniser finds
# most of the ten digits among them.

# %%
claim("the samples are not closer to the training set than reconstructed test digits (ratio > 0.9)",
      ratio > 0.9, f"ratio of median distances {ratio:.2f}")
claim("the samples are less than 1.5 times as far from the training set as reconstructed test digits",
      ratio < 1.5, f"ratio {ratio:.2f}")
claim("the recogniser finds at least 7 different digits among the 100 samples (2 or more each)",
      (sample_digits >= 2).sum() >= 7, f"{int((sample_digits >= 2).sum())} digits: {sample_digits.tolist()}")

# %% [markdown]
# ## 2. The manifold of a 2-D model
#
# With a 2-D latent space we can decode a whole grid of z.  The grid is laid
# out in equal steps of *probability* under the prior: z = Phi^-1(u) for u
# from 0.03 to 0.97, with Phi the standard normal CDF.  That spends more
# grid points near the centre, where most of the prior's mass (and most
# training digits) are.  Neighbouring images change smoothly: two
# neighbours on the grid differ by much less (under a third) than two grid
# images picked at random.  Most digits appear -- the recogniser finds at
# least 6 of the ten covering 4 or more of the 400 grid cells each (with two
# numbers, similar digits such as 4 and 9 share a region, and a thin digit
# may be squeezed out) -- and between them are shapes "half way" between
# digits.

# %%
n = 20
u = np.linspace(0.03, 0.97, n)
values = np.array([NormalDist().inv_cdf(p) for p in u])
grid = np.array([(a, b) for b in values[::-1] for a in values])  # top row = largest z_2
fig, ax = plt.subplots(figsize=(9, 9))
manifold = vae2.decode(grid)
show(ax, manifold, n, "decode(z) over a grid of the 2-D latent plane (z_1 right, z_2 up)")
savefig(fig, "08_manifold_2d.png")

cells = manifold.reshape(n, n, 784).astype(np.float64)
step = np.sqrt(np.concatenate([((cells[1:] - cells[:-1]) ** 2).sum(-1).ravel(),
                               ((cells[:, 1:] - cells[:, :-1]) ** 2).sum(-1).ravel()])).mean()
pick = np.random.default_rng(SEED).integers(0, n * n, (2, 2000))
flat = cells.reshape(n * n, 784)
far = np.sqrt(((flat[pick[0]] - flat[pick[1]]) ** 2).sum(-1)).mean()
manifold_digits = np.bincount(recognise(manifold), minlength=10)
print(f"mean pixel distance: grid neighbours {step:.2f}, random pairs of grid images {far:.2f}")
print(f"grid cells per digit (the recogniser's labels), digits 0..9: {manifold_digits}")
claim("grid neighbours differ by less than a third of the distance between random grid images",
      step < far / 3, f"{step:.2f} vs {far:.2f}")
claim("the recogniser finds at least 6 different digits in the manifold (4 or more cells each)",
      (manifold_digits >= 4).sum() >= 6,
      f"{int((manifold_digits >= 4).sum())} digits: {manifold_digits.tolist()}")

# %% [markdown]
# ## 3. Interpolating between two real digits
#
# Take two test digits a and b, their codes mu_a and mu_b, and decode
# (1 - t) mu_a + t mu_b for t from 0 to 1.  Below each latent walk, the same
# walk in pixel space, (1 - t) x_a + t x_b, for comparison: pixel space
# simply cross-fades two images (at t = 0.5 you see both digits at half
# brightness), while the latent walk moves one shape into the other.  Its
# middle frames can be faint or broken where the path crosses a region no
# training digit's cloud covers, but they are single shapes, hardly ever a
# double exposure.

# %%
def first_index(label, skip=0):
    return int(np.flatnonzero(data.y_test == label)[skip])


pairs = [(first_index(2), first_index(7)), (first_index(4), first_index(9, 1)), (first_index(1), first_index(0))]
t = np.linspace(0, 1, 10)[:, None]
rows = []
for ia, ib in pairs:
    mu_a, _ = vae20.encode(data.x_test[ia])
    mu_b, _ = vae20.encode(data.x_test[ib])
    rows.append(vae20.decode((1 - t) * mu_a + t * mu_b))
    rows.append((1 - t) * data.x_test[ia] + t * data.x_test[ib])
fig, axes = plt.subplots(len(rows), 1, figsize=(9, 1.15 * len(rows) + 0.4))
for k, (ax, row) in enumerate(zip(axes, rows)):
    show(ax, row, 10, "latent interpolation" if k % 2 == 0 else "pixel cross-fade")
savefig(fig, "08_interpolation.png")

# %% [markdown]
# A number for "a single shape, not a double exposure": the *ink area* of an
# image, the number of pixels brighter than 0.2.  A cross-fade at t = 0.5
# covers the union of both digits' strokes; a single digit covers about as
# much as either end.  Over 200 random pairs of test digits of different
# classes we compare each middle frame's area with the mean area of its two
# ends (decoded ends for the latent walk, real ends for the cross-fade).

# %%
def ink(images):
    return (np.asarray(images) > 0.2).sum(axis=1)


pair_rng = np.random.default_rng(SEED + 1)
ia, ib = pair_rng.integers(0, len(data.x_test), (2, 600))
keep = data.y_test[ia] != data.y_test[ib]
ia, ib = ia[keep][:200], ib[keep][:200]
mu_a, _ = vae20.encode(data.x_test[ia])
mu_b, _ = vae20.encode(data.x_test[ib])
latent_ratio = (ink(vae20.decode((mu_a + mu_b) / 2))
                / (0.5 * (ink(vae20.decode(mu_a)) + ink(vae20.decode(mu_b)))))
fade_ratio = (ink((data.x_test[ia] + data.x_test[ib]) / 2)
              / (0.5 * (ink(data.x_test[ia]) + ink(data.x_test[ib]))))
latent_growth, fade_growth = np.median(latent_ratio), np.median(fade_ratio)
latent_double, fade_double = float((latent_ratio > 1.3).mean()), float((fade_ratio > 1.3).mean())
print(f"ink area of the middle frame / mean ink area of the ends, over {len(ia)} pairs: "
      f"latent walk median {latent_growth:.2f}, largest {latent_ratio.max():.2f}; "
      f"cross-fade median {fade_growth:.2f}, largest {fade_ratio.max():.2f}")
print(f"pairs whose middle frame covers more than 1.3 times the ends' ink: latent walk {latent_double:.1%}, "
      f"cross-fade {fade_double:.1%}")
claim("the latent walk's middle frame covers about one digit's ink (median area ratio < 1.2)",
      latent_growth < 1.2, f"area ratio {latent_growth:.2f}")
claim("the cross-fade's middle frame covers far more (median area ratio > 1.3: two digits at once)",
      fade_growth > 1.3, f"area ratio {fade_growth:.2f}")
claim("the latent walk hardly ever makes a double exposure: an area ratio above 1.3 in under 5% of "
      "the pairs, against most pairs for the cross-fade",
      latent_double < 0.05 and fade_double > 0.5, f"{latent_double:.1%} against {fade_double:.1%}")

# %% [markdown]
# ## 4. Latent arithmetic
#
# The average code of all test digits of a class, m_c = mean of mu(x) over
# x of class c, is a point that "means" that class.  The difference
# m_b - m_a is a direction that turns a's into b's.  Starting from a digit of
# class a at its own code z, decode z + t (m_b - m_a) for t = 0 ... 1.5:
# often the digit morphs into a b while keeping its slant, and in part its
# stroke width (4 to 9, 1 to 7).  Not always cleanly: the step is a straight line, and the
# classes are not arranged along straight lines (3 to 8 may pass through a
# 5; 7 to 1 may fade before it sharpens).  Below the picture, the
# recogniser counts, for each move and up to 100 test digits of class a, how
# many decode(z + (m_b - m_a)) (t = 1) it labels b.

# %% [markdown]
# And in numbers, "keeping its slant, and in part its stroke width", with two measures of
# handwriting taken from the ink (pixel intensities as weights), the first
# one also lesson 14's:
#
# * **slant**: the regression slope of the column on the row of the ink,
#   cov(col, row) / var(row), negative for a digit leaning right;
# * **stroke width**: the total ink divided by the number of pixels brighter
#   than 0.2 -- thick strokes have more ink per covered pixel, since fewer of
#   their pixels are the grey edges of a stroke.
#
# For each move and its up to 100 digits we correlate a test digit's value
# with that of its moved version decode(z + (m_b - m_a)).  The slant carries
# over almost perfectly; the stroke width only in part, more for some moves
# than for others (the run prints each move's two correlations).

# %%
rows_at, cols_at = np.mgrid[0:28, 0:28].reshape(2, -1).astype(np.float64)


def slant(images):
    w = np.asarray(images, dtype=np.float64)
    w = w / w.sum(axis=1, keepdims=True)
    r_mean, c_mean = w @ rows_at, w @ cols_at
    return (w @ (rows_at * cols_at) - r_mean * c_mean) / (w @ (rows_at * rows_at) - r_mean ** 2)


def stroke(images):
    images = np.asarray(images, dtype=np.float64)
    return images.sum(axis=1) / np.maximum(ink(images), 1)


mu_test, _ = vae20.encode(data.x_test)
class_mean = np.stack([mu_test[data.y_test == c].mean(axis=0) for c in range(10)])
moves = [(4, 9), (7, 1), (3, 8), (1, 7), (6, 0)]
t = np.linspace(0, 1.5, 10)[:, None]
fig, axes = plt.subplots(len(moves), 1, figsize=(9.5, 1.2 * len(moves) + 0.4))
for ax, (a, b) in zip(axes, moves):
    i = first_index(a, 2)
    z = mu_test[i] + t * (class_mean[b] - class_mean[a])
    show(ax, np.vstack([data.x_test[i][None, :], vae20.decode(z)]), 11,
         f"a test {a} (left), then decode(z + t (m_{b} - m_{a})) for t = 0 ... 1.5")
savefig(fig, "08_latent_arithmetic.png")

turned, kept = {}, {}
for a, b in moves:
    codes_a = mu_test[data.y_test == a][:100]
    moved = vae20.decode(codes_a + class_mean[b] - class_mean[a])
    turned[(a, b)] = float((recognise(moved) == b).mean())
    source = data.x_test[data.y_test == a][:100]
    kept[(a, b)] = (float(np.corrcoef(slant(source), slant(moved))[0, 1]),
                    float(np.corrcoef(stroke(source), stroke(moved))[0, 1]))
    print(f"  {a} -> {b}: {turned[(a, b)]:.0%} of {len(codes_a)} moved {a}s are recognised as {b}s")
share = np.mean(list(turned.values()))
print(f"slant and ink (a source digit against its moved version, correlation over the digits of each move): "
      + ", ".join(f"{a}->{b} {kept[(a, b)][0]:.2f} / {kept[(a, b)][1]:.2f}" for a, b in moves))
slant_kept = np.mean([v[0] for v in kept.values()])
ink_kept = np.mean([v[1] for v in kept.values()])
claim("a moved digit keeps its slant: averaged over the five moves, the correlation between the slant "
      "of a test digit and that of its moved version is above 0.8", slant_kept > 0.8,
      f"mean r = {slant_kept:.2f}; " + ", ".join(f"{a}->{b} {v[0]:.2f}" for (a, b), v in kept.items()))
claim("and in part its stroke width: the same correlation for the ink per covered pixel is above 0.2 "
      "on average, and below the slant's", 0.2 < ink_kept < slant_kept,
      f"mean r = {ink_kept:.2f}; " + ", ".join(f"{a}->{b} {v[1]:.2f}" for (a, b), v in kept.items()))
claim("on average over the five moves, most moved digits are recognised as the target digit (> 50%)",
      share > 0.5, f"{share:.0%}; " + ", ".join(f"{a}->{b} {v:.0%}" for (a, b), v in turned.items()))

# %% [markdown]
# ## What we learned
#
# * Prior samples decode to digits of many classes that are not copies of
#   training digits.
# * The 2-D manifold shows the whole model at once: a smooth map from the
#   plane to digit shapes.
# * Straight lines in latent space pass through digit-like images; straight
#   lines in pixel space cross-fade.  Differences of class means act as
#   "turn an a into a b" directions.

# %%
done()

# %% [markdown]
# ## Your turn: exercises
#
# Derive it yourself; the package's finite-difference checker grades your attempt
# (see `lessons/exercises/README.md`):
#
# - exercise 12: `lessons/exercises/12_capstone.py`, checked by `numpy-vae exercise 12`
