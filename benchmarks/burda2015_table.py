"""The README's comparison with Burda et al. (2015): trained runs, evaluated side by side.

    python benchmarks/burda2015_table.py RUN_ELBO RUN_IWAE [--k 5000] [--test-images N]

Each RUN is a run folder or a checkpoint file of ``numpy-vae train --recipe
burda2015``.  For each, on the binarized test set of the run (the first N
images with --test-images), it prints the epochs, the test negative ELBO
(one sampled z per image), the IWAE bound -L_K (the test NLL papers report,
K = 5000), the active units (on the whole test set) and the training wall
time from metrics.jsonl; then the difference of the two runs' -L_K with its
standard error over the images (paired: the same images, the same seed).

``--cache DIR`` keeps each run's results (per-image bounds included) in
DIR, so that runs finished at different times can be evaluated one at a
time and tabulated together at the end.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from numpy_vae.checkpoint import load_model  # noqa: E402
from numpy_vae.evaluate import active_units, iwae_log_likelihood, negative_elbo  # noqa: E402
from numpy_vae.train import load_dataset, read_metrics  # noqa: E402


def evaluate_run(path, k, test_images, backend, seed=0):
    model, checkpoint = load_model(path, backend=backend)
    options = checkpoint.options
    data = load_dataset(options.get("data_dir"), subset=1, binarize_mode=options["binarize"],
                        dtype=str(model.backend.dtype), quiet=True)
    x_all = data.x_test
    x = x_all[:test_images] if test_images else x_all
    run_dir = Path(path) if Path(path).is_dir() else Path(path).parent
    metrics = [r for r in read_metrics(run_dir if (run_dir / "metrics.jsonl").exists() else run_dir.parent)
               if r["epoch"] <= checkpoint.epoch]
    start = time.perf_counter()
    bounds = iwae_log_likelihood(model, model.backend.asarray(x), k, seed=seed)
    seconds = time.perf_counter() - start
    return {
        "path": str(path), "objective": options.get("objective", "elbo"), "k": options.get("k", 1),
        "epochs": checkpoint.epoch, "test_images": len(x),
        "test_nelbo": negative_elbo(model, model.backend.asarray(x), seed=seed)["nelbo"],
        "iwae_nll": -float(bounds.mean()), "per_image": bounds,
        "active_units": active_units(model, model.backend.asarray(x_all))["active_units"],
        "train_wall_s": sum(r.get("epoch_time_s", 0) + r.get("eval_time_s", 0) for r in metrics),
        "eval_s": seconds,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--k", type=int, default=5000)
    parser.add_argument("--test-images", type=int, default=None)
    parser.add_argument("--backend", default="numba")
    parser.add_argument("--json", default=None, help="also write the rows (without per-image values) here")
    parser.add_argument("--cache", default=None, metavar="DIR",
                        help="reuse (and store) each run's results in DIR")
    args = parser.parse_args(argv)
    print(f"load average {os.getloadavg()[0]:.2f}")
    rows = []
    for path in args.runs:
        cached = None
        if args.cache:
            key = f"{Path(path).resolve()}-k{args.k}-n{args.test_images}".replace("/", "_")
            cached = Path(args.cache) / f"{key}.npz"
        if cached is not None and cached.exists():
            saved = np.load(cached, allow_pickle=False)
            row = json.loads(str(saved["row"]))
            row["per_image"] = saved["per_image"]
        else:
            row = evaluate_run(path, args.k, args.test_images, args.backend)
            if cached is not None:
                cached.parent.mkdir(parents=True, exist_ok=True)
                np.savez(cached, per_image=row["per_image"],
                         row=json.dumps({k: v for k, v in row.items() if k != "per_image"}))
        rows.append(row)
    print(f"{'run':<44} {'epochs':>6} {'-ELBO':>8} {'-L_' + str(args.k):>9} {'active':>6} "
          f"{'train wall':>11} {'eval':>7}")
    for r in rows:
        name = f"{r['objective']} k={r['k']}"
        print(f"{name:<44} {r['epochs']:>6} {r['test_nelbo']:>8.2f} {r['iwae_nll']:>9.2f} "
              f"{r['active_units']:>6} {r['train_wall_s'] / 60:>9.1f} m {r['eval_s']:>6.0f}s")
    print(f"(-ELBO and -L_{args.k} on the first {rows[0]['test_images']} binarized test images; "
          f"active units on all of them)")
    if len(rows) == 2:
        diff = -(rows[1]["per_image"] - rows[0]["per_image"])
        se = diff.std(ddof=1) / math.sqrt(len(diff))
        print(f"-L_K of run 2 minus run 1: {diff.mean():+.2f} nats (standard error {se:.2f}, paired over "
              f"{len(diff)} images)")
    print(f"load average {os.getloadavg()[0]:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps([{k: v for k, v in r.items() if k != "per_image"}
                                               for r in rows], indent=2) + "\n")


if __name__ == "__main__":
    main()
