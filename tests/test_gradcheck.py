"""Specification of the gradient checker (numpy_vae/gradcheck.py).

Every other gradient test trusts this module, so it is tested on functions
whose derivatives we know by heart, and shown to notice a wrong gradient.
"""

import numpy as np
import pytest

from numpy_vae import VAE, gradcheck
from numpy_vae.layers import Linear


# --------------------------------------------------------------------------
# relative_error: |a - n| / max(|a| + |n|, tiny), the largest over elements
# --------------------------------------------------------------------------

def test_relative_error_of_known_values():
    assert gradcheck.relative_error([1.0], [1.0]) == 0.0
    assert gradcheck.relative_error([1.0], [1.1]) == pytest.approx(0.1 / 2.1)
    assert gradcheck.relative_error([1.0], [-1.0]) == pytest.approx(1.0)   # a flipped sign
    assert gradcheck.relative_error([2.0], [1.0]) == pytest.approx(1 / 3)  # a missing factor 2


def test_relative_error_is_the_largest_over_the_elements():
    analytic = np.array([[1.0, 10.0], [100.0, 5.0]])
    numeric = np.array([[1.0, 10.0], [100.0, 5.5]])
    assert gradcheck.relative_error(analytic, numeric) == pytest.approx(0.5 / 10.5)


def test_relative_error_uses_tiny_when_both_are_zero_or_nearly():
    assert gradcheck.relative_error([0.0, 0.0], [0.0, 0.0]) == 0.0
    # both below tiny: the difference is measured against tiny instead
    assert gradcheck.relative_error([1e-14], [3e-14]) == pytest.approx(2e-14 / gradcheck.TINY)
    assert gradcheck.relative_error([1e-3], [3e-3], tiny=1.0) == pytest.approx(2e-3)


def test_relative_error_of_empty_arrays_is_zero():
    assert gradcheck.relative_error(np.zeros((0, 3)), np.zeros((0, 3))) == 0.0


def test_relative_error_refuses_arrays_of_different_shapes():
    with pytest.raises(ValueError, match="shapes differ"):
        gradcheck.relative_error(np.zeros(3), np.zeros((3, 1)))


# --------------------------------------------------------------------------
# numerical_gradient: the central difference itself
# --------------------------------------------------------------------------

@pytest.mark.parametrize("order", [2, 4])
def test_numerical_gradient_of_sum_of_squares_is_2x(order, rng):
    x = rng.standard_normal((4, 3))
    n = gradcheck.numerical_gradient(lambda: np.sum(x * x), x, order=order)
    assert gradcheck.relative_error(2 * x, n) < 1e-8


@pytest.mark.parametrize("order", [2, 4])
def test_numerical_gradient_of_sum_of_sines_is_cosine(order):
    # ten points in [-3, 3], none near +-pi/2 where cos(x) = 0 would make the
    # relative error meaningless (|cos| >= 0.09 at these points)
    x = np.linspace(-3, 3, 10)
    n = gradcheck.numerical_gradient(lambda: np.sum(np.sin(x)), x, order=order, h=1e-4)
    assert gradcheck.relative_error(np.cos(x), n) < 1e-6


def test_fourth_order_stencil_beats_the_second_order_one_at_the_same_h():
    x = np.array([0.7])
    exact = np.cos(0.7)
    h = 1e-2
    err2 = abs(gradcheck.numerical_gradient(lambda: np.sin(x).sum(), x, h, order=2)[0] - exact)
    err4 = abs(gradcheck.numerical_gradient(lambda: np.sin(x).sum(), x, h, order=4)[0] - exact)
    assert err2 == pytest.approx(h**2 / 6 * np.cos(0.7), rel=1e-3)   # the h^2 term of Taylor
    assert err4 < err2 / 1000


def test_numerical_gradient_leaves_x_exactly_as_it_found_it(rng):
    x = rng.standard_normal((3, 5))
    before = x.copy()
    gradcheck.numerical_gradient(lambda: np.sum(np.exp(x)), x)
    np.testing.assert_array_equal(x, before)


def test_numerical_gradient_checks_only_the_requested_indices(rng):
    x = rng.standard_normal((2, 3))
    n = gradcheck.numerical_gradient(lambda: np.sum(x ** 3), x, indices=[1, 4])
    flat = n.reshape(-1)
    assert gradcheck.relative_error(flat[[1, 4]], 3 * x.reshape(-1)[[1, 4]] ** 2) < 1e-8
    assert np.all(flat[[0, 2, 3, 5]] == 0)


def test_numerical_gradient_of_a_function_that_ignores_x_is_exactly_zero(rng):
    x = rng.standard_normal(5)
    y = rng.standard_normal(5)
    assert np.all(gradcheck.numerical_gradient(lambda: np.sum(y * y), x) == 0)


def test_numerical_gradient_refuses_float32_with_a_clear_message():
    x = np.ones(3, dtype=np.float32)
    with pytest.raises(TypeError, match="float64"):
        gradcheck.numerical_gradient(lambda: float(np.sum(x)), x)


def test_numerical_gradient_refuses_an_unknown_order():
    with pytest.raises(ValueError, match="order"):
        gradcheck.numerical_gradient(lambda: 0.0, np.zeros(2), order=3)


def test_numerical_gradient_refuses_a_non_contiguous_view():
    x = np.zeros((4, 4))[:, ::2]
    with pytest.raises(ValueError, match="contiguous"):
        gradcheck.numerical_gradient(lambda: 0.0, x)


# --------------------------------------------------------------------------
# check_layer, check_function, check_model: they must notice a wrong gradient
# --------------------------------------------------------------------------

class _Square:
    """y = x^2 with a hand-written backward that may be wrong by a factor."""

    def __init__(self, factor=2.0):
        self.factor = factor

    def forward(self, x):
        self._x = x
        return x * x

    def backward(self, dy):
        return {"x": dy * self.factor * self._x}


def test_check_function_passes_a_right_gradient_and_flags_a_wrong_one(rng):
    inputs = {"x": rng.standard_normal((3, 4))}
    right, wrong = _Square(2.0), _Square(1.0)
    assert gradcheck.check_function(right.forward, right.backward, inputs)["x"] < 1e-8
    assert gradcheck.check_function(wrong.forward, wrong.backward, inputs)["x"] > 0.1


def test_check_layer_reports_the_input_and_every_parameter(backend64, rng):
    errors = gradcheck.check_layer(Linear(4, 3, backend64), rng.standard_normal((5, 4)))
    assert set(errors) == {"x", "W", "b"}
    assert max(errors.values()) < 1e-6

    # a first layer that skips dx reports only its parameters
    first = Linear(4, 3, backend64, input_grad=False)
    assert set(gradcheck.check_layer(first, rng.standard_normal((5, 4)))) == {"W", "b"}


def test_check_layer_with_max_elements_checks_a_sample(backend64, rng):
    errors = gradcheck.check_layer(Linear(30, 20, backend64), rng.standard_normal((2, 30)),
                                   max_elements=7)
    assert set(errors) == {"x", "W", "b"} and max(errors.values()) < 1e-6


def test_check_model_refuses_a_float32_model():
    model = VAE(6, (4,), 2, dtype="float32")
    with pytest.raises(TypeError, match="float64"):
        gradcheck.check_model(model, np.zeros((2, 6)))


def test_check_model_reports_each_parameter_arrays_own_error():
    """Every array of a correct model passes; when one array's gradient is
    10% off, that array, and no other, fails."""
    model = VAE(6, (4,), 2, activation="tanh", dtype="float64")
    x = np.linspace(0, 1, 12).reshape(2, 6)
    eps = np.random.default_rng(3).standard_normal((2, 2))
    errors = gradcheck.check_model(model, x, eps=eps, max_elements=3)
    assert list(errors) == list(model.params)
    assert max(errors.values()) < 1e-6

    correct = model.loss_and_grads

    def one_array_off(*args, **kwargs):
        loss, grads, info = correct(*args, **kwargs)
        grads["decoder.0.W"] *= 1.1
        return loss, grads, info

    model.loss_and_grads = one_array_off
    errors = gradcheck.check_model(model, x, eps=eps, max_elements=3)
    assert errors["decoder.0.W"] > 0.04  # |1.1 g - g| / (|1.1 g| + |g|) = 0.048
    assert max(err for name, err in errors.items() if name != "decoder.0.W") < 1e-6


# --------------------------------------------------------------------------
# format_table
# --------------------------------------------------------------------------

def test_format_table_lists_every_name_and_its_error():
    errors = {"encoder.0.W": 3.2e-9, "decoder.1.b": 0.25}
    table = gradcheck.format_table(errors)
    for name in errors:
        assert name in table
    assert "3.20e-09" in table and "2.50e-01" in table
    assert len(table.splitlines()) == 1 + len(errors)       # a header, then one row each


def test_format_table_marks_errors_above_the_threshold():
    table = gradcheck.format_table({"good": 1e-9, "bad": 1e-2}, threshold=1e-6)
    rows = dict(line.split(maxsplit=1) for line in table.splitlines()[1:])
    assert rows["good"].endswith("yes")
    assert rows["bad"].endswith("NO")
