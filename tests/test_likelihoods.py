"""Specification of the decoder likelihoods (numpy_vae/likelihoods.py).

Each turns the decoder output into -log p(x | z) per example.  Held to:
finite differences for the gradient, the textbook density for the value,
and, for the Bernoulli, finiteness and silence at any logit.
"""

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from numpy_vae import get_backend, gradcheck, ops
from numpy_vae.likelihoods import (LIKELIHOODS, BernoulliLikelihood, GaussianLikelihood,
                                   LearnedGaussianLikelihood, make_likelihood)

BOUND = 1e-6
D = 12


def likelihood_errors(likelihood, out, x):
    """check_function of nll with respect to the decoder output, x fixed."""
    return gradcheck.check_function(lambda out: likelihood.forward(out, x),
                                    lambda dnll: {"out": likelihood.backward(dnll)},
                                    {"out": out})


def _decoder_output(likelihood, rng, batch=5):
    out = 2 * rng.standard_normal((batch, likelihood.out_dim(D)))
    if isinstance(likelihood, LearnedGaussianLikelihood):
        # log-variances inside the clamp [-10, 10], away from its edges
        out[:, D:] = rng.uniform(-3, 3, size=(batch, D))
    return out


@pytest.mark.parametrize("pixels", ["binary", "grey"])
@pytest.mark.parametrize("name,kwargs", [("bernoulli", {}), ("gaussian", {}),
                                         ("gaussian", {"variance": 0.3}),
                                         ("gaussian_learned", {})])
def test_likelihood_gradient_matches_finite_differences(name, kwargs, pixels, backend64, rng):
    likelihood = make_likelihood(name, backend64, **kwargs)
    x = rng.random((5, D))
    if pixels == "binary":
        x = (x < 0.5).astype(np.float64)
    errors = likelihood_errors(likelihood, _decoder_output(likelihood, rng), x)
    assert errors["out"] < BOUND


def test_learned_gaussian_has_no_gradient_through_clamped_log_variances(backend64, rng):
    likelihood = LearnedGaussianLikelihood(backend64)
    x = rng.random((3, D))
    # Every log-variance outside [-10, 10].  The means are close to x where the
    # variance is clamped to exp(-10), far where it is clamped to exp(10): so the
    # NLL stays O(10) nats and no gradient entry shrinks to rounding size.
    low = rng.random((3, D)) < 0.5
    s = np.where(low, -12.0, 13.0)
    m = x + np.where(low, 0.01, 50.0) * rng.choice([-1.0, 1.0], size=(3, D))
    out = np.concatenate([m, s], axis=1)
    errors = likelihood_errors(likelihood, out, x)
    assert errors["out"] < BOUND
    likelihood.forward(out, x)
    np.testing.assert_array_equal(likelihood.backward(np.ones(3))[:, D:], 0.0)


class BernoulliWithoutSigmoid(BernoulliLikelihood):
    """The bug: dnll/dl = l - x, as if the decoder output were the probability."""

    def forward(self, out, x):
        self._out, self._x = out, x
        return super().forward(out, x)

    def backward(self, dnll):
        return dnll[:, None] * (self._out - self._x)


def test_gradient_check_catches_a_bernoulli_gradient_that_skips_the_sigmoid(backend64, rng):
    likelihood = BernoulliWithoutSigmoid(backend64)
    assert likelihood_errors(likelihood, _decoder_output(likelihood, rng), rng.random((5, D)))["out"] > 1e-2


# --------------------------------------------------------------------------
# Values: the textbook densities
# --------------------------------------------------------------------------

def naive_bce(logits, x):
    p = 1 / (1 + np.exp(-logits))
    return -(x * np.log(p) + (1 - x) * np.log(1 - p)).sum(axis=1)


@settings(max_examples=100, deadline=None)
@given(data=st.data(), batch=st.integers(1, 6), width=st.integers(1, 10))
def test_bce_on_logits_agrees_with_the_naive_formula_where_it_is_stable(data, batch, width):
    logits = data.draw(hnp.arrays(np.float64, (batch, width), elements=st.floats(-15, 15)))
    x = data.draw(hnp.arrays(np.float64, (batch, width), elements=st.floats(0, 1)))
    nll, grad = ops.bernoulli_nll_and_grad(logits, x)
    np.testing.assert_allclose(nll, naive_bce(logits, x), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(grad, 1 / (1 + np.exp(-logits)) - x, rtol=1e-9, atol=1e-15)


EXTREME_LOGITS = [-1e4, -1e3, -100.0, -30.0, -1e-30, 0.0, 1e-30, 30.0, 100.0, 1e3, 1e4]


@settings(max_examples=100, deadline=None)
@given(data=st.data(), dtype=st.sampled_from(["float32", "float64"]), batch=st.integers(1, 4))
def test_bce_is_finite_and_silent_at_extreme_logits(data, dtype, batch):
    width = 32 if dtype == "float32" else 64
    logit = st.one_of(st.sampled_from(EXTREME_LOGITS), st.floats(-1e4, 1e4, width=width))
    logits = data.draw(hnp.arrays(dtype, (batch, 8), elements=logit))
    x = data.draw(hnp.arrays(dtype, (batch, 8), elements=st.sampled_from([0.0, 1.0, 0.5, 0.25])))
    likelihood = BernoulliLikelihood(get_backend("numpy", dtype=dtype))
    # exp(-|l|) underflowing to 0 for large |l| is the intended saturation (and
    # NumPy ignores underflow by default); overflow, 0/0 or log(0) would be bugs.
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")
        nll = likelihood.forward(logits, x)
        dout = likelihood.backward(np.ones(batch, dtype=dtype))
        cheap = likelihood.nll(logits, x)
        mean = likelihood.mean(logits)
    assert nll.dtype == dout.dtype == mean.dtype == dtype
    assert np.all(np.isfinite(nll)) and np.all(nll >= 0)
    assert np.all(np.abs(dout) <= 1)                      # sigmoid(l) - x with x in [0, 1]
    assert np.all((mean >= 0) & (mean <= 1))
    np.testing.assert_array_equal(cheap, nll)


def test_bce_at_saturated_logits_is_the_size_of_the_mistake():
    # a confident right answer costs ~0 nats, a confident wrong one |l| nats
    logits = np.array([[1e4, -1e4, 1e4, -1e4]])
    x = np.array([[1.0, 0.0, 0.0, 1.0]])
    per_pixel = [ops.bernoulli_nll(logits[:, [j]], x[:, [j]])[0] for j in range(4)]
    assert per_pixel == [0.0, 0.0, 1e4, 1e4]


def test_gaussian_nll_is_minus_log_density(backend64, rng):
    variance = 0.3
    out, x = rng.standard_normal((4, D)), rng.random((4, D))
    density = np.exp(-(x - out) ** 2 / (2 * variance)) / np.sqrt(2 * np.pi * variance)
    expected = -np.log(density).sum(axis=1)
    np.testing.assert_allclose(GaussianLikelihood(variance, backend64).nll(out, x), expected, rtol=1e-12)


def test_learned_gaussian_nll_is_minus_log_density(backend64, rng):
    m, s, x = rng.standard_normal((4, D)), rng.uniform(-3, 3, (4, D)), rng.random((4, D))
    var = np.exp(s)
    density = np.exp(-(x - m) ** 2 / (2 * var)) / np.sqrt(2 * np.pi * var)
    expected = -np.log(density).sum(axis=1)
    out = np.concatenate([m, s], axis=1)
    np.testing.assert_allclose(LearnedGaussianLikelihood(backend64).nll(out, x), expected, rtol=1e-12)


def test_learned_gaussian_clamps_the_log_variance_to_its_range(backend64):
    likelihood = LearnedGaussianLikelihood(backend64)
    x = np.zeros((1, 1))
    low, high = likelihood.PIXEL_LOGVAR_RANGE
    # an always-zero pixel cannot drive the NLL to minus infinity
    assert likelihood.nll(np.array([[0.0, -1e4]]), x)[0] == pytest.approx(0.5 * (low + math.log(2 * math.pi)))
    assert likelihood.nll(np.array([[0.0, 1e4]]), x)[0] == pytest.approx(0.5 * (high + math.log(2 * math.pi)))


def _textbook_nll(name, out, x):
    """-sum_d log p(x_d | out), from the densities as a textbook writes them."""
    if name == "bernoulli":
        p = 1 / (1 + np.exp(-out))
        return -(x * np.log(p) + (1 - x) * np.log(1 - p)).sum(axis=1)
    m, var = (out, np.ones_like(out)) if name == "gaussian" else (out[:, :D], np.exp(out[:, D:]))
    return -np.log(np.exp(-(x - m) ** 2 / (2 * var)) / np.sqrt(2 * np.pi * var)).sum(axis=1)


@pytest.mark.parametrize("name", sorted(LIKELIHOODS))
def test_the_training_forward_and_the_cacheless_nll_both_give_minus_log_density(name, backend64, rng):
    """forward (the training step, which caches for backward) and nll (no
    cache) are separate code for some likelihoods; each is held to the
    textbook value on its own, not to the other (where forward calls nll,
    comparing the two could not fail)."""
    likelihood = make_likelihood(name, backend64)
    out, x = _decoder_output(likelihood, rng), rng.random((5, D))  # logits within +-8: p not 0 or 1
    expected = _textbook_nll(name, out, x)
    np.testing.assert_allclose(likelihood.forward(out, x), expected, rtol=1e-12)
    np.testing.assert_allclose(likelihood.nll(out, x), expected, rtol=1e-12)


def test_mean_of_each_likelihood(backend64):
    out = np.array([[-1e3, 0.0, 2.0, 5.0]])
    np.testing.assert_allclose(BernoulliLikelihood(backend64).mean(out),
                               [[0.0, 0.5, 1 / (1 + np.exp(-2)), 1 / (1 + np.exp(-5))]], rtol=1e-12)
    np.testing.assert_array_equal(GaussianLikelihood(backend=backend64).mean(out), out)
    np.testing.assert_array_equal(LearnedGaussianLikelihood(backend64).mean(out), [[-1e3, 0.0]])


def test_out_dim_is_D_except_for_the_learned_variance():
    assert BernoulliLikelihood().out_dim(784) == 784
    assert GaussianLikelihood().out_dim(784) == 784
    assert LearnedGaussianLikelihood().out_dim(784) == 2 * 784


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", sorted(LIKELIHOODS))
def test_likelihoods_keep_the_backend_dtype(name, dtype, rng):
    bk = get_backend("numpy", dtype=dtype)
    likelihood = make_likelihood(name, bk)
    out = bk.asarray(_decoder_output(likelihood, rng, batch=3))
    x = bk.asarray(rng.random((3, D)))
    nll = likelihood.forward(out, x)
    assert nll.dtype == dtype
    assert likelihood.backward(bk.asarray(np.ones(3))).dtype == dtype
    assert likelihood.nll(out, x).dtype == dtype


# --------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------

def test_unknown_likelihood_lists_the_choices():
    with pytest.raises(ValueError) as info:
        make_likelihood("poisson")
    for name in LIKELIHOODS:
        assert name in str(info.value)


@pytest.mark.parametrize("variance", [0.0, -1.0, float("nan")])
def test_gaussian_refuses_a_variance_that_is_not_positive(variance):
    with pytest.raises(ValueError, match="variance must be positive"):
        GaussianLikelihood(variance)


def test_learned_gaussian_refuses_an_output_of_the_wrong_width(backend64):
    with pytest.raises(ValueError, match=r"width 2 \* 4, got 5"):
        LearnedGaussianLikelihood(backend64).nll(np.zeros((2, 5)), np.zeros((2, 4)))
