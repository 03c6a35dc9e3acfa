"""BLAS threads at batch 20, 128 and 1024, NumPy and Numba backends: 1 thread against 2.

For each backend and batch, the training steps of the burda2015 model
(784-200-200-50 tanh, Bernoulli, Adam) over the same images are timed with
1 and with 2 BLAS (and Numba) threads, interleaved round by round so that
the load of a shared machine falls on both alike; the table gives the best
round of each, their ratio, and what the package picks
(``threads.choose_blas_threads`` for a quiet machine with this many cores,
and ``threads.resolve`` now, with the load it measures).

    python benchmarks/bench_threads.py [--images 2560] [--rounds 3]

Absolute times on a loaded machine mean little; the ratio measured side by
side means more, and the load average printed with it says how much.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from numpy_vae import threads
from numpy_vae.factory import build_model
from numpy_vae.optim import Adam

MODEL = {"model": "vae", "input_dim": 784, "hidden_dims": [200, 200], "latent_dim": 50,
         "activation": "tanh"}


def time_training(backend, batch, n_threads, images, seed=0):
    model = build_model(dict(MODEL, seed=seed), backend=backend)
    opt = Adam(model.params, lr=1e-3, eps=1e-4, backend=model.backend)
    x = (np.random.default_rng(seed).random((images, 784)) < 0.13).astype(np.float32)
    with threads.blas_threads(threads.ThreadChoice(n_threads, "bench")):
        model.loss_and_grads(x[:batch])  # warm-up (and Numba's compilation)
        start = time.perf_counter()
        for i in range(0, images, batch):
            _, grads, _ = model.loss_and_grads(x[i:i + batch])
            opt.step(grads)
        return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2560)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--backends", default="numpy,numba")
    args = parser.parse_args()
    cores = len(threads.available_cores())
    print(f"{cores} cores; load average {os.getloadavg()[0]:.2f} at the start")
    print(f"{'backend':<7s} {'batch':>5s} {'1 thread s':>10s} {'2 threads s':>11s} {'2t/1t':>6s} "
          f"{'best':>4s} {'picks (quiet)':>13s} {'picks (now)':>11s}")
    for backend in args.backends.split(","):
        for batch in (20, 128, 1024):
            best = {1: float("inf"), 2: float("inf")}
            for _ in range(args.rounds):
                for n in (1, 2):
                    best[n] = min(best[n], time_training(backend, batch, n, args.images))
            model = build_model(MODEL, backend=backend)
            products = threads.model_products(model.params, batch)
            quiet = threads.choose_blas_threads(cores, 0.0, products)
            now = threads.resolve("auto", products=products).threads
            ratio = best[2] / best[1]
            print(f"{backend:<7s} {batch:5d} {best[1]:10.3f} {best[2]:11.3f} {ratio:6.2f} "
                  f"{1 if ratio > 1 else 2:4d} {quiet:13d} {now:11d}", flush=True)
    print(f"load average {os.getloadavg()[0]:.2f} at the end; {args.images} images per timing, "
          f"best of {args.rounds} rounds")


if __name__ == "__main__":
    main()
