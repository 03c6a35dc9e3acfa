"""Specification of the fused node (ReparameterizeKL in numpy_vae/reparameterize.py).

    z  = mu + exp(logvar / 2) * eps
    kl = 1/2 sum_j (mu_j^2 + exp(logvar_j) - 1 - logvar_j)
    dmu     = dz + dkl * mu
    dlogvar = dz * eps * exp(logvar / 2) / 2 + dkl * (exp(logvar) - 1) / 2

It must give what Reparameterize and GaussianKL give, one after the other
with the gradients of the two paths added; its gradient is checked by
finite differences, with planted bugs to show the check would notice; and
it must stay finite and float32 at the ends of the model's logvar clamp.
"""

import warnings

import numpy as np
import pytest

from numpy_vae import get_backend, gradcheck
from numpy_vae.kl import GaussianKL
from numpy_vae.models import ENCODER_LOGVAR_RANGE
from numpy_vae.reparameterize import Reparameterize, ReparameterizeKL

BOUND = 1e-6


@pytest.fixture
def inputs(rng):
    mu = rng.standard_normal((5, 3))
    logvar = rng.uniform(-2, 2, size=(5, 3))
    eps = rng.standard_normal((5, 3))
    return mu, logvar, eps


# --------------------------------------------------------------------------
# The same numbers as the two nodes it fuses
# --------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fused_node_equals_reparameterize_then_kl(dtype, inputs, rng):
    bk = get_backend("numpy", dtype=dtype)
    mu, logvar, eps = (bk.asarray(a) for a in inputs)
    dz, dkl = bk.asarray(rng.standard_normal(mu.shape)), bk.asarray(rng.standard_normal(mu.shape[0]))

    rep, kl_node, fused = Reparameterize(bk), GaussianKL(bk), ReparameterizeKL(bk)
    z_expected, kl_expected = rep.forward(mu, logvar, eps), kl_node.forward(mu, logvar)
    z, kl = fused.forward(mu, logvar, eps)
    (dmu_rep, dlogvar_rep), (dmu_kl, dlogvar_kl) = rep.backward(dz), kl_node.backward(dkl)
    dmu, dlogvar = fused.backward(dz, dkl)

    # the same operations in the same order: the same bits
    np.testing.assert_array_equal(z, z_expected)
    np.testing.assert_array_equal(kl, kl_expected)
    np.testing.assert_array_equal(dmu, dmu_rep + dmu_kl)
    np.testing.assert_array_equal(dlogvar, dlogvar_rep + dlogvar_kl)
    assert z.dtype == kl.dtype == dmu.dtype == dlogvar.dtype == dtype
    assert z.shape == dmu.shape == dlogvar.shape == mu.shape and kl.shape == (5,)


def test_drawn_eps_is_the_one_reparameterize_would_draw(inputs):
    """Same seed, same eps: swapping the two nodes for the fused one keeps a run's random stream."""
    mu, logvar, _ = inputs
    z_expected = Reparameterize(get_backend("numpy", dtype="float64", seed=7)).forward(mu, logvar)
    node = ReparameterizeKL(get_backend("numpy", dtype="float64", seed=7))
    z, _ = node.forward(mu, logvar)
    np.testing.assert_array_equal(z, z_expected)
    np.testing.assert_allclose(z, mu + np.exp(logvar / 2) * node.eps, rtol=1e-15)


# --------------------------------------------------------------------------
# The gradient
# --------------------------------------------------------------------------

def fused_errors(node, mu, logvar, eps):
    """check_function on the node with eps held fixed: {"mu": err, "logvar": err}.

    check_function takes one output, so z and kl travel as one array, kl as
    an extra column: its random weights r make the scalar sum(z * r_z) +
    sum(kl * r_kl), and backward splits r back into dz and dkl.  Both paths
    of the gradient are checked at once.
    """
    def forward(mu, logvar):
        z, kl = node.forward(mu, logvar, eps)
        return np.concatenate([z, kl[:, None]], axis=1)

    def backward(dout):
        dz, dkl = np.ascontiguousarray(dout[:, :-1]), np.ascontiguousarray(dout[:, -1])
        return dict(zip(("mu", "logvar"), node.backward(dz, dkl)))

    return gradcheck.check_function(forward, backward, {"mu": mu, "logvar": logvar})


def test_fused_gradient_matches_finite_differences(backend64, inputs):
    errors = fused_errors(ReparameterizeKL(backend64), *inputs)
    assert max(errors.values()) < BOUND, gradcheck.format_table(errors)


def test_fused_gradient_matches_finite_differences_at_wide_logvar(backend64, rng):
    # logvar from -6 to 6: sigma from 0.05 to 20, exp(logvar) - 1 from -1 to 400
    mu = 2 * rng.standard_normal((4, 5))
    logvar = rng.uniform(-6, 6, size=(4, 5))
    eps = rng.standard_normal((4, 5))
    errors = fused_errors(ReparameterizeKL(backend64), mu, logvar, eps)
    assert max(errors.values()) < BOUND, gradcheck.format_table(errors)


class MissingHalfThroughZ(ReparameterizeKL):
    """The bug: dlogvar = dz * eps * sigma + ..., forgetting the 1/2 of d(logvar/2)."""

    def backward(self, dz, dkl):
        dmu, dlogvar = super().backward(dz, dkl)
        return dmu, dlogvar + dz * self.eps * self._std * 0.5


class MissingHalfThroughKL(ReparameterizeKL):
    """The bug: dKL/dlogvar = exp(logvar) - 1, forgetting the 1/2 in front of the sum."""

    def backward(self, dz, dkl):
        dmu, dlogvar = super().backward(dz, dkl)
        return dmu, dlogvar + dkl[:, None] * 0.5 * self._var_minus_1


class ForgetsTheKLPath(ReparameterizeKL):
    """The bug: only the gradient through z, as if the KL were a constant."""

    def backward(self, dz, dkl):
        return super().backward(dz, np.zeros_like(dkl))


@pytest.mark.parametrize("buggy", [MissingHalfThroughZ, MissingHalfThroughKL, ForgetsTheKLPath])
def test_gradient_check_catches_a_wrong_fused_gradient(buggy, backend64, inputs):
    errors = fused_errors(buggy(backend64), *inputs)
    assert errors["logvar"] > 1e-2


# --------------------------------------------------------------------------
# The ends of the model's logvar clamp, in float32
# --------------------------------------------------------------------------

def test_fused_node_is_finite_at_the_ends_of_the_logvar_clamp():
    """models.py clamps logvar to ENCODER_LOGVAR_RANGE = (-30, 20): there sigma is
    3e-7 or 2.2e4 and exp(logvar) - 1 is -1 or 4.9e8, all finite in float32.
    (tests/test_backends_numba.py holds the Numba twin to the same.)"""
    bk = get_backend("numpy", dtype="float32", seed=0)
    low, high = ENCODER_LOGVAR_RANGE
    logvar = bk.asarray([[low, high, low, high], [high, high, low, low]])
    mu = bk.asarray([[0.0, 3.0, -100.0, 1e3], [-1e3, 0.5, 2.0, 0.0]])
    eps = bk.asarray([[1.0, -4.0, 0.3, 5.0], [-5.0, 2.0, 0.0, -1.0]])
    node = ReparameterizeKL(bk)
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")
        z, kl = node.forward(mu, logvar, eps)
        dmu, dlogvar = node.backward(bk.asarray(np.ones(mu.shape)), bk.asarray(np.ones(2)))
    for a in (z, kl, dmu, dlogvar):
        assert a.dtype == np.float32
        assert np.all(np.isfinite(a))
    assert np.all(kl > 0)
    expected = 0.5 * (mu.astype(np.float64) ** 2 + np.expm1(logvar.astype(np.float64))
                      - logvar).sum(axis=1)
    np.testing.assert_allclose(kl, expected, rtol=1e-6)


# --------------------------------------------------------------------------
# Shapes
# --------------------------------------------------------------------------

def test_mismatched_shapes_are_refused_with_both_shapes_named(backend64):
    node = ReparameterizeKL(backend64)
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(2, 4\)"):
        node.forward(np.zeros((2, 3)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"eps.*\(2, 3\).*\(3, 2\)"):
        node.forward(np.zeros((2, 3)), np.zeros((2, 3)), np.zeros((3, 2)))
