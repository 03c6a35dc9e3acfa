"""Specification of the KL node (numpy_vae/kl.py).

    KL(N(mu, exp(logvar)) || N(0, I)) = 1/2 sum_j (mu_j^2 + exp(logvar_j) - 1 - logvar_j)
    dKL/dmu = mu,   dKL/dlogvar = (exp(logvar) - 1) / 2

Held to: finite differences, an independent numerical integral, KL >= 0
everywhere and = 0 exactly at the prior, and accuracy where the naive
formula would cancel to zero.
"""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from numpy_vae import get_backend, gradcheck
from numpy_vae.kl import GaussianKL

BOUND = 1e-6


def kl_errors(node, mu, logvar):
    return gradcheck.check_function(node.forward,
                                    lambda dkl: dict(zip(("mu", "logvar"), node.backward(dkl))),
                                    {"mu": mu, "logvar": logvar})


def test_kl_gradient_matches_finite_differences(backend64, rng):
    mu = rng.standard_normal((5, 3))
    logvar = rng.uniform(-3, 3, size=(5, 3))
    errors = kl_errors(GaussianKL(backend64), mu, logvar)
    assert max(errors.values()) < BOUND, gradcheck.format_table(errors)


class FlippedSignKL(GaussianKL):
    """The bug: the gradient of -KL, as if the KL were added to the ELBO."""

    def backward(self, dkl):
        dmu, dlogvar = super().backward(dkl)
        return -dmu, -dlogvar


class MuGradientWithoutHalfCancel(GaussianKL):
    """The bug: dKL/dmu = mu / 2, keeping the 1/2 that d(mu^2) cancels."""

    def backward(self, dkl):
        dmu, dlogvar = super().backward(dkl)
        return dmu / 2, dlogvar


@pytest.mark.parametrize("buggy", [FlippedSignKL, MuGradientWithoutHalfCancel])
def test_gradient_check_catches_a_wrong_kl_gradient(buggy, backend64, rng):
    errors = kl_errors(buggy(backend64), rng.standard_normal((5, 3)), rng.uniform(-3, 3, (5, 3)))
    assert errors["mu"] > 1e-2


def test_backward_is_the_documented_formula_scaled_per_example(backend64, rng):
    mu, logvar = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    dkl = rng.standard_normal(4)
    node = GaussianKL(backend64)
    node.forward(mu, logvar)
    dmu, dlogvar = node.backward(dkl)
    np.testing.assert_allclose(dmu, dkl[:, None] * mu, rtol=1e-14)
    np.testing.assert_allclose(dlogvar, dkl[:, None] * (np.exp(logvar) - 1) / 2, rtol=1e-12)


# --------------------------------------------------------------------------
# The value
# --------------------------------------------------------------------------

def _kl_by_integration(mu, logvar):
    """KL(q || p) = integral of q log(q / p) for one coordinate, by the trapezoid rule."""
    sigma = np.exp(logvar / 2)
    z = np.linspace(mu - 12 * sigma, mu + 12 * sigma, 200001)
    log_q = -0.5 * ((z - mu) / sigma) ** 2 - np.log(sigma) - 0.5 * np.log(2 * np.pi)
    log_p = -0.5 * z ** 2 - 0.5 * np.log(2 * np.pi)
    return np.trapezoid(np.exp(log_q) * (log_q - log_p), z)


def test_closed_form_matches_the_integral_of_q_log_q_over_p(backend64):
    mu = np.array([[0.3, -1.2, 2.0]])
    logvar = np.array([[-1.5, 0.4, 1.1]])
    expected = sum(_kl_by_integration(m, lv) for m, lv in zip(mu[0], logvar[0]))
    assert GaussianKL(backend64).forward(mu, logvar)[0] == pytest.approx(expected, rel=1e-8)


def test_kl_sums_over_latent_dimensions_one_value_per_example(backend64, rng):
    mu, logvar = rng.standard_normal((7, 4)), rng.standard_normal((7, 4))
    kl = GaussianKL(backend64).forward(mu, logvar)
    assert kl.shape == (7,)
    naive = -0.5 * (1 + logvar - mu ** 2 - np.exp(logvar)).sum(axis=1)
    np.testing.assert_allclose(kl, naive, rtol=1e-12)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_kl_is_exactly_zero_at_the_prior(dtype):
    node = GaussianKL(get_backend("numpy", dtype=dtype))
    kl = node.forward(np.zeros((6, 5), dtype=dtype), np.zeros((6, 5), dtype=dtype))
    assert kl.dtype == dtype
    np.testing.assert_array_equal(kl, 0.0)
    dmu, dlogvar = node.backward(np.ones(6, dtype=dtype))
    np.testing.assert_array_equal(dmu, 0.0)
    np.testing.assert_array_equal(dlogvar, 0.0)


def test_kl_is_accurate_where_the_naive_formula_cancels(backend64):
    # exp(a) - 1 - a = a^2/2 + a^3/6 + ...; written as 1 + a - exp(a) in
    # float64 it is lost entirely for |a| < 1e-8.  expm1 keeps it.
    a = np.array([[1e-9, -1e-9, 1e-6, -1e-6, 1e-4]])
    kl_terms = [GaussianKL(backend64).forward(np.zeros((1, 1)), a[:, [j]])[0] for j in range(a.shape[1])]
    np.testing.assert_allclose(kl_terms, 0.5 * (a[0] ** 2 / 2 + a[0] ** 3 / 6), rtol=1e-6)


KL_MU = st.floats(-1e3, 1e3, allow_nan=False)
KL_LOGVAR = st.floats(-30, 30, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(data=st.data(), dtype=st.sampled_from(["float32", "float64"]),
       batch=st.integers(1, 6), latent=st.integers(1, 6))
def test_kl_is_never_negative_and_never_warns(data, dtype, batch, latent):
    width = 32 if dtype == "float32" else 64
    mu = data.draw(hnp.arrays(dtype, (batch, latent), elements=st.floats(-1e3, 1e3, width=width)))
    # small logvars, where rounding is most likely to push a term below 0, drawn on purpose
    logvar = data.draw(hnp.arrays(dtype, (batch, latent), elements=st.one_of(
        st.floats(-30, 30, width=width), st.floats(-2.0**-20, 2.0**-20, width=width))))
    node = GaussianKL(get_backend("numpy", dtype=dtype))
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")
        kl = node.forward(mu, logvar)
        dmu, dlogvar = node.backward(np.ones(batch, dtype=dtype))
    assert kl.dtype == dtype
    assert np.all(np.isfinite(kl)) and np.all(kl >= 0)
    assert np.all(np.isfinite(dmu)) and np.all(np.isfinite(dlogvar))


@settings(max_examples=100, deadline=None)
@given(mu=KL_MU, logvar=KL_LOGVAR)
def test_kl_depends_on_mu_through_mu_squared_and_grows_with_it(mu, logvar):
    node = GaussianKL(get_backend("numpy", dtype="float64"))
    kl = lambda m: node.forward(np.array([[m]]), np.array([[logvar]]))[0]
    assert kl(mu) == kl(-mu)
    assert kl(mu) >= kl(0.0)
