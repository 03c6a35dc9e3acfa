"""The numpy-vae command (numpy_vae/cli.py), used the way a person uses it:
a small synthetic MNIST-layout folder stands in for MNIST."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from numpy_vae import cli, plots
from numpy_vae.checkpoint import CheckpointError, load_checkpoint
from numpy_vae.idx import write_idx
from numpy_vae.reparameterize import ReparameterizeKL
from numpy_vae.runs import read_metrics

FIGURES = ["reconstructions.png", "samples.png", "loss_curves.png", "latent_scatter.png",
           "latent_manifold.png"]
SMALL_MODEL = ["--hidden-dims", "32", "--latent-dim", "2", "--batch-size", "64"]


def write_digits(folder: Path, n_train=512, n_test=200, seed=0) -> Path:
    """Four IDX files in MNIST's layout: each 'digit' d is a bright bar at its own place."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        images = rng.integers(0, 40, (n, 28, 28)).astype(np.uint8)
        for i, d in enumerate(labels):
            images[i, 2 + 2 * d: 6 + 2 * d, 4:24] = 255
        write_idx(folder / f"{prefix}-images-idx3-ubyte", images)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte", labels)
    return folder


def run_cli(*argv):
    """main(argv) in this process; returns the exit code (output: read it with capsys)."""
    try:
        return cli.main([str(a) for a in argv])
    except SystemExit as stop:  # argparse's own exits
        return stop.code


def cli_env():
    """Environment for a child process: this package importable, no stray data folder."""
    env = dict(os.environ, PYTHONPATH=str(Path(cli.__file__).resolve().parents[1]))
    env.pop("NUMPY_VAE_DATA", None)
    env.pop("NUMPY_VAE_BACKEND", None)
    return env


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    return write_digits(tmp_path_factory.mktemp("data") / "digits")


@pytest.fixture(scope="module")
def trained_run(digits, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("runs") / "run"
    code = run_cli("train", "--data-dir", digits, "--run-dir", run_dir, "--epochs", 2, "--quiet",
                   *SMALL_MODEL)
    assert code == 0
    return run_dir


# --------------------------------------------------------------------------
# Happy paths, one per command
# --------------------------------------------------------------------------

def test_train_writes_metrics_a_checkpoint_and_every_figure(digits, tmp_path, capsys):
    run_dir = tmp_path / "run"
    code = run_cli("train", "--data-dir", digits, "--run-dir", run_dir, "--epochs", 2, *SMALL_MODEL)
    out = capsys.readouterr().out

    assert code == 0
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2]
    assert (run_dir / "checkpoint.npz").is_file()
    assert json.loads((run_dir / "config.json").read_text())["options"]["data_dir"] == str(digits)
    for name in FIGURES:
        assert (run_dir / name).stat().st_size > 1000, name
    assert "epoch 1/2  train -ELBO" in out
    assert f"test negative ELBO after epoch 2: {records[1]['test_nelbo']:.2f} nats per image" in out


def test_train_without_run_dir_makes_a_dated_folder_under_runs(digits, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run_cli("train", "--data-dir", digits, "--epochs", 1, "--subset", 64, "--quiet",
                   *SMALL_MODEL) == 0
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert run_dir.name.endswith("-vae-784-32-2") and (run_dir / "checkpoint.npz").is_file()


def test_evaluate_prints_the_test_elbo_and_the_iwae_bound_with_their_times(trained_run, capsys):
    assert run_cli("evaluate", trained_run, "--iwae-k", 20, "--quiet") == 0
    out = capsys.readouterr().out
    assert "test set: 200 images" in out
    assert "test negative ELBO: " in out and "test IWAE bound, K=20: -log p(x) <= " in out
    record = json.loads((trained_run / "evaluation.jsonl").read_text().splitlines()[-1])
    assert record["epoch"] == 2 and record["iwae_k"] == 20
    assert record["test_iwae_nll"] <= record["test_nelbo"] + 1.0
    assert record["nelbo_time_s"] >= 0 and record["iwae_time_s"] > 0


def test_sample_writes_a_grid_of_n_images(trained_run, tmp_path, capsys):
    out = tmp_path / "grid.png"
    assert run_cli("sample", trained_run, "-n", 16, "--out", out) == 0
    assert f"wrote 16 samples to {out}" in capsys.readouterr().out
    image = plots.plt.imread(out)
    assert image.ndim == 3 and min(image.shape[:2]) > 4 * 28


def test_plot_redraws_every_figure_of_a_run(trained_run, capsys):
    for name in FIGURES:
        (trained_run / name).unlink()
    assert run_cli("plot", trained_run, "--quiet") == 0
    out = capsys.readouterr().out
    for name in FIGURES:
        assert (trained_run / name).is_file() and name in out


def test_gradcheck_passes_for_a_correct_model(capsys):
    code = run_cli("gradcheck", "--hidden-dims", "16", "--latent-dim", 3, "--max-elements", 8)
    out = capsys.readouterr().out
    assert code == 0
    assert "decoder.1.W" in out and "all 10 parameter arrays pass" in out


def test_gradcheck_fails_with_exit_code_1_on_a_wrong_backward_pass(monkeypatch, capsys):
    def kl_path_missing_one_half(self, dz, dkl):  # a classic slip: d KL / d logvar without the 1/2
        dmu, dlogvar = original(self, dz, dkl)
        return dmu, dlogvar + dkl[:, None] * 0.5 * self._var_minus_1  # the KL path twice

    original = ReparameterizeKL.backward
    monkeypatch.setattr(ReparameterizeKL, "backward", kl_path_missing_one_half)
    code = run_cli("gradcheck", "--hidden-dims", "16", "--latent-dim", 3, "--max-elements", 8)
    captured = capsys.readouterr()
    assert code == 1
    assert "numpy-vae: error: gradient check failed: logvar." in captured.err
    assert "NO" in captured.out


def test_a_missing_matplotlib_skips_the_figures_with_one_line(digits, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(plots, "plt", None)
    code = run_cli("train", "--data-dir", digits, "--run-dir", tmp_path / "run", "--epochs", 1,
                   "--subset", 64, "--quiet", *SMALL_MODEL)
    assert code == 0
    assert ('figures skipped: matplotlib is not installed (install it with: pip install '
            '"numpy-vae[plot]")') in capsys.readouterr().out
    assert not list((tmp_path / "run").glob("*.png"))


def test_the_convolutional_model_trains_through_the_same_command(digits, tmp_path):
    code = run_cli("train", "--model", "conv", "--channels", "2,4", "--latent-dim", 2,
                   "--data-dir", digits, "--run-dir", tmp_path / "conv", "--epochs", 1,
                   "--subset", 64, "--quiet")
    assert code == 0
    config = json.loads((tmp_path / "conv" / "config.json").read_text())["model"]
    assert config["model"] == "conv" and config["channels"] == [2, 4]


# --------------------------------------------------------------------------
# Mistakes and problems
# --------------------------------------------------------------------------

@pytest.mark.parametrize("argv, message", [
    ([], "the following arguments are required: COMMAND"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
    (["train", "--epochs", "0"], "argument --epochs: must be a positive integer, got '0'"),
    (["train", "--hidden-dims", "400x"], "expected comma-separated integers"),
    (["train", "--likelihood", "poisson"], "invalid choice: 'poisson'"),
    (["train", "--lr", "-1"], "argument --lr: must be positive"),
    (["train", "--backend", "tpu"], "invalid choice: 'tpu'"),
    (["train", "--model", "conv", "--channels", "32"], "needs two numbers C1,C2"),
    (["evaluate"], "the following arguments are required: RUN_OR_CKPT"),
    (["train", "--resume", "runs/x", "--lr", "0.1"], "--lr cannot be given with --resume"),
])
def test_bad_arguments_get_argparses_message_and_exit_code_2(argv, message, capsys):
    assert run_cli(*argv) == 2
    err = capsys.readouterr().err
    assert message in err and "usage: numpy-vae" in err and "Traceback" not in err


def test_known_problems_print_one_error_line_and_exit_1(digits, trained_run, tmp_path, capsys):
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_text("not a checkpoint")
    problems = {
        "no data": ["train", "--data-dir", tmp_path / "nowhere", "--run-dir", tmp_path / "r1"],
        "no checkpoint": ["evaluate", tmp_path / "no-run"],
        "corrupt checkpoint": ["sample", corrupt],
        "run folder taken": ["train", "--data-dir", digits, "--run-dir", trained_run],
    }
    for what, argv in problems.items():
        assert run_cli(*argv) == 1, what
        err = capsys.readouterr().err
        assert err.startswith("numpy-vae: error: "), (what, err)
        assert "Traceback" not in err, what
    assert not (tmp_path / "r1").exists()  # no empty run folder after a data error


def test_a_backend_that_cannot_run_here_is_one_error_line(capsys):
    from numpy_vae.backend import available_backends
    if "cupy" in available_backends():
        pytest.skip("cupy runs on this machine")
    assert run_cli("gradcheck", "--backend", "cupy") == 1
    assert capsys.readouterr().err.startswith("numpy-vae: error: backend 'cupy'")


def test_help_shows_the_default_of_every_option():
    parser = cli.build_parser()
    subparsers = parser._subparsers._group_actions[0].choices
    for name, sub in subparsers.items():
        text = " ".join(sub.format_help().split())
        for action in sub._actions:
            if action.option_strings and action.default not in (None, False, "==SUPPRESS=="):
                assert f"(default: {action.default})" in text, (name, action.dest)


# --------------------------------------------------------------------------
# As a separate process: the console script, python -m, and Ctrl-C
# --------------------------------------------------------------------------

def test_console_script_and_python_dash_m_are_the_same_command():
    script = Path(sys.executable).parent / "numpy-vae"
    for command in ([str(script)], [sys.executable, "-m", "numpy_vae"]):
        if not Path(command[0]).exists():
            continue
        done = subprocess.run([*command, "train", "--epochs", "-3"], capture_output=True,
                              text=True, env=cli_env(), timeout=120)
        assert done.returncode == 2 and "Traceback" not in done.stderr
        assert "argument --epochs: must be a positive integer" in done.stderr
    done = subprocess.run([sys.executable, "-m", "numpy_vae", "--help"], capture_output=True,
                          text=True, env=cli_env(), timeout=120)
    assert done.returncode == 0 and "gradcheck" in done.stdout


def saved_epoch(run_dir):
    """The epoch of the run's checkpoint, -1 before there is one (writes are atomic)."""
    try:
        return load_checkpoint(run_dir).epoch
    except CheckpointError:
        return -1


def test_ctrl_c_saves_exits_130_and_resume_finishes_the_run(digits, tmp_path):
    run_dir = tmp_path / "run"
    command = [sys.executable, "-m", "numpy_vae", "train", "--data-dir", str(digits),
               "--run-dir", str(run_dir), "--epochs", "10000", "--quiet", *SMALL_MODEL]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=cli_env())
    try:
        deadline = time.monotonic() + 120
        while saved_epoch(run_dir) < 1:  # the checkpoint of epoch 1 is on disk
            assert child.poll() is None, child.communicate()
            assert time.monotonic() < deadline, "no epoch finished within 120 s"
            time.sleep(0.05)
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()

    assert child.returncode == 130, err
    assert "Traceback" not in err
    line = err.strip().splitlines()[-1]
    assert line.startswith("interrupted at epoch ")
    assert f"saved {run_dir / 'checkpoint.npz'} (end of epoch " in line
    assert line.endswith(f"resume with: numpy-vae train --resume {run_dir}")
    last_saved = int(line.split("(end of epoch ")[1].split(")")[0])
    assert last_saved >= 1 and last_saved == saved_epoch(run_dir)

    assert run_cli("train", "--resume", run_dir, "--epochs", last_saved + 1, "--quiet") == 0
    records = [json.loads(r) for r in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == list(range(1, last_saved + 2))


HOLD_RUN = """
import sys
from numpy_vae.train import Trainer
trainer = Trainer.from_checkpoint(sys.argv[1], quiet=True)  # holds the run folder from here on
print("holding", flush=True)
sys.stdin.read()  # until the test kills this process
"""


def test_a_second_process_gets_one_line_and_leaves_a_run_in_use_untouched(digits, tmp_path):
    run_dir = tmp_path / "run"
    assert run_cli("train", "--data-dir", digits, "--run-dir", run_dir, "--epochs", 1, "--quiet",
                   *SMALL_MODEL) == 0
    holder = subprocess.Popen([sys.executable, "-c", HOLD_RUN, str(run_dir)], env=cli_env(),
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline() == b"holding\n"
        before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in run_dir.iterdir()}
        resume = [sys.executable, "-m", "numpy_vae", "train", "--resume", str(run_dir), "--epochs", "3"]
        second = subprocess.run(resume, env=cli_env(), capture_output=True, text=True, timeout=300)
        assert second.returncode == 1
        assert second.stderr.count("\n") == 1, second.stderr
        assert second.stderr.startswith(f"numpy-vae: error: {run_dir} is in use: another process "
                                        f"(pid {holder.pid}) is training in it")
        after = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in run_dir.iterdir()}
        assert after == before  # not a byte, not a timestamp
    finally:
        holder.kill()  # SIGKILL: no Python code runs; the OS releases the lock
        holder.wait()
    third = subprocess.run(resume + ["--quiet"], env=cli_env(), capture_output=True, text=True,
                           timeout=300)
    assert third.returncode == 0, third.stderr
    assert [r["epoch"] for r in read_metrics(run_dir)] == [1, 2, 3]


def test_binarize_static_the_old_name_trains_as_threshold_with_one_note(digits, tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert run_cli("train", "--data-dir", digits, "--run-dir", run_dir, "--epochs", 1, "--quiet",
                   "--binarize", "static", *SMALL_MODEL) == 0
    notes = [line for line in capsys.readouterr().err.splitlines() if "static" in line]
    assert notes == ["numpy-vae: note: --binarize static is now called --binarize threshold (it "
                     "thresholds at 0.5; 'statically binarized MNIST' in the literature is one fixed "
                     "random draw)"]
    assert load_checkpoint(run_dir).options["binarize"] == "threshold"


# --------------------------------------------------------------------------
# The conditional VAE and the VQ-VAE from the command line
# --------------------------------------------------------------------------

def test_train_cvae_writes_its_figures_and_sample_takes_a_label(digits, tmp_path, capsys):
    run_dir = tmp_path / "cvae"
    assert run_cli("train", "--model", "cvae", "--data-dir", digits, "--run-dir", run_dir,
                   "--epochs", 2, "--quiet", *SMALL_MODEL) == 0
    for name in ("reconstructions.png", "samples.png", "loss_curves.png", "digit_grid.png",
                 "style_transfer.png"):
        assert (run_dir / name).stat().st_size > 1000, name
    assert json.loads((run_dir / "config.json").read_text())["model"]["n_classes"] == 10
    assert run_cli("sample", run_dir, "--label", 7, "-n", 9) == 0
    assert (run_dir / "samples-label7-seed0.png").stat().st_size > 1000
    assert run_cli("sample", run_dir, "--label", 10) == 2
    assert "--label must be below 10" in capsys.readouterr().err
    assert run_cli("evaluate", run_dir, "--quiet") == 0
    assert "no IWAE bound for a cvae model" in capsys.readouterr().out


def test_train_vqvae_records_codebook_usage_and_resumes(digits, tmp_path, capsys):
    run_dir = tmp_path / "vqvae"
    model = ["--model", "vqvae", "--hidden-dims", "32", "--n-slots", "4", "--slot-dim", "2",
             "--n-codes", "16", "--restart-every", "3", "--batch-size", "64"]
    assert run_cli("train", *model, "--data-dir", digits, "--run-dir", run_dir, "--epochs", 1) == 0
    assert run_cli("train", "--resume", run_dir, "--epochs", 2, "--quiet") == 0
    out = capsys.readouterr().out
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2]
    assert all(1 <= r["perplexity"] <= 16 and 0 <= r["dead_codes"] <= 16 for r in records)
    assert "codebook perplexity" in out and "codebook over the last epoch: perplexity" in out
    for name in ("reconstructions.png", "samples.png", "loss_curves.png"):
        assert (run_dir / name).stat().st_size > 1000, name
    assert run_cli("sample", run_dir, "--label", 3) == 2
    assert "--label needs a conditional VAE" in capsys.readouterr().err


def test_resuming_a_vqvae_keeps_its_codebook_settings(digits, tmp_path, capsys):
    run_dir = tmp_path / "vq"
    assert run_cli("train", "--model", "vqvae", "--hidden-dims", "16", "--n-codes", "8", "--data-dir",
                   digits, "--run-dir", run_dir, "--epochs", 1, "--subset", 64, "--quiet") == 0
    assert run_cli("train", "--resume", run_dir, "--n-codes", "16") == 2
    assert "--n-codes cannot be given with --resume" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["0", "many"])
def test_a_bad_blas_thread_count_is_refused_with_the_accepted_forms(value, capsys):
    assert run_cli("train", "--blas-threads", value) == 2
    err = capsys.readouterr().err
    assert "argument --blas-threads: BLAS threads must be a positive number, 'auto' or 'default'" in err


def test_the_help_of_train_explains_blas_threads_and_its_variable():
    text = " ".join(cli.build_parser()._subparsers._group_actions[0].choices["train"].format_help().split())
    assert "--blas-threads N|auto|default" in text and "$NUMPY_VAE_BLAS_THREADS" in text
