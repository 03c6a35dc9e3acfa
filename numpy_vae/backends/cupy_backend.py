"""The GPU backend record: CuPy arrays, a restartable CuPy generator, the kernels of cupy_ops.py.

This module imports cupy at the top: only ``get_backend("cupy")``
(numpy_vae/backend.py) imports it, after checking cupy and a GPU.
"""

from __future__ import annotations

from dataclasses import dataclass

import cupy
import numpy as np

from numpy_vae.backends.base import Backend


@dataclass
class CupyBackend(Backend):
    """The GPU backend: CuPy arrays, a CuPy generator, the kernels of cupy_ops.py.

    Checkpoints and the random generator: CuPy's generators keep their state
    on the GPU and cannot export it (the CuPy docs: "Random states cannot be
    serialized").  So this backend makes its random stream restartable
    instead.  Its generator is always seeded from (entropy, restarts):
    ``get_rng_state()`` increments ``restarts``, reseeds, and returns both
    numbers; ``set_rng_state()`` reseeds from them.  A run that saved a
    checkpoint and a run resumed from it then draw the same numbers from
    that point on.  The price: saving the state changes the stream (the
    numbers after a save differ from those of a run that never saved).  The
    CuPy docs do not promise the same numbers from one major version of CuPy
    to the next, so a resume is exact with the same CuPy version.
    """

    entropy: int = 0
    restarts: int = 0

    def _reseed(self) -> None:
        seed = np.random.SeedSequence(self.entropy, spawn_key=(self.restarts,))
        self.rng = cupy.random.default_rng(seed)

    def get_rng_state(self) -> dict:
        self.restarts += 1
        self._reseed()
        return {"bit_generator": "cupy XORWOW, reseeded from (entropy, restarts)",
                "entropy": self.entropy, "restarts": self.restarts}

    def set_rng_state(self, state: dict) -> None:
        self.entropy, self.restarts = int(state["entropy"]), int(state["restarts"])
        self._reseed()

    def accepts_rng_state(self, state) -> bool:
        """Only states from ``get_rng_state`` above (not NumPy's PCG64)."""
        return isinstance(state, dict) and {"entropy", "restarts"} <= state.keys()

    def reseed(self, seed: int) -> None:
        self.entropy, self.restarts = int(seed), 0
        self._reseed()

    @classmethod
    def create(cls, dtype: str, seed: int | None, ops) -> "CupyBackend":
        """A CupyBackend for ``dtype`` with kernels ``ops`` (cupy_ops.py); seed None draws fresh entropy."""
        bk = cls("cupy", cupy, np.dtype(dtype), None, ops, seed,
                 entropy=np.random.SeedSequence(seed).entropy, restarts=0)
        bk._reseed()
        return bk


__all__ = ["CupyBackend"]
