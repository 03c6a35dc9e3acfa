"""The Backend record: array module, dtype, generator and kernels, in one leaf module.

A ``Backend`` bundles the things every layer needs besides its math:

- ``xp``: the array module (``numpy``; ``cupy`` for the GPU backend),
- ``dtype``: the default floating-point type of parameters and activations,
- ``rng``: the random generator that initialises weights and draws eps,
- ``ops``: the kernels a training step spends its time in, with the names
  and signatures of the NumPy reference in numpy_vae/ops.py.

This module imports nothing of the package but the reference kernels (to
know their names), so the backends' own modules (numpy_vae/backend.py,
numpy_vae/backends/cupy_backend.py) can import it without a cycle.
Choosing and building a backend by name is numpy_vae/backend.py's job.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np

from numpy_vae import ops as _reference_ops


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
    ops : namespace      Kernels with the signatures of ``numpy_vae.ops``.
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


def check_ops_complete(ops: ModuleType | Any) -> None:
    """Raise TypeError if ``ops`` lacks one of the reference kernels (numpy_vae/ops.py)."""
    missing = [n for n in _reference_ops.__all__ if not hasattr(ops, n)]
    if missing:
        raise TypeError(f"backend ops missing kernels: {', '.join(missing)}")


__all__ = ["Backend", "BackendUnavailableError", "check_ops_complete"]
