"""What Adam's subnormal flush costs, the old way against the new, side by side.

The old way (before the flush became periodic) flushed both moments at every step: two extra
passes over every moment, |a| < tiny then a masked store.  The new way
(numpy_vae/ops.py ``adam_update``) flushes every FLUSH_EVERY steps with
look-ahead thresholds.  Both run on the default model's parameter shapes
(784-400-20, NumPy backend, float32), interleaved round by round so that
the load of a shared machine falls on both alike; the ratio is the number.

    python benchmarks/bench_adam_flush.py [--steps 200] [--rounds 5]
"""

from __future__ import annotations

import argparse
import math
import os
import time

import numpy as np

from numpy_vae import ops
from numpy_vae.factory import build_model
from numpy_vae.optim import Adam


def _adam_update(param, grad, m, v, lr, beta1, beta2, eps, step, flush):
    """Adam's update with or without a flush of both moments at every step."""
    m *= beta1
    m += (1 - beta1) * grad
    v *= beta2
    v += (1 - beta2) * (grad * grad)
    if flush:
        for a in (m, v):
            a[np.abs(a) < np.finfo(a.dtype).tiny] = 0
    root_bc2 = math.sqrt(1 - beta2 ** step)
    step_size = lr * root_bc2 / (1 - beta1 ** step)
    update = np.sqrt(v)
    update += eps * root_bc2
    np.divide(m, update, out=update)
    update *= step_size
    param -= update


def old_adam_update(param, grad, m, v, lr, beta1, beta2, eps, step):
    """ops.adam_update as it was: a flush of both moments at every step."""
    _adam_update(param, grad, m, v, lr, beta1, beta2, eps, step, flush=True)


def no_flush_adam_update(param, grad, m, v, lr, beta1, beta2, eps, step):
    """The same update with no flush at all: the floor."""
    _adam_update(param, grad, m, v, lr, beta1, beta2, eps, step, flush=False)


def time_steps(update, steps, seed=0):
    model = build_model({"model": "vae", "input_dim": 784, "hidden_dims": [400], "latent_dim": 20},
                        backend="numpy")
    opt = Adam(model.params, lr=1e-3)
    rng = np.random.default_rng(seed)
    grads = {k: rng.standard_normal(p.shape).astype(p.dtype) * 1e-2 for k, p in model.params.items()}
    start = time.perf_counter()
    for _ in range(steps):
        opt.t += 1
        for name, p in opt.params.items():
            update(p, grads[name], opt.m[name], opt.v[name], opt.lr, opt.beta1, opt.beta2, opt.eps, opt.t)
    return (time.perf_counter() - start) / steps


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    ways = {"old (every step)": old_adam_update, f"new (every {ops.FLUSH_EVERY})": ops.adam_update,
            "no flush": no_flush_adam_update}
    times = {name: [] for name in ways}
    load = os.getloadavg()
    for _ in range(args.rounds):
        for name, update in ways.items():
            times[name].append(time_steps(update, args.steps))
    load = (load, os.getloadavg())
    base = min(times["no flush"])
    print(f"Adam update of the 784-400-20 model's {sum(1 for _ in ways)} ways, NumPy float32, "
          f"{args.steps} steps x {args.rounds} rounds, interleaved; best round per way")
    print(f"{'way':<20s} {'ms/step':>8s} {'x no flush':>11s}")
    for name, ts in times.items():
        print(f"{name:<20s} {1e3 * min(ts):8.3f} {min(ts) / base:11.3f}")
    old, new = min(times["old (every step)"]), min(times[f"new (every {ops.FLUSH_EVERY})"])
    print(f"flush cost: old {old / base - 1:+.1%}, new {new / base - 1:+.1%} of the update; "
          f"new/old = {new / old:.3f}")
    print(f"load average before {load[0][0]:.2f}, after {load[1][0]:.2f} "
          f"(1-minute; {os.cpu_count()} CPUs, shared)")


if __name__ == "__main__":
    main()
