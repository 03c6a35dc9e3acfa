"""Evaluation (numpy_vae/evaluate.py): the test negative ELBO and the IWAE bound.

The reference numbers come from a model small enough to integrate exactly:
with a 1-D latent, p(x) = integral of p(x|z) N(z; 0, 1) dz is a sum over a
fine grid of z, and so is E_q[log p(x|z)].
"""

import math
import tracemalloc

import numpy as np
import pytest

from numpy_vae import VAE
from numpy_vae.backend import get_backend
from numpy_vae.evaluate import (DEFAULT_MAX_ROWS, active_units, evaluate_model, iwae_log_likelihood,
                                iwae_nll, log_weights, log_weights_batched, negative_elbo)

Z_GRID = np.linspace(-12.0, 12.0, 24001)   # the prior and every posterior live well inside
DZ = Z_GRID[1] - Z_GRID[0]


def tiny_model(seed=1):
    """8 pixels, 1-D latent, float64.  The decoder's weights are scaled up so
    that p(x|z) changes a lot with z: the true posterior is then narrow and
    unlike q, and the ELBO sits well below log p(x)."""
    model = VAE(input_dim=8, hidden_dims=(16,), latent_dim=1, dtype="float64", seed=seed)
    for name in ("decoder.0.W", "decoder.1.W"):
        model.params[name] *= 3.0
    return model


def tiny_data(n=6, seed=0):
    return (np.random.default_rng(seed).random((n, 8)) > 0.5).astype(np.float64)


def _log_sum_exp(a, axis=-1):
    m = a.max(axis=axis, keepdims=True)
    return (m + np.log(np.exp(a - m).sum(axis=axis, keepdims=True))).squeeze(axis)


def exact_log_px(model, x):
    """log p(x) per image: log of sum over the grid of p(x|z) N(z; 0, 1) dz."""
    logits = model.decoder.forward(Z_GRID[:, None])                  # (grid, 8)
    log_px_z = -(np.logaddexp(0, logits)[None] - x[:, None, :] * logits[None]).sum(axis=2)
    log_prior = -0.5 * Z_GRID ** 2 - 0.5 * math.log(2 * math.pi)
    return _log_sum_exp(log_px_z + log_prior, axis=1) + math.log(DZ)


def exact_elbo(model, x):
    """ELBO per image: sum over the grid of q(z|x) log p(x|z) dz, minus the KL in closed form."""
    mu, logvar = (a[:, 0] for a in model.encode(x))
    logits = model.decoder.forward(Z_GRID[:, None])
    log_px_z = -(np.logaddexp(0, logits)[None] - x[:, None, :] * logits[None]).sum(axis=2)
    var = np.exp(logvar)
    q = np.exp(-0.5 * (Z_GRID[None] - mu[:, None]) ** 2 / var[:, None]) / np.sqrt(2 * np.pi * var[:, None])
    kl = 0.5 * (mu ** 2 + var - 1 - logvar)
    return (q * log_px_z).sum(axis=1) * DZ - kl


# --------------------------------------------------------------------------
# The ELBO
# --------------------------------------------------------------------------

def test_test_elbo_matches_the_exact_elbo_of_a_tiny_model():
    model, x = tiny_model(), tiny_data(4)
    repeats = 5000  # each image many times: the mean of one-sample estimates
    result = negative_elbo(model, np.repeat(x, repeats, axis=0), batch_size=4000)
    assert result["nelbo"] == pytest.approx(-exact_elbo(model, x).mean(), abs=0.05)
    assert result["nelbo"] == pytest.approx(result["recon"] + result["kl"])


def test_test_elbo_samples_z_instead_of_using_the_mean():
    model, x = tiny_model(), tiny_data(200)
    eps = get_backend("numpy", "float64", seed=3).standard_normal((200, 1))
    recon, kl = model.terms(x, eps)
    recon_at_mu, _ = model.terms(x, np.zeros((200, 1)))

    result = negative_elbo(model, x, seed=3)

    assert result["recon"] == pytest.approx(recon.mean(), rel=1e-12)
    assert result["kl"] == pytest.approx(kl.mean(), rel=1e-12)
    assert abs(result["recon"] - recon_at_mu.mean()) > 0.1   # z = mu would be another number


def test_evaluation_is_seeded_and_leaves_the_models_generator_alone():
    model, x = tiny_model(), tiny_data(50)
    state = model.backend.get_rng_state()
    first = evaluate_model(model, x, iwae_k=20, seed=5)
    second = evaluate_model(model, x, iwae_k=20, seed=5)
    assert model.backend.get_rng_state() == state
    assert first["nelbo"] == second["nelbo"] and first["iwae_nll"] == second["iwae_nll"]
    assert first["iwae_k"] == 20 and first["nelbo_time_s"] >= 0 and first["iwae_time_s"] >= 0
    assert evaluate_model(model, x, seed=6)["nelbo"] != first["nelbo"]


# --------------------------------------------------------------------------
# The IWAE bound
# --------------------------------------------------------------------------

def test_log_weights_are_log_joint_minus_log_q():
    model, x = tiny_model(), tiny_data(3)
    eps = np.random.default_rng(0).standard_normal((3, 5, 1))
    mu, logvar = model.encode(x)
    z = mu[:, None, :] + np.exp(logvar / 2)[:, None, :] * eps
    logits = model.decoder.forward(z.reshape(15, 1)).reshape(3, 5, 8)
    log_px_z = (x[:, None] * logits - np.logaddexp(0, logits)).sum(axis=2)
    log_pz = -0.5 * (z[..., 0] ** 2 + math.log(2 * math.pi))
    log_qz = -0.5 * ((z[..., 0] - mu) ** 2 / np.exp(logvar) + logvar + math.log(2 * math.pi))

    np.testing.assert_allclose(log_weights(model, x, eps), log_px_z + log_pz - log_qz, rtol=1e-12)


def test_iwae_with_one_sample_is_the_elbo_in_expectation():
    model, x = tiny_model(), tiny_data(4)
    repeats = 20000
    draws = iwae_log_likelihood(model, np.repeat(x, repeats, axis=0), k=1).reshape(4, repeats)
    standard_error = draws.std(axis=1) / math.sqrt(repeats)
    gap = np.abs(draws.mean(axis=1) - exact_elbo(model, x))
    assert np.all(gap < 4 * standard_error), (gap, standard_error)


def test_iwae_bound_tightens_as_k_grows_and_stays_below_log_px():
    model, x = tiny_model(), tiny_data(100)
    log_px = exact_log_px(model, x).mean()
    bounds = [iwae_log_likelihood(model, x, k=k, seed=k).mean() for k in (1, 10, 100, 1000)]
    assert bounds[0] < bounds[1] < bounds[2] < bounds[3] < log_px + 0.01, (bounds, log_px)
    assert bounds[1] - bounds[0] > 1.0           # most of the gap closes by K = 10 here
    assert bounds[3] > log_px - 0.02
    assert exact_elbo(model, x).mean() < log_px - 1.0  # there was a gap to close


def test_iwae_with_large_k_approaches_the_exact_log_likelihood():
    model, x = tiny_model(), tiny_data(6)
    bound = iwae_log_likelihood(model, x, k=20000)
    np.testing.assert_allclose(bound, exact_log_px(model, x), atol=0.05)
    assert iwae_nll(model, x, k=20000) == pytest.approx(-exact_log_px(model, x).mean(), abs=0.03)


@pytest.mark.parametrize("max_rows", [7, 100, 400, 5000])
def test_chunking_changes_memory_not_numbers(max_rows):
    # The noise is drawn image by image, sample by sample, whatever the chunks.
    model, x = tiny_model(), tiny_data(5)
    reference = iwae_log_likelihood(model, x, k=400, max_rows=400)
    np.testing.assert_allclose(iwae_log_likelihood(model, x, k=400, max_rows=max_rows),
                               reference, rtol=1e-12)


def test_log_sum_exp_is_stable_for_log_weights_far_below_zero():
    # An untrained 784-pixel model: log w is around -550; exp(-550) is 0 in float32.
    model = VAE(seed=0)
    x = np.random.default_rng(0).random((3, 784), dtype=np.float32)
    bound = iwae_log_likelihood(model, x, k=50, max_rows=16)
    assert np.all(np.isfinite(bound)) and np.all(bound < -400)
    assert -bound.mean() <= negative_elbo(model, x)["nelbo"] + 5


def test_memory_is_bounded_by_max_rows_not_by_k():
    model = VAE(seed=0)
    x = np.random.default_rng(0).random((2, 784), dtype=np.float32)

    def peak_bytes(k):
        tracemalloc.start()
        iwae_log_likelihood(model, x, k=k, max_rows=256)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return peak

    small, large = peak_bytes(256), peak_bytes(4096)
    assert large < 1.5 * small, (small, large)
    assert large < 16 * 256 * 784 * 4  # a few (max_rows, 784) float32 arrays


def test_k_must_be_positive():
    with pytest.raises(ValueError, match="at least 1"):
        iwae_log_likelihood(tiny_model(), tiny_data(2), k=0)


# --------------------------------------------------------------------------
# Active units
# --------------------------------------------------------------------------

def test_active_units_count_the_units_whose_posterior_mean_varies_by_more_than_001():
    # no hidden layer: mu = x W + b.  Pixel 0 alternates 0, 1 (variance 1/4), so
    # mu_u = c x_0 has variance c^2 / 4: 0.0225 for c = 0.3 (active), 0.0025 for
    # c = 0.1 (not), 0 for a unit that ignores x; a bias changes nothing.
    model = VAE(input_dim=4, hidden_dims=(), latent_dim=3, dtype="float64")
    model.params["mu.W"][...] = 0.0
    model.params["mu.W"][0] = [0.3, 0.1, 0.0]
    model.params["mu.b"][...] = [5.0, -2.0, 1.0]
    x = np.zeros((1000, 4))
    x[::2, 0] = 1.0
    x[:, 1:] = np.random.default_rng(0).random((1000, 3))   # pixels no mean looks at

    result = active_units(model, x, batch_size=64)           # batches do not change the variance

    np.testing.assert_allclose(result["unit_variances"], [0.0225, 0.0025, 0.0], atol=1e-15)
    assert result["active_units"] == 1


def test_active_units_need_two_images():
    with pytest.raises(ValueError, match="at least 2 images"):
        active_units(tiny_model(), tiny_data(1))


# --------------------------------------------------------------------------
# The batched evaluation against the reference
# --------------------------------------------------------------------------

@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian", "gaussian_learned"])
def test_batched_log_weights_equal_the_reference_in_float64(likelihood):
    model = VAE(input_dim=8, hidden_dims=(16,), latent_dim=3, likelihood=likelihood,
                dtype="float64", seed=2)
    x, eps = tiny_data(4), np.random.default_rng(3).standard_normal((4, 7, 3))
    batched = log_weights_batched(model, x, eps)
    assert batched.dtype == np.float64 and batched.shape == (4, 7)
    np.testing.assert_allclose(batched, log_weights(model, x, eps), rtol=1e-12)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_batched_iwae_bound_of_a_float32_mnist_model_agrees_with_the_reference(backend):
    pytest.importorskip("numba") if backend == "numba" else None
    model = VAE(784, (200, 200), 50, activation="tanh", backend=backend, seed=0)
    x = (np.random.default_rng(0).random((3, 784)) < 0.13).astype(np.float32)
    fast = iwae_log_likelihood(model, x, k=300, max_rows=256)
    reference = iwae_log_likelihood(model, x, k=300, max_rows=256, fast=False)
    # float32 decoder either way; the batched path sums rows in float64, the
    # reference in float32 (~1e-5 relative of ~550 nats)
    np.testing.assert_allclose(fast, reference, atol=0.02)
    assert np.abs(fast - reference).max() > 0   # two computations, not one twice


def test_active_units_take_the_variance_over_all_images_not_the_mean_of_batch_variances():
    """T1: data sorted so that every batch holds one image only: each batch's
    variance is 0, the variance over the test set is 1/4.  An implementation
    that averaged per-batch variances would count no active unit."""
    model = VAE(input_dim=4, hidden_dims=(), latent_dim=2, dtype="float64")
    model.params["mu.W"][...] = 0.0
    model.params["mu.W"][0] = [1.0, 0.0]
    x = np.zeros((256, 4))
    x[128:, 0] = 1.0                       # first half one image, second half another
    result = active_units(model, x, batch_size=64)
    np.testing.assert_allclose(result["unit_variances"], [0.25, 0.0], atol=1e-15)
    assert result["active_units"] == 1


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_bernoulli_sample_nll_sums_each_row_in_float64(backend):
    """Defect 9: 'sums each row in float64' held for the Numba twin only.  The
    float32 terms of a row, summed in float64, to float64's rounding: a
    float32 sum of 784 terms of ~10 misses by ~1e-4."""
    pytest.importorskip("numba") if backend == "numba" else None
    from numpy_vae import get_backend
    ops = get_backend(backend, dtype="float32").ops
    rng = np.random.default_rng(5)
    logits = (rng.standard_normal((3, 50, 784)) * 12).astype(np.float32)
    x = (rng.random((3, 784)) < 0.3).astype(np.float32)
    terms = (np.maximum(logits, 0) + np.log(1 + np.exp(-np.abs(logits)))
             - logits * x[:, None, :]).astype(np.float64)   # float32 terms, as the kernels form them
    exact = terms.sum(axis=2)
    nll = ops.bernoulli_nll_samples(logits, x)
    assert nll.dtype == np.float64
    np.testing.assert_allclose(nll, exact, rtol=2e-7 if backend == "numba" else 1e-12)


def test_the_conv_vae_evaluates_in_smaller_chunks_with_the_same_numbers():
    """Its decoder rows cost ~0.16 MB each at the peak (benchmarks/bench_iwae_memory.py):
    by default it takes 1024 at a time, not 8192; chunking changes no number."""
    from numpy_vae.conv_vae import ConvVAE
    model = ConvVAE(channels=(2, 3), latent_dim=2, seed=0)
    assert model.IWAE_MAX_ROWS == 1024 < DEFAULT_MAX_ROWS
    x = (np.random.default_rng(0).random((2, 784)) < 0.2).astype(np.float32)
    np.testing.assert_allclose(iwae_log_likelihood(model, x, k=40),
                               iwae_log_likelihood(model, x, k=40, max_rows=7), rtol=1e-6)
