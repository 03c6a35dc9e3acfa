"""Training-step time of an older commit against the working tree, in one process.

    python benchmarks/compare_commits.py 117f451                  # numpy and numba
    python benchmarks/compare_commits.py HEAD~3 --backends numba --rounds 20

On a shared machine two separate benchmark runs can differ by 30% from the
load of the moment alone, so a change of a few percent cannot be seen by
comparing them.  This script loads both versions of the package into one
process (the old one renamed ``numpy_vae_old``, extracted with
``git archive``) and runs them in turns, 30 steps each, between turns of the
GEMM floor (benchmarks/bench_backends.py), so that every version sees the
same moments.  It prints, per version and backend, the median microseconds
per step and the median ratio to the floor measured next to it.

The model is the default one (784-400-20, Bernoulli, ReLU, Adam, float32,
batch 128 unless --batch), on MNIST if it is here, random data otherwise.
"""

from __future__ import annotations

import argparse
import importlib
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_backends import GemmFloor, batch_slices, load_data  # noqa: E402

OLD_NAME = "numpy_vae_old"


def extract_old_package(rev: str, into: Path) -> None:
    """numpy_vae/ as of ``rev``, written to into/numpy_vae_old with its imports renamed."""
    done = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "numpy_vae"], capture_output=True)
    if done.returncode != 0:
        reason = done.stderr.decode(errors="replace").strip().splitlines()
        raise SystemExit(f"compare_commits: cannot read numpy_vae/ at {rev!r}: "
                         f"{reason[-1] if reason else 'git archive failed'}")
    tar = done.stdout
    with tarfile.open(fileobj=BytesIO(tar)) as archive:
        try:
            archive.extractall(into, filter="data")
        except TypeError:  # Python 3.11.0-3.11.3: no filter argument; our own archive is safe
            archive.extractall(into)
    (into / "numpy_vae").rename(into / OLD_NAME)
    for path in (into / OLD_NAME).rglob("*.py"):
        text = path.read_text()
        path.write_text(re.sub(r"\bnumpy_vae\b", OLD_NAME, text))


class Version:
    """One package version training the default model on one backend."""

    def __init__(self, package, backend: str, x: np.ndarray):
        self.model = package.VAE(backend=backend, seed=0)
        self.opt = package.Adam(self.model.params, lr=1e-3, backend=self.model.backend)
        self.x = x

    def run(self, index_batches):
        for idx in index_batches:
            _, grads, _ = self.model.loss_and_grads(self.x[idx])
            self.opt.step(grads)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("rev", help="the older commit (any git revision)")
    p.add_argument("--backends", default="numpy,numba")
    p.add_argument("--rounds", type=int, default=16, help="turns of 30 steps per version (default 16)")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--quick", action="store_true",
                   help="2048 examples, MNIST only if already on disk (a smoke test)")
    args = p.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="numpy-vae-old-") as tmp:
        extract_old_package(args.rev, Path(tmp))  # first: a bad revision fails at once
        x, source = load_data(quick=args.quick)
        sys.path.insert(0, tmp)
        old = importlib.import_module(OLD_NAME)
        new = importlib.import_module("numpy_vae")
        versions = {f"{tag} {backend}": Version(package, backend, x)
                    for backend in args.backends.split(",")
                    for tag, package in ((args.rev, old), ("working tree", new))}
        slices = batch_slices(len(x), args.batch)
        order = np.random.default_rng(1).permutation(len(x))
        batches = [order[s] for s in slices]
        floor = GemmFloor(np, slices)
        warm = min(20, len(batches))
        for v in versions.values():  # warm-up: compile, fill caches
            v.run(batches[:warm])
        steps, times = 30, {name: [] for name in ["GEMM floor", *versions]}
        for r in range(args.rounds):
            turn = [batches[(r * steps + i) % len(batches)] for i in range(steps)]
            start = time.perf_counter()
            floor.steps([slices[0]] * steps)
            times["GEMM floor"].append((time.perf_counter() - start) / steps)
            for name, v in versions.items():
                start = time.perf_counter()
                v.run(turn)
                times[name].append((time.perf_counter() - start) / steps)
    print(f"data: {source}; batch {args.batch}; {args.rounds} turns of {steps} steps each")
    print(f"{'version':<34}{'us/step':>10}{'x GEMM':>9}")
    for name, ts in times.items():
        ratio = statistics.median(a / b for a, b in zip(ts, times["GEMM floor"]))
        print(f"{name:<34}{statistics.median(ts) * 1e6:>10.0f}{ratio:>9.3f}")


if __name__ == "__main__":
    main()
