# %% [markdown]
# # Lesson 06 -- Training a VAE on MNIST, the loop written out
#
# Everything so far comes together: an encoder that outputs a Gaussian
# (lesson 02), a sample through the reparameterization (03), the KL term (04)
# and the ELBO (05).  This lesson trains the package's standard model, a
# 784-400-20 VAE with a Bernoulli decoder, and writes out every line of the
# training loop:
#
#     for every epoch:
#         shuffle the training images
#         for every batch of 100:
#             draw fresh 0/1 pixels from the grey levels          (binarize)
#             loss, grads = model.loss_and_grads(batch)          (forward + backward)
#             adam.step(grads)                                   (update the weights)
#         estimate the ELBO of the test images                   (are we overfitting?)
#
# What `loss_and_grads` does inside (numpy_vae/models.py, `VAE.loss_and_grads`):
#
#     forward:   h = encoder(x);  mu, logvar = heads(h);  z = mu + exp(logvar/2) * eps
#                logits = decoder(z);  recon = BCE(logits, x);  kl = KL(mu, logvar)
#                loss = mean over the batch of (recon + kl)            = -ELBO
#     backward:  the same steps in reverse: each layer's backward() turns the
#                gradient of its output into gradients of its weights and input.
#
# and `Adam.step` (numpy_vae/optim.py) moves each weight against a running
# average of its gradient, divided by a running root-mean-square of it.  That
# ratio does not care about the scale of the gradient: multiply a weight's
# gradients by 1000 and its steps stay the same.  And it is bounded: no
# weight moves by more than (1 - beta1) / sqrt(1 - beta2) = 3.16 times the
# learning rate, 0.001, in a step (that worst case is a sudden large
# gradient after a long calm).  How far a step goes depends on how steady
# the gradient is: a weight whose gradient keeps its sign from batch to
# batch moves by about the learning rate; one whose gradient is mostly
# noise, flipping sign from batch to batch, has a small average over a large
# root-mean-square and moves much less.  Minibatch gradients are mostly
# noise, so after the first steps the typical weight moves by a fraction of
# the learning rate.  (Only on the very first step, where the average and
# the root-mean-square are the same single gradient, does every weight move
# by exactly the learning rate.)
#
# The `numpy-vae train` command runs this same loop with checkpoints, logging
# and the command-line options (numpy_vae/train.py); this lesson keeps only
# the loop.
#
# **Quick mode** (4 epochs on a third of MNIST instead of 20 on all of it;
# under a minute): run `python lessons/06_training_on_mnist.py --quick`, or in
# a notebook run `%env NUMPY_VAE_QUICK=1` (or
# `os.environ["NUMPY_VAE_QUICK"] = "1"`) before the setup cell below.  Every
# sentence the run can confirm is checked by a `claim(...)` after the cell
# that shows it.

# %%
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent if "__file__" in globals() else Path.cwd()
sys.path.insert(0, str(HERE if (HERE / "_common.py").exists() else HERE / "lessons"))

import matplotlib.pyplot as plt
import numpy as np
from _common import claim, done, load_digits, savefig, setup, show

from numpy_vae import VAE, Adam
from numpy_vae.data import binarize
from numpy_vae.evaluate import negative_elbo

settings = setup("Lesson 06: training on MNIST")
SEED = settings.seed  # every random draw below derives from it (--seed N, NUMPY_VAE_SEED=N)
data = load_digits(settings, n_train_quick=20_000)
x_train, x_test = data.x_train, data.x_test_bin  # the test set, binarized once with a fixed seed

epochs = settings.pick(4, 20)
batch_size = 100
learning_rate = 1e-3

model = VAE(input_dim=784, hidden_dims=(400,), latent_dim=20, likelihood="bernoulli", seed=SEED)
adam = Adam(model.params, lr=learning_rate, backend=model.backend)
rng = np.random.default_rng(SEED)  # shuffling and binarization
print(model, f"with {model.num_params} parameters")

# %% [markdown]
# ## The test ELBO
#
# After each epoch we estimate the ELBO of the test images, which training
# never sees.  `negative_elbo` (numpy_vae/evaluate.py) runs the test set
# through `model.terms` in batches -- the reconstruction NLL and the KL of
# each image, one sampled z each -- and averages them.  Its noise eps comes
# from its own generator with a fixed seed, so the only thing that changes
# from epoch to epoch is the model, and evaluating never disturbs training.
# (Lesson 11 computes tighter numbers.)


# %%
def test_elbo(model, x):
    """ELBO of x, one sampled z per image, and its two terms (nats per image)."""
    result = negative_elbo(model, x, seed=SEED + 123)
    return -result["nelbo"], result["recon"], result["kl"]


elbo0, _, _ = test_elbo(model, x_test)
print(f"before training: test ELBO {elbo0:.1f} nats per image "
      f"(784 coin flips would be 784 log 2 = {784 * np.log(2):.0f} nats)")
claim("an untrained model scores about as well as 784 coin flips: test ELBO within 5% of -784 log 2",
      abs(elbo0 + 784 * np.log(2)) < 0.05 * 784 * np.log(2), f"{elbo0:.1f} against {-784 * np.log(2):.1f}")

# %% [markdown]
# ## The loop

# %%
steps, step_loss, step_recon, step_kl = [], [], [], []
epoch_steps, epoch_test, epoch_terms = [0], [elbo0], []
step = 0
# To look at Adam's steps we watch one weight matrix, decoder.0.W (z -> hidden):
# how far each of its weights moves in each step, and its gradients in the last
# epoch.  A second Adam gets the same gradients times 1000 for the first steps.
watched = "decoder.0.W"
biggest_move, last_moves, last_grads = [], [], []
shadow_steps = 50
first_w = model.params[watched].copy()
shadow = Adam({watched: first_w.copy()}, lr=learning_rate, backend=model.backend)
for epoch in range(1, epochs + 1):
    start_time = time.time()
    order = rng.permutation(len(x_train))                # a new order every epoch
    for start in range(0, len(order) - batch_size + 1, batch_size):
        batch = x_train[order[start:start + batch_size]]
        batch = binarize(batch, "dynamic", rng)          # pixel = 1 with probability = grey level
        loss, grads, info = model.loss_and_grads(batch)  # -ELBO of the batch, and d(-ELBO)/d(weight)
        w_before = model.params[watched].copy()
        if step < shadow_steps:
            shadow.step({watched: grads[watched] * 1000.0})
        adam.step(grads)                                 # weights -= learning rate * (Adam's direction)
        move = np.abs(model.params[watched] - w_before)
        biggest_move.append(float(move.max()))
        if step == 0:
            first_move = move
        if step + 1 == shadow_steps:
            shadow_gap = float(np.abs(shadow.params[watched] - model.params[watched]).max())
            shadow_travel = float(np.abs(model.params[watched] - first_w).max())
        if epoch == epochs:
            last_moves.append(move.ravel())
            last_grads.append(grads[watched].ravel().copy())
        step += 1
        steps.append(step)
        step_loss.append(float(loss))
        step_recon.append(float(info["recon"]))
        step_kl.append(float(info["kl"]))
    elbo, recon, kl = test_elbo(model, x_test)
    epoch_steps.append(step)
    epoch_test.append(elbo)
    epoch_terms.append((recon, kl))
    print(f"epoch {epoch:2d}: train -ELBO {np.mean(step_loss[-100:]):6.1f} (mean of the last 100 batches)   "
          f"test ELBO {elbo:7.2f} = -(recon {recon:6.2f} + KL {kl:5.2f})   [{time.time() - start_time:.1f} s]")

final_elbo = epoch_test[-1]
print(f"\nfinal test ELBO: {final_elbo:.2f} nats per image (one-sample estimate)")
# The same estimate on as many training images, binarized once the same way:
x_train_bin = binarize(x_train[:len(x_test)], "dynamic", np.random.default_rng(SEED + 1234))
train_elbo = test_elbo(model, x_train_bin)[0]
print(f"the same estimate on {len(x_test)} training images: {train_elbo:.2f}")

# %% [markdown]
# ## Loss curves
#
# Left: the training loss (-ELBO of each batch; faint) with its running
# average, and the test -ELBO after each epoch (dots).  They fall fast in the
# first epoch and slowly after.  The test value sits close to the training
# value: a 20-number code has little room to memorise the training digits.
#
# Right: the two terms.  The reconstruction error falls while the KL
# *rises*: to reconstruct better the encoder has to put information into z,
# and the KL is what that costs.  The KL averaged over the data is an upper
# bound on the information z carries about x (the mutual information
# I(x; z), in nats), not equal to it:
#
#     average over x of KL(q(z|x) || p(z)) = I(x; z) + KL(q(z) || p(z))  >=  I(x; z)
#
# where q(z), the average of all the digits' clouds, is what the codes look
# like as a whole.  So each nat of information costs at least a nat of KL,
# and more when the clouds together do not cover the prior.  Training finds
# the point where the trade stops paying.

# %%
def smooth(v):
    """Centred running average over k = 1/60 of the steps: (steps, averages)."""
    k = max(5, len(v) // 60)
    return np.array(steps[k // 2:k // 2 + len(v) - k + 1]), np.convolve(v, np.ones(k) / k, mode="valid")


fig, (ax_l, ax_r) = plt.subplots(1, 2, figsize=(12, 4.3))
ax_l.plot(steps, step_loss, color="C0", alpha=0.2, lw=0.5)
ax_l.plot(*smooth(step_loss), color="C0", label="training batches (-ELBO), running average")
ax_l.plot(epoch_steps, [-e for e in epoch_test], "o-", color="C3", label="test set, after each epoch")
ax_l.set_ylim(min(step_loss) - 5, np.percentile(step_loss, 99) + 10)
ax_l.set_xlabel("training step (batch of 100)")
ax_l.set_ylabel("-ELBO, nats per image")
ax_l.legend(fontsize=8)
ax_l.set_title("loss", fontsize=10)
ax_r.plot(*smooth(step_recon), color="C1")
ax_r.set_ylabel("reconstruction -log p(x|z) (nats)", color="C1")
ax_r.set_ylim(min(step_recon) - 5, np.percentile(step_recon, 99) + 10)
ax_k = ax_r.twinx()
ax_k.plot(*smooth(step_kl), color="C2")
ax_k.set_ylabel("KL(q(z|x) || p(z)) (nats)", color="C2")
ax_r.set_xlabel("training step")
ax_r.set_title("the two terms (running averages)", fontsize=10)
savefig(fig, "06_loss_curves.png")

# %% [markdown]
# The run checks what this section and the introduction said: Adam's steps
# (blind to the gradient's scale, never more than 3.16 learning rates,
# smaller for noisy gradients), the shape of the test curve, the gap between
# training and test, and the two terms.
#
# For the noise we look at the last epoch: per weight of decoder.0.W, how
# steady its gradient was -- |mean of g| / root-mean-square of g over the
# epoch's batches, 1 for a gradient that never changes, near 0 for one that
# is pure noise -- against how far the weight moved per step on average.
# By the last epoch the typical gradient is nearly pure noise, and the
# typical weight moves by about what pure noise gives, a fifth of the
# learning rate.  After the 4 epochs of quick mode the model is still
# learning, and the weights with the steadiest gradients move further than
# those with the noisiest; after the 20 epochs of full mode even the
# steadiest quarter is noise, and all move alike.

# %%
lr = learning_rate
g_last, moves_last = np.array(last_grads), np.array(last_moves)  # (steps of the last epoch, weights)
rms = np.sqrt((g_last ** 2).mean(axis=0))
seen = rms > 0  # weights of hidden units that never fired get no gradient at all
steadiness = np.abs(g_last.mean(axis=0))[seen] / rms[seen]
mean_move = moves_last.mean(axis=0)[seen] / lr
steady, noisy = steadiness >= np.quantile(steadiness, 0.75), steadiness <= np.quantile(steadiness, 0.25)
print(f"Adam's first step, {watched}: the weights with a gradient move by (median) "
      f"{np.median(first_move[first_move > 0]):.5f} "
      f"(the learning rate: the average and the root-mean-square are one and the same gradient)")
print(f"a second Adam fed the first {shadow_steps} gradients times 1000: its weights differ from the real ones "
      f"by at most {shadow_gap:.1e}, while the real ones moved up to {shadow_travel:.1e}")
print(f"largest step of any weight, over all {step} steps: {max(biggest_move) / lr:.2f} x the learning rate")
print(f"last epoch, mean step per weight (in learning rates): median {np.median(mean_move):.2f}; "
      f"steadiest quarter of gradients {np.median(mean_move[steady]):.2f}, noisiest quarter "
      f"{np.median(mean_move[noisy]):.2f} (steadiness {np.median(steadiness[steady]):.2f} vs "
      f"{np.median(steadiness[noisy]):.2f})")
claim("Adam does not care about the scale of the gradient: gradients times 1000 give the same steps "
      f"(after {shadow_steps} steps the weights differ by under 1% of how far they moved)",
      shadow_gap < 0.01 * shadow_travel, f"differ by {shadow_gap:.1e}, moved up to {shadow_travel:.1e}")
claim("no weight ever moves by more than (1 - beta1) / sqrt(1 - beta2) = 3.16 learning rates in a step, "
      "and some do move by more than one", lr < max(biggest_move) < 3.16 * lr,
      f"largest step {max(biggest_move) / lr:.2f} x lr")

# %% [markdown]
# The two extremes, on 1200 made-up weights for 200 steps: a gradient that
# never changes, and one that is pure noise (zero mean), each with scales
# from 1e-4 to 100 across the weights.  Then the real run again: its
# gradients sit between the extremes, much nearer the noise.

# %%
toy_rng = np.random.default_rng(SEED + 6)
scales = np.logspace(-4, 2, 1200)
toy = {"steady": np.zeros(1200), "noise": np.zeros(1200)}
toy_adam = Adam(toy, lr=lr)
toy_moves = {"steady": [], "noise": []}
for _ in range(200):
    before = {k: v.copy() for k, v in toy.items()}
    toy_adam.step({"steady": scales.copy(), "noise": scales * toy_rng.standard_normal(1200)})
    for k in toy:
        toy_moves[k].append(np.abs(toy[k] - before[k]) / lr)
steady_moves, noise_moves = np.array(toy_moves["steady"]), np.array(toy_moves["noise"])
by_decade = noise_moves.mean(axis=0).reshape(6, -1).mean(axis=1)  # weights grouped by gradient scale
print(f"made-up gradients, 200 steps: a constant gradient moves its weight by {steady_moves.min():.3f} .. "
      f"{steady_moves.max():.3f} lr per step; pure noise by {noise_moves.mean():.2f} lr on average "
      f"(per decade of scale, 1e-4 to 100: {', '.join(f'{v:.2f}' for v in by_decade)})")
claim("a weight whose gradient keeps its sign moves by the learning rate every step (within 1%), and one "
      "whose gradient is pure noise by under 0.3 of it on average, the same at every scale from 1e-4 to 100",
      steady_moves.min() > 0.99 and steady_moves.max() < 1.01 and by_decade.max() < 0.3,
      f"steady {steady_moves.min():.3f} .. {steady_moves.max():.3f}; noise, per decade of scale, "
      + ", ".join(f"{v:.2f}" for v in by_decade))
claim("minibatch gradients are mostly noise: in the last epoch the typical weight moves by about what "
      "pure noise gives, between 0.1 and 0.3 learning rates per step",
      0.1 < np.median(mean_move) < 0.3, f"median {np.median(mean_move):.2f} lr (pure noise: {noise_moves.mean():.2f})")
move_steady, move_noisy = np.median(mean_move[steady]), np.median(mean_move[noisy])
if settings.quick:
    claim("still learning after 4 epochs, the weights with the noisiest quarter of gradients move less than "
          "0.85 times as far as those with the steadiest quarter", move_noisy < 0.85 * move_steady,
          f"noisiest quarter {move_noisy:.2f} lr, steadiest {move_steady:.2f} lr")
else:
    claim("after 20 epochs even the steadiest quarter of gradients is noise (steadiness below 0.1), and it "
          "moves its weights about as far as the noisiest quarter (within 20%)",
          np.median(steadiness[steady]) < 0.1 and abs(move_noisy / move_steady - 1) < 0.2,
          f"steadiness {np.median(steadiness[steady]):.2f}; noisiest quarter {move_noisy:.2f} lr, "
          f"steadiest {move_steady:.2f} lr")
(recon_1, kl_1), (recon_end, kl_end) = epoch_terms[0], epoch_terms[-1]
claim("the test -ELBO falls fast in the first epoch and slowly after: the first epoch gains more than "
      "10 times what the last one does", (epoch_test[1] - epoch_test[0]) > 10 * (epoch_test[-1] - epoch_test[-2]),
      f"first epoch {epoch_test[1] - epoch_test[0]:+.1f} nats, last {epoch_test[-1] - epoch_test[-2]:+.1f}")
claim("the test value sits close to the training value: within 3 nats", abs(train_elbo - final_elbo) < 3,
      f"training {train_elbo:.2f}, test {final_elbo:.2f}")
claim("the reconstruction error falls while the KL rises, from the first epoch to the last",
      recon_end < recon_1 and kl_end > kl_1,
      f"recon {recon_1:.1f} -> {recon_end:.1f}, KL {kl_1:.1f} -> {kl_end:.1f}")

# %% [markdown]
# ## Reconstructions and samples
#
# Reconstructions: test digits (binarized, as the model sees them) and the
# decoder's pixel probabilities for their mean code, decode(mu(x)).
# Samples: codes drawn from the prior N(0, I), decoded.  The samples are
# blurrier and stranger than the reconstructions: the prior has regions no
# training digit's cloud covers well.  (We show the probabilities, not
# 0/1 draws from them, which would only add salt-and-pepper noise.)

# %%
fig, axes = plt.subplots(2, 1, figsize=(10, 2.5))
show(axes[0], x_test[:16], 16, "test digits")
show(axes[1], model.reconstruct(x_test[:16]), 16, "reconstructions: decode(mu(x))")
savefig(fig, "06_reconstructions.png")

fig, ax = plt.subplots(figsize=(7, 7))
samples = model.sample(64)
show(ax, samples, 8, "64 samples: decode(z), z ~ N(0, I)")
savefig(fig, "06_samples.png")

# %% [markdown]
# "Blurrier" in a number: the share of pixels the decoder leaves grey (a
# probability between 0.2 and 0.8) rather than clearly black or white, in
# 500 samples and 500 reconstructions.

# %%
def grey_share(images):
    return float(((images > 0.2) & (images < 0.8)).mean())


grey_samples, grey_recon = grey_share(model.sample(500)), grey_share(model.reconstruct(x_test[:500]))
print(f"grey pixels, 500 images each: samples {grey_samples:.1%}, reconstructions {grey_recon:.1%}")
claim("samples are blurrier than reconstructions: more grey pixels", grey_samples > grey_recon,
      f"{grey_samples:.1%} against {grey_recon:.1%}")

# %% [markdown]
# ## What we learned
#
# * The whole training procedure is a dozen lines: shuffle, binarize, one
#   call for the loss and every gradient, one optimizer step.
# * The test ELBO climbs from about -550 nats (random weights) to about -100
#   after 20 epochs on all of MNIST (full mode), and to about -120 after the
#   4 epochs on a third of it of quick mode; the KL grows while the
#   reconstruction error shrinks.
# * Lessons 07-12 use the same loop, folded into `_common.train`.

# %%
target = settings.pick(-120, -100)
claim(f"the test ELBO climbs from about -550 to about {target} (within 8 nats)",
      abs(final_elbo - target) < 8, f"{elbo0:.1f} -> {final_elbo:.1f}")

# %%
done()

# %% [markdown]
# ## Your turn: exercises
#
# Derive it yourself; the package's finite-difference checker grades your attempt
# (see `lessons/exercises/README.md`):
#
# - exercise 6: `lessons/exercises/06_adam.py`, checked by `numpy-vae exercise 6`
# - exercise 12: `lessons/exercises/12_capstone.py`, checked by `numpy-vae exercise 12`
