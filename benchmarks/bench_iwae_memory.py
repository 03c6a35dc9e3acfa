"""Peak memory of the IWAE evaluation of the convolutional VAE, measured.

``iwae_log_likelihood`` runs the decoder on ``max_rows`` rows at a time.
For the MLP a row is a few kB; for the convolutional decoder each row
carries ConvTranspose intermediates (im2col columns, 32 x 14 x 14 and
1 x 28 x 28 maps), so the same max_rows costs far more memory.  This
script measures the peak of Python-visible allocations (tracemalloc, which
NumPy reports to) during one chunk of each max_rows, on the default conv
model (channels 32,64, latent 20, float32, NumPy backend), and the process's
peak resident size (ru_maxrss) after all of them.

    python benchmarks/bench_iwae_memory.py [--max-rows 1024,4096,8192]
"""

from __future__ import annotations

import argparse
import resource
import time
import tracemalloc

import numpy as np

from numpy_vae.evaluate import iwae_log_likelihood
from numpy_vae.factory import build_model


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-rows", default="1024,4096,8192")
    args = parser.parse_args()
    model = build_model({"model": "conv", "input_dim": 784, "channels": [32, 64], "latent_dim": 20},
                        backend="numpy")
    x = (np.random.default_rng(0).random((1, 784)) < 0.13).astype(np.float32)
    print(f"{model}; one image, K = max_rows (one chunk)")
    print(f"{'max_rows':>8s} {'peak MB':>8s} {'MB/row':>7s} {'seconds':>7s}")
    for rows in (int(r) for r in args.max_rows.split(",")):
        tracemalloc.start()
        start = time.perf_counter()
        iwae_log_likelihood(model, x, k=rows, max_rows=rows)
        seconds = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(f"{rows:8d} {peak / 2**20:8.0f} {peak / 2**20 / rows:7.3f} {seconds:7.1f}", flush=True)
    print(f"process peak resident size: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
