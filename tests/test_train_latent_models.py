"""The trainer with the conditional VAE and the VQ-VAE (numpy_vae/train.py):
each batch gets its own labels, the VQ-VAE's per-step update and epoch
metrics happen, and a resumed run is the uninterrupted one, bit for bit,
buffers included."""

import numpy as np
import pytest

from numpy_vae.checkpoint import load_model
from numpy_vae.cvae import ConditionalVAE
from numpy_vae.train import Trainer, read_metrics
from numpy_vae.vqvae import VQVAE

from test_train import PIXELS, assert_same_params, options, toy_data, without_times


def toy_cvae(seed=0):
    return ConditionalVAE(input_dim=PIXELS, hidden_dims=(32,), latent_dim=4, n_classes=8, seed=seed)


def toy_vqvae(seed=0, restart_every=4):
    return VQVAE(input_dim=PIXELS, hidden_dims=(32,), n_slots=3, slot_dim=2, n_codes=16,
                 restart_every=restart_every, seed=seed)


def test_each_batch_reaches_the_cvae_with_its_own_labels():
    """In the toy data the label is the row of the bright bar: check every batch."""
    model = toy_cvae()
    seen = []
    original = model.loss_and_grads

    def spy(x, y, eps=None, beta=1.0):
        bar_rows = np.asarray(x).reshape(-1, 8, 8).mean(axis=2).argmax(axis=1)
        seen.append(bool(np.all(bar_rows == np.asarray(y))))
        return original(x, y, eps=eps, beta=beta)

    model.loss_and_grads = spy
    history = Trainer(model, options(epochs=2), quiet=True).fit(toy_data())
    assert len(seen) == 2 * 10 and all(seen)
    assert history[-1]["test_nelbo"] == pytest.approx(history[-1]["test_recon"] + history[-1]["test_kl"])


def test_vqvae_epochs_report_codebook_usage_and_checkpoints_hold_a_fitted_prior(tmp_path):
    model = toy_vqvae()
    history = Trainer(model, options(epochs=2), tmp_path / "run", quiet=True).fit(toy_data())
    for record in history:
        assert 1.0 <= record["perplexity"] <= 16 and 0 <= record["dead_codes"] <= 16
    assert [r["perplexity"] for r in read_metrics(tmp_path / "run")] == [r["perplexity"] for r in history]
    assert int(model.buffers["steps"][0]) == 2 * 10        # after_step after every step
    loaded, _ = load_model(tmp_path / "run")
    assert loaded.buffers["prior_counts"].sum() == 3 * (300 + 16)   # 300 images, plus one per code
    np.testing.assert_array_equal(loaded.prior(), model.prior())


@pytest.mark.parametrize("make", [toy_cvae, toy_vqvae], ids=["cvae", "vqvae"])
def test_a_resumed_run_ends_exactly_where_the_uninterrupted_run_does(tmp_path, make):
    data = toy_data()
    straight = make()
    straight_history = Trainer(straight, options(epochs=3), tmp_path / "straight", quiet=True).fit(data)

    Trainer(make(), options(epochs=1), tmp_path / "split", quiet=True).fit(data)
    resumed = Trainer.from_checkpoint(tmp_path / "split", epochs=3, quiet=True)
    resumed_history = resumed.fit(data)

    assert_same_params(resumed.model, straight)
    for name, buffer in getattr(straight, "buffers", {}).items():
        np.testing.assert_array_equal(resumed.model.buffers[name], buffer, err_msg=name)
    assert without_times(resumed_history) == without_times(straight_history)
