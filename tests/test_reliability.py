"""Reliability (issue 7): hostile files, numerical faults, interruptions,
foreign checkpoints and a hostile environment each end in one clear
message, and never in a corrupted run.

Much of this is specified elsewhere; the table below says where, so that
nothing is tested twice:

    random / truncated / huge-header / wrong-type IDX files    test_idx.py
    a bad mirror download, a mirror that never answers         test_data.py
    Ctrl-C: exit 130, one line, resume finishes the run        test_cli.py
    a resumed run is bit for bit the uninterrupted one         test_train.py
    not-an-npz, object arrays, truncated, foreign npz          test_checkpoint.py
"""

import errno
import gzip
import os
import re
import subprocess
import sys
import tempfile
import textwrap
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from numpy_vae import VAE, cli
from numpy_vae import checkpoint_format as checkpoint_module
from numpy_vae.checkpoint import CheckpointError, load_checkpoint, load_model, save_checkpoint
from numpy_vae.idx import IDX_TYPES, IDXError, read_idx, write_idx
from numpy_vae.dataset import Dataset
from numpy_vae.runs import RunFolderError
from numpy_vae.train import Trainer, TrainingDiverged, TrainOptions

PIXELS = 64
STEPS_PER_EPOCH = 10  # 300 toy images in batches of 32


def toy_data(n_train=300, n_test=50, scale=1.0):
    rng = np.random.default_rng(0)
    x = (scale * rng.random((n_train + n_test, PIXELS))).astype(np.float32)
    y = np.zeros(n_train + n_test, dtype=np.uint8)
    return Dataset(x[:n_train], y[:n_train], x[n_train:], y[n_train:])


def toy_model(**changes):
    return VAE(**{"input_dim": PIXELS, "hidden_dims": (16,), "latent_dim": 3, "seed": 0, **changes})


def options(**changes):
    return TrainOptions(**{"epochs": 1, "batch_size": 32, "lr": 3e-3, "log_every": 4, **changes})


def child_env():
    """A child process: this package importable, one BLAS thread (the machine is shared)."""
    env = dict(os.environ, PYTHONPATH=str(Path(cli.__file__).resolve().parents[1]),
               OPENBLAS_NUM_THREADS="1")
    env.pop("NUMPY_VAE_BACKEND", None)
    return env


def run_cli(*argv):
    try:
        return cli.main([str(a) for a in argv])
    except SystemExit as stop:
        return stop.code


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """A tiny folder in MNIST's layout."""
    folder = tmp_path_factory.mktemp("digits")
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 64), ("t10k", 32)):
        write_idx(folder / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        write_idx(folder / f"{prefix}-labels-idx1-ubyte", rng.integers(0, 10, n, dtype=np.uint8))
    return folder


SMALL = ["--hidden-dims", "8", "--latent-dim", "2", "--batch-size", "32", "--quiet"]


# --------------------------------------------------------------------------
# 1. Hostile IDX files: memory is bounded by the file, not by its header
# --------------------------------------------------------------------------

@settings(max_examples=60, deadline=None)
@given(code=st.sampled_from(sorted(IDX_TYPES)),
       dims=st.lists(st.integers(2**20, 2**32 - 1), min_size=1, max_size=3),
       body=st.binary(max_size=2000), compress=st.booleans())
def test_a_header_claiming_gigabytes_costs_no_more_memory_than_the_file(
        tmp_path_factory, code, dims, body, compress):
    content = bytes([0, 0, code, len(dims)]) + b"".join(d.to_bytes(4, "big") for d in dims) + body
    path = tmp_path_factory.getbasetemp() / "claims-gigabytes"
    path.write_bytes(gzip.compress(content, mtime=0) if compress else content)

    tracemalloc.start()
    try:
        with pytest.raises(IDXError, match="claims-gigabytes"):
            read_idx(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert peak < (2 << 20) + 4 * len(content)  # the 1 MiB read buffer, and the file itself


# --------------------------------------------------------------------------
# 2. Numerical faults: stop at once, say what and where, keep the last good checkpoint
# --------------------------------------------------------------------------

def trained_one_epoch(run_dir, **changes):
    trainer = Trainer(toy_model(), options(**changes), run_dir, quiet=True)
    trainer.fit(toy_data())
    return trainer


def assert_checkpoint_of_epoch_1_is_intact(trainer, params_after_epoch_1):
    model, ck = load_model(trainer.run_dir)
    assert ck.epoch == 1
    for name, p in model.params.items():
        np.testing.assert_array_equal(p, params_after_epoch_1[name], err_msg=name)


def test_inputs_that_overflow_the_loss_stop_training_naming_the_epoch_step_and_loss(tmp_path):
    trainer = trained_one_epoch(tmp_path)
    after_epoch_1 = {k: v.copy() for k, v in trainer.model.params.items()}
    trainer.options.epochs = 2

    with np.errstate(all="ignore"), pytest.raises(TrainingDiverged) as info:
        trainer.fit(toy_data(scale=1e30))

    assert str(info.value).startswith("the loss became ")
    assert "at epoch 2 step 1; try a lower learning rate" in str(info.value)
    assert_checkpoint_of_epoch_1_is_intact(trainer, after_epoch_1)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_a_non_finite_gradient_is_named_with_its_epoch_and_step(tmp_path, bad):
    trainer = trained_one_epoch(tmp_path)
    after_epoch_1 = {k: v.copy() for k, v in trainer.model.params.items()}
    trainer.options.epochs = 2
    real, calls = trainer.model.loss_and_grads, []

    def nan_gradient_at_the_sixth_step(x, eps=None, beta=1.0):
        loss, grads, info = real(x, eps, beta)
        calls.append(1)
        if len(calls) == 6:
            grads["decoder.1.b"][0] = bad  # the loss of this step is still finite
        return loss, grads, info

    trainer.model.loss_and_grads = nan_gradient_at_the_sixth_step
    with np.errstate(all="ignore"), pytest.raises(
            TrainingDiverged, match=r"^the gradient of decoder\.1\.b became non-finite at epoch 2 step 6; "):
        trainer.fit(toy_data())
    assert_checkpoint_of_epoch_1_is_intact(trainer, after_epoch_1)


def array_with_one_bad_value(shape, dtype, seed, bad):
    """Normal values plus the largest finite ones; ``bad`` (if not None) at a random place."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    x.flat[0], x.flat[-1] = np.finfo(dtype).max, -np.finfo(dtype).max
    if bad is not None:
        x.flat[rng.integers(x.size)] = bad
    return x


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@settings(max_examples=40, deadline=None)
@given(shape=st.tuples(st.integers(1, 9), st.integers(1, 40)), seed=st.integers(0, 2**32 - 1),
       bad=st.sampled_from([None, np.nan, np.inf, -np.inf]))
def test_finite_check_is_zero_exactly_when_every_element_is_finite(dtype, shape, seed, bad):
    from numpy_vae import ops
    x = array_with_one_bad_value(shape, dtype, seed, bad)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "invalid value" warnings on the way
        check = ops.finite_check(x)
    assert np.shape(check) == () and np.result_type(check) == np.float64
    if bad is None:
        assert check == 0
    else:
        assert np.isnan(check)


def test_parameters_that_overflow_in_the_last_step_of_an_epoch_are_never_saved(tmp_path):
    trainer = trained_one_epoch(tmp_path)
    after_epoch_1 = {k: v.copy() for k, v in trainer.model.params.items()}
    trainer.options.epochs = 2
    real_step = trainer.optimizer.step

    def overflowing_last_update(grads):
        real_step(grads)
        if trainer.optimizer.t == 2 * STEPS_PER_EPOCH:  # finite loss and gradients, then inf
            trainer.model.params["mu.W"][0, 0] = np.inf

    trainer.optimizer.step = overflowing_last_update
    with pytest.raises(TrainingDiverged, match=r"^the parameter mu\.W became non-finite at epoch 2 "
                                               r"step 10; "):
        trainer.fit(toy_data())
    assert_checkpoint_of_epoch_1_is_intact(trainer, after_epoch_1)


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian_learned"])
def test_a_diverging_run_is_stopped_at_its_first_non_finite_loss_and_leaves_a_finite_checkpoint(
        tmp_path, likelihood):
    """Adam at lr = 1e30 moves every weight by ~1e30 in its first step, so the
    second step's float32 loss overflows (seeded: the same step every time).
    (At lr = 1e6 a Bernoulli run's loss stays finite, ~1e29: that is no
    divergence, so it could not show that one is caught.)"""
    trainer = Trainer(toy_model(likelihood=likelihood), options(epochs=3, lr=1e30), tmp_path,
                      quiet=True)
    initial = {name: p.copy() for name, p in trainer.model.params.items()}
    with np.errstate(all="ignore"), pytest.raises(TrainingDiverged) as err:
        trainer.fit(toy_data())
    assert re.fullmatch(r"the loss became (nan|inf) at epoch 1 step 2; "
                        r"try a lower learning rate \(now 1e\+30\)", str(err.value)), str(err.value)
    model, checkpoint = load_model(tmp_path)
    assert checkpoint.epoch == 0  # the one written before the first epoch
    for name, p in model.params.items():
        np.testing.assert_array_equal(p, initial[name], err_msg=name)


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian", "gaussian_learned"])
@pytest.mark.parametrize("inputs", ["scaled by 1e4", "all zeros", "all ones"])
def test_extreme_inputs_keep_every_loss_gradient_and_parameter_finite(likelihood, inputs):
    # scaled by 1e4 the logvar head's outputs reach ~1e4: only the clamp to
    # models.ENCODER_LOGVAR_RANGE keeps exp(logvar) finite
    x = np.random.default_rng(0).random((32, PIXELS)).astype(np.float32)
    x = {"scaled by 1e4": 1e4 * x, "all zeros": 0 * x, "all ones": 0 * x + 1}[inputs]
    model = toy_model(likelihood=likelihood)
    trainer = Trainer(model, options(epochs=3, log_every=1), quiet=True)

    trainer.fit(Dataset(x, np.zeros(32, np.uint8), x[:8], np.zeros(8, np.uint8)))

    assert all(np.isfinite(r["train_loss"]) and np.isfinite(r["test_nelbo"]) for r in trainer.history)
    assert all(np.isfinite(p).all() for p in model.params.values())


# --------------------------------------------------------------------------
# 3. Interruptions while a checkpoint is written
# --------------------------------------------------------------------------

def test_a_failing_rename_keeps_the_previous_checkpoint_and_leaves_no_temporary_file(
        tmp_path, monkeypatch):
    model = toy_model()
    path = save_checkpoint(tmp_path / "checkpoint.npz", model, epoch=1)
    before = path.read_bytes()

    def failing_replace(src, dst):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError):
        save_checkpoint(path, model, epoch=2)

    assert path.read_bytes() == before
    assert load_checkpoint(tmp_path).epoch == 1
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.npz"]


def test_a_process_killed_between_write_and_rename_leaves_the_previous_checkpoint(tmp_path):
    script = textwrap.dedent(f"""
        import os
        from numpy_vae import VAE
        from numpy_vae.checkpoint import save_checkpoint
        model = VAE(input_dim=16, hidden_dims=(8,), latent_dim=2)
        save_checkpoint({str(tmp_path / "checkpoint.npz")!r}, model, epoch=1)
        os.replace = lambda src, dst: os._exit(9)  # killed: the new file is written, not renamed
        save_checkpoint({str(tmp_path / "checkpoint.npz")!r}, model, epoch=2)
    """)
    done = subprocess.run([sys.executable, "-c", script], env=child_env(), capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 9, done.stderr

    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "checkpoint.npz"]
    assert all(name.startswith(".checkpoint.npz.") and name.endswith(".tmp") for name in leftovers)
    assert load_checkpoint(tmp_path).epoch == 1  # the run folder means checkpoint.npz, never a temp file


# --------------------------------------------------------------------------
# 4. Checkpoints from elsewhere
# --------------------------------------------------------------------------

def rewritten_checkpoint(tmp_path, change):
    """A real checkpoint whose arrays ``change(arrays)`` edits in place; its path."""
    path = save_checkpoint(tmp_path / "checkpoint.npz", toy_model(), epoch=1)
    with np.load(path) as npz:
        arrays = {name: npz[name] for name in npz.files}
    change(arrays)
    np.savez(path, **arrays)
    return path


def set_meta(arrays, **changes):
    import json
    meta = json.loads(str(arrays["meta"]))
    meta.update(changes)
    arrays["meta"] = np.array(json.dumps(meta))


@pytest.mark.parametrize("what, change, message", [
    ("missing parameter", lambda a: a.pop("params/mu.W"), r"lacks mu\.W"),
    ("wrong shape", lambda a: a.update({"params/mu.W": np.zeros((16, 5), np.float32)}),
     r"checkpoint has mu\.W of shape \(16, 5\), this model expects \(16, 3\)"),
    ("complex numbers", lambda a: a.update({"params/mu.b": np.zeros(3, np.complex64)}),
     r"'mu\.b' has type complex64, expected numbers"),
    ("text", lambda a: a.update({"params/mu.b": np.array(["a", "b", "c"])}),
     r"'mu\.b' has type <U1, expected numbers"),
    ("another architecture", lambda a: set_meta(a, config={"model": "transformer"}),
     r"cannot rebuild its model .*unknown model kind 'transformer'"),
    ("another size", lambda a: set_meta(a, config=toy_model(hidden_dims=(12,)).config),
     r"checkpoint has encoder\.0\.W of shape \(64, 16\), this model expects \(64, 12\)"),
    ("an argument this version lacks", lambda a: set_meta(a, config={**toy_model().config, "heads": 8}),
     r"cannot rebuild its model"),
    ("a newer format", lambda a: set_meta(a, version=99), r"format version 99"),
    ("no config", lambda a: set_meta(a, config=None), r"has no model config"),
])
def test_a_checkpoint_that_does_not_fit_is_refused_in_one_line(tmp_path, what, change, message):
    path = rewritten_checkpoint(tmp_path, change)
    with pytest.raises(CheckpointError, match=message) as info:
        load_model(path)
    assert "\n" not in str(info.value)


def test_an_optimizer_state_of_the_wrong_shape_cannot_be_resumed(tmp_path):
    trainer = trained_one_epoch(tmp_path)
    path = trainer.checkpoint_path
    with np.load(path) as npz:
        arrays = {name: npz[name] for name in npz.files}
    arrays["optimizer/m.mu.W"] = np.zeros((2, 2), np.float32)
    np.savez(path, **arrays)

    with pytest.raises(CheckpointError, match="optimizer state does not fit"):
        Trainer.from_checkpoint(tmp_path, quiet=True)


def test_checkpoints_are_always_read_with_pickle_disabled(tmp_path, monkeypatch):
    path = save_checkpoint(tmp_path / "checkpoint.npz", toy_model(), epoch=1)
    calls, real_load = [], np.load

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(checkpoint_module.np, "load", spy)
    load_model(path)
    assert calls and all(kwargs.get("allow_pickle") is False for kwargs in calls)


# --------------------------------------------------------------------------
# 5. A hostile environment: read-only or full disks, missing optional packages
# --------------------------------------------------------------------------
# Tests run as root here, where chmod does not stop writes: the faults are
# simulated by making the write itself fail, as the kernel would.

def fail_with(code):
    def failing(*args, **kwargs):
        raise OSError(code, os.strerror(code))
    return failing


def assert_one_error_line(err, *fragments):
    assert err.startswith("numpy-vae: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err, (fragment, err)


def test_a_run_folder_below_a_file_is_one_error_line_before_training(digits, tmp_path, capsys):
    (tmp_path / "a-file").write_text("not a folder")
    code = run_cli("train", "--data-dir", digits, "--run-dir", tmp_path / "a-file" / "run", *SMALL)
    assert code == 1
    assert_one_error_line(capsys.readouterr().err, "cannot create the run folder",
                          str(tmp_path / "a-file" / "run"))


@pytest.mark.parametrize("code, words", [(errno.ENOSPC, "No space left on device"),
                                         (errno.EROFS, "Read-only file system"),
                                         (errno.EACCES, "Permission denied")])
def test_a_checkpoint_that_cannot_be_written_is_one_error_line_before_training(
        digits, tmp_path, monkeypatch, capsys, code, words):
    monkeypatch.setattr(np, "savez", fail_with(code))
    exit_code = run_cli("train", "--data-dir", digits, "--run-dir", tmp_path / "run", *SMALL)
    assert exit_code == 1
    assert_one_error_line(capsys.readouterr().err, "cannot write the checkpoint",
                          str(tmp_path / "run" / "checkpoint.npz"), words)
    assert not list((tmp_path / "run").glob(".checkpoint.npz.*"))  # no temp file left behind


def test_a_disk_that_fills_up_mid_run_keeps_the_last_checkpoint(tmp_path, monkeypatch):
    trainer = trained_one_epoch(tmp_path)
    trainer.options.epochs = 2
    monkeypatch.setattr(tempfile, "mkstemp", fail_with(errno.ENOSPC))
    with pytest.raises(RunFolderError, match=r"cannot write the checkpoint of epoch 2 \(the one of "
                                             r"epoch 1 is intact\) .*: No space left on device"):
        trainer.fit(toy_data())
    assert load_checkpoint(tmp_path).epoch == 1


def test_metrics_that_cannot_be_written_name_the_file(tmp_path, monkeypatch):
    import builtins
    real_open = builtins.open

    def read_only_metrics(file, mode="r", *args, **kwargs):
        if str(file).endswith("metrics.jsonl") and "a" in mode:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(file))
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", read_only_metrics)
    with pytest.raises(RunFolderError, match=r"cannot write .*metrics\.jsonl: Permission denied"):
        trained_one_epoch(tmp_path)
    assert load_checkpoint(tmp_path).epoch == 0  # the one written before training


def run_without(module, argv):
    """The CLI in a child process where ``import module`` fails, as if not installed."""
    script = (f"import sys; sys.modules[{module!r}] = None\n"
              f"from numpy_vae.cli import main\n"
              f"sys.exit(main({[str(a) for a in argv]!r}))")
    return subprocess.run([sys.executable, "-c", script], env=child_env(), capture_output=True,
                          text=True, timeout=120)


def test_without_matplotlib_plot_says_how_to_install_it_in_one_line(digits, tmp_path):
    assert run_cli("train", "--data-dir", digits, "--run-dir", tmp_path / "run", "--epochs", 1,
                   *SMALL) == 0
    done = run_without("matplotlib", ["plot", tmp_path / "run"])
    assert done.returncode == 1
    assert_one_error_line(done.stderr, "matplotlib", 'pip install "numpy-vae[plot]"')


def test_without_numba_its_backend_is_one_error_line(tmp_path):
    done = run_without("numba", ["gradcheck", "--backend", "numba"])
    assert done.returncode == 1
    assert_one_error_line(done.stderr, "backend 'numba'", "numba")
