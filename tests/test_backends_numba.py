"""Specification of the Numba backend (numpy_vae/backends/numba_ops.py).

Every twin is held to its NumPy reference in numpy_vae/ops.py, in float32
and float64, on random shapes that include a batch of 1 and odd widths.  A
whole training step (loss and every gradient) and a few Adam steps must
agree between the "numpy" and "numba" backends.

Tolerances, and why:

- ``SAME_ORDER`` (every kernel test): each twin does the reference's
  operations in the reference's order, lets NumPy evaluate exp, log and
  tanh, and lets NumPy's pairwise ``sum`` add up the Bernoulli NLL.  On our
  machines the results are bit-identical.  The margin, a few ulp (float32
  eps = 6e-8, float64 eps = 1.1e-16), leaves room for a compiler that fuses
  a * b + c into one rounding (FMA) on another CPU.
- ``ROW_SUM`` (the KL of reparameterize_kl): the one twin that adds up in
  another order.  Its loop adds a row's latent_dim terms left to right,
  NumPy's pairwise sum keeps 8 partial sums from 8 terms on (below 8 the
  two orders agree, and so do the bits).  Any order is within
  n * eps * sum(|terms|) of the exact sum, so two orders are within twice
  that: n <= 64 here gives float32 7.6e-6, float64 1.4e-14 (we use 1e-5
  and 1e-13), relative to the sum of |mu^2|, |exp(logvar) - 1| and
  |logvar| over the row.
- ``MODEL`` (whole training steps): the same kernels plus the same BLAS on
  the same inputs, so again equal here.  Were one rounding to differ, it
  would travel through up to 4 matrix products and Adam's division by
  sqrt(v); the margin is wider for that: float32 1e-5, float64 1e-12
  (relative, and relative to the largest gradient for the absolute part).
"""

from __future__ import annotations

import builtins
import contextlib
import inspect
import io
import math
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

numba = pytest.importorskip("numba", reason="numba is not installed: pip install \"numpy-vae[numba]\"")

from numpy_vae import VAE, Adam, BackendUnavailableError, available_backends, get_backend  # noqa: E402
from backend_inputs import random_arrays as _arrays, random_pixels as _pixels  # noqa: E402
from numpy_vae import ops as ref  # noqa: E402
from numpy_vae.backends import numba_ops as twin  # noqa: E402

DTYPES = (np.float32, np.float64)
SAME_ORDER = {np.float32: dict(rtol=4e-7, atol=1e-7), np.float64: dict(rtol=1e-15, atol=1e-15)}
ROW_SUM = {np.float32: 1e-5, np.float64: 1e-13}
MODEL = {np.float32: dict(rtol=1e-5, atol=1e-6), np.float64: dict(rtol=1e-12, atol=1e-14)}

# (batch, width): batch 1 and odd widths up to 64, so vector loops have tails
SHAPES = st.tuples(st.integers(1, 9), st.integers(1, 64))
SEEDS = st.integers(0, 2**32 - 1)


def assert_close(actual, expected, tol):
    assert actual.dtype == expected.dtype, (actual.dtype, expected.dtype)
    assert actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, **tol)


# --------------------------------------------------------------------------
# The backend and its kernel namespace
# --------------------------------------------------------------------------

def test_numba_backend_is_numpy_arrays_with_twin_kernels():
    bk = get_backend("numba", dtype="float32", seed=3)
    assert bk.name == "numba" and bk.xp is np and bk.dtype == np.float32
    assert isinstance(bk.rng, np.random.Generator)
    assert bk.ops is twin
    assert "numba" in available_backends()


@pytest.mark.parametrize("name", ref.__all__)
def test_every_reference_kernel_has_a_twin_with_its_signature(name):
    assert inspect.signature(getattr(twin, name)) == inspect.signature(getattr(ref, name))


def test_rng_state_round_trips_for_checkpoints():
    bk = get_backend("numba", seed=5)
    state = bk.get_rng_state()
    first = bk.standard_normal((4,))
    bk.set_rng_state(state)
    np.testing.assert_array_equal(bk.standard_normal((4,)), first)


# --------------------------------------------------------------------------
# Each twin against its reference
# --------------------------------------------------------------------------

UNARY = ["relu", "sigmoid", "softplus"]  # tanh: see test_tanh_twin_is_tanh_to_an_ulp_or_two
BACKWARD = ["relu_backward", "tanh_backward", "sigmoid_backward", "softplus_backward"]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", UNARY + BACKWARD + ["leaky_relu", "leaky_relu_backward"])
@settings(max_examples=20, deadline=None)
@given(shape=SHAPES, seed=SEEDS)
def test_activation_twin_matches_reference(name, dtype, shape, seed):
    x, dy = _arrays(shape, dtype, seed)
    if name in UNARY:
        args = (x,)
    elif name == "leaky_relu":
        args = (x, 0.2)
    elif name == "leaky_relu_backward":
        args = (dy, x, 0.2)
    else:
        if name in ("tanh_backward", "sigmoid_backward"):  # these take the output y
            x = getattr(ref, name.replace("_backward", ""))(x)
        args = (dy, x)
    assert_close(getattr(twin, name)(*args), getattr(ref, name)(*args), SAME_ORDER[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=20, deadline=None)
@given(shape=SHAPES, seed=SEEDS)
def test_bias_twins_match_reference(dtype, shape, seed):
    y, dy = _arrays(shape, dtype, seed)
    b = _arrays(shape[1:], dtype, seed + 7, n=1)[0]
    expected = ref.add_bias(y.copy(), b)
    y_twin = y.copy()
    out = twin.add_bias(y_twin, b)
    assert out is y_twin, "add_bias works in place and returns y"
    assert_close(out, expected, SAME_ORDER[dtype])
    assert_close(twin.bias_grad(dy), ref.bias_grad(dy), SAME_ORDER[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=30, deadline=None)
@given(shape=SHAPES, seed=SEEDS)
def test_bernoulli_twin_matches_reference(dtype, shape, seed):
    logits = _arrays(shape, dtype, seed, n=1)[0]
    x = _pixels(shape, dtype, seed)
    nll, grad = twin.bernoulli_nll_and_grad(logits, x)
    nll_ref, grad_ref = ref.bernoulli_nll_and_grad(logits, x)
    assert_close(nll, nll_ref, SAME_ORDER[dtype])
    assert_close(grad, grad_ref, SAME_ORDER[dtype])
    assert_close(twin.bernoulli_nll(logits, x), nll_ref, SAME_ORDER[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_bernoulli_twin_is_finite_at_extreme_logits(dtype):
    logits = np.array([[-1e4, -100.0, 0.0, 100.0, 1e4]], dtype=dtype)
    x = np.array([[0.0, 1.0, 0.5, 0.0, 1.0]], dtype=dtype)
    nll, grad = twin.bernoulli_nll_and_grad(logits, x)
    assert np.all(np.isfinite(nll)) and np.all(np.isfinite(grad))
    np.testing.assert_allclose(nll, ref.bernoulli_nll(logits, x), rtol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=30, deadline=None)
@given(b=st.integers(1, 4), k=st.integers(1, 6), d=st.integers(1, 64), seed=SEEDS)
def test_bernoulli_samples_twin_matches_reference(dtype, b, k, d, seed):
    logits = _arrays((b, k, d), dtype, seed, n=1)[0]
    x = _pixels((b, d), dtype, seed)
    nll = twin.bernoulli_nll_samples(logits, x)
    expected = ref.bernoulli_nll_samples(logits, x)
    assert nll.dtype == expected.dtype == np.float64 and nll.shape == (b, k)
    # the reference sums in the array's dtype, the twin in float64, of terms rounded in the dtype
    # (exp(-|l|) in float32 for float32 logits): relative to the sum of |terms|
    scale = (np.abs(logits) * 2 + 1).sum(axis=2)
    assert np.all(np.abs(nll - expected) <= (1e-5 if dtype == np.float32 else 1e-14) * scale)


def test_bernoulli_samples_are_the_per_image_bernoulli_nll():
    rng = np.random.default_rng(0)
    logits, x = 4 * rng.standard_normal((3, 5, 30)), (rng.random((3, 30)) < 0.4).astype(np.float64)
    expected = np.array([[ref.bernoulli_nll(logits[i, j][None], x[i][None])[0] for j in range(5)]
                         for i in range(3)])
    np.testing.assert_allclose(ref.bernoulli_nll_samples(logits, x), expected, rtol=1e-14)
    np.testing.assert_allclose(twin.bernoulli_nll_samples(logits, x), expected, rtol=1e-14)


# The IWAE weights: the twin adds up a column's exps left to right and
# multiplies by 1 / total where the reference divides, so it agrees to
# rounding (k <= 9 terms of size <= 1), not to the bit.
LOG_MEAN_EXP = {np.float32: dict(rtol=2e-6, atol=2e-6), np.float64: dict(rtol=1e-14, atol=1e-14)}


@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=30, deadline=None)
@given(shape=SHAPES, seed=SEEDS, offset=st.sampled_from([0.0, -100.0, -1e4]))
def test_log_mean_exp_weights_twin_matches_reference(dtype, shape, seed, offset):
    a = (_arrays(shape, dtype, seed, n=1)[0] + offset).astype(dtype)  # (k, batch)
    bound, weights = twin.log_mean_exp_weights(a)
    bound_ref, weights_ref = ref.log_mean_exp_weights(a)
    assert_close(bound, bound_ref, LOG_MEAN_EXP[dtype])
    assert_close(weights, weights_ref, LOG_MEAN_EXP[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=30, deadline=None)
@given(shape=SHAPES, seed=SEEDS)
def test_reparameterize_kl_twins_match_reference(dtype, shape, seed):
    mu, logvar, eps = _arrays(shape, dtype, seed, n=3)
    z, kl, std, var_minus_1 = twin.reparameterize_kl(mu, logvar, eps)
    z_ref, kl_ref, std_ref, var_minus_1_ref = ref.reparameterize_kl(mu, logvar, eps)
    for a, b in ((z, z_ref), (std, std_ref), (var_minus_1, var_minus_1_ref)):
        assert_close(a, b, SAME_ORDER[dtype])
    scale = (mu * mu + np.abs(var_minus_1_ref) + np.abs(logvar)).sum(axis=1)
    assert_close(kl, kl_ref, dict(rtol=0, atol=ROW_SUM[dtype] * scale.max()))

    dz = _arrays(shape, dtype, seed + 1, n=1)[0]
    dkl = _arrays(shape[:1], dtype, seed + 2, n=1)[0]
    dmu, dlogvar = twin.reparameterize_kl_backward(dz, dkl, mu, eps, std, var_minus_1)
    dmu_ref, dlogvar_ref = ref.reparameterize_kl_backward(dz, dkl, mu, eps, std_ref, var_minus_1_ref)
    assert_close(dmu, dmu_ref, SAME_ORDER[dtype])
    assert_close(dlogvar, dlogvar_ref, SAME_ORDER[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_reparameterize_kl_twin_is_finite_at_the_ends_of_the_logvar_clamp(dtype):
    logvar = np.array([[-30.0, 20.0, -30.0], [20.0, 0.0, -30.0]], dtype=dtype)  # models.ENCODER_LOGVAR_RANGE
    mu = np.array([[0.0, 1e3, -3.0], [-1e3, 0.5, 2.0]], dtype=dtype)
    eps = np.array([[1.0, -5.0, 0.3], [5.0, 2.0, -1.0]], dtype=dtype)
    z, kl, std, var_minus_1 = twin.reparameterize_kl(mu, logvar, eps)
    dmu, dlogvar = twin.reparameterize_kl_backward(np.ones_like(mu), np.ones(2, dtype), mu, eps,
                                                   std, var_minus_1)
    for a in (z, kl, dmu, dlogvar):
        assert a.dtype == dtype and np.all(np.isfinite(a))
    np.testing.assert_allclose(kl, ref.reparameterize_kl(mu, logvar, eps)[1], rtol=1e-6)


# tanh and finite_check have no Numba kernel: their twins hand the array to
# the reference (numba_ops.py says why), so a parity test would hold the
# reference to itself.  These two tests hold the twins to the math instead.

@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=20, deadline=None)
@given(shape=SHAPES, seed=SEEDS)
def test_tanh_twin_is_tanh_to_an_ulp_or_two(dtype, shape, seed):
    x = _arrays(shape, dtype, seed, n=1)[0]
    x.flat[0] = 1e-3  # near 0, where a formula through exp(2x) loses its digits
    y = twin.tanh(x)
    exact = np.array([math.tanh(float(v)) for v in x.ravel()]).reshape(shape)
    assert y.dtype == dtype and y.shape == shape
    np.testing.assert_allclose(y, exact, rtol=4 * np.finfo(dtype).eps, atol=0)


@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=40, deadline=None)
@given(shape=SHAPES, seed=SEEDS, bad=st.sampled_from([None, np.nan, np.inf, -np.inf]))
def test_finite_check_twin_is_zero_exactly_when_every_element_is_finite(dtype, shape, seed, bad):
    x = _arrays(shape, dtype, seed, n=1)[0]
    x.flat[0] = np.finfo(dtype).max  # finite, however large
    if bad is not None:
        x.flat[np.random.default_rng(seed).integers(x.size)] = bad
    check = twin.finite_check(x)
    assert np.shape(check) == () and np.result_type(check) == np.float64
    all_finite = all(math.isfinite(float(v)) for v in x.ravel())
    assert (check == 0) if all_finite else np.isnan(check)


@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=20, deadline=None)
@given(shape=SHAPES, seed=SEEDS, step=st.integers(1, 1000))
def test_optimizer_twins_match_reference(dtype, shape, seed, step):
    param, grad = _arrays(shape, dtype, seed)
    m, v = _arrays(shape, dtype, seed + 1)
    v = np.abs(v)  # a second moment is never negative
    mine = [a.copy() for a in (param, m, v)]
    theirs = [a.copy() for a in (param, m, v)]
    assert twin.adam_update(mine[0], grad, mine[1], mine[2], 1e-3, 0.9, 0.999, 1e-8, step) is None
    ref.adam_update(theirs[0], grad, theirs[1], theirs[2], 1e-3, 0.9, 0.999, 1e-8, step)
    for a, b in zip(mine, theirs):
        assert_close(a, b, SAME_ORDER[dtype])

    mine, theirs = [param.copy(), m.copy()], [param.copy(), m.copy()]
    twin.sgd_momentum_update(mine[0], grad, mine[1], 0.01, 0.9)
    ref.sgd_momentum_update(theirs[0], grad, theirs[1], 0.01, 0.9)
    for a, b in zip(mine, theirs):
        assert_close(a, b, SAME_ORDER[dtype])


def _moments_at_the_edge_of_subnormal(dtype):
    """m and v just above the smallest normal number, and gradients of 0 or
    subnormal size: one decay step takes them below it."""
    tiny = np.finfo(dtype).tiny
    m = np.array([1.05, -1.05, 1.5, -3.0, 0.0, 1e6], dtype) * tiny
    v = np.array([1.0005, 1.0005, 1.002, 1e9, 0.0, 1e12], dtype) * tiny
    grad = np.array([0.0, 0.0, 0.0, 1e-3, 0.0, -0.5], dtype) * tiny
    return np.linspace(-1, 1, 6).astype(dtype), grad, m, v


def _subnormals(a):
    return int(((a != 0) & (np.abs(a) < np.finfo(a.dtype).tiny)).sum())


@pytest.mark.parametrize("dtype", DTYPES)
def test_adam_twin_flushes_subnormal_moments_like_the_reference(dtype):
    param, grad, m, v = _moments_at_the_edge_of_subnormal(dtype)
    mine = [a.copy() for a in (param, m, v)]
    theirs = [a.copy() for a in (param, m, v)]
    between = [a.copy() for a in (param, m, v)]
    twin.adam_update(mine[0], grad, mine[1], mine[2], 1e-3, 0.9, 0.999, 1e-8, 16)
    ref.adam_update(theirs[0], grad, theirs[1], theirs[2], 1e-3, 0.9, 0.999, 1e-8, 16)
    for a, b in zip(mine, theirs):
        np.testing.assert_array_equal(a, b)
    assert _subnormals(mine[1]) == 0 and _subnormals(mine[2]) == 0
    assert mine[1][0] == 0 and mine[2][0] == 0  # these two fell below the smallest normal
    assert mine[1][2] == 0  # 1.35 tiny: above it, but below tiny / 0.9^16, the look-ahead
    # between flushes (step 7) neither flushes: the twin leaves what the reference leaves
    reference = [a.copy() for a in between]
    twin.adam_update(between[0], grad, between[1], between[2], 1e-3, 0.9, 0.999, 1e-8, 7)
    ref.adam_update(reference[0], grad, reference[1], reference[2], 1e-3, 0.9, 0.999, 1e-8, 7)
    for a, b in zip(between, reference):
        np.testing.assert_array_equal(a, b)
    assert between[1][2] != 0


@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=40, deadline=None)
@given(shape=SHAPES, seed=SEEDS, bad=st.sampled_from([None, np.nan, np.inf, -np.inf]),
       extreme=st.booleans())
def test_finite_check_twin_matches_reference(dtype, shape, seed, bad, extreme):
    """0 for finite arrays (also at +-the largest float, where x - x is still 0),
    NaN when one element is NaN, +inf or -inf, wherever it is (the vector
    loop's tail included)."""
    (x,) = _arrays(shape, dtype, seed, n=1)
    rng = np.random.default_rng(seed)
    if extreme:
        x.flat[0], x.flat[-1] = np.finfo(dtype).max, -np.finfo(dtype).max
    if bad is not None:
        x.flat[rng.integers(x.size)] = bad
    check = twin.finite_check(x)
    assert np.shape(check) == () and np.result_type(check) == np.float64
    np.testing.assert_array_equal(check, ref.finite_check(x))   # 0 or NaN, exactly
    assert np.isnan(check) == (bad is not None)


def test_arrays_the_kernels_were_not_written_for_go_to_the_reference():
    x, dy = _arrays((6, 10), np.float32, 0)
    strided = x[:, ::2]                      # not contiguous
    np.testing.assert_array_equal(twin.relu(strided), ref.relu(strided))
    mixed = dy.astype(np.float64)            # two dtypes
    np.testing.assert_array_equal(twin.relu_backward(mixed, x), ref.relu_backward(mixed, x))
    ints = np.arange(-3, 3)
    np.testing.assert_array_equal(twin.relu(ints), ref.relu(ints))


def test_reparameterize_kl_inputs_the_kernels_were_not_written_for_go_to_the_reference():
    mu, logvar, eps = _arrays((6, 10), np.float32, 0, n=3)
    for args in ((mu[:, ::2], logvar[:, ::2], eps[:, ::2]),          # not contiguous
                 (mu.astype(np.float64), logvar, eps)):               # two dtypes
        for a, b in zip(twin.reparameterize_kl(*args), ref.reparameterize_kl(*args)):
            np.testing.assert_array_equal(a, b)
    _, kl, std, var_minus_1 = ref.reparameterize_kl(mu, logvar, eps)
    dz = np.ones((6, 20), np.float32)[:, ::2]                          # not contiguous
    for a, b in zip(twin.reparameterize_kl_backward(dz, kl, mu, eps, std, var_minus_1),
                    ref.reparameterize_kl_backward(dz, kl, mu, eps, std, var_minus_1)):
        np.testing.assert_array_equal(a, b)


def test_float32_kernels_compute_in_float32():
    """A Python float constant in a Numba kernel is a float64 and drags the
    whole expression into float64.  Compile each kernel afresh for float32
    and check that Numba's type inference found no float64 value in it
    (literals, which are cast before use, aside).  One kernel sums in float64
    on purpose: the IWAE evaluation's row sums (_bernoulli_samples_kernel),
    writes a float64 array and is left out here."""
    from numba import types
    twin.compile_all("float32")
    twin.col2im(np.ones((4, 2), np.float32), (2, 1, 2, 2), 2, 2, 2, 0)  # the conv model's kernel
    kernels = [k for name, k in vars(twin).items()
               if name.startswith("_") and name.endswith("_kernel") and name != "_bernoulli_samples_kernel"]
    assert len(kernels) >= 10
    for kernel in kernels:
        sig = next(s for s in kernel.signatures
                   if all(getattr(a, "dtype", a) == types.float32 or isinstance(a, types.Integer)
                          for a in s))
        fresh = numba.njit(error_model="numpy")(kernel.py_func)
        fresh.compile(sig)
        typemap = fresh.overloads[sig].type_annotation.typemap
        leaks = {v: t for v, t in typemap.items() if t == types.float64 and not v.startswith("$const")}
        assert not leaks, f"{kernel.__name__} computes in float64: {leaks}"


# --------------------------------------------------------------------------
# Whole model: numpy and numba backends agree
# --------------------------------------------------------------------------

def _twin_models(dtype, **kwargs):
    return (VAE(backend="numpy", dtype=dtype, seed=11, **kwargs),
            VAE(backend="numba", dtype=dtype, seed=11, **kwargs))


ARCHITECTURES = [dict(),  # the default MNIST model, 784-400-20, relu
                 dict(input_dim=784, hidden_dims=(33, 17), latent_dim=3, activation="leaky_relu"),
                 dict(input_dim=784, hidden_dims=(9,), latent_dim=2, activation="tanh"),
                 dict(input_dim=784, hidden_dims=(9,), latent_dim=2, activation="sigmoid"),
                 dict(input_dim=784, hidden_dims=(9,), latent_dim=2, activation="softplus")]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("arch", ARCHITECTURES, ids=lambda a: a.get("activation", "default"))
@pytest.mark.parametrize("batch", [1, 7])
def test_loss_and_grads_agree_across_numpy_and_numba(dtype, arch, batch):
    a, b = _twin_models(dtype, **arch)
    for name in a.params:  # the same seed and the same NumPy generator: the same init
        np.testing.assert_array_equal(a.params[name], b.params[name])
    x = _pixels((batch, 784), dtype, batch)
    eps = np.random.default_rng(2).standard_normal((batch, a.latent_dim)).astype(dtype)
    tol = MODEL[np.dtype(dtype).type]
    loss_a, grads_a, info_a = a.loss_and_grads(x, eps=eps)
    loss_b, grads_b, info_b = b.loss_and_grads(x, eps=eps)
    np.testing.assert_allclose(loss_b, loss_a, **tol)
    np.testing.assert_allclose(info_b["kl"], info_a["kl"], **tol)
    assert grads_a.keys() == grads_b.keys()
    for name in grads_a:
        assert grads_b[name].dtype == np.dtype(dtype)
        scale = np.abs(grads_a[name]).max() + 1
        np.testing.assert_allclose(grads_b[name], grads_a[name], rtol=tol["rtol"],
                                   atol=tol["rtol"] * scale, err_msg=name)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian", "gaussian_learned"])
def test_iwae_loss_and_grads_agree_across_numpy_and_numba(dtype, likelihood):
    arch = dict(input_dim=784, hidden_dims=(33, 17), latent_dim=3, activation="tanh",
                likelihood=likelihood)
    a, b = _twin_models(dtype, **arch)
    x = _pixels((7, 784), dtype, 3)
    eps = np.random.default_rng(2).standard_normal((5, 7, 3)).astype(dtype)
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == "float32" else dict(rtol=1e-12, atol=1e-12)
    loss_a, grads_a, _ = a.loss_and_grads(x, eps=eps, objective="iwae", k=5)
    loss_b, grads_b, _ = b.loss_and_grads(x, eps=eps, objective="iwae", k=5)
    np.testing.assert_allclose(loss_b, loss_a, **tol)
    for name in grads_a:
        scale = np.abs(grads_a[name]).max() + 1
        np.testing.assert_allclose(grads_b[name], grads_a[name], rtol=tol["rtol"],
                                   atol=tol["rtol"] * scale, err_msg=name)


def test_eps_drawn_by_each_backend_is_the_same():
    """Both backends draw eps from a NumPy generator with the same seed."""
    a, b = _twin_models("float64", hidden_dims=(9,), latent_dim=2)
    x = _pixels((4, 784), np.float64, 0)
    np.testing.assert_allclose(b.loss_and_grads(x)[0], a.loss_and_grads(x)[0], **MODEL[np.float64])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_adam_training_steps_stay_close(dtype):
    a, b = _twin_models(dtype, hidden_dims=(50,), latent_dim=4)
    opt_a, opt_b = Adam(a.params, lr=1e-2, backend=a.backend), Adam(b.params, lr=1e-2, backend=b.backend)
    rng = np.random.default_rng(4)
    for _ in range(5):
        x = _pixels((16, 784), dtype, int(rng.integers(1000)))
        eps = rng.standard_normal((16, 4)).astype(dtype)
        opt_a.step(a.loss_and_grads(x, eps=eps)[1])
        opt_b.step(b.loss_and_grads(x, eps=eps)[1])
    tol = MODEL[np.dtype(dtype).type]
    for name in a.params:
        np.testing.assert_allclose(b.params[name], a.params[name], err_msg=name, **tol)


# --------------------------------------------------------------------------
# Selecting the backend where numba is missing
# --------------------------------------------------------------------------

def test_missing_numba_gives_one_line_naming_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "numba", None)  # makes `import numba` fail
    with pytest.raises(BackendUnavailableError) as err:
        get_backend("numba")
    message = str(err.value)
    assert "\n" not in message
    assert message == ("backend 'numba' needs the numba package, which is not installed: "
                       'pip install "numpy-vae[numba]"')
    assert "numba" not in available_backends()


def test_broken_numba_install_gives_one_line(monkeypatch):
    real_import = builtins.__import__

    def failing_import(name, *args, **kwargs):
        if name == "numba":
            raise ImportError("Numba needs NumPy 2.3 or less.\nGot NumPy 2.4.")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", failing_import)
    with pytest.raises(BackendUnavailableError) as err:
        get_backend("numba")
    message = str(err.value)
    assert "\n" not in message
    assert "Numba needs NumPy 2.3 or less. Got NumPy 2.4." in message
    assert 'pip install "numpy-vae[numba]"' in message


# --------------------------------------------------------------------------
# The benchmark script runs
# --------------------------------------------------------------------------

def _run_benchmark(*args) -> str:
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_backends.py"
    namespace = {"__name__": "bench_backends", "__file__": str(path)}
    exec(compile(path.read_text(), str(path), "exec"), namespace)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        namespace["main"](list(args))
    return out.getvalue()


def test_benchmark_profile_splits_a_step_into_layers_and_kernels():
    text = _run_benchmark("--profile", "--quick", "--backends", "numpy,numba")
    rows = {line[:44].strip(): line[44:].split() for line in text.splitlines()[2:]}
    assert rows["whole step"] and len(rows["whole step"]) == 2, text
    for stage in ("Linear.forward", "Linear.backward", "kernel adam_update", "kernel bernoulli_nll_and_grad"):
        assert all(float(v) > 0 for v in rows[stage]), (stage, text)
    step = [float(v) for v in rows["whole step"]]
    parts = [float(a) + float(b) for a, b in zip(rows["Linear.forward"], rows["Linear.backward"])]
    assert all(p < s for p, s in zip(parts, step)), text   # the layers are inside the step
    from numpy_vae import layers
    assert "timed" not in layers.Linear.forward.__qualname__   # the timers are removed again


def test_benchmark_quick_run_prints_the_table():
    text = _run_benchmark("--quick", "--backends", "numpy,numba")
    assert "s/epoch" in text and "x GEMM" in text
    rows = [line.split() for line in text.splitlines()]
    for name in ("numpy", "numba", "GEMM"):
        assert sum(1 for r in rows if r and r[0] == name) == 2, (name, text)  # batch 128 and 1024
