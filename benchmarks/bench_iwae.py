"""The IWAE evaluation (``evaluate --iwae-k``) against its own GEMM floor.

    python benchmarks/bench_iwae.py                 # 100 images x K = 5000, the Burda model
    python benchmarks/bench_iwae.py --quick         # smoke run, a few seconds
    python benchmarks/bench_iwae.py --images 200 --k 5000 --hidden-dims 400 --latent-dim 20

For N images and K samples, ``iwae_log_likelihood`` decodes N * K latent
vectors.  Its floor is the decoder's matrix products alone on arrays of
those shapes (float32, the same ``max_rows`` rows at a time): no evaluation
can beat it.  Each row of the table is one way to compute the bound:

    GEMM floor        only the decoder's products, z @ W1, h @ W2, ... per chunk
    reference         iwae_log_likelihood(fast=False): log_weights, x repeated
                      K times, the likelihood's training kernel
    batched           iwae_log_likelihood(fast=True): log_weights_batched,
                      float32 products, float64 row sums, no copies of x

for each backend that runs here.  The methods take turns, one chunk-sized
pass at a time (floor, reference, batched, floor, ...), so that a burst of
load from other programs hits all of them alike; the table gives the total
seconds of each, its ratio to the floor, and the time the full 10,000-image
test set would take at that rate.  The ratios in one run are comparable,
absolute times less so: print ``uptime`` beside them.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _provenance  # noqa: E402  (benchmarks/_provenance.py: results files)
from numpy_vae import VAE, available_backends  # noqa: E402
from numpy_vae.evaluate import iwae_log_likelihood  # noqa: E402
from numpy_vae.layers import Linear  # noqa: E402


def decoder_products(model, rows, max_rows):
    """Seconds of just the decoder's matrix products for ``rows`` latent vectors."""
    weights = [layer.params["W"] for layer in model.decoder.layers if isinstance(layer, Linear)]
    chunk = min(rows, max_rows)
    z = np.random.default_rng(0).standard_normal((chunk, model.latent_dim)).astype(np.float32)
    start = time.perf_counter()
    done = 0
    while done < rows:
        n = min(chunk, rows - done)
        h = z[:n]
        for W in weights:
            h = h @ W
        done += n
    return time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--k", type=int, default=5000)
    parser.add_argument("--hidden-dims", default="200,200")
    parser.add_argument("--latent-dim", type=int, default=50)
    parser.add_argument("--activation", default="tanh")
    parser.add_argument("--max-rows", type=int, default=8192)
    parser.add_argument("--rounds", type=int, default=3, help="turns each method takes")
    parser.add_argument("--quick", action="store_true", help="4 images, K = 500, one round")
    parser.add_argument("--results", default=None, metavar="FILE.json",
                        help="also write the table, with its provenance, to this results file "
                             "(benchmarks/_provenance.py)")
    args = parser.parse_args(argv)
    provenance = _provenance.start([__file__, *(sys.argv[1:] if argv is None else argv)]) if args.results else None
    if args.quick:
        args.images, args.k, args.rounds = 4, 500, 1
    hidden = tuple(int(h) for h in args.hidden_dims.split(","))
    x = (np.random.default_rng(1).random((args.images, 784)) < 0.13).astype(np.float32)
    per_round = max(1, args.images // args.rounds)

    print(f"IWAE evaluation, 784-{'-'.join(map(str, hidden))}-{args.latent_dim} {args.activation}, "
          f"Bernoulli, float32: {args.images} images x K = {args.k} "
          f"({args.images * args.k:,} decoder rows), max_rows {args.max_rows}, "
          f"load average {os.getloadavg()[0]:.2f}")
    rows = []
    for backend in [b for b in available_backends() if b != "cupy"]:
        model = VAE(784, hidden, args.latent_dim, activation=args.activation, backend=backend)
        iwae_log_likelihood(model, x[:1], k=min(args.k, 64), max_rows=args.max_rows)  # compile, warm up
        times = {"GEMM floor": 0.0, "reference": 0.0, "batched": 0.0}
        results = {"reference": [], "batched": []}
        for start in range(0, args.images, per_round):
            xb = x[start:start + per_round]
            times["GEMM floor"] += decoder_products(model, len(xb) * args.k, args.max_rows)
            for name, fast in (("reference", False), ("batched", True)):
                t = time.perf_counter()
                results[name].append(iwae_log_likelihood(model, xb, k=args.k, max_rows=args.max_rows,
                                                          seed=start, fast=fast))
                times[name] += time.perf_counter() - t
        gap = np.abs(np.concatenate(results["batched"]) - np.concatenate(results["reference"])).max()
        for name, seconds in times.items():
            rows.append((backend, name, seconds, seconds / times["GEMM floor"],
                         seconds * 10000 / args.images))
        rows.append((backend, "max |batched - reference| (nats)", gap, None, None))
    print(f"{'backend':<8} {'method':<34} {'seconds':>9} {'x floor':>8} {'10k images, same K':>19}")
    for backend, name, seconds, ratio, full in rows:
        if ratio is None:
            print(f"{backend:<8} {name:<34} {seconds:>9.2e}")
        else:
            print(f"{backend:<8} {name:<34} {seconds:>9.2f} {ratio:>8.2f} {full:>18.0f}s")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    if args.results:
        table = [{"backend": b, "method": name, "seconds": round(sec, 4), "x_floor": round(ratio, 3),
                  "test_set_s": round(full)} if ratio is not None else
                 {"backend": b, "max_abs_difference_nats": float(sec)}  # batched against reference
                 for b, name, sec, ratio, full in rows]
        _provenance.write(args.results, provenance,
                          {"model": f"784-{'-'.join(map(str, hidden))}-{args.latent_dim} {args.activation}",
                           "images": args.images, "k": args.k, "max_rows": args.max_rows,
                           "rounds": args.rounds, "rows": table},
                          description="the IWAE bound's evaluation against the decoder's GEMM floor")


if __name__ == "__main__":
    main()
