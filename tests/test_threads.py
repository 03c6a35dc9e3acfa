"""The BLAS thread count training picks: a function of cores, load and matrix sizes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, strategies as st

from numpy_vae import threads
from numpy_vae.threads import (MIN_WORK_PER_THREAD, ThreadChoice, blas_threads, choose_blas_threads,
                               parse_setting, resolve, step_products)

MNIST_STEP = step_products((784, 400, 20, 400, 784), batch=128)


def test_a_quiet_machine_gets_every_core():
    assert choose_blas_threads(2, 0.0, MNIST_STEP) == 2
    assert choose_blas_threads(8, 0.1, MNIST_STEP) == 8


def test_one_busy_program_on_two_cores_leaves_one_thread():
    """The issue's case: a competing process on 2 cores."""
    assert choose_blas_threads(2, 1.0, MNIST_STEP) == 1


def test_a_core_busy_a_quarter_of_the_time_is_still_shared_but_not_more():
    assert choose_blas_threads(2, 0.25, MNIST_STEP) == 2
    assert choose_blas_threads(2, 0.3, MNIST_STEP) == 1
    assert choose_blas_threads(8, 3.0, MNIST_STEP) == 5


def test_an_overloaded_machine_still_gets_one_thread():
    assert choose_blas_threads(2, 14.0, MNIST_STEP) == 1


def test_small_products_get_fewer_threads_than_cores():
    one_image = step_products((784, 400, 20, 400, 784), batch=1)   # 313,600 multiply-adds at most
    assert choose_blas_threads(16, 0.0, one_image) == 1
    rows = threads.MIN_ROWS  # fewer rows than that: one thread whatever the work (issue 21)
    assert choose_blas_threads(16, 0.0, [(rows, 1, 3 * MIN_WORK_PER_THREAD // rows)]) == 3
    assert choose_blas_threads(16, 0.0, [(rows, 1, 3 * MIN_WORK_PER_THREAD // rows - 1)]) == 2
    assert choose_blas_threads(16, 0.0, [(rows - 1, 1, 3 * MIN_WORK_PER_THREAD)]) == 1


@given(cores=st.integers(1, 256), busy=st.floats(0, 300), batch=st.integers(1, 4096),
       width=st.integers(1, 4096))
def test_the_choice_is_between_one_and_the_free_cores(cores, busy, batch, width):
    n = choose_blas_threads(cores, busy, [(batch, width, width)])
    assert 1 <= n <= cores
    assert n == 1 or n <= cores - busy + threads.SPARE


@given(cores=st.integers(1, 64), busy=st.floats(0, 64), more=st.floats(0, 8))
def test_more_load_never_means_more_threads(cores, busy, more):
    assert choose_blas_threads(cores, busy + more, MNIST_STEP) <= choose_blas_threads(cores, busy, MNIST_STEP)


@pytest.mark.parametrize("cores, busy, products, message", [
    (0, 0.0, MNIST_STEP, "cores must be at least 1"),
    (2, -1.0, MNIST_STEP, "busy must be 0 or more"),
    (2, float("nan"), MNIST_STEP, "busy must be 0 or more"),
    (2, 0.0, [], "products is empty"),
    (2, 0.0, [(128, 0, 20)], "positive sizes"),
])
def test_bad_inputs_are_refused(cores, busy, products, message):
    with pytest.raises(ValueError, match=message):
        choose_blas_threads(cores, busy, products)


@pytest.mark.parametrize("text, value", [(None, "auto"), ("", "auto"), ("auto", "auto"),
                                         (" Default ", "default"), ("3", 3)])
def test_settings_parse(text, value):
    assert parse_setting(text) == value


@pytest.mark.parametrize("text", ["0", "-2", "two", "1.5"])
def test_bad_settings_are_refused_with_the_accepted_forms(text):
    with pytest.raises(ValueError, match="positive number, 'auto' or 'default'"):
        parse_setting(text)


def test_the_environment_variable_overrides_the_rule(monkeypatch):
    def no_probe(cpus):
        raise AssertionError("an explicit setting must not probe the machine")
    monkeypatch.setenv(threads.ENV_VAR, "1")
    assert resolve(products=MNIST_STEP, probe=no_probe).threads == 1
    monkeypatch.setenv(threads.ENV_VAR, "default")
    assert resolve(products=MNIST_STEP, probe=no_probe).threads is None
    assert resolve("3", products=MNIST_STEP, probe=no_probe).threads == 3  # the option beats the variable


def test_auto_uses_the_probe(monkeypatch):
    monkeypatch.delenv(threads.ENV_VAR, raising=False)
    monkeypatch.setattr(threads, "available_cores", lambda: [0, 1])
    busy = resolve(products=MNIST_STEP, probe=lambda cpus: (1.0, "a test"))
    quiet = resolve(products=MNIST_STEP, probe=lambda cpus: (0.0, "a test"))
    assert (busy.threads, quiet.threads) == (1, 2)
    assert "1.0 busy with other programs, a test" in busy.reason


def test_the_probe_reports_a_share_of_the_cores():
    busy, how = threads.busy_cores(seconds=0.05)
    assert 0.0 <= busy <= len(threads.available_cores())
    assert how


def _blas_pool_threads():
    from threadpoolctl import threadpool_info
    return [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]


def test_the_limit_holds_inside_the_block_and_is_undone_after():
    np.ones((4, 4)) @ np.ones((4, 4))  # BLAS loaded
    before = _blas_pool_threads()
    with blas_threads(ThreadChoice(1, "test")):
        assert set(_blas_pool_threads()) == {1}
    assert _blas_pool_threads() == before
    with blas_threads(ThreadChoice(None, "left alone")):
        assert _blas_pool_threads() == before


def test_a_models_products_are_its_weights_times_the_batch():
    from numpy_vae import VAE
    model = VAE(784, (400,), 20, seed=0)
    products = threads.model_products(model.params, batch=128)
    assert sorted(products) == sorted([(128, 784, 400), (128, 400, 20), (128, 400, 20),
                                       (128, 20, 400), (128, 400, 784)])
    assert choose_blas_threads(4, 0.0, threads.model_products(model.params, batch=1)) == 1


def test_a_convolution_kernel_counts_as_a_product_for_every_core():
    conv = {"W": np.zeros((32, 1, 4, 4), np.float32), "b": np.zeros(32, np.float32)}
    assert choose_blas_threads(8, 0.0, threads.model_products(conv, batch=1)) == 8


def test_busy_cores_reads_the_non_idle_share_of_the_cpus_over_the_window(monkeypatch):
    """T3: from two /proc/stat readings, busy = (1 - idle share) * CPUs.  A
    body that returned 0.0 passed every other test here."""
    readings = iter([(1000, 4000), (1250, 5000)])   # 250 of 1000 jiffies idle over 2 CPUs
    monkeypatch.setattr(threads, "_cpu_times", lambda cpus: next(readings))
    monkeypatch.setattr(threads.time, "sleep", lambda s: None)
    busy, how = threads.busy_cores([0, 1], seconds=0.1)
    assert busy == pytest.approx(1.5) and "/proc/stat" in how


@pytest.mark.skipif(not Path("/proc/stat").exists(), reason="reads /proc/stat (Linux)")
def test_busy_cores_sees_a_process_that_keeps_a_cpu_busy():
    """A child spinning on CPU 0: whatever else runs there, CPU 0 is not idle."""
    import os
    import subprocess
    import sys
    if 0 not in os.sched_getaffinity(0):
        pytest.skip("CPU 0 is not ours")
    child = subprocess.Popen([sys.executable, "-c", "import os\nos.sched_setaffinity(0, {0})\n"
                              "print(flush=True)\nwhile True: pass"], stdout=subprocess.PIPE)
    try:
        child.stdout.readline()
        busy, _ = threads.busy_cores([0], seconds=0.3)
    finally:
        child.kill()
        child.wait()
    assert busy > 0.7


def test_blas_threads_sets_the_count_whatever_the_environment_started_with():
    """T4: with OPENBLAS_NUM_THREADS=1 (what the README recommends) a no-op
    blas_threads passed every test that only asked for 1.  Ask for a count
    other than the current one, in a child started with that variable."""
    import os
    import subprocess
    import sys
    code = ("from threadpoolctl import threadpool_info\n"
            "from numpy_vae import threads\n"
            "import numpy\n"
            "def count():\n"
            "    return [i['num_threads'] for i in threadpool_info() if i['user_api'] == 'blas']\n"
            "before = count()\n"
            "with threads.blas_threads(threads.ThreadChoice(2, 'test')):\n"
            "    inside = count()\n"
            "print(before, inside, count())\n")
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout.split("] [")
    before, inside, after = (text.strip("[]\n ") for text in out)
    assert before == after and set(inside.split(", ")) == {"2"}, out


@pytest.mark.parametrize("batch, expected", [(20, 1), (31, 1), (32, 2), (128, 2), (1024, 2)])
def test_a_thin_batch_gets_one_thread_on_a_quiet_machine(batch, expected):
    """Issue 21: at batch 20 (the burda2015 recipe) two threads were slower than one."""
    products = threads.step_products((784, 200, 200, 50, 200, 200, 784), batch)
    assert choose_blas_threads(2, 0.0, products) == expected
