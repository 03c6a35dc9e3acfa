"""Choosing a backend by name: get_backend("numpy" | "numba" | "cupy").

A backend (numpy_vae/backends/base.py) says which array library does the
arithmetic: its array module ``xp``, default ``dtype``, random generator
``rng`` and kernel table ``ops``.  For the NumPy backend ``ops`` is the
module ``numpy_vae.ops``: the readable reference whose formulas the layers'
docstrings quote.  The accelerated backends hand in twins of those functions
with the same signatures, so the layers never change:

    "numba"   NumPy arrays and generator, ``numba.njit`` kernels
              (numpy_vae/backends/numba_ops.py); BLAS does the matrix products.
    "cupy"    CuPy arrays and generator on an NVIDIA GPU, CuPy kernels
              (numpy_vae/backends/cupy_ops.py, cupy_backend.py); cuBLAS.

Each imports its library only when asked for, so ``import numpy_vae`` needs
neither numba nor cupy, and each either returns a ready ``Backend`` or
raises ``BackendUnavailableError`` with one line that says what to do.

Pick a backend by name: ``get_backend("numpy")``, the ``backend=`` argument
of every model, or the environment variable ``NUMPY_VAE_BACKEND`` (read only
when no name is given).
"""

from __future__ import annotations

import os

import numpy as np

from numpy_vae import ops as _reference_ops
from numpy_vae.backends.base import Backend, BackendUnavailableError, check_ops_complete

ENV_VAR = "NUMPY_VAE_BACKEND"
DEFAULT_BACKEND = "numpy"
BACKEND_NAMES = ("numpy", "numba", "cupy")
NUMBA_EXTRA = 'pip install "numpy-vae[numba]"'
CUDA_EXTRA = 'pip install "numpy-vae[cuda]"'
_DTYPES = ("float32", "float64")


def available_backends() -> list[str]:
    """Names of the backends that can run on this machine."""
    names = [DEFAULT_BACKEND]
    for name in ("numba", "cupy"):
        try:
            _MAKERS[name]("float32", 0)
        except BackendUnavailableError:
            continue
        names.append(name)
    return names


def resolve_backend_name(name: str | None) -> str:
    """``name`` if given, else ``$NUMPY_VAE_BACKEND``, else "numpy"."""
    if name is None or name == "":
        name = os.environ.get(ENV_VAR, "") or DEFAULT_BACKEND
    return name.strip().lower()


def get_backend(name: str | Backend | None = None, dtype: str = "float32",
                seed: int | None = 0) -> Backend:
    """Build a fresh backend.

    Parameters
    ----------
    name : "numpy" | "numba" | "cupy" | Backend | None
        None reads ``$NUMPY_VAE_BACKEND`` (default "numpy").  A ``Backend``
        instance is returned unchanged.
    dtype : "float32" | "float64"
    seed : int or None
        Seed of the backend's random generator (None: fresh entropy).
    """
    if isinstance(name, Backend):
        return name
    try:
        dtype_name = None if dtype is None else str(np.dtype(dtype))  # np.dtype(None) is float64
    except TypeError:  # a name NumPy does not know, e.g. "float3"
        dtype_name = None
    if dtype_name not in _DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(_DTYPES)}, got {dtype!r}")
    name = resolve_backend_name(name)
    if name not in _MAKERS:
        raise ValueError(f"unknown backend {name!r}; choose one of: {', '.join(BACKEND_NAMES)}")
    return _MAKERS[name](dtype_name, seed)


def _make_numpy_backend(dtype: str, seed: int | None) -> Backend:
    """NumPy arrays, NumPy's generator, the reference kernels (numpy_vae/ops.py)."""
    return Backend("numpy", np, np.dtype(dtype), np.random.default_rng(seed), _reference_ops, seed)


def _one_line(err: BaseException) -> str:
    """An exception as a single short line (import errors can span several)."""
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= 160 else text[:157] + "..."


def _make_numba_backend(dtype: str, seed: int | None) -> Backend:
    """NumPy arrays and generator, Numba kernels (numpy_vae/backends/numba_ops.py)."""
    try:
        import numba  # noqa: F401  (checked here so the error names the extra)
    except ModuleNotFoundError:
        raise BackendUnavailableError(
            f"backend 'numba' needs the numba package, which is not installed: {NUMBA_EXTRA}") from None
    except ImportError as err:  # installed but broken, e.g. built for another NumPy
        raise BackendUnavailableError(
            f"backend 'numba': importing numba failed ({_one_line(err)}); "
            f"reinstall a matching version: {NUMBA_EXTRA}") from None
    from numpy_vae.backends import numba_ops

    check_ops_complete(numba_ops)
    return Backend("numba", np, np.dtype(dtype), np.random.default_rng(seed), numba_ops, seed)


def _make_cupy_backend(dtype: str, seed: int | None) -> Backend:
    """CuPy arrays and generator, CuPy kernels (numpy_vae/backends/cupy_backend.py)."""
    try:
        import cupy
    except ModuleNotFoundError:
        raise BackendUnavailableError(
            f"backend 'cupy' needs the cupy package, which is not installed: {CUDA_EXTRA}") from None
    except ImportError as err:  # e.g. a cupy wheel for another CUDA version
        raise BackendUnavailableError(
            f"backend 'cupy': importing cupy failed ({_one_line(err)}); "
            f"install the wheel for your CUDA version: {CUDA_EXTRA}") from None
    try:
        gpus = cupy.cuda.runtime.getDeviceCount()
    except Exception as err:  # CUDARuntimeError: no driver, no device, driver too old
        raise BackendUnavailableError(
            f"backend 'cupy': no CUDA GPU found ({_one_line(err)})") from None
    if gpus < 1:
        raise BackendUnavailableError("backend 'cupy': no CUDA GPU found (the CUDA runtime sees 0 devices)")
    from numpy_vae.backends import cupy_ops

    check_ops_complete(cupy_ops)
    try:
        # CuPy compiles kernels when first called, with NVRTC from the CUDA
        # toolkit: without it the first layer would fail with a long error.
        cupy_ops.relu(cupy.zeros(1, dtype=dtype))
        cupy.cuda.Device().synchronize()
    except Exception as err:
        raise BackendUnavailableError(
            f"backend 'cupy': CuPy found a GPU but cannot compile or run kernels ({_one_line(err)}); "
            f"install CuPy with the CUDA libraries: {CUDA_EXTRA}") from None
    from numpy_vae.backends.cupy_backend import CupyBackend

    return CupyBackend.create(dtype, seed, ops=cupy_ops)


_MAKERS = {"numpy": _make_numpy_backend, "numba": _make_numba_backend, "cupy": _make_cupy_backend}

__all__ = ["Backend", "BackendUnavailableError", "get_backend", "available_backends",
           "resolve_backend_name", "ENV_VAR", "DEFAULT_BACKEND", "BACKEND_NAMES"]
