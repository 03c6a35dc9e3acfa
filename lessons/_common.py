"""Small helpers the lessons share, so each lesson can stay about its idea.

    settings = setup("Lesson 03")     --quick / NUMPY_VAE_QUICK=1, --seed / NUMPY_VAE_SEED,
                                      output folder
    data = load_digits(settings)      MNIST (a subset in quick mode)
    savefig(fig, "03_name.png")       a PNG in lessons/out/ (or $NUMPY_VAE_LESSONS_OUT)
    claim("statement", ok, "value")   check a sentence of the lesson against this run
    done()                            print the claims as a checklist; fail if one failed
    show(ax, images, ncols)           28x28 images side by side
    knn_accuracy(codes, labels)       how well codes group by digit (lessons 01, 02)
    evaluate(model, x)                ELBO, reconstruction and KL of x (nats per image)
    train(model, x, epochs=...)       the training loop of lesson 06, for lessons 07-12

Quick mode from a notebook: a kernel cannot take ``--quick``, so set the
environment variable before the lesson's setup cell runs, with
``%env NUMPY_VAE_QUICK=1`` or ``os.environ["NUMPY_VAE_QUICK"] = "1"``.

The seed: every random draw a lesson makes (initial weights, data order,
noise, random subsets) is derived from ``settings.seed`` (``--seed N`` or
``NUMPY_VAE_SEED=N``; default 0).  A lesson's claims must hold for any seed
and on any CPU, not only for the run its author saw: ``make lessons-robust``
(lessons/_check.py --robust) runs them under several seeds and BLAS kernels.

Nothing here is part of the package: the lessons explain the package; these
helpers only keep them short.  Lesson 06 writes the training loop out in
full; ``train`` below is the same loop, folded up.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import matplotlib

# Inside Jupyter (or VS Code's notebook view) figures are also shown in the
# notebook; run as a script they only go to files, with no display needed.
IN_NOTEBOOK = "ipykernel" in sys.modules
if not IN_NOTEBOOK:
    matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

QUICK_ENV = "NUMPY_VAE_QUICK"
SEED_ENV = "NUMPY_VAE_SEED"
OUT_ENV = "NUMPY_VAE_LESSONS_OUT"
LESSONS_DIR = Path(__file__).resolve().parent

_settings = None
_data_source = None  # what load_digits loaded, for the checklist


# --------------------------------------------------------------------------
# Settings: quick or full, and where figures go
# --------------------------------------------------------------------------

def setup(title: str) -> SimpleNamespace:
    """Read --quick (or NUMPY_VAE_QUICK=1) and prepare the output folder.

    Returns settings with ``quick`` (bool), ``out`` (Path) and ``pick(quick_value,
    full_value)``, which the lessons use for every size that depends on the mode.
    Unknown arguments are ignored, so the lessons also run inside Jupyter.
    """
    global _settings, _data_source
    _claims.clear()  # a notebook re-run from the top starts a fresh checklist
    _data_source = None
    parser = argparse.ArgumentParser(description=title)
    parser.add_argument("--quick", action="store_true",
                        help=f"small and fast (under a minute); also ${QUICK_ENV}=1")
    parser.add_argument("--out", default=None,
                        help=f"folder for the figures (default: ${OUT_ENV} or lessons/out)")
    parser.add_argument("--seed", default=None,
                        help=f"seed of every random draw (default: ${SEED_ENV} or 0)")
    args, _ = parser.parse_known_args()
    quick = args.quick or os.environ.get(QUICK_ENV, "") not in ("", "0")
    seed = _read_seed(args.seed if args.seed is not None else os.environ.get(SEED_ENV, "0"))
    out = Path(args.out or os.environ.get(OUT_ENV) or LESSONS_DIR / "out")
    out.mkdir(parents=True, exist_ok=True)

    def pick(quick_value, full_value):
        return quick_value if quick else full_value

    _settings = SimpleNamespace(quick=quick, out=out, pick=pick, seed=seed, start=time.time())
    mode = "quick mode (small and fast)" if quick else "full mode"
    print(f"{title} -- {mode}; seed {seed}; figures go to {out}")
    print(f"BLAS: {blas_kernel()}")
    if not quick:
        print(f"(quick mode: --quick, or ${QUICK_ENV}=1; in a notebook, run "
              f"`%env {QUICK_ENV}=1` before this cell)")
    return _settings


def _read_seed(text) -> int:
    try:
        seed = int(str(text).strip())
    except ValueError:
        seed = -1
    if seed < 0:
        raise SystemExit(f"the seed must be a whole number >= 0 (--seed or ${SEED_ENV}), got {text!r}")
    return seed


def blas_kernel() -> str:
    """Which BLAS library and kernel this process runs, as threadpoolctl
    reports it, e.g. "openblas 0.3.31, kernel Haswell, 1 thread(s)".  Matrix
    products round differently under different kernels (as on different CPUs)."""
    from threadpoolctl import threadpool_info

    import numpy  # noqa: F401  (loads the BLAS that threadpoolctl then sees)

    found = [f"{i.get('internal_api')} {i.get('version')}, kernel {i.get('architecture')}, "
             f"{i.get('num_threads')} thread(s)" for i in threadpool_info() if i.get("user_api") == "blas"]
    return "; ".join(found) or "no BLAS found by threadpoolctl"


def savefig(fig, name: str) -> Path:
    """Save ``fig`` as ``name`` in the output folder and close it."""
    out = _settings.out if _settings else LESSONS_DIR / "out"
    path = Path(out) / name
    fig.savefig(path, dpi=110, bbox_inches="tight")
    if IN_NOTEBOOK:
        from IPython.display import display
        display(fig)
    plt.close(fig)
    print(f"[figure] {path}")
    return path


# --------------------------------------------------------------------------
# Claims: every sentence a run can confirm is checked by that run
# --------------------------------------------------------------------------

_claims: list[tuple[str, bool, str]] = []


class ClaimsFailed(AssertionError):
    """Raised by ``done()`` inside a notebook when a claim did not hold."""


def claim(statement: str, holds, value="") -> bool:
    """Check one sentence of the lesson against the numbers of this run.

    statement: the sentence as the prose says it, e.g. "the ELBO improves by
        more than 10 nats from 2 to 10 latent numbers".
    holds: the check, evaluated by the caller (anything truthy).
    value: the number(s) behind it, as the reader should see them.

    The claim is printed at once and again in the checklist ``done()`` prints
    at the end; the lesson fails (exit status 1) if any claim failed.
    """
    ok = bool(holds)
    value = str(value)
    _claims.append((statement, ok, value))
    print(f"claim {'ok' if ok else 'FAILED'}: {statement}" + (f"  [{value}]" if value else ""))
    return ok


def claims() -> list[tuple[str, bool, str]]:
    """The claims checked so far: (statement, held, value) each."""
    return list(_claims)


def done():
    """Print the claims as a checklist and how long the lesson took.

    Run as a script, the process exits with status 1 if any claim failed; in
    a notebook, ``ClaimsFailed`` is raised instead (a kernel should not exit).
    """
    failed = [c for c in _claims if not c[1]]
    if _claims:
        mode = "quick" if _settings is not None and _settings.quick else "full"
        seed = f", seed {_settings.seed}" if _settings is not None else ""
        on = f", on {_data_source}" if _data_source else ""
        print(f"\nclaims checked by this run ({mode} mode{seed}{on}): "
              f"{len(_claims) - len(failed)} of {len(_claims)} hold")
        if _data_source and _data_source != "MNIST":
            print("!! these claims were checked on SYNTHETIC digits, not MNIST: "
                  "the numbers will differ from a run on MNIST")
        for statement, ok, value in _claims:
            print(f"claim {'ok' if ok else 'FAILED'}: {statement}" + (f"  [{value}]" if value else ""))
    if _settings is not None:
        print(f"\ndone in {time.time() - _settings.start:.1f} s")
    if failed:
        message = f"{len(failed)} claim(s) of this lesson did not hold in this run"
        if IN_NOTEBOOK:
            raise ClaimsFailed(message)
        print(message, file=sys.stderr)
        sys.exit(1)


# --------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------

def load_digits(settings, n_train_quick=5000, n_test_quick=1000, dtype="float32"):
    """The digits every lesson trains on.

    Returns a namespace with
        x_train (N, 784), x_test (M, 784)   intensities in [0, 1]
        y_train (N,), y_test (M,)           labels 0..9
        x_test_bin (M, 784)                 the test set binarized once, with a
                                            fixed seed: every evaluation in a
                                            lesson scores the same 0/1 images
        source                              "MNIST" or the stand-in's name

    Both modes use MNIST and fetch it once if it is not cached (a few
    seconds; see numpy_vae/data.py), so a lesson's claims are checked on the
    same data whatever the cache held.  Quick mode takes the first
    ``n_train_quick`` / ``n_test_quick`` images.  Only when no source of
    MNIST works does quick mode fall back to synthetic seven-segment digits;
    it says so in large letters, and the checklist of ``done()`` says the
    claims were checked on synthetic data.  Full mode has no fallback.
    """
    global _data_source
    from numpy_vae import data as mnist

    try:
        raw = mnist.load_mnist()  # fetches once when not cached; says where from on stderr
        if settings.quick:
            raw = (raw[0][:n_train_quick], raw[1][:n_train_quick],
                   raw[2][:n_test_quick], raw[3][:n_test_quick])
        x_train, y_train, x_test, y_test = (mnist.to_unit_interval(raw[0], dtype), raw[1],
                                            mnist.to_unit_interval(raw[2], dtype), raw[3])
        source = "MNIST"
    except mnist.DataUnavailableError as err:
        if not settings.quick:
            raise
        first_line = str(err).splitlines()[0]
        print("\n" + "!" * 78)
        print("! MNIST could not be loaded from the cache or fetched:")
        print(f"!   {first_line}")
        print("! Using SYNTHETIC seven-segment digits instead.  The figures will NOT look")
        print("! like MNIST, and the claims are checked on these stand-ins.  See")
        print("! numpy_vae/data.py (or data/README.md) to place the MNIST files by hand.")
        print("!" * 78 + "\n")
        x_train, y_train = synthetic_digits(n_train_quick, seed=1, dtype=dtype)
        x_test, y_test = synthetic_digits(n_test_quick, seed=2, dtype=dtype)
        source = "synthetic seven-segment digits (MNIST unavailable)"
    _data_source = source
    x_test_bin = mnist.binarize(x_test, "dynamic", np.random.default_rng(_seed(None) + 1234))
    print(f"data: {source}, {len(x_train)} training and {len(x_test)} test images")
    return SimpleNamespace(x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test,
                           x_test_bin=x_test_bin, source=source)


# The seven segments of a digital display on a unit box (x right, y down):
# top, upper right, lower right, bottom, lower left, upper left, middle.
_SEGMENTS = np.array([[(0, 0), (1, 0)], [(1, 0), (1, 1)], [(1, 1), (1, 2)], [(0, 2), (1, 2)],
                      [(0, 1), (0, 2)], [(0, 0), (0, 1)], [(0, 1), (1, 1)]], dtype=float)
_LIT = ["1111110", "0110000", "1101101", "1111001", "0110011",   # 0 1 2 3 4
        "1011011", "1011111", "1110000", "1111111", "1111011"]   # 5 6 7 8 9


def synthetic_digits(n: int, seed: int = 0, dtype="float32"):
    """Seven-segment digits with random size, position, slant and thickness.

    A stand-in for MNIST when it cannot be loaded: (n, 784) intensities in
    [0, 1] and labels (n,).  Only the lessons' quick mode uses it.
    """
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n)
    py, px = np.mgrid[0:28, 0:28].reshape(2, -1).astype(float) + 0.5  # pixel centres
    images = np.zeros((n, 784))
    for i, digit in enumerate(labels):
        width, height = rng.uniform(7, 11), rng.uniform(7, 10)
        slant = rng.uniform(-0.25, 0.25)
        x0, y0 = 14 - width / 2 + rng.uniform(-2, 2), 14 - height + rng.uniform(-1.5, 1.5)
        thickness = rng.uniform(1.0, 1.8)
        for seg, lit in zip(_SEGMENTS, _LIT[digit]):
            if lit != "1":
                continue
            (ax, ay), (bx, by) = seg
            ax, bx = x0 + width * ax - slant * height * ay, x0 + width * bx - slant * height * by
            ay, by = y0 + height * ay, y0 + height * by
            # distance from every pixel centre to the segment a-b
            dx, dy = bx - ax, by - ay
            t = np.clip(((px - ax) * dx + (py - ay) * dy) / (dx * dx + dy * dy), 0, 1)
            dist = np.hypot(px - ax - t * dx, py - ay - t * dy)
            images[i] = np.maximum(images[i], np.clip(thickness + 0.5 - dist, 0, 1))
    return images.astype(dtype), labels.astype(np.uint8)


def binarize_batch(x, rng):
    """A fresh 0/1 draw of a batch: pixel d is 1 with probability x_d."""
    from numpy_vae.data import binarize
    return binarize(x, "dynamic", rng)


# --------------------------------------------------------------------------
# Pictures
# --------------------------------------------------------------------------

def show(ax, images, ncols, title=None, row_labels=None):
    """Draw (n, 784) images on ``ax``, ``ncols`` per row, 0 black and 1 white.

    The tiling is ``image_grid`` of numpy_vae/plots.py (grey gaps between
    images); ``row_labels`` writes one label left of each row.
    """
    from numpy_vae.plots import image_grid

    images = np.asarray(images)
    nrows = -(-len(images) // ncols)
    ax.imshow(image_grid(images, nrows, ncols), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if row_labels is not None:
        ax.set_yticks([1 + 29 * r + 14 for r in range(nrows)], row_labels, fontsize=9)
        ax.tick_params(axis="y", length=0)
    if title:
        ax.set_title(title, fontsize=10)


DIGIT_COLORS = plt.get_cmap("tab10")


def scatter_digits(ax, codes, labels, title=None, s=3):
    """2-D codes coloured by their digit, with a legend."""
    codes = np.asarray(codes)
    for d in range(10):
        sel = labels == d
        ax.scatter(codes[sel, 0], codes[sel, 1], s=s, color=DIGIT_COLORS(d), label=str(d),
                   alpha=0.7, linewidths=0)
    if title:
        ax.set_title(title, fontsize=10)
    ax.set_aspect("equal", adjustable="datalim")


def digit_legend(ax):
    ax.legend(markerscale=4, fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5),
              frameon=False, title="digit")


# --------------------------------------------------------------------------
# Measuring a picture: do the codes group by digit?
# --------------------------------------------------------------------------

def knn_accuracy(codes, labels, k=5):
    """Leave-one-out k-nearest-neighbour accuracy of ``codes`` (n, d) for ``labels`` (n,).

    Each code's digit is guessed by a vote of its k nearest other codes
    (Euclidean distance; ties go to the smaller digit).  Chance is about 10%
    for ten balanced digits; a scatter plot whose colours form separate
    clusters scores high.  A number behind "the codes group by digit".
    """
    c = np.asarray(codes, dtype=np.float64)
    labels = np.asarray(labels).astype(int)
    if c.ndim != 2 or len(c) != len(labels) or len(c) <= k:
        raise ValueError(f"knn_accuracy needs codes (n, d) and labels (n,) with n > k = {k}, "
                         f"got {c.shape} and {labels.shape}")
    sq = (c ** 2).sum(axis=1)
    neighbours = np.empty((len(c), k), dtype=int)
    for start in range(0, len(c), 1000):  # 1000 rows of distances at a time: memory stays small
        rows = slice(start, start + 1000)
        d2 = sq[rows, None] - 2 * c[rows] @ c.T + sq[None, :]
        d2[np.arange(len(d2)), np.arange(start, start + len(d2))] = np.inf  # not its own neighbour
        neighbours[rows] = np.argpartition(d2, k, axis=1)[:, :k]
    votes = np.zeros((len(c), labels.max() + 1))
    np.add.at(votes, (np.repeat(np.arange(len(c)), k), labels[neighbours].ravel()), 1)
    return float((votes.argmax(axis=1) == labels).mean())


def nearest_mean_classifier(x_train, y_train, n_classes=10):
    """A judge independent of every model: the mean training image of each
    digit, and an image is called the digit whose mean it is nearest to
    (squared pixel distance).  Returns classify(images (n, D)) -> (n,) labels.
    Lessons 08 and 14 use it to read the digit in a generated image."""
    means = np.stack([x_train[y_train == c].mean(axis=0) for c in range(n_classes)]).astype(np.float64)
    means_sq = (means ** 2).sum(axis=1)

    def classify(images):
        images = np.asarray(images, dtype=np.float64)
        d2 = (images ** 2).sum(axis=1)[:, None] - 2 * images @ means.T + means_sq[None, :]
        return d2.argmin(axis=1)

    return classify


# --------------------------------------------------------------------------
# Evaluating and training (lessons 07-12; lesson 06 writes both out)
# --------------------------------------------------------------------------

def _seed(seed):
    """``seed`` if given, else the lesson's seed (settings.seed)."""
    if seed is not None:
        return seed
    return _settings.seed if _settings is not None else 0


def evaluate(model, x, seed=None):
    """Single-sample estimate of the ELBO of x, in nats per image.

    seed: of the noise eps (default: the lesson's seed).

    Returns {"elbo", "recon", "kl"}, each averaged over x, elbo = -(recon + kl):
    ``negative_elbo`` of numpy_vae/evaluate.py with the sign of the ELBO.
    """
    from numpy_vae.evaluate import negative_elbo

    result = negative_elbo(model, x, seed=_seed(seed))
    return {"elbo": -result["nelbo"], "recon": result["recon"], "kl": result["kl"]}


def train(model, x, *, epochs, batch_size=100, lr=1e-3, beta=1.0, binarize=True,
          seed=None, x_test=None, loss_and_grads=None, after_epoch=None, label="", quiet=False):
    """Lesson 06's loop: shuffle, batches, loss_and_grads, Adam step.

    beta: a number, or a function step -> number (KL warm-up, lesson 10).
    binarize: draw fresh 0/1 images from the intensities x at every batch.
    seed: of the data order and the binarization (default: the lesson's seed).
    x_test: if given, the test ELBO is computed after every epoch.
    loss_and_grads: replaces ``model.loss_and_grads(x, beta=beta)`` (lesson 07
        trains on the KL term alone with it).
    after_epoch: called as after_epoch(epoch) after each epoch (lesson 10 watches
        the decoder's variances with it).
    Returns the history: per-step "loss", "recon", "kl", "beta" and
    per-epoch "test_elbo" (if x_test is given).
    """
    from numpy_vae import Adam

    rng = np.random.default_rng(_seed(seed))
    opt = Adam(model.params, lr=lr, backend=model.backend)
    step_fn = loss_and_grads or (lambda xb, b: model.loss_and_grads(xb, beta=b))
    history = {"loss": [], "recon": [], "kl": [], "beta": [], "test_elbo": []}
    step = 0
    for epoch in range(1, epochs + 1):
        t0 = time.time()
        order = rng.permutation(len(x))
        for start in range(0, len(x) - batch_size + 1, batch_size):
            xb = x[order[start:start + batch_size]]
            if binarize:
                xb = binarize_batch(xb, rng)
            b = beta(step) if callable(beta) else beta
            loss, grads, info = step_fn(xb, b)
            opt.step(grads)
            for key in ("loss", "recon", "kl"):
                history[key].append(float(info[key]))
            history["beta"].append(b)
            step += 1
        line = (f"{label}epoch {epoch:2d}/{epochs}: train loss {np.mean(history['loss'][-100:]):7.2f}"
                f"  (recon {np.mean(history['recon'][-100:]):6.2f}, kl {np.mean(history['kl'][-100:]):5.2f})")
        if x_test is not None:
            history["test_elbo"].append(evaluate(model, x_test)["elbo"])
            line += f"  test ELBO {history['test_elbo'][-1]:7.2f}"
        if not quiet:
            print(line + f"  [{time.time() - t0:.1f} s]")
        if after_epoch is not None:
            after_epoch(epoch)
    return history
