"""ElementwiseKernel and ReductionKernel, emulated on the CPU.

The CUDA source strings are pasted into generated C++ that mirrors CuPy's own
templates (cupy/_core/_kernel.pyx: _get_simple_elementwise_kernel_code,
_get_elementwise_kernel_code; cupy/_core/_reduction.pyx:
_create_reduction_function_code), compiled with g++ into a shared library
(cached on disk per generated source, i.e. per kernel and dtypes), and called
through ctypes.  The Python-side argument handling follows CuPy's
ElementwiseKernel.__call__ / ReductionKernel.__call__ / _AbstractReductionKernel._call
step by step (see EMULATED.md).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import re
import subprocess
import tempfile
import threading

import numpy

import cupy
from cupy import ndarray, _wrap

_CACHE_DIR = os.environ.get("FAKECUPY_CACHE_DIR",
                            os.path.join(os.path.expanduser("~"), ".cache", "numpy-vae-fakecupy"))
_CXX = os.environ.get("FAKECUPY_CXX", "g++")
# -O2 (not -O1): GCC forms FMAs (pass_optimize_widening_mul) only with
# -fexpensive-optimizations, which -O1 lacks.  NVRTC contracts by default (--fmad=true).
_CXXFLAGS = os.environ.get("FAKECUPY_CXXFLAGS",
                           "-O1 -fexpensive-optimizations -ffp-contract=fast -mfma -std=c++17 "
                           "-fPIC -shared -w").split()
_ULP_MODE = os.environ.get("FAKECUPY_ULP", "libm")  # "libm" or "cuda" (worst-case CUDA ulp errors)
_lock = threading.Lock()
_loaded = {}
stats = {"compiles": 0, "launches": 0}


class CompileException(Exception):
    def __init__(self, msg, source, name, options):
        self._msg, self.source, self.name, self.options = msg, source, name, options
        super().__init__(msg)

    def __str__(self):
        return self._msg

    def dump(self, f):
        lines = self.source.split("\n")
        f.write(f"==========\n{self.name}\n==========\n")
        for i, line in enumerate(lines):
            f.write(f"{i + 1:04d} {line}\n")


# ---------------------------------------------------------------------------
# types
# ---------------------------------------------------------------------------

_TYPENAMES = {
    numpy.dtype("float64"): "double", numpy.dtype("float32"): "float",
    numpy.dtype("int64"): "long long", numpy.dtype("int32"): "int",
    numpy.dtype("int16"): "short", numpy.dtype("int8"): "signed char",
    numpy.dtype("uint64"): "unsigned long long", numpy.dtype("uint32"): "unsigned int",
    numpy.dtype("uint16"): "unsigned short", numpy.dtype("uint8"): "unsigned char",
    numpy.dtype("bool"): "bool",
}


def _get_typename(dtype):
    dtype = numpy.dtype(dtype)
    try:
        return _TYPENAMES[dtype]
    except KeyError:
        raise TypeError(f"fakecupy: no C++ type emulated for dtype {dtype}") from None


def _get_dtype(t):
    return numpy.dtype(t)


class ParameterInfo:
    """cupy/_core/_kernel.pyx ParameterInfo."""

    def __init__(self, param, is_const):
        self.name = None
        self.dtype = None
        self.ctype = None
        self.raw = False
        self.is_const = is_const
        s = tuple(i for i in param.split() if len(i) != 0)
        if len(s) < 2:
            raise Exception("Syntax error: %s" % param)
        t, self.name = s[-2:]
        if t == "CIndexer":
            pass
        elif len(t) == 1:
            self.ctype = t
        else:
            self.dtype = _get_dtype(t)
            self.ctype = _get_typename(self.dtype)
        for i in s[:-2]:
            if i == "raw":
                self.raw = True
            elif i == "_non_const":
                self.is_const = False
            else:
                raise Exception('Unknown keyword "%s"' % i)

    def __repr__(self):
        return (f"<ParameterInfo name={self.name!r} dtype={self.dtype!r} ctype={self.ctype!r} "
                f"raw={self.raw} is_const={self.is_const}>")


def _get_param_info(s, is_const):
    if len(s) == 0:
        return ()
    return tuple(ParameterInfo(i, is_const) for i in s.strip().split(","))


def _is_valid_kernel_name(name):
    return re.match("^[a-zA-Z_][a-zA-Z_0-9]*$", name) is not None


class _CScalar:
    """cupy/_core/_scalar.pyx CScalar: Python scalars and NumPy scalars only."""

    def __init__(self, value):
        typ = type(value)
        if typ is bool:
            self.descr = numpy.dtype(numpy.bool_)
        elif typ is float:
            self.descr = numpy.dtype(numpy.float64)
        elif typ is complex:
            self.descr = numpy.dtype(numpy.complex128)
        elif typ is int:
            self.descr = numpy.dtype(numpy.uint64 if value >= 0x8000000000000000 else numpy.int64)
        elif isinstance(value, numpy.generic):
            self.descr = value.dtype
        else:
            raise TypeError(f"Unsupported type {type(value)}")
        self.value = value
        self._store()

    def _store(self):
        # PyArray_Pack: assignment semantics (rounds float64 -> float32,
        # raises for out-of-bound Python ints under NEP 50)
        self.c_value = numpy.array(self.value, dtype=self.descr)

    def apply_dtype(self, dtype):
        dtype = numpy.dtype(dtype)
        if dtype == self.descr:
            return
        self.descr = dtype
        self._store()


def _preprocess_arg(arg):
    if isinstance(arg, ndarray):
        return arg
    if hasattr(arg, "__cuda_array_interface__"):
        raise TypeError("fakecupy: foreign __cuda_array_interface__ objects are not emulated")
    return _CScalar(arg)  # raises TypeError('Unsupported type ...') for numpy arrays, lists, ...


def _broadcast(args, params, use_size):
    """cupy/_core/_kernel.pyx _broadcast: returns (args with broadcast views, shape)."""
    value = []
    any_nonraw_array = False
    for a, p in zip(args, params):
        if not p.raw and isinstance(a, ndarray):
            any_nonraw_array = True
            value.append(a)
        else:
            value.append(None)
    if use_size:
        if any_nonraw_array:
            raise ValueError("Specified 'size' can be used only if all of the ndarray are 'raw'.")
    elif not any_nonraw_array:
        raise ValueError("Loop size is undecided.")
    arrays = [v for v in value if v is not None]
    try:
        shape = numpy.broadcast_shapes(*[a.shape for a in arrays])
    except ValueError:
        raise ValueError("operands could not be broadcast together with shapes "
                         + " ".join(str(a.shape) for a in arrays)) from None
    out = []
    for a, v in zip(args, value):
        if v is None:
            out.append(a)
        else:
            out.append(v if v.shape == shape else _wrap(numpy.broadcast_to(v._a, shape)))
    return out, tuple(shape)


def _decide_params_type_core(in_params, out_params, in_args_dtype, out_args_dtype):
    """Verbatim logic of cupy/_core/_kernel.pyx _decide_params_type_core."""
    type_dict = {}
    if out_args_dtype:
        assert len(out_params) == len(out_args_dtype)
        for p, a in zip(out_params, out_args_dtype):
            if a is None:
                raise TypeError("Output arguments must be cupy.ndarray")
            if p.dtype is not None:
                if _get_dtype(a) != _get_dtype(p.dtype):
                    raise TypeError("Type is mismatched. %s %s %s" % (p.name, a, p.dtype))
            elif p.ctype in type_dict:
                t = type_dict[p.ctype]
                if _get_dtype(t) != _get_dtype(a):
                    raise TypeError("Type is mismatched. %s %s %s %s" % (p.name, a, t, p.ctype))
            else:
                type_dict[p.ctype] = a
    assert len(in_params) == len(in_args_dtype)
    for p, a in zip(in_params, in_args_dtype):
        if a is None:
            continue
        if p.dtype is not None:
            if numpy.dtype(a) != numpy.dtype(p.dtype):
                raise TypeError("Type is mismatched. %s %s %s" % (p.name, a, p.dtype))
        elif p.ctype in type_dict:
            t = type_dict[p.ctype]
            if numpy.dtype(t) != numpy.dtype(a):
                raise TypeError("Type is mismatched. %s %s %s %s" % (p.name, a, t, p.ctype))
        else:
            type_dict[p.ctype] = a
    # a placeholder fixed by no array raises KeyError, as in CuPy
    in_types = tuple(type_dict[p.ctype] if p.dtype is None else p.dtype for p in in_params)
    out_types = tuple(type_dict[p.ctype] if p.dtype is None else p.dtype for p in out_params)
    type_map = tuple(sorted((k, numpy.dtype(v)) for k, v in type_dict.items()))
    return in_types, out_types, type_map


def _get_out_args_with_params(out_args, out_types, out_shape, out_params, is_size_specified):
    if not out_args:
        for p in out_params:
            if p.raw and not is_size_specified:
                raise ValueError("Output array size is Undecided")
        return [cupy.empty(out_shape, t) for t in out_types]  # uninitialized (poisoned)
    for a, p in zip(out_args, out_params):
        if not isinstance(a, ndarray):
            raise TypeError("Output arguments type must be cupy.ndarray")
        if not p.raw and tuple(a.shape) != tuple(out_shape):
            raise ValueError("Out shape is mismatched")
    return out_args


# ---------------------------------------------------------------------------
# C++ generation and compilation
# ---------------------------------------------------------------------------

_MAXDIM = 32

_HEADER = r"""
// ---- fakecupy: CUDA shims for a host compiler ----
#include <math.h>
#include <cmath>
#include <stddef.h>
#include <stdint.h>
#include <limits>
#define __device__
#define __host__
#define __global__
#define __forceinline__ inline
#define __noinline__
#define __restrict__ __restrict
#define CUDART_INF_F std::numeric_limits<float>::infinity()
#define CUDART_NAN_F std::numeric_limits<float>::quiet_NaN()
#define CUDART_INF std::numeric_limits<double>::infinity()
#define CUDART_NAN std::numeric_limits<double>::quiet_NaN()
using std::min;
using std::max;
static inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
static inline double rsqrt(double x) { return 1.0 / sqrt(x); }
static inline float rsqrt(float x) { return 1.0f / sqrtf(x); }
static inline float __fdividef(float a, float b) { return a / b; }
static inline float __frcp_rn(float x) { return 1.0f / x; }
template <typename T> struct CArray {
    char* _data; int _ndim; long long _size; const long long* _shape; const long long* _strides;
    CArray(const long long* m) : _data((char*)m[0]), _ndim((int)m[1]), _size(m[2]),
                                 _shape(m + 3), _strides(m + 3 + m[1]) {}
    long long size() const { return _size; }
    const long long* shape() const { return _shape; }
    const long long* strides() const { return _strides; }
    T* data() const { return (T*)_data; }
    T& operator[](ptrdiff_t i) const {
        long long off = 0;
        for (int d = _ndim - 1; d >= 0; --d) { long long c = i % _shape[d]; i /= _shape[d]; off += c * _strides[d]; }
        return *(T*)(_data + off);
    }
    T& operator[](const ptrdiff_t* idx) const {
        long long off = 0;
        for (int d = 0; d < _ndim; ++d) off += idx[d] * _strides[d];
        return *(T*)(_data + off);
    }
};
struct CIndexer {
    long long _size; int ndim; ptrdiff_t _index[""" + str(_MAXDIM) + r"""];
    long long size() const { return _size; }
    const ptrdiff_t* get() const { return _index; }
};
"""

# Worst-case CUDA ulp errors (CUDA C++ Programming Guide, "Mathematical functions",
# maximum ulp error tables): single: expf 2, expm1f 1, logf 1, log1pf 1, tanhf 2;
# double: exp 1, expm1 1, log 1, log1p 1, tanh 1.  With FAKECUPY_ULP=cuda each
# call is perturbed by a deterministic pseudo-random number of ulps within that bound.
_ULP_SHIM = r"""
#include <string.h>
static inline unsigned _fc_hash(unsigned long long x) {
    x ^= x >> 33; x *= 0xff51afd7ed558ccdULL; x ^= x >> 33; x *= 0xc4ceb9fe1a85ec53ULL; x ^= x >> 33;
    return (unsigned)x;
}
static inline float _fc_perturb(float y, float x, int maxulp, unsigned salt) {
    if (!std::isfinite(y) || y == 0.0f) return y;
    unsigned b; memcpy(&b, &x, 4);
    int k = (int)(_fc_hash((unsigned long long)b * 2654435761ULL + salt) % (2 * maxulp + 1)) - maxulp;
    for (; k > 0; --k) y = nextafterf(y, INFINITY);
    for (; k < 0; ++k) y = nextafterf(y, -INFINITY);
    return y;
}
static inline double _fc_perturb(double y, double x, int maxulp, unsigned salt) {
    if (!std::isfinite(y) || y == 0.0) return y;
    unsigned long long b; memcpy(&b, &x, 8);
    int k = (int)(_fc_hash(b + salt) % (2 * maxulp + 1)) - maxulp;
    for (; k > 0; --k) y = nextafter(y, INFINITY);
    for (; k < 0; ++k) y = nextafter(y, -INFINITY);
    return y;
}
static inline float _fc_exp(float x) { return _fc_perturb(std::exp(x), x, 2, 1); }
static inline double _fc_exp(double x) { return _fc_perturb(std::exp(x), x, 1, 1); }
static inline float _fc_expm1(float x) { return _fc_perturb(std::expm1(x), x, 1, 2); }
static inline double _fc_expm1(double x) { return _fc_perturb(std::expm1(x), x, 1, 2); }
static inline float _fc_log(float x) { return _fc_perturb(std::log(x), x, 1, 3); }
static inline double _fc_log(double x) { return _fc_perturb(std::log(x), x, 1, 3); }
static inline float _fc_log1p(float x) { return _fc_perturb(std::log1p(x), x, 1, 4); }
static inline double _fc_log1p(double x) { return _fc_perturb(std::log1p(x), x, 1, 4); }
static inline float _fc_tanh(float x) { return _fc_perturb(std::tanh(x), x, 2, 5); }
static inline double _fc_tanh(double x) { return _fc_perturb(std::tanh(x), x, 1, 5); }
#define exp(x) _fc_exp(x)
#define expm1(x) _fc_expm1(x)
#define log(x) _fc_log(x)
#define log1p(x) _fc_log1p(x)
#define tanh(x) _fc_tanh(x)
"""


def _header():
    return _HEADER + (_ULP_SHIM if _ULP_MODE == "cuda" else "")


def _typedefs(type_map):
    return "".join(f"typedef {_get_typename(dt)} {name};\n" for name, dt in type_map)


def _compile(source, name):
    key = hashlib.sha1((source + "\0" + " ".join(_CXXFLAGS) + _CXX).encode()).hexdigest()[:20]
    with _lock:
        fn = _loaded.get(key)
        if fn is not None:
            return fn
        os.makedirs(_CACHE_DIR, exist_ok=True)
        so = os.path.join(_CACHE_DIR, f"{name}_{key}.so")
        src = os.path.join(_CACHE_DIR, f"{name}_{key}.cpp")
        if not os.path.exists(so):
            with open(src, "w") as f:
                f.write(source)
            fd, tmp = tempfile.mkstemp(suffix=".so", dir=_CACHE_DIR)
            os.close(fd)
            cmd = [_CXX, *_CXXFLAGS, src, "-o", tmp]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                os.unlink(tmp)
                raise CompileException(f"fakecupy: g++ failed for kernel {name}:\n{proc.stderr}",
                                       source, name, tuple(_CXXFLAGS))
            os.replace(tmp, so)
            stats["compiles"] += 1
        lib = ctypes.CDLL(so)
        fn = lib.fc_kernel
        fn.restype = None
        _loaded[key] = (fn, lib)
        return _loaded[key]


def _ptr(a):
    return a._a.__array_interface__["data"][0]


def _raw_meta(a):
    """[ptr, ndim, size, shape..., strides...] for a raw CArray."""
    x = a._a
    vals = [_ptr(a), x.ndim, x.size, *x.shape, *x.strides]
    return (ctypes.c_longlong * len(vals))(*vals)


def _bind(p, a, ptrs, slot, strides, row, ndim, keep):
    """Pass argument ``a`` (parameter ``p``) to the compiled kernel: its pointer
    in ``ptrs[slot]`` and, for an array that is not raw, its strides in row
    ``row`` of ``strides``.  ``keep`` holds the ctypes buffers alive."""
    if isinstance(a, ndarray):
        if p.raw:
            m = _raw_meta(a)
            keep.append(m)
            ptrs[slot] = ctypes.cast(m, ctypes.c_void_p)
        else:
            ptrs[slot] = _ptr(a)
            for d in range(ndim):
                strides[row * ndim + d] = a._a.strides[d]
    else:
        buf = _scalar_buf(a)
        keep.append(buf)
        ptrs[slot] = ctypes.cast(buf, ctypes.c_void_p)


def _scalar_buf(s):
    buf = ctypes.create_string_buffer(s.c_value.tobytes(), max(8, s.c_value.itemsize))
    return buf


# ---------------------------------------------------------------------------
# ElementwiseKernel
# ---------------------------------------------------------------------------

class ElementwiseKernel:
    """cupy.ElementwiseKernel, emulated."""

    def __init__(self, in_params, out_params, operation, name="kernel", reduce_dims=True,
                 preamble="", no_return=False, return_tuple=False, **kwargs):
        if not _is_valid_kernel_name(name):
            raise ValueError('Invalid kernel name: "%s"' % name)
        self.in_params = _get_param_info(in_params, True)
        self.out_params = _get_param_info(out_params, False)
        self.nin = len(self.in_params)
        self.nout = len(self.out_params)
        self.nargs = self.nin + self.nout
        self.params = self.in_params + self.out_params
        self.operation = operation
        self.name = self.__name__ = name
        self.reduce_dims = reduce_dims
        self.preamble = preamble
        self.no_return = no_return
        self.return_tuple = return_tuple
        self.kwargs = kwargs
        names = [p.name for p in self.in_params + self.out_params]
        if "i" in names:
            raise ValueError("Can not use 'i' as a parameter name")
        self._cached_codes = {}

    def __call__(self, *args, **kwargs):
        size = kwargs.pop("size", -1)
        kwargs.pop("stream", None)
        block_size = kwargs.pop("block_size", 128)
        if len(kwargs):
            raise TypeError("Wrong arguments %s" % kwargs)
        if block_size <= 0:
            raise ValueError("block_size must be greater than zero")
        n_args = len(args)
        if n_args != self.nin and n_args != self.nargs:
            raise TypeError("Wrong number of arguments for {!r}. It must be either {} or {} "
                            "(with outputs), but given {}.".format(self.name, self.nin, self.nargs, n_args))
        arg_list = [_preprocess_arg(a) for a in args]
        out_args = arg_list[self.nin:]
        broadcast, shape = _broadcast(arg_list, self.params, size != -1)
        in_args = broadcast[:self.nin]

        in_ndarray_types = tuple(a.dtype if isinstance(a, ndarray) else None for a in in_args)
        out_ndarray_types = tuple(a.dtype if isinstance(a, ndarray) else None for a in out_args)
        in_types, out_types, type_map = _decide_params_type_core(
            self.in_params, self.out_params, in_ndarray_types, out_ndarray_types)

        is_size_specified = False
        if size != -1:
            shape = (size,)
            is_size_specified = True
        out_args = _get_out_args_with_params(out_args, out_types, shape, self.out_params,
                                             is_size_specified)
        if self.no_return:
            ret = None
        elif not self.return_tuple and self.nout == 1:
            ret = out_args[0]
        else:
            ret = tuple(out_args)
        if 0 in shape:
            return ret
        for i, x in enumerate(in_args):
            if isinstance(x, _CScalar):
                x.apply_dtype(in_types[i])
        inout = list(in_args) + list(out_args)
        self._launch(inout, shape, type_map)
        stats["launches"] += 1
        return ret

    def _source(self, kinds, type_map):
        ops = []
        decls = []
        for k, (p, kind) in enumerate(zip(self.params, kinds)):
            if kind == "array" and not p.raw:
                decls.append(f"  char* _base_{p.name} = (char*)_args[{k}];")
                ref = "const {t} &{n}" if p.is_const else "{t} &{n}"
                ops.append((ref + " = *({c}{t}*)(_base_{n} + _off[{k}]);").format(
                    t=p.ctype, n=p.name, k=k, c="const " if p.is_const else ""))
            elif kind == "array":  # raw
                decls.append(f"  {'const ' if p.is_const else ''}CArray<{p.ctype}> {p.name}"
                             f"((const long long*)_args[{k}]);")
            else:  # scalar, passed by value like CuPy's kernel parameters
                decls.append(f"  {'const ' if p.is_const else ''}{p.ctype} {p.name} = "
                             f"*(const {p.ctype}*)_args[{k}];")
        arrays = [k for k, (p, kind) in enumerate(zip(self.params, kinds)) if kind == "array" and not p.raw]
        loop_prep = self.kwargs.get("loop_prep", "")
        after_loop = self.kwargs.get("after_loop", "")
        body = "\n      ".join(ops + [self.operation])
        offs = "\n".join(f"        _off[{k}] += _c * _strides[{k} * _ndim + _d];" for k in arrays)
        return f"""{_header()}
// ---- CuPy elementwise template (typedefs, then preamble, then the kernel) ----
{_typedefs(type_map)}
{self.preamble}
extern "C" void fc_kernel(void** _args, const long long* _shape, int _ndim,
                          const long long* _strides, long long _size) {{
{chr(10).join(decls)}
  CIndexer _ind; _ind._size = _size; _ind.ndim = _ndim;
  long long _off[{max(1, len(self.params))}];
  {loop_prep};
  for (ptrdiff_t i = 0; i < (ptrdiff_t)_size; ++i) {{
    {{
      long long _rem = i;
      for (int _k = 0; _k < {max(1, len(self.params))}; ++_k) _off[_k] = 0;
      for (int _d = _ndim - 1; _d >= 0; --_d) {{
        long long _c = _rem % _shape[_d]; _rem /= _shape[_d];
        _ind._index[_d] = _c;
{offs}
      }}
    }}
    {{
      {body};
    }}
  }}
  {after_loop};
}}
"""

    def _launch(self, inout, shape, type_map):
        kinds = ["array" if isinstance(a, ndarray) else "scalar" for a in inout]
        src = self._source(kinds, type_map)
        key = tuple(kinds)
        self._cached_codes.setdefault((key, type_map), src)
        fn, _lib = _compile(src, self.name)
        ndim = len(shape)
        if ndim > _MAXDIM:
            raise ValueError("too many dimensions")
        keep = []
        ptrs = (ctypes.c_void_p * max(1, len(inout)))()
        strides = (ctypes.c_longlong * max(1, len(inout) * ndim))()
        for k, (p, a) in enumerate(zip(self.params, inout)):
            _bind(p, a, ptrs, k, strides, k, ndim, keep)
        size = 1
        for s in shape:
            size *= s
        fn(ptrs, (ctypes.c_longlong * max(1, ndim))(*shape), ctypes.c_int(ndim), strides,
           ctypes.c_longlong(size))

    @property
    def cached_codes(self):
        return dict(self._cached_codes)


# ---------------------------------------------------------------------------
# ReductionKernel
# ---------------------------------------------------------------------------

_BLOCK_SIZE = 512  # cupy/_core/_reduction.pyx _default_block_size (CUDA)


def _clp2(x):
    """cupy/_core/internal.pyx clp2: the smallest power of 2 >= x."""
    x -= 1
    for s in (1, 2, 4, 8, 16, 32):
        x |= x >> s
    return x + 1


def _get_block_specs(in_size, out_size, contiguous_size, block_size=-1):
    if block_size == -1:
        block_size = _BLOCK_SIZE
    reduce_block_size = max(1, in_size // out_size)
    contiguous_size = min(contiguous_size, 32)
    block_stride = max(contiguous_size, block_size // reduce_block_size)
    block_stride = _clp2(block_stride // 2 + 1)  # floor
    out_block_num = (out_size + block_stride - 1) // block_stride
    return block_size, block_stride, out_block_num


def _get_contiguous_size(args, params, out_shape, ndim):
    contiguous_size = 1
    out_ndim = len(out_shape)
    for a, p in zip(args, params):
        if not isinstance(a, ndarray) or p.raw:
            continue
        tmp = 1
        itemsize = a.dtype.itemsize
        for j in range(out_ndim):
            if a.strides[ndim - j - 1] != tmp * itemsize:
                break
            tmp *= out_shape[out_ndim - j - 1]
        contiguous_size = max(contiguous_size, tmp)
    return contiguous_size


def _normalize_axis_index(dim, ndim):
    if not -ndim <= dim < ndim:
        raise numpy.exceptions.AxisError(dim, ndim)
    return dim % ndim


def _get_axis(axis, ndim):
    if axis is None:
        return tuple(range(ndim)), ()
    if isinstance(axis, (list, tuple)):
        axis = tuple(axis)
    else:
        axis = (axis,)
    reduce_axis = tuple(sorted(_normalize_axis_index(dim, ndim) for dim in axis))
    out_axis = tuple(dim for dim in range(ndim) if dim not in reduce_axis)
    if len(reduce_axis) + len(out_axis) != ndim:
        raise ValueError("duplicate value in 'axis'")
    return reduce_axis, out_axis


def _get_out_shape(shape, reduce_axis, out_axis, keepdims):
    if keepdims:
        out = list(shape)
        for i in reduce_axis:
            out[i] = 1
        return tuple(out)
    return tuple(shape[i] for i in out_axis)


class ReductionKernel:
    """cupy.ReductionKernel, emulated, with CuPy's thread/lane summation order."""

    def __init__(self, in_params, out_params, map_expr, reduce_expr, post_map_expr, identity,
                 name="reduce_kernel", reduce_type=None, reduce_dims=True, preamble="", options=()):
        if not _is_valid_kernel_name(name):
            raise ValueError('Invalid kernel name: "%s"' % name)
        assert identity is not None or True
        self.name = self.__name__ = name
        self.identity = "" if identity is None else str(identity)
        self.in_params = _get_param_info(in_params, True)
        self.out_params = _get_param_info(out_params, False)
        self.nin = len(self.in_params)
        self.nout = len(self.out_params)
        self.nargs = self.nin + self.nout
        self.reduce_expr = reduce_expr
        self.map_expr = map_expr
        self.post_map_expr = post_map_expr
        self.options = options
        self.reduce_dims = reduce_dims
        self.reduce_type = self.out_params[0].ctype if reduce_type is None else reduce_type
        self.preamble = preamble
        self._cached_codes = {}

    def __call__(self, *args, **kwargs):
        out = kwargs.pop("out", None)
        axis = kwargs.pop("axis", None)
        keepdims = kwargs.pop("keepdims", False)
        kwargs.pop("stream", None)
        kwargs.pop("reduce_dims", self.reduce_dims)
        if kwargs:
            raise TypeError("Wrong arguments %s" % kwargs)
        n_args = len(args)
        if n_args != self.nin and n_args != self.nargs:
            raise TypeError("Wrong number of arguments for %s" % self.name)
        out_args = list(args[self.nin:])
        if out is not None:
            if self.nout != 1:
                raise NotImplementedError("")
            if len(out_args) != 0:
                raise ValueError("cannot specify 'out' as both a positional and keyword argument")
            out_args = [out]
        in_args = [_preprocess_arg(a) for a in args[:self.nin]]
        out_args = [_preprocess_arg(a) for a in out_args]
        in_args, broad_shape = _broadcast(in_args, self.in_params, False)
        return self._call(in_args, out_args, broad_shape, axis, keepdims)

    def _call(self, in_args, out_args, a_shape, axis, keepdims):
        in_ndarray_types = tuple(a.dtype.type if isinstance(a, ndarray) else None for a in in_args)
        out_ndarray_types = tuple(a.dtype.type if isinstance(a, ndarray) else None for a in out_args)
        in_types, out_types, type_map = _decide_params_type_core(
            self.in_params, self.out_params, in_ndarray_types, out_ndarray_types)

        reduce_axis, out_axis = _get_axis(axis, len(a_shape))
        if len(in_args) == 1 and len(out_axis) <= 1 and not in_args[0]._a.flags.c_contiguous:
            strides = in_args[0].strides
            reduce_axis = tuple(sorted(reduce_axis, key=lambda i: -abs(strides[i])))
            out_axis = tuple(sorted(out_axis, key=lambda i: -abs(strides[i])))

        out_shape = _get_out_shape(a_shape, reduce_axis, out_axis, keepdims)
        out_args = _get_out_args_with_params(out_args, out_types, out_shape, self.out_params, False)
        ret = out_args[0]
        if ret.size == 0:
            return ret
        if self.identity == "" and 0 in a_shape:
            raise ValueError(("zero-size array to reduction operation %s which has no identity")
                             % self.name)
        in_size = int(numpy.prod(a_shape, dtype=numpy.int64))
        out_size = int(numpy.prod(out_shape, dtype=numpy.int64))
        index_type = "long long" if out_size and in_size / out_size > 0x7fffffff else "int"

        for x, t in zip(in_args, in_types):
            if isinstance(x, _CScalar):
                x.apply_dtype(t)

        axis_permutes = reduce_axis + out_axis
        if axis_permutes != tuple(range(len(axis_permutes))):
            for p in self.in_params:
                if p.raw:
                    raise NotImplementedError("Illegal conditions")
            in_args = [_wrap(numpy.transpose(a._a, axis_permutes)) if isinstance(a, ndarray) else a
                       for a in in_args]
            in_shape = tuple(a_shape[i] for i in axis_permutes)
        else:
            in_shape = tuple(a_shape)
        # the kernel's output indexer runs over the non-reduced axes in out_axis order
        out_iter_shape = tuple(a_shape[i] for i in out_axis)

        contiguous_size = _get_contiguous_size(in_args, self.in_params, list(out_iter_shape),
                                               len(in_shape))
        block_size, block_stride, _ = _get_block_specs(in_size, max(out_size, 1), contiguous_size)
        lanes = block_size // block_stride

        # outputs viewed in the kernel's out_axis order (keepdims: without the 1s)
        outs_view = []
        for a in out_args:
            v = a._a
            if keepdims:
                v = v[tuple(0 if i in reduce_axis else slice(None) for i in range(v.ndim))]
            outs_view.append(_wrap(v))
        self._launch(in_args, outs_view, in_shape, out_iter_shape, type_map, index_type, lanes)
        stats["launches"] += 1
        return ret

    def _source(self, in_kinds, out_kinds, type_map, index_type):
        decls, in_expr, out_expr = [], [], []
        k = 0
        for p, kind in zip(self.in_params, in_kinds):
            if kind == "array" and not p.raw:
                decls.append(f"  char* _base_{p.name} = (char*)_args[{k}];")
                in_expr.append(f"const {p.ctype} {p.name} = *(const {p.ctype}*)(_base_{p.name} + _ioff[{k}]);")
            elif kind == "array":
                decls.append(f"  const CArray<{p.ctype}> {p.name}((const long long*)_args[{k}]);")
            else:
                decls.append(f"  const {p.ctype} {p.name} = *(const {p.ctype}*)_args[{k}];")
            k += 1
        for j, (p, kind) in enumerate(zip(self.out_params, out_kinds)):
            kk = self.nin + j
            if kind == "array" and not p.raw:
                decls.append(f"  char* _base_{p.name} = (char*)_args[{kk}];")
                out_expr.append(f"{p.ctype} &{p.name} = *({p.ctype}*)(_base_{p.name} + _ooff[{j}]);")
            elif kind == "array":
                decls.append(f"  CArray<{p.ctype}> {p.name}((const long long*)_args[{kk}]);")
        in_arrays = [i for i, (p, kind) in enumerate(zip(self.in_params, in_kinds))
                     if kind == "array" and not p.raw]
        out_arrays = [j for j, (p, kind) in enumerate(zip(self.out_params, out_kinds))
                      if kind == "array" and not p.raw]
        ioffs = "\n".join(f"          _ioff[{i}] += _c * _in_strides[{i} * _in_ndim + _d];" for i in in_arrays)
        ooffs = "\n".join(f"        _ooff[{j}] += _c * _out_strides[{j} * _out_ndim + _d];" for j in out_arrays)
        nin, nout = max(1, self.nin), max(1, self.nout)
        tm = _typedefs(type_map) + f"typedef {index_type} IndexT;\n"
        return f"""{_header()}
// ---- CuPy reduction template (typedefs, preamble, REDUCE/POST_MAP, _type_reduce) ----
{tm}
{self.preamble}
#define REDUCE(a, b) ({self.reduce_expr})
#define POST_MAP(a) ({self.post_map_expr})
typedef {self.reduce_type} _type_reduce;
extern "C" void fc_kernel(void** _args,
                          const long long* _in_shape, int _in_ndim, const long long* _in_strides,
                          long long _in_size,
                          const long long* _out_shape, int _out_ndim, const long long* _out_strides,
                          long long _out_size, int _lanes) {{
{chr(10).join(decls)}
  _type_reduce _sdata[{_BLOCK_SIZE}];
  long long _ioff[{nin}], _ooff[{nout}];
  for (ptrdiff_t _i = 0; _i < (ptrdiff_t)_out_size; ++_i) {{
    // thread lanes J = 0.._lanes-1 of output _i: lane J adds reduce indices J, J + _lanes, ...
    for (int _lane = 0; _lane < _lanes; ++_lane) {{
      _type_reduce _s = _type_reduce({self.identity});
      IndexT _J = _lane;
      for (ptrdiff_t _j = _i + (ptrdiff_t)_lane * _out_size; _j < (ptrdiff_t)_in_size;
           _j += (ptrdiff_t)_lanes * _out_size, _J += _lanes) {{
        {{
          long long _rem = _j;
          for (int _k = 0; _k < {nin}; ++_k) _ioff[_k] = 0;
          for (int _d = _in_ndim - 1; _d >= 0; --_d) {{
            long long _c = _rem % _in_shape[_d]; _rem /= _in_shape[_d];
{ioffs}
          }}
        }}
        {" ".join(in_expr)}
        _type_reduce _a = static_cast<_type_reduce>({self.map_expr});
        _s = REDUCE(_s, _a);
      }}
      _sdata[_lane] = _s;
    }}
    // shared-memory tree, as CuPy's _REDUCE(_block) loop
    for (int _block = _lanes / 2; _block >= 1; _block >>= 1) {{
      for (int _tid = 0; _tid < _block; ++_tid) {{
        _type_reduce _a = _sdata[_tid], _b = _sdata[(_tid + _block)];
        _sdata[_tid] = REDUCE(_a, _b);
      }}
    }}
    _type_reduce _s = _sdata[0];
    {{
      long long _rem = _i;
      for (int _k = 0; _k < {nout}; ++_k) _ooff[_k] = 0;
      for (int _d = _out_ndim - 1; _d >= 0; --_d) {{
        long long _c = _rem % _out_shape[_d]; _rem /= _out_shape[_d];
{ooffs}
      }}
    }}
    {{
      {" ".join(out_expr)}
      POST_MAP(_s);
    }}
  }}
}}
"""

    def _launch(self, in_args, out_args, in_shape, out_shape, type_map, index_type, lanes):
        in_kinds = ["array" if isinstance(a, ndarray) else "scalar" for a in in_args]
        out_kinds = ["array" if isinstance(a, ndarray) else "scalar" for a in out_args]
        src = self._source(in_kinds, out_kinds, type_map, index_type)
        self._cached_codes.setdefault((tuple(in_kinds), type_map), src)
        fn, _lib = _compile(src, self.name)
        keep = []
        n = len(in_args) + len(out_args)
        ptrs = (ctypes.c_void_p * max(1, n))()
        in_nd, out_nd = len(in_shape), len(out_shape)
        in_strides = (ctypes.c_longlong * max(1, len(in_args) * in_nd))()
        out_strides = (ctypes.c_longlong * max(1, len(out_args) * out_nd))()
        for k, (p, a) in enumerate(zip(self.in_params, in_args)):
            _bind(p, a, ptrs, k, in_strides, k, in_nd, keep)
        for j, (p, a) in enumerate(zip(self.out_params, out_args)):
            if not p.raw and a._a.shape != tuple(out_shape):
                raise AssertionError(f"fakecupy internal: output view {a._a.shape} vs {out_shape}")
            _bind(p, a, ptrs, self.nin + j, out_strides, j, out_nd, keep)
        in_size = int(numpy.prod(in_shape, dtype=numpy.int64))
        out_size = int(numpy.prod(out_shape, dtype=numpy.int64))
        fn(ptrs, (ctypes.c_longlong * max(1, in_nd))(*in_shape), ctypes.c_int(in_nd), in_strides,
           ctypes.c_longlong(in_size), (ctypes.c_longlong * max(1, out_nd))(*out_shape),
           ctypes.c_int(out_nd), out_strides, ctypes.c_longlong(out_size), ctypes.c_int(lanes))

    @property
    def cached_codes(self):
        return dict(self._cached_codes)


class RawKernel:
    def __init__(self, *args, **kwargs):
        raise NotImplementedError("fakecupy: RawKernel is not emulated")


class RawModule(RawKernel):
    pass
