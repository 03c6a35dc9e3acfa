"""The exercises of lessons/exercises/ and their checker, numpy_vae/exercises.py.

Three promises to the reader, each a test:
- every reference solution passes its checker;
- every untouched stub is reported "not yet done", not as a crash;
- the common mistakes fail, each with the relative error, the wrong array
  and the hint that points at it (one planted mistake or more per exercise,
  made by editing one line of the solution).
The capstone trains here in its quick setting (a few seconds) to its quick bound.
"""

import re
from pathlib import Path

import pytest

from numpy_vae import exercises
from numpy_vae.cli import main

ROOT = Path(__file__).resolve().parents[1]
STUBS = ROOT / "lessons" / "exercises"
SOLUTIONS = STUBS / "solutions"
CATALOGUE = exercises.exercises(train=False)
NUMBERS = [e.number for e in CATALOGUE]


def run(number, path, quick=True):
    """(exit code, printed text) of checking exercise ``number`` in ``path``."""
    lines = []
    code = exercises.report(number, path, quick=quick, say=lines.append)
    return code, "\n".join(lines)


def file_of(number, folder):
    return folder / f"{exercises.find(number).slug}.py"


def test_there_are_at_least_ten_exercises_each_with_a_stub_and_a_solution():
    assert len(CATALOGUE) >= 10
    for exercise in CATALOGUE:
        assert (STUBS / f"{exercise.slug}.py").is_file()
        assert (SOLUTIONS / f"{exercise.slug}.py").is_file()


@pytest.mark.parametrize("number", [n for n in NUMBERS if n != 12])
def test_every_solution_passes_its_checker(number):
    code, text = run(number, file_of(number, SOLUTIONS))
    assert code == 0, text
    assert "FAIL" not in text and "todo" not in text and f"exercise {number} done" in text


@pytest.mark.slow
def test_the_capstone_solution_trains_to_its_quick_bound():
    code, text = run(12, file_of(12, SOLUTIONS), quick=True)
    assert code == 0, text
    assert "test -ELBO" in text and "pass  training on MNIST" in text


@pytest.mark.parametrize("number", NUMBERS)
def test_every_untouched_stub_is_reported_not_yet_done(number):
    code, text = run(number, file_of(number, STUBS))
    assert code == 1
    assert f"exercise {number}: not yet done" in text
    assert "to do:" in text and "FAIL" not in text


def test_the_stubs_say_what_to_fill_in_and_keep_docstrings_with_shapes():
    for exercise in CATALOGUE:
        source = (STUBS / f"{exercise.slug}.py").read_text()
        assert 'raise NotImplementedError("' in source, exercise.slug
        assert f"numpy-vae exercise {exercise.number}" in source
        assert "Hints:" in source, exercise.slug
        assert re.search(r"\((batch|B|N|k|D), |any shape", source), exercise.slug  # shapes given


# Each planted mistake: (exercise, the solution's text, what replaces it, a phrase of the
# hint the checker must give).  The replaced text must occur in the solution exactly once.
MISTAKES = [
    (1, "dW = x.T @ dy", "dW = dy.T @ x", "check the order of the product"),            # transposed
    (1, "db = dy.sum(axis=0)", "db = dy.mean(axis=0)", "a sum over the batch, not a mean"),
    (2, "return dy * (1 - y * y)", "return dy * (1 - np.tanh(y) ** 2)", "given y = tanh(x), not x"),
    (2, "return dy * (x > 0)", "return 1.0 * (x > 0)", "not the mask alone"),
    (3, "dz * eps * np.exp(0.5 * logvar) * 0.5", "dz * eps * np.exp(0.5 * logvar)",
     "keeps the inner derivative of logvar / 2"),                                          # missing 1/2
    (3, "return mu + np.exp(0.5 * logvar) * eps", "return mu + np.exp(logvar) * eps",
     "not the standard deviation"),
    (4, "np.sum(1 + logvar - mu * mu", "np.sum(logvar - mu * mu", "0 when q is the prior"),  # KL's -1
    (4, "0.5 * (np.exp(logvar) - 1)", "0.5 * np.exp(logvar)", "the 1 vanishes, the logvar does not"),
    (5, "return np.sum(np.logaddexp(0, logits) - x * logits, axis=1)",
     "p = 1 / (1 + np.exp(-logits))\n"
     "    return -np.sum(x * np.log(p) + (1 - x) * np.log(1 - p), axis=1)",
     "log(0) = -inf"),                                                                     # log(sigmoid)
    (5, "np.sum(np.logaddexp(0, logits) - x * logits, axis=1)",
     "np.mean(np.logaddexp(0, logits) - x * logits, axis=1)", "a sum over its pixels, not a mean"),
    (6, "m_hat = m / (1 - beta1 ** t)\n    v_hat = v / (1 - beta2 ** t)",
     "m_hat = m\n    v_hat = v", "biased towards 0: divide"),
    (6, "m_hat = m / (1 - beta1 ** t)\n    v_hat = v / (1 - beta2 ** t)",
     "m_hat = m / (1 - beta1 ** (t - 1))\n    v_hat = v / (1 - beta2 ** (t - 1))", "t counts from 1"),
    (7, "dnll * 0.5 * (1 - diff * diff * inv_var)", "dnll * (1 - diff * diff * inv_var)",
     "the 1/2 in front of the sum"),
    (7, "+ logvar + LOG_2PI, axis=1)", "+ logvar, axis=1)", "log(2 pi) as well as logvar"),
    (8, "bound = m + np.log(total) - np.log(k)", "bound = m + np.log(total)",
     "the mean over the k samples, not the sum"),
    (8, "m = a.max(axis=0)", "m = 0.0", "take the largest a_i out of the sum"),          # unstable
    (9, "(dz * eps * std * 0.5 + 0.5 * dlog_ratio)", "(dz * eps * std * 0.5)",
     "directly through the +logvar / 2 of log q"),
    (10, "dy2 = dy.transpose(1, 0, 2, 3).reshape(O, -1)", "dy2 = dy.reshape(O, -1)",
     "mixes examples with channels"),
    (11, "np.add.at(dcodebook, codes.reshape(-1), rows)", "dcodebook[codes.reshape(-1)] += rows",
     "adds only once"),
    (11, "dz_q + 2 * dsq_commit", "dz_q + dsq_commit", "d||u||^2/du = 2u"),
    (12, "loss = np.mean(nll + kl)", "loss = np.sum(nll + kl)", "a sum where the mean belongs"),
    (12, "[dmu + dmu_kl, dlogvar + dlogvar_kl]", "[dmu, dlogvar]",
     "get gradient from both z and the KL"),
]


def planted(tmp_path, number, old, new):
    """A copy of the solutions folder whose exercise ``number`` carries one mistake."""
    folder = tmp_path / "mine"
    folder.mkdir()
    for path in SOLUTIONS.glob("*.py"):
        (folder / path.name).write_text(path.read_text())
    target = file_of(number, folder)
    source = target.read_text()
    assert source.count(old) == 1, f"{old!r} is not in {target.name} exactly once"
    target.write_text(source.replace(old, new))
    return target


@pytest.mark.parametrize("number, old, new, hint", MISTAKES,
                         ids=[f"{m[0]:02d}-{i}" for i, m in enumerate(MISTAKES)])
def test_a_common_mistake_fails_with_its_relative_error_and_hint(tmp_path, number, old, new, hint):
    exercise = exercises.find(number, train=False)
    lines = []
    verdicts = exercises.run_checks(exercise, planted(tmp_path, number, old, new))
    for verdict in verdicts:
        lines += exercises._line(verdict)
    text = "\n".join(lines)
    failed = [v for v in verdicts if v.status == "fail"]
    assert failed, text
    assert any(hint in v.hint for v in failed), text
    assert all(v.error is not None and v.error >= exercises.THRESHOLD for v in failed), text
    assert "relative error" in text and "FAIL" in text


def test_every_exercise_has_a_planted_mistake_test():
    assert {m[0] for m in MISTAKES} == set(NUMBERS)


def test_the_checker_names_the_shapes_and_the_array_that_is_wrong(tmp_path):
    code, text = run(4, planted(tmp_path, 4, "0.5 * (np.exp(logvar) - 1)", "0.5 * np.exp(logvar)"))
    assert code == 1
    assert "dlogvar on mu (" in text and "logvar (" in text
    assert "exercise 4: 1 of 2 checks fail" in text


def test_a_function_that_raises_is_a_failure_with_its_line_not_a_crash(tmp_path):
    path = planted(tmp_path, 1, "dx = dy @ W.T", "dx = dy @ x")
    code, text = run(1, path)
    assert code == 1 and "FAIL" in text and "linear_backward() raised" in text
    assert "of 01_linear.py" in text


def test_a_backward_pass_that_overwrites_its_input_is_told_so(tmp_path):
    path = planted(tmp_path, 2, "return dy * (x > 0)", "dy *= (x > 0)\n    return dy")
    code, text = run(2, path)
    assert code == 1 and "changed its input" in text


def test_a_file_that_does_not_run_is_one_line(tmp_path, capsys):
    path = tmp_path / "mine.py"
    path.write_text("def linear_forward(x, W, b)\n    return x\n")
    assert main(["exercise", "1", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("numpy-vae: error: mine.py does not run: SyntaxError at line 1")
    assert len(err.strip().splitlines()) == 1


def test_cli_checks_a_solution_and_lists_progress(capsys, monkeypatch):
    assert main(["exercise", "3", str(file_of(3, SOLUTIONS))]) == 0
    assert "exercise 3 done" in capsys.readouterr().out
    monkeypatch.chdir(ROOT)
    assert main(["exercise"]) == 0
    out = capsys.readouterr().out
    assert "0 of 12 done" in out and out.count("not yet done") == 12


def test_cli_bad_exercise_number_is_one_line_and_exit_1(capsys):
    assert main(["exercise", "99"]) == 1
    assert capsys.readouterr().err.strip() == (
        "numpy-vae: error: no exercise 99; there are exercises 1 to 12 "
        "(run 'numpy-vae exercise' for the list)")


def test_the_capstone_finds_the_readers_pieces_beside_it(tmp_path):
    folder = tmp_path / "alone"
    folder.mkdir()
    (folder / "12_capstone.py").write_text(file_of(12, SOLUTIONS).read_text())
    code, text = run(12, folder / "12_capstone.py")
    assert code == 1 and "01_linear.py is missing" in text


def test_the_capstone_waits_for_the_pieces_it_needs(tmp_path):
    folder = tmp_path / "half"
    folder.mkdir()
    for path in STUBS.glob("*.py"):
        (folder / path.name).write_text(path.read_text())
    (folder / "12_capstone.py").write_text(file_of(12, SOLUTIONS).read_text())
    code, text = run(12, folder / "12_capstone.py")
    assert code == 1 and "not yet done" in text
    assert "of 01_linear.py, which is not written yet" in text


def test_without_hypothesis_the_random_cases_come_from_a_seeded_generator(tmp_path, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "hypothesis", None)  # import fails
    code, text = run(10, file_of(10, SOLUTIONS))
    assert code == 0 and "16 cases" in text, text
    code, text = run(10, planted(tmp_path, 10, "db = dy2.sum(axis=1)", "db = dy2.sum(axis=1) / 2"))
    assert code == 1 and "is added at every pixel" in text


def test_a_mistake_only_random_cases_reveal_is_found_and_shrunk(tmp_path):
    # right for the fixed case (batch 2), wrong from batch 3 on
    code, text = run(1, planted(tmp_path, 1, "db = dy.sum(axis=0)", "db = dy[:2].sum(axis=0)"))
    assert code == 1
    assert "db on x (3, 1), W (1, 1), b (1,)" in text  # the smallest failing shapes
    assert "its gradient collects all of them" in text
