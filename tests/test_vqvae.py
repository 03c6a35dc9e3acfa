"""Specification of the VQ-VAE (numpy_vae/vqvae.py).

Every part of the training step that has a true gradient is checked against
finite differences: the decoder (the loss as it is), the codebook (the
codebook term, its only teacher) and the encoder (the loss with the
straight-through path replaced by the identity, i.e. the surrogate
z_q = z_e + sg[z_q - z_e]).  Then the bookkeeping: usage counts,
perplexity, dead-code restarts, the code prior, checkpoints.
"""

import math

import numpy as np
import pytest

from numpy_vae import gradcheck
from numpy_vae.checkpoint import CheckpointError, load_buffers, load_model, save_checkpoint
from numpy_vae.factory import build_model
from numpy_vae.vqvae import VQVAE, perplexity

INPUT, HIDDEN, SLOTS, DIM, CODES, BATCH = 12, (9,), 3, 2, 5, 6
H = 1e-5


def small_vqvae(likelihood="bernoulli", activation="tanh", hidden=HIDDEN, beta_commit=0.25,
                seed=0, dtype="float64", restart_every=0, update="gradient"):
    model = VQVAE(INPUT, hidden, n_slots=SLOTS, slot_dim=DIM, n_codes=CODES, beta_commit=beta_commit,
                  restart_every=restart_every, codebook_update=update, likelihood=likelihood,
                  activation=activation, dtype=dtype, seed=seed)
    # codes spread like the encoder outputs, so that several are in use
    model.params["quantizer.codebook"][...] = np.random.default_rng(seed).standard_normal((CODES, DIM)) * 0.5
    model.buffers["ema_sums"][...] = model.params["quantizer.codebook"]
    return model


def small_batch(likelihood, rng):
    x = rng.random((BATCH, INPUT))
    return (x < 0.5).astype(np.float64) if likelihood == "bernoulli" else x


def code_margin(model, x):
    """Smallest gap between nearest and second-nearest squared distance over all slots."""
    z_e = model._z_e(x).reshape(-1, DIM)
    codebook = model.params["quantizer.codebook"]
    sq = np.sort(((z_e[:, None, :] - codebook[None]) ** 2).sum(axis=2), axis=1)
    return float((sq[:, 1] - sq[:, 0]).min())


def analytic_grads(model, x):
    _, grads, _ = model.loss_and_grads(x)
    return {name: np.array(g) for name, g in grads.items()}


CASES = [("bernoulli", "tanh", 0.25), ("gaussian", "softplus", 1.0), ("gaussian_learned", "sigmoid", 0.5)]


@pytest.mark.parametrize("update", ["gradient", "ema"])
@pytest.mark.parametrize("likelihood,activation,beta_commit", CASES)
def test_decoder_gradient_matches_finite_differences_of_the_loss(likelihood, activation, beta_commit,
                                                                 update, rng):
    """The decoder sits after the quantization: its gradient is the true one."""
    model = small_vqvae(likelihood, activation, beta_commit=beta_commit, update=update)
    x = small_batch(likelihood, rng)
    assert code_margin(model, x) > 1e-3   # no code changes within the step
    analytic = analytic_grads(model, x)

    def f():
        return float(model.loss(x))

    for name in (n for n in model.params if n.startswith("decoder.")):
        numeric = gradcheck.numerical_gradient(f, model.params[name], H)
        assert gradcheck.relative_error(analytic[name], numeric, 1e-8) < 1e-6, name


@pytest.mark.parametrize("likelihood,activation,beta_commit", CASES)
def test_codebook_gradient_matches_finite_differences_of_the_codebook_term(likelihood, activation,
                                                                           beta_commit, rng):
    """The codebook learns from ||sg[z_e] - e||^2 alone, whose value is info["vq"]."""
    model = small_vqvae(likelihood, activation, beta_commit=beta_commit)
    x = small_batch(likelihood, rng)
    assert code_margin(model, x) > 1e-3
    analytic = analytic_grads(model, x)["quantizer.codebook"]

    def codebook_term():
        return float(model.loss_and_grads(x)[2]["vq"])

    numeric = gradcheck.numerical_gradient(codebook_term, model.params["quantizer.codebook"], H)
    assert np.abs(analytic).max() > 1e-2
    assert gradcheck.relative_error(analytic, numeric, 1e-8) < 1e-6


@pytest.mark.parametrize("update", ["gradient", "ema"])
@pytest.mark.parametrize("likelihood,activation,beta_commit", CASES)
@pytest.mark.parametrize("hidden", [HIDDEN, ()], ids=["hidden", "no-hidden"])
def test_encoder_gradient_matches_finite_differences_of_the_surrogate(likelihood, activation,
                                                                     beta_commit, hidden, update, rng):
    """Straight-through replaced by the identity: with the codes and the
    offset c = z_q - z_e frozen at the current point,

        surrogate(theta) = mean_n [ recon(decoder(z_e + c)) + beta_commit * ||z_e - z_q||^2 ]

    (the codebook term sends nothing to the encoder: sg[z_e]).  Its finite
    differences are the encoder's gradient, whichever way the codebook learns."""
    model = small_vqvae(likelihood, activation, hidden=hidden, beta_commit=beta_commit, update=update)
    x = small_batch(likelihood, rng)
    assert code_margin(model, x) > 1e-3
    analytic = analytic_grads(model, x)
    z_e0 = model._z_e(x)
    _, z_q0 = model.quantizer.quantize(z_e0)
    offset = z_q0 - z_e0

    def surrogate():
        z_e = model._z_e(x)
        out = model.decoder.forward((z_e + offset).reshape(BATCH, SLOTS * DIM))
        commit = ((z_e - z_q0) ** 2).sum(axis=(1, 2))
        return float((model.likelihood.nll(out, x) + beta_commit * commit).mean())

    encoder_side = [n for n in model.params if n.startswith(("encoder.", "slots."))]
    assert encoder_side
    for name in encoder_side:
        numeric = gradcheck.numerical_gradient(surrogate, model.params[name], H)
        assert gradcheck.relative_error(analytic[name], numeric, 1e-8) < 1e-6, name


def test_the_loss_itself_is_flat_along_the_reconstruction_path(rng):
    """Why the straight-through estimator is needed: the true derivative of
    the reconstruction term in the encoder's weights is zero (no code moves),
    yet the encoder does receive a gradient from it."""
    model = small_vqvae(beta_commit=0.0)
    x = small_batch("bernoulli", rng)
    assert code_margin(model, x) > 1e-3
    analytic = analytic_grads(model, x)["slots.W"]

    def recon():
        return float(model.loss_and_grads(x)[2]["recon"])

    true = gradcheck.numerical_gradient(recon, model.params["slots.W"], H)
    assert np.all(true == 0)
    assert np.abs(analytic).max() > 1e-3


def test_loss_is_recon_plus_one_plus_beta_times_the_squared_distance(rng):
    model = small_vqvae(beta_commit=0.4)
    x = small_batch("bernoulli", rng)
    loss, _, info = model.loss_and_grads(x)
    assert abs(float(loss) - (float(info["recon"]) + 1.4 * float(info["vq"]))) < 1e-12
    assert abs(float(model.loss(x)) - float(loss)) < 1e-12
    assert float(info["kl"]) == pytest.approx(SLOTS * math.log(CODES))
    recon, kl = model.terms(x)
    assert float(recon.mean()) == pytest.approx(float(info["recon"]), abs=1e-12)
    np.testing.assert_allclose(kl, SLOTS * math.log(CODES))


def test_ema_mode_drops_the_codebook_term_and_leaves_the_codebook_to_the_update(rng):
    model = small_vqvae(beta_commit=0.4, update="ema")
    x = small_batch("bernoulli", rng)
    loss, grads, info = model.loss_and_grads(x)
    assert abs(float(loss) - (float(info["recon"]) + 0.4 * float(info["vq"]))) < 1e-12
    assert abs(float(model.loss(x)) - float(loss)) < 1e-12
    assert np.all(grads["quantizer.codebook"] == 0)


def test_one_ema_update_follows_the_formula(rng):
    gamma = 0.9
    model = VQVAE(INPUT, HIDDEN, n_slots=SLOTS, slot_dim=DIM, n_codes=CODES, restart_every=0,
                  codebook_update="ema", ema_decay=gamma, dtype="float64")
    counts0 = model.buffers["ema_counts"].copy()
    sums0 = model.buffers["ema_sums"].copy()
    x = small_batch("bernoulli", rng)
    model.loss_and_grads(x)
    z_e = model._z_e(x).reshape(-1, DIM)
    codes = model.quantizer.codes.reshape(-1)
    model.after_step()
    for k in range(CODES):
        mine = codes == k
        n_k, s_k = mine.sum(), z_e[mine].sum(axis=0)
        expected_n = gamma * counts0[k] + (1 - gamma) * n_k
        expected_s = gamma * sums0[k] + (1 - gamma) * s_k
        assert model.buffers["ema_counts"][k] == pytest.approx(expected_n, rel=1e-12)
        np.testing.assert_allclose(model.buffers["ema_sums"][k], expected_s, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(model.params["quantizer.codebook"][k], expected_s / (expected_n + 1e-5),
                                   rtol=1e-12)


def test_ema_moves_each_used_code_to_the_mean_of_its_encoder_outputs(rng):
    model = small_vqvae(update="ema")
    x = small_batch("bernoulli", rng)
    for _ in range(3000):   # the same batch: the assignments settle, the means converge
        model.loss_and_grads(x)
        model.after_step()
    z_e = model._z_e(x).reshape(-1, DIM)
    codes = model.encode(x).reshape(-1)
    for k in np.unique(codes):
        np.testing.assert_allclose(model.params["quantizer.codebook"][k], z_e[codes == k].mean(axis=0),
                                   atol=1e-4)


def test_codes_are_counted_and_usage_reports_perplexity_and_dead_codes(rng):
    model = small_vqvae()
    x = small_batch("bernoulli", rng)
    model.loss_and_grads(x)
    model.loss_and_grads(x)
    codes = model.encode(x)
    expected = 2 * np.bincount(codes.reshape(-1), minlength=CODES)
    np.testing.assert_array_equal(model.buffers["code_counts"], expected)
    usage = model.usage()
    assert usage["dead_codes"] == int((expected == 0).sum())
    assert usage["perplexity"] == pytest.approx(perplexity(expected))
    assert np.all(model.buffers["code_counts"] == 0)   # reset


def test_perplexity_is_the_number_of_equally_used_codes():
    assert perplexity([5, 5, 5, 5]) == pytest.approx(4.0)
    assert perplexity([7, 0, 0, 0]) == pytest.approx(1.0)
    assert perplexity([3, 3, 0, 0]) == pytest.approx(2.0)
    assert 2.0 < perplexity([1, 2, 3]) < 3.0
    assert perplexity([0, 0]) == 0.0


def test_a_dead_code_is_restarted_onto_an_encoder_output_and_then_used(rng):
    model = small_vqvae(restart_every=2)
    x = small_batch("bernoulli", rng)
    codebook = model.params["quantizer.codebook"]
    codebook[4] = 100.0                       # far from everything: never chosen
    assert model.after_step() == 0            # step 1: no restart yet
    model.loss_and_grads(x)
    assert 4 not in model.encode(x)
    dead_before = int((model.buffers["restart_counts"] == 0).sum())
    restarted = model.after_step()            # step 2: restart
    assert restarted == dead_before >= 1
    assert np.all(model.buffers["restart_counts"] == 0)           # counting starts afresh
    rows = model._z_e(x).reshape(-1, DIM)
    assert np.min(np.abs(rows - codebook[4]).sum(axis=1)) == 0   # code 4 now is an encoder output
    model.loss_and_grads(x)
    assert np.all(model.buffers["restart_counts"][np.unique(model.encode(x))] > 0)
    assert model.buffers["steps"][0] == 2


def test_no_restarts_when_turned_off(rng):
    model = small_vqvae(restart_every=0)
    model.params["quantizer.codebook"][4] = 100.0
    model.loss_and_grads(small_batch("bernoulli", rng))
    for _ in range(5):
        assert model.after_step() == 0
    assert np.all(model.params["quantizer.codebook"][4] == 100.0)


def test_fitted_prior_holds_each_slots_code_frequencies(rng):
    model = small_vqvae()
    x = small_batch("bernoulli", rng)
    np.testing.assert_allclose(model.prior(), 1.0 / CODES)   # uniform before fitting
    prior = model.fit_prior(x, batch_size=4)
    codes = model.encode(x)
    for j in range(SLOTS):
        expected = (np.bincount(codes[:, j], minlength=CODES) + 1) / (BATCH + CODES)
        np.testing.assert_allclose(prior[j], expected)
    np.testing.assert_allclose(model.log_prior(codes), np.log(prior[np.arange(SLOTS), codes]).sum(axis=1))


def test_sampled_codes_follow_the_prior(rng):
    model = small_vqvae()
    counts = np.zeros((SLOTS, CODES), dtype=np.int64)
    counts[0] = [1, 0, 0, 0, 0]          # slot 0: always code 0
    counts[1] = [0, 0, 0, 0, 1]          # slot 1: always the last code
    counts[2] = [1, 1, 0, 0, 2]          # slot 2: 1/4, 1/4, 0, 0, 1/2
    model.buffers["prior_counts"][...] = counts
    codes = model.sample_codes(4000)
    assert codes.shape == (4000, SLOTS)
    assert np.all(codes[:, 0] == 0) and np.all(codes[:, 1] == CODES - 1)
    freq = np.bincount(codes[:, 2], minlength=CODES) / 4000
    np.testing.assert_allclose(freq, [0.25, 0.25, 0, 0, 0.5], atol=0.03)   # 4 sigma is 0.03
    assert model.sample(3).shape == (3, INPUT)


def test_decode_refuses_bad_codes():
    model = small_vqvae()
    with pytest.raises(ValueError, match=r"codes must be in \[0, 5\), got values from 0 to 5"):
        model.decode(np.array([[0, 1, 5]]))
    with pytest.raises(ValueError, match=r"expected codes of shape \(batch, 3\)"):
        model.decode(np.array([[0, 1]]))
    with pytest.raises(ValueError, match="codes must be integers"):
        model.decode(np.array([[0.0, 1.0, 2.0]]))


def test_checkpoint_round_trip_keeps_parameters_and_buffers(tmp_path, rng):
    model = small_vqvae(dtype="float32", restart_every=3)
    x = small_batch("bernoulli", rng).astype(np.float32)
    for _ in range(4):
        model.loss_and_grads(x)
        model.after_step()
    model.fit_prior(x)
    save_checkpoint(tmp_path / "ck.npz", model)
    loaded, _ = load_model(tmp_path / "ck.npz")
    assert isinstance(loaded, VQVAE) and loaded.config == model.config
    for name in model.buffers:
        np.testing.assert_array_equal(loaded.buffers[name], model.buffers[name], err_msg=name)
    assert loaded.buffers["steps"][0] == 4 and loaded.buffers["prior_counts"].sum() > 0
    np.testing.assert_array_equal(loaded.encode(x), model.encode(x))
    np.testing.assert_array_equal(loaded.prior(), model.prior())
    assert isinstance(build_model(model.config), VQVAE)


def test_buffers_of_another_shape_are_refused(rng):
    model = small_vqvae()
    other = VQVAE(INPUT, HIDDEN, n_slots=SLOTS, slot_dim=DIM, n_codes=CODES + 1)
    with pytest.raises(CheckpointError, match="buffer code_counts of shape"):
        load_buffers(model, {k: np.asarray(v) for k, v in other.buffers.items()})
    with pytest.raises(CheckpointError, match="do not fit"):
        load_buffers(model, {})


@pytest.mark.parametrize("kwargs,message", [
    (dict(n_codes=1), "n_codes >= 2"), (dict(n_slots=0), "n_slots >= 1"),
    (dict(beta_commit=-1.0), "beta_commit must be >= 0"), (dict(restart_every=-1), "restart_every"),
    (dict(codebook_update="kmeans"), "codebook_update must be 'ema' or 'gradient'"),
    (dict(ema_decay=1.0), r"ema_decay must be in \(0, 1\)")])
def test_bad_sizes_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        VQVAE(INPUT, HIDDEN, **kwargs)


def test_an_ema_restart_gives_the_code_a_fresh_running_mean_at_its_new_place(rng):
    """T2: in EMA mode (the default) a restarted code must keep the place the
    restart gave it.  Its old running mean (N_k, S_k) still points where it
    was; without the reset, the next EMA update puts it back there."""
    model = small_vqvae(update="ema", restart_every=1)
    x = small_batch("bernoulli", rng)
    far = 100.0
    model.params["quantizer.codebook"][0] = far          # no encoder output is near: dead
    model.buffers["ema_sums"][0] = far                   # its running mean agrees (N_0 = 1)
    model.loss_and_grads(x)
    assert model.after_step() >= 1                       # EMA update, then the restart
    placed = model.params["quantizer.codebook"][0].copy()
    assert np.abs(placed).max() < 10                     # moved onto an encoder output
    model.restart_every = 0
    model.loss_and_grads(x)
    model.after_step()                                   # the next EMA update
    moved = model.params["quantizer.codebook"][0]
    assert np.abs(moved - placed).max() < 0.5, (placed, moved)
