# %% [markdown]
# # Lesson 12 -- Faster backends, and a convolutional VAE
#
# Everything so far ran on the NumPy reference.  The package keeps the math
# in one place and lets a *backend* swap the array library and the handful of
# elementwise kernels a training step spends its time in
# (numpy_vae/backend.py):
#
# * **numpy**: the readable reference, `numpy_vae/ops.py`;
# * **numba**: the same kernels as compiled loops (`numpy_vae/backends/numba_ops.py`),
#   one pass over memory instead of several temporary arrays;
# * **cupy**: arrays on an NVIDIA GPU, the kernels as CUDA elementwise kernels
#   (`numpy_vae/backends/cupy_ops.py`).
#
# The matrix products, most of the arithmetic, go to BLAS (cuBLAS on the
# GPU) in every backend.  So on a CPU Numba can only speed up the rest --
# expect a modest gain, not an order of magnitude; the GPU is where the big
# factor is.  Choosing one is one argument: `VAE(..., backend="numba")`, or
# `NUMPY_VAE_BACKEND=numba` in the environment.
#
# Then a different architecture with the same contract: `ConvVAE`
# (numpy_vae/conv_vae.py), whose encoder and decoder are convolution stacks
# (numpy_vae/conv.py) instead of fully connected layers.
#
# In a notebook, run  %env NUMPY_VAE_QUICK=1  before this cell for quick mode.
# Quick mode times 30 steps per backend and trains a small ConvVAE (8 and 16
# feature maps) for 3 epochs on the first 5,000 MNIST images; full mode
# times 300 steps and trains the package's default ConvVAE (32 and 64) for
# 2 epochs on all 60,000.  Timings depend on the machine and on whatever
# else runs on it, so no claim below is about speed.

# %%
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent if "__file__" in globals() else Path.cwd()
sys.path.insert(0, str(HERE if (HERE / "_common.py").exists() else HERE / "lessons"))

import matplotlib.pyplot as plt
import numpy as np
from _common import binarize_batch, claim, done, evaluate, load_digits, savefig, setup, show, train

from numpy_vae import VAE, Adam, BackendUnavailableError, get_backend

settings = setup("Lesson 12: faster backends and a convolutional VAE")
SEED = settings.seed  # every random draw below derives from it (--seed N, NUMPY_VAE_SEED=N)
data = load_digits(settings)

# %% [markdown]
# ## The same model on each backend
#
# For each backend: build the 784-400-20 VAE with the same seed (so the same
# initial weights and the same noise), run a few warm-up steps (Numba
# compiles its kernels on first use; that time is reported separately), then
# time a few hundred training steps on the same batches.  The losses should
# agree to float32 rounding: the backends compute the same function.  (A
# backend this machine lacks is skipped; if only numpy is left, there is
# nothing to compare, and the run prints NOT CHECKED instead of a claim.)

# %%
n_steps = settings.pick(30, 300)
rng = np.random.default_rng(SEED)
batches = [binarize_batch(data.x_train[rng.integers(0, len(data.x_train), 100)], rng) for _ in range(n_steps)]

timings, first_step, losses = {}, {}, {}
for name in ("numpy", "numba", "cupy"):
    try:
        get_backend(name)
    except (BackendUnavailableError, ImportError) as err:
        print(f"{name:6s}: not available: {err}")
        continue
    model = VAE(latent_dim=20, backend=name, seed=SEED)
    opt = Adam(model.params, lr=1e-3, backend=model.backend)
    xp = model.backend.xp
    gpu_batches = [model.backend.asarray(b) for b in batches]

    def step(xb):
        loss, grads, _ = model.loss_and_grads(xb)
        opt.step(grads)
        return loss

    def wait():
        if name == "cupy":  # GPU work is asynchronous: wait for it before reading the clock
            xp.cuda.Stream.null.synchronize()

    start = time.perf_counter()
    step(gpu_batches[0])  # the first step compiles the Numba / CUDA kernels
    wait()
    first_step[name] = time.perf_counter() - start
    start = time.perf_counter()
    trace = [step(xb) for xb in gpu_batches[1:]]
    wait()
    timings[name] = (time.perf_counter() - start) / (n_steps - 1)
    losses[name] = np.array([float(v) for v in trace])
    print(f"{name:6s}: {1000 * timings[name]:7.2f} ms per step (batch 100); "
          f"first step {first_step[name]:.2f} s; loss after {n_steps} steps {losses[name][-1]:.3f}")

differences = {}
for name in timings:
    if name != "numpy":
        differences[name] = float(np.abs(losses[name] - losses["numpy"]).max())
        print(f"{name} vs numpy: {timings['numpy'] / timings[name]:.2f}x the speed; "
              f"largest loss difference over the run {differences[name]:.2e} nats")
for name, difference in differences.items():
    claim(f"the {name} backend computes the same losses as numpy, step by step (within 1e-3 nats)",
          difference < 1e-3, f"largest difference {difference:.1e} nats over {n_steps - 1} steps")
if not differences:
    # Nothing to compare: say so, rather than let a claim about no backends pass.
    print("NOT CHECKED: only the numpy backend is available here, so this run compares no backends "
          "(pip install \"numpy-vae[numba]\" and run again)")

fig, ax = plt.subplots(figsize=(6.5, 3.8))
names = list(timings)
bars = ax.bar(names, [1000 * timings[n] for n in names], color=["C0", "C1", "C2"][:len(names)])
for bar, n in zip(bars, names):
    ax.annotate(f"{1000 * timings[n]:.1f} ms\n(first step {first_step[n]:.2f} s)",
                (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center", va="bottom", fontsize=8)
ax.set_ylabel("milliseconds per training step")
ax.set_ylim(0, 1.3 * max(1000 * t for t in timings.values()))
ax.set_title(f"784-400-20 VAE, batch 100, {n_steps} steps", fontsize=10)
savefig(fig, "12_backend_timings.png")

# %% [markdown]
# ## A convolutional VAE
#
# A fully connected encoder treats the 784 pixels as an unordered list: it
# must learn separately that a stroke at the top left and the same stroke
# one pixel to the right are related.  A convolution slides one small filter
# over the whole image, so what it learns at one place applies everywhere:
#
#     encoder   28x28 -> conv 4x4, stride 2 -> 14x14 -> conv 4x4, stride 2 -> 7x7 -> mu, logvar
#     decoder   z -> 7x7 -> transposed conv -> 14x14 -> transposed conv -> 28x28 logits
#
# Everything between encoder and decoder -- the heads, the reparameterization,
# the KL, the Bernoulli likelihood, `loss_and_grads` -- is the VAE's,
# unchanged: `ConvVAE` subclasses `VAE`.  Convolutions in NumPy (im2col plus
# a matrix product, numpy_vae/im2col.py) are slow, so we train it only
# briefly, next to an MLP VAE given the same number of epochs.

# %%
try:
    from numpy_vae.conv_vae import ConvVAE
except ImportError as err:
    ConvVAE = None
    print(f"ConvVAE is not available yet in this version of the package ({err}); skipping this part.")

if ConvVAE is not None:
    conv_epochs = settings.pick(3, 2)
    n_conv = settings.pick(5000, len(data.x_train))
    conv_lr = settings.pick(3e-3, 1e-3)
    channels = settings.pick((8, 16), (32, 64))
    conv = ConvVAE(latent_dim=20, channels=channels, seed=SEED)
    mlp = VAE(latent_dim=20, seed=SEED)
    print(f"ConvVAE with channels {channels}: {conv.num_params} parameters; "
          f"the MLP VAE: {mlp.num_params} parameters")
    results, untrained = {}, {}
    for name, model in (("MLP VAE", mlp), ("ConvVAE", conv)):
        untrained[name] = evaluate(model, data.x_test_bin)["elbo"]
        start = time.perf_counter()
        train(model, data.x_train[:n_conv], epochs=conv_epochs, lr=conv_lr, quiet=True)
        seconds = time.perf_counter() - start
        results[name] = evaluate(model, data.x_test_bin)
        print(f"{name:8s}: {conv_epochs} epoch(s) on {n_conv} images in {seconds:6.1f} s; "
              f"test ELBO {results[name]['elbo']:8.2f} (recon {results[name]['recon']:.2f}, "
              f"KL {results[name]['kl']:.2f}); before training {untrained[name]:.2f}")

    x = data.x_test_bin[:12]
    fig, ax = plt.subplots(figsize=(9, 3))
    show(ax, np.vstack([x, mlp.reconstruct(x), conv.reconstruct(x)]), 12,
         f"reconstructions after {conv_epochs} epoch(s)", row_labels=["test", "MLP VAE", "ConvVAE"])
    savefig(fig, "12_conv_reconstructions.png")

# %% [markdown]
# The ConvVAE has fewer than half the weights of the MLP VAE.  In full mode
# (two epochs on all of MNIST, 32 and 64 feature maps) the convolutional
# model reaches a better test ELBO than the MLP after the same number of
# epochs: sharing one filter across the image is a good assumption about
# images.  It pays in time (compare the seconds printed above: in NumPy
# every convolution is an im2col copy and a matrix product), which is where
# a GPU backend would earn its keep.  Quick mode's small ConvVAE (8 and 16
# feature maps) after 150 steps is still behind the MLP: too short a run
# for the comparison to mean much; it only shows that both models learn
# (their test ELBO rises by more than 100 nats from the random start, to
# better than -220).

# %%
if ConvVAE is not None:
    claim("the ConvVAE has fewer than half the weights of the MLP VAE", conv.num_params < mlp.num_params / 2,
          f"{conv.num_params} vs {mlp.num_params}")
    if settings.quick:
        claim("quick mode: both models learn (test ELBO up by more than 100 nats, to better than -220)",
              all(r["elbo"] > -220 and r["elbo"] > untrained[n] + 100 for n, r in results.items()),
              ", ".join(f"{n} {untrained[n]:.2f} -> {r['elbo']:.2f}" for n, r in results.items()))
        claim("quick mode: the small ConvVAE is still behind the MLP",
              results["ConvVAE"]["elbo"] < results["MLP VAE"]["elbo"],
              ", ".join(f"{n} {r['elbo']:.2f}" for n, r in results.items()))
    else:
        claim("full mode: after the same epochs the ConvVAE has the better test ELBO",
              results["ConvVAE"]["elbo"] > results["MLP VAE"]["elbo"],
              ", ".join(f"{n} {r['elbo']:.2f}" for n, r in results.items()))

# %% [markdown]
# ## What we learned
#
# * A backend swaps the array library and a few kernels; the model code and
#   its results stay the same (the losses agree to rounding; checked above
#   for each backend this machine has -- with only numpy installed, the run
#   says it checked nothing).  On a CPU the gain from Numba is limited by
#   the share of time spent outside BLAS.
# * The convolutional VAE reuses every piece of the VAE except the two
#   networks.  It has fewer than half the weights of the MLP.  Given two
#   epochs on all of MNIST (full mode) it ends with the better test ELBO;
#   quick mode's small one, after 150 steps, is still behind.  Each epoch
#   costs several times more in NumPy (the seconds printed above).

# %%
done()

# %% [markdown]
# ## Your turn: exercises
#
# Derive it yourself; the package's finite-difference checker grades your attempt
# (see `lessons/exercises/README.md`):
#
# - exercise 10: `lessons/exercises/10_conv2d.py`, checked by `numpy-vae exercise 10`
