"""How fast is the convolutional VAE, and how good does it get on MNIST?

Two jobs:

1. Speed (the default).  Seconds per epoch of ConvVAE training steps
   (loss_and_grads + Adam) at batch 128, float32, on MNIST-shaped random
   data: ``--steps`` steps are timed ``--chunks`` times, and the median
   chunk is extrapolated to 469 steps, one epoch of 60,000 images.  Three
   variants: the NumPy backend; the NumPy backend with the conv layers'
   col2im swapped for its Numba twin (numpy_vae/backends/numba_ops.py), which isolates
   what the twin buys; the Numba backend (its elementwise twins and the
   col2im twin).  col2im is also timed alone on the shapes the model gives it.

       python benchmarks/bench_conv.py
       python benchmarks/bench_conv.py --steps 20 --chunks 5

2. Training on real MNIST (``--mnist-minutes M``): epochs of the Trainer
   (numpy_vae/train.py, the defaults of ``numpy-vae train``: Adam 1e-3,
   batch 128, pixels in [0, 1]) until the next epoch would end after M
   minutes; prints the test negative ELBO after every epoch.  ``--model mlp``
   trains the MLP VAE the same way, for comparison at equal epochs.

       python benchmarks/bench_conv.py --mnist-minutes 20 --run-dir runs/conv

On a shared machine, run with OPENBLAS_NUM_THREADS=1: when the cores are
busy, OpenBLAS's threads wait on each other and a small matrix product can
take 50 times longer.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import types

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _provenance  # noqa: E402  (benchmarks/_provenance.py: results files)
from numpy_vae._memory import keep_freed_memory  # noqa: E402
from numpy_vae.backend import BackendUnavailableError  # noqa: E402
from numpy_vae.conv import Conv2D, ConvTranspose2D  # noqa: E402
from numpy_vae.conv_vae import ConvVAE  # noqa: E402
from numpy_vae.im2col import col2im, im2col  # noqa: E402
from numpy_vae.optim import Adam  # noqa: E402

STEPS_PER_EPOCH = 469  # ceil(60000 / 128)

def _col2im_numba():
    from numpy_vae.backends.numba_ops import col2im as col2im_numba  # needs numba
    return col2im_numba


COL2IM = {"numpy": lambda: col2im, "numba": _col2im_numba}
VARIANTS = ("numpy", "numpy+numba-col2im", "numba")


def _conv_layers(model):
    return [layer for part in (model.encoder, model.decoder) for layer in part.layers
            if isinstance(layer, (Conv2D, ConvTranspose2D))]


def training_step(variant, batch, channels, seed=0):
    """A function running one training step of a fresh ConvVAE (warmed up)."""
    backend = "numba" if variant == "numba" else "numpy"
    model = ConvVAE(channels=channels, dtype="float32", seed=seed, backend=backend)
    if variant == "numpy+numba-col2im":
        # the NumPy kernel table with only col2im swapped for the Numba twin
        # (normally backend.ops.col2im comes with the backend)
        from numpy_vae import ops
        table = {name: getattr(ops, name) for name in ops.__all__}
        model.backend.ops = types.SimpleNamespace(**dict(table, col2im=_col2im_numba()))
    opt = Adam(model.params, lr=1e-3, backend=model.backend)
    x = np.random.default_rng(seed).random((batch, model.input_dim), dtype=np.float32)

    def step():
        _, grads, _ = model.loss_and_grads(x)
        opt.step(grads)

    for _ in range(3):  # warm-up: allocator, Numba compilation
        step()
    return step


def time_training(variants, steps, chunks, batch, channels):
    """Seconds per step of each chunk of ``steps`` steps, per variant.

    The variants take turns chunk by chunk, so that a change in the load of a
    shared machine hits them all alike.
    """
    steps_of = {}
    for name in variants:
        try:
            steps_of[name] = training_step(name, batch, channels)
        except BackendUnavailableError as err:
            print(f"{name:20s} unavailable: {err}")
    times = {name: [] for name in steps_of}
    for _ in range(chunks):
        for name, step in steps_of.items():
            start = time.perf_counter()
            for _ in range(steps):
                step()
            times[name].append((time.perf_counter() - start) / steps)
    return times


def time_col2im(batch, channels, repeats=21):
    """Median milliseconds of each col2im on the three calls of one step."""
    c1, c2 = channels
    # (image col2im builds, which layer call): kernel 4, stride 2, padding 1
    cases = [((batch, c1, 14, 14), "conv 2 backward dx, conv_t 1 forward"),
             ((batch, 1, 28, 28), "conv_t 2 forward")]
    rng = np.random.default_rng(0)
    rows = []
    for shape, where in cases:
        cols = im2col(rng.random(shape, dtype=np.float32), 4, 4, 2, 1)
        row = {"shape": shape, "where": where}
        for name, get_fn in COL2IM.items():
            fn = get_fn()
            fn(cols, shape, 4, 4, 2, 1)
            ts = []
            for _ in range(repeats):
                start = time.perf_counter()
                fn(cols, shape, 4, 4, 2, 1)
                ts.append(time.perf_counter() - start)
            row[name] = 1e3 * statistics.median(ts)
        rows.append(row)
    return rows


def bench_speed(args):
    channels = tuple(args.channels)
    print(f"ConvVAE channels={channels}, batch {args.batch}, float32, NumPy {np.__version__}, "
          f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}, "
          f"{os.cpu_count()} CPUs")
    print(f"seconds per epoch = median over {args.chunks} chunks of {args.steps} steps "
          f"(seconds per step) x {STEPS_PER_EPOCH} steps, extrapolated; evaluation not included\n")
    print(f"{'variant':20s} {'ms/step':>9s} {'s/epoch':>9s}   chunks (ms/step)")
    variants = {}
    for name, times in time_training(args.variants, args.steps, args.chunks,
                                     args.batch, channels).items():
        med = statistics.median(times)
        chunk_list = ", ".join(f"{1e3 * t:.1f}" for t in times)
        print(f"{name:20s} {1e3 * med:9.1f} {med * STEPS_PER_EPOCH:9.1f}   {chunk_list}")
        variants[name] = {"ms_per_step": round(1e3 * med, 2), "s_per_epoch": round(med * STEPS_PER_EPOCH, 2),
                          "chunks_ms_per_step": [round(1e3 * t, 2) for t in times]}
    print("\ncol2im alone (median ms):")
    col2im_rows = time_col2im(args.batch, channels)
    for row in col2im_rows:
        print(f"  {str(row['shape']):18s} numpy {row['numpy']:6.2f}  numba {row['numba']:6.2f}"
              f"   ({row['where']})")
    return {"channels": list(channels), "batch": args.batch, "steps": args.steps, "chunks": args.chunks,
            "steps_per_epoch": STEPS_PER_EPOCH, "variants": variants,
            "col2im_ms": [{**row, "shape": list(row["shape"])} for row in col2im_rows]}


def train_mnist(args):
    from numpy_vae.dataset import load_dataset
    from numpy_vae.models import VAE
    from numpy_vae.train import Trainer, TrainOptions

    data = load_dataset(quiet=True)
    if args.model == "conv":
        model = ConvVAE(channels=tuple(args.channels), seed=args.seed)
    else:
        model = VAE(seed=args.seed)
    print(f"{model!r}: {model.num_params} parameters; budget {args.mnist_minutes} min", flush=True)
    trainer = Trainer(model, TrainOptions(epochs=1, seed=args.seed), run_dir=args.run_dir, quiet=True)
    budget = 60 * args.mnist_minutes
    start = time.perf_counter()
    print(f"{'epoch':>5s} {'train -ELBO':>12s} {'test -ELBO':>11s} {'test recon':>11s} "
          f"{'test KL':>8s} {'epoch s':>8s} {'eval s':>7s}", flush=True)
    while True:
        trainer.options.epochs = trainer.epoch + 1
        r = trainer.fit(data)[-1]
        print(f"{r['epoch']:5d} {r['train_nelbo']:12.2f} {r['test_nelbo']:11.2f} "
              f"{r['test_recon']:11.2f} {r['test_kl']:8.2f} {r['epoch_time_s']:8.1f} "
              f"{r['eval_time_s']:7.1f}", flush=True)
        elapsed = time.perf_counter() - start
        last = r["epoch_time_s"] + r["eval_time_s"]
        if elapsed + last > budget or r["epoch"] >= args.max_epochs:
            break
    print(f"stopped after {trainer.epoch} epochs, {elapsed / 60:.1f} min", flush=True)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=50, help="training steps per timed chunk")
    p.add_argument("--chunks", type=int, default=3, help="timed chunks (the median is reported)")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--channels", type=int, nargs=2, default=(32, 64))
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    p.add_argument("--mnist-minutes", type=float, default=None,
                   help="train on MNIST for about this many minutes instead of timing")
    p.add_argument("--max-epochs", type=int, default=100)
    p.add_argument("--model", choices=("conv", "mlp"), default="conv")
    p.add_argument("--run-dir", default=None, help="where the Trainer writes checkpoints (none if unset)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--results", default=None, metavar="FILE.json",
                   help="also write the speed table, with its provenance, to this results file "
                        "(benchmarks/_provenance.py; numpy-vae train --model conv gives the test numbers)")
    args = p.parse_args(argv)
    keep_freed_memory()  # as the Trainer and the CLI do (numpy_vae/_memory.py)
    if args.mnist_minutes is not None:
        if args.results:
            p.error("--results is for the speed table; benchmarks/record_train.py keeps training results")
        train_mnist(args)
    else:
        provenance = _provenance.start([__file__, *(sys.argv[1:] if argv is None else argv)]) if args.results else None
        values = bench_speed(args)
        if args.results:
            _provenance.write(args.results, provenance, values,
                              description="ConvVAE training steps (loss_and_grads + Adam) at batch 128, "
                                          "extrapolated to an epoch of 469 steps")
    return 0


if __name__ == "__main__":
    sys.exit(main())
