"""Specification of the CuPy backend (numpy_vae/backends/cupy_ops.py).

The selection errors are tested everywhere, with cupy faked or hidden.
Everything else needs CuPy and an NVIDIA GPU and is skipped, with the
reason, where either is missing: each twin against its NumPy reference (the
reference runs on the host, on the same numbers), a whole training step and
a few Adam steps against the "numpy" backend, the random generator's
checkpoint state.

Tolerances, and why (float32 eps = 6e-8, float64 eps = 1.1e-16):

- ``ELEMENTWISE``: the twins do the reference's operations, but the CUDA
  compiler fuses a * b + c into one rounding (FMA), and CUDA's exp, log,
  log1p and tanh are within 1-2 ulp of the exact value, NumPy's too, not
  always the same ulp.  A few ulp of the result: float32 rtol 1e-6, float64
  rtol 1e-14; the absolute part covers results that cancel to near 0:
  the Bernoulli gradient sigmoid(l) - x, and the sigmoid's tanh form
  (1 + tanh(x/2)) / 2 at very negative x, where 1 ulp of tanh is a large
  relative error of a tiny result (3.6e-3 seen in float32, 6e-8 absolute).
- ``SUM``: CuPy's reductions add in a tree, NumPy's pairwise.  Any order
  is within n * eps * sum(|terms|) of the exact sum, so two orders are
  within twice that: n <= 64 here gives float32 7.6e-6, float64 1.4e-14
  (we use 1e-5 and 1e-13).  The Bernoulli NLL's terms are all >= 0, so the
  bound is relative to the NLL itself; bias_grad's have either sign, so it
  is relative to the sum of |dy|.  The KL of reparameterize_kl adds
  mu^2 + (exp(logvar) - 1) - logvar, whose parts cancel where logvar is
  near 0, and CUDA's expm1 may differ from NumPy's by an ulp, so its bound
  is relative to the sum of |mu^2|, |exp(logvar) - 1| and |logvar|.
- ``ELEMENTWISE`` relative to the terms: z = mu + std * eps and the two
  gradients of reparameterize_kl are sums of two terms that can cancel to
  near 0, where an ulp of a term (or an FMA) is a large relative error of
  the result, and the terms can be large (logvar has scale 3 here, and
  exp(logvar) - 1 is 3e6 at logvar = 15).  So there the ``ELEMENTWISE``
  bound is relative to |term 1| + |term 2|, element by element.
- ``MODEL``: a training step chains cuBLAS (another summation order than
  OpenBLAS, over up to 784 terms), the kernels above and Adam; float32
  1e-4, float64 1e-10, relative, and relative to the largest gradient or
  parameter for the absolute part.
"""

from __future__ import annotations

import os
import sys
import types

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from numpy_vae import VAE, Adam, BackendUnavailableError, get_backend
from backend_inputs import random_arrays as _arrays, random_pixels as _pixels  # noqa: E402
from numpy_vae import ops as ref

DTYPES = (np.float32, np.float64)
ELEMENTWISE = {np.float32: dict(rtol=1e-6, atol=1e-6), np.float64: dict(rtol=1e-14, atol=1e-14)}
SUM = {np.float32: 1e-5, np.float64: 1e-13}
MODEL = {np.float32: 1e-4, np.float64: 1e-10}
SHAPES = st.tuples(st.integers(1, 9), st.integers(1, 64))
SEEDS = st.integers(0, 2**32 - 1)


# --------------------------------------------------------------------------
# Selecting the backend where cupy or a GPU is missing (runs everywhere)
# --------------------------------------------------------------------------

def test_missing_cupy_gives_one_line_naming_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)  # makes `import cupy` fail
    with pytest.raises(BackendUnavailableError) as err:
        get_backend("cupy")
    assert str(err.value) == ("backend 'cupy' needs the cupy package, which is not installed: "
                              'pip install "numpy-vae[cuda]"')


def _fake_cupy(get_device_count):
    fake = types.ModuleType("cupy")
    fake.cuda = types.SimpleNamespace(runtime=types.SimpleNamespace(getDeviceCount=get_device_count))
    return fake


def test_no_gpu_gives_one_line_saying_so(monkeypatch):
    def no_driver():
        raise RuntimeError("cudaErrorInsufficientDriver: CUDA driver version is insufficient\n"
                           "for CUDA runtime version")

    monkeypatch.setitem(sys.modules, "cupy", _fake_cupy(no_driver))
    with pytest.raises(BackendUnavailableError) as err:
        get_backend("cupy")
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("backend 'cupy': no CUDA GPU found (cudaErrorInsufficientDriver")


def test_zero_gpus_gives_one_line_saying_so(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", _fake_cupy(lambda: 0))
    with pytest.raises(BackendUnavailableError, match=r"^backend 'cupy': no CUDA GPU found"):
        get_backend("cupy")


def test_a_gpu_without_the_cuda_compiler_gives_one_line_naming_the_extra(monkeypatch):
    import numpy_vae.backends

    fake = _fake_cupy(lambda: 1)
    fake.zeros = np.zeros
    fake.cuda.Device = lambda: types.SimpleNamespace(synchronize=lambda: None)
    kernels = types.ModuleType("numpy_vae.backends.cupy_ops")
    for name in ref.__all__:
        setattr(kernels, name, getattr(ref, name))

    def relu(x):
        raise RuntimeError("CompileException: nvrtc: error: failed to open libnvrtc-builtins.so.12.\n"
                           "Make sure that libnvrtc-builtins.so.12 is installed correctly.")

    kernels.relu = relu
    monkeypatch.setitem(sys.modules, "cupy", fake)
    monkeypatch.setitem(sys.modules, "numpy_vae.backends.cupy_ops", kernels)
    monkeypatch.setattr(numpy_vae.backends, "cupy_ops", kernels, raising=False)
    with pytest.raises(BackendUnavailableError) as err:
        get_backend("cupy")
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("backend 'cupy': CuPy found a GPU but cannot compile or run kernels "
                              "(CompileException: nvrtc")
    assert message.endswith('pip install "numpy-vae[cuda]"')


# --------------------------------------------------------------------------
# On a GPU
# --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cp():
    """The cupy module, or a skip saying what is missing."""
    cupy = pytest.importorskip("cupy", reason='cupy is not installed: pip install "numpy-vae[cuda]"')
    try:
        n = cupy.cuda.runtime.getDeviceCount()
    except Exception as err:  # CUDARuntimeError: no driver, no device
        pytest.skip(f"cupy is installed but no CUDA GPU is usable: {err}")
    if n < 1:
        pytest.skip("cupy is installed but the CUDA runtime sees no GPU")
    if os.environ.get("CUPY_TF32", "0") != "0":  # TF32 matrix products: ~1e-3, beyond MODEL
        pytest.skip("CUPY_TF32 is set: float32 matrix products lose precision; unset it for these tests")
    try:
        get_backend("cupy")
    except BackendUnavailableError as err:  # e.g. no NVRTC to compile kernels
        pytest.skip(str(err))
    return cupy


@pytest.fixture(scope="module")
def twin(cp):
    from numpy_vae.backends import cupy_ops
    return cupy_ops



def _close(cp, actual, expected, **tol):
    assert isinstance(actual, cp.ndarray)
    assert actual.dtype == expected.dtype and actual.shape == expected.shape
    np.testing.assert_allclose(cp.asnumpy(actual), expected, **tol)


def _close_to_terms(cp, actual, expected, terms, rtol, atol):
    """|actual - expected| <= rtol * (sum of |term|) + atol, element by element:
    for a sum of terms that may cancel (see ELEMENTWISE relative to the terms)."""
    assert isinstance(actual, cp.ndarray)
    assert actual.dtype == expected.dtype and actual.shape == expected.shape
    error = np.abs(cp.asnumpy(actual).astype(np.float64) - expected)
    bound = rtol * sum(np.abs(t).astype(np.float64) for t in terms) + atol
    assert np.all(error <= bound), f"max error / bound: {np.max(error / bound)}"


def test_cupy_backend_is_gpu_arrays_with_twin_kernels(cp, twin):
    bk = get_backend("cupy", dtype="float32", seed=0)
    assert bk.name == "cupy" and bk.xp is cp and bk.ops is twin
    a = bk.asarray(np.arange(6).reshape(2, 3))
    assert isinstance(a, cp.ndarray) and a.dtype == np.float32
    back = bk.to_numpy(a)
    assert isinstance(back, np.ndarray) and back.tolist() == [[0, 1, 2], [3, 4, 5]]
    assert bk.standard_normal((3, 2)).dtype == np.float32
    assert bk.random((3,)).dtype == np.float32


def test_rng_state_round_trips_for_checkpoints(cp):
    """CuPy cannot export a generator's state; the backend reseeds from a
    stored (entropy, restarts) pair instead (see CupyBackend)."""
    import json
    bk = get_backend("cupy", seed=5)
    bk.standard_normal((10,))
    state = json.loads(json.dumps(bk.get_rng_state()))   # as a checkpoint stores it
    after_save = cp.asnumpy(bk.standard_normal((4,)))
    resumed = get_backend("cupy", seed=123)
    resumed.set_rng_state(state)
    np.testing.assert_array_equal(cp.asnumpy(resumed.standard_normal((4,))), after_save)


def test_cupy_backend_refuses_a_numpy_generator_state_and_reseeds(cp):
    bk = get_backend("cupy", seed=5)
    assert bk.accepts_rng_state(bk.get_rng_state())
    assert not bk.accepts_rng_state(get_backend("numpy", seed=5).get_rng_state())
    bk.reseed(77)
    first = cp.asnumpy(bk.standard_normal((4,)))
    bk.reseed(77)
    np.testing.assert_array_equal(cp.asnumpy(bk.standard_normal((4,))), first)


UNARY = ["relu", "tanh", "sigmoid", "softplus"]
BACKWARD = ["relu_backward", "tanh_backward", "sigmoid_backward", "softplus_backward"]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", UNARY + BACKWARD + ["leaky_relu", "leaky_relu_backward"])
@settings(max_examples=15, deadline=None)
@given(shape=SHAPES, seed=SEEDS)
def test_activation_twin_matches_reference(cp, twin, name, dtype, shape, seed):
    x, dy = _arrays(shape, dtype, seed)
    if name in UNARY:
        args = (x,)
    elif name == "leaky_relu":
        args = (x, 0.2)
    elif name == "leaky_relu_backward":
        args = (dy, x, 0.2)
    else:
        if name in ("tanh_backward", "sigmoid_backward"):
            x = getattr(ref, name.replace("_backward", ""))(x)
        args = (dy, x)
    on_gpu = [cp.asarray(a) if isinstance(a, np.ndarray) else a for a in args]
    _close(cp, getattr(twin, name)(*on_gpu), getattr(ref, name)(*args), **ELEMENTWISE[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=15, deadline=None)
@given(shape=SHAPES, seed=SEEDS)
def test_bias_twins_match_reference(cp, twin, dtype, shape, seed):
    y, dy = _arrays(shape, dtype, seed)
    b = _arrays(shape[1:], dtype, seed + 7, n=1)[0]
    y_gpu = cp.asarray(y)
    out = twin.add_bias(y_gpu, cp.asarray(b))
    assert out is y_gpu, "add_bias works in place and returns y"
    _close(cp, out, ref.add_bias(y.copy(), b), **ELEMENTWISE[dtype])
    scale = np.abs(dy).sum(axis=0)
    _close(cp, twin.bias_grad(cp.asarray(dy)), ref.bias_grad(dy), rtol=0,
           atol=SUM[dtype] * scale.max())


@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=20, deadline=None)
@given(shape=SHAPES, seed=SEEDS)
def test_bernoulli_twin_matches_reference(cp, twin, dtype, shape, seed):
    logits = _arrays(shape, dtype, seed, n=1)[0]
    x = _pixels(shape, dtype, seed)
    nll, grad = twin.bernoulli_nll_and_grad(cp.asarray(logits), cp.asarray(x))
    nll_ref, grad_ref = ref.bernoulli_nll_and_grad(logits, x)
    # log(1 + e) with e = exp(-|l|) tiny: an ulp of e can round 1 + e the
    # other way, an absolute change of up to eps per term, however small the term
    atol = shape[1] * np.finfo(dtype).eps
    _close(cp, nll, nll_ref, rtol=SUM[dtype], atol=atol)
    _close(cp, grad, grad_ref, **ELEMENTWISE[dtype])
    _close(cp, twin.bernoulli_nll(cp.asarray(logits), cp.asarray(x)), nll_ref, rtol=SUM[dtype], atol=atol)


@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=15, deadline=None)
@given(shape=SHAPES, seed=SEEDS)
def test_iwae_twins_match_reference(cp, twin, dtype, shape, seed):
    a = _arrays(shape, dtype, seed, n=1)[0] - 100        # (k, batch) log weights
    bound, weights = twin.log_mean_exp_weights(cp.asarray(a))
    bound_ref, weights_ref = ref.log_mean_exp_weights(a)
    _close(cp, bound, bound_ref, rtol=SUM[dtype], atol=shape[0] * np.finfo(dtype).eps)
    _close(cp, weights, weights_ref, rtol=SUM[dtype], atol=shape[0] * np.finfo(dtype).eps)
    logits = _arrays((2, *shape), dtype, seed, n=1)[0]    # (B, K, D)
    x = _pixels((2, shape[1]), dtype, seed)
    nll = twin.bernoulli_nll_samples(cp.asarray(logits), cp.asarray(x))
    _close(cp, nll, ref.bernoulli_nll_samples(logits, x), rtol=SUM[dtype],
           atol=shape[1] * np.finfo(dtype).eps * (np.abs(logits).max() + 1))


@pytest.mark.parametrize("dtype", DTYPES)
def test_bernoulli_twin_is_finite_at_extreme_logits(cp, twin, dtype):
    logits = np.array([[-1e4, -100.0, 0.0, 100.0, 1e4]], dtype=dtype)
    x = np.array([[0.0, 1.0, 0.5, 0.0, 1.0]], dtype=dtype)
    nll, grad = twin.bernoulli_nll_and_grad(cp.asarray(logits), cp.asarray(x))
    assert bool(cp.all(cp.isfinite(nll))) and bool(cp.all(cp.isfinite(grad)))
    _close(cp, nll, ref.bernoulli_nll(logits, x), rtol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=20, deadline=None)
@given(shape=SHAPES, seed=SEEDS)
def test_reparameterize_kl_twins_match_reference(cp, twin, dtype, shape, seed):
    mu, logvar, eps = _arrays(shape, dtype, seed, n=3)
    z, kl, std, var_minus_1 = twin.reparameterize_kl(cp.asarray(mu), cp.asarray(logvar), cp.asarray(eps))
    z_ref, kl_ref, std_ref, var_minus_1_ref = ref.reparameterize_kl(mu, logvar, eps)
    _close(cp, std, std_ref, **ELEMENTWISE[dtype])
    _close(cp, var_minus_1, var_minus_1_ref, **ELEMENTWISE[dtype])
    _close_to_terms(cp, z, z_ref, (mu, std_ref * eps), **ELEMENTWISE[dtype])
    scale = (mu * mu + np.abs(var_minus_1_ref) + np.abs(logvar)).sum(axis=1)
    _close(cp, kl, kl_ref, rtol=0, atol=SUM[dtype] * scale.max())

    dz = _arrays(shape, dtype, seed + 1, n=1)[0]
    dkl = _arrays(shape[:1], dtype, seed + 2, n=1)[0]
    dmu, dlogvar = twin.reparameterize_kl_backward(
        cp.asarray(dz), cp.asarray(dkl), cp.asarray(mu), cp.asarray(eps),
        cp.asarray(std_ref), cp.asarray(var_minus_1_ref))
    dmu_ref, dlogvar_ref = ref.reparameterize_kl_backward(dz, dkl, mu, eps, std_ref, var_minus_1_ref)
    row_dkl = dkl[:, None]
    _close_to_terms(cp, dmu, dmu_ref, (dz, row_dkl * mu), **ELEMENTWISE[dtype])
    _close_to_terms(cp, dlogvar, dlogvar_ref, (dz * eps * std_ref * 0.5, row_dkl * 0.5 * var_minus_1_ref),
                    **ELEMENTWISE[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_reparameterize_kl_twin_is_finite_at_the_ends_of_the_logvar_clamp(cp, twin, dtype):
    logvar = np.array([[-30.0, 20.0, -30.0], [20.0, 0.0, -30.0]], dtype=dtype)  # models.ENCODER_LOGVAR_RANGE
    mu = np.array([[0.0, 1e3, -3.0], [-1e3, 0.5, 2.0]], dtype=dtype)
    eps = np.array([[1.0, -5.0, 0.3], [5.0, 2.0, -1.0]], dtype=dtype)
    z, kl, std, var_minus_1 = twin.reparameterize_kl(cp.asarray(mu), cp.asarray(logvar), cp.asarray(eps))
    dmu, dlogvar = twin.reparameterize_kl_backward(cp.ones_like(z), cp.ones(2, dtype), cp.asarray(mu),
                                                   cp.asarray(eps), std, var_minus_1)
    for a in (z, kl, dmu, dlogvar):
        assert a.dtype == dtype and bool(cp.all(cp.isfinite(a)))
    _close(cp, kl, ref.reparameterize_kl(mu, logvar, eps)[1], rtol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
def test_adam_twin_flushes_subnormal_moments_like_the_reference(cp, twin, dtype):
    tiny = np.finfo(dtype).tiny
    m = np.array([1.05, -1.05, 1.5, -3.0, 0.0, 1e6], dtype) * tiny
    v = np.array([1.0005, 1.0005, 1.002, 1e9, 0.0, 1e12], dtype) * tiny
    grad = np.array([0.0, 0.0, 0.0, 1e-3, 0.0, -0.5], dtype) * tiny
    param = np.linspace(-1, 1, 6).astype(dtype)
    gpu = [cp.asarray(a) for a in (param, m, v)]
    host = [a.copy() for a in (param, m, v)]
    twin.adam_update(gpu[0], cp.asarray(grad), gpu[1], gpu[2], 1e-3, 0.9, 0.999, 1e-8, 16)
    ref.adam_update(host[0], grad, host[1], host[2], 1e-3, 0.9, 0.999, 1e-8, 16)
    for a, b in zip(gpu, host):
        _close(cp, a, b, **ELEMENTWISE[dtype])
    m_gpu, v_gpu = cp.asnumpy(gpu[1]), cp.asnumpy(gpu[2])
    assert m_gpu[0] == 0 and m_gpu[1] == 0 and v_gpu[0] == 0  # flushed, not left subnormal
    assert not ((m_gpu != 0) & (np.abs(m_gpu) < tiny)).any()


@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=15, deadline=None)
@given(shape=SHAPES, seed=SEEDS, step=st.integers(1, 1000))
def test_optimizer_twins_match_reference(cp, twin, dtype, shape, seed, step):
    param, grad = _arrays(shape, dtype, seed)
    m, v = _arrays(shape, dtype, seed + 1)
    v = np.abs(v)
    gpu = [cp.asarray(a) for a in (param, m, v)]
    host = [a.copy() for a in (param, m, v)]
    assert twin.adam_update(gpu[0], cp.asarray(grad), gpu[1], gpu[2], 1e-3, 0.9, 0.999, 1e-8, step) is None
    ref.adam_update(host[0], grad, host[1], host[2], 1e-3, 0.9, 0.999, 1e-8, step)
    for a, b in zip(gpu, host):
        _close(cp, a, b, **ELEMENTWISE[dtype])

    gpu, host = [cp.asarray(param), cp.asarray(m)], [param.copy(), m.copy()]
    twin.sgd_momentum_update(gpu[0], cp.asarray(grad), gpu[1], 0.01, 0.9)
    ref.sgd_momentum_update(host[0], grad, host[1], 0.01, 0.9)
    for a, b in zip(gpu, host):
        _close(cp, a, b, **ELEMENTWISE[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=20, deadline=None)
@given(shape=SHAPES, seed=SEEDS, bad=st.sampled_from([None, np.nan, np.inf, -np.inf]))
def test_finite_check_twin_matches_reference(cp, twin, dtype, shape, seed, bad):
    x = _arrays(shape, dtype, seed, n=1)[0]
    x.flat[0] = np.finfo(dtype).max  # finite, and its * 0 still 0
    if bad is not None:
        x.flat[seed % x.size] = bad
    check = twin.finite_check(cp.asarray(x))
    assert isinstance(check, cp.ndarray) and check.shape == () and check.dtype == np.float64
    np.testing.assert_array_equal(cp.asnumpy(check), ref.finite_check(x))  # 0 or NaN, exactly


def _twin_models(cp, dtype, **kwargs):
    """A NumPy and a CuPy model with the same weights (the generators differ,
    so the CuPy model's are overwritten in place with the NumPy model's)."""
    a = VAE(backend="numpy", dtype=dtype, seed=11, **kwargs)
    b = VAE(backend="cupy", dtype=dtype, seed=11, **kwargs)
    for name, p in b.params.items():
        p[...] = cp.asarray(a.params[name])
    return a, b


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "tanh", "sigmoid", "softplus"])
def test_loss_and_grads_agree_across_numpy_and_cupy(cp, dtype, activation):
    a, b = _twin_models(cp, dtype, hidden_dims=(400,) if activation == "relu" else (33, 17),
                        activation=activation)
    x = _pixels((7, 784), dtype, 0)
    eps = np.random.default_rng(2).standard_normal((7, a.latent_dim)).astype(dtype)
    loss_a, grads_a, _ = a.loss_and_grads(x, eps=eps)
    loss_b, grads_b, _ = b.loss_and_grads(cp.asarray(x), eps=cp.asarray(eps))
    tol = MODEL[np.dtype(dtype).type]
    np.testing.assert_allclose(float(loss_b), float(loss_a), rtol=tol)
    for name in grads_a:
        scale = np.abs(grads_a[name]).max() + 1
        np.testing.assert_allclose(cp.asnumpy(grads_b[name]), grads_a[name], rtol=tol,
                                   atol=tol * scale, err_msg=name)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_adam_training_steps_stay_close(cp, dtype):
    # Adam moves a parameter by about lr * g / (|g| + eps): with the default
    # eps = 1e-8 a gradient of 1e-9 whose sign depends on rounding (cuBLAS
    # and OpenBLAS add in different orders) moves it by +-0.1 lr, and two
    # correct implementations part by that much.  eps = 1e-4 bounds the
    # effect of such a gradient to lr * 1e-5.
    a, b = _twin_models(cp, dtype, hidden_dims=(50,), latent_dim=4)
    opt_a = Adam(a.params, lr=1e-2, eps=1e-4, backend=a.backend)
    opt_b = Adam(b.params, lr=1e-2, eps=1e-4, backend=b.backend)
    rng = np.random.default_rng(4)
    for _ in range(5):
        x = _pixels((16, 784), dtype, int(rng.integers(1000)))
        eps = rng.standard_normal((16, 4)).astype(dtype)
        opt_a.step(a.loss_and_grads(x, eps=eps)[1])
        opt_b.step(b.loss_and_grads(cp.asarray(x), eps=cp.asarray(eps))[1])
    tol = MODEL[np.dtype(dtype).type]
    for name in a.params:
        scale = np.abs(a.params[name]).max()
        np.testing.assert_allclose(cp.asnumpy(b.params[name]), a.params[name], rtol=tol,
                                   atol=tol * scale, err_msg=name)


def test_gradient_check_passes_on_a_cupy_model(cp):
    """numpy-vae gradcheck --backend cupy: the checker perturbs the GPU
    parameters in place and compares on the host."""
    from numpy_vae.gradcheck import check_model
    model = VAE(input_dim=12, hidden_dims=(7,), latent_dim=3, activation="tanh",
                backend="cupy", dtype="float64", seed=0)
    rng = np.random.default_rng(0)
    errors = check_model(model, rng.random((4, 12)), eps=rng.standard_normal((4, 3)))
    assert set(errors) == set(model.params)
    assert max(errors.values()) < 1e-6, errors
