"""Specification of the quantization node (numpy_vae/quantize.py).

Nearest really is nearest; the codebook and commitment terms have the
gradients the module docstring derives (checked against finite differences:
both are true gradients while no slot changes its code); and the gradient
sent back to z_e from the decoder is the straight-through copy, which is
the derivative of the surrogate z_e + sg[z_q - z_e], not of the
quantization itself (whose derivative is zero).
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from numpy_vae import gradcheck
from numpy_vae.backend import get_backend
from numpy_vae.quantize import VectorQuantize, nearest_codes

BATCH, SLOTS, DIM, CODES = 4, 3, 2, 5


def node_with(codebook):
    node = VectorQuantize(codebook.shape[0], codebook.shape[1], get_backend("numpy", dtype="float64"))
    node.params["codebook"][...] = codebook
    return node


def margin(z_e, codebook):
    """Smallest gap between the nearest and the second-nearest squared distance."""
    sq = ((z_e.reshape(-1, 1, z_e.shape[-1]) - codebook[None]) ** 2).sum(axis=2)
    sq.sort(axis=1)
    return float((sq[:, 1] - sq[:, 0]).min())


@pytest.fixture
def setup(rng):
    codebook = rng.standard_normal((CODES, DIM))
    z_e = rng.standard_normal((BATCH, SLOTS, DIM))
    assert margin(z_e, codebook) > 1e-3  # a step of 1e-5 cannot change a code
    return node_with(codebook), z_e, rng


@settings(max_examples=60, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 20), st.just(3)),
              elements=st.floats(-10, 10, allow_nan=False, width=64)),
       arrays(np.float64, st.tuples(st.integers(1, 9), st.just(3)),
              elements=st.floats(-10, 10, allow_nan=False, width=64)))
def test_nearest_code_is_nearest(z, codebook):
    codes = nearest_codes(z, codebook, np)
    assert codes.shape == (z.shape[0],)
    assert np.all((codes >= 0) & (codes < codebook.shape[0]))
    sq = ((z[:, None, :] - codebook[None]) ** 2).sum(axis=2)           # every distance, directly
    chosen = sq[np.arange(z.shape[0]), codes]
    assert np.all(chosen <= sq.min(axis=1) + 1e-9 * (1 + sq.max()))   # ties within rounding


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 6), st.integers(1, 5), st.integers(1, 4), st.integers(2, 8), st.integers(0, 2**31))
def test_forward_returns_codebook_rows_and_their_squared_distance(batch, slots, dim, codes, seed):
    rng = np.random.default_rng(seed)
    node = node_with(rng.standard_normal((codes, dim)))
    z_e = rng.standard_normal((batch, slots, dim))
    z_q, sq = node.forward(z_e)
    assert z_q.shape == z_e.shape and sq.shape == (batch,) and node.codes.shape == (batch, slots)
    np.testing.assert_array_equal(z_q, node.params["codebook"][node.codes])
    np.testing.assert_allclose(sq, ((z_e - z_q) ** 2).sum(axis=(1, 2)), rtol=1e-12)


def test_codebook_term_gradient_matches_finite_differences(setup):
    """||sg[z_e] - e||^2 as a function of the codebook: de_k = sum 2 w (e_k - z_e) over its slots."""
    node, z_e, rng = setup
    w = rng.random(BATCH)
    codebook = node.params["codebook"]

    def f():
        return float((node.forward(z_e)[1] * w).sum())

    node.forward(z_e)
    node.backward(np.zeros_like(z_e), w, np.zeros(BATCH))
    analytic = node.grads["codebook"].copy()
    numeric = gradcheck.numerical_gradient(f, codebook, 1e-5)
    assert np.abs(analytic).max() > 0.1
    assert gradcheck.relative_error(analytic, numeric) < 1e-7


def test_unchosen_codes_get_no_gradient(setup):
    node, z_e, _ = setup
    node.forward(z_e)
    node.backward(np.ones_like(z_e), np.ones(BATCH), np.ones(BATCH))
    unused = np.setdiff1d(np.arange(CODES), node.codes)
    used = np.unique(node.codes)
    assert np.all(node.grads["codebook"][unused] == 0)
    assert np.all(np.abs(node.grads["codebook"][used]).sum(axis=1) > 0)


def test_commitment_term_gradient_matches_finite_differences(setup):
    """||z_e - sg[e]||^2 as a function of z_e: dz_e = 2 w (z_e - z_q)."""
    node, z_e, rng = setup
    w = rng.random(BATCH)

    def f():
        return float((node.forward(z_e)[1] * w).sum())

    node.forward(z_e)
    analytic = node.backward(np.zeros_like(z_e), np.zeros(BATCH), w)
    numeric = gradcheck.numerical_gradient(f, z_e, 1e-5)
    assert gradcheck.relative_error(analytic, numeric) < 1e-7


def test_straight_through_copies_the_decoder_gradient_to_z_e(setup):
    """The straight-through estimator: dz_e = dz_q, exactly, when the loss terms weigh 0."""
    node, z_e, rng = setup
    dz_q = rng.standard_normal(z_e.shape)
    node.forward(z_e)
    np.testing.assert_array_equal(node.backward(dz_q, np.zeros(BATCH), np.zeros(BATCH)), dz_q)
    assert np.all(node.grads["codebook"] == 0)  # the decoder's gradient never reaches the codes


def test_straight_through_is_the_derivative_of_the_surrogate_not_of_quantization(setup):
    """What the straight-through estimator is, in numbers.

    For a scalar g(z_q) = sum(r * z_q):
    - the true derivative of g(quantize(z_e)) in z_e is zero (z_q does not
      move while no code changes), so finite differences give 0;
    - the surrogate z_q = z_e + sg[z_q - z_e] has the same value and the
      derivative r, which finite differences of the surrogate confirm;
    - the node's backward returns r: the surrogate's gradient.
    """
    node, z_e, rng = setup
    r = rng.standard_normal(z_e.shape)
    z_q0, _ = node.forward(z_e)
    offset = z_q0 - z_e.copy()  # sg[z_q - z_e], frozen at this point

    true = gradcheck.numerical_gradient(lambda: float((r * node.forward(z_e)[0]).sum()), z_e, 1e-5)
    surrogate = gradcheck.numerical_gradient(lambda: float((r * (z_e + offset)).sum()), z_e, 1e-5)
    node.forward(z_e)
    straight_through = node.backward(r, np.zeros(BATCH), np.zeros(BATCH))

    assert np.all(true == 0)
    assert gradcheck.relative_error(straight_through, surrogate) < 1e-8
    assert np.abs(straight_through).min() > 0  # so it is not the true derivative anywhere


def test_bad_shapes_and_sizes_fail_clearly():
    node = node_with(np.zeros((CODES, DIM)))
    with pytest.raises(ValueError, match=r"expected z_e of shape \(batch, slots, 2\), got \(4, 6\)"):
        node.forward(np.zeros((4, 6)))
    with pytest.raises(ValueError, match="positive sizes"):
        VectorQuantize(0, 2)
