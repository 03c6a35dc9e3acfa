"""Soak test: train for many epochs and watch the resident memory stay flat.

    python benchmarks/soak.py                         # 30 epochs on 5000 images, NumPy backend
    python benchmarks/soak.py --epochs 100 --subset 2000 --backend numba

Each epoch runs the whole loop ``numpy-vae train`` runs, through
``Trainer.fit`` into a temporary run folder: shuffling, the steps, the
divergence checks, the test evaluation, a line of metrics.jsonl and an
atomic checkpoint write.  After every epoch the process's resident memory
(RSS, from /proc/self/statm; ru_maxrss, the peak, where /proc is missing)
is printed.

A leak shows as RSS that keeps growing epoch after epoch.  Epoch 1 is not
counted: memory pools, imports and the first checkpoint settle there.  The
last line is the growth from epoch 2 to the last epoch; the exit code is 1
when it exceeds --max-growth-mb.

MNIST comes from the cache (never downloaded here); without it the soak
runs on random data of MNIST's shape, with a notice.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time

import numpy as np


def rss_mb() -> float:
    """Resident memory now, in MiB (the peak where /proc/self/statm is missing)."""
    try:
        with open("/proc/self/statm") as f:
            resident_pages = int(f.read().split()[1])
        return resident_pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


def load_data(subset: int, n_test: int):
    """A train.Dataset of `subset` training and `n_test` test images, and its source."""
    from numpy_vae.data import load_mnist, to_unit_interval
    from numpy_vae.dataset import Dataset

    try:
        x_train, y_train, x_test, y_test = load_mnist(download=False, quiet=True)
        source = "MNIST"
        x_train, x_test = to_unit_interval(x_train[:subset]), to_unit_interval(x_test[:n_test])
        y_train, y_test = y_train[:subset], y_test[:n_test]
    except Exception as err:  # no MNIST in the cache: memory behaviour needs only the shapes
        print(f"notice: MNIST is not in the cache ({type(err).__name__}); soaking on random "
              f"data of MNIST's shape instead", file=sys.stderr)
        rng = np.random.default_rng(0)
        x_train = rng.random((subset, 784), dtype=np.float32)
        x_test = rng.random((n_test, 784), dtype=np.float32)
        y_train, y_test = np.zeros(subset, np.uint8), np.zeros(n_test, np.uint8)
        source = "random"
    return Dataset(x_train, y_train, x_test, y_test), source


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--subset", type=int, default=5000, help="training images")
    parser.add_argument("--test-images", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--backend", default="numpy", choices=("numpy", "numba", "cupy"))
    parser.add_argument("--max-growth-mb", type=float, default=20.0,
                        help="fail (exit 1) if RSS grows more than this from epoch 2 to the last")
    args = parser.parse_args(argv)
    if args.epochs < 3:
        parser.error("--epochs must be at least 3 (epoch 1 settles; growth is measured from epoch 2)")

    from numpy_vae import VAE
    from numpy_vae.train import Trainer, TrainOptions

    data, source = load_data(args.subset, args.test_images)
    model = VAE(backend=args.backend, seed=0)  # the default recipe: 784-400-20, Bernoulli
    print(f"soak: {model}, {len(data.x_train)} {source} training images, "
          f"{len(data.x_test)} test images, {args.epochs} epochs, backend {args.backend}")
    print(f"{'epoch':>5}  {'s':>6}  {'train -ELBO':>11}  {'test -ELBO':>10}  {'RSS MB':>8}  {'change':>7}")
    rss = []
    with tempfile.TemporaryDirectory(prefix="numpy-vae-soak-") as run_dir:
        options = TrainOptions(epochs=1, batch_size=args.batch_size, log_every=20)
        trainer = Trainer(model, options, run_dir, quiet=True)
        for epoch in range(1, args.epochs + 1):
            trainer.options.epochs = epoch  # fit() returns after each epoch: measure between them
            start = time.perf_counter()
            record = trainer.fit(data)[-1]
            seconds = time.perf_counter() - start
            rss.append(rss_mb())
            change = f"{rss[-1] - rss[-2]:+7.1f}" if epoch > 1 else ""
            print(f"{epoch:>5}  {seconds:6.2f}  {record['train_nelbo']:11.2f}  "
                  f"{record['test_nelbo']:10.2f}  {rss[-1]:8.1f}  {change:>7}", flush=True)

    growth = rss[-1] - rss[1]
    per_epoch = growth / (len(rss) - 2)
    verdict = "flat" if growth <= args.max_growth_mb else f"GROWING (limit {args.max_growth_mb:g} MB)"
    print(f"RSS growth from epoch 2 to epoch {args.epochs}: {growth:+.1f} MB "
          f"({per_epoch:+.2f} MB per epoch; epoch 2 {rss[1]:.1f} MB, peak {max(rss):.1f} MB): {verdict}")
    return 0 if growth <= args.max_growth_mb else 1


if __name__ == "__main__":
    sys.exit(main())
