"""Train with ``numpy-vae train`` and keep its final test numbers as a results file.

    python benchmarks/record_train.py NAME [numpy-vae train options ...]
    python benchmarks/record_train.py train_mlp --epochs 10
    python benchmarks/record_train.py train_cvae --model cvae --epochs 10

Runs ``python -m numpy_vae train OPTIONS --run-dir runs/results-NAME``
in a child process (the same code path as the command a reader types), then
reads the run's metrics.jsonl and writes docs/results/NAME.json
(benchmarks/_provenance.py) with the last epoch's test numbers, the median
epoch time, the BLAS threads the trainer chose, and the ``numpy-vae train``
command that reproduces the numbers.  Epoch times depend on the machine's
load (recorded beside them); the test numbers do not (same seed, same code,
same BLAS kernel).
"""

from __future__ import annotations

import json
import shlex
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _provenance  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
KEPT = ("epoch", "test_nelbo", "test_recon", "test_kl", "active_units", "test_iwae", "perplexity",
        "dead_codes", "test_perplexity", "test_dead_codes")


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0].startswith("-"):
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    name, options = argv[0], argv[1:]
    provenance = _provenance.start([str(Path(__file__)), *argv])
    run_dir = ROOT / "runs" / f"results-{name}"
    if run_dir.exists():
        import shutil
        shutil.rmtree(run_dir)
    command = [sys.executable, "-m", "numpy_vae", "train", *options, "--run-dir", str(run_dir)]
    print("running:", " ".join(shlex.quote(c) for c in command[1:]), flush=True)
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    # the progress bars' carriage-return updates are dropped; every finished line is kept
    output = "\n".join(line.split("\r")[-1] for line in (done.stdout + done.stderr).split("\n"))
    print("\n".join(line for line in output.splitlines() if line.strip()))
    if done.returncode != 0:
        print(f"record_train: numpy-vae train failed (exit {done.returncode}); nothing written", file=sys.stderr)
        return done.returncode
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line]
    last = lines[-1]
    values = {key: last[key] for key in last if key in KEPT or key.startswith("test_")}
    epoch_times = [r["epoch_time_s"] for r in lines if "epoch_time_s" in r]
    values["median_epoch_s"] = round(statistics.median(epoch_times), 2)
    values["epoch_times_s"] = epoch_times
    values["train_command"] = " ".join(["numpy-vae train", *map(shlex.quote, options)]).strip()
    threads_line = next((line.strip() for line in output.splitlines()
                         if "BLAS thread" in line), None)
    _provenance.write(_provenance.RESULTS_DIR / f"{name}.json", provenance, values,
                      description=f"numpy-vae train {' '.join(options)}: test numbers after the last epoch",
                      threads_used=threads_line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
