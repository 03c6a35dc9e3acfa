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

# %%
import sys
from pathlib import Path
from statistics import NormalDist

HERE = Path(__file__).resolve().parent if "__file__" in globals() else Path.cwd()
sys.path.insert(0, str(HERE if (HERE / "_common.py").exists() else HERE / "lessons"))

import matplotlib.pyplot as plt
import numpy as np
from _common import done, evaluate, load_digits, savefig, setup, show, train

from numpy_vae import VAE

settings = setup("Lesson 08: generating digits")
data = load_digits(settings)
epochs = settings.pick(3, 10)

print("a 20-dimensional VAE, for samples, interpolation and arithmetic:")
vae20 = VAE(latent_dim=20, seed=0)
train(vae20, data.x_train, epochs=epochs)
print("a 2-dimensional VAE, for the manifold:")
vae2 = VAE(latent_dim=2, seed=0)
train(vae2, data.x_train, epochs=epochs)
for model in (vae20, vae2):
    print(f"{model}: test ELBO {evaluate(model, data.x_test_bin)['elbo']:.1f} nats")

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
print(f"median distance to the nearest training image: reconstructed test digits {d_test:.2f}, "
      f"samples {d_samples:.2f} (ratio {d_samples / d_test:.2f})")

# %% [markdown]
# We compare with *reconstructed* test digits because the decoder's output
# is always a little blurred, and a blurred image is farther from any sharp
# training digit than a sharp one is.  The samples are not closer to the
# training set than held-out digits are -- they are not copies -- and only
# somewhat farther: a little less typical than real digits, as the picture
# shows.  (Pixel distances cannot tell a good digit from a bad one much
# better than that; lesson 11 measures the model properly.)
#
# ## 2. The manifold of a 2-D model
#
# With a 2-D latent space we can decode a whole grid of z.  The grid is laid
# out in equal steps of *probability* under the prior: z = Phi^-1(u) for u
# from 0.03 to 0.97, with Phi the standard normal CDF.  That spends more
# grid points near the centre, where most of the prior's mass (and most
# training digits) are.  Neighbouring images change smoothly; most digits
# appear (with two numbers, similar digits such as 4 and 9 share a region),
# and between them are shapes "half way" between digits.

# %%
n = 20
u = np.linspace(0.03, 0.97, n)
values = np.array([NormalDist().inv_cdf(p) for p in u])
grid = np.array([(a, b) for b in values[::-1] for a in values])  # top row = largest z_2
fig, ax = plt.subplots(figsize=(9, 9))
show(ax, vae2.decode(grid), n, "decode(z) over a grid of the 2-D latent plane (z_1 right, z_2 up)")
savefig(fig, "08_manifold_2d.png")

# %% [markdown]
# ## 3. Interpolating between two real digits
#
# Take two test digits a and b, their codes mu_a and mu_b, and decode
# (1 - t) mu_a + t mu_b for t from 0 to 1.  Below each latent walk, the same
# walk in pixel space, (1 - t) x_a + t x_b, for comparison: pixel space
# simply cross-fades two images (at t = 0.5 you see both digits at half
# brightness), while the latent walk moves one shape into the other.  Its
# middle frames can be faint or broken where the path crosses a region no
# training digit's cloud covers, but they are single shapes, never a double
# exposure.

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
# ## 4. Latent arithmetic
#
# The average code of all test digits of a class, m_c = mean of mu(x) over
# x of class c, is a point that "means" that class.  The difference
# m_b - m_a is a direction that turns a's into b's.  Starting from a digit of
# class a at its own code z, decode z + t (m_b - m_a) for t = 0 ... 1.5:
# often the digit morphs into a b while keeping its slant and stroke width
# (4 to 9, 1 to 7).  Not always cleanly: the step is a straight line, and the
# classes are not arranged along straight lines (3 to 8 passes through a 5;
# 7 to 1 fades before it sharpens).

# %%
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

# %% [markdown]
# ## What we learned
#
# * Prior samples decode to mostly plausible digits that are not copies of
#   training digits.
# * The 2-D manifold shows the whole model at once: a smooth map from the
#   plane to digit shapes.
# * Straight lines in latent space pass through digit-like images; straight
#   lines in pixel space cross-fade.  Differences of class means act as
#   "turn an a into a b" directions.

# %%
done()
