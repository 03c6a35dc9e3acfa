"""fakecupy: a CPU emulation of the parts of CuPy that numpy-vae uses.

NOT CuPy.  Arrays are ``cupy.ndarray`` wrapper objects holding a NumPy array
("device memory"); they refuse implicit conversion to NumPy and refuse NumPy
arrays as operands, as real CuPy does.  ``ElementwiseKernel`` and
``ReductionKernel`` compile their CUDA source strings as C++ with g++ and run
them through ctypes (cupy/_kernels.py).  See tests/fakecupy/README.md for the
semantics emulated and the evidence for each.
"""

from __future__ import annotations

import builtins
import functools
import numbers
import os

import numpy
import numpy as _np

__version__ = "13.99.0+fakecupy"
_FAKE = True

# ---------------------------------------------------------------------------
# numpy names that CuPy re-exports as is (scalar types, dtype helpers, consts)
# ---------------------------------------------------------------------------
from numpy import (  # noqa: F401,E402
    bool_, int8, int16, int32, int64, uint8, uint16, uint32, uint64,
    float16, float32, float64, complex64, complex128, intp, uintp,
    byte, short, intc, longlong, ubyte, ushort, uintc, ulonglong, half, single, double,
    csingle, cdouble, generic, number, integer, signedinteger, unsignedinteger,
    inexact, floating, complexfloating,
    dtype, iinfo, finfo, can_cast, result_type, promote_types, min_scalar_type,
    common_type, isscalar, ndim, shape, size,
    inf, nan, pi, e, newaxis, euler_gamma,
)
bool = bool_  # noqa: A001  (cupy.bool is numpy.bool_)

_POISON = os.environ.get("FAKECUPY_POISON", "1") != "0"

# Copies between host and "device", counted (not part of CuPy): tests use
# them to check that a training step makes none.  A value read back to the
# host (float(), bool(), .item(), .get(), ...) counts as one copy.
transfers = {"to_device": 0, "to_host": 0}


def _to_host():
    transfers["to_host"] += 1


class _Flags:
    def __init__(self, a):
        self.c_contiguous = builtins.bool(a.flags.c_contiguous)
        self.f_contiguous = builtins.bool(a.flags.f_contiguous)
        self.owndata = builtins.bool(a.flags.owndata)

    def __getitem__(self, key):
        return {"C_CONTIGUOUS": self.c_contiguous, "F_CONTIGUOUS": self.f_contiguous,
                "OWNDATA": self.owndata}[key]

    def __repr__(self):
        return (f"  C_CONTIGUOUS : {self.c_contiguous}\n  F_CONTIGUOUS : {self.f_contiguous}\n"
                f"  OWNDATA : {self.owndata}")


def _poison(a):
    """Fill freshly 'allocated' device memory with garbage (NaN for floats):
    device memory from cupy.empty / kernel outputs is uninitialized."""
    if _POISON and a.size:
        k = a.dtype.kind
        if k in "fc":
            a.fill(_np.nan)
        elif k in "iu":
            a.fill(_np.iinfo(a.dtype).max // 3)
        elif k == "b":
            a.fill(True)
    return a


# ---------------------------------------------------------------------------
# ndarray
# ---------------------------------------------------------------------------

_NDARRAY_METHODS = frozenset("""
all any argmax argmin argpartition argsort choose clip compress conj conjugate
cumprod cumsum diagonal dot dump dumps flatten max mean min nonzero partition prod
ptp put ravel repeat reshape round sort squeeze std sum swapaxes take tobytes tofile
tolist trace transpose var
""".split())


class ndarray:
    """Device array (emulated).  cupy.ndarray(shape, dtype=float, memptr=None,
    strides=None, order='C') allocates uninitialized memory."""

    __slots__ = ("_a", "__weakref__")
    __array_priority__ = 100

    def __init__(self, shape, dtype=float, memptr=None, strides=None, order="C"):
        if memptr is not None:
            raise NotImplementedError("fakecupy: memptr= is not emulated")
        a = _np.empty(shape, dtype=dtype, order=order)
        if strides is not None:
            a = _np.lib.stride_tricks.as_strided(a, a.shape, strides)
        self._a = _poison(a)

    @classmethod
    def _wrap(cls, a):
        obj = cls.__new__(cls)
        if not isinstance(a, _np.ndarray):
            a = _np.asarray(a)
        obj._a = a
        return obj

    # ---- attributes ----
    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    nbytes = property(lambda self: self._a.nbytes)
    itemsize = property(lambda self: self._a.itemsize)
    strides = property(lambda self: self._a.strides)
    T = property(lambda self: _wrap(self._a.T))
    mT = property(lambda self: _wrap(_np.swapaxes(self._a, -1, -2)))
    flags = property(lambda self: _Flags(self._a))
    real = property(lambda self: _wrap(self._a.real))
    imag = property(lambda self: _wrap(self._a.imag))

    @shape.setter
    def shape(self, value):
        self._a.shape = value

    @property
    def base(self):
        b = self._a.base
        return None if b is None else _wrap(b) if isinstance(b, _np.ndarray) else None

    @property
    def data(self):
        from cupy.cuda import MemoryPointer
        return MemoryPointer(self._a.__array_interface__["data"][0])

    @property
    def device(self):
        from cupy.cuda import Device
        return Device(0)

    @property
    def __cuda_array_interface__(self):
        d = dict(self._a.__array_interface__)
        d["version"] = 3
        d.pop("descr", None)
        return d

    def __array__(self, *args, **kwargs):
        raise TypeError("Implicit conversion to a NumPy array is not allowed. "
                        "Please use `.get()` to construct a NumPy array explicitly.")

    # NumPy protocols: dispatch to the cupy equivalents, as CuPy does
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if "out" in kwargs:
            out = kwargs["out"]
            if len(out) != 1:
                raise ValueError("The 'out' parameter must have exactly one array value")
            kwargs["out"] = out[0]
        if method == "__call__":
            cp_ufunc = globals().get(ufunc.__name__)
            if cp_ufunc is None:
                try:
                    cp_ufunc = __getattr__(ufunc.__name__)
                except AttributeError:
                    return NotImplemented
            return cp_ufunc(*inputs, **kwargs)
        return NotImplemented

    def __array_function__(self, func, types, args, kwargs):
        try:
            mod = __import__("cupy")
            for part in func.__module__.split(".")[1:]:
                mod = getattr(mod, part)
            cupy_func = getattr(mod, func.__name__)
        except AttributeError:
            return NotImplemented
        if cupy_func is func:
            return NotImplemented
        return cupy_func(*args, **kwargs)

    # ---- host transfer ----
    def get(self, stream=None, order="C", out=None, blocking=True):
        _to_host()
        if out is not None:
            if not isinstance(out, _np.ndarray):
                raise TypeError("Only numpy.ndarray can be obtained from cupy.ndarray")
            if out.shape != self.shape or out.dtype != self.dtype:
                raise ValueError("Shape/dtype mismatch")
            out[...] = self._a
            return out
        return _np.array(self._a, order=order, copy=True)

    def set(self, arr, stream=None):
        if not isinstance(arr, _np.ndarray):
            raise TypeError("Only numpy.ndarray can be set to cupy.ndarray")
        if self.dtype != arr.dtype:
            raise TypeError(f"{arr.dtype} array cannot be set to {self.dtype} array")
        if self.shape != arr.shape:
            raise ValueError("Shape mismatch. Old shape: {}, new shape: {}".format(self.shape, arr.shape))
        transfers["to_device"] += 1
        self._a[...] = arr

    # ---- conversions ----
    def __len__(self):
        if self._a.ndim == 0:
            raise TypeError("len() of unsized object")
        return self._a.shape[0]

    def __iter__(self):
        if self._a.ndim == 0:
            raise TypeError("iteration over a 0-d array")
        return (self[i] for i in range(self._a.shape[0]))

    def __bool__(self):
        _to_host()
        return builtins.bool(self._a)

    def __float__(self):
        _to_host()
        return float(self._a)

    def __int__(self):
        _to_host()
        return int(self._a)

    def __complex__(self):
        _to_host()
        return complex(self._a)

    def __index__(self):
        # Whether CuPy defines __index__ is unverified here; FAKECUPY_NO_INDEX=1 makes it raise
        if os.environ.get("FAKECUPY_NO_INDEX") == "1":
            raise TypeError("fakecupy: __index__ disabled (FAKECUPY_NO_INDEX=1)")
        _to_host()
        return self._a.__index__()

    def __repr__(self):
        _to_host()
        return repr(self._a)

    def __str__(self):
        _to_host()
        return str(self._a)

    def __format__(self, spec):
        _to_host()
        return format(self._a if self._a.ndim else self._a.item(), spec)

    def __copy__(self):
        return self.copy()

    def __deepcopy__(self, memo):
        return self.copy()

    def __reduce__(self):
        return (array, (self.get(),))

    def item(self, *args):
        _to_host()
        return self._a.item(*args)

    def tolist(self):
        _to_host()
        return self._a.tolist()

    def copy(self, order="C"):
        return _wrap(self._a.copy(order=order))

    def astype(self, dtype, order="K", casting=None, subok=None, copy=True):
        kw = {} if casting is None else {"casting": casting}
        r = self._a.astype(dtype, order=order, copy=copy, **kw)
        return self if r is self._a else _wrap(r)

    def view(self, *args, **kwargs):
        return _wrap(self._a.view(*args, **kwargs))

    def fill(self, value):
        if isinstance(value, _np.ndarray):
            if value.shape != ():
                raise ValueError("non-scalar numpy.ndarray cannot be used for fill")
            value = value.item()
        elif isinstance(value, ndarray):
            if value.shape != ():
                raise ValueError("non-scalar cupy.ndarray cannot be used for fill")
            value = value._a
        elif not _is_scalar(value):
            raise TypeError(f"Unsupported type {type(value)}")
        self._a.fill(value)

    def reduced_view(self, dtype=None):
        return self

    def __getattr__(self, name):
        if name in _NDARRAY_METHODS:
            meth = getattr(self._a, name)

            def call(*args, **kwargs):
                return _wrap(meth(*_unwrap_args(args, name), **_unwrap_kwargs(kwargs, name)))
            call.__name__ = name
            return call
        raise AttributeError(f"'cupy.ndarray' object has no attribute '{name}' (fakecupy)")

    # ---- indexing ----
    def __getitem__(self, key):
        key = _index_key(key)
        r = self._a[key]
        if not isinstance(r, _np.ndarray):  # a scalar: CuPy returns a 0-d view
            r = self._a[_as_view_key(key)]
        return _wrap(r)

    def __setitem__(self, key, value):
        key = _index_key(key)
        basic = _is_basic_key(key)
        if isinstance(value, ndarray):
            value = value._a
        elif basic:
            # cupy: _scatter_op -> y.fill(value) for non-cupy values on basic indexing
            if isinstance(value, _np.ndarray):
                if value.shape != ():
                    raise ValueError("non-scalar numpy.ndarray cannot be used for fill")
            elif not _is_scalar(value):
                raise TypeError(f"Unsupported type {type(value)}")
        self._a[key] = value

    # ---- arithmetic: through the cupy ufuncs (numpy arrays refused) ----
    def _binop(name, reflected=False):
        def op(self, other):
            if isinstance(other, _np.ndarray):
                raise TypeError(f"Unsupported type {type(other)}")
            if not isinstance(other, ndarray) and not _is_scalar(other):
                return NotImplemented
            uf = __getattr__(name)
            return uf(other, self) if reflected else uf(self, other)
        return op

    def _iop(name):
        def op(self, other):
            if isinstance(other, _np.ndarray):
                raise TypeError(f"Unsupported type {type(other)}")
            __getattr__(name)(self, other, out=self)
            return self
        return op

    __add__, __radd__, __iadd__ = _binop("add"), _binop("add", True), _iop("add")
    __sub__, __rsub__, __isub__ = _binop("subtract"), _binop("subtract", True), _iop("subtract")
    __mul__, __rmul__, __imul__ = _binop("multiply"), _binop("multiply", True), _iop("multiply")
    __truediv__, __rtruediv__, __itruediv__ = (_binop("true_divide"), _binop("true_divide", True),
                                               _iop("true_divide"))
    __floordiv__, __rfloordiv__, __ifloordiv__ = (_binop("floor_divide"), _binop("floor_divide", True),
                                                  _iop("floor_divide"))
    __mod__, __rmod__, __imod__ = _binop("remainder"), _binop("remainder", True), _iop("remainder")
    __pow__, __rpow__, __ipow__ = _binop("power"), _binop("power", True), _iop("power")
    __matmul__, __rmatmul__ = _binop("matmul"), _binop("matmul", True)
    __and__, __rand__, __iand__ = _binop("bitwise_and"), _binop("bitwise_and", True), _iop("bitwise_and")
    __or__, __ror__, __ior__ = _binop("bitwise_or"), _binop("bitwise_or", True), _iop("bitwise_or")
    __xor__, __rxor__, __ixor__ = _binop("bitwise_xor"), _binop("bitwise_xor", True), _iop("bitwise_xor")
    __lt__, __le__, __gt__, __ge__ = _binop("less"), _binop("less_equal"), _binop("greater"), _binop("greater_equal")
    __eq__, __ne__ = _binop("equal"), _binop("not_equal")
    __hash__ = None

    def __neg__(self):
        return __getattr__("negative")(self)

    def __pos__(self):
        return __getattr__("positive")(self)

    def __abs__(self):
        return __getattr__("absolute")(self)

    def __invert__(self):
        return __getattr__("invert")(self)

    del _binop, _iop


ndarray.__module__ = "cupy"
_wrap = ndarray._wrap


def _wrap_result(r):
    if isinstance(r, _np.ndarray):
        return _wrap(r)
    if isinstance(r, _np.generic):
        return _wrap(_np.asarray(r))
    if isinstance(r, tuple):
        return tuple(_wrap_result(x) for x in r)
    if isinstance(r, list):
        return [_wrap_result(x) for x in r]
    return r


def _is_scalar(x):
    return isinstance(x, (builtins.bool, int, float, complex, _np.generic))


def _unwrap(x, where=""):
    """cupy arrays -> their numpy storage; numpy arrays are refused (CuPy
    routines accept only cupy arrays and scalars)."""
    if isinstance(x, ndarray):
        return x._a
    if isinstance(x, _np.ndarray):
        raise TypeError(f"Unsupported type {type(x)}" + (f" (in cupy.{where})" if where else ""))
    if isinstance(x, (list, tuple)):
        return type(x)(_unwrap(v, where) for v in x)
    return x


def _unwrap_args(args, where=""):
    return tuple(_unwrap(a, where) for a in args)


def _unwrap_kwargs(kwargs, where=""):
    out = {}
    for k, v in kwargs.items():
        if k == "out" and v is not None and not isinstance(v, ndarray):
            raise TypeError("Output arguments type must be cupy.ndarray")
        out[k] = _unwrap(v, where)
    return out


def _index_key(key):
    """Indices: cupy arrays, numpy arrays and lists are all accepted (CuPy's
    _prepare_slice_list converts them to device arrays)."""
    if isinstance(key, tuple):
        return tuple(_index_key(k) for k in key)
    if isinstance(key, ndarray):
        return key._a
    if isinstance(key, list):
        return _np.asarray([k._a if isinstance(k, ndarray) else k for k in key])
    return key


def _is_basic_key(key):
    keys = key if isinstance(key, tuple) else (key,)
    for k in keys:
        if k is None or k is Ellipsis or isinstance(k, slice):
            continue
        if isinstance(k, (int, _np.integer)) and not isinstance(k, (builtins.bool, _np.bool_)):
            continue
        return False
    return True


def _as_view_key(key):
    keys = key if isinstance(key, tuple) else (key,)
    if any(k is Ellipsis for k in keys):
        return key
    return keys + (Ellipsis,)


# ---------------------------------------------------------------------------
# creation and host <-> device
# ---------------------------------------------------------------------------

def _contains_cupy(obj):
    if isinstance(obj, ndarray):
        return True
    if isinstance(obj, (list, tuple)):
        return builtins.any(_contains_cupy(o) for o in obj)
    return False


def _all_cupy_leaves(obj):
    if isinstance(obj, ndarray):
        return True
    if isinstance(obj, (list, tuple)) and len(obj):
        return builtins.all(_all_cupy_leaves(o) for o in obj)
    return False


def _host_to_device(obj, dtype=None, order="K", ndmin=0):
    if isinstance(obj, (list, tuple)) and _contains_cupy(obj):
        if not _all_cupy_leaves(obj):
            # CuPy falls back to numpy.array(obj), which calls __array__: TypeError
            raise TypeError("Implicit conversion to a NumPy array is not allowed. "
                            "Please use `.get()` to construct a NumPy array explicitly.")

        def nest(o):
            return o._a if isinstance(o, ndarray) else _np.stack([nest(v) for v in o])
        a = nest(obj)
    else:
        a = obj
    transfers["to_device"] += 1
    # device memory never aliases host memory: always copy
    return _np.array(a, dtype=dtype, order=order if order in ("C", "F") else "K", copy=True, ndmin=ndmin)


def array(obj, dtype=None, copy=True, order="K", subok=False, ndmin=0, *, blocking=False):
    if isinstance(obj, ndarray):
        a = obj._a
        if copy or (dtype is not None and _np.dtype(dtype) != a.dtype):
            a = _np.array(a, dtype=dtype, order=order, copy=True, ndmin=ndmin)
        elif ndmin > a.ndim:
            a = a.reshape((1,) * (ndmin - a.ndim) + a.shape)
        return _wrap(a) if a is not obj._a else obj
    return _wrap(_host_to_device(obj, dtype, order, ndmin))


def asarray(a, dtype=None, order=None, *, blocking=False):
    if isinstance(a, ndarray):
        if dtype is None or _np.dtype(dtype) == a.dtype:
            if order == "C" and not a._a.flags.c_contiguous:
                return _wrap(_np.ascontiguousarray(a._a))
            return a
        return _wrap(a._a.astype(dtype, order="K" if order is None else order))
    return _wrap(_host_to_device(a, dtype, order or "K"))


asanyarray = asarray


def ascontiguousarray(a, dtype=None):
    if not isinstance(a, ndarray):
        raise TypeError(f"Unsupported type {type(a)}")  # cupy.ascontiguousarray takes cupy arrays
    r = _np.ascontiguousarray(a._a, dtype=dtype)
    return a if r is a._a else _wrap(r)


def asnumpy(a, stream=None, order="C", out=None, *, blocking=True):
    if isinstance(a, ndarray):
        return a.get(stream=stream, order=order, out=out, blocking=blocking)
    if hasattr(a, "__cuda_array_interface__"):
        raise TypeError("fakecupy: foreign device arrays are not emulated")
    if out is not None:
        out[...] = a
        return out
    return _np.asarray(a, order=order)


def get_array_module(*args):
    for a in args:
        if isinstance(a, ndarray):
            return __import__("cupy")
    return numpy


def empty(shape, dtype=float, order="C"):
    return _wrap(_poison(_np.empty(shape, dtype=dtype, order=order)))


def empty_like(prototype, dtype=None, order="K", subok=None, shape=None):
    return _wrap(_poison(_np.empty_like(_unwrap(prototype, "empty_like"), dtype=dtype, order=order,
                                        shape=shape)))


def zeros(shape, dtype=float, order="C"):
    return _wrap(_np.zeros(shape, dtype=dtype, order=order))


def ones(shape, dtype=float, order="C"):
    return _wrap(_np.ones(shape, dtype=dtype, order=order))


def full(shape, fill_value, dtype=None, order="C"):
    if isinstance(fill_value, ndarray):
        fill_value = fill_value._a
    elif isinstance(fill_value, _np.ndarray):
        raise TypeError(f"Unsupported type {type(fill_value)}")
    return _wrap(_np.full(shape, fill_value, dtype=dtype, order=order))


def _like(npfunc, name):
    def f(a, *args, **kwargs):
        if not isinstance(a, ndarray):
            raise TypeError(f"Unsupported type {type(a)} (cupy.{name} needs a cupy.ndarray)")
        kwargs.pop("subok", None)
        return _wrap(npfunc(a._a, *_unwrap_args(args, name), **_unwrap_kwargs(kwargs, name)))
    f.__name__ = name
    return f


zeros_like = _like(_np.zeros_like, "zeros_like")
ones_like = _like(_np.ones_like, "ones_like")
full_like = _like(_np.full_like, "full_like")


# ---------------------------------------------------------------------------
# ufuncs and other routines, generically over numpy
# ---------------------------------------------------------------------------

class ufunc:
    """A cupy ufunc: inputs must be cupy.ndarray or scalars (numpy arrays and
    lists raise TypeError('Unsupported type ...'), as in CuPy)."""

    def __init__(self, name):
        self.name = self.__name__ = name
        self._np = getattr(_np, name)
        self.nin, self.nout, self.nargs = self._np.nin, self._np.nout, self._np.nargs

    def __repr__(self):
        return f"<ufunc '{self.name}'>"

    def __call__(self, *args, out=None, dtype=None, casting="same_kind", **kwargs):
        if kwargs:
            raise TypeError(f"Wrong arguments {kwargs}")
        if not self.nin <= len(args) <= self.nargs:
            raise TypeError(f"Wrong number of arguments for '{self.name}'. It must be either "
                            f"{self.nin} or {self.nargs} (with outputs), but given {len(args)}.")
        ins, outs = args[:self.nin], args[self.nin:]
        if out is not None:
            if outs:
                raise ValueError("Cannot specify 'out' as both a positional and keyword argument")
            outs = out if isinstance(out, tuple) else (out,)
        conv = []
        for a in ins:
            if isinstance(a, ndarray):
                conv.append(a._a)
            elif _is_scalar(a):
                conv.append(a)
            else:
                raise TypeError(f"Unsupported type {type(a)}")
        np_out = []
        for o in outs:
            if o is None:
                np_out.append(None)
            elif isinstance(o, ndarray):
                np_out.append(o._a)
            else:
                raise TypeError("Output arguments type must be cupy.ndarray")
        kw = {"casting": casting}
        if dtype is not None:
            kw["dtype"] = dtype
        if np_out:
            kw["out"] = tuple(np_out) + (None,) * (self.nout - len(np_out))
        r = self._np(*conv, **kw)
        if np_out:
            res = tuple(o if o is not None else _wrap_result(ri)
                        for o, ri in zip(outs + (None,) * (self.nout - len(outs)),
                                         r if isinstance(r, tuple) else (r,)))
            return res[0] if self.nout == 1 else res
        return _wrap_result(r)

    def reduce(self, array, axis=0, dtype=None, out=None, keepdims=False):
        return _wrap_result(self._np.reduce(_unwrap(array), axis=axis, dtype=dtype,
                                            out=None if out is None else out._a, keepdims=keepdims))


_UFUNC_CACHE = {}
_SEQ_FUNCS = {"stack", "concatenate", "vstack", "hstack", "dstack", "column_stack", "block",
              "broadcast_arrays"}
_NOT_IN_CUPY = {"asmatrix", "matrix", "save", "load", "savez", "loadtxt", "genfromtxt", "fromfile",
                "frombuffer", "fromstring", "memmap", "recarray", "char", "rec", "ma", "ctypeslib",
                "printoptions", "set_printoptions", "get_printoptions", "test"}


def _routine(name):
    npf = getattr(_np, name)

    def f(*args, **kwargs):
        if name in _SEQ_FUNCS and args and isinstance(args[0], (list, tuple)):
            for x in args[0]:
                if not isinstance(x, ndarray):
                    raise TypeError(f"Only cupy arrays can be used in cupy.{name} (got {type(x)})")
        return _wrap_result(npf(*_unwrap_args(args, name), **_unwrap_kwargs(kwargs, name)))
    f.__name__ = f.__qualname__ = name
    f.__module__ = "cupy"
    return f


def __getattr__(name):
    if name.startswith("__") or name in _NOT_IN_CUPY:
        raise AttributeError(name)
    if name in _UFUNC_CACHE:
        return _UFUNC_CACHE[name]
    obj = getattr(_np, name, None)
    if isinstance(obj, _np.ufunc):
        u = _UFUNC_CACHE[name] = ufunc(name)
        return u
    if callable(obj) and not isinstance(obj, type):
        f = _UFUNC_CACHE[name] = _routine(name)
        return f
    raise AttributeError(f"module 'cupy' has no attribute '{name}' (fakecupy)")


def matmul(x1, x2, out=None, **kwargs):
    return __getattr__("matmul")(x1, x2, out=out, **kwargs)


def clip(a, a_min=None, a_max=None, out=None, **kwargs):
    a_min = kwargs.pop("min", a_min)
    a_max = kwargs.pop("max", a_max)
    if kwargs:
        raise TypeError(f"Wrong arguments {kwargs}")
    if not isinstance(a, ndarray):
        raise TypeError(f"Unsupported type {type(a)}")
    if out is not None and not isinstance(out, ndarray):
        raise TypeError("Output arguments type must be cupy.ndarray")
    r = _np.clip(a._a, _unwrap(a_min, "clip"), _unwrap(a_max, "clip"),
                 out=None if out is None else out._a)
    return out if out is not None else _wrap_result(r)


# ---------------------------------------------------------------------------
# memory pools, misc
# ---------------------------------------------------------------------------

from cupy.cuda import memory as _memory  # noqa: E402
from cupy import cuda  # noqa: E402,F401
from cupy import random  # noqa: E402,F401
from cupy._kernels import ElementwiseKernel, ReductionKernel, RawKernel  # noqa: E402,F401

get_default_memory_pool = _memory.get_default_memory_pool
get_default_pinned_memory_pool = _memory.get_default_pinned_memory_pool


def show_config():
    print("fakecupy (CPU emulation of CuPy; no GPU)")


def is_available():
    return True
