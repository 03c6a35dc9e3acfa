"""Seconds per epoch of each backend, against the matrix products' floor.

    python benchmarks/bench_backends.py            # ~2 minutes on 2 cores
    python benchmarks/bench_backends.py --quick    # smoke run, a few seconds

The model is the default MNIST VAE (784-400-20, Bernoulli, ReLU, Adam,
float32).  Each backend that can run here gets one row per batch size:

    s/epoch      median over the timed epochs (after one warm-up epoch)
    samples/s    examples per second at that median
    x GEMM       s/epoch divided by the GEMM floor of its device
    peak MB      largest memory in use during training steps: tracemalloc's
                 peak for the CPU backends (every NumPy buffer: model,
                 Adam state, batch, temporaries; not the dataset), the CuPy
                 pool's size for the GPU (which includes the dataset)

The GEMM floor is the time of just the matrix products one epoch needs, on
arrays of the right shapes: per batch the five forward products, the five
weight gradients x^T dy, and the four input gradients dy W^T (the first
layer needs none).  No training loop can beat it; the gap to it is what the
elementwise kernels, the optimizer and Python cost.

Epochs of the backends are interleaved (numpy, numba, floor, numpy, ...) so
that a burst of load from other programs on the machine hits all of them
alike; the ratios in one run are comparable, absolute times less so.

The training loop is a minimal one written here (shuffle, slice batches,
``loss_and_grads``, ``Adam.step``), not numpy_vae's own training code.

Numba compile time is measured in fresh subprocesses with NUMBA_CACHE_DIR
set to an empty temporary folder: first run (compiles every kernel), then a
second run (loads them from that cache).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc

import numpy as np

from numpy_vae import VAE, Adam, BackendUnavailableError, get_backend

INPUT, HIDDEN, LATENT = 784, 400, 20


# --- data ------------------------------------------------------------------

def load_data(quick: bool):
    """MNIST training images as (n, 784) float32 in [0, 1], or random stand-ins."""
    n = 4096 if quick else 60000
    try:
        from numpy_vae.data import mnist_arrays
        x = mnist_arrays(quiet=True)[0][:n]
        return np.ascontiguousarray(x, dtype=np.float32), "MNIST"
    except Exception as err:  # no data here and no network: timing needs only the shapes
        print(f"notice: MNIST unavailable ({type(err).__name__}: {err}); "
              f"timing on random data of the same shape", file=sys.stderr)
        rng = np.random.default_rng(0)
        return rng.random((n, INPUT), dtype=np.float32), "random"


def batch_slices(n: int, batch: int):
    return [slice(i, min(i + batch, n)) for i in range(0, n, batch)]


# --- one backend: the minimal training loop --------------------------------

class Trainer:
    """A model, its optimizer and the data on one backend."""

    def __init__(self, name: str, x_host: np.ndarray, batch: int):
        self.name = name
        self.model = VAE(INPUT, (HIDDEN,), LATENT, backend=name, dtype="float32", seed=0)
        self.bk = self.model.backend
        self.opt = Adam(self.model.params, lr=1e-3, backend=self.bk)
        self.x = self.bk.asarray(x_host)          # on the GPU once, for cupy
        self.slices = batch_slices(len(x_host), batch)
        self.order_rng = np.random.default_rng(1)
        self.gpu = self.bk.xp is not np

    def steps(self, slices):
        perm = self.order_rng.permutation(len(self.x))
        if self.gpu:
            perm = self.bk.xp.asarray(perm)
        for s in slices:
            xb = self.x[perm[s]]
            _, grads, _ = self.model.loss_and_grads(xb)
            self.opt.step(grads)

    def epoch_seconds(self) -> float:
        if self.gpu:
            return _gpu_seconds(self.bk.xp, lambda: self.steps(self.slices))
        start = time.perf_counter()
        self.steps(self.slices)
        return time.perf_counter() - start

    def peak_bytes(self, n_steps: int) -> int:
        """Peak memory of a few steps on a freshly built model (see module docstring)."""
        if self.gpu:
            pool = self.bk.xp.get_default_memory_pool()
            self.steps(self.slices[:n_steps])
            self.bk.xp.cuda.Device().synchronize()
            return pool.total_bytes()
        tracemalloc.start()
        try:
            model = VAE(INPUT, (HIDDEN,), LATENT, backend=self.name, dtype="float32", seed=0)
            opt = Adam(model.params, lr=1e-3, backend=model.backend)
            for s in self.slices[:n_steps]:
                xb = self.x[s].copy()
                _, grads, _ = model.loss_and_grads(xb)
                opt.step(grads)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()


def _gpu_seconds(cp, work) -> float:
    """Wall time of ``work`` on the GPU, from CUDA events (not the host clock)."""
    start, end = cp.cuda.Event(), cp.cuda.Event()
    start.record()
    work()
    end.record()
    end.synchronize()
    return cp.cuda.get_elapsed_time(start, end) / 1000.0


# --- the GEMM floor --------------------------------------------------------

class GemmFloor:
    """The matrix products of one epoch, and nothing else, on one device."""

    def __init__(self, xp, slices):
        rng = np.random.default_rng(2)
        self.xp = xp
        self.sizes = sorted({s.stop - s.start for s in slices})
        self.counts = {b: sum(1 for s in slices if s.stop - s.start == b) for b in self.sizes}
        self.weights = [xp.asarray(rng.standard_normal(shape, dtype=np.float32))
                        for shape in ((INPUT, HIDDEN), (HIDDEN, LATENT), (HIDDEN, LATENT),
                                      (LATENT, HIDDEN), (HIDDEN, INPUT))]
        self.acts = {b: {w: xp.asarray(rng.standard_normal((b, w), dtype=np.float32))
                         for w in (INPUT, HIDDEN, LATENT)} for b in self.sizes}

    def _products(self, a):
        W1, Wmu, Wlv, W3, W4 = self.weights
        x, h, z = a[INPUT], a[HIDDEN], a[LATENT]
        # forward: encoder, the two heads, decoder hidden, decoder output
        x @ W1, h @ Wmu, h @ Wlv, z @ W3, h @ W4
        # weight gradients x^T dy, one per layer
        x.T @ h, h.T @ z, h.T @ z, z.T @ h, h.T @ x
        # input gradients dy W^T; the first layer (x) needs none
        z @ Wmu.T, z @ Wlv.T, h @ W3.T, x @ W4.T

    def epoch(self):
        for b in self.sizes:
            a = self.acts[b]
            for _ in range(self.counts[b]):
                self._products(a)

    def epoch_seconds(self) -> float:
        if self.xp is not np:
            return _gpu_seconds(self.xp, self.epoch)
        start = time.perf_counter()
        self.epoch()
        return time.perf_counter() - start


# --- numba compile time ----------------------------------------------------

_COMPILE_SNIPPET = """
import time
t0 = time.perf_counter()
import numba
t1 = time.perf_counter()
from numpy_vae.backends import numba_ops
numba_ops.compile_all("float32")
t2 = time.perf_counter()
print(t1 - t0, t2 - t1)
"""


def numba_compile_times():
    """(import numba s, first-run compile s, cached load s), each in a fresh process."""
    with tempfile.TemporaryDirectory(prefix="numba-cache-") as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        runs = []
        for _ in range(2):  # the first fills the empty cache, the second reads it
            out = subprocess.run([sys.executable, "-c", _COMPILE_SNIPPET], env=env,
                                 capture_output=True, text=True, check=True).stdout
            runs.append([float(v) for v in out.split()])
    return runs[0][0], runs[0][1], runs[1][1]


# --- the table -------------------------------------------------------------

def available(names):
    out = []
    for name in names:
        try:
            get_backend(name)
        except BackendUnavailableError as err:
            print(f"skipped: {err}")
            continue
        out.append(name)
    return out


def run_batch_size(names, x, batch, epochs, peak_steps):
    trainers = {name: Trainer(name, x, batch) for name in names}
    floors = {}
    for t in trainers.values():
        key = "gpu" if t.gpu else "cpu"
        if key not in floors:
            floors[key] = GemmFloor(t.bk.xp, t.slices)
    times = {name: [] for name in trainers}
    floor_times = {key: [] for key in floors}
    for t in trainers.values():           # warm-up: compile, fill caches and pools
        t.steps(t.slices[:20])
    for f in floors.values():
        f.epoch()
    for _ in range(epochs):               # interleaved, see the module docstring
        for name, t in trainers.items():
            times[name].append(t.epoch_seconds())
        for key, f in floors.items():
            floor_times[key].append(f.epoch_seconds())
    rows = []
    for key, f in floors.items():
        sec = statistics.median(floor_times[key])
        rows.append((f"GEMM floor ({key})", batch, sec, len(x) / sec, 1.0, None))
    for name, t in trainers.items():
        sec = statistics.median(times[name])
        floor = statistics.median(floor_times["gpu" if t.gpu else "cpu"])
        rows.append((name, batch, sec, len(x) / sec, sec / floor,
                     t.peak_bytes(peak_steps) / 2**20))
    return rows, times


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="4096 examples, 2 epochs, no compile timing")
    p.add_argument("--epochs", type=int, default=None, help="timed epochs per backend (default 5; 2 with --quick)")
    p.add_argument("--backends", default="numpy,numba,cupy")
    args = p.parse_args(argv)
    epochs = args.epochs or (2 if args.quick else 5)

    x, source = load_data(args.quick)
    names = available(args.backends.split(","))
    print(f"data: {source}, {len(x)} examples of {x.shape[1]} pixels; model {INPUT}-{HIDDEN}-{LATENT} float32; "
          f"median of {epochs} epochs; {os.cpu_count()} CPUs")
    print(f"{'backend':<18}{'batch':>6}{'s/epoch':>10}{'samples/s':>11}{'x GEMM':>8}{'peak MB':>9}")
    all_times = {}
    for batch in (128, 1024):
        rows, times = run_batch_size(names, x, batch, epochs, peak_steps=5 if args.quick else 20)
        all_times[batch] = times
        for name, b, sec, rate, ratio, peak in rows:
            peak_s = "" if peak is None else f"{peak:9.1f}"
            print(f"{name:<18}{b:>6}{sec:>10.3f}{rate:>11.0f}{ratio:>8.2f}{peak_s}")
    for batch, times in all_times.items():
        for name, ts in times.items():
            print(f"  epochs, batch {batch}, {name}: " + " ".join(f"{t:.3f}" for t in ts))
    if "numba" in names and not args.quick:
        imp, cold, warm = numba_compile_times()
        print(f"numba float32 kernels: first run compiles in {cold:.2f} s, cached run loads in {warm:.2f} s "
              f"(plus {imp:.2f} s to import numba), each in a fresh process")


if __name__ == "__main__":
    main()
