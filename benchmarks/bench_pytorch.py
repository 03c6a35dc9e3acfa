"""numpy-vae's training epoch beside PyTorch's classic VAE example, in one run.

    python benchmarks/bench_pytorch.py                 # 5 rounds, full MNIST (several minutes)
    python benchmarks/bench_pytorch.py --quick         # 2,048 images, 1 round: a smoke run
    python benchmarks/bench_pytorch.py --runners numpy-vae-numpy,loop-numpy --rounds 9
    python benchmarks/bench_pytorch.py --loaded        # quiet vs one competing busy process

Each runner trains the same model in its own process:

    pytorch          the recipe of PyTorch's examples/vae/main.py: 784-400-20,
                     ReLU, sigmoid output with binary cross-entropy summed over
                     the batch, KL summed, Adam lr 1e-3, batch 128, shuffled
                     each epoch, ``loss.item()`` every step as the example
                     does.  The images are the same float32 MNIST arrays
                     numpy-vae uses (numpy_vae.data), indexed with
                     torch.randperm: no torchvision, no DataLoader.
    numpy-vae-numpy  ``Trainer.train_epoch`` (numpy_vae/train.py): the loop
    numpy-vae-numba  the ``numpy-vae train`` command runs and times as its
                     epoch, progress bar and divergence checks included
                     (default options: batch 128, Adam 1e-3, float32).
    loop-numpy       benchmarks/bench_backends.py's minimal loop (shuffle,
    loop-numba       gather, ``loss_and_grads``, ``Adam.step``) on the same
                     model: what the training step costs without the
                     trainer's bookkeeping.
    floor            bench_backends.py's GEMM floor: only the matrix
                     products of an epoch.

The runners take turns, one epoch each, round after round (pytorch,
numpy-vae-numpy, ..., floor, pytorch, ...), so that load from other programs
lands on all of them alike; a runner waits, idle, while the others run.  Each
runs one untimed warm-up epoch first (Numba compilation, memory pools).
Threads: ``--blas-threads`` (default "auto": before every timed epoch each
runner makes the choice ``numpy-vae train`` makes when it starts,
numpy_vae/threads.py, and uses it for BLAS, or for PyTorch's intra-op
threads, so that both get the same count; "default": each library's own,
one thread per core; or a number).  A runner name may carry its own,
``numpy-vae-numpy@default``.  The thread counts used are printed.

``--loaded``: the runners numpy-vae-numpy and numpy-vae-numba, each with the
package's choice (@auto) and with the BLAS default (@default).  Every round
runs each of them once on the machine as it is ("quiet") and once while one
extra process spins on a core ("loaded"): a child that stops by itself after
``--busy-seconds`` or as soon as this script is gone, whichever comes first.
Printed per runner: median quiet and loaded epoch seconds and the slowdown,
the median over the rounds of loaded / quiet within the round.

Printed: per runner the median epoch seconds, and the median over the rounds
of its epoch time divided by PyTorch's, by the floor's, and by the minimal
loop's of the same backend, each taken within one round.  Without torch the
pytorch runner is skipped with the reason.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import _provenance  # noqa: E402  (benchmarks/_provenance.py: results files)
RUNNERS = ("pytorch", "numpy-vae-numpy", "numpy-vae-numba", "loop-numpy", "loop-numba", "floor")
LOADED_RUNNERS = ("numpy-vae-numpy@auto", "numpy-vae-numpy@default",
                  "numpy-vae-numba@auto", "numpy-vae-numba@default")
BATCH = 128
MNIST_LAYERS = (784, 400, 20, 400, 784)

# One competing busy process: spins until its deadline, or until its parent
# (this script) is gone, whichever comes first; it then exits by itself.
_BUSY_SNIPPET = """
import os, sys, time
parent, end = os.getppid(), time.monotonic() + float(sys.argv[1])
while time.monotonic() < end and os.getppid() == parent:
    for _ in range(20000):
        pass
"""


# --- the data --------------------------------------------------------------

def load_images(n: int | None) -> np.ndarray:
    """MNIST training images as (n, 784) float32 in [0, 1], as ``numpy-vae train`` loads them."""
    from numpy_vae.train import load_dataset
    x = load_dataset(quiet=True).x_train
    return np.ascontiguousarray(x[:n] if n else x)


# --- the runners (each in its own process) ---------------------------------

class PyTorchRunner:
    """PyTorch's examples/vae/main.py, its model, loss and training loop."""

    def __init__(self, x: np.ndarray, seed: int = 1):
        import torch
        from torch import nn
        from torch.nn import functional as F

        torch.manual_seed(seed)

        class VAE(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc1 = nn.Linear(784, 400)
                self.fc21 = nn.Linear(400, 20)
                self.fc22 = nn.Linear(400, 20)
                self.fc3 = nn.Linear(20, 400)
                self.fc4 = nn.Linear(400, 784)

            def encode(self, x):
                h1 = F.relu(self.fc1(x))
                return self.fc21(h1), self.fc22(h1)

            def reparameterize(self, mu, logvar):
                std = torch.exp(0.5 * logvar)
                eps = torch.randn_like(std)
                return mu + eps * std

            def decode(self, z):
                h3 = F.relu(self.fc3(z))
                return torch.sigmoid(self.fc4(h3))

            def forward(self, x):
                mu, logvar = self.encode(x.view(-1, 784))
                z = self.reparameterize(mu, logvar)
                return self.decode(z), mu, logvar

        def loss_function(recon_x, x, mu, logvar):
            bce = F.binary_cross_entropy(recon_x, x.view(-1, 784), reduction="sum")
            kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
            return bce + kld

        self.torch = torch
        self.model = VAE()
        self.loss_function = loss_function
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-3)
        self.x = torch.from_numpy(x)

    def epoch(self, limit=None) -> float:
        torch, model, opt = self.torch, self.model, self.optimizer
        model.train()
        start = time.perf_counter()
        order = torch.randperm(len(self.x))
        train_loss = 0.0
        for i, first in enumerate(range(0, len(self.x), BATCH)):
            if limit is not None and i == limit:
                break
            data = self.x[order[first:first + BATCH]]
            opt.zero_grad()
            recon_batch, mu, logvar = model(data)
            loss = self.loss_function(recon_batch, data, mu, logvar)
            loss.backward()
            train_loss += loss.item()
            opt.step()
        return time.perf_counter() - start


class NumpyVaeRunner:
    """``Trainer.train_epoch``, as ``numpy-vae train`` runs it (with its progress bar)."""

    def __init__(self, x: np.ndarray, backend: str):
        from numpy_vae import VAE
        from numpy_vae.train import Trainer, TrainOptions

        model = VAE(backend=backend, seed=0)
        self.trainer = Trainer(model, TrainOptions(epochs=10**6, batch_size=BATCH), run_dir=None)
        self.x = model.backend.asarray(x)
        self.warm_x = self.x[:20 * BATCH]

    def epoch(self, limit=None) -> float:
        start = time.perf_counter()
        self.trainer.train_epoch(self.warm_x if limit is not None else self.x)
        return time.perf_counter() - start


class LoopRunner:
    """bench_backends.py's minimal training loop."""

    def __init__(self, x: np.ndarray, backend: str):
        bench = _bench_backends()
        self.t = bench.Trainer(backend, x, BATCH)

    def epoch(self, limit=None) -> float:
        self.t.shuffle()
        slices = self.t.slices[:limit] if limit is not None else self.t.slices
        return self.t.seconds(slices)


class FloorRunner:
    """bench_backends.py's GEMM floor: the matrix products of an epoch."""

    def __init__(self, x: np.ndarray):
        bench = _bench_backends()
        self.slices = bench.batch_slices(len(x), BATCH)
        self.floor = bench.GemmFloor(np, self.slices)

    def epoch(self, limit=None) -> float:
        return self.floor.seconds(self.slices[:limit] if limit is not None else self.slices)


def _bench_backends():
    sys.path.insert(0, str(HERE))
    import bench_backends
    return bench_backends


def _blas_threads() -> str:
    """E.g. "openblas=2": the thread count of each BLAS library loaded."""
    from threadpoolctl import threadpool_info
    pools = [p for p in threadpool_info() if p["user_api"] == "blas"]
    return ",".join(f"{p['internal_api']}={p['num_threads']}" for p in pools) or "no-BLAS"


def make_runner(name: str, x: np.ndarray):
    if name == "pytorch":
        return PyTorchRunner(x)
    if name.startswith("numpy-vae-"):
        return NumpyVaeRunner(x, name.removeprefix("numpy-vae-"))
    if name.startswith("loop-"):
        return LoopRunner(x, name.removeprefix("loop-"))
    if name == "floor":
        return FloorRunner(x)
    raise ValueError(f"unknown runner {name!r}; choose from {', '.join(RUNNERS)}")


def worker(name: str, examples: int | None, setting: str) -> None:
    """Build the runner, warm it up, then run one epoch per "epoch" line on stdin.

    Replies on stdout: "ready", then per epoch a line "<seconds> <threads
    used>".  With setting "auto" the thread choice is made again before each
    epoch (untimed), as a training run starting then would make it.  Ends at
    "quit" or when stdin closes (the parent died)."""
    from numpy_vae import threads

    runner = make_runner(name, load_images(examples))
    products = threads.step_products(MNIST_LAYERS, BATCH)
    runner.epoch(limit=20)                        # compile, fill pools and caches
    print("ready", flush=True)
    for line in sys.stdin:
        if line.strip() != "epoch":
            break
        choice = threads.resolve(setting, products=products)
        if name == "pytorch":
            # the same count as numpy-vae's BLAS, for a like-for-like comparison
            if choice.threads is not None:
                runner.torch.set_num_threads(choice.threads)
            seconds, used = runner.epoch(), f"torch-intra-op={runner.torch.get_num_threads()}"
        else:
            with threads.blas_threads(choice):
                seconds, used = runner.epoch(), _blas_threads()
        print(f"{seconds:.6f} {used}", flush=True)


# --- the parent: start the runners, take turns -----------------------------

def missing_reason(name: str) -> str | None:
    """Why a runner cannot run here, or None."""
    if name == "pytorch":
        try:
            import torch  # noqa: F401
        except ImportError as err:
            return f"torch is not installed ({err})"
        return None
    backend = name.rsplit("-", 1)[-1] if name != "floor" else "numpy"
    from numpy_vae import BackendUnavailableError, get_backend
    try:
        get_backend(backend)
    except BackendUnavailableError as err:
        return str(err)
    return None


class Worker:
    """A runner in a child process, driven over its stdin and stdout."""

    def __init__(self, spec: str, examples: int | None, setting: str):
        self.name = spec
        name, _, own = spec.partition("@")
        self.log = tempfile.TemporaryFile(mode="w+")  # its stderr: progress bars, errors
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", name,
               "--blas-threads", own or setting]
        if examples:
            cmd += ["--examples", str(examples)]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.log, text=True)
        self._reply()
        self.threads = []  # what each epoch ran with

    def _reply(self) -> str:
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait()
            self.log.seek(0)
            tail = "".join(self.log.read().splitlines(keepends=True)[-15:])
            raise RuntimeError(f"runner {self.name} stopped (exit code {self.proc.returncode}):\n{tail}")
        return line.strip()

    def epoch(self) -> float:
        self.proc.stdin.write("epoch\n")
        self.proc.stdin.flush()
        seconds, used = self._reply().split(maxsplit=1)
        self.threads.append(used)
        return float(seconds)

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write("quit\n")
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()


def ratios(times: dict, a: str, b: str) -> float | None:
    """Median over the rounds of times[a] / times[b], each pair from one round."""
    if a not in times or b not in times:
        return None
    return statistics.median(x / y for x, y in zip(times[a], times[b]))


class BusyProcess:
    """One competing process that spins on a core (see _BUSY_SNIPPET)."""

    def __init__(self, seconds: float):
        self.proc = subprocess.Popen([sys.executable, "-c", _BUSY_SNIPPET, str(seconds)])
        time.sleep(0.5)  # running before anything is timed

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait()


def run(names, rounds: int, examples: int | None, setting: str, *, loaded=False,
        busy_seconds: float = 3600) -> tuple[dict, dict]:
    """Epoch seconds per runner, one per round, and the thread counts used.

    Keys are the runner names, and with ``loaded`` also "NAME loaded": each
    round runs every runner once as things are, then once beside a busy process."""
    workers = []
    try:
        for name in names:
            workers.append(Worker(name, examples, setting))
        times = {w.name: [] for w in workers}
        used = {w.name: [] for w in workers}
        if loaded:
            times.update({f"{w.name} loaded": [] for w in workers})
            used.update({f"{w.name} loaded": [] for w in workers})
        for _ in range(rounds):
            for w in workers:
                times[w.name].append(w.epoch())
                used[w.name].append(w.threads[-1])
            if loaded:
                busy = BusyProcess(busy_seconds)
                try:
                    for w in workers:
                        times[f"{w.name} loaded"].append(w.epoch())
                        used[f"{w.name} loaded"].append(w.threads[-1])
                finally:
                    busy.stop()
        return times, {k: " ".join(sorted(set(v))) for k, v in used.items()}
    finally:
        for w in workers:
            w.close()


def report_loaded(times: dict, threads: dict, names) -> None:
    print(f"{'runner':<25}{'quiet s':>9}{'loaded s':>10}{'slowdown':>10}   threads quiet / loaded")
    for name in names:
        quiet, busy = times[name], times[f"{name} loaded"]
        print(f"{name:<25}{statistics.median(quiet):>9.3f}{statistics.median(busy):>10.3f}"
              f"{ratios(times, f'{name} loaded', name):>10.2f}   {threads[name]} / {threads[f'{name} loaded']}")
    print("(slowdown: median over the rounds of loaded / quiet epoch seconds within the round)")


def report(times: dict, threads: dict, n_images: int) -> None:
    print(f"{'runner':<25}{'s/epoch':>9}{'min':>8}{'max':>8}{'x pytorch':>11}{'x floor':>9}{'x loop':>8}"
          "   threads")
    for name, ts in times.items():
        backend = name.partition("@")[0].rsplit("-", 1)[-1]
        cells = [ratios(times, name, "pytorch"), ratios(times, name, "floor"),
                 ratios(times, name, f"loop-{backend}") if name.startswith("numpy-vae-") else None]
        text = "".join(f"{c:>{w}.2f}" if c is not None else " " * (w - 1) + "-"
                       for c, w in zip(cells, (11, 9, 8)))
        print(f"{name:<25}{statistics.median(ts):>9.3f}{min(ts):>8.3f}{max(ts):>8.3f}{text}   {threads[name]}")
    print(f"({n_images} images per epoch, batch {BATCH}; ratios: median over the rounds of the "
          f"ratio within each round)")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--runners", default=",".join(RUNNERS),
                   help=f"comma-separated, from: {', '.join(RUNNERS)} (default: all)")
    p.add_argument("--rounds", type=int, default=5, help="timed epochs per runner (default 5)")
    p.add_argument("--examples", type=int, default=None,
                   help="train on the first N images per epoch (default: all 60,000)")
    p.add_argument("--quick", action="store_true", help="2,048 images, 1 round: a smoke run")
    p.add_argument("--blas-threads", default="auto", metavar="auto|default|N",
                   help="BLAS threads of the NumPy-based runners (default: auto, the package's choice)")
    p.add_argument("--loaded", action="store_true",
                   help="quiet vs beside one competing busy process, the package's thread choice "
                        "vs the BLAS default")
    p.add_argument("--busy-seconds", type=float, default=3600,
                   help="the busy process stops by itself after this long (default 3600)")
    p.add_argument("--results", default=None, metavar="FILE.json",
                   help="also write the table, with its provenance, to this results file "
                        "(benchmarks/_provenance.py; docs/results/ holds the docs' own)")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    from numpy_vae.threads import parse_setting
    try:
        parse_setting(args.blas_threads)
    except ValueError as err:
        p.error(f"argument --blas-threads: {err}")
    if args.worker:
        worker(args.worker, args.examples, args.blas_threads)
        return 0
    if args.quick:
        args.examples, args.rounds = args.examples or 2048, 1
    names = []
    specs = LOADED_RUNNERS if args.loaded else args.runners.split(",")
    for spec in specs:
        spec = spec.strip()
        name, _, own = spec.partition("@")
        if name not in RUNNERS:
            p.error(f"unknown runner {name!r}; choose from {', '.join(RUNNERS)}")
        if own:
            try:
                parse_setting(own)
            except ValueError as err:
                p.error(f"runner {spec!r}: {err}")
        reason = missing_reason(name)
        if reason:
            print(f"skipped {spec}: {reason}")
        else:
            names.append(spec)
    if not names:
        return 1
    provenance = _provenance.start([__file__, *(sys.argv[1:] if argv is None else argv)]) if args.results else None
    load = os.getloadavg()[0]
    n_images = len(load_images(args.examples))
    print(f"{os.cpu_count()} CPUs, load average {load:.1f} at the start; {args.rounds} rounds, "
          f"one epoch per runner per round, in turns" + ("; quiet, then loaded, in each round"
                                                         if args.loaded else ""))
    times, threads = run(names, args.rounds, args.examples, args.blas_threads, loaded=args.loaded,
                         busy_seconds=args.busy_seconds)
    if args.loaded:
        report_loaded(times, threads, names)
    else:
        report(times, threads, n_images)
    print(f"load average {os.getloadavg()[0]:.1f} at the end")
    for name, ts in times.items():
        print(f"  epochs, {name}: " + " ".join(f"{t:.3f}" for t in ts))
    if args.results:
        values = results_values(times, threads, names, n_images, args.rounds, args.loaded)
        _provenance.write(args.results, provenance, values,
                          description=("an epoch quiet and beside one busy process" if args.loaded else
                                       "seconds per training epoch, runners taking turns"),
                          threads_used="per runner in values (BLAS threads, PyTorch intra-op threads)")
    return 0


def results_values(times: dict, threads: dict, names, n_images: int, rounds: int, loaded: bool) -> dict:
    """The printed table as a dict, for the results file."""
    runners = {}
    for name in names:
        ts = times[name]
        row = {"median_s": round(statistics.median(ts), 3), "epochs_s": [round(t, 3) for t in ts],
               "threads": threads[name]}
        if loaded:
            busy = times[f"{name} loaded"]
            row.update(loaded_median_s=round(statistics.median(busy), 3),
                       loaded_epochs_s=[round(t, 3) for t in busy],
                       slowdown=round(ratios(times, f"{name} loaded", name), 3),
                       threads_loaded=threads[f"{name} loaded"])
        else:
            backend = name.partition("@")[0].rsplit("-", 1)[-1]
            for key, other in (("x_pytorch", "pytorch"), ("x_floor", "floor"), ("x_loop", f"loop-{backend}")):
                if other in times and name != other and (key != "x_loop" or name.startswith("numpy-vae-")):
                    row[key] = round(ratios(times, name, other), 3)
        runners[name] = row
    return {"images_per_epoch": n_images, "batch": BATCH, "rounds": rounds, "runners": runners,
            "not_run": [r for r in (LOADED_RUNNERS if loaded else RUNNERS)
                        if r not in names and r.partition("@")[0] not in names]}


if __name__ == "__main__":
    raise SystemExit(main())
