"""The README's two figures, drawn with labelled axes.

    python docs/make_figures.py            # about 30 epochs of a small model: a few minutes on 2 cores

Trains the 2-D VAE of lessons 07 and 08 (784-400-2, ReLU, Bernoulli, Adam
1e-3, batch 128, 10 epochs on all 60,000 MNIST images, seed 0) three ways,
with the reconstruction term alone (beta = 0), with the KL term alone, and
with both (the ELBO), and writes

    docs/figures/07_latent_three_ways.png   where the test digits' codes land, and prior samples
    docs/figures/08_manifold_2d.png         the ELBO model decoded over a grid of z

The lessons draw the same pictures for the reader's own run
(lessons/out/); these are the README's copies, with axis labels, tick values
and the prior's circle named in a legend.
"""

from __future__ import annotations

from pathlib import Path
from statistics import NormalDist

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Circle  # noqa: E402

from numpy_vae import VAE, Adam, threads  # noqa: E402
from numpy_vae.data import mnist_arrays  # noqa: E402

FIGURES = Path(__file__).resolve().parent / "figures"
EPOCHS, BATCH, LR = 10, 128, 1e-3


def kl_only_step(model):
    """model.loss_and_grads with the KL term alone (as lesson 07 writes it)."""
    xp = model.backend.xp

    def step(x, beta=1.0):
        batch = x.shape[0]
        h = model.encoder.forward(x)
        mu = model.mu_head.forward(h)
        logvar = model.logvar_clip.forward(model.logvar_head.forward(h))
        kl = model.kl.forward(mu, logvar).mean()
        dmu, dlogvar = model.kl.backward(xp.full((batch,), 1.0 / batch, dtype=model.backend.dtype))
        dh = model.mu_head.backward(dmu) + model.logvar_head.backward(model.logvar_clip.backward(dlogvar))
        model.encoder.backward(dh)
        grads = {f"encoder.{k}": g for k, g in model.encoder.grads.items()}
        grads.update({f"mu.{k}": g for k, g in model.mu_head.grads.items()})
        grads.update({f"logvar.{k}": g for k, g in model.logvar_head.grads.items()})
        grads.update({k: xp.zeros_like(p) for k, p in model.params.items() if k.startswith("decoder.")})
        return kl, grads, {"kl": kl}

    return step


def train(model, x, beta=1.0, step=None, seed=0):
    step = step or (lambda xb, beta: model.loss_and_grads(xb, beta=beta))
    opt = Adam(model.params, lr=LR, backend=model.backend)
    rng = np.random.default_rng(seed)
    for epoch in range(EPOCHS):
        order = rng.permutation(len(x))
        for i in range(0, len(x), BATCH):
            loss, grads, _ = step(x[order[i:i + BATCH]], beta)
            opt.step(grads)
        print(f"  epoch {epoch + 1}/{EPOCHS}: loss {float(loss):.2f}", flush=True)
    return model


def tile(images, n):
    """n x n images of 28 x 28 as one array, with a 1-pixel grey border between them."""
    grid = np.full((n * 29 + 1, n * 29 + 1), 0.5)
    for k, img in enumerate(images[:n * n]):
        r, c = divmod(k, n)
        grid[1 + 29 * r:29 * (r + 1), 1 + 29 * c:29 * (c + 1)] = img.reshape(28, 28)
    return grid


def figure_three_ways(models, x_test, y_test, path):
    rng = np.random.default_rng(0)
    colours = plt.get_cmap("tab10")
    fig, axes = plt.subplots(2, 3, figsize=(16, 10.5), gridspec_kw={"height_ratios": [1.15, 1]})
    for col, (title, model) in enumerate(models.items()):
        mu, logvar = model.encode(x_test)
        z = mu + np.exp(logvar / 2) * rng.standard_normal(mu.shape)
        ax = axes[0, col]
        for digit in range(10):
            pick = y_test == digit
            ax.scatter(z[pick, 0], z[pick, 1], s=3, color=colours(digit), alpha=0.6, linewidths=0)
        ax.add_patch(Circle((0, 0), 2, fill=False, ls="--", color="k", lw=1.2))
        ax.set_aspect("equal", adjustable="datalim")
        ax.autoscale_view()
        ax.set_xlabel("z_1")
        ax.set_ylabel("z_2")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        samples = model.sample(36)
        axes[1, col].imshow(tile(np.asarray(samples), 6), cmap="gray", vmin=0, vmax=1)
        axes[1, col].set_axis_off()
        axes[1, col].set_title(f"{title}: prior draws decoded")
    handles = [Line2D([], [], ls="", marker="o", color=colours(d), label=str(d)) for d in range(10)]
    handles.append(Line2D([], [], ls="--", color="k",
                          label="radius 2: two standard\ndeviations of the prior\nN(0, I), 86% of its mass"))
    axes[0, 2].legend(handles=handles, title="digit", loc="center left", bbox_to_anchor=(1.02, 0.5),
                      frameon=False)
    fig.suptitle("top: one sampled code z = (z_1, z_2) per test digit, coloured by digit;   "
                 "bottom: 36 draws z ~ N(0, I), decoded", fontsize=13)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def figure_manifold(model, path, n=20):
    values = np.array([NormalDist().inv_cdf(p) for p in np.linspace(0.03, 0.97, n)])
    grid = np.array([(a, b) for b in values[::-1] for a in values])  # top row: the largest z_2
    images = np.asarray(model.decode(grid))
    fig, ax = plt.subplots(figsize=(8, 8))
    ax.imshow(tile(images, n), cmap="gray", vmin=0, vmax=1)
    ticks = [0, 3, 6, 9, 13, 16, 19]
    centres = [1 + 29 * k + 13.5 for k in ticks]
    ax.set_xticks(centres, [f"{values[k]:.1f}" for k in ticks])
    ax.set_yticks(centres, [f"{values[::-1][k]:.1f}" for k in ticks])
    ax.set_xlabel("z_1 (each column: one value, in equal steps of the prior's probability)")
    ax.set_ylabel("z_2")
    ax.set_title("decode(z) over a grid of the 2-D latent plane")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main() -> int:
    # BLAS threads as `numpy-vae train` chooses them: on a busy machine one thread, not one per core
    choice = threads.resolve(None, products=threads.model_products(VAE(latent_dim=2).params, BATCH))
    print(choice.reason)
    with threads.blas_threads(choice):
        return draw()


def draw() -> int:
    x_train, _, x_test, y_test = mnist_arrays()
    models = {}
    print("reconstruction only (beta = 0)")
    models["reconstruction only (beta = 0)"] = train(VAE(latent_dim=2, seed=0), x_train, beta=0.0)
    print("KL only")
    m = VAE(latent_dim=2, seed=0)
    models["KL only"] = train(m, x_train, step=kl_only_step(m))
    print("both (beta = 1, the ELBO)")
    models["both (beta = 1)"] = train(VAE(latent_dim=2, seed=0), x_train, beta=1.0)
    FIGURES.mkdir(exist_ok=True)
    figure_three_ways(models, x_test, y_test, FIGURES / "07_latent_three_ways.png")
    figure_manifold(models["both (beta = 1)"], FIGURES / "08_manifold_2d.png")
    print(f"figures written to {FIGURES}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
