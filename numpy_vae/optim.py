"""Optimizers over the ``params`` / ``grads`` dicts of a model.

An optimizer holds references to the parameter arrays and updates them in
place, so the layers see the new values without any copying:

    opt = Adam(model.params, lr=1e-3)
    loss, grads, info = model.loss_and_grads(x)
    opt.step(grads)

The update rules themselves are the kernels ``adam_update`` and
``sgd_momentum_update`` in ``numpy_vae/ops.py`` (through ``backend.ops``).
The optimizer's own state (Adam's m and v, SGD's velocity) is allocated
with ``flat.pack``, like a model's parameters: every array on a 64-byte
boundary, which the fused Numba update needs to run at full speed
(numpy_vae/flat.py).
"""

from __future__ import annotations

import math

from numpy_vae.flat import pack


def global_norm(grads: dict) -> float:
    """sqrt(sum over every gradient array of sum(g^2))."""
    return math.sqrt(sum(float((g * g).sum()) for g in grads.values()))


def clip_by_global_norm(grads: dict, max_norm: float) -> float:
    """Scale all gradients in place by min(1, max_norm / norm); return the norm before.

    Clipping by the global norm keeps the direction of the whole update and
    only shortens it, unlike clipping each element.
    """
    norm = global_norm(grads)
    if norm > max_norm:
        scale = max_norm / (norm + 1e-12)
        for g in grads.values():
            g *= scale
    return norm


class Optimizer:
    """Shared bookkeeping: the params, the step count, clipping, state I/O."""

    def __init__(self, params: dict, lr: float, clip_norm: float | None, backend):
        if not lr > 0:
            raise ValueError(f"learning rate must be positive, got {lr}")
        if clip_norm is not None and not clip_norm > 0:
            raise ValueError(f"clip_norm must be positive or None, got {clip_norm}")
        self.params = params
        self.lr = float(lr)
        self.clip_norm = clip_norm
        self.t = 0
        self.backend = backend
        self.last_grad_norm = None

    def _zeros_like_params(self) -> dict:
        """name -> zeros shaped like that parameter (views of one aligned buffer)."""
        if not self.params:
            return {}
        first = next(iter(self.params.values()))
        return pack(self.params, self.backend.xp, first.dtype, copy=False)[1]

    def _slots(self):
        return {}

    def step(self, grads: dict) -> None:
        """Apply one update with ``grads`` (the keys of ``params``)."""
        if grads.keys() != self.params.keys():
            missing = set(self.params) ^ set(grads)
            raise KeyError(f"grads and params differ in: {', '.join(sorted(missing))}")
        if self.clip_norm is not None:
            self.last_grad_norm = clip_by_global_norm(grads, self.clip_norm)
        self.t += 1
        self._update(grads)

    def state_dict(self) -> dict:
        """Flat dict of arrays and numbers, for checkpoints: "t" and "{slot}.{name}".

        The arrays are copies: the optimizer updates its own in place, and a
        snapshot that kept changing would no longer match "t".
        """
        state = {"t": self.t}
        for slot, arrays in self._slots().items():
            for name, a in arrays.items():
                state[f"{slot}.{name}"] = a.copy()
        return state

    def load_state_dict(self, state: dict) -> None:
        """Restore what ``state_dict`` returned (arrays copied in place)."""
        self.t = int(state["t"])
        for slot, arrays in self._slots().items():
            for name, a in arrays.items():
                key = f"{slot}.{name}"
                if key not in state:
                    raise KeyError(f"optimizer state lacks {key!r}")
                if tuple(state[key].shape) != tuple(a.shape):
                    raise ValueError(f"optimizer state {key!r} has shape {tuple(state[key].shape)}, "
                                     f"expected {tuple(a.shape)}")
                a[...] = self.backend.asarray(state[key], dtype=a.dtype)


class SGD(Optimizer):
    """Stochastic gradient descent with momentum (0 gives plain SGD).

        velocity <- momentum * velocity + g;   param <- param - lr * velocity
    """

    def __init__(self, params, lr=0.01, momentum=0.9, clip_norm=None, backend=None):
        backend = backend or _backend_of(params)
        super().__init__(params, lr, clip_norm, backend)
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        self.momentum = float(momentum)
        self.velocity = self._zeros_like_params()

    def _slots(self):
        return {"velocity": self.velocity}

    def _update(self, grads):
        update = self.backend.ops.sgd_momentum_update
        for name, p in self.params.items():
            update(p, grads[name], self.velocity[name], self.lr, self.momentum)


class Adam(Optimizer):
    """Adam with bias correction (Kingma & Ba, 2015); the rule is in ops.adam_update."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, clip_norm=None, backend=None):
        backend = backend or _backend_of(params)
        super().__init__(params, lr, clip_norm, backend)
        self.beta1, self.beta2 = (float(b) for b in betas)
        if not (0 <= self.beta1 < 1 and 0 <= self.beta2 < 1):
            raise ValueError(f"betas must be in [0, 1), got {betas}")
        self.eps = float(eps)
        self.m = self._zeros_like_params()
        self.v = self._zeros_like_params()

    def _slots(self):
        return {"m": self.m, "v": self.v}

    def _update(self, grads):
        update = self.backend.ops.adam_update
        for name, p in self.params.items():
            update(p, grads[name], self.m[name], self.v[name],
                   self.lr, self.beta1, self.beta2, self.eps, self.t)


def _backend_of(params):
    """The NumPy backend unless the arrays are CuPy's (models pass theirs explicitly)."""
    from numpy_vae.backend import get_backend
    first = next(iter(params.values()))
    name = "cupy" if type(first).__module__.startswith("cupy") else "numpy"
    return get_backend(name, dtype=str(first.dtype))
