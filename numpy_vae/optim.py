"""Optimizers over the ``params`` / ``grads`` dicts of a model.

An optimizer holds references to the parameter arrays and updates them in
place, so the layers see the new values without any copying:

    opt = Adam(model.params, lr=1e-3)
    loss, grads, info = model.loss_and_grads(x)
    opt.step(grads)

The update rules themselves are the kernels ``adam_update`` and
``sgd_momentum_update`` in ``numpy_vae/ops.py`` (through ``backend.ops``).
They are elementwise, so when the parameters are views of one flat buffer,
as a model's are (numpy_vae/flat.py), the optimizer keeps its own state
(Adam's m and v) flat too and makes one kernel call over everything per
step instead of one per parameter: the same numbers, fewer calls.
"""

from __future__ import annotations

import math
import operator

from numpy_vae.flat import flat_buffer, pack


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
        self._flat_params = flat_buffer(params)  # None unless laid out by flat.pack
        self._grad_views = None                 # the grads whose flat buffer is known
        self._flat_grads = None

    def _state_like_params(self):
        """Zeros shaped like each parameter; flat too if the parameters are.

        Returns (flat, views): views is name -> array, flat their buffer or None.
        """
        xp = self.backend.xp
        if self._flat_params is not None:
            return pack(self.params, xp, self._flat_params.dtype, copy=False)
        return None, {name: xp.zeros_like(p) for name, p in self.params.items()}

    def _slots(self):
        return {}

    def _flat_grads_of(self, grads: dict):
        """The flat buffer of ``grads`` if both they and the params are flat, else None."""
        if self._flat_params is None:
            return None
        views = tuple(grads.values())
        if self._grad_views is None or len(views) != len(self._grad_views) or \
                not all(map(operator.is_, views, self._grad_views)):
            same_shapes = all(g.shape == p.shape for g, p in zip(views, self.params.values()))
            self._grad_views = views
            self._flat_grads = flat_buffer(grads) if same_shapes else None
        return self._flat_grads

    def step(self, grads: dict) -> None:
        """Apply one update with ``grads`` (the keys of ``params``)."""
        if grads.keys() != self.params.keys():
            missing = set(self.params) ^ set(grads)
            raise KeyError(f"grads and params differ in: {', '.join(sorted(missing))}")
        flat_grads = self._flat_grads_of(grads)
        if self.clip_norm is not None:
            self.last_grad_norm = clip_by_global_norm(
                grads if flat_grads is None else {"all": flat_grads}, self.clip_norm)
        self.t += 1
        self._update(grads, flat_grads)

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
        self._flat_velocity, self.velocity = self._state_like_params()

    def _slots(self):
        return {"velocity": self.velocity}

    def _update(self, grads, flat_grads):
        update = self.backend.ops.sgd_momentum_update
        if flat_grads is not None:  # every parameter in one call
            update(self._flat_params, flat_grads, self._flat_velocity, self.lr, self.momentum)
            return
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
        self._flat_m, self.m = self._state_like_params()
        self._flat_v, self.v = self._state_like_params()

    def _slots(self):
        return {"m": self.m, "v": self.v}

    def _update(self, grads, flat_grads):
        update = self.backend.ops.adam_update
        if flat_grads is not None:  # every parameter in one call
            update(self._flat_params, flat_grads, self._flat_m, self._flat_v,
                   self.lr, self.beta1, self.beta2, self.eps, self.t)
            return
        for name, p in self.params.items():
            update(p, grads[name], self.m[name], self.v[name],
                   self.lr, self.beta1, self.beta2, self.eps, self.t)


def _backend_of(params):
    """The NumPy backend unless the arrays are CuPy's (models pass theirs explicitly)."""
    from numpy_vae.backend import get_backend
    first = next(iter(params.values()))
    name = "cupy" if type(first).__module__.startswith("cupy") else "numpy"
    return get_backend(name, dtype=str(first.dtype))
