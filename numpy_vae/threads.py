"""How many threads BLAS gets for training: chosen from free cores and matrix sizes.

OpenBLAS starts one thread per core and splits every matrix product among
them; each product waits for its slowest thread.  On a machine where another
program keeps one core busy, the thread that shares that core runs at half
speed or less, and every product waits for it: measured on 2 cores, one
competing busy process made a NumPy-backend epoch 2.9x slower with the
default 2 BLAS threads and 1.5x slower with 1 (issue 16; README, "Side by
side with PyTorch, and on a busy machine").  So training picks the count
itself:

    busy    = cores busy with other programs: measured over a short window
              from /proc/stat (Linux), else the 1-minute load average
    free    = cores - busy
    useful  = what the step's largest matrix product can keep busy: one
              thread per MIN_WORK_PER_THREAD multiply-adds (m * k * n); and
              only one if it has fewer than MIN_ROWS rows m (the batch): a
              thin product such as 20 x 784 x 200 is split into slivers whose
              threads wait for each other more than they work (issue 21: at
              batch 20, Numba epochs took 1.63-1.94 s per 12,000 images with
              2 threads against 1.19-1.56 s with 1, on a 2-core AVX2 machine;
              benchmarks/bench_threads.py measures batch 20, 128 and 1024)
    threads = max(1, min(cores, useful, floor(free + SPARE)))

SPARE = 0.25: a core that is busy only a quarter of the time still costs
less to share than to give up (with a thread on it, a product waits only
while the other program runs).  Beyond that, giving the core up wins: on 2
cores, an epoch with one thread is 1.3-1.45x slower than with two when the
machine is quiet (benchmarks/NOTES.md), but two threads are 2.9x slower
when the other core is taken.

Override: ``--blas-threads N`` on the command line, or the environment
variable NUMPY_VAE_BLAS_THREADS = N; "default" there leaves BLAS alone
(OpenBLAS's own choice, or OPENBLAS_NUM_THREADS); "auto" is the rule above.
Nothing happens at import: the trainer applies the choice while it trains
(threadpoolctl), and restores the previous setting afterwards.
"""

from __future__ import annotations

import math
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass

ENV_VAR = "NUMPY_VAE_BLAS_THREADS"
SPARE = 0.25
# Below about a million multiply-adds per thread, starting and joining
# threads costs more than the arithmetic they share (OpenBLAS's own cut-off
# for a second thread is 65536 * 4 = 262,144).
MIN_WORK_PER_THREAD = 1 << 20
# A product with fewer rows (the batch) than this gets one thread: batch 20
# (the burda2015 recipe) one, batch 128 and 1024 what the work allows.
MIN_ROWS = 32
PROBE_SECONDS = 0.1  # 10 clock ticks per CPU: the share is known to about 0.1 core


def choose_blas_threads(cores: int, busy: float, products) -> int:
    """The rule of the module docstring.

    cores : int         CPUs this process may run on (>= 1)
    busy : float        of those, how many other programs keep busy (>= 0)
    products            (m, k, n) of the matrix products a step makes
    """
    if cores < 1:
        raise ValueError(f"cores must be at least 1, got {cores}")
    if not busy >= 0:  # also rejects NaN
        raise ValueError(f"busy must be 0 or more cores, got {busy}")
    products = list(products)
    if not products:
        raise ValueError("products is empty: give the (m, k, n) of at least one matrix product")
    for shape in products:
        if len(shape) != 3 or min(shape) < 1:
            raise ValueError(f"a product is (m, k, n) with positive sizes, got {tuple(shape)}")
    m, k, n = max(products, key=lambda shape: shape[0] * shape[1] * shape[2])
    useful = max(1, m * k * n // MIN_WORK_PER_THREAD) if m >= MIN_ROWS else 1
    free = math.floor(cores - busy + SPARE)
    return max(1, min(cores, useful, free))


def step_products(layer_sizes, batch: int) -> list[tuple[int, int, int]]:
    """(m, k, n) of the forward products of an MLP: layer_sizes like (784, 400, 20, 400, 784)."""
    return [(batch, a, b) for a, b in zip(layer_sizes[:-1], layer_sizes[1:])]


def model_products(params: dict, batch: int) -> list[tuple[int, int, int]]:
    """(m, k, n) of the forward products a model's weights make on a batch.

    A 2-D weight (in, out) multiplies (batch, in) activations.  A convolution
    kernel (out, in, kh, kw) multiplies one row per output pixel, which the
    weight alone does not tell: it counts as a product big enough for every
    core (a convolution layer of the MNIST models makes millions of
    multiply-adds per batch).
    """
    products = []
    for w in params.values():
        if w.ndim == 2:
            products.append((batch, int(w.shape[0]), int(w.shape[1])))
        elif w.ndim > 2:  # rows: the batch times the output pixels, at least 7 x 7
            products.append((batch * 49, MIN_WORK_PER_THREAD, 1 << 10))
    return products or [(batch, 1, 1)]


def available_cores() -> list[int]:
    """The CPUs this process may run on (its affinity mask where the OS has one)."""
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return list(range(os.cpu_count() or 1))


def _cpu_times(cpus) -> tuple[float, float] | None:
    """(idle, total) jiffies summed over ``cpus`` from /proc/stat; None where unreadable."""
    try:
        with open("/proc/stat") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    wanted = {f"cpu{c}" for c in cpus}
    idle = total = 0
    for line in lines:
        fields = line.split()
        if fields and fields[0] in wanted:
            values = [int(v) for v in fields[1:]]
            idle += values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
            total += sum(values[:8])  # user .. steal; guest time is already in user
    return (idle, total) if total else None


def busy_cores(cpus=None, seconds: float = PROBE_SECONDS) -> tuple[float, str]:
    """How many of ``cpus`` other programs keep busy, and how that was measured.

    On Linux: the share of time the CPUs were not idle over ``seconds``,
    while this process sleeps (so none of it is ours).  Elsewhere: the
    1-minute load average, less nothing (call it before training starts).
    """
    cpus = available_cores() if cpus is None else list(cpus)
    before = _cpu_times(cpus)
    if before is not None:
        time.sleep(seconds)
        after = _cpu_times(cpus)
        if after is not None and after[1] > before[1]:
            idle = (after[0] - before[0]) / (after[1] - before[1])
            return max(0.0, (1 - idle) * len(cpus)), f"/proc/stat over {seconds:g} s"
    try:
        return min(float(len(cpus)), os.getloadavg()[0]), "1-minute load average"
    except OSError:
        return 0.0, "no load information"


@dataclass
class ThreadChoice:
    """What the trainer applies: threads=None leaves BLAS alone."""

    threads: int | None
    reason: str


def parse_setting(text: str | None) -> str | int:
    """"auto", "default" or a positive int, from --blas-threads or the environment."""
    if text is None or text.strip() == "":
        return "auto"
    text = text.strip().lower()
    if text in ("auto", "default"):
        return text
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise ValueError(f"BLAS threads must be a positive number, 'auto' or 'default', got {text!r}")
    return n


def resolve(setting=None, *, products, probe=None) -> ThreadChoice:
    """Turn a setting (None: $NUMPY_VAE_BLAS_THREADS, else "auto") into a ThreadChoice.

    probe(cpus) -> (busy cores, how measured); default ``busy_cores``."""
    source = "--blas-threads"
    if setting is None:
        setting, source = os.environ.get(ENV_VAR), ENV_VAR
    value = parse_setting(setting) if not isinstance(setting, int) else setting
    if isinstance(value, int):
        if value < 1:
            raise ValueError(f"BLAS threads must be a positive number, got {value}")
        return ThreadChoice(value, f"{value} BLAS threads ({source})")
    if value == "default":
        return ThreadChoice(None, f"BLAS threads left to the library ({source}=default)")
    cores = available_cores()
    busy, how = (probe or busy_cores)(cores)
    n = choose_blas_threads(len(cores), busy, products)
    return ThreadChoice(n, f"{n} BLAS thread{'s' * (n > 1)} of {len(cores)} cores "
                           f"({busy:.1f} busy with other programs, {how}; override: "
                           f"--blas-threads N or {ENV_VAR})")


@contextmanager
def blas_threads(choice: ThreadChoice):
    """Run the block with BLAS (and Numba's threads) limited to choice.threads."""
    if choice.threads is None:
        yield
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - an install requirement
        yield
        return
    numba_before = _numba_threads(choice.threads)
    try:
        with threadpool_limits(limits=choice.threads, user_api="blas"):
            yield
    finally:
        if numba_before is not None:
            _numba_threads(numba_before)


def _numba_threads(n: int) -> int | None:
    """Set Numba's parallel threads to n if numba is already imported; the old count."""
    import sys
    numba = sys.modules.get("numba")
    if numba is None:
        return None
    try:
        before = numba.get_num_threads()
        numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
        return before
    except Exception:  # pragma: no cover - a threading layer that cannot start
        return None


__all__ = ["choose_blas_threads", "step_products", "model_products", "busy_cores", "available_cores", "resolve",
           "parse_setting", "blas_threads", "ThreadChoice", "ENV_VAR"]
