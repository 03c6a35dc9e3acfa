"""Checks that fakecupy behaves as CuPy does on the points listed in README.md.
Run: PYTHONPATH=tests/fakecupy python -m pytest tests/fakecupy/check_emulation.py
(tests/test_cupy_emulated.py does, with the emulation on the path)."""
import numpy as np
import pytest
import cupy as cp

f32 = np.float32


def a32(x):
    return cp.asarray(np.asarray(x, f32))


def test_host_device_separation():
    a = a32([[1, 2], [3, 4]])
    with pytest.raises(TypeError, match="Implicit conversion"):
        np.asarray(a)
    with pytest.raises(TypeError, match="Unsupported type"):
        a + np.ones(2, f32)
    with pytest.raises(TypeError, match="Unsupported type"):
        np.ones(2, f32) * a
    with pytest.raises(TypeError, match="Unsupported type"):
        cp.power([1.0, 2.0], 2)
    with pytest.raises(ValueError, match="non-scalar numpy.ndarray cannot be used for fill"):
        a[...] = np.zeros((2, 2), f32)
    a[...] = cp.zeros((2, 2), f32)  # device -> device is fine
    h = np.ones(3, f32)
    d = cp.asarray(h)
    h[0] = 5                          # device memory does not alias host memory
    assert float(d[0]) == 1.0
    assert isinstance(np.exp(d), cp.ndarray)  # __array_ufunc__ dispatch
    assert isinstance(np.sum(d), cp.ndarray)  # __array_function__ dispatch


def test_zero_dim_results_and_views():
    a = a32([1, 2, 3])
    s = a.sum()
    assert isinstance(s, cp.ndarray) and s.shape == ()
    v = a[1]
    assert isinstance(v, cp.ndarray) and v.shape == ()
    a[1] = 7
    assert float(v) == 7.0  # an integer index gives a 0-d *view*


def test_elementwise_types_and_scalars():
    k = cp.ElementwiseKernel("T x, T s", "T y", "y = x * s", "fc_mul")
    y = k(a32([1.0]), 0.1)
    assert y.dtype == f32 and float(y[0]) == float(f32(1.0) * f32(0.1))
    with pytest.raises(TypeError, match="Type is mismatched"):
        k(a32([1.0]), 1.0, cp.zeros(1, np.float64))
    with pytest.raises(TypeError, match="Type is mismatched"):
        cp.ElementwiseKernel("T x, T z", "T y", "y = x + z", "fc_add")(a32([1]), cp.zeros(1))
    with pytest.raises(ValueError, match="Loop size is undecided"):
        cp.ElementwiseKernel("T x", "float32 y", "y = x", "fc_noarr")(1.0)
    with pytest.raises(KeyError):  # T fixed by no array
        cp.ElementwiseKernel("T x, float32 z", "float32 y", "y = x + z", "fc_noT")(1.0, a32([1]))
    with pytest.raises(TypeError, match="Unsupported type"):
        k(np.ones(1, f32), 1.0)
    with pytest.raises(TypeError, match="Wrong number of arguments"):
        k(a32([1.0]))
    with pytest.raises(ValueError):
        cp.ElementwiseKernel("T i", "T y", "y = i", "fc_i")
    with pytest.raises(ValueError, match="Invalid kernel name"):
        cp.ElementwiseKernel("T x", "T y", "y = x", "bad-name")


def test_elementwise_broadcasting_and_outputs():
    add = cp.ElementwiseKernel("T b", "T y", "y += b", "fc_addb")
    y = cp.zeros((3, 2), f32)
    r = add(a32([1, 2]), y)
    assert r is y and y.get().tolist() == [[1, 2]] * 3  # in place, and returned
    with pytest.raises(ValueError, match="Out shape is mismatched"):
        add(cp.zeros((3, 2), f32), cp.zeros(2, f32))   # inputs broadcast against outputs
    with pytest.raises(ValueError, match="could not be broadcast"):
        add(cp.zeros(3, f32), cp.zeros((3, 2), f32))
    two = cp.ElementwiseKernel("T x", "T p, T q", "p = x; q = -x", "fc_two")
    p, q = two(a32([1, 2]))
    assert q.get().tolist() == [-1, -2]
    rd = cp.ElementwiseKernel("T x", "T y", "y = y + x", "fc_reads_out")(a32([1]))
    assert np.isnan(rd.get()[0])  # an allocated output is uninitialized (poisoned)
    nc = cp.zeros((2, 4), f32)[:, ::2]  # a non-contiguous output is allowed
    cp.ElementwiseKernel("T x", "T y", "y = x", "fc_copy")(a32([[1, 2], [3, 4]]), nc)
    assert nc.get().tolist() == [[1, 2], [3, 4]]


def test_reduction():
    r = cp.ReductionKernel("T x", "T y", "x", "a + b", "y = a * (T)2", "0", "fc_sum2")
    x = a32(np.arange(6).reshape(2, 3))
    assert r(x, axis=1).get().tolist() == [6, 24]
    assert r(x, axis=0).get().tolist() == [6, 10, 14]
    assert r(x, axis=-1, keepdims=True).shape == (2, 1)
    assert float(r(x)) == 30 and r(x).shape == ()
    assert r(x, axis=(0, 1)).shape == ()
    assert r(x, axis=1).dtype == f32
    with pytest.raises(ValueError, match="duplicate"):
        r(x, axis=(1, 1))
    with pytest.raises(np.exceptions.AxisError):
        r(x, axis=2)
    assert r(cp.zeros((2, 0), f32), axis=1).get().tolist() == [0, 0]  # identity, post-mapped
    with pytest.raises(ValueError, match="Out shape is mismatched"):
        r(x, cp.zeros(3, f32), axis=1)
    with pytest.raises(TypeError, match="Unsupported type"):
        r(np.ones(3, f32))
    r2 = cp.ReductionKernel("T x, T w", "T y", "x * w", "a + b", "y = a", "0", "fc_dot")
    assert r2(x, a32([1, 0, 1]), axis=1).get().tolist() == [2, 8]  # inputs broadcast


def test_random_generator_api():
    g = cp.random.default_rng(np.random.SeedSequence(5, spawn_key=(1,)))
    assert g.standard_normal((2,), dtype=f32).dtype == f32
    assert g.random((2,), dtype=f32).dtype == f32
    assert isinstance(g.random(), cp.ndarray)
    for missing in ("normal", "permutation", "shuffle"):
        assert not hasattr(g, missing)
    with pytest.raises(TypeError):
        g.standard_normal(2, dtype=np.int32)
    a = cp.random.default_rng(np.random.SeedSequence(5, spawn_key=(1,))).standard_normal(3)
    b = cp.random.default_rng(np.random.SeedSequence(5, spawn_key=(1,))).standard_normal(3)
    assert a.get().tolist() == b.get().tolist()


def test_fma_contraction():
    x = f32(1.1)
    p = f32(x * x)
    k = cp.ElementwiseKernel("T x, T p", "T y", "y = x * x - p", "fc_fma")
    assert float(k(a32([x]), p)[0]) != 0.0  # a*b-c as one fused rounding, as NVRTC does


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
