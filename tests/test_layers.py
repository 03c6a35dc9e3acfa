"""Specification of the layers (numpy_vae/layers.py).

Each layer is held to three things: its forward pass computes the formula in
its docstring, its backward pass agrees with finite differences, and it
refuses inputs it cannot handle with a message that names the problem.
"""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from numpy_vae import get_backend, gradcheck
from numpy_vae.layers import (ACTIVATIONS, Clip, LeakyReLU, Linear, ReLU, Sequential,
                              Sigmoid, Softplus, Tanh, make_activation)

# A correct backward pass checked in float64 stays far below this; a wrong
# one (a missing factor, a flipped sign, a forgotten sum) lands near 0.1-1.
BOUND = 1e-6


def away_from(x, kinks, margin=0.1):
    """Move every element of x at least ``margin`` away from each kink.

    The finite difference perturbs by up to 2h = 6e-4; an input that close to
    the kink of a ReLU would straddle it and measure a slope that is neither
    side's, which is a fact about the difference quotient, not a bug.
    """
    x = np.array(x, dtype=np.float64)
    for k in kinks:
        near = np.abs(x - k) < margin
        x[near] = k + np.where(x[near] >= k, margin, -margin)
    return x


# --------------------------------------------------------------------------
# Backward passes agree with finite differences
# --------------------------------------------------------------------------

def _layer_cases(bk, rng):
    """name -> (layer, input of shape (5, 12)) for every layer the engine has."""
    x = 2 * rng.standard_normal((5, 12))          # reaches the curved parts of tanh, sigmoid
    return {
        "Linear": (Linear(12, 9, bk), x),
        "ReLU": (ReLU(bk), away_from(x, [0])),
        "LeakyReLU": (LeakyReLU(0.1, backend=bk), away_from(x, [0])),
        "Tanh": (Tanh(bk), x),
        "Sigmoid": (Sigmoid(bk), x),
        "Softplus": (Softplus(bk), x),
        "Clip": (Clip(-1.5, 1.0, backend=bk), away_from(x, [-1.5, 1.0])),
        "Sequential": (Sequential([Linear(12, 9, bk), Tanh(bk), Linear(9, 7, bk),
                                   Softplus(bk), Linear(7, 4, bk), Sigmoid(bk)]), x),
    }


LAYER_NAMES = list(_layer_cases(get_backend("numpy", dtype="float64"), np.random.default_rng(0)))


@pytest.mark.parametrize("name", LAYER_NAMES)
def test_layer_backward_matches_finite_differences(name, backend64, rng):
    layer, x = _layer_cases(backend64, rng)[name]

    errors = gradcheck.check_layer(layer, x)

    assert "x" in errors and set(errors) == {"x", *layer.params}
    assert max(errors.values()) < BOUND, gradcheck.format_table(errors)


def test_linear_without_input_gradient_still_has_correct_parameter_gradients(backend64, rng):
    layer = Linear(12, 9, backend64, input_grad=False)
    errors = gradcheck.check_layer(layer, rng.standard_normal((5, 12)))
    assert set(errors) == {"W", "b"}
    assert max(errors.values()) < BOUND
    assert layer.backward(np.ones((5, 9))) is None


def test_leaky_relu_gradient_on_the_negative_side_is_the_slope(backend64):
    layer = LeakyReLU(0.2, backend=backend64)
    layer.forward(np.array([[-2.0, 3.0]]))
    np.testing.assert_array_equal(layer.backward(np.array([[1.0, 1.0]])), [[0.2, 1.0]])


class LinearWithoutBatchSum(Linear):
    """The bug: db averages dy over the batch instead of summing it."""

    def backward(self, dy):
        dx = super().backward(dy)
        self.grads["b"] = dy.mean(axis=0)
        return dx


def test_gradient_check_catches_a_bias_gradient_without_the_batch_sum(backend64, rng):
    errors = gradcheck.check_layer(LinearWithoutBatchSum(12, 9, backend64),
                                   rng.standard_normal((5, 12)))
    assert errors["W"] < BOUND and errors["x"] < BOUND     # the rest is right...
    assert errors["b"] > 1e-2                              # ...and the checker points at b


class TanhBackwardFromInput(Tanh):
    """The bug: 1 - x^2 where the rule is 1 - y^2 with y = tanh(x)."""

    def forward(self, x):
        self._x = x
        return super().forward(x)

    def backward(self, dy):
        return dy * (1 - self._x * self._x)


def test_gradient_check_catches_a_derivative_taken_at_the_wrong_point(backend64, rng):
    errors = gradcheck.check_layer(TanhBackwardFromInput(backend64), rng.standard_normal((5, 12)))
    assert errors["x"] > 1e-2


# --------------------------------------------------------------------------
# Forward passes compute their formulas
# --------------------------------------------------------------------------

def test_linear_computes_x_times_W_plus_b(backend64, rng):
    layer = Linear(4, 3, backend64)
    x = rng.standard_normal((2, 4))
    W, b = layer.params["W"], layer.params["b"]
    expected = [[sum(x[n, i] * W[i, j] for i in range(4)) + b[j] for j in range(3)] for n in range(2)]
    np.testing.assert_allclose(layer.forward(x), expected, rtol=1e-12)


def test_linear_backward_is_the_three_matrix_formulas(backend64, rng):
    layer = Linear(4, 3, backend64)
    x, dy = rng.standard_normal((5, 4)), rng.standard_normal((5, 3))
    layer.forward(x)
    dx = layer.backward(dy)
    np.testing.assert_allclose(layer.grads["W"], x.T @ dy, rtol=1e-12)
    np.testing.assert_allclose(layer.grads["b"], dy.sum(axis=0), rtol=1e-12)
    np.testing.assert_allclose(dx, dy @ layer.params["W"].T, rtol=1e-12)


def test_linear_forward_does_not_modify_its_input_or_bias(backend64, rng):
    layer = Linear(4, 3, backend64)
    x = rng.standard_normal((2, 4))
    x_before, b_before = x.copy(), layer.params["b"].copy()
    layer.forward(x)
    np.testing.assert_array_equal(x, x_before)
    np.testing.assert_array_equal(layer.params["b"], b_before)


def test_linear_init_is_uniform_within_one_over_sqrt_fan_in():
    layer = Linear(100, 50, get_backend("numpy", dtype="float64", seed=1))
    k = 1 / np.sqrt(100)
    W = layer.params["W"]
    assert W.shape == (100, 50) and layer.params["b"].shape == (50,)
    assert np.all(np.abs(W) <= k) and np.all(np.abs(layer.params["b"]) <= k)
    # 5000 uniform draws fill the interval: no shrunken or shifted range
    assert W.max() > 0.99 * k and W.min() < -0.99 * k
    assert abs(W.mean()) < 0.05 * k
    assert W.std() == pytest.approx(k / np.sqrt(3), rel=0.03)


def test_linear_init_follows_the_backend_seed():
    a = Linear(5, 3, get_backend("numpy", seed=4)).params["W"]
    b = Linear(5, 3, get_backend("numpy", seed=4)).params["W"]
    c = Linear(5, 3, get_backend("numpy", seed=5)).params["W"]
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


ACTIVATION_FORMULAS = {
    "relu": lambda x: np.where(x > 0, x, 0.0),
    "leaky_relu": lambda x: np.where(x > 0, x, 0.01 * x),
    "tanh": np.tanh,
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "softplus": lambda x: np.log(1 + np.exp(x)),
}


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_computes_its_textbook_formula(name, backend64):
    x = np.linspace(-20, 20, 81).reshape(9, 9)     # where the textbook form is still exact
    layer = make_activation(name, backend64)
    np.testing.assert_allclose(layer.forward(x), ACTIVATION_FORMULAS[name](x), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_is_finite_and_silent_at_extreme_inputs(name, dtype):
    bk = get_backend("numpy", dtype=dtype)
    x = bk.asarray([[-1e4, -100.0, -1e-30, 0.0, 1e-30, 100.0, 1e4]])
    layer = make_activation(name, bk)
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")
        y = layer.forward(x)
        dx = layer.backward(np.ones_like(y))
    assert y.dtype == dtype and dx.dtype == dtype
    assert np.all(np.isfinite(y)) and np.all(np.isfinite(dx))


def test_sigmoid_and_softplus_saturate_the_right_way():
    bk = get_backend("numpy", dtype="float64")
    x = np.array([[-1e4, 1e4]])
    np.testing.assert_array_equal(make_activation("sigmoid", bk).forward(x), [[0.0, 1.0]])
    np.testing.assert_array_equal(make_activation("softplus", bk).forward(x), [[0.0, 1e4]])


def test_clip_limits_values_and_passes_gradient_only_inside(backend64):
    layer = Clip(-1.0, 2.0, backend=backend64)
    x = np.array([[-5.0, -1.0, 0.5, 2.0, 7.0]])
    np.testing.assert_array_equal(layer.forward(x), [[-1.0, -1.0, 0.5, 2.0, 2.0]])
    np.testing.assert_array_equal(layer.backward(np.full_like(x, 3.0)), [[0, 3, 3, 3, 0]])


# --------------------------------------------------------------------------
# Shapes, names and errors
# --------------------------------------------------------------------------

@settings(max_examples=40, deadline=None)
@given(batch=st.integers(1, 17), widths=st.lists(st.integers(1, 12), min_size=2, max_size=4),
       activation=st.sampled_from(sorted(ACTIVATIONS)))
def test_sequential_shapes_for_any_batch_and_widths(batch, widths, activation):
    bk = get_backend("numpy", dtype="float64")
    layers = []
    for n_in, n_out in zip(widths[:-1], widths[1:]):
        layers += [Linear(n_in, n_out, bk), make_activation(activation, bk)]
    net = Sequential(layers)
    x = np.ones((batch, widths[0]))

    y = net.forward(x)
    dx = net.backward(np.ones_like(y))

    assert y.shape == (batch, widths[-1])
    assert dx.shape == x.shape
    assert list(net.grads) == list(net.params)
    for name, p in net.params.items():
        assert net.grads[name].shape == p.shape


def test_sequential_names_parameters_by_position_among_layers_with_parameters(backend64):
    net = Sequential([Linear(3, 4, backend64), ReLU(backend64), Linear(4, 2, backend64), Tanh(backend64)])
    assert list(net.params) == ["0.W", "0.b", "1.W", "1.b"]
    # the dict holds the layers' own arrays, so an optimizer updates the layers
    assert net.params["1.W"] is net[2].params["W"]
    assert len(net) == 4


def test_linear_refuses_an_input_of_the_wrong_width(backend64):
    with pytest.raises(ValueError, match=r"\(batch, 4\).*\(2, 5\)"):
        Linear(4, 3, backend64).forward(np.zeros((2, 5)))


def test_linear_refuses_a_one_dimensional_input(backend64):
    with pytest.raises(ValueError, match=r"\(batch, 4\)"):
        Linear(4, 3, backend64).forward(np.zeros(4))


@pytest.mark.parametrize("sizes", [(0, 3), (3, 0), (-1, 2)])
def test_linear_refuses_non_positive_sizes(sizes):
    with pytest.raises(ValueError, match="positive"):
        Linear(*sizes)


def test_unknown_activation_lists_the_choices():
    with pytest.raises(ValueError) as info:
        make_activation("swish")
    for name in ACTIVATIONS:
        assert name in str(info.value)


def test_clip_refuses_an_empty_range():
    with pytest.raises(ValueError, match="low < high"):
        Clip(1.0, 1.0)


def test_layers_keep_float32_in_float32():
    bk = get_backend("numpy", dtype="float32")
    net = Sequential([Linear(6, 5, bk), Softplus(bk), Linear(5, 3, bk), Sigmoid(bk)])
    x = bk.asarray(np.linspace(-1, 1, 12).reshape(2, 6))
    y = net.forward(x)
    dx = net.backward(np.ones_like(y))
    assert y.dtype == np.float32 and dx.dtype == np.float32
    assert all(g.dtype == np.float32 for g in net.grads.values())
