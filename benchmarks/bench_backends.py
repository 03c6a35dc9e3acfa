"""Seconds per epoch of each backend, against the matrix products' floor.

    python benchmarks/bench_backends.py            # about a minute on 2 idle cores
    python benchmarks/bench_backends.py --quick    # smoke run, a few seconds
    python benchmarks/bench_backends.py --kernels  # each kernel: NumPy vs Numba
    python benchmarks/bench_backends.py --profile  # where a training step's time goes

The model is the default MNIST VAE (784-400-20, Bernoulli, ReLU, Adam,
float32).  Each backend that can run here gets one row per batch size:

    s/epoch      median over the timed epochs (after 20 warm-up steps)
    samples/s    examples per second at that median
    x GEMM       epoch time / the GEMM floor's time (of its device) in the
                 same epoch, median over the epochs
    peak MB      largest memory in use during a few training steps of a
                 freshly built model: every buffer of the model, the Adam
                 state, the batch and the temporaries, not the dataset;
                 tracemalloc's peak for the CPU backends, the growth of
                 CuPy's memory pool for the GPU (blocks rounded up by it)

The GEMM floor is the time of just the matrix products one epoch needs, on
arrays of the right shapes: per batch the five forward products, the five
weight gradients x^T dy, and the four input gradients dy W^T (the first
layer needs none).  No training loop can beat it; the gap to it is what the
elementwise kernels, the optimizer and Python cost.

Within each epoch the backends and the floor take turns every 40 steps
(numpy, numba, floor, numpy, ...), so that a burst of load from other
programs on the machine hits all of them alike; "x GEMM" is the median over
the epochs of each epoch's ratio.  The ratios in one run are comparable,
absolute times less so.

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
from numpy_vae._memory import keep_freed_memory

INPUT, HIDDEN, LATENT = 784, 400, 20


# --- data ------------------------------------------------------------------

def load_data(quick: bool):
    """MNIST training images as (n, 784) float32 in [0, 1], or random stand-ins.

    A quick run (a smoke test, the test suite's) uses MNIST only if it is
    already on disk; a full run downloads it if need be."""
    n = 2048 if quick else 60000
    try:
        from numpy_vae.data import load_mnist, to_unit_interval
        x = to_unit_interval(load_mnist(download=not quick, quiet=True)[0][:n], "float32")
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
        self.perm = None

    def shuffle(self):
        """Start an epoch: a fresh order of the examples."""
        self.perm = self.order_rng.permutation(len(self.x))
        if self.gpu:
            self.perm = self.bk.xp.asarray(self.perm)

    def steps(self, slices):
        for s in slices:
            xb = self.x[self.perm[s]]
            _, grads, _ = self.model.loss_and_grads(xb)
            self.opt.step(grads)

    def seconds(self, slices) -> float:
        """Time of the training steps on ``slices`` (CUDA events on the GPU)."""
        if self.gpu:
            return _gpu_seconds(self.bk.xp, lambda: self.steps(slices))
        start = time.perf_counter()
        self.steps(slices)
        return time.perf_counter() - start

    def peak_bytes(self, n_steps: int) -> int:
        """Peak memory of a few steps on a freshly built model (see module docstring)."""
        def fresh_steps():
            model = VAE(INPUT, (HIDDEN,), LATENT, backend=self.name, dtype="float32", seed=0)
            opt = Adam(model.params, lr=1e-3, backend=model.backend)
            for s in self.slices[:n_steps]:
                xb = self.x[s].copy()
                _, grads, _ = model.loss_and_grads(xb)
                opt.step(grads)

        if self.gpu:
            # The pool keeps freed blocks for reuse and grows only when none
            # fits: emptied of free blocks first, its growth is the peak.
            xp = self.bk.xp
            pool = xp.get_default_memory_pool()
            xp.cuda.Device().synchronize()
            pool.free_all_blocks()
            before = pool.total_bytes()
            fresh_steps()
            xp.cuda.Device().synchronize()
            return pool.total_bytes() - before
        tracemalloc.start()
        try:
            fresh_steps()
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

    def steps(self, slices):
        for s in slices:
            self._products(self.acts[s.stop - s.start])

    def seconds(self, slices) -> float:
        if self.xp is not np:
            return _gpu_seconds(self.xp, lambda: self.steps(slices))
        start = time.perf_counter()
        self.steps(slices)
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


# --- kernel by kernel (--kernels) ------------------------------------------

def _best_us(f, number):
    """The mean time of ``number`` calls, in us (one sample)."""
    start = time.perf_counter()
    for _ in range(number):
        f()
    return (time.perf_counter() - start) / number * 1e6


def _compare_us(f, g, number, rounds=15):
    """Best times of f and g, sampled alternately: the fastest sample is the
    one least disturbed by other programs, and alternating exposes both to
    the same disturbances."""
    f(), g()
    a, b = [], []
    for _ in range(rounds):
        a.append(_best_us(f, number))
        b.append(_best_us(g, number))
    return min(a), min(b)


def _alternatives():
    """Numba versions we measured and did not keep (see benchmarks/NOTES.md)."""
    import math
    import numba

    jit = numba.njit(error_model="numpy", cache=False)

    @jit
    def bernoulli_all_in_numba(logits, x, nll, grad):   # exp and log per element, scalar libm
        zero, one = logits.dtype.type(0), logits.dtype.type(1)
        for i in range(logits.shape[0]):
            total = zero
            for j in range(logits.shape[1]):
                l, e = logits[i, j], math.exp(-abs(logits[i, j]))
                total += max(l, zero) - x[i, j] * l + math.log(one + e)
                grad[i, j] = (one if l >= zero else e) / (one + e) - x[i, j]
            nll[i] = total

    @jit
    def tanh_loop(x, y):
        for i in range(x.size):
            y[i] = math.tanh(x[i])

    def adam_kernel(param, grad, m, v, beta1, c1, beta2, c2, step_size, eps_hat):
        for i in numba.prange(param.size):
            g = grad[i]
            m[i] = beta1 * m[i] + c1 * g
            v[i] = beta2 * v[i] + c2 * (g * g)
            param[i] -= step_size * (m[i] / (math.sqrt(v[i]) + eps_hat))

    adam_parallel = numba.njit(error_model="numpy", parallel=True)(adam_kernel)

    @jit
    def reparameterize_kl(mu, logvar, eps, z, std, var_minus_1, kl):
        half = mu.dtype.type(0.5)
        for i in range(mu.shape[0]):
            total = mu.dtype.type(0)
            for j in range(mu.shape[1]):
                std[i, j] = math.exp(half * logvar[i, j])
                z[i, j] = mu[i, j] + std[i, j] * eps[i, j]
                var_minus_1[i, j] = math.expm1(logvar[i, j])
                total += mu[i, j] * mu[i, j] + var_minus_1[i, j] - logvar[i, j]
            kl[i] = half * total

    return bernoulli_all_in_numba, tanh_loop, adam_parallel, reparameterize_kl


def _gpu_kernel_timer(cases):
    """name -> median GPU microseconds of that case's CuPy twin, timed with
    cupyx.profiler.benchmark; None without CuPy and a GPU."""
    try:
        bk = get_backend("cupy")
    except BackendUnavailableError:
        return None
    import cupy
    from cupyx.profiler import benchmark

    class OnGpu:
        """Stands in for an ops module: moves a case's NumPy arrays to the GPU
        on its first call, then calls the CuPy twin on those copies."""

        def __init__(self):
            self.args = None

        def __getattr__(self, kernel):
            def call(*args):
                if self.args is None:
                    self.args = [cupy.asarray(a) if isinstance(a, np.ndarray) else a for a in args]
                return getattr(bk.ops, kernel)(*self.args)
            return call

    def timer(name):
        call = next(c for n, _, c in cases if n == name)
        ops = OnGpu()
        result = benchmark(lambda: call(ops), n_repeat=200, n_warmup=10)
        return float(np.median(result.gpu_times[0])) * 1e6

    return timer


def _at_offset(a, offset_bytes):
    """A copy of ``a`` that starts ``offset_bytes`` past a 64-byte boundary."""
    memory = np.empty(a.size + 64 // a.itemsize * 2, a.dtype)
    first = (-memory.ctypes.data % 64 + offset_bytes) // a.itemsize
    out = memory[first:first + a.size].reshape(a.shape)
    out[...] = a
    return out


def kernel_table(batch=128):
    """Each hot kernel on the shapes of the default model, NumPy vs Numba
    (best of 15 alternating samples, microseconds per call)."""
    from numpy_vae import ops as ref
    from numpy_vae.backends import numba_ops as nb

    keep_freed_memory()  # the allocator setting training uses (numpy_vae/_memory.py)
    nb.compile_all("float32")
    rng = np.random.default_rng(0)
    f32 = np.float32
    h, dh = (rng.standard_normal((batch, HIDDEN), dtype=f32) for _ in range(2))
    logits = rng.standard_normal((batch, INPUT), dtype=f32) * 3 - 4     # mostly "off" pixels
    x = (rng.random((batch, INPUT), dtype=f32) < 0.2).astype(f32)
    b = rng.standard_normal(HIDDEN, dtype=f32)
    W, gW = (rng.standard_normal((INPUT, HIDDEN), dtype=f32) for _ in range(2))
    m, v = np.zeros_like(W), np.ones_like(W)
    # 64-byte aligned, as the model's flat buffers are (numpy_vae/flat.py); see the alternatives
    W, gW, m, v = (_at_offset(a, 0) for a in (W, gW, m, v))
    mu, logvar, eps, dz = (rng.standard_normal((batch, LATENT), dtype=f32) for _ in range(4))
    dkl = np.full(batch, 1 / batch, dtype=f32)
    _, _, std_ref, vm1_ref = ref.reparameterize_kl(mu, logvar, eps)
    cases = [
        ("relu", f"{batch}x{HIDDEN}", lambda k: k.relu(h)),
        ("relu_backward", f"{batch}x{HIDDEN}", lambda k: k.relu_backward(dh, h)),
        ("leaky_relu", f"{batch}x{HIDDEN}", lambda k: k.leaky_relu(h, 0.01)),
        ("leaky_relu_backward", f"{batch}x{HIDDEN}", lambda k: k.leaky_relu_backward(dh, h, 0.01)),
        ("tanh", f"{batch}x{HIDDEN}", lambda k: k.tanh(h)),
        ("tanh_backward", f"{batch}x{HIDDEN}", lambda k: k.tanh_backward(dh, h)),
        ("sigmoid", f"{batch}x{HIDDEN}", lambda k: k.sigmoid(h)),
        ("sigmoid_backward", f"{batch}x{HIDDEN}", lambda k: k.sigmoid_backward(dh, h)),
        ("softplus", f"{batch}x{HIDDEN}", lambda k: k.softplus(h)),
        ("softplus_backward", f"{batch}x{HIDDEN}", lambda k: k.softplus_backward(dh, h)),
        ("add_bias", f"{batch}x{HIDDEN}", lambda k: k.add_bias(h, b)),
        ("bias_grad", f"{batch}x{HIDDEN}", lambda k: k.bias_grad(dh)),
        ("reparameterize_kl", f"{batch}x{LATENT}", lambda k: k.reparameterize_kl(mu, logvar, eps)),
        ("reparameterize_kl_backward", f"{batch}x{LATENT}",
         lambda k: k.reparameterize_kl_backward(dz, dkl, mu, eps, std_ref, vm1_ref)),
        ("bernoulli_nll_and_grad", f"{batch}x{INPUT}", lambda k: k.bernoulli_nll_and_grad(logits, x)),
        ("adam_update", f"{INPUT}x{HIDDEN}", lambda k: k.adam_update(W, gW, m, v, 1e-3, 0.9, 0.999, 1e-8, 3)),
        ("sgd_momentum_update", f"{INPUT}x{HIDDEN}", lambda k: k.sgd_momentum_update(W, gW, m, 1e-3, 0.9)),
    ]
    gpu = _gpu_kernel_timer(cases)
    print(f"{'kernel':<28}{'shape':>9}{'numpy us':>10}{'numba us':>10}{'speed-up':>10}"
          + (f"{'cupy us':>10}" if gpu else ""))
    for name, shape, call in cases:
        t_ref, t_nb = _compare_us(lambda: call(ref), lambda: call(nb), 20 if "update" in name else 100)
        print(f"{name:<28}{shape:>9}{t_ref:>10.1f}{t_nb:>10.1f}{t_ref / t_nb:>10.2f}"
              + (f"{gpu(name):>10.1f}" if gpu else ""))

    bern_all, tanh_loop, adam_par, rkl = _alternatives()
    nll, grad, y = np.empty(batch, f32), np.empty_like(logits), np.empty_like(h)
    z, std, vm1, kl = np.empty_like(mu), np.empty_like(mu), np.empty_like(mu), np.empty(batch, f32)
    off_line = [_at_offset(a, 16) for a in (W, gW, m, v)]      # where malloc often puts them
    args = [f32(a) for a in (0.9, 0.1, 0.999, 0.001, 1e-3, 1e-8)]
    print("alternatives not taken (same shapes; numba us vs the kept version's):")
    for label, kept, alt in [
        ("bernoulli, exp+log in the numba loop", lambda: nb.bernoulli_nll_and_grad(logits, x),
         lambda: bern_all(logits, x, nll, grad)),
        ("tanh as a numba loop", lambda: nb.tanh(h), lambda: tanh_loop(h.reshape(-1), y.reshape(-1))),
        ("adam_update with parallel=True", lambda: nb.adam_update(W, gW, m, v, 1e-3, 0.9, 0.999, 1e-8, 3),
         lambda: adam_par(W.reshape(-1), gW.reshape(-1), m.reshape(-1), v.reshape(-1), *args)),
        ("adam_update on arrays 16 bytes off a cache line",
         lambda: nb.adam_update(W, gW, m, v, 1e-3, 0.9, 0.999, 1e-8, 3),
         lambda: nb.adam_update(*off_line, 1e-3, 0.9, 0.999, 1e-8, 3)),
        ("reparameterize_kl, exp+expm1 in the loop", lambda: nb.reparameterize_kl(mu, logvar, eps),
         lambda: rkl(mu, logvar, eps, z, std, vm1, kl)),
    ]:
        t_kept, t_alt = _compare_us(kept, alt, 20 if "adam" in label else 100)
        print(f"  {label:<48} kept {t_kept:8.1f}   alternative {t_alt:8.1f}")


# --- where a training step's time goes (--profile) ------------------------

def _timed(owner, attr, label, totals):
    """Replace ``owner.attr`` (a function) by one that adds its run time to totals[label]."""
    inner = getattr(owner, attr)

    def timed(*args, **kwargs):
        start = time.perf_counter()
        result = inner(*args, **kwargs)
        totals[label] += time.perf_counter() - start
        return result
    setattr(owner, attr, timed)


def profile_table(x, names, batch=128, steps=400, warm_steps=50):
    """Microseconds per training step spent in each layer call and kernel,
    measured inside real training steps (CPU backends; a timer around every
    call adds well under 1 us each)."""
    import collections
    import types

    from numpy_vae import layers, likelihoods, reparameterize

    stages = [(layers.Linear, "forward"), (layers.Linear, "backward"),
              (layers.ReLU, "forward"), (layers.ReLU, "backward"),
              (layers.Clip, "forward"), (layers.Clip, "backward"),
              (likelihoods.BernoulliLikelihood, "forward"), (likelihoods.BernoulliLikelihood, "backward"),
              (reparameterize.ReparameterizeKL, "forward"), (reparameterize.ReparameterizeKL, "backward")]
    originals = [(cls, attr, getattr(cls, attr)) for cls, attr in stages]
    columns = {}
    try:
        for name in names:
            t = Trainer(name, x, batch)
            if t.gpu:  # asynchronous: host timers around GPU calls would measure launches
                continue
            totals = collections.Counter()
            for cls, attr, fn in originals:  # fresh timers around the original methods
                setattr(cls, attr, fn)
                _timed(cls, attr, f"{cls.__name__}.{attr}", totals)
            ops = t.bk.ops
            timed_ops = types.SimpleNamespace(**{k: getattr(ops, k) for k in ops.__all__})
            for k in ops.__all__:
                _timed(timed_ops, k, f"  kernel {k}", totals)
            t.bk.ops = timed_ops  # every layer shares this Backend object
            _timed(t.opt, "step", "Adam.step (all of it)", totals)
            t.shuffle()
            slices = [t.slices[i % len(t.slices)] for i in range(warm_steps + steps)]
            t.steps(slices[:warm_steps])
            totals.clear()
            start = time.perf_counter()
            for s in slices[warm_steps:]:
                begin = time.perf_counter()
                xb = t.x[t.perm[s]]
                totals["batch gather x[perm[...]]"] += time.perf_counter() - begin
                _, grads, _ = t.model.loss_and_grads(xb)
                t.opt.step(grads)
            totals["whole step"] = time.perf_counter() - start
            columns[name] = {k: v / steps * 1e6 for k, v in totals.items()}
    finally:
        for cls, attr, fn in originals:
            setattr(cls, attr, fn)
    labels = sorted({k for c in columns.values() for k in c},
                    key=lambda k: -max(c.get(k, 0.0) for c in columns.values()))
    print(f"microseconds per step, batch {batch}, {steps} steps after {warm_steps} warm-up steps; "
          f"indented kernel rows are included in the layer rows")
    print(f"{'stage':<44}" + "".join(f"{n:>10}" for n in columns))
    for label in labels:
        print(f"{label:<44}" + "".join(f"{c.get(label, 0.0):>10.0f}" for c in columns.values()))


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


def run_batch_size(names, x, batch, epochs, warm_steps, peak_steps, chunk=40):
    """Rows of the table for one batch size, and every epoch's seconds.

    Each epoch is cut into chunks of ``chunk`` steps, and the backends and
    the floor take turns chunk by chunk, so that a burst of load from other
    programs lands on all of them; "x GEMM" is the median over the epochs of
    (epoch seconds / the floor's seconds in that same epoch)."""
    trainers = {name: Trainer(name, x, batch) for name in names}
    floors = {}
    for t in trainers.values():
        key = "gpu" if t.gpu else "cpu"
        if key not in floors:
            floors[key] = GemmFloor(t.bk.xp, t.slices)
    runners = {**trainers, **{f"GEMM floor ({key})": f for key, f in floors.items()}}
    slices = batch_slices(len(x), batch)
    for r in trainers.values():           # warm-up: compile, fill caches and pools
        r.shuffle()
    for r in runners.values():
        r.steps(slices[:warm_steps])
    times = {name: [] for name in runners}
    for _ in range(epochs):
        for t in trainers.values():
            t.shuffle()
        spent = dict.fromkeys(runners, 0.0)
        for i in range(0, len(slices), chunk):
            for name, r in runners.items():
                spent[name] += r.seconds(slices[i:i + chunk])
        for name in runners:
            times[name].append(spent[name])
    rows = []
    for key in floors:
        name = f"GEMM floor ({key})"
        sec = statistics.median(times[name])
        rows.append((name, batch, sec, len(x) / sec, 1.0, None))
    for name, t in trainers.items():
        floor = times[f"GEMM floor ({'gpu' if t.gpu else 'cpu'})"]
        sec = statistics.median(times[name])
        ratio = statistics.median(a / b for a, b in zip(times[name], floor))
        rows.append((name, batch, sec, len(x) / sec, ratio, t.peak_bytes(peak_steps) / 2**20))
    return rows, times


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="2048 examples, 1 epoch, no compile timing")
    p.add_argument("--epochs", type=int, default=None,
                   help="timed epochs per backend (default 5; 1 with --quick)")
    p.add_argument("--backends", default="numpy,numba,cupy")
    p.add_argument("--kernels", action="store_true", help="time each kernel, NumPy vs Numba, and stop")
    p.add_argument("--profile", action="store_true",
                   help="time each layer call and kernel inside training steps (CPU backends), and stop")
    p.add_argument("--chunk", type=int, default=40, help="steps per turn when interleaving (default 40)")
    args = p.parse_args(argv)
    keep_freed_memory()  # as the Trainer and the CLI do (numpy_vae/_memory.py)
    if args.kernels:
        kernel_table()
        return
    epochs = args.epochs or (1 if args.quick else 5)

    x, source = load_data(args.quick)
    names = available(args.backends.split(","))
    if args.profile:
        profile_table(x, names, steps=40 if args.quick else 400, warm_steps=5 if args.quick else 50)
        return
    blas_threads = os.environ.get("OPENBLAS_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS") or "default"
    load_start = os.getloadavg()[0]
    print(f"data: {source}, {len(x)} examples of {x.shape[1]} pixels; model {INPUT}-{HIDDEN}-{LATENT} "
          f"float32; median of {epochs} epochs; {os.cpu_count()} CPUs, BLAS threads: {blas_threads}; "
          f"load average {load_start:.1f} at the start")
    print(f"{'backend':<18}{'batch':>6}{'s/epoch':>10}{'samples/s':>11}{'x GEMM':>8}{'peak MB':>9}")
    all_times = {}
    for batch in (128, 1024):
        rows, times = run_batch_size(names, x, batch, epochs, warm_steps=2 if args.quick else 20,
                                     peak_steps=2 if args.quick else 20, chunk=args.chunk)
        all_times[batch] = times
        for name, b, sec, rate, ratio, peak in rows:
            peak_s = "" if peak is None else f"{peak:9.1f}"
            print(f"{name:<18}{b:>6}{sec:>10.3f}{rate:>11.0f}{ratio:>8.2f}{peak_s}")
    load_end = os.getloadavg()[0]
    print(f"load average {load_end:.1f} at the end")
    if max(load_start, load_end) > os.cpu_count():
        print("  (more runnable programs than CPUs: absolute times are inflated, compare the ratios)")
    for batch, times in all_times.items():
        for name, ts in times.items():
            print(f"  epochs, batch {batch}, {name}: " + " ".join(f"{t:.3f}" for t in ts))
    if "numba" in names and not args.quick:
        imp, cold, warm = numba_compile_times()
        print(f"numba float32 kernels: first run compiles in {cold:.2f} s, cached run loads in {warm:.2f} s "
              f"(plus {imp:.2f} s to import numba), each in a fresh process")


if __name__ == "__main__":
    main()
