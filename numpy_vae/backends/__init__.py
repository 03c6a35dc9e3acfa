"""The accelerated kernels and what they need: a subpackage of leaf modules.

    base.py          the Backend record and its checks (imported by every backend)
    numba_ops.py     ``numba.njit`` twins of the reference kernels in numpy_vae/ops.py
    cupy_ops.py      ``cupy.ElementwiseKernel`` / ``ReductionKernel`` twins of them
    cupy_backend.py  the GPU backend record (CuPy's generator cannot export its state)

Nothing is imported here: numba and cupy are loaded only when
``get_backend("numba")`` or ``get_backend("cupy")`` (numpy_vae/backend.py)
asks for them.
"""
