"""Each model kind says what it supports (models.py: ``supports``, ``require``,
``check_training``), and the trainer, the evaluation and the command line
ask it: an option a model cannot honour is refused before any work instead
of crashing after an epoch, being dropped in silence, or mislabelling a number.
"""

import json

import numpy as np
import pytest

from numpy_vae import gradcheck
from numpy_vae.conv_vae import ConvVAE
from numpy_vae.cvae import ConditionalVAE
from numpy_vae.dataset import load_dataset
from numpy_vae.evaluate import evaluate_model, protocol
from numpy_vae.factory import MODEL_KINDS
from numpy_vae.models import FEATURES, VAE, Autoencoder, UnsupportedError
from numpy_vae.runs import METRICS_NAME
from numpy_vae.train import Trainer, TrainOptions
from numpy_vae.vqvae import VQVAE
from test_cli import run_cli, write_digits

SMALL = ["--hidden-dims", "16", "--latent-dim", "2", "--batch-size", "64", "--subset", "128"]
VQ_SMALL = ["--hidden-dims", "16", "--n-slots", "2", "--slot-dim", "2", "--n-codes", "4",
            "--batch-size", "64", "--subset", "128"]


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    return write_digits(tmp_path_factory.mktemp("data") / "digits")


def small(kind, **kw):
    if kind is VQVAE:
        return VQVAE(12, (8,), n_slots=2, slot_dim=2, n_codes=4, **kw)
    if kind is ConditionalVAE:
        return ConditionalVAE(12, (8,), latent_dim=2, n_classes=3, **kw)
    return kind(12, (8,), latent_dim=2, **kw)


def toy(n=64, seed=0):
    rng = np.random.default_rng(seed)
    return ((rng.random((n, 12)) < 0.5).astype(np.float32), rng.integers(0, 3, n))


class _Data:
    def __init__(self, n=64):
        self.x_train, self.y_train = toy(n, 0)
        self.x_test, self.y_test = toy(32, 1)
        self.binarize = "none"


def test_every_model_kind_answers_for_every_feature_and_explains_a_refusal():
    for name, kind in MODEL_KINDS.items():
        for feature in FEATURES:
            if kind.supports(feature):
                kind.require(feature)
            else:
                with pytest.raises(UnsupportedError, match=kind.__name__) as err:
                    kind.require(feature)
                assert err.value.feature == feature and ": " in str(err.value)
    assert VAE.supports("iwae_bound") and ConvVAE.supports("iwae_objective")
    assert not ConditionalVAE.supports("iwae_bound") and not VQVAE.supports("kl_weight")
    assert not Autoencoder.supports("iwae_objective")
    with pytest.raises(KeyError):
        VAE.supports("flying")


# --- defect 4: the API loses the objective ------------------------------------

@pytest.mark.parametrize("kind", [ConditionalVAE, VQVAE])
def test_a_trainer_refuses_an_objective_the_model_does_not_train_on(kind):
    """Was: a CVAE trained the ELBO in silence; a VQ-VAE raised TypeError mid-fit."""
    model = small(kind)
    with pytest.raises(UnsupportedError, match="importance-weighted"):
        Trainer(model, TrainOptions(objective="iwae", k=5, epochs=1), quiet=True)


@pytest.mark.parametrize("kind", [ConditionalVAE, VQVAE])
def test_the_training_step_itself_refuses_an_objective_it_does_not_have(kind):
    model = small(kind, dtype="float64")
    x, y = toy(8)
    args = (x, y) if model.conditional else (x,)
    with pytest.raises(UnsupportedError):
        model.loss_and_grads(*args, objective="iwae", k=3)


def test_evaluate_model_takes_the_labels_of_a_conditional_vae():
    """Was: evaluate_model had no y, so on a CVAE it always raised 'pass y'."""
    model = small(ConditionalVAE)
    x, y = toy(32)
    result = evaluate_model(model, x, y=y)
    assert np.isfinite(result["nelbo"]) and result["nelbo"] == pytest.approx(
        result["recon"] + result["kl"])
    with pytest.raises(UnsupportedError):
        evaluate_model(model, x, y=y, iwae_k=5)


# --- defect 1 and 8: refused before any work ---------------------------------

@pytest.mark.parametrize("kind, options", [
    (ConditionalVAE, dict(eval_iwae_k=5)), (VQVAE, dict(eval_iwae_k=5)),
    (VQVAE, dict(kl_warmup=5.0))])
def test_a_trainer_refuses_before_training_what_would_fail_or_be_ignored_after_an_epoch(
        kind, options, tmp_path):
    """Was: eval_iwae_k on a CVAE or VQ-VAE crashed after the epoch's work, and
    kl_warmup on a VQ-VAE printed a beta it ignores."""
    with pytest.raises(UnsupportedError):
        Trainer(small(kind), TrainOptions(epochs=1, batch_size=16, **options), tmp_path / "run",
                quiet=True)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("model, flags", [("cvae", SMALL), ("vqvae", VQ_SMALL)])
def test_eval_iwae_k_on_a_model_without_the_bound_is_one_line_and_no_run_folder(
        digits, tmp_path, capsys, model, flags):
    """Defect 1 from the command line: was a traceback after a full epoch."""
    run = tmp_path / "run"
    assert run_cli("train", "--model", model, *flags, "--epochs", "1", "--eval-iwae-k", "5",
                   "--data-dir", digits, "--run-dir", run, "--quiet") == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "--eval-iwae-k: the importance-weighted bound" in err
    assert not run.exists()


def test_resume_with_eval_iwae_k_on_a_cvae_is_one_line_and_leaves_the_run_as_it_was(
        digits, tmp_path, capsys):
    run = tmp_path / "run"
    assert run_cli("train", "--model", "cvae", *SMALL, "--epochs", "1", "--data-dir", digits,
                   "--run-dir", run, "--quiet") == 0
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    capsys.readouterr()
    assert run_cli("train", "--resume", run, "--epochs", "2", "--eval-iwae-k", "5", "--quiet") == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "--eval-iwae-k" in err
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before


def test_vqvae_kl_warmup_is_refused_on_the_command_line(digits, tmp_path, capsys):
    assert run_cli("train", "--model", "vqvae", *VQ_SMALL, "--kl-warmup", "5", "--data-dir", digits,
                   "--run-dir", tmp_path / "run") == 2
    assert "--kl-warmup: a KL weight beta" in capsys.readouterr().err


# --- defect 3: a CVAE's bound is not comparable with papers -------------------

def test_a_conditional_vaes_evaluation_is_not_labelled_comparable_with_papers(digits, tmp_path,
                                                                             capsys):
    assert not protocol("bernoulli", "dynamic", 0, conditional=True)["comparable"]
    assert protocol("bernoulli", "dynamic", 0)["comparable"]
    run = tmp_path / "run"
    assert run_cli("train", "--model", "cvae", *SMALL, "--epochs", "1", "--binarize", "dynamic",
                   "--data-dir", digits, "--run-dir", run, "--quiet") == 0
    capsys.readouterr()
    assert run_cli("evaluate", run, "--iwae-k", "0", "--quiet") == 0
    out = capsys.readouterr().out
    assert "comparable with published numbers" not in out and "-log p(x | y)" in out
    record = json.loads((run / "evaluation.jsonl").read_text().splitlines()[-1])
    assert record["comparable_with_papers"] is False and record["protocol"] == "conditional"


# --- defect 2: one binarized test set, whatever the dtype --------------------

def test_the_binarized_test_set_is_the_same_in_float32_and_float64(digits):
    a = load_dataset(digits, binarize_mode="dynamic", dtype="float32", quiet=True).x_test
    b = load_dataset(digits, binarize_mode="dynamic", dtype="float64", quiet=True).x_test
    assert a.dtype == np.float32 and b.dtype == np.float64
    assert 0 < a.mean() < 1
    np.testing.assert_array_equal(a, b.astype(np.float32))


def test_every_grey_level_rounds_to_the_same_float32_from_either_dtype():
    """What makes the draw dtype-free: k/255 in float32 is float64's k/255 rounded."""
    k = np.arange(256, dtype=np.uint8)
    np.testing.assert_array_equal(k.astype(np.float32) / np.float32(255),
                                  (k.astype(np.float64) / 255).astype(np.float32))


# --- defect 7: a torn last line of metrics.jsonl -----------------------------

def test_a_torn_last_metrics_line_does_not_block_resume(digits, tmp_path, capsys):
    run = tmp_path / "run"
    assert run_cli("train", *SMALL, "--epochs", "1", "--data-dir", digits, "--run-dir", run,
                   "--quiet") == 0
    metrics = run / METRICS_NAME
    metrics.write_text(metrics.read_text() + '{"epoch": 2, "train_lo')  # a write cut short
    capsys.readouterr()
    assert run_cli("train", "--resume", run, "--epochs", "2", "--quiet") == 0
    records = [json.loads(line) for line in metrics.read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2]


def test_a_damaged_metrics_line_before_the_last_is_one_error_line(digits, tmp_path, capsys):
    run = tmp_path / "run"
    assert run_cli("train", *SMALL, "--epochs", "2", "--data-dir", digits, "--run-dir", run,
                   "--quiet") == 0
    metrics = run / METRICS_NAME
    lines = metrics.read_text().splitlines()
    metrics.write_text("garbage\n" + "\n".join(lines[1:]) + "\n")
    capsys.readouterr()
    assert run_cli("train", "--resume", run, "--epochs", "3", "--quiet") == 1
    err = capsys.readouterr().err
    assert err.startswith("numpy-vae: error: ") and "line 1" in err and "Traceback" not in err


def test_resuming_an_old_vqvae_run_saved_with_kl_warmup_drops_it_with_a_note(tmp_path):
    model = small(VQVAE)
    trainer = Trainer(model, TrainOptions(epochs=1, batch_size=16), tmp_path / "run", quiet=True)
    trainer.fit(_Data())
    saved = json.loads(json.dumps(trainer.options.to_dict()))
    # what an older version let through and saved
    from numpy_vae.checkpoint import load_checkpoint, save_checkpoint
    ckpt = load_checkpoint(tmp_path / "run" / "checkpoint.npz")
    save_checkpoint(tmp_path / "run" / "checkpoint.npz", model, trainer.optimizer, epoch=ckpt.epoch,
                    rng_states=ckpt.rng_states, options=dict(saved, kl_warmup=5.0))
    resumed = Trainer.from_checkpoint(tmp_path / "run", epochs=2, quiet=True)
    assert resumed.options.kl_warmup == 0.0
    resumed.fit(_Data())
    assert resumed.epoch == 2


# --- gradcheck covers every model kind the CLI trains --------------------------

@pytest.mark.parametrize("argv", [
    ["--model", "mlp", "--activation", "tanh"],
    ["--model", "mlp", "--activation", "tanh", "--objective", "iwae", "--k", "3"],
    ["--model", "conv", "--channels", "2,3", "--latent-dim", "2", "--activation", "tanh"],
    ["--model", "conv", "--channels", "2,3", "--latent-dim", "2", "--activation", "tanh",
     "--objective", "iwae", "--k", "2"],
    ["--model", "cvae", "--activation", "tanh"],
    ["--model", "cvae", "--activation", "tanh", "--beta", "0.5"],
    ["--model", "vqvae", "--activation", "tanh"],
    ["--model", "vqvae", "--activation", "tanh", "--codebook-update", "gradient"],
])
def test_gradcheck_checks_every_model_kind_and_objective(argv, capsys):
    size = [] if "conv" in argv else ["--hidden-dims", "12", "--latent-dim", "3"]
    if "vqvae" in argv:
        size = ["--hidden-dims", "12", "--n-slots", "3", "--slot-dim", "2", "--n-codes", "5"]
    assert run_cli("gradcheck", *argv, *size, "--max-elements", "6") == 0
    out = capsys.readouterr().out
    assert "parameter arrays pass" in out


@pytest.mark.parametrize("kind", ["cvae", "vqvae"])
def test_gradcheck_of_the_new_kinds_fails_on_a_wrong_backward_pass(kind, monkeypatch, capsys):
    """A flipped sign in the encoder's gradient: the check must catch it for
    the CVAE (against its loss) and the VQ-VAE (against its surrogate)."""
    from numpy_vae.layers import Linear
    backward = Linear.backward

    def wrong(self, dout):
        dx = backward(self, dout)
        if self.params["W"].shape[0] == 784 + (10 if kind == "cvae" else 0):
            self.grads["W"] *= -1
        return dx

    monkeypatch.setattr(Linear, "backward", wrong)
    size = (["--hidden-dims", "12", "--latent-dim", "3"] if kind == "cvae" else
            ["--hidden-dims", "12", "--n-slots", "3", "--slot-dim", "2", "--n-codes", "5"])
    assert run_cli("gradcheck", "--model", kind, "--activation", "tanh", *size,
                   "--max-elements", "6") == 1
    assert "gradient check failed: encoder.0.W" in capsys.readouterr().err


def test_check_model_uses_a_models_gradient_targets(rng):
    """EMA mode: the codebook's gradient is zero by design, and its target is constant."""
    model = VQVAE(6, (5,), n_slots=2, slot_dim=2, n_codes=3, activation="tanh", dtype="float64")
    errors = gradcheck.check_model(model, rng.random((4, 6)), skip_kinks=True)
    assert max(errors.values()) < 1e-6, gradcheck.format_table(errors)
