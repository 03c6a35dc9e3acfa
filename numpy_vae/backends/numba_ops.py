"""Numba twins of the reference kernels in ``numpy_vae/ops.py``.

Every public function here has the name and the signature of its reference
in ops.py and returns the same numbers: each twin does the reference's
operations in the reference's order, so on our machines the results are
equal to the last bit (tests/test_backends_numba.py holds each twin to its
reference).  One exception: reparameterize_kl adds up each row's KL in its
loop, in another order than NumPy's pairwise sum, so that kl agrees to
rounding.  The math is explained once, in ops.py; each twin below names the
reference it mirrors and says what it fuses.

How the twins are built
-----------------------
- The loop runs in a ``numba.njit`` kernel (``_relu_kernel`` ...) over
  C-contiguous arrays, flattened to 1-D where the shape does not matter; the
  public function allocates the output and calls it.  An input the kernels
  were not written for (a strided view, an integer or mixed-dtype array)
  goes to the reference instead: slower, never wrong.
- Constants enter the kernels already cast to the array's dtype.  In Numba a
  Python float is a float64, and ``x * 0.5`` with a float32 ``x`` would be
  computed, and stored, in float64.
- ``cache=True`` writes the compiled machine code next to this file (or
  under $NUMBA_CACHE_DIR), so only the first process ever compiles; a kernel
  is compiled on its first call, once per dtype.
- No ``parallel=True``: on our 2-core machines the second core is already
  busy with OpenBLAS threads (which spin for a while after each matrix
  product) or with other work, and the threaded kernels measured slower
  (benchmarks/NOTES.md).
- exp, log and tanh: pip's Numba has no vector math library (SVML), so in a
  loop it calls the C library's scalar ``expf`` once per element, while
  NumPy's own ufuncs evaluate 8 or 16 elements per instruction.  Where a
  kernel needs a transcendental function, NumPy evaluates it over the whole
  array and the twin fuses the arithmetic around it.
- Matrix products are not here: they stay with BLAS (``x @ W``).
"""

from __future__ import annotations

import math

import numba
import numpy as np

from numpy_vae import ops as _ref
from numpy_vae.im2col import conv_output_size

_KERNEL_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
# error_model="numpy": x / 0 gives inf or nan, as in NumPy.  Numba's default
# (Python's rule: raise ZeroDivisionError) tests every divisor, and that
# test stops the compiler from vectorising the loop: Adam ran 8x slower.
_jit = numba.njit(cache=True, nogil=True, error_model="numpy")


def _kernel_ready(*arrays) -> bool:
    """True if all arrays are C-contiguous NumPy arrays of one float dtype."""
    dtype = getattr(arrays[0], "dtype", None)
    if dtype not in _KERNEL_DTYPES:
        return False
    for a in arrays:
        if type(a) is not np.ndarray or a.dtype != dtype or not a.flags.c_contiguous:
            return False
    return True


def _elementwise(kernel, arrays, scalars=()):
    """A new array like ``arrays[0]``, filled by ``kernel(*flat arrays, *scalars, flat out)``."""
    out = np.empty_like(arrays[0])
    kernel(*(a.reshape(-1) for a in arrays), *scalars, out.reshape(-1))
    return out


# --- activations -----------------------------------------------------------

@_jit
def _relu_kernel(x, y):
    zero = x.dtype.type(0)
    for i in range(x.size):
        y[i] = max(x[i], zero)


def relu(x):
    """Twin of ops.relu."""
    if not _kernel_ready(x):
        return _ref.relu(x)
    return _elementwise(_relu_kernel, (x,))


@_jit
def _relu_backward_kernel(dy, x, dx):
    zero, one = x.dtype.type(0), x.dtype.type(1)
    for i in range(x.size):
        dx[i] = dy[i] * (one if x[i] > zero else zero)


def relu_backward(dy, x):
    """Twin of ops.relu_backward."""
    if not _kernel_ready(dy, x):
        return _ref.relu_backward(dy, x)
    return _elementwise(_relu_backward_kernel, (dy, x))


@_jit
def _leaky_relu_kernel(x, slope, y):
    zero = x.dtype.type(0)
    for i in range(x.size):
        y[i] = x[i] if x[i] > zero else x[i] * slope


def leaky_relu(x, slope):
    """Twin of ops.leaky_relu."""
    if not _kernel_ready(x):
        return _ref.leaky_relu(x, slope)
    return _elementwise(_leaky_relu_kernel, (x,), (x.dtype.type(slope),))


@_jit
def _leaky_relu_backward_kernel(dy, x, slope, dx):
    zero = x.dtype.type(0)
    for i in range(x.size):
        dx[i] = dy[i] if x[i] > zero else dy[i] * slope


def leaky_relu_backward(dy, x, slope):
    """Twin of ops.leaky_relu_backward."""
    if not _kernel_ready(dy, x):
        return _ref.leaky_relu_backward(dy, x, slope)
    return _elementwise(_leaky_relu_backward_kernel, (dy, x), (x.dtype.type(slope),))


def tanh(x):
    """Twin of ops.tanh: NumPy's vectorised tanh is the kernel (nothing to fuse)."""
    return _ref.tanh(x)


@_jit
def _tanh_backward_kernel(dy, y, dx):
    one = y.dtype.type(1)
    for i in range(y.size):
        dx[i] = dy[i] * (one - y[i] * y[i])


def tanh_backward(dy, y):
    """Twin of ops.tanh_backward."""
    if not _kernel_ready(dy, y):
        return _ref.tanh_backward(dy, y)
    return _elementwise(_tanh_backward_kernel, (dy, y))


@_jit
def _half_x_kernel(x, out):
    half = x.dtype.type(0.5)
    for i in range(x.size):
        out[i] = half * x[i]


@_jit
def _half_one_plus_kernel(t):
    half, one = t.dtype.type(0.5), t.dtype.type(1)
    for i in range(t.size):
        t[i] = half * (one + t[i])


def sigmoid(x):
    """Twin of ops.sigmoid: 0.5 * (1 + tanh(0.5 * x)), tanh by NumPy, in one buffer."""
    if not _kernel_ready(x):
        return _ref.sigmoid(x)
    y = np.empty_like(x)
    flat = y.reshape(-1)
    _half_x_kernel(x.reshape(-1), flat)
    np.tanh(y, out=y)
    _half_one_plus_kernel(flat)
    return y


@_jit
def _sigmoid_backward_kernel(dy, y, dx):
    one = y.dtype.type(1)
    for i in range(y.size):
        dx[i] = dy[i] * y[i] * (one - y[i])


def sigmoid_backward(dy, y):
    """Twin of ops.sigmoid_backward."""
    if not _kernel_ready(dy, y):
        return _ref.sigmoid_backward(dy, y)
    return _elementwise(_sigmoid_backward_kernel, (dy, y))


@_jit
def _minus_abs_kernel(x, out):
    for i in range(x.size):
        out[i] = -abs(x[i])


@_jit
def _softplus_finish_kernel(x, log1p_e, y):
    zero = x.dtype.type(0)
    for i in range(x.size):
        y[i] = max(x[i], zero) + log1p_e[i]


def softplus(x):
    """Twin of ops.softplus: max(x, 0) + log1p(exp(-|x|)), exp and log1p by NumPy."""
    if not _kernel_ready(x):
        return _ref.softplus(x)
    t = np.empty_like(x)
    _minus_abs_kernel(x.reshape(-1), t.reshape(-1))
    np.exp(t, out=t)
    np.log1p(t, out=t)
    y = np.empty_like(x)
    _softplus_finish_kernel(x.reshape(-1), t.reshape(-1), y.reshape(-1))
    return y


def softplus_backward(dy, x):
    """Twin of ops.softplus_backward: dy * sigmoid(x), with the sigmoid twin."""
    if not _kernel_ready(dy, x):
        return _ref.softplus_backward(dy, x)
    s = sigmoid(x)
    s *= dy
    return s


# --- bias ------------------------------------------------------------------

@_jit
def _add_bias_kernel(y, b):
    for i in range(y.shape[0]):
        for j in range(y.shape[1]):
            y[i, j] += b[j]


def add_bias(y, b):
    """Twin of ops.add_bias (in place on y: (batch, out), b: (out,))."""
    if not (_kernel_ready(y, b) and y.ndim == 2 and b.shape == y.shape[1:]):
        return _ref.add_bias(y, b)
    _add_bias_kernel(y, b)
    return y


@_jit
def _bias_grad_kernel(dy, db):
    # Row by row, as NumPy sums a C-contiguous array over axis 0; the inner
    # loop runs along a row, so it vectorises without reordering any sum.
    db[:] = 0
    for i in range(dy.shape[0]):
        for j in range(dy.shape[1]):
            db[j] += dy[i, j]


def bias_grad(dy):
    """Twin of ops.bias_grad: (batch, out) -> (out,)."""
    if not (_kernel_ready(dy) and dy.ndim == 2):
        return _ref.bias_grad(dy)
    db = np.empty(dy.shape[1], dtype=dy.dtype)
    _bias_grad_kernel(dy, db)
    return db


# --- reparameterization + KL, one step -------------------------------------

@_jit
def _reparameterize_kl_kernel(mu, logvar, eps, std, var_minus_1, z, kl):
    # std = exp(logvar / 2) and var_minus_1 = expm1(logvar) arrive computed
    # by NumPy; one pass over each row makes z and adds up the row's KL.
    zero, half = mu.dtype.type(0), mu.dtype.type(0.5)
    for i in range(mu.shape[0]):
        total = zero
        for j in range(mu.shape[1]):
            z[i, j] = mu[i, j] + std[i, j] * eps[i, j]
            total += mu[i, j] * mu[i, j] + var_minus_1[i, j] - logvar[i, j]
        kl[i] = half * total


def reparameterize_kl(mu, logvar, eps):
    """Twin of ops.reparameterize_kl: exp and expm1 by NumPy, then one pass
    for z and the KL.

    z, std and var_minus_1 are the reference's to the last bit.  kl is not
    always: the loop adds each row up left to right, NumPy's pairwise sum in
    another order (from 8 terms on), so the two can differ by a rounding of
    order latent_dim * eps * kl.
    """
    if not (_kernel_ready(mu, logvar, eps) and mu.ndim == 2
            and logvar.shape == mu.shape and eps.shape == mu.shape):
        return _ref.reparameterize_kl(mu, logvar, eps)
    std = 0.5 * logvar
    np.exp(std, out=std)
    var_minus_1 = np.expm1(logvar)
    z = np.empty_like(mu)
    kl = np.empty(mu.shape[0], dtype=mu.dtype)
    _reparameterize_kl_kernel(mu, logvar, eps, std, var_minus_1, z, kl)
    return z, kl, std, var_minus_1


@_jit
def _reparameterize_kl_backward_kernel(dz, dkl, mu, eps, std, var_minus_1, dmu, dlogvar):
    half = mu.dtype.type(0.5)
    for i in range(dz.shape[0]):
        dkl_i = dkl[i]
        for j in range(dz.shape[1]):
            dmu[i, j] = dz[i, j] + dkl_i * mu[i, j]
            dlogvar[i, j] = dz[i, j] * eps[i, j] * std[i, j] * half + dkl_i * half * var_minus_1[i, j]


def reparameterize_kl_backward(dz, dkl, mu, eps, std, var_minus_1):
    """Twin of ops.reparameterize_kl_backward: dmu and dlogvar in one pass."""
    if not (_kernel_ready(dz, dkl, mu, eps, std, var_minus_1) and dz.ndim == 2
            and dkl.shape == dz.shape[:1]
            and mu.shape == eps.shape == std.shape == var_minus_1.shape == dz.shape):
        return _ref.reparameterize_kl_backward(dz, dkl, mu, eps, std, var_minus_1)
    dmu, dlogvar = np.empty_like(dz), np.empty_like(dz)
    _reparameterize_kl_backward_kernel(dz, dkl, mu, eps, std, var_minus_1, dmu, dlogvar)
    return dmu, dlogvar


# --- Bernoulli likelihood on logits ---------------------------------------

@_jit
def _bernoulli_kernel(logits, x, e, log_one_plus_e, grad):
    # e = exp(-|l|) and log(1 + e) arrive computed by NumPy; this one pass
    # does the rest of ops.bernoulli_nll_and_grad for every pixel, and
    # overwrites log(1 + e) with the pixel's NLL, which NumPy then sums.
    zero, one = logits.dtype.type(0), logits.dtype.type(1)
    for i in range(logits.size):
        l, xi, ei = logits[i], x[i], e[i]
        log_one_plus_e[i] = max(l, zero) - xi * l + log_one_plus_e[i]
        grad[i] = (one if l >= zero else ei) / (one + ei) - xi


def bernoulli_nll_and_grad(logits, x):
    """Twin of ops.bernoulli_nll_and_grad: nll (batch,) and grad (batch, D).

    NumPy's pairwise ``sum`` adds up each row, as in the reference, so the
    NLL is the reference's to the last bit.
    """
    if not (_kernel_ready(logits, x) and logits.ndim == 2 and x.shape == logits.shape):
        return _ref.bernoulli_nll_and_grad(logits, x)
    e = np.empty_like(logits)
    _minus_abs_kernel(logits.reshape(-1), e.reshape(-1))
    np.exp(e, out=e)
    pixel_nll = e + 1
    np.log(pixel_nll, out=pixel_nll)
    grad = np.empty_like(logits)
    _bernoulli_kernel(logits.reshape(-1), x.reshape(-1), e.reshape(-1), pixel_nll.reshape(-1),
                      grad.reshape(-1))
    return pixel_nll.sum(axis=1), grad


def bernoulli_nll(logits, x):
    """Twin of ops.bernoulli_nll."""
    return bernoulli_nll_and_grad(logits, x)[0]


# --- the importance-weighted bound -------------------------------------------

@_jit
def _log_mean_exp_weights_kernel(a, log_k, bound, weights):
    # a, weights: (k, batch); bound: (batch,).  One column at a time: its
    # max, exp(a - max) into weights, their sum, then the scaling.  Scalar
    # exp is fine here: in training a is (k, batch), a few hundred numbers.
    k, batch = a.shape
    one = a.dtype.type(1)
    for j in range(batch):
        m = a[0, j]
        for i in range(1, k):
            m = max(m, a[i, j])
        total = a.dtype.type(0)
        for i in range(k):
            w = math.exp(a[i, j] - m)
            weights[i, j] = w
            total += w
        bound[j] = m + math.log(total) - log_k
        inv = one / total
        for i in range(k):
            weights[i, j] *= inv


def log_mean_exp_weights(a):
    """Twin of ops.log_mean_exp_weights: the max, the exps, the sum and the
    normalisation in one kernel call instead of seven NumPy operations.
    Agrees with the reference to rounding (the sum runs in another order,
    and the weights are multiplied by 1 / total rather than divided)."""
    if not (_kernel_ready(a) and a.ndim == 2 and a.shape[0] >= 1):
        return _ref.log_mean_exp_weights(a)
    bound = np.empty(a.shape[1], dtype=a.dtype)
    weights = np.empty_like(a)
    _log_mean_exp_weights_kernel(a, a.dtype.type(math.log(a.shape[0])), bound, weights)
    return bound, weights


# The sum over D = 784 pixels of K = 5000 samples of 10,000 images is 4e10
# terms: the one place where a plain sequential loop (one float64 add at a
# time, 4 cycles of latency each) would cost more than the matrix products.
# reassoc lets the compiler keep several partial sums in vector registers.
_jit_sum = numba.njit(cache=True, nogil=True, error_model="numpy", fastmath={"reassoc"})


@_jit_sum
def _bernoulli_samples_kernel(logits, x, e, nll):
    # logits, e: (B, K, D) with e = exp(-|logits|) from NumPy; x: (B, D);
    # nll: (B, K) float64.  sum_d log(1 + e_d) is taken as log prod_d (1 + e_d):
    # each factor is in (1, 2], so the product of D <= 1000 of them stays
    # below 2^1000 < float64's largest number, and there is one log per row
    # instead of one per pixel (the loop has no vectorised log).
    B, K, D = logits.shape
    zero = logits.dtype.type(0)
    for b in range(B):
        for k in range(K):
            linear = 0.0
            product = 1.0
            for d in range(D):
                l = logits[b, k, d]
                linear += max(l, zero) - x[b, d] * l
                product *= 1.0 + e[b, k, d]
            nll[b, k] = linear + math.log(product)


def bernoulli_nll_samples(logits, x):
    """Twin of ops.bernoulli_nll_samples: NumPy's vectorised exp, then one
    pass that sums each row in float64.  Agrees with the reference to
    rounding (another order of the sum, and log of a product instead of a
    sum of logs), not to the bit."""
    if not (_kernel_ready(logits, x) and logits.ndim == 3 and x.ndim == 2
            and x.shape == (logits.shape[0], logits.shape[2]) and logits.shape[2] <= 1000):
        return _ref.bernoulli_nll_samples(logits, x)
    e = np.empty_like(logits)
    _minus_abs_kernel(logits.reshape(-1), e.reshape(-1))
    np.exp(e, out=e)
    nll = np.empty(logits.shape[:2], dtype=np.float64)
    _bernoulli_samples_kernel(logits, x, e, nll)
    return nll


# --- optimizer updates (in place) -----------------------------------------

@_jit
def _adam_kernel(param, grad, m, v, beta1, one_minus_beta1, beta2, one_minus_beta2,
                 step_size, eps_hat, m_below, v_below):
    zero = param.dtype.type(0)
    for i in range(param.size):
        g = grad[i]
        mi = beta1 * m[i] + one_minus_beta1 * g
        vi = beta2 * v[i] + one_minus_beta2 * (g * g)
        if abs(mi) < m_below:  # flush to zero, as the reference does (0: not this step)
            mi = zero
        if vi < v_below:
            vi = zero
        m[i] = mi
        v[i] = vi
        param[i] -= step_size * (mi / (math.sqrt(vi) + eps_hat))


def adam_update(param, grad, m, v, lr, beta1, beta2, eps, step):
    """Twin of ops.adam_update: the whole update in one pass over the parameter."""
    if not _kernel_ready(param, grad, m, v):
        return _ref.adam_update(param, grad, m, v, lr, beta1, beta2, eps, step)
    root_bc2 = math.sqrt(1 - beta2 ** step)
    step_size = lr * root_bc2 / (1 - beta1 ** step)
    t = param.dtype.type
    m_below, v_below = _ref.flush_thresholds(param.dtype, beta1, beta2, step)
    _adam_kernel(param.reshape(-1), grad.reshape(-1), m.reshape(-1), v.reshape(-1),
                 t(beta1), t(1 - beta1), t(beta2), t(1 - beta2), t(step_size), t(eps * root_bc2),
                 t(m_below), t(v_below))
    return None


@_jit
def _sgd_momentum_kernel(param, grad, velocity, lr, momentum):
    for i in range(param.size):
        velocity[i] = momentum * velocity[i] + grad[i]
        param[i] -= lr * velocity[i]


def sgd_momentum_update(param, grad, velocity, lr, momentum):
    """Twin of ops.sgd_momentum_update, in one pass."""
    if not _kernel_ready(param, grad, velocity):
        return _ref.sgd_momentum_update(param, grad, velocity, lr, momentum)
    t = param.dtype.type
    _sgd_momentum_kernel(param.reshape(-1), grad.reshape(-1), velocity.reshape(-1),
                         t(lr), t(momentum))
    return None


# --- watching training for divergence ---------------------------------------

@_jit
def _any_non_finite_kernel(x):
    # x - x is 0 for a finite x and NaN for inf or NaN, and NaN != 0.  An OR
    # of booleans, unlike a float sum, may be evaluated in any order, so the
    # loop vectorises: one pass, where the reference makes two (max, min).
    # (A loop summing x * 0 took 5x as long as the reference: a serial chain.)
    bad = False
    for i in range(x.size):
        bad |= (x[i] - x[i]) != 0
    return bad


def finite_check(x):
    """Twin of ops.finite_check: one vectorised pass over x (half the reference's
    memory traffic; 25 against 45 us for a 784x400 float32 gradient)."""
    if not _kernel_ready(x):
        return _ref.finite_check(x)
    return np.float64(math.nan if _any_non_finite_kernel(x.reshape(-1)) else 0.0)


# --- col2im, for the convolutional model -----------------------------------
#
# Not one of ops.py's kernels: its reference is ``col2im`` in
# numpy_vae/im2col.py, whose += over strided slices makes NumPy read and write
# the padded image kh * kw times, one strided pass each.  The twin is one
# loop that reads ``cols`` in memory order.  Single-threaded on purpose:
# measured on 2 cores, numba.prange made it 2 to 30 times slower (thread
# start-up and contention with BLAS's threads cost more than the work).

@numba.njit(cache=True, nogil=True)
def _col2im_kernel(cols, xpad, stride):
    # cols (C, kh, kw, N, Ho, Wo) is added into xpad (C, N, Hp, Wp)
    C, kh, kw, N, Ho, Wo = cols.shape
    for c in range(C):
        for i in range(kh):
            for j in range(kw):
                for n in range(N):
                    for oh in range(Ho):
                        for ow in range(Wo):
                            xpad[c, n, stride * oh + i, stride * ow + j] += cols[c, i, j, n, oh, ow]


def col2im(cols, x_shape, kh: int, kw: int, stride: int, padding: int, xp=np):
    """Twin of ``numpy_vae.im2col.col2im`` (same signature and result).

    NumPy arrays only; ``xp`` is accepted so the call sites look the same.
    """
    N, C, H, W = x_shape
    s, p = stride, padding
    Ho, Wo = conv_output_size(H, kh, s, p), conv_output_size(W, kw, s, p)
    cols = np.ascontiguousarray(cols).reshape(C, kh, kw, N, Ho, Wo)
    xpad = np.zeros((C, N, H + 2 * p, W + 2 * p), dtype=cols.dtype)
    _col2im_kernel(cols, xpad, s)
    return xpad[:, :, p:p + H, p:p + W].transpose(1, 0, 2, 3)


# --- compiling ahead of time ----------------------------------------------

def compile_all(dtype="float32") -> None:
    """Compile every kernel for ``dtype`` now (or load it from Numba's cache).

    Kernels otherwise compile on their first call, which makes the first
    training step slow; the benchmark calls this to time that cost.
    """
    dt = np.dtype(dtype)
    a, b = np.ones((2, 3), dt), np.ones((2, 3), dt)
    bias, step = np.ones(3, dt), (a.copy(), a.copy(), a.copy())
    for f in (relu, tanh, sigmoid, softplus):
        f(a)
    for f in (relu_backward, tanh_backward, sigmoid_backward, softplus_backward):
        f(a, b)
    leaky_relu(a, 0.01)
    leaky_relu_backward(a, b, 0.01)
    add_bias(a, bias)
    bias_grad(a)
    _, kl, std, var_minus_1 = reparameterize_kl(a, b, a)
    reparameterize_kl_backward(a, kl, a, b, std, var_minus_1)
    bernoulli_nll_and_grad(a, b)
    bernoulli_nll_samples(a[None], b[:1])
    log_mean_exp_weights(a)
    adam_update(step[0], b, step[1], step[2], 1e-3, 0.9, 0.999, 1e-8, 1)
    sgd_momentum_update(step[0], b, step[1], 0.01, 0.9)
    finite_check(a)


__all__ = list(_ref.__all__)
