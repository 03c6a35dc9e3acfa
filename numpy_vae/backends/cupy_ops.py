"""CuPy twins of the reference kernels in ``numpy_vae/ops.py``, for NVIDIA GPUs.

Every public function here has the name and the signature of its reference
in ops.py; the arrays are ``cupy.ndarray`` on the GPU.  The math is explained
once, in ops.py; each kernel below names the reference it mirrors.

Why kernels at all: CuPy runs ``0.5 * (1 + cupy.tanh(0.5 * x))`` as four
separate GPU kernels, each reading and writing the whole array.  An
``ElementwiseKernel`` does it in one pass, and a ``ReductionKernel`` fuses the
per-element work of a sum into the sum.  At batch 128 every kernel is tiny,
so the saving is mostly in launches (a few microseconds each).

- ``T`` is a type placeholder: CuPy compiles each kernel once per dtype
  (float32 or float64), on first use, and caches the binary on disk
  (~/.cupy/kernel_cache).  Constants are written ``(T)0.5`` so float32
  kernels stay float32; scalar arguments are cast to ``T`` by CuPy.
- The CUDA compiler fuses a * b + c into one rounding (FMA), and CUDA's
  exp/log/tanh differ from NumPy's by an ulp or two, so results match the
  reference to rounding, not bit for bit (tests/test_backends_cupy.py).
- Matrix products are not here: ``x @ W`` on CuPy arrays is cuBLAS.

This module imports cupy at the top: only ``get_backend("cupy")``
(numpy_vae/backend.py) imports it, after checking cupy and a GPU.  The
backend record that carries these kernels is in cupy_backend.py.
"""

from __future__ import annotations

import math

import cupy
import numpy as np

from numpy_vae import ops as _ref
from numpy_vae.im2col import col2im as _col2im_reference

_PREFIX = "numpy_vae_"


def _kernel(in_params, out_params, operation, name):
    return cupy.ElementwiseKernel(in_params, out_params, operation, _PREFIX + name)


# --- activations -----------------------------------------------------------

# relu: (x < 0) ? 0 : x rather than fmax(x, 0), which would turn NaN into 0;
# np.maximum(x, 0) keeps NaN, and so does this.
_relu = _kernel("T x", "T y", "y = (x < (T)0) ? (T)0 : x", "relu")
_relu_backward = _kernel("T dy, T x", "T dx", "dx = dy * ((x > (T)0) ? (T)1 : (T)0)", "relu_backward")
_leaky_relu = _kernel("T x, T slope", "T y", "y = (x > (T)0) ? x : x * slope", "leaky_relu")
_leaky_relu_backward = _kernel("T dy, T x, T slope", "T dx",
                               "dx = (x > (T)0) ? dy : dy * slope", "leaky_relu_backward")
_tanh = _kernel("T x", "T y", "y = tanh(x)", "tanh")
_tanh_backward = _kernel("T dy, T y", "T dx", "dx = dy * ((T)1 - y * y)", "tanh_backward")
_sigmoid = _kernel("T x", "T y", "y = (T)0.5 * ((T)1 + tanh((T)0.5 * x))", "sigmoid")
_sigmoid_backward = _kernel("T dy, T y", "T dx", "dx = dy * y * ((T)1 - y)", "sigmoid_backward")
_softplus = _kernel("T x", "T y", "y = fmax(x, (T)0) + log1p(exp(-fabs(x)))", "softplus")
_softplus_backward = _kernel("T dy, T x", "T dx",
                             "dx = dy * ((T)0.5 * ((T)1 + tanh((T)0.5 * x)))", "softplus_backward")


def relu(x):
    """Twin of ops.relu."""
    return _relu(x)


def relu_backward(dy, x):
    """Twin of ops.relu_backward."""
    return _relu_backward(dy, x)


def leaky_relu(x, slope):
    """Twin of ops.leaky_relu."""
    return _leaky_relu(x, slope)


def leaky_relu_backward(dy, x, slope):
    """Twin of ops.leaky_relu_backward."""
    return _leaky_relu_backward(dy, x, slope)


def tanh(x):
    """Twin of ops.tanh."""
    return _tanh(x)


def tanh_backward(dy, y):
    """Twin of ops.tanh_backward."""
    return _tanh_backward(dy, y)


def sigmoid(x):
    """Twin of ops.sigmoid (the tanh form, one pass)."""
    return _sigmoid(x)


def sigmoid_backward(dy, y):
    """Twin of ops.sigmoid_backward."""
    return _sigmoid_backward(dy, y)


def softplus(x):
    """Twin of ops.softplus."""
    return _softplus(x)


def softplus_backward(dy, x):
    """Twin of ops.softplus_backward: dy * sigmoid(x) in one pass."""
    return _softplus_backward(dy, x)


# --- bias ------------------------------------------------------------------

# y is an output argument, so the kernel updates it in place; b (out,)
# broadcasts over the batch rows of y (batch, out).
_add_bias = _kernel("T b", "T y", "y += b", "add_bias")
_sum_over_batch = cupy.ReductionKernel("T dy", "T db", "dy", "a + b", "db = a", "0",
                                       _PREFIX + "bias_grad")


def add_bias(y, b):
    """Twin of ops.add_bias (in place on y)."""
    _add_bias(b, y)
    return y


def bias_grad(dy):
    """Twin of ops.bias_grad: (batch, out) -> (out,)."""
    return _sum_over_batch(dy, axis=0)


# --- reparameterization + KL, one step -------------------------------------

# In the kernels the standard deviation is called sigma: ``std`` would hide
# C++'s namespace std inside the generated code.
_reparameterize = _kernel(
    "T mu, T logvar, T eps", "T z, T sigma, T var_minus_1",
    "sigma = exp((T)0.5 * logvar); var_minus_1 = expm1(logvar); z = mu + sigma * eps",
    "reparameterize")
_gaussian_kl_rows = cupy.ReductionKernel(
    "T mu, T logvar, T var_minus_1", "T kl", "mu * mu + var_minus_1 - logvar", "a + b",
    "kl = (T)0.5 * a", "0", _PREFIX + "gaussian_kl")
# dkl arrives as (batch, 1), so that it broadcasts over the row of each example.
_reparameterize_kl_backward = _kernel(
    "T dz, T dkl, T mu, T eps, T sigma, T var_minus_1", "T dmu, T dlogvar",
    "dmu = dz + dkl * mu; dlogvar = dz * eps * sigma * (T)0.5 + dkl * (T)0.5 * var_minus_1",
    "reparameterize_kl_backward")


def reparameterize_kl(mu, logvar, eps):
    """Twin of ops.reparameterize_kl: z, std and var_minus_1 in one elementwise
    kernel, the KL rows in one reduction over them (two launches)."""
    z, std, var_minus_1 = _reparameterize(mu, logvar, eps)
    return z, _gaussian_kl_rows(mu, logvar, var_minus_1, axis=1), std, var_minus_1


def reparameterize_kl_backward(dz, dkl, mu, eps, std, var_minus_1):
    """Twin of ops.reparameterize_kl_backward: dmu and dlogvar in one kernel."""
    return _reparameterize_kl_backward(dz, dkl[:, None], mu, eps, std, var_minus_1)


# --- Bernoulli likelihood on logits ---------------------------------------

# The NLL of one pixel, softplus(l) - x l, in the form of ops.bernoulli_nll.
_BERNOULLI_TERM = """
template <typename F>
__device__ F bernoulli_nll_term(F l, F x) {
    return fmax(l, (F)0) - x * l + log((F)1 + exp(-fabs(l)));
}
"""
_bernoulli_nll_rows = cupy.ReductionKernel(
    "T l, T x", "T nll", "bernoulli_nll_term(l, x)", "a + b", "nll = a", "0",
    _PREFIX + "bernoulli_nll", preamble=_BERNOULLI_TERM)
_bernoulli_grad = _kernel(
    "T l, T x", "T grad",
    "T e = exp(-fabs(l)); grad = ((l >= (T)0) ? (T)1 : e) / ((T)1 + e) - x",
    "bernoulli_grad")


def bernoulli_nll(logits, x):
    """Twin of ops.bernoulli_nll: one fused reduction over the pixels."""
    return _bernoulli_nll_rows(logits, x, axis=1)


def bernoulli_nll_and_grad(logits, x):
    """Twin of ops.bernoulli_nll_and_grad: a reduction for the NLL and an
    elementwise kernel for the gradient, each one pass (two launches)."""
    return _bernoulli_nll_rows(logits, x, axis=1), _bernoulli_grad(logits, x)


# --- the importance-weighted bound -------------------------------------------

def log_mean_exp_weights(a):
    """Twin of ops.log_mean_exp_weights, with the reference's array operations
    (CuPy runs each as a kernel).  In training a is (k, batch), a few hundred
    numbers: the cost is the handful of launches, not the arithmetic."""
    m = a.max(axis=0)
    shifted = cupy.exp(a - m)
    total = shifted.sum(axis=0)
    return m + cupy.log(total) - math.log(a.shape[0]), shifted / total


def bernoulli_nll_samples(logits, x):
    """Twin of ops.bernoulli_nll_samples, with the reference's array operations:
    (B, K, D), (B, D) -> (B, K) float64, each row summed in float64."""
    terms = cupy.maximum(logits, 0)
    terms += cupy.log(1 + cupy.exp(-cupy.abs(logits)))
    terms -= logits * x[:, None, :]
    return terms.sum(axis=2, dtype=np.float64)


# --- optimizer updates (in place) -----------------------------------------

# param, m and v are output arguments: read and written in place.
_adam = _kernel(
    "T grad, T beta1, T one_minus_beta1, T beta2, T one_minus_beta2, T step_size, T eps_hat, "
    "T m_below, T v_below",
    "T param, T m, T v",
    """
    m = beta1 * m + one_minus_beta1 * grad;
    v = beta2 * v + one_minus_beta2 * (grad * grad);
    if (m < m_below && m > -m_below) m = 0;  // flush to zero, as the reference does
    if (v < v_below) v = 0;                  // v >= 0; both thresholds 0 between flushes
    param -= step_size * (m / (sqrt(v) + eps_hat));
    """,
    "adam_update")
_sgd_momentum = _kernel(
    "T grad, T lr, T momentum", "T param, T velocity",
    "velocity = momentum * velocity + grad; param -= lr * velocity",
    "sgd_momentum_update")


def adam_update(param, grad, m, v, lr, beta1, beta2, eps, step):
    """Twin of ops.adam_update: the whole update in one kernel per parameter."""
    root_bc2 = math.sqrt(1 - beta2 ** step)
    step_size = lr * root_bc2 / (1 - beta1 ** step)
    m_below, v_below = _ref.flush_thresholds(param.dtype, beta1, beta2, step)
    _adam(grad, beta1, 1 - beta1, beta2, 1 - beta2, step_size, eps * root_bc2,
          m_below, v_below, param, m, v)


def sgd_momentum_update(param, grad, velocity, lr, momentum):
    """Twin of ops.sgd_momentum_update."""
    _sgd_momentum(grad, lr, momentum, param, velocity)


# --- watching training for divergence ---------------------------------------

# The sum of x * 0 over all elements, accumulated in float64: 0 if every x is
# finite, NaN otherwise (one launch instead of max, min and their arithmetic).
_finite_check = cupy.ReductionKernel("T x", "float64 y", "x * (T)0", "a + b", "y = a", "0",
                                     _PREFIX + "finite_check")


def finite_check(x):
    """Twin of ops.finite_check: one reduction over x."""
    return _finite_check(x)


# --- col2im, for the convolutional model ------------------------------------

def col2im(cols, x_shape, kh: int, kw: int, stride: int, padding: int, xp=np):
    """Twin of ops.col2im: the reference's strided += slices, run on CuPy
    arrays (one CuPy kernel launch per slice, kh * kw of them).  ``xp`` is
    accepted so the call sites look the same; the arrays are always CuPy's."""
    return _col2im_reference(cols, x_shape, kh, kw, stride, padding, xp=cupy)


__all__ = list(_ref.__all__)
