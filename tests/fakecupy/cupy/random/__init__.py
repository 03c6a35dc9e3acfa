"""fakecupy.random: CuPy's Generator API (cupy/random/_generator_api.pyx) over a
NumPy bit stream.  The numbers differ from cuRAND's; what is emulated: the
method set and signatures, dtype handling, 0-d results for size=None, and the
seeding (a SeedSequence is used as is; only one uint32 of it seeds XORWOW)."""

from __future__ import annotations

import threading

import numpy

import cupy
from cupy import _wrap, ndarray


class BitGenerator:
    def __init__(self, seed=None):
        self.lock = threading.Lock()
        if isinstance(seed, numpy.random.SeedSequence):
            self._seed_seq = seed
        else:
            if isinstance(seed, ndarray):
                seed = cupy.asnumpy(seed)
            self._seed_seq = numpy.random.SeedSequence(seed)
        self._current_device_id = 0

    def random_raw(self, size=None, output=True):
        raise NotImplementedError("Not implemented in base BitGenerator")


class _cuRANDGenerator(BitGenerator):
    def __init__(self, seed=None, *, size=-1):
        super().__init__(seed)
        # cupy: "Raw kernel has problems with integers with the 64th bit set"
        self._seed = self._seed_seq.generate_state(1, numpy.uint32)[0]
        self._np = numpy.random.Generator(numpy.random.PCG64(int(self._seed) * 7 + self.generator))

    def random_raw(self, size=None, output=True):
        y = _wrap(self._np.integers(0, 2**31, size=() if size is None else size, dtype=numpy.int32))
        return y if output else None

    @property
    def state(self):  # noqa: D401 - cupy's state() returns a device pointer; not JSON-able
        raise AttributeError("cupy BitGenerators have no serializable .state "
                             "('Random states cannot be serialized')")


class XORWOW(_cuRANDGenerator):
    generator = 0


class MRG32k3a(_cuRANDGenerator):
    generator = 1


class Philox4x3210(_cuRANDGenerator):
    generator = 2


def _size(size):
    return () if size is None else size


class Generator:
    def __init__(self, bit_generator):
        self.bit_generator = bit_generator
        self._rng = bit_generator._np

    def _check_output_array(self, dtype, size, out, check_only_c_cont=False):
        dtype = numpy.dtype(dtype)
        if out.dtype.char != dtype.char:
            raise TypeError(f"Supplied output array has the wrong type. "
                            f"Expected {dtype.name}, got {out.dtype.name}")
        if not out.flags.c_contiguous:
            if check_only_c_cont or not out.flags.f_contiguous:
                raise ValueError("Supplied output array is not contiguous, writable or aligned.")
        if size is not None:
            try:
                tup_size = tuple(size)
            except TypeError:
                tup_size = tuple([size])
            if tup_size != out.shape:
                raise ValueError("size must match out.shape when used together")

    def random(self, size=None, dtype=numpy.float64, out=None):
        if out is not None:
            self._check_output_array(dtype, size, out)
        if size is None:
            size = ()
        d = numpy.dtype(dtype)
        y = self._rng.random(size, dtype=numpy.float64 if d.char == "d" else numpy.float32)
        if out is not None:
            out._a[...] = y
            return out.astype(dtype, copy=False)
        return _wrap(y.astype(dtype, copy=False))

    def uniform(self, low=0.0, high=1.0, size=None, dtype=numpy.float64):
        low, high = cupy.asarray(low), cupy.asarray(high)
        if size is None:
            size = numpy.broadcast_shapes(low.shape, high.shape)
        d = numpy.dtype(dtype)
        y = _wrap(self._rng.random(size, dtype=numpy.float64 if d.char == "d" else numpy.float32))
        return (low + (high - low) * y).astype(dtype, copy=False)

    def integers(self, low, high=None, size=None, dtype=numpy.int64, endpoint=False):
        if high is None:
            lo, hi1 = 0, int(low)
        else:
            lo, hi1 = int(low), int(high)
        if not endpoint:
            hi1 -= 1
        if lo > hi1:
            raise ValueError("low >= high")
        return _wrap(self._rng.integers(lo, hi1, size=_size(size), dtype=dtype, endpoint=True))

    def standard_normal(self, size=None, dtype=numpy.float64, out=None):
        if out is not None:
            self._check_output_array(dtype, size, out)
            y = out
        else:
            y = cupy.empty(_size(size), dtype)
        if y.dtype.char not in ("f", "d"):
            raise TypeError(f"Unsupported dtype {y.dtype.name} for standard_normal")
        y._a[...] = self._rng.standard_normal(y.shape, dtype=y.dtype)
        return y

    def standard_exponential(self, size=None, dtype=numpy.float64, method="inv", out=None):
        if method == "zig":
            raise NotImplementedError("Ziggurat method is not supported")
        if out is not None:
            self._check_output_array(dtype, size, out)
        y = self._rng.standard_exponential(_size(size))
        if out is not None:
            out._a[...] = y
            return out.astype(dtype, copy=False)
        return _wrap(y.astype(dtype, copy=False))

    def exponential(self, scale=1.0, size=None):
        return self.standard_exponential(size) * scale

    def standard_gamma(self, shape, size=None, dtype=numpy.float64, out=None):
        shape = cupy.asarray(shape, numpy.float64) if not isinstance(shape, ndarray) else shape
        y = self._rng.standard_gamma(shape._a, size=size)
        return _wrap(numpy.asarray(y).astype(dtype, copy=False))

    def gamma(self, shape, scale=1.0, size=None):
        return self.standard_gamma(shape, size) * scale

    def beta(self, a, b, size=None, dtype=numpy.float64):
        return _wrap(numpy.asarray(self._rng.beta(cupy._unwrap(a), cupy._unwrap(b), size)).astype(dtype))

    def binomial(self, n, p, size=None):
        return _wrap(numpy.asarray(self._rng.binomial(cupy._unwrap(n), cupy._unwrap(p), size)))

    def poisson(self, lam=1.0, size=None):
        return _wrap(numpy.asarray(self._rng.poisson(cupy._unwrap(lam), size)))

    def chisquare(self, df, size=None):
        return _wrap(numpy.asarray(self._rng.chisquare(cupy._unwrap(df), size)))

    def dirichlet(self, alpha, size=None):
        return _wrap(numpy.asarray(self._rng.dirichlet(cupy._unwrap(alpha), size)))

    def f(self, dfnum, dfden, size=None):
        return _wrap(numpy.asarray(self._rng.f(cupy._unwrap(dfnum), cupy._unwrap(dfden), size)))

    def geometric(self, p, size=None):
        return _wrap(numpy.asarray(self._rng.geometric(cupy._unwrap(p), size)))

    def hypergeometric(self, ngood, nbad, nsample, size=None):
        return _wrap(numpy.asarray(self._rng.hypergeometric(
            cupy._unwrap(ngood), cupy._unwrap(nbad), cupy._unwrap(nsample), size)))

    def logseries(self, p, size=None):
        return _wrap(numpy.asarray(self._rng.logseries(cupy._unwrap(p), size)))

    def power(self, a, size=None):
        return _wrap(numpy.asarray(self._rng.power(cupy._unwrap(a), size)))


def default_rng(seed=None):
    if isinstance(seed, BitGenerator):
        return Generator(seed)
    if isinstance(seed, Generator):
        return seed
    return Generator(XORWOW(seed))


# --- the legacy module-level API (a numpy RandomState underneath) ----------
_state = numpy.random.RandomState(0)


def seed(seed=None):
    _state.seed(None if seed is None else int(numpy.asarray(seed).sum()) % 2**32)


def _legacy(name):
    def f(*args, dtype=None, **kwargs):
        r = numpy.asarray(getattr(_state, name)(*args, **kwargs))
        return _wrap(r.astype(dtype) if dtype is not None else r)
    f.__name__ = name
    return f


for _n in ("rand", "randn", "random", "random_sample", "standard_normal", "normal", "uniform",
           "randint", "permutation", "choice"):
    globals()[_n] = _legacy(_n)
del _n
