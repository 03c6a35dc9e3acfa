"""The accelerated backends: Numba on the CPU, CuPy on an NVIDIA GPU.

``get_backend("numba")`` and ``get_backend("cupy")`` (numpy_vae/backend.py)
call the two functions below.  Each imports its library only when called, so
``import numpy_vae`` needs neither numba nor cupy, and each either returns a
ready ``Backend`` or raises ``BackendUnavailableError`` with one line that
says what to do.

The kernels are twins of the NumPy reference in numpy_vae/ops.py:

    numba_ops.py   ``numba.njit`` loops; arrays stay NumPy arrays, BLAS does
                   the matrix products, the generator is NumPy's.
    cupy_ops.py    ``cupy.ElementwiseKernel`` / ``ReductionKernel`` kernels;
                   arrays live on the GPU, cuBLAS does the matrix products.
"""

from __future__ import annotations

import numpy as np

from numpy_vae.backend import Backend, BackendUnavailableError, _check_ops_complete
from numpy_vae._memory import keep_freed_memory

NUMBA_EXTRA = 'pip install "numpy-vae[numba]"'
CUDA_EXTRA = 'pip install "numpy-vae[cuda]"'


def _one_line(err: BaseException) -> str:
    """An exception as a single short line (import errors can span several)."""
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= 160 else text[:157] + "..."


def make_numba_backend(dtype: str, seed: int | None) -> Backend:
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

    _check_ops_complete(numba_ops)
    keep_freed_memory()
    return Backend("numba", np, np.dtype(dtype), np.random.default_rng(seed), numba_ops, seed)


def make_cupy_backend(dtype: str, seed: int | None) -> Backend:
    """CuPy arrays and generator, CuPy kernels (numpy_vae/backends/cupy_ops.py)."""
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

    _check_ops_complete(cupy_ops)
    try:
        # CuPy compiles kernels when first called, with NVRTC from the CUDA
        # toolkit: without it the first layer would fail with a long error.
        cupy_ops.relu(cupy.zeros(1, dtype=dtype))
        cupy.cuda.Device().synchronize()
    except Exception as err:
        raise BackendUnavailableError(
            f"backend 'cupy': CuPy found a GPU but cannot compile or run kernels ({_one_line(err)}); "
            f"install CuPy with the CUDA libraries: {CUDA_EXTRA}") from None
    return cupy_ops.make_backend(dtype, seed, ops=cupy_ops)


__all__ = ["make_numba_backend", "make_cupy_backend"]
