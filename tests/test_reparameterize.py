"""Specification of the reparameterization node (numpy_vae/reparameterize.py).

    z = mu + exp(logvar / 2) * eps,   eps ~ N(0, I)
    dmu = dz,   dlogvar = dz * eps * exp(logvar / 2) / 2

The gradient check holds eps fixed; the statistical test checks that the
samples really have mean mu and standard deviation exp(logvar / 2); the
planted bugs show that each test notices the mistakes students make here.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from numpy_vae import get_backend, gradcheck
from numpy_vae.reparameterize import Reparameterize

BOUND = 1e-6


def reparameterize_errors(node, mu, logvar, eps):
    """check_function on the node with eps held fixed: {"mu": err, "logvar": err}."""
    return gradcheck.check_function(
        lambda mu, logvar: node.forward(mu, logvar, eps),
        lambda dz: dict(zip(("mu", "logvar"), node.backward(dz))),
        {"mu": mu, "logvar": logvar})


@pytest.fixture
def inputs(rng):
    mu = rng.standard_normal((5, 3))
    logvar = rng.uniform(-2, 2, size=(5, 3))
    eps = rng.standard_normal((5, 3))
    return mu, logvar, eps


# --------------------------------------------------------------------------
# The gradient
# --------------------------------------------------------------------------

def test_reparameterize_gradient_matches_finite_differences(backend64, inputs):
    errors = reparameterize_errors(Reparameterize(backend64), *inputs)
    assert max(errors.values()) < BOUND, gradcheck.format_table(errors)


def test_backward_is_the_documented_formula(backend64, inputs, rng):
    mu, logvar, eps = inputs
    node = Reparameterize(backend64)
    node.forward(mu, logvar, eps)
    dz = rng.standard_normal(mu.shape)
    dmu, dlogvar = node.backward(dz)
    np.testing.assert_array_equal(dmu, dz)
    np.testing.assert_allclose(dlogvar, dz * eps * np.exp(logvar / 2) / 2, rtol=1e-14)


class MissingHalf(Reparameterize):
    """The bug: dlogvar = dz * eps * sigma, forgetting the 1/2 of d(logvar/2)."""

    def backward(self, dz):
        return dz, dz * self.eps * self._std


class SamplesWithVariance(Reparameterize):
    """The classic bug: sigma = exp(logvar) instead of exp(logvar / 2).

    The backward pass is the correct one for the documented forward, so only
    the forward is wrong, which is what makes this bug easy to miss.
    """

    def forward(self, mu, logvar, eps=None):
        super().forward(mu, logvar, eps)
        self._std = np.exp(logvar)
        return mu + self._std * self.eps


class DrawsEpsTwice(Reparameterize):
    """The bug: forward draws eps for z, backward uses a fresh draw."""

    def forward(self, mu, logvar, eps=None):
        z = super().forward(mu, logvar, eps)
        self.eps = self.backend.standard_normal(mu.shape)
        return z


@pytest.mark.parametrize("buggy", [MissingHalf, SamplesWithVariance, DrawsEpsTwice])
def test_gradient_check_catches_a_wrong_reparameterization(buggy, backend64, inputs):
    errors = reparameterize_errors(buggy(backend64), *inputs)
    assert errors["logvar"] > 1e-2


# --------------------------------------------------------------------------
# The samples
# --------------------------------------------------------------------------

MU = np.array([0.5, -1.0, 2.0, 0.0])
# at both ends exp(logvar / 2) and the buggy exp(logvar) differ by a factor 2 or more
LOGVAR = np.array([-2.0, -0.5, 0.7, 1.5])


def sample_moments(node, n=20000):
    """Mean and standard deviation over n draws of z, per coordinate."""
    mu, logvar = np.tile(MU, (n, 1)), np.tile(LOGVAR, (n, 1))
    z = node.forward(mu, logvar)
    return z.mean(axis=0), z.std(axis=0)


def assert_moments_are_those_of_N_mu_sigma2(mean, std):
    sigma = np.exp(LOGVAR / 2)
    # with n = 20000 the standard error of the mean is sigma / 141 and that of
    # the std is sigma / 200: 6 standard errors on either is a failure
    np.testing.assert_allclose(mean, MU, atol=6 * sigma.max() / np.sqrt(20000))
    np.testing.assert_allclose(std, sigma, rtol=0.03)


def test_z_has_mean_mu_and_std_exp_half_logvar():
    node = Reparameterize(get_backend("numpy", dtype="float64", seed=1))
    assert_moments_are_those_of_N_mu_sigma2(*sample_moments(node))


def test_moment_test_rejects_sampling_with_std_exp_logvar():
    node = SamplesWithVariance(get_backend("numpy", dtype="float64", seed=1))
    with pytest.raises(AssertionError):
        assert_moments_are_those_of_N_mu_sigma2(*sample_moments(node))


@settings(max_examples=50, deadline=None)
@given(data=st.data(), batch=st.integers(1, 17), latent=st.integers(1, 8))
def test_eps_zero_gives_z_equal_mu(data, batch, latent):
    finite = st.floats(-1e3, 1e3, allow_nan=False)
    mu = data.draw(hnp.arrays(np.float64, (batch, latent), elements=finite))
    logvar = data.draw(hnp.arrays(np.float64, (batch, latent), elements=st.floats(-30, 30)))
    z = Reparameterize(get_backend("numpy", dtype="float64")).forward(mu, logvar, np.zeros_like(mu))
    np.testing.assert_array_equal(z, mu)


# --------------------------------------------------------------------------
# Noise: drawn once per forward, kept, reproducible when given
# --------------------------------------------------------------------------

def test_forward_keeps_the_eps_it_used(backend64, inputs):
    mu, logvar, _ = inputs
    node = Reparameterize(backend64)
    z = node.forward(mu, logvar)
    np.testing.assert_allclose(z, mu + np.exp(logvar / 2) * node.eps, rtol=1e-15)


def test_given_eps_makes_the_node_deterministic(backend64, inputs):
    node = Reparameterize(backend64)
    np.testing.assert_array_equal(node.forward(*inputs), node.forward(*inputs))


def test_without_eps_every_forward_draws_fresh_noise(backend64, inputs):
    mu, logvar, _ = inputs
    node = Reparameterize(backend64)
    assert not np.array_equal(node.forward(mu, logvar), node.forward(mu, logvar))


def test_float32_stays_float32():
    bk = get_backend("numpy", dtype="float32")
    mu, logvar = bk.asarray(np.zeros((2, 3))), bk.asarray(np.ones((2, 3)))
    node = Reparameterize(bk)
    z = node.forward(mu, logvar)
    dmu, dlogvar = node.backward(bk.asarray(np.ones((2, 3))))
    assert z.dtype == dmu.dtype == dlogvar.dtype == np.float32


def test_mismatched_shapes_are_refused_with_both_shapes_named(backend64):
    node = Reparameterize(backend64)
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(2, 4\)"):
        node.forward(np.zeros((2, 3)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"eps.*\(2, 3\).*\(3, 2\)"):
        node.forward(np.zeros((2, 3)), np.zeros((2, 3)), np.zeros((3, 2)))
