"""Does an epoch get slower as training goes on?  Epoch times and subnormal Adam moments.

    python benchmarks/bench_epoch_drift.py [--backend numba] [--epochs 5]

Trains the default model (784-400-20, ReLU, Bernoulli, Adam 1e-3, batch 128,
float32) on MNIST with the minimal loop (loss_and_grads + Adam.step) and
prints, after each epoch, its time and how many entries of Adam's m and v
are subnormal (0 < |x| < 1.2e-38).  The matrix products cost the same in
every epoch, so a growing epoch time is something else: before ops.adam_update
flushed its moments to zero, the moments of rarely active weights decayed
into the subnormal range, where x86 arithmetic is tens of times slower.
To see the difference, run this file from an older checkout
(PYTHONPATH=OLD_CHECKOUT) beside the current one.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from numpy_vae import VAE, Adam
from numpy_vae._memory import keep_freed_memory
from numpy_vae.dataset import load_dataset


def subnormals(arrays) -> int:
    count = 0
    for a in arrays:
        a = np.asarray(a)
        count += int(((a != 0) & (np.abs(a) < np.finfo(a.dtype).tiny)).sum())
    return count


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="numpy", choices=("numpy", "numba"))
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args(argv)
    keep_freed_memory()
    x = load_dataset(None, subset=None, binarize_mode="none", dtype="float32", quiet=True).x_train
    model = VAE(784, (400,), 20, backend=args.backend)
    opt = Adam(model.params, lr=1e-3, backend=model.backend)
    rng = np.random.default_rng(0)
    B = args.batch_size
    print(f"backend {args.backend}, batch {B}, {len(x)} images per epoch")
    print("epoch  seconds  subnormal m  subnormal v  (of {:,} each)".format(model.num_params))
    for epoch in range(1, args.epochs + 1):
        start = time.perf_counter()
        order = rng.permutation(len(x))
        for i in range(0, len(x) - B + 1, B):
            _, grads, _ = model.loss_and_grads(x[order[i:i + B]])
            opt.step(grads)
        seconds = time.perf_counter() - start
        print(f"{epoch:5d}  {seconds:7.2f}  {subnormals(opt.m.values()):11,d}  "
              f"{subnormals(opt.v.values()):11,d}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
