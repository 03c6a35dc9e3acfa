"""Figures of a trained VAE, written as PNG files (matplotlib, no display needed).

    plot_reconstructions   test images (top row) above decode(mu(x)) (bottom row)
    plot_samples           decode(z) for z ~ N(0, I): what the model generates
    plot_loss_curves       train and test negative ELBO, reconstruction and KL per epoch
    plot_latent_scatter    2-D latent models: mu(x) of the test set, coloured by digit
    plot_latent_manifold   2-D latent models: decode(z) over a grid of z
    plot_digit_grid        conditional VAE: row = the digit asked for, column = one z
    plot_style_transfer    conditional VAE: a test digit's z decoded with each label
    plot_all               all of the above that fit the model, into one folder

(Re)drawing the figures of a saved run is ``numpy-vae plot RUN`` (numpy_vae/cli.py).

Images are shown as the model's pixel means (probabilities for a Bernoulli
decoder) in grey, 0 black and 1 white.

matplotlib is optional (``pip install "numpy-vae[plot]"``).  Without it this
module still imports; ``available()`` is False and every plot function
raises ``PlotsUnavailableError`` saying how to install it.
"""

from __future__ import annotations

import math
from pathlib import Path
from statistics import NormalDist

import numpy as np

try:
    import matplotlib
    matplotlib.use("Agg")  # draw into files; never needs a display
    import matplotlib.pyplot as plt
except ImportError:  # the plot extra is not installed
    plt = None

INSTALL_HINT = 'pip install "numpy-vae[plot]"'
FIGURE_NAMES = {"reconstructions": "reconstructions.png", "samples": "samples.png",
                "loss_curves": "loss_curves.png", "latent_scatter": "latent_scatter.png",
                "latent_manifold": "latent_manifold.png", "digit_grid": "digit_grid.png",
                "style_transfer": "style_transfer.png"}


class PlotsUnavailableError(RuntimeError):
    """matplotlib is not installed."""


def available() -> bool:
    """True if matplotlib could be imported."""
    return plt is not None


def _require_matplotlib():
    if plt is None:
        raise PlotsUnavailableError(f"figures need matplotlib, which is not installed "
                                    f"(install it with: {INSTALL_HINT})")


# --------------------------------------------------------------------------
# Image grids
# --------------------------------------------------------------------------

def image_grid(images, rows: int, cols: int, pad: int = 1) -> np.ndarray:
    """Tile images into one picture:  (n, side * side) -> (rows*(side+pad)+pad, ...).

    The first ``cols`` images fill the top row, left to right; the
    padding is 0.5 grey, so black and white borders of digits stay visible.
    """
    images = np.asarray(images, dtype=np.float64)
    side = _side(images.shape[1])
    grid = np.full((rows * (side + pad) + pad, cols * (side + pad) + pad), 0.5)
    for i, image in enumerate(images[:rows * cols]):
        r, c = divmod(i, cols)
        top, left = pad + r * (side + pad), pad + c * (side + pad)
        grid[top:top + side, left:left + side] = image.reshape(side, side)
    return grid


def _side(num_pixels: int) -> int:
    side = math.isqrt(num_pixels)
    if side * side != num_pixels:
        raise ValueError(f"images of {num_pixels} pixels are not square; "
                         f"these figures are for square images such as MNIST's 28x28")
    return side


def _show_grid(ax, grid):
    ax.imshow(grid, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


def _save(fig, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fig.savefig(path, dpi=100, bbox_inches="tight")
    finally:
        plt.close(fig)  # pyplot keeps every open figure alive otherwise
    return path


# --------------------------------------------------------------------------
# The figures
# --------------------------------------------------------------------------

def _kind(model) -> str:
    return model.config.get("model", "vae")


def plot_reconstructions(model, x, path, labels=None, n: int = 10) -> Path:
    """Inputs (top row) and their reconstructions (bottom row).

    x : (N, D) test images; with ``labels`` the first image of each digit is
    shown (0 to 9), else the first n images.  A VAE shows decode(mu(x)), a
    conditional VAE decode(mu(x, y), y) (``labels`` required), a VQ-VAE the
    decoded nearest codes.
    """
    _require_matplotlib()
    x = np.asarray(x)
    if labels is not None:
        labels = np.asarray(labels)
        picks = [int(np.flatnonzero(labels == d)[0]) for d in np.unique(labels)][:n]
    else:
        picks = list(range(min(n, len(x))))
    inputs = x[picks]
    if _kind(model) == "cvae":
        if labels is None:
            raise ValueError("a conditional VAE reconstructs with the labels: pass labels")
        outputs = model.backend.to_numpy(model.reconstruct(inputs, labels[picks]))
        what = "decode(mu(x, y), y)"
    else:
        outputs = model.backend.to_numpy(model.reconstruct(inputs))
        what = "decode(nearest codes of x)" if _kind(model) == "vqvae" else "decode(mu(x))"
    grid = image_grid(np.concatenate([inputs, outputs]), rows=2, cols=len(picks))
    fig, ax = plt.subplots(figsize=(1.0 * len(picks), 2.4))
    _show_grid(ax, grid)
    side = _side(x.shape[1])
    ax.set_yticks([1 + side / 2, 2 + 1.5 * side], ["input", "output"], fontsize=9)
    ax.tick_params(axis="y", length=0)
    ax.set_title(f"test images (top) and their reconstructions {what} (bottom)", fontsize=9)
    return _save(fig, path)


def plot_samples(model, path, n: int = 64, seed: int = 0, label=None) -> Path:
    """n samples in a square-ish grid (seeded).

    VAE: decode(z), z ~ N(0, I).  Conditional VAE: decode(z, label), every
    sample the digit ``label`` (None: the labels 0, 1, ..., 9 in turn).
    VQ-VAE: codes drawn from its prior over codes (``VQVAE.sample_codes``).
    """
    _require_matplotlib()
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    kind = _kind(model)
    if label is not None and kind != "cvae":
        raise ValueError(f"--label needs a conditional VAE (--model cvae); this run's model is {kind!r}")
    rng = np.random.default_rng(seed)
    if kind == "vqvae":
        images = model.backend.to_numpy(model.decode(model.sample_codes(n, rng=rng)))
        title = f"{n} samples: codes drawn slot by slot from the fitted prior, decoded"
    else:
        z = model.backend.asarray(rng.standard_normal((n, model.latent_dim)))
        if kind == "cvae":
            labels = np.full(n, label) if label is not None else np.arange(n) % model.n_classes
            images = model.backend.to_numpy(model.decode(z, labels))
            asked = f"label {label}" if label is not None else "labels 0, 1, ... in turn"
            title = f"{n} samples: decode(z, y), z ~ N(0, I), {asked}"
        else:
            images = model.backend.to_numpy(model.decode(z))
            title = f"{n} samples: decode(z), z ~ N(0, I)"
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    fig, ax = plt.subplots(figsize=(0.6 * cols + 0.4, 0.6 * rows + 0.6))
    _show_grid(ax, image_grid(images, rows, cols))
    ax.set_title(title, fontsize=9)
    return _save(fig, path)


def plot_digit_grid(model, path, seed: int = 0) -> Path:
    """Conditional VAE: a grid of n_classes x 10; row c decodes with label c,
    column j with the prior draw z_j, the same z all down the column."""
    _require_matplotlib()
    rng = np.random.default_rng(seed)
    z = model.backend.asarray(rng.standard_normal((10, model.latent_dim)))
    rows = [model.backend.to_numpy(model.decode(z, np.full(10, c))) for c in range(model.n_classes)]
    fig, ax = plt.subplots(figsize=(6.4, 0.62 * model.n_classes + 0.6))
    _show_grid(ax, image_grid(np.concatenate(rows), model.n_classes, 10))
    side = _side(rows[0].shape[1])
    ax.set_yticks([1 + (side + 1) * c + side / 2 for c in range(model.n_classes)],
                  [str(c) for c in range(model.n_classes)], fontsize=9)
    ax.tick_params(axis="y", length=0)
    ax.set_ylabel("label asked for")
    ax.set_xlabel("one prior draw z per column")
    ax.set_title("decode(z, y): row = label y, column = z", fontsize=9)
    return _save(fig, path)


def plot_style_transfer(model, x, labels, path, n: int = 6) -> Path:
    """Conditional VAE: n test digits of different classes; each one's mu(x, y)
    decoded with every label, to the right of the digit itself."""
    _require_matplotlib()
    x, labels = np.asarray(x), np.asarray(labels)
    picks = [int(np.flatnonzero(labels == d)[0]) for d in np.unique(labels)][:n]
    mu, _ = model.encode(x[picks], labels[picks])
    rows = []
    for i, pick in enumerate(picks):
        decoded = model.backend.to_numpy(model.decode(mu[i:i + 1].repeat(model.n_classes, axis=0),
                                                      np.arange(model.n_classes)))
        rows.append(np.concatenate([x[pick:pick + 1], decoded]))
    cols = model.n_classes + 1
    fig, ax = plt.subplots(figsize=(0.62 * cols + 0.6, 0.62 * len(picks) + 0.7))
    _show_grid(ax, image_grid(np.concatenate(rows), len(picks), cols))
    ax.set_title("left: a test digit x with label y; then decode(mu(x, y), c) for c = 0, 1, ...",
                 fontsize=9)
    return _save(fig, path)


def plot_loss_curves(history: list[dict], path) -> Path:
    """Three panels per epoch: negative ELBO, reconstruction, KL; train and test.

    history: the records of metrics.jsonl (keys train_nelbo, test_nelbo,
    train_recon, test_recon, train_kl, test_kl, epoch).
    """
    _require_matplotlib()
    if not history:
        raise ValueError("no metrics to plot: the run has not completed an epoch yet")
    epochs = [r["epoch"] for r in history]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    panels = [("nelbo", "negative ELBO"), ("recon", "reconstruction  -log p(x|z)"),
              ("kl", "KL(q(z|x) || p(z))")]
    for ax, (key, title) in zip(axes, panels):
        ax.plot(epochs, [r[f"train_{key}"] for r in history], "o-", label="train")
        ax.plot(epochs, [r[f"test_{key}"] for r in history], "s--", label="test")
        if key == "nelbo" and "test_iwae_nll" in history[0]:
            ax.plot(epochs, [r["test_iwae_nll"] for r in history], "^:",
                    label=f"test IWAE K={history[0]['iwae_k']}")
        ax.set_title(f"{title}\ntest after epoch {epochs[-1]}: {history[-1][f'test_{key}']:.2f}",
                     fontsize=10)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        if len(epochs) < 20:
            ax.set_xticks(epochs)
    axes[0].set_ylabel("nats per image")
    axes[0].legend()
    fig.suptitle("train: mean over the epoch's steps;  test: after the epoch", fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def plot_latent_scatter(model, x, labels, path, batch_size: int = 1000) -> Path:
    """mu(x) of every image of x as a point, coloured by its label (2-D latents only)."""
    _require_matplotlib()
    _require_2d(model)
    mu = np.concatenate([model.backend.to_numpy(model.encode(x[i:i + batch_size])[0])
                         for i in range(0, len(x), batch_size)])
    labels = np.asarray(labels)
    fig, ax = plt.subplots(figsize=(6.4, 5.6))
    points = ax.scatter(mu[:, 0], mu[:, 1], c=labels, cmap="tab10", s=2, alpha=0.7,
                        vmin=-0.5, vmax=9.5)
    colorbar = fig.colorbar(points, ax=ax, ticks=range(10))
    colorbar.set_label("digit")
    ax.set_xlabel("z1")
    ax.set_ylabel("z2")
    ax.set_title(f"posterior means mu(x) of {len(x)} test images", fontsize=10)
    ax.set_aspect("equal", adjustable="datalim")
    return _save(fig, path)


def plot_latent_manifold(model, path, n: int = 20) -> Path:
    """decode(z) on an n x n grid of z (2-D latents only).

    The grid is evenly spaced in probability, not in z: z_i = Phi^-1(p_i)
    for p_i from 0.05 to 0.95, Phi the standard normal CDF, so it covers the
    prior's mass and not its empty tails.  z1 grows to the right, z2 upwards.
    """
    _require_matplotlib()
    _require_2d(model)
    z_values = np.array([NormalDist().inv_cdf(p) for p in np.linspace(0.05, 0.95, n)])
    z1, z2 = np.meshgrid(z_values, z_values[::-1])  # top row: the largest z2
    z = np.stack([z1.ravel(), z2.ravel()], axis=1)
    images = model.backend.to_numpy(model.decode(model.backend.asarray(z)))
    fig, ax = plt.subplots(figsize=(8.5, 8.5))  # about one screen pixel per image pixel
    _show_grid(ax, image_grid(images, n, n, pad=0))
    ax.set_xlabel(f"z1 from {z_values[0]:.2f} to {z_values[-1]:.2f}")
    ax.set_ylabel(f"z2 from {z_values[0]:.2f} (bottom) to {z_values[-1]:.2f} (top)")
    ax.set_title("decode(z) over the latent space (5% to 95% quantiles of N(0, 1))", fontsize=10)
    return _save(fig, path)


def _require_2d(model):
    if model.latent_dim != 2:
        raise ValueError(f"this figure needs a 2-D latent space; the model has {model.latent_dim}")


def plot_all(model, history, x_test, y_test, run_dir) -> list[Path]:
    """Every figure that applies to this model, written into ``run_dir``."""
    _require_matplotlib()
    run_dir = Path(run_dir)
    paths = [plot_reconstructions(model, x_test, run_dir / FIGURE_NAMES["reconstructions"], y_test),
             plot_samples(model, run_dir / FIGURE_NAMES["samples"])]
    if _kind(model) == "cvae":
        paths.append(plot_digit_grid(model, run_dir / FIGURE_NAMES["digit_grid"]))
        paths.append(plot_style_transfer(model, x_test, y_test, run_dir / FIGURE_NAMES["style_transfer"]))
    if history:
        paths.append(plot_loss_curves(history, run_dir / FIGURE_NAMES["loss_curves"]))
    if model.latent_dim == 2 and _kind(model) not in ("cvae", "vqvae"):  # z ~ N(0, I), no label
        paths.append(plot_latent_scatter(model, x_test, y_test, run_dir / FIGURE_NAMES["latent_scatter"]))
        paths.append(plot_latent_manifold(model, run_dir / FIGURE_NAMES["latent_manifold"]))
    return paths


__all__ = ["available", "PlotsUnavailableError", "INSTALL_HINT", "FIGURE_NAMES", "image_grid",
           "plot_reconstructions", "plot_samples", "plot_loss_curves", "plot_latent_scatter",
           "plot_latent_manifold", "plot_digit_grid", "plot_style_transfer", "plot_all"]
