"""Conv2D, ConvTranspose2D, im2col/col2im, Flatten and Reshape.

The references here are independent of the code under test: a direct
six-loop convolution, a direct scatter for the transposed convolution,
finite differences for every gradient, and inner products for adjointness.
"""

import types

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from numpy_vae import ops
from numpy_vae.backend import Backend, get_backend
from numpy_vae.conv import Conv2D, ConvTranspose2D
from numpy_vae.gradcheck import check_layer
from numpy_vae.im2col import col2im, im2col
from numpy_vae.reshape import Flatten, Reshape

GRAD_TOL = 1e-6


def f64():
    return get_backend("numpy", dtype="float64", seed=0)


# --- independent references ---------------------------------------------------

def naive_conv2d(x, W, b, stride, padding):
    """y[n, o, oh, ow] = b[o] + sum_{c,i,j} W[o, c, i, j] xpad[n, c, s oh + i, s ow + j]."""
    N, C, H, Wd = x.shape
    O, _, kh, kw = W.shape
    s, p = stride, padding
    xpad = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    Ho, Wo = (H + 2 * p - kh) // s + 1, (Wd + 2 * p - kw) // s + 1
    y = np.empty((N, O, Ho, Wo))
    for n in range(N):
        for o in range(O):
            for oh in range(Ho):
                for ow in range(Wo):
                    patch = xpad[n, :, s * oh:s * oh + kh, s * ow:s * ow + kw]
                    y[n, o, oh, ow] = b[o] + np.sum(W[o] * patch)
    return y


def naive_conv_transpose2d(x, W, b, stride, padding, output_padding):
    """Each x[n, c, h, w] stamps W[c, o] * x at (s h - p, s w - p) of the output."""
    N, C, H, Wd = x.shape
    _, O, kh, kw = W.shape
    s, p, op = stride, padding, output_padding
    Ho, Wo = (H - 1) * s - 2 * p + kh + op, (Wd - 1) * s - 2 * p + kw + op
    full = np.zeros((N, O, (H - 1) * s + kh + op, (Wd - 1) * s + kw + op))
    for n in range(N):
        for c in range(C):
            for h in range(H):
                for w in range(Wd):
                    full[n, :, s * h:s * h + kh, s * w:s * w + kw] += x[n, c, h, w] * W[c]
    return full[:, :, p:p + Ho, p:p + Wo] + b[None, :, None, None]


# --- output shapes ------------------------------------------------------------------

@settings(max_examples=60, deadline=None)
@given(N=st.integers(1, 2), C=st.integers(1, 3), O=st.integers(1, 3),
       H=st.integers(1, 12), W=st.integers(1, 12), k=st.integers(1, 5),
       s=st.integers(1, 3), p=st.integers(0, 2))
def test_conv2d_output_shape_is_floor_formula(N, C, O, H, W, k, s, p):
    assume(H + 2 * p >= k and W + 2 * p >= k)
    y = Conv2D(C, O, k, s, p, backend=f64()).forward(np.zeros((N, C, H, W)))
    assert y.shape == (N, O, (H + 2 * p - k) // s + 1, (W + 2 * p - k) // s + 1)


@settings(max_examples=60, deadline=None)
@given(N=st.integers(1, 2), C=st.integers(1, 3), O=st.integers(1, 3),
       H=st.integers(1, 7), W=st.integers(1, 7), k=st.integers(1, 5),
       s=st.integers(1, 3), p=st.integers(0, 2), data=st.data())
def test_conv_transpose2d_output_shape_inverts_the_conv_formula(N, C, O, H, W, k, s, p, data):
    op = data.draw(st.integers(0, s - 1), label="output_padding")
    Ho, Wo = (H - 1) * s - 2 * p + k + op, (W - 1) * s - 2 * p + k + op
    assume(Ho >= 1 and Wo >= 1)
    layer = ConvTranspose2D(C, O, k, s, p, output_padding=op, backend=f64())
    y = layer.forward(np.zeros((N, C, H, W)))
    assert y.shape == (N, O, Ho, Wo)
    # and a Conv2D with the same k, s, p maps that size back to H x W
    if Ho + 2 * p >= k and Wo + 2 * p >= k:
        assert Conv2D(O, C, k, s, p, backend=f64()).forward(y).shape == (N, C, H, W)


# --- forward passes against direct loops ----------------------------------------------

FORWARD_CASES = [  # (batch, in_c, out_c, kernel, stride, padding, H, W)
    (1, 1, 1, 1, 1, 0, 4, 4),
    (2, 2, 3, 3, 1, 1, 7, 5),
    (2, 3, 2, 4, 2, 1, 7, 5),
    (1, 2, 2, 3, 3, 2, 7, 5),
    (2, 1, 3, (3, 2), 2, 0, 6, 5),
]


@pytest.mark.parametrize("N, C, O, k, s, p, H, W", FORWARD_CASES)
def test_conv2d_forward_matches_direct_loops(N, C, O, k, s, p, H, W):
    layer = Conv2D(C, O, k, s, p, backend=f64())
    x = np.random.default_rng(1).standard_normal((N, C, H, W))
    expected = naive_conv2d(x, layer.params["W"], layer.params["b"], s, p)
    np.testing.assert_allclose(layer.forward(x), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("N, C, O, k, s, p, H, W", FORWARD_CASES)
def test_conv_transpose2d_forward_matches_direct_scatter(N, C, O, k, s, p, H, W):
    op = s - 1  # the largest output_padding allowed
    layer = ConvTranspose2D(C, O, k, s, p, output_padding=op, backend=f64())
    x = np.random.default_rng(2).standard_normal((N, C, H, W))
    expected = naive_conv_transpose2d(x, layer.params["W"], layer.params["b"], s, p, op)
    np.testing.assert_allclose(layer.forward(x), expected, rtol=1e-12, atol=1e-12)


# --- adjointness -----------------------------------------------------------------------

ADJOINT_CASES = [  # (batch, in_c, out_c, kernel, stride, padding, H, W): conv's input size
    (1, 1, 1, 3, 1, 0, 5, 5),
    (2, 2, 3, 3, 1, 1, 7, 5),
    (2, 3, 2, 4, 2, 1, 7, 5),       # output_padding 1
    (1, 2, 3, 3, 3, 2, 7, 4),       # output_padding 1, stride 3
    (2, 1, 2, 4, 2, 1, 28, 28),     # the ConvVAE's first layer
]


@pytest.mark.parametrize("N, C, O, k, s, p, H, W", ADJOINT_CASES)
def test_conv_transpose_is_the_adjoint_of_conv(N, C, O, k, s, p, H, W):
    """<conv(x), y> = <x, conv_t(y)> with the same weights and no bias."""
    conv = Conv2D(C, O, k, s, p, backend=f64())
    op = (H + 2 * p - k) % s  # the rows the conv's floor dropped
    conv_t = ConvTranspose2D(O, C, k, s, p, output_padding=op, backend=f64())
    conv_t.params["W"][...] = conv.params["W"]
    conv.params["b"][...] = 0
    conv_t.params["b"][...] = 0
    rng = np.random.default_rng(3)
    x = rng.standard_normal((N, C, H, W))
    y = rng.standard_normal(conv.forward(x).shape)
    lhs = np.sum(conv.forward(x) * y)
    rhs = np.sum(x * conv_t.forward(y))
    assert abs(lhs - rhs) <= 1e-10 * max(1.0, abs(lhs))


def test_col2im_is_the_adjoint_of_im2col():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 3, 7, 5))
    cols = im2col(x, 3, 2, 2, 1)
    c = rng.standard_normal(cols.shape)
    assert np.sum(cols * c) == pytest.approx(np.sum(x * col2im(c, x.shape, 3, 2, 2, 1)), rel=1e-12)


# --- gradients against finite differences ---------------------------------------

GRAD_CASES = [  # (batch, in_c, out_c, kernel, stride, padding, H, W, output_padding)
    (1, 1, 1, 1, 1, 0, 4, 4, 0),
    (2, 1, 2, 3, 1, 0, 7, 5, 0),
    (2, 2, 3, 3, 1, 1, 7, 5, 0),
    (1, 3, 2, 3, 2, 1, 7, 5, 1),
    (2, 2, 2, 4, 2, 1, 8, 8, 0),
    (1, 1, 3, 4, 3, 2, 7, 5, 1),
    (2, 3, 1, 1, 2, 2, 5, 7, 1),
    (1, 2, 3, 3, 3, 0, 7, 5, 2),
    (2, 2, 2, (3, 2), 2, 1, 7, 5, 1),
]


def _case_id(case):
    N, C, O, k, s, p, H, W, op = case
    kernel = k if isinstance(k, int) else "x".join(map(str, k))
    return f"b{N}-c{C}to{O}-k{kernel}-s{s}-p{p}-{H}x{W}-op{op}"


@pytest.mark.parametrize("case", GRAD_CASES, ids=_case_id)
def test_conv2d_gradients_match_finite_differences(case):
    N, C, O, k, s, p, H, W, _ = case  # output_padding is ConvTranspose2D's only
    layer = Conv2D(C, O, k, s, p, backend=f64())
    x = np.random.default_rng(5).standard_normal((N, C, H, W))
    errors = check_layer(layer, x)
    assert set(errors) == {"x", "W", "b"}
    assert max(errors.values()) < GRAD_TOL, errors


@pytest.mark.parametrize("case", GRAD_CASES, ids=_case_id)
def test_conv_transpose2d_gradients_match_finite_differences(case):
    N, C, O, k, s, p, H, W, op = case
    layer = ConvTranspose2D(C, O, k, s, p, output_padding=op, backend=f64())
    x = np.random.default_rng(6).standard_normal((N, C, H, W))
    errors = check_layer(layer, x)
    assert set(errors) == {"x", "W", "b"}
    assert max(errors.values()) < GRAD_TOL, errors


def test_a_wrong_backward_fails_the_gradient_check():
    """The check above can fail: halve dW and it does."""
    layer = Conv2D(2, 2, 3, 1, 1, backend=f64())
    backward = layer.backward

    def broken(dy):
        dx = backward(dy)
        layer.grads["W"] = layer.grads["W"] * 0.5
        return dx

    layer.backward = broken
    errors = check_layer(layer, np.random.default_rng(7).standard_normal((1, 2, 5, 5)))
    assert errors["W"] > 0.1


def test_input_grad_false_skips_dx_but_not_the_parameter_gradients():
    layer = Conv2D(1, 2, 3, 2, 1, backend=f64(), input_grad=False)
    x = np.random.default_rng(8).standard_normal((2, 1, 6, 6))
    y = layer.forward(x)
    assert layer.backward(np.ones_like(y)) is None
    assert layer.grads["W"].shape == (2, 1, 3, 3)
    np.testing.assert_allclose(layer.grads["b"], np.full(2, y[:, 0].size))


# --- dtypes, initialisation, errors ----------------------------------------------

@pytest.mark.parametrize("cls", [Conv2D, ConvTranspose2D])
def test_float32_layers_compute_in_float32(cls):
    layer = cls(2, 3, 4, 2, 1, backend=get_backend("numpy", dtype="float32"))
    x = np.ones((2, 2, 6, 6), dtype=np.float32)
    y = layer.forward(x)
    dx = layer.backward(np.ones_like(y))
    assert y.dtype == dx.dtype == layer.grads["W"].dtype == np.float32


@pytest.mark.parametrize("cls, fan_in", [(Conv2D, 16 * 3 * 3), (ConvTranspose2D, 32 * 3 * 3)])
def test_initial_weights_are_uniform_within_one_over_sqrt_fan_in(cls, fan_in):
    """PyTorch's default: U(-k, k), k = 1 / sqrt(W.shape[1] * kh * kw)."""
    layer = cls(16, 32, 3, backend=f64())
    k = 1 / np.sqrt(fan_in)
    W, b = layer.params["W"], layer.params["b"]
    assert W.shape == ((32, 16, 3, 3) if cls is Conv2D else (16, 32, 3, 3))
    assert np.abs(W).max() <= k and np.abs(b).max() <= k
    assert np.abs(W).max() > 0.95 * k          # really spread over (-k, k) ...
    assert abs(W.std() - k / np.sqrt(3)) < 0.05 * k   # ... uniformly: std of U(-k, k)


def test_layers_reject_inputs_with_the_wrong_channel_count():
    with pytest.raises(ValueError, match=r"\(batch, 3, height, width\)"):
        Conv2D(3, 2, 3, backend=f64()).forward(np.zeros((1, 2, 5, 5)))
    with pytest.raises(ValueError, match=r"\(batch, 3, height, width\)"):
        ConvTranspose2D(3, 2, 3, backend=f64()).forward(np.zeros((1, 5, 5)))


def test_conv2d_rejects_a_kernel_larger_than_the_padded_input():
    with pytest.raises(ValueError, match="does not fit"):
        Conv2D(1, 1, 5, padding=1, backend=f64()).forward(np.zeros((1, 1, 2, 2)))


def test_output_padding_must_be_smaller_than_the_stride():
    with pytest.raises(ValueError, match="output_padding"):
        ConvTranspose2D(1, 1, 4, stride=2, output_padding=2, backend=f64())


# --- the Numba twin of col2im ------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape, kh, kw, s, p", [
    ((2, 3, 7, 5), 3, 3, 1, 1),
    ((2, 32, 14, 14), 4, 4, 2, 1),
    ((1, 2, 7, 5), 4, 2, 3, 2),
    ((3, 1, 28, 28), 4, 4, 2, 1),
])
def test_numba_col2im_matches_the_numpy_reference(dtype, shape, kh, kw, s, p):
    pytest.importorskip("numba")
    rng = np.random.default_rng(9)
    cols = im2col(rng.standard_normal(shape).astype(dtype), kh, kw, s, p)
    expected = col2im(cols, shape, kh, kw, s, p)
    from numpy_vae.backends.numba_ops import col2im as col2im_numba
    got = col2im_numba(cols, shape, kh, kw, s, p)
    assert got.dtype == dtype and got.shape == shape
    np.testing.assert_allclose(got, expected, rtol=1e-6 if dtype == np.float32 else 1e-13,
                               atol=1e-5 if dtype == np.float32 else 1e-12)


def test_col2im_is_in_each_backends_kernel_table():
    pytest.importorskip("numba")
    from numpy_vae.backends.numba_ops import col2im as col2im_numba
    assert get_backend("numba", dtype="float64").ops.col2im is col2im_numba
    assert f64().ops.col2im is col2im


def test_conv_layers_call_the_backends_col2im():
    calls = []

    def counting_col2im(*args, **kwargs):
        calls.append(args[1])
        return col2im(*args, **kwargs)

    table = {name: getattr(ops, name) for name in ops.__all__}
    counting = Backend("numpy", np, np.dtype("float64"), np.random.default_rng(0),
                       types.SimpleNamespace(**dict(table, col2im=counting_col2im)), 0)
    conv = Conv2D(2, 3, 3, 1, 1, backend=counting)
    up = ConvTranspose2D(3, 2, 4, 2, 1, backend=counting)
    x = np.random.default_rng(9).standard_normal((2, 2, 5, 5))
    y = conv.forward(x)
    conv.backward(np.ones_like(y))
    up.forward(y)
    assert calls == [(2, 2, 5, 5), (2, 2, 10, 10)]  # Conv2D's dx, ConvTranspose2D's y


def test_conv_transpose2d_gives_the_same_result_with_either_col2im():
    pytest.importorskip("numba")
    a = ConvTranspose2D(3, 2, 4, 2, 1, output_padding=1, backend=f64())
    b = ConvTranspose2D(3, 2, 4, 2, 1, output_padding=1, backend=get_backend("numba", dtype="float64"))
    b.params["W"][...], b.params["b"][...] = a.params["W"], a.params["b"]
    x = np.random.default_rng(10).standard_normal((2, 3, 5, 4))
    np.testing.assert_allclose(b.forward(x), a.forward(x), rtol=1e-13, atol=1e-13)


# --- Flatten and Reshape ------------------------------------------------------------

def test_flatten_and_reshape_are_inverse_and_pass_gradients_back_unchanged():
    x = np.random.default_rng(11).standard_normal((2, 3, 4, 5))
    flatten, reshape = Flatten(backend=f64()), Reshape((3, 4, 5), backend=f64())
    flat = flatten.forward(x)
    assert flat.shape == (2, 60)
    assert flat[1, 1 * 20 + 2 * 5 + 3] == x[1, 1, 2, 3]   # feature c * H * W + h * W + w
    np.testing.assert_array_equal(reshape.forward(flat), x)
    dy = np.random.default_rng(12).standard_normal((2, 3, 4, 5))
    np.testing.assert_array_equal(flatten.backward(reshape.backward(dy)), dy)
    assert max(check_layer(flatten, x).values()) < GRAD_TOL
    assert max(check_layer(reshape, flat).values()) < GRAD_TOL


def test_reshape_rejects_a_size_mismatch():
    with pytest.raises(ValueError, match=r"\(batch, 3, 4, 4\)"):
        Reshape((3, 4, 4), backend=f64()).forward(np.zeros((2, 50)))
