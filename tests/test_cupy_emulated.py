"""The CuPy backend without a GPU: its tests, run against a CPU emulation of CuPy.

tests/test_backends_cupy.py skips where CuPy or a GPU is missing, which on
our machines is everywhere.  tests/fakecupy/ is a stand-in ``cupy`` package
that compiles the kernels' CUDA source strings as C++ (g++) and refuses what
CuPy refuses (see its README).  Each test here runs pytest in a child
process with that folder on PYTHONPATH, so ``import cupy`` finds the
stand-in there and nowhere else.

This checks the kernel strings and the way the backend calls CuPy; it does
not check CUDA (cuBLAS, cuRAND, NVRTC) or speed: a GPU run still has to.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FAKECUPY = ROOT / "tests" / "fakecupy"

pytestmark = pytest.mark.skipif(
    shutil.which(os.environ.get("FAKECUPY_CXX", "g++")) is None,
    reason="g++ not found: the CPU emulation of CuPy (tests/fakecupy) compiles kernels with it")


@pytest.fixture(scope="module")
def kernel_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("fakecupy-kernels")


def run_with_fake_cupy(args, cwd, kernel_cache, tmp_path, pythonpath=()):
    """``python *args`` in a child process that imports the emulation as cupy."""
    env = dict(os.environ,
               PYTHONPATH=os.pathsep.join([*map(str, pythonpath), str(FAKECUPY)]),
               FAKECUPY_CACHE_DIR=str(kernel_cache),
               HYPOTHESIS_STORAGE_DIRECTORY=str(tmp_path / "hypothesis"),
               PYTHONDONTWRITEBYTECODE="1")
    env.pop("NUMPY_VAE_BACKEND", None)
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600)


def run_pytest_with_fake_cupy(args, cwd, kernel_cache, tmp_path, pythonpath=()):
    return run_with_fake_cupy(["-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", *args],
                              cwd, kernel_cache, tmp_path, pythonpath)


def test_the_emulation_behaves_like_cupy_where_the_backend_relies_on_it(kernel_cache, tmp_path):
    run = run_pytest_with_fake_cupy([str(FAKECUPY / "check_emulation.py")], ROOT, kernel_cache, tmp_path)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]


def test_the_cupy_backend_passes_its_tests_on_the_emulation(kernel_cache, tmp_path):
    run = run_pytest_with_fake_cupy(["tests/test_backends_cupy.py"], ROOT, kernel_cache, tmp_path)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    summary = run.stdout.strip().splitlines()[-1]
    assert "passed" in summary and "skipped" not in summary, summary  # every GPU test ran


COUNT_TRANSFERS = """
import json, sys
import numpy as np
import cupy
from numpy_vae import VAE
from numpy_vae.train import Trainer, TrainOptions

counts = {}
for steps in (40, 80):
    x = (np.random.default_rng(0).random((steps * 32, 784)) < 0.3).astype(np.float32)
    model = VAE(hidden_dims=(50,), latent_dim=4, backend="cupy", seed=0)
    trainer = Trainer(model, TrainOptions(epochs=1, batch_size=32, log_every=20), quiet=True)
    x_gpu = model.backend.asarray(x)
    trainer.train_epoch(x_gpu)                    # compiles the kernels
    before = dict(cupy.transfers)
    trainer.train_epoch(x_gpu)
    counts[steps] = {k: cupy.transfers[k] - before[k] for k in before}
print(json.dumps(counts))
"""


def test_a_cupy_training_step_copies_nothing_between_host_and_gpu(kernel_cache, tmp_path):
    """The issue's rule: the data set goes to the GPU once, and a step makes no
    host-device copies; only the loss is read back, every log_every steps.
    Doubling the steps of an epoch adds exactly one read per added logging
    point (the table of the steps' losses and gradient checks)."""
    run = run_with_fake_cupy(["-c", COUNT_TRANSFERS], ROOT, kernel_cache, tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    counts = json.loads(run.stdout.strip().splitlines()[-1])
    short, long = counts["40"], counts["80"]
    assert short["to_device"] == long["to_device"] == 1, counts  # the epoch's order of examples
    assert long["to_host"] - short["to_host"] == 80 // 20 - 40 // 20, counts


WRONG_KERNELS = {
    "Adam's v from grad, not grad^2": ("one_minus_beta2 * (grad * grad)", "one_minus_beta2 * grad"),
    "the KL without its 1/2": ('"kl = (T)0.5 * a"', '"kl = a"'),
    "add_bias with its arguments swapped": ("_add_bias(b, y)", "_add_bias(y, b)"),
}


@pytest.mark.parametrize("bug", WRONG_KERNELS)
def test_the_emulated_tests_fail_on_a_wrong_kernel_string(bug, kernel_cache, tmp_path):
    """Without this, passing on the emulation could mean the kernels never ran."""
    copy = tmp_path / "src"
    shutil.copytree(ROOT / "numpy_vae", copy / "numpy_vae", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "tests", copy / "tests", ignore=shutil.ignore_patterns("__pycache__", "fakecupy"))
    shutil.copy(ROOT / "setup.cfg", copy / "setup.cfg")
    ops = copy / "numpy_vae" / "backends" / "cupy_ops.py"
    right, wrong = WRONG_KERNELS[bug]
    source = ops.read_text()
    assert source.count(right) == 1, f"cupy_ops.py changed: update WRONG_KERNELS[{bug!r}]"
    ops.write_text(source.replace(right, wrong))
    where = run_with_fake_cupy(["-c", "import cupy, numpy_vae; print(cupy.__version__, numpy_vae.__file__)"],
                               copy, kernel_cache, tmp_path, pythonpath=[copy])
    assert where.stdout.split() == ["13.99.0+fakecupy", str(copy / "numpy_vae" / "__init__.py")], where
    run = run_pytest_with_fake_cupy(["-x", "tests/test_backends_cupy.py"], copy, kernel_cache, tmp_path,
                                    pythonpath=[copy])
    assert run.returncode == 1, run.stdout[-3000:] + run.stderr[-2000:]  # 1: a test failed
