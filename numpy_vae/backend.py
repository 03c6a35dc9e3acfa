"""The array backend: which array library does the arithmetic.

A ``Backend`` bundles the three things every layer needs besides its math:

- ``xp``: the array module (``numpy`` here; ``cupy`` for the GPU backend),
- ``dtype``: the default floating-point type of parameters and activations,
- ``rng``: the random generator that initialises weights and draws eps.

It also carries ``ops``, the handful of elementwise kernels a training step
spends its time in (activations, bias gradients, the Bernoulli loss, the
reparameterization + KL step, the Adam update).  For the NumPy backend
``ops`` is the module ``numpy_vae.ops``: the readable reference whose
formulas the layers' docstrings quote.  Accelerated backends hand in twins of
those functions with the same signatures, so the layers never change.

Creating a CPU backend also calls ``keep_freed_memory()`` (numpy_vae/_memory.py),
which stops glibc from returning every freed temporary array to the OS: that
churn made a training step up to twice as slow.

Pick a backend by name: ``get_backend("numpy")``, the ``backend=`` argument
of every model, or the environment variable ``NUMPY_VAE_BACKEND``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np

from numpy_vae import ops as _reference_ops
from numpy_vae._memory import keep_freed_memory

ENV_VAR = "NUMPY_VAE_BACKEND"
DEFAULT_BACKEND = "numpy"
_DTYPES = ("float32", "float64")


class BackendUnavailableError(RuntimeError):
    """The requested backend cannot run here (library missing, no GPU)."""


@dataclass
class Backend:
    """Array module, default dtype, random generator and hot-path kernels.

    Attributes
    ----------
    name : str          "numpy", "numba" or "cupy".
    xp : module          The array module (numpy or cupy).
    dtype : np.dtype     Default float type of parameters and activations.
    rng : Generator      Source of all randomness (weights, eps, shuffling).
    ops : namespace      Elementwise kernels with the signatures of ``numpy_vae.ops``.
    """

    name: str
    xp: ModuleType
    dtype: np.dtype
    rng: Any
    ops: Any = field(repr=False)
    seed: int | None = None

    def asarray(self, a, dtype=None):
        """Move ``a`` onto this backend as an array of ``dtype`` (default: self.dtype)."""
        return self.xp.asarray(a, dtype=self.dtype if dtype is None else dtype)

    def to_numpy(self, a) -> np.ndarray:
        """Return ``a`` as a NumPy array on the host (a no-op for NumPy)."""
        if isinstance(a, np.ndarray):
            return a
        return self.xp.asnumpy(a) if hasattr(self.xp, "asnumpy") else np.asarray(a)

    def standard_normal(self, shape):
        """Draw N(0, 1) samples of ``shape`` in the backend dtype."""
        return self.rng.standard_normal(shape, dtype=self.dtype)

    def random(self, shape):
        """Draw Uniform[0, 1) samples of ``shape`` in the backend dtype."""
        return self.rng.random(shape, dtype=self.dtype)

    def get_rng_state(self) -> dict:
        """The generator's state as a JSON-able dict (for checkpoints)."""
        return self.rng.bit_generator.state

    def set_rng_state(self, state: dict) -> None:
        """Restore a state from ``get_rng_state`` (see ``accepts_rng_state``)."""
        self.rng.bit_generator.state = state

    def accepts_rng_state(self, state) -> bool:
        """Whether ``state`` is the state of this backend's kind of generator.

        NumPy and Numba share NumPy's PCG64; a CuPy run's state is of another
        kind, which this backend cannot continue (see ``reseed``)."""
        return isinstance(state, dict) and state.get("bit_generator") == type(self.rng.bit_generator).__name__

    def reseed(self, seed: int) -> None:
        """Replace the generator with a fresh one seeded with ``seed``."""
        self.rng = np.random.default_rng(seed)


def available_backends() -> list[str]:
    """Names of the backends that can run on this machine."""
    names = [DEFAULT_BACKEND]
    for name in ("numba", "cupy"):
        try:
            _make_backend(name, "float32", 0)
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
    return _make_backend(resolve_backend_name(name), dtype_name, seed)


def _make_backend(name: str, dtype: str, seed: int | None) -> Backend:
    if name == "numpy":
        keep_freed_memory()
        return Backend("numpy", np, np.dtype(dtype), np.random.default_rng(seed),
                       _reference_ops, seed)
    if name in ("numba", "cupy"):
        # The accelerated twins live in numpy_vae/backends/; they are imported
        # only when asked for, so NumPy users never need numba or cupy.
        try:
            from numpy_vae import backends as _accel
        except ImportError:  # pragma: no cover - the subpackage ships with the package
            _accel = None
        maker = getattr(_accel, f"make_{name}_backend", None) if _accel else None
        if maker is None:
            raise BackendUnavailableError(f"backend {name!r} is not built into this version of numpy-vae")
        return maker(dtype, seed)
    raise ValueError(f"unknown backend {name!r}; choose one of: numpy, numba, cupy")


def _check_ops_complete(ops: ModuleType | Any) -> None:
    """Raise if ``ops`` lacks one of the reference kernels (used by the twins)."""
    missing = [n for n in _reference_ops.__all__ if not hasattr(ops, n)]
    if missing:
        raise TypeError(f"backend ops missing kernels: {', '.join(missing)}")
