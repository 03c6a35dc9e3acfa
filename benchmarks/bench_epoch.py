"""Seconds per training epoch and peak memory of numpy-vae's own training loop.

    python benchmarks/bench_epoch.py                    # default model, NumPy backend, 3 epochs
    python benchmarks/bench_epoch.py --backend numba --epochs 5
    python benchmarks/bench_epoch.py --quick            # 6,000 images: a smoke run

The model is the default recipe (784-400-20, Bernoulli, ReLU, Adam 1e-3,
batch 128, float32) and the loop is ``Trainer.train_epoch`` from
numpy_vae/train.py, the one ``numpy-vae train`` runs: shuffling, batches,
the forward and backward pass, Adam, the on-device loss sums.  Not timed:
the test evaluation after each epoch (its time is printed separately).

Columns:
    s/epoch     median over the timed epochs; one untimed warm-up epoch
                first (memory pools, Numba compilation)
    min, max    the fastest and slowest timed epoch: a wide spread means
                other programs were using the cores
    state MB    parameters + Adam's two moment arrays (3 x 2.5 MB)
    traced MB   tracemalloc's peak during one extra epoch: the NumPy buffers
                a step allocates (batch, activations, gradients,
                temporaries); the state and the dataset, allocated
                before tracing starts, are not in it
    max RSS MB  the process's peak resident memory (getrusage ru_maxrss):
                everything, including Python, NumPy and the 188 MB dataset

MNIST comes from the cache (downloaded if needed); without it the timing
runs on random data of MNIST's shape, with a notice.  The load average at
the start and at the end is printed: on a shared machine, timings taken
under load are not comparable with timings taken idle.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
import tracemalloc

import numpy as np

from numpy_vae import VAE
from numpy_vae.backend import BackendUnavailableError, resolve_backend_name
from numpy_vae.evaluate import negative_elbo
from numpy_vae.train import Trainer, TrainOptions


def load_images(n: int | None):
    """(x_train, x_test) float32 in [0, 1] and where they came from."""
    try:
        from numpy_vae.dataset import load_dataset
        data = load_dataset(quiet=True)
        x_train, x_test, source = data.x_train, data.x_test, "MNIST"
    except Exception as err:  # no MNIST and no network: timing needs only the shapes
        print(f"notice: MNIST is not available ({type(err).__name__}: {str(err).splitlines()[0]}); "
              f"timing on random data of MNIST's shape instead", file=sys.stderr)
        rng = np.random.default_rng(0)
        x_train = rng.random((60000, 784), dtype=np.float32)
        x_test = rng.random((10000, 784), dtype=np.float32)
        source = "random"
    if n is not None:
        x_train = x_train[:n]
    return x_train, x_test, source


def max_rss_mb() -> float:
    # ru_maxrss is in kilobytes on Linux, in bytes on macOS
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--backend", default=resolve_backend_name(None),
                        choices=("numpy", "numba", "cupy"), help="array backend")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs (at least 3 for a median)")
    parser.add_argument("--batch-size", type=int, default=128, help="images per step")
    parser.add_argument("--quick", action="store_true", help="6,000 training images, 1 timed epoch")
    args = parser.parse_args(argv)

    x_train, x_test, source = load_images(6000 if args.quick else None)
    epochs = 1 if args.quick else max(1, args.epochs)
    try:
        model = VAE(backend=args.backend, seed=0)
    except BackendUnavailableError as err:
        print(f"bench_epoch: error: {err}", file=sys.stderr)
        return 1
    bk = model.backend
    trainer = Trainer(model, TrainOptions(epochs=epochs + 2, batch_size=args.batch_size), quiet=True)
    x_dev, x_test_dev = bk.asarray(x_train), bk.asarray(x_test)
    load_before = os.getloadavg()

    trainer.train_epoch(x_dev)  # warm-up
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        trainer.train_epoch(x_dev)  # ends with float() of the loss sums: the work is done
        times.append(time.perf_counter() - start)

    tracemalloc.start()
    trainer.train_epoch(x_dev)
    traced_peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()

    start = time.perf_counter()
    test = negative_elbo(model, x_test_dev)
    eval_time = time.perf_counter() - start
    load_after = os.getloadavg()

    print(f"default model {model}, batch {args.batch_size}, {len(x_train)} {source} training images; "
          f"{os.cpu_count()} CPUs, load average {load_before[0]:.1f} at start, {load_after[0]:.1f} at end")
    header = (f"{'backend':<8} {'s/epoch':>8} {'min':>7} {'max':>7} {'epochs':>6} {'state MB':>9} "
              f"{'traced MB':>10} {'max RSS MB':>11}")
    print(header)
    print("-" * len(header))
    state_mb = 3 * sum(p.nbytes for p in model.params.values()) / 2**20
    print(f"{bk.name:<8} {statistics.median(times):8.3f} {min(times):7.3f} {max(times):7.3f} "
          f"{len(times):6d} {state_mb:9.1f} {traced_peak:10.1f} {max_rss_mb():11.1f}")
    print(f"test negative ELBO after {epochs + 2} epochs: {test['nelbo']:.2f} nats per image "
          f"(evaluated in {eval_time:.2f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
