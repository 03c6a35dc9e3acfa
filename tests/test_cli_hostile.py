"""Bad input on the command line or in the environment: one line, a non-zero
exit, and no run folder, for every flag that takes a number or a name and
for every model kind the CLI trains.

Each case runs ``cli.main`` in this process up to its refusal (argparse, or
a model that says it cannot do what is asked): no data is read, nothing
trains, so the few hundred cases take seconds.
"""

from pathlib import Path

import pytest

from test_cli import run_cli

MODELS = ["mlp", "conv", "cvae", "vqvae"]

NOT_A_NUMBER = ["", "x", "1,5", "nan", "inf", "-inf", "1e999"]
# flag -> values that must be refused beside NOT_A_NUMBER
INT_FLAGS = {
    "--epochs": ["0", "-1", "2.5"],
    "--batch-size": ["0", "-3", "2.5"],
    "--k": ["0", "-1", "1.5"],
    "--seed": ["-1", "0.5"],
    "--eval-iwae-k": ["-1", "2.5"],
    "--subset": ["0", "-1", "3.5"],
    "--latent-dim": ["0", "-2", "2.5"],
    "--n-slots": ["0", "-1", "1.5"],
    "--slot-dim": ["0", "-1", "1.5"],
    "--n-codes": ["0", "1", "-4", "2.5"],
    "--restart-every": ["-1", "1.5"],
}
FLOAT_FLAGS = {
    "--lr": ["0", "-1e-3"],
    "--kl-warmup": ["-1"],
    "--beta-commit": ["-0.5"],
}
LIST_FLAGS = {
    "--hidden-dims": ["x", "400,", "0", "-5", "4.5", "nan"],
    "--channels": ["x", "0,4", "4,-1", "nan,4"],
}
NAME_FLAGS = ["--model", "--likelihood", "--activation", "--codebook-update", "--binarize",
              "--objective", "--recipe", "--dtype", "--backend"]


def refused(capsys, argv, code=2):
    """Run; assert one message line (after argparse's usage), the exit code, no traceback."""
    assert run_cli(*argv) == code, argv
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    message = [line for line in err.splitlines() if line.startswith("numpy-vae")][-1]
    assert "error:" in message, err
    return message


def train_argv(tmp_path: Path, model: str, *more):
    return ["train", "--model", model, "--data-dir", tmp_path / "no-data",
            "--run-dir", tmp_path / "run", *more]


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("flag, bad", [(f, v) for f, vs in {**INT_FLAGS, **FLOAT_FLAGS}.items()
                                       for v in NOT_A_NUMBER + vs])
def test_every_numeric_flag_refuses_bad_numbers_for_every_model(model, flag, bad, tmp_path, capsys):
    message = refused(capsys, train_argv(tmp_path, model, f"{flag}={bad}"))
    assert flag in message
    assert not (tmp_path / "run").exists() and not Path("runs").exists()


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("flag, bad", [(f, v) for f, vs in LIST_FLAGS.items() for v in vs])
def test_every_size_list_refuses_bad_sizes_for_every_model(model, flag, bad, tmp_path, capsys):
    refused(capsys, train_argv(tmp_path, model, f"{flag}={bad}"))
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("flag", NAME_FLAGS)
def test_every_name_flag_refuses_an_unknown_name_for_every_model(model, flag, tmp_path, capsys):
    message = refused(capsys, train_argv(tmp_path, model, f"{flag}=nonsense"))
    assert "invalid choice: 'nonsense'" in message
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("command", [
    ["evaluate", "RUN", "--iwae-k"], ["evaluate", "RUN", "--batch-size"],
    ["evaluate", "RUN", "--max-rows"], ["evaluate", "RUN", "--seed"],
    ["evaluate", "RUN", "--test-images"], ["sample", "RUN", "-n"], ["sample", "RUN", "--seed"],
    ["sample", "RUN", "--label"], ["gradcheck", "--batch"], ["gradcheck", "--max-elements"],
    ["gradcheck", "--beta"], ["gradcheck", "--k"], ["gradcheck", "--threshold"],
    ["gradcheck", "--seed"]])
@pytest.mark.parametrize("bad", ["x", "-1", "nan", "inf", "1e999"])
def test_the_numeric_flags_of_the_other_commands_refuse_bad_numbers(command, bad, capsys):
    *head, flag = command
    message = refused(capsys, [*head, f"{flag}={bad}"])
    assert flag in message


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("value", ["two", "0", "-1", "1.5", "nan"])
def test_a_bad_blas_threads_variable_is_one_line_before_any_run_folder(model, value, tmp_path,
                                                                       monkeypatch, capsys):
    """Defect 5: NUMPY_VAE_BLAS_THREADS=two gave a traceback from threads.py
    after the data were loaded, leaving a run folder with .lock and config.json."""
    monkeypatch.setenv("NUMPY_VAE_BLAS_THREADS", value)
    message = refused(capsys, train_argv(tmp_path, model))
    assert f"$NUMPY_VAE_BLAS_THREADS={value!r}" in message
    assert not (tmp_path / "run").exists()


def test_a_bad_backend_variable_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("NUMPY_VAE_BACKEND", "tpu")
    import importlib

    from numpy_vae import cli
    importlib.reload(cli)  # the default of --backend is read when the parser is built
    try:
        message = refused(capsys, train_argv(tmp_path, "mlp"))
    finally:
        monkeypatch.delenv("NUMPY_VAE_BACKEND")
        importlib.reload(cli)
    assert "$NUMPY_VAE_BACKEND='tpu'" in message
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("model, flags, flag", [
    ("vqvae", ["--n-codes", "1"], "--n-codes"),                      # defect 6
    ("vqvae", ["--kl-warmup", "5"], "--kl-warmup"),                  # defect 8
    ("cvae", ["--eval-iwae-k", "5"], "--eval-iwae-k"),               # defect 1
    ("vqvae", ["--eval-iwae-k", "5"], "--eval-iwae-k"),              # defect 1
    ("cvae", ["--objective", "iwae", "--k", "2"], "--objective iwae"),
    ("vqvae", ["--objective", "iwae", "--k", "2"], "--objective iwae"),
    ("conv", ["--channels", "8"], "--channels"),
    ("mlp", ["--k", "3"], "--k 3"),
    ("mlp", ["--objective", "iwae", "--kl-warmup", "2"], "--kl-warmup"),
])
def test_what_a_model_kind_cannot_do_is_refused_before_any_run_folder(model, flags, flag, tmp_path,
                                                                     capsys):
    message = refused(capsys, train_argv(tmp_path, model, *flags))
    assert flag in message
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("model, flags", [
    ("cvae", ["--objective", "iwae", "--k", "2"]), ("vqvae", ["--objective", "iwae", "--k", "2"]),
    ("vqvae", ["--beta", "0.5"])])
def test_gradcheck_refuses_what_a_model_kind_cannot_do(model, flags, capsys):
    message = refused(capsys, ["gradcheck", "--model", model, *flags])
    assert "not available for a" in message
