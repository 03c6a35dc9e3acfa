# %% [markdown]
# # Lesson 13 -- Training with the tighter bound: the importance weighted autoencoder
#
# Lesson 11 *measured* a model with the importance-weighted bound
#
#     L_k(x) = E[ log (1/k) sum_i w_i ],    w_i = p(x | z_i) p(z_i) / q(z_i | x),   z_i ~ q(z | x)
#
# and found it tighter than the ELBO: L_1 = ELBO <= L_k <= log p(x), and
# L_k grows with k.  Burda, Grosse & Salakhutdinov (2015), "Importance
# Weighted Autoencoders" (arXiv 1509.00519, ICLR 2016), asked the next
# question: why not *train* on L_k?  Their importance weighted autoencoder
# (IWAE) is the same network as the VAE, with the same encoder and decoder,
# and only the loss changed.
#
# Why is L_k tighter?  The ELBO is E[log w]: the log of each weight,
# averaged.  L_k puts the average *inside* the log, where Jensen's
# inequality (log is concave) says it can only be larger, and it is the
# average of k weights, closer to its expectation p(x) the larger k is.
# The ELBO punishes an encoder hard for every sample z that explains x
# badly; L_k only asks that *some* of the k samples explain x well.  So,
# Burda et al. argue, the encoder may spread q(z | x) wider than the true
# posterior, and the decoder gets to use more of the latent space.  (That is
# their argument about long runs; this lesson's short run does not show
# wider Gaussians: it prints the encoders' average sigma at the end, and
# the IWAE encoder's is not the larger one.)
#
# The package's implementation: numpy_vae/iwae.py (two nodes,
# `ImportanceSamples` and `LogMeanExp`, with their derivation), called by
# `VAE.loss_and_grads(x, objective="iwae", k=5)` in numpy_vae/models.py.
#
# **Quick mode** (a subset of MNIST, fewer epochs): run
# `python lessons/13_training_with_the_tighter_bound.py --quick`, or in a
# notebook run `%env NUMPY_VAE_QUICK=1` before the setup cell below.  Every
# sentence the run can confirm is checked by a `claim(...)` after the cell
# that shows it.

# %%
import os
import sys
from pathlib import Path

# Batch 20 (the paper's) makes matrices too small for a second BLAS thread
# to pay: on 2 cores the threads' waiting made this lesson several times
# slower.  One thread, unless you set it yourself (before NumPy is imported).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

HERE = Path(__file__).resolve().parent if "__file__" in globals() else Path.cwd()
sys.path.insert(0, str(HERE if (HERE / "_common.py").exists() else HERE / "lessons"))

import matplotlib.pyplot as plt
import numpy as np
from _common import claim, done, load_digits, savefig, setup, train

from numpy_vae import VAE, gradcheck
from numpy_vae.evaluate import active_units, log_weights, negative_elbo

settings = setup("Lesson 13: training with the tighter bound")
SEED = settings.seed  # every random draw below derives from it (--seed N, NUMPY_VAE_SEED=N)
data = load_digits(settings)
rng = np.random.default_rng(SEED)

# %% [markdown]
# ## k = 1 is the ELBO, and more samples give a tighter bound
#
# With one sample the IWAE loss is -log w_1 = -log p(x | z_1) + log q(z_1 | x)
# - log p(z_1): the negative ELBO, with the KL term estimated from the one
# sample instead of computed in closed form.  On a few test digits and an
# untrained model we check that, then average the loss of k = 1, 5 and 50
# samples over 20 draws.

# %%
model = VAE(784, (200, 200), 50, activation="tanh", dtype="float64", seed=SEED)
x = data.x_test_bin[:200].astype(np.float64)
eps = rng.standard_normal((1, len(x), 50))
loss_1, _, info = model.loss_and_grads(x, eps=eps, objective="iwae", k=1)
mu, logvar = model.encode(x)
z = mu + np.exp(logvar / 2) * eps[0]
recon, _ = model.terms(x, eps[0])
sampled_kl = 0.5 * (z ** 2 - eps[0] ** 2 - logvar).sum(axis=1)   # log q(z|x) - log p(z)
print(f"k = 1 IWAE loss {loss_1:.6f}; -log p(x|z) + log q(z|x) - log p(z) = {np.mean(recon + sampled_kl):.6f}")
claim("with k = 1 the IWAE loss is the negative ELBO with a sampled KL",
      abs(loss_1 - np.mean(recon + sampled_kl)) < 1e-9, f"{loss_1:.4f}")

losses = {k: np.mean([model.loss_and_grads(x, objective="iwae", k=k)[0] for _ in range(20)])
          for k in (1, 5, 50)}
print("mean IWAE loss over 20 draws: " + ", ".join(f"k={k}: {v:.2f}" for k, v in losses.items()))
claim("the loss falls (the bound tightens) from k = 1 to 5 to 50",
      losses[1] > losses[5] > losses[50], ", ".join(f"{v:.2f}" for v in losses.values()))

# %% [markdown]
# ## What the normalised weights do to the gradient
#
# Write a_i = log w_i.  The derivative of log (1/k) sum_i exp(a_i) with
# respect to a_i is
#
#     w~_i = w_i / sum_l w_l,        the normalised importance weights, sum_i w~_i = 1,
#
# so the IWAE gradient is a weighted average of the k single-sample ELBO
# gradients, each weighted by w~_i:
#
#     grad L_k = sum_i w~_i * grad log w_i
#
# The ELBO gives every sample the same say (1/k each, if we averaged k of
# them); IWAE gives most of it to the samples that explain the image best.
# A sample that lands where the decoder draws a wrong digit gets a weight
# near 0 and so cannot push the encoder back toward a narrower q.  How
# lopsided the say is we measure on 200 test images with k = 5: on this
# untrained model the best of the five samples takes more than half of it
# on a typical image (the median over the images); after training on L_5
# (at the end of this lesson), almost all of it (median above 0.8).
#
# We check the identity on one image: the IWAE gradient with five samples
# against the five one-sample gradients weighted by w~_i (the package's
# `LogMeanExp` keeps the weights after its forward pass).

# %%
one = x[:1]
eps5 = rng.standard_normal((5, 1, 50))
_, grads, _ = model.loss_and_grads(one, eps=eps5, objective="iwae", k=5)
grads = {name: g.copy() for name, g in grads.items()}
weights = model.log_mean_exp.weights[:, 0].copy()
mixture = {name: np.zeros_like(g) for name, g in grads.items()}
for i in range(5):
    _, g_i, _ = model.loss_and_grads(one, eps=eps5[i:i + 1], objective="iwae", k=1)
    for name in mixture:
        mixture[name] += weights[i] * g_i[name]
gap = max(float(np.abs(grads[n] - mixture[n]).max() / np.abs(grads[n]).max()) for n in grads)
print(f"normalised weights of the 5 samples: {np.round(weights, 4)}  (sum {weights.sum():.6f})")
claim("the normalised weights sum to 1", abs(weights.sum() - 1) < 1e-12, f"{weights.sum():.12f}")
claim("the IWAE gradient is the w~-weighted sum of the one-sample gradients", gap < 1e-10, f"{gap:.1e}")


def best_share(m, x_imgs, k, seed):
    """The largest normalised weight w~ of k samples, per image: (n,)."""
    eps_k = np.random.default_rng(seed).standard_normal((len(x_imgs), k, m.latent_dim))
    a = log_weights(m, x_imgs, eps_k)
    w = np.exp(a - a.max(axis=1, keepdims=True))
    return (w / w.sum(axis=1, keepdims=True)).max(axis=1)


share_untrained = best_share(model, x, 5, SEED + 3)
print(f"200 test images, k = 5, untrained model: the best sample's w~ has median {np.median(share_untrained):.3f} "
      f"(10% of the images below {np.quantile(share_untrained, 0.1):.3f}); the ELBO would give each 0.2")
claim("untrained: the best of 5 samples takes more than half of the say on a typical image (median of 200)",
      np.median(share_untrained) > 0.5, f"median largest w~ {np.median(share_untrained):.3f}")

# %% [markdown]
# ## The gradient, checked live
#
# numpy_vae/iwae.py derives the backward pass by hand, like every other node.
# The same finite-difference check as lesson 03 (`numpy_vae/gradcheck.py`),
# on a small float64 model with k = 5 fixed samples per image, checks it on
# every parameter array.

# %%
small = VAE(784, (16,), 4, activation="tanh", dtype="float64", seed=SEED + 1)
xs, eps_s = x[:3], rng.standard_normal((5, 3, 4))
errors = gradcheck.check_model(small, xs, eps_s, max_elements=10, seed=SEED, objective="iwae", k=5)
print(gradcheck.format_table(errors, threshold=1e-6, title="parameter"))
claim("every parameter's IWAE gradient matches finite differences to 1e-6",
      max(errors.values()) < 1e-6, f"largest relative error {max(errors.values()):.1e}")

# %% [markdown]
# ## A small run: IWAE switches more latent units on
#
# Burda et al. count a latent unit u as *active* when what the encoder says
# about it changes with the image: Var_x(mu_u(x)) > 0.01, the variance over
# the test images of the encoder's mean mu_u(x) = E_q(z|x)[z_u]
# (`active_units` in numpy_vae/evaluate.py).  Mind the quantity: lessons 05,
# 09 and 10 call a dimension active when its KL averaged over the test
# digits, KL_j, exceeds 0.01 nats.  The same number 0.01 for two different
# quantities (a variance of means, in squared units of z, against a KL in
# nats), so the two counts can differ on the same model: this lesson prints
# both.  A unit the ELBO finds no use for is switched off: q(z_u | x) = p(z_u)
# for every x costs no KL and carries nothing.  In their MNIST experiments,
# after thousands of epochs, the IWAE kept more active units than the VAE
# trained on the ELBO, and more the larger k.
#
# We train the paper's model (784-200-200-50, tanh) twice, from the same
# initial weights and on the same batches, once on the ELBO and once on
# L_5, and count the active units on the binarized test digits.  A short
# run shows the start of the story, not its end.  An untrained encoder's
# means hardly vary from image to image, so training starts with almost no
# active units (fewer than 5 of 50), and training switches them on.  In the
# same steps IWAE switches on at least as many as the ELBO, and its encoder
# says more about each image: its means vary more from image to image (the
# variances summed over the 50 units are larger) and its KL is larger.

# %%
epochs = settings.pick(3, 10)
n_train = settings.pick(5000, len(data.x_train))
x_train, x_test = data.x_train[:n_train], data.x_test_bin
untrained_units = active_units(VAE(784, (200, 200), 50, activation="tanh", seed=SEED), x_test)
print(f"untrained: {untrained_units['active_units']} active units of 50 "
      f"(the largest Var_x(mu_u) is {untrained_units['unit_variances'].max():.4f})")
runs = {}
for name, kwargs in (("ELBO", {}), ("IWAE k=5", {"objective": "iwae", "k": 5})):
    m = VAE(784, (200, 200), 50, activation="tanh", seed=SEED)
    step = (lambda xb, b, m=m, kwargs=kwargs: m.loss_and_grads(xb, **kwargs))
    train(m, x_train, epochs=epochs, batch_size=20, lr=1e-3, loss_and_grads=step, label=f"{name}: ")
    units = active_units(m, x_test)
    mu_t, logvar_t = m.encode(x_test)
    kl_j = (0.5 * (mu_t ** 2 + np.exp(logvar_t) - 1 - logvar_t)).mean(axis=0)  # lesson 10's KL_j, nats
    runs[name] = dict(model=m, **units, nelbo=negative_elbo(m, x_test)["nelbo"], kl=float(kl_j.sum()),
                      kl_active=int((kl_j > 0.01).sum()), sigma=float(np.exp(logvar_t / 2).mean()),
                      share=best_share(m, x_test[:200], 5, SEED + 4))
    r = runs[name]
    print(f"{name}: {r['active_units']} active units of 50 by Var_x(mu_u) > 0.01 ({r['kl_active']} by "
          f"lessons 05/09/10's KL_j > 0.01 nats); summed Var_x(mu_u) {r['unit_variances'].sum():.3f}; "
          f"KL {r['kl']:.2f} nats; average sigma {r['sigma']:.3f}; test -ELBO {r['nelbo']:.2f}; "
          f"median best w~ of 5 samples {np.median(r['share']):.3f}")

elbo_run, iwae_run = runs["ELBO"], runs["IWAE k=5"]
claim("untrained, almost no unit is active (fewer than 5 of 50)", untrained_units["active_units"] < 5,
      f"{untrained_units['active_units']} of 50")
claim("IWAE (k = 5) switches on at least as many units as the ELBO in the same steps",
      iwae_run["active_units"] >= elbo_run["active_units"],
      f"IWAE {iwae_run['active_units']}, ELBO {elbo_run['active_units']}")
claim("IWAE's means vary more from image to image (summed Var_x(mu_u) at least 1.5 times the ELBO's)",
      iwae_run["unit_variances"].sum() > 1.5 * elbo_run["unit_variances"].sum(),
      f"IWAE {iwae_run['unit_variances'].sum():.3f}, ELBO {elbo_run['unit_variances'].sum():.3f}")
claim("IWAE's KL is larger than the ELBO model's", iwae_run["kl"] > elbo_run["kl"],
      f"IWAE {iwae_run['kl']:.2f}, ELBO {elbo_run['kl']:.2f} nats")
claim("this short run does not show IWAE's Gaussians wider: its average sigma is not above the ELBO model's",
      iwae_run["sigma"] <= elbo_run["sigma"], f"IWAE {iwae_run['sigma']:.3f}, ELBO {elbo_run['sigma']:.3f}")
claim("trained on L_5, the best of 5 samples takes almost all of the say (median largest w~ above 0.8)",
      np.median(iwae_run["share"]) > 0.8, f"median {np.median(iwae_run['share']):.3f}")

fig, ax = plt.subplots(figsize=(8, 4))
for i, (name, run) in enumerate(runs.items()):
    ax.plot(np.sort(run["unit_variances"])[::-1], "o-", ms=3, color=f"C{i}",
            label=f"{name}: {run['active_units']} active")
ax.axhline(0.01, color="k", ls="--", lw=1, label="threshold 0.01")
ax.set_yscale("log")
ax.set_xlabel("latent unit, sorted by activity")
ax.set_ylabel("Var over test images of E_q[z_u]")
ax.set_title(f"active units after {epochs} epochs on {n_train} images", fontsize=10)
ax.legend(fontsize=8)
savefig(fig, "13_active_units.png")

# %% [markdown]
# ## What we learned
#
# * L_k puts the average of k importance weights inside the log: tighter
#   than the ELBO for k > 1, and the ELBO (with a sampled KL) for k = 1.
# * Its gradient is the single-sample gradients weighted by the normalised
#   weights w~_i: the samples that explain x get the say.
# * Trained on L_k, the encoder says more about each image: in this short
#   run it switches on at least as many latent units as the ELBO, with more
#   variation and more KL.  (That IWAE ends with more active units after
#   long training is Burda et al.'s finding, not checked here.)  How much
#   it buys in test log-likelihood, with the paper's recipe, is in the
#   README's comparison table (`numpy-vae train --recipe burda2015
#   --objective iwae --k 5`).
# * Active units here are Var_x(mu_u) > 0.01; lessons 05, 09 and 10 count
#   KL_j > 0.01 nats instead: say which when you compare counts.

# %%
done()

# %% [markdown]
# ## Your turn: exercises
#
# Derive it yourself; the package's finite-difference checker grades your attempt
# (see `lessons/exercises/README.md`):
#
# - exercise 8: `lessons/exercises/08_log_mean_exp.py`, checked by `numpy-vae exercise 8`
# - exercise 9: `lessons/exercises/09_importance_samples.py`, checked by `numpy-vae exercise 9`
