"""Training with the IWAE objective and Burda et al.'s recipe (numpy_vae/recipes.py, the trainer, the CLI)."""

import json
import math

import numpy as np
import pytest

from numpy_vae import VAE, cli
from numpy_vae.checkpoint import load_checkpoint
from numpy_vae.idx import write_idx
from numpy_vae.recipes import BURDA2015, burda2015_epochs, burda2015_stage, learning_rate
from numpy_vae.train import Dataset, Trainer, TrainOptions, read_metrics

PIXELS = 64


def toy_data(n_train=200, n_test=60, seed=0):
    """8x8 grey 'images' with a bright bar; binarized by the trainer when asked."""
    rng = np.random.default_rng(seed)

    def make(n):
        y = rng.integers(0, 8, n)
        x = 0.3 * rng.random((n, 8, 8))
        x[np.arange(n), y, :] = 0.9
        return x.reshape(n, PIXELS).astype(np.float32), y.astype(np.uint8)

    return Dataset(*make(n_train), *make(n_test))


def toy_model(seed=0):
    return VAE(input_dim=PIXELS, hidden_dims=(16, 16), latent_dim=4, activation="tanh", seed=seed)


def burda_options(**changes):
    """The recipe's optimizer and schedule on toy sizes, IWAE k = 3."""
    return TrainOptions(**{"epochs": 5, "batch_size": 20, "lr": 3e-3, "adam_eps": 1e-4,
                           "lr_schedule": "burda2015", "binarize": "dynamic", "objective": "iwae",
                           "k": 3, "log_every": 4, **changes})


# --------------------------------------------------------------------------
# The schedule
# --------------------------------------------------------------------------

def test_burda_schedule_runs_3_to_the_i_epochs_at_each_rate_for_3280_epochs():
    stages = [burda2015_stage(e) for e in range(burda2015_epochs())]
    assert [stages.count(i) for i in range(8)] == [3 ** i for i in range(8)]
    assert stages == sorted(stages) and burda2015_epochs() == 3280
    assert burda2015_stage(40) == 4 and burda2015_stage(39) == 3  # the first 40 epochs: i <= 3
    assert burda2015_stage(5000) == 7                              # longer runs stay at the last rate
    assert learning_rate("burda2015", 1e-3, 0) == 1e-3
    assert learning_rate("burda2015", 1e-3, 13) == pytest.approx(1e-3 * 10 ** (-3 / 7), rel=1e-15)
    assert learning_rate("burda2015", 1e-3, 3279) == pytest.approx(1e-4, rel=1e-15)
    assert learning_rate("constant", 1e-3, 3279) == 1e-3


def test_the_recipe_is_the_papers_setting():
    assert BURDA2015["model"]["hidden_dims"] == [200, 200] and BURDA2015["model"]["latent_dim"] == 50
    assert BURDA2015["model"]["activation"] == "tanh"
    assert BURDA2015["options"] == dict(epochs=3280, batch_size=20, lr=1e-3, adam_eps=1e-4,
                                        lr_schedule="burda2015", binarize="dynamic")


def test_each_epoch_records_its_learning_rate_and_active_units(tmp_path):
    from numpy_vae.evaluate import active_units
    model = toy_model()
    model.params["mu.W"][...] *= 30          # means that vary with the image: units active
    trainer, data = Trainer(model, burda_options(), tmp_path, quiet=True), toy_data()
    history = trainer.fit(data)
    a, b = 3e-3, 3e-3 * 10 ** (-1 / 7)
    assert [r["lr"] for r in history] == pytest.approx([a, b, b, b, 3e-3 * 10 ** (-2 / 7)], rel=1e-15)
    # T5: the last epoch's count is the trained model's, over the test images
    # (it was 0 <= units <= 4, true of any count)
    variances = active_units(trainer.model, data.x_test)["unit_variances"]
    assert history[-1]["active_units"] == int((variances > 0.01).sum()) > 0, variances
    assert read_metrics(tmp_path) == history


# --------------------------------------------------------------------------
# The objective in the trainer
# --------------------------------------------------------------------------

def test_the_trainer_steps_on_the_iwae_objective_with_k_samples():
    model = toy_model()
    calls = []
    real = model.loss_and_grads

    def recording(x, eps=None, beta=1.0, objective="elbo", k=1):
        calls.append((objective, k))
        return real(x, eps, beta, objective, k)

    model.loss_and_grads = recording
    history = Trainer(model, burda_options(epochs=1), quiet=True).fit(toy_data())
    assert set(calls) == {("iwae", 3)} and len(calls) == 10
    # the bound is at least the average one-sample ELBO of the same samples
    assert history[0]["train_loss"] <= history[0]["train_nelbo"]


def test_the_trainer_builds_adam_with_the_options_epsilon():
    assert Trainer(toy_model(), burda_options(), quiet=True).optimizer.eps == 1e-4


@pytest.mark.parametrize("changes,message", [
    (dict(objective="iwae", k=0), "k must be a positive integer"),
    (dict(objective="elbo", k=5), "need objective='iwae'"),
    (dict(objective="iwea"), "objective must be one of elbo, iwae"),
    (dict(objective="iwae", k=5, kl_warmup=2), "KL warm-up scales the KL term"),
    (dict(lr_schedule="cosine"), "lr_schedule must be one of constant, burda2015"),
    (dict(adam_eps=0), "adam_eps must be positive"),
])
def test_bad_training_options_are_refused(changes, message):
    with pytest.raises(ValueError, match=message):
        TrainOptions(**changes)


# --------------------------------------------------------------------------
# Resuming the recipe exactly
# --------------------------------------------------------------------------

@pytest.mark.parametrize("split", [1, 2, 4], ids=["at-a-boundary", "inside-stage-1", "before-stage-2"])
def test_an_interrupted_and_resumed_recipe_equals_the_uninterrupted_one(tmp_path, split):
    # stages: epoch 1 at i = 0, epochs 2-4 at i = 1, epoch 5 at i = 2
    data = toy_data()
    straight = toy_model()
    straight_history = Trainer(straight, burda_options(), tmp_path / "straight", quiet=True).fit(data)

    Trainer(toy_model(), burda_options(epochs=split), tmp_path / "split", quiet=True).fit(data)
    resumed = Trainer.from_checkpoint(tmp_path / "split", epochs=5, quiet=True)
    resumed_history = resumed.fit(data)

    for name in straight.params:
        np.testing.assert_array_equal(resumed.model.params[name], straight.params[name], err_msg=name)
    drop = lambda records: [{k: v for k, v in r.items() if not k.endswith("time_s")} for r in records]
    assert drop(resumed_history) == drop(straight_history)


# --------------------------------------------------------------------------
# The command line
# --------------------------------------------------------------------------

def write_digits(folder, n_train=60, n_test=30):
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        write_idx(folder / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        write_idx(folder / f"{prefix}-labels-idx1-ubyte", rng.integers(0, 10, n, dtype=np.uint8))
    return folder


def run_cli(*argv):
    try:
        return cli.main([str(a) for a in argv])
    except SystemExit as stop:
        return stop.code


def test_train_recipe_sets_the_papers_model_and_options_and_epochs_cuts_it_short(tmp_path, capsys):
    data = write_digits(tmp_path / "digits")
    code = run_cli("train", "--recipe", "burda2015", "--objective", "iwae", "--k", "2", "--epochs", "2",
                   "--data-dir", data, "--run-dir", tmp_path / "run", "--quiet")
    assert code == 0, capsys.readouterr().err
    checkpoint = load_checkpoint(tmp_path / "run")
    assert checkpoint.config["hidden_dims"] == [200, 200] and checkpoint.config["latent_dim"] == 50
    assert checkpoint.config["activation"] == "tanh"
    assert checkpoint.optimizer["eps"] == 1e-4
    assert {k: checkpoint.options[k] for k in ("epochs", "batch_size", "lr_schedule", "binarize",
                                                "objective", "k")} == dict(
        epochs=2, batch_size=20, lr_schedule="burda2015", binarize="dynamic", objective="iwae", k=2)
    lrs = [r["lr"] for r in read_metrics(tmp_path / "run")]
    assert lrs == pytest.approx([1e-3, 1e-3 * 10 ** (-1 / 7)], rel=1e-15)


@pytest.mark.parametrize("argv,message", [
    (["train", "--recipe", "burda2015", "--hidden-dims", "400"], "--hidden-dims cannot be given with --recipe"),
    (["train", "--k", "5"], "--k 5 needs --objective iwae"),
    (["train", "--objective", "iwae", "--k", "5", "--kl-warmup", "2"], "--kl-warmup scales the KL term"),
    (["gradcheck", "--objective", "iwae", "--beta", "0.5"], "--beta is not defined for --objective iwae"),
])
def test_contradicting_options_get_argparses_message(argv, message, capsys):
    assert run_cli(*argv) == 2
    assert message in capsys.readouterr().err


def test_gradcheck_checks_the_iwae_objective(capsys):
    code = run_cli("gradcheck", "--objective", "iwae", "--k", "3", "--hidden-dims", "8",
                   "--latent-dim", "2", "--activation", "tanh", "--max-elements", "5")
    out = capsys.readouterr().out
    assert code == 0, out
    assert "IWAE objective with k=3" in out and "all 10 parameter arrays pass" in out


@pytest.mark.parametrize("binarize,likelihood,says", [
    ("dynamic", "bernoulli", ["binarized MNIST: the test set drawn once as Bernoulli(pixel) with seed 0",
                              "comparable with published numbers"]),
    ("none", "bernoulli", ["a bound on a grey-level objective, not a log-likelihood",
                           "[grey-level-bernoulli: not comparable with papers]"]),
    ("none", "gaussian", ["no dequantization", "bits/dim)"]),
])
def test_evaluate_states_the_protocol_of_its_numbers_and_the_active_units(tmp_path, capsys, binarize,
                                                                          likelihood, says):
    data = write_digits(tmp_path / "digits")
    assert run_cli("train", "--hidden-dims", "8", "--latent-dim", "2", "--epochs", "1",
                   "--binarize", binarize, "--likelihood", likelihood, "--data-dir", data,
                   "--run-dir", tmp_path / "run", "--quiet") == 0
    capsys.readouterr()
    assert run_cli("evaluate", tmp_path / "run", "--iwae-k", "3", "--test-images", "20", "--quiet") == 0
    out = capsys.readouterr().out
    for text in says:
        assert text in out
    assert "test set: 20 images" in out
    assert "active units: " in out and " of 2 (Var_x E_q[z_u] > 0.01" in out
    record = json.loads((tmp_path / "run" / "evaluation.jsonl").read_text().splitlines()[-1])
    assert record["comparable_with_papers"] == (binarize == "dynamic")
    assert 0 <= record["active_units"] <= 2
    assert record["test_images"] == 20
