#!/usr/bin/env bash
# Every number in README.md and docs/, measured again, one command per results
# file (docs/results/NAME.json, written by the command with its provenance:
# benchmarks/_provenance.py).  Then the tables are regenerated from them:
#
#   benchmarks/measure_all.sh            # everything: about an hour on 2 idle cores
#   benchmarks/measure_all.sh quality    # the four 10-epoch trainings (test numbers)
#   benchmarks/measure_all.sh lessons    # each lesson's time, quick mode then full mode
#   benchmarks/measure_all.sh speed      # the timings (run these on a quiet machine)
#
# Run from the repository root after `make setup` (it uses .venv/bin/python).
# The speed numbers are only as good as the machine is quiet: each file
# records the load average at its start and end, and the docs print it.
# Not re-measured here (hours each): the burda2015 runs of docs/evaluation.md,
# whose results files say how they were made.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
what=${1:-all}

if [[ $what == all || $what == quality ]]; then
    # every backward pass against float64 finite differences (seconds)
    $PY benchmarks/record_gradchecks.py
    # Test numbers after 10 epochs: the same with any load (seeded), times are not.
    $PY benchmarks/record_train.py train_mlp --epochs 10
    $PY benchmarks/record_train.py train_conv --model conv --epochs 10
    $PY benchmarks/record_train.py train_cvae --model cvae --epochs 10
    $PY benchmarks/record_train.py train_vqvae --model vqvae --epochs 10
fi

if [[ $what == all || $what == lessons ]]; then
    $PY benchmarks/time_lessons.py --quick
    $PY benchmarks/time_lessons.py
fi

if [[ $what == all || $what == speed ]]; then
    # numpy-vae's epoch beside its minimal loop and the GEMM floor (and PyTorch, if installed),
    # every runner on one BLAS thread, all 60,000 images.
    $PY benchmarks/bench_pytorch.py --blas-threads 1 --rounds 3 --results docs/results/side_by_side.json
    # an epoch quiet and beside one busy process, the package's thread choice vs BLAS's default
    $PY benchmarks/bench_pytorch.py --loaded --examples 6400 --rounds 3 --results docs/results/busy_machine.json
    # the K = 5000 evaluation against its GEMM floor
    OPENBLAS_NUM_THREADS=1 $PY benchmarks/bench_iwae.py --results docs/results/iwae_eval.json
    # the convolutional VAE's training step
    OPENBLAS_NUM_THREADS=1 $PY benchmarks/bench_conv.py --results docs/results/conv_speed.json
fi

$PY docs/make_tables.py
