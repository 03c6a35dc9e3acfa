"""Every lesson runs in quick mode, and every claim it makes holds.

Each lesson is run as a student would run it, in a fresh process with
``NUMPY_VAE_QUICK=1`` and its figures sent to a temporary folder.  What it
printed is checked by lessons/_check.py, the same checks ``make lessons``
applies in full mode: exit status 0, the checklist of ``done()`` with at least
three claims and no ``claim FAILED``, and every ``[figure] PATH`` line naming
an existing PNG file (at least one per lesson).  Lessons are found by the
pattern ``lessons/[0-9][0-9]_*.py``, so a new lesson is covered without
editing this file.

Two lessons are also executed as notebooks (jupytext + nbclient, quick mode
set through the kernel's environment), and every lesson must convert to one.
"""

from __future__ import annotations

import importlib.util
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LESSONS = ROOT / "lessons"
sys.path.insert(0, str(LESSONS))
import _check  # noqa: E402  (lessons/_check.py: the checks make lessons applies too)

pytestmark = pytest.mark.slow

# Quick mode takes 5-25 s per lesson on 2 idle cores, up to ~90 s on 2 cores
# shared with a load of 15; this only stops a hung lesson.
LESSON_TIMEOUT_S = 300
NOTEBOOK_LESSONS = ["03_reparameterization.py", "04_kl_divergence.py"]

LESSON_NAMES = [p.name for p in _check.lesson_paths()]

HAVE_NOTEBOOK_TOOLS = all(importlib.util.find_spec(m) for m in ("jupytext", "nbclient", "ipykernel"))


@pytest.fixture(scope="module")
def mnist_ready():
    """MNIST in the cache before any lesson runs, whatever order the tests
    run in: quick mode fetches it when missing, and a lesson should not
    spend its time limit on the one-time download."""
    from numpy_vae.data import load_mnist

    load_mnist()


def describe(run, issues):
    return (f"{len(issues)} problem(s):\n  " + "\n  ".join(issues)
            + f"\n--- output (end) ---\n{run.text[-4000:]}\n--- stderr (end) ---\n{run.stderr[-2000:]}")


def test_lessons_are_found():
    assert len(LESSON_NAMES) >= 12, LESSON_NAMES
    assert LESSON_NAMES[0].startswith("01_")


def test_lessons_readme_lists_every_lesson():
    readme = (LESSONS / "README.md").read_text()
    missing = [name for name in LESSON_NAMES if name not in readme]
    assert not missing, f"lessons/README.md does not mention {missing}"


@pytest.mark.parametrize("lesson", LESSON_NAMES)
def test_lesson_says_how_to_set_quick_mode_from_a_notebook(lesson):
    first_cell = (LESSONS / lesson).read_text().split("\n# %%", 1)[0]
    assert "NUMPY_VAE_QUICK" in first_cell, f"{lesson}: the first cell does not say how to set quick mode"


@pytest.mark.parametrize("lesson", LESSON_NAMES)
def test_lesson_runs_in_quick_mode_and_its_claims_hold(lesson, tmp_path, mnist_ready):
    run = _check.run_script(LESSONS / lesson, quick=True, out_dir=tmp_path, timeout=LESSON_TIMEOUT_S)
    issues = _check.problems(run.text, run.error)
    assert not issues, describe(run, issues)
    figures = _check.parse_output(run.text).figures
    assert all(f.parent == tmp_path for f in figures), f"figures outside NUMPY_VAE_LESSONS_OUT: {figures}"


# A claim must hold on the reader's machine, not only on the one it was
# written on: each lesson runs once more under another seed and another
# OpenBLAS kernel (other CPUs round matrix products differently).  The
# variants rotate over the lessons, so the suite covers seeds 1 and 2 and the
# kernels Haswell, Sandybridge and Prescott; `make lessons-robust` runs every
# combination.
def _variant(index):
    kernels = _check.PORTABLE_KERNELS if _check.kernels_can_be_chosen() else (None,)
    return 1 + index % 2, kernels[index % len(kernels)]


OTHER_VARIANTS = [(name, *_variant(i)) for i, name in enumerate(LESSON_NAMES)]


@pytest.mark.parametrize("lesson,seed,kernel", OTHER_VARIANTS,
                         ids=[f"{name}-seed{seed}-{kernel}" for name, seed, kernel in OTHER_VARIANTS])
def test_lesson_claims_hold_under_another_seed_and_blas_kernel(lesson, seed, kernel, tmp_path, mnist_ready):
    run = _check.run_script(LESSONS / lesson, quick=True, out_dir=tmp_path, timeout=LESSON_TIMEOUT_S,
                            seed=seed, kernel=kernel)
    issues = _check.problems(run.text, run.error)
    assert not issues, describe(run, issues)
    assert f"seed {seed}" in run.text.splitlines()[0], "the lesson did not see NUMPY_VAE_SEED"
    if kernel is not None:
        blas = _check.parse_output(run.text).blas
        assert "kernel" in blas and "SkylakeX" not in blas, f"OPENBLAS_CORETYPE={kernel} not applied: {blas}"


def test_the_seed_changes_a_lessons_random_draws_and_a_bad_seed_is_refused(tmp_path):
    path = _fake_lesson(tmp_path, """\
        import numpy as np
        from _common import evaluate
        SEED = settings.seed
        print("draw", np.random.default_rng(SEED).integers(1 << 30))
        for i in range(3):
            claim(f"check {i}", True)
        done()
        """)
    draws = {}
    for seed in (0, 1):
        run = _check.run_script(path, quick=True, out_dir=tmp_path, timeout=60, seed=seed)
        assert run.error is None, run.text + run.stderr
        assert f"seed {seed}" in run.text.splitlines()[0]
        assert f"(quick mode, seed {seed}" in run.text
        draws[seed] = [line for line in run.text.splitlines() if line.startswith("draw")]
    assert draws[0] != draws[1]
    run = _check.run_script(path, quick=True, out_dir=tmp_path, timeout=60, seed="two")
    assert run.error == "exited with status 1"
    assert "the seed must be a whole number >= 0" in run.stderr


def test_the_robustness_table_counts_each_claim_over_the_variants():
    from types import SimpleNamespace

    def fake_run(held_second):
        text = ("BLAS: openblas, kernel Haswell, 1 thread(s)\n[figure] /nonexistent.png\n"
                "claims checked by this run (quick mode, seed 0, on MNIST): 2 of 2 hold\n"
                "claim ok: the loss falls  [3.0 -> 1.0]\n"
                f"claim {'ok' if held_second else 'FAILED'}: the KL rises  [0.5 -> 0.7]\n")
        return SimpleNamespace(text=text, error=None if held_second else "exited with status 1")

    runs = [("seed 0", fake_run(True)), ("seed 1", fake_run(False)), ("seed 2", fake_run(True))]
    rows, clean = _check.robust_table(LESSONS / "99_fake.py", runs)
    assert not clean
    assert "  ok 3/3  the loss falls" in rows
    assert "  !! 2/3  the KL rises" in rows
    assert any("FAILED 0.5 -> 0.7" in row for row in rows)


# --- the checker itself: a failed or missing claim must fail the run -------

def _fake_lesson(tmp_path, body):
    """A two-cell lesson using lessons/_common.py, run by _check like a real one."""
    path = tmp_path / "99_fake.py"
    path.write_text(textwrap.dedent(f"""\
        import sys
        sys.path.insert(0, {str(LESSONS)!r})
        import matplotlib.pyplot as plt
        from _common import claim, done, savefig, setup
        settings = setup("fake lesson")
        savefig(plt.figure(), "99_fake.png")
        """) + textwrap.dedent(body))
    return path


def test_a_failed_claim_fails_the_lesson(tmp_path):
    path = _fake_lesson(tmp_path, """\
        claim("one plus one is two", 1 + 1 == 2, "2")
        claim("the loss fell by more than 10 nats", 3.2 > 10, "3.2 nats")
        claim("pi is about 3", abs(3.14159 - 3) < 0.2, "3.14")
        done()
        """)
    run = _check.run_script(path, quick=True, out_dir=tmp_path, timeout=60)
    assert run.error == "exited with status 1", run.text + run.stderr
    assert "claim FAILED: the loss fell by more than 10 nats  [3.2 nats]" in run.text
    assert _check.problems(run.text, run.error) == [
        "exited with status 1", "claim FAILED: the loss fell by more than 10 nats  [3.2 nats]"]


def test_too_few_claims_or_a_missing_figure_is_a_problem(tmp_path):
    path = _fake_lesson(tmp_path, """\
        claim("one plus one is two", 1 + 1 == 2, "2")
        print("[figure] " + str(settings.out / "never_written.png"))
        done()
        """)
    run = _check.run_script(path, quick=True, out_dir=tmp_path, timeout=60)
    assert run.error is None, run.stderr
    issues = _check.problems(run.text, run.error)
    assert any("only 1 claim(s)" in i for i in issues), issues
    assert any("never_written.png was announced but does not exist" in i for i in issues), issues


def test_a_lesson_that_stops_before_done_is_a_problem():
    assert "no checklist: done() was not reached or printed nothing" in _check.problems("[figure] x.png\n")


# --- notebooks ----------------------------------------------------------

needs_notebook_tools = pytest.mark.skipif(not HAVE_NOTEBOOK_TOOLS,
                                          reason="jupytext, nbclient, ipykernel: pip install -e '.[dev]'")


@needs_notebook_tools
@pytest.mark.parametrize("lesson", LESSON_NAMES)
def test_lesson_converts_to_a_notebook(lesson):
    nb = _check.to_notebook(LESSONS / lesson)
    kinds = [cell.cell_type for cell in nb.cells]
    assert kinds[0] == "markdown" and "code" in kinds, kinds
    assert any("done()" in cell.source for cell in nb.cells if cell.cell_type == "code")


@needs_notebook_tools
@pytest.mark.parametrize("lesson", NOTEBOOK_LESSONS)
def test_lesson_runs_as_a_notebook_in_quick_mode_and_its_claims_hold(lesson, tmp_path, mnist_ready):
    saved = tmp_path / (Path(lesson).stem + ".ipynb")
    run = _check.run_notebook(LESSONS / lesson, quick=True, out_dir=tmp_path,
                              timeout=LESSON_TIMEOUT_S, save_to=saved)
    issues = _check.problems(run.text, run.error)
    assert not issues, describe(run, issues)
    assert "quick mode" in run.text.splitlines()[0], "the kernel did not see NUMPY_VAE_QUICK=1"
    assert saved.is_file()


@needs_notebook_tools
def test_a_failed_claim_raises_in_a_notebook(tmp_path):
    path = _fake_lesson(tmp_path, """\
        # %%
        claim("two is less than one", 2 < 1, "2")
        done()
        """)
    run = _check.run_notebook(path, quick=True, out_dir=tmp_path, timeout=120)
    assert run.error is not None and "ClaimsFailed" in run.error, run.error
    assert "claim FAILED: two is less than one" in run.text


# --- the measure behind "the codes gather by digit" ----------------------

def test_knn_accuracy_matches_a_brute_force_vote():
    import numpy as np
    from _common import knn_accuracy

    rng = np.random.default_rng(0)
    codes, labels = rng.standard_normal((1500, 2)), rng.integers(0, 10, 1500)
    dist = np.linalg.norm(codes[:, None] - codes[None], axis=2)
    np.fill_diagonal(dist, np.inf)  # a code is not its own neighbour
    votes = labels[np.argsort(dist, axis=1)[:, :5]]
    expected = np.mean([np.bincount(v, minlength=10).argmax() == y for v, y in zip(votes, labels)])
    assert knn_accuracy(codes, labels) == pytest.approx(expected)
    assert knn_accuracy(codes, labels) < 0.2  # random labels: about chance


def test_knn_accuracy_is_one_for_separate_clusters_and_rejects_bad_shapes():
    import numpy as np
    from _common import knn_accuracy

    labels = np.repeat(np.arange(10), 30)
    codes = labels[:, None] * 10.0 + np.random.default_rng(1).standard_normal((300, 2))
    assert knn_accuracy(codes, labels) == 1.0
    with pytest.raises(ValueError, match="codes"):
        knn_accuracy(codes[:, 0], labels)


def test_without_mnist_quick_mode_says_its_claims_were_checked_on_synthetic_digits(tmp_path, monkeypatch):
    empty = tmp_path / "no_mnist_here"
    empty.mkdir()
    monkeypatch.setenv("NUMPY_VAE_DATA", str(empty))  # the only place load_mnist looks then
    path = _fake_lesson(tmp_path, """\
        from _common import load_digits
        data = load_digits(settings, n_train_quick=200, n_test_quick=50)
        for i in range(3):
            claim(f"check {i}", True)
        done()
        """)
    run = _check.run_script(path, quick=True, out_dir=tmp_path, timeout=120)
    assert run.error is None, run.text + run.stderr
    assert "Using SYNTHETIC seven-segment digits" in run.text
    assert "data: synthetic seven-segment digits (MNIST unavailable), 200 training and 50 test images" in run.text
    assert "these claims were checked on SYNTHETIC digits, not MNIST" in run.text
    assert _check.problems(run.text) == []
