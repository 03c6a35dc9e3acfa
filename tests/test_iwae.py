"""Specification of the IWAE objective (numpy_vae/iwae.py, VAE.loss_and_grads(objective="iwae")).

The gradient agrees with finite differences for every likelihood and
k in {1, 2, 5}, node by node and for the whole step; k = 1 is the one-sample
ELBO with a sampled KL; the bound is at least the average single-sample
ELBO of the same samples; and bad arguments are refused with clear errors.
"""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from numpy_vae import VAE, Autoencoder, gradcheck, ops
from numpy_vae.conv_vae import ConvVAE
from numpy_vae.iwae import ImportanceSamples, LogMeanExp

INPUT, HIDDEN, LATENT, BATCH = 12, (9, 7), 3, 5
BOUND = 1e-6
H = 1e-5


def small_model(likelihood="bernoulli", activation="tanh", seed=0, dtype="float64"):
    return VAE(INPUT, HIDDEN, LATENT, likelihood=likelihood, activation=activation,
               dtype=dtype, seed=seed)


def small_batch(likelihood, rng, batch=BATCH):
    x = rng.random((batch, INPUT))
    return (x < 0.5).astype(np.float64) if likelihood == "bernoulli" else x


def iwae_gradient_errors(model, x, eps, k):
    """Max relative error per parameter array, as in tests/test_models.py
    (step H, entries below the finite difference's rounding floor held to an
    absolute error instead)."""
    def f():
        return float(model.loss_and_grads(x, eps=eps, objective="iwae", k=k)[0])

    _, grads, _ = model.loss_and_grads(x, eps=eps, objective="iwae", k=k)
    analytic = {name: np.array(g) for name, g in grads.items()}
    tiny = 10 * np.finfo(np.float64).eps * abs(f()) / (H * BOUND)
    return {name: gradcheck.relative_error(analytic[name], gradcheck.numerical_gradient(f, p, H), tiny)
            for name, p in model.params.items()}


# --------------------------------------------------------------------------
# Gradients against finite differences
# --------------------------------------------------------------------------

@pytest.mark.parametrize("k", [1, 2, 5])
@pytest.mark.parametrize("likelihood,activation", [("bernoulli", "tanh"), ("gaussian", "softplus"),
                                                   ("gaussian_learned", "sigmoid")])
def test_iwae_gradient_matches_finite_differences(likelihood, activation, k, rng):
    model = small_model(likelihood, activation)
    x = small_batch(likelihood, rng)
    eps = rng.standard_normal((k, BATCH, LATENT))

    errors = iwae_gradient_errors(model, x, eps, k)

    assert list(errors) == list(model.params)
    assert max(errors.values()) < BOUND, gradcheck.format_table(errors)


def test_conv_vae_shares_the_iwae_step_and_its_gradient_is_right():
    model = ConvVAE(input_dim=81, channels=(2, 3), latent_dim=2, likelihood="bernoulli",
                    activation="tanh", dtype="float64", seed=0)
    rng = np.random.default_rng(0)
    x = (rng.random((2, 81)) < 0.5).astype(np.float64)
    eps = rng.standard_normal((3, 2, 2))
    errors = gradcheck.check_model(model, x, eps, max_elements=15, seed=0, objective="iwae", k=3)
    assert set(errors) == set(model.params)
    assert max(errors.values()) < BOUND, errors


def test_importance_samples_node_gradient_matches_finite_differences(backend64, rng):
    node = ImportanceSamples(backend64)
    k = 4
    eps = rng.standard_normal((k, BATCH, LATENT))
    r_z = rng.standard_normal((k, BATCH, LATENT))
    r_ratio = rng.standard_normal((k, BATCH))

    def forward(mu, logvar):
        z, log_ratio = node.forward(mu, logvar, eps)
        return np.concatenate([(z * r_z).ravel(), (log_ratio * r_ratio).ravel()])

    def backward(dout):  # check_function's scalar is sum(forward * r); fold r into ours
        n = k * BATCH * LATENT
        dmu, dlogvar = node.backward(dout[:n].reshape(k, BATCH, LATENT) * r_z,
                                     dout[n:].reshape(k, BATCH) * r_ratio)
        return {"mu": dmu, "logvar": dlogvar}

    errors = gradcheck.check_function(forward, backward, {
        "mu": rng.standard_normal((BATCH, LATENT)), "logvar": rng.standard_normal((BATCH, LATENT))})
    assert max(errors.values()) < BOUND, errors


def test_log_mean_exp_node_gradient_is_the_normalised_weights(backend64, rng):
    node = LogMeanExp(backend64)
    errors = gradcheck.check_function(lambda a: node.forward(a), lambda d: {"a": node.backward(d)},
                                      {"a": 3 * rng.standard_normal((5, BATCH)) - 90})
    assert errors["a"] < BOUND, errors


# --------------------------------------------------------------------------
# What the bound is
# --------------------------------------------------------------------------

@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian", "gaussian_learned"])
def test_k1_iwae_is_the_one_sample_elbo_with_a_sampled_kl(likelihood, rng):
    model = small_model(likelihood)
    x = small_batch(likelihood, rng)
    eps = rng.standard_normal((BATCH, LATENT))

    loss, _, info = model.loss_and_grads(x, eps=eps[None], objective="iwae", k=1)

    # -ELBO with one z: -log p(x|z) + log q(z|x) - log p(z), each written out with log(2 pi)
    recon, _ = model.terms(x, eps)
    mu, logvar = model.encode(x)
    z = mu + np.exp(logvar / 2) * eps
    log_q = -0.5 * (eps ** 2 + logvar + math.log(2 * math.pi)).sum(axis=1)
    log_p = -0.5 * (z ** 2 + math.log(2 * math.pi)).sum(axis=1)
    expected = np.mean(recon + log_q - log_p)
    np.testing.assert_allclose(loss, expected, rtol=1e-13)
    np.testing.assert_allclose(info["recon"] + info["kl"], expected, rtol=1e-13)


@settings(max_examples=25, deadline=None)
@given(k=st.integers(1, 8), batch=st.integers(1, 6), seed=st.integers(0, 2**31))
def test_iwae_loss_is_at_most_the_average_single_sample_negative_elbo(k, batch, seed):
    # log mean_i w_i >= mean_i log w_i (Jensen), for any fixed samples; equality at k = 1
    rng = np.random.default_rng(seed)
    model = small_model("bernoulli", seed=seed % 7)
    x = small_batch("bernoulli", rng, batch)
    loss, _, info = model.loss_and_grads(x, eps=rng.standard_normal((k, batch, LATENT)),
                                         objective="iwae", k=k)
    assert loss <= info["recon"] + info["kl"] + 1e-12


def test_more_samples_give_a_tighter_bound_on_average():
    rng = np.random.default_rng(1)
    model = small_model("bernoulli")
    x = small_batch("bernoulli", rng, batch=200)
    losses = {k: np.mean([model.loss_and_grads(x, objective="iwae", k=k)[0] for _ in range(20)])
              for k in (1, 5, 50)}
    assert losses[1] > losses[5] > losses[50]


def test_log_mean_exp_weights_sum_to_one_and_stay_finite_at_extreme_log_weights():
    a = np.array([[-1e4, 0.0, 700.0], [-1e4 - 1, -800.0, 710.0]])
    bound, weights = ops.log_mean_exp_weights(a)
    assert np.all(np.isfinite(bound)) and np.all(np.isfinite(weights))
    np.testing.assert_allclose(weights.sum(axis=0), 1.0, rtol=1e-15)
    np.testing.assert_allclose(bound[0], -1e4 + math.log((1 + math.exp(-1)) / 2), rtol=1e-15)
    np.testing.assert_allclose(bound[2], 710 + math.log((1 + math.exp(-10)) / 2), rtol=1e-15)


def test_default_objective_is_the_elbo_with_an_analytic_kl(rng):
    model = small_model()
    x, eps = small_batch("bernoulli", rng), rng.standard_normal((BATCH, LATENT))
    loss, _, info = model.loss_and_grads(x, eps=eps)
    recon, kl = model.terms(x, eps)
    assert float(loss) == float(np.mean(recon) + np.mean(kl))
    assert info["beta"] == 1.0


# --------------------------------------------------------------------------
# Clear errors
# --------------------------------------------------------------------------

def test_beta_other_than_one_is_refused_with_iwae(rng):
    with pytest.raises(ValueError, match="beta=0.5 is not defined for the IWAE objective"):
        small_model().loss_and_grads(small_batch("bernoulli", rng), beta=0.5, objective="iwae", k=5)


@pytest.mark.parametrize("objective,k,message", [
    ("elbow", 1, "unknown objective 'elbow'; choose one of: elbo, iwae"),
    ("iwae", 0, "k must be a positive integer, got 0"),
    ("elbo", 5, "k=5 samples need objective='iwae'"),
])
def test_bad_objectives_are_refused(objective, k, message, rng):
    with pytest.raises(ValueError, match=message):
        small_model().loss_and_grads(small_batch("bernoulli", rng), objective=objective, k=k)


def test_eps_of_the_wrong_shape_is_refused_with_the_expected_shape(rng):
    with pytest.raises(ValueError, match=r"\(k, batch, latent_dim\) = \(5, 5, 3\), got \(5, 3\)"):
        small_model().loss_and_grads(small_batch("bernoulli", rng), eps=rng.standard_normal((5, 3)),
                                     objective="iwae", k=5)


def test_the_autoencoder_refuses_the_iwae_objective(rng):
    model = Autoencoder(INPUT, HIDDEN, LATENT, dtype="float64")
    with pytest.raises(ValueError, match="no importance-weighted objective"):
        model.loss_and_grads(small_batch("bernoulli", rng), objective="iwae", k=5)


def test_float32_iwae_step_stays_float32(rng):
    model = small_model(dtype="float32")
    loss, grads, _ = model.loss_and_grads(small_batch("bernoulli", rng).astype(np.float32),
                                          objective="iwae", k=5)
    assert loss.dtype == np.float32
    assert all(g.dtype == np.float32 for g in grads.values())
