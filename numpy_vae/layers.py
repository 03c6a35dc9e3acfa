"""Layers with hand-written forward and backward passes.

Every layer follows one contract:

- ``forward(x)`` computes the output and keeps what the backward pass needs
  (``self._x``, ``self._y``): the cache is named for what it is;
- ``backward(dy)`` takes dL/dy, the gradient of the loss with respect to the
  layer's output, writes the parameter gradients into ``self.grads`` (same
  keys and shapes as ``self.params``) and returns dL/dx.

The gradient arrays are allocated once and overwritten by every backward
pass (copy them to keep them).  A model hands its layers views of two flat,
aligned buffers to use instead (``adopt``; numpy_vae/flat.py says why).

Shapes use ``batch`` for the number of examples in a mini-batch.  The
elementwise math goes through ``backend.ops`` (reference: ``numpy_vae/ops.py``)
so that a faster backend can swap the kernels without touching this file.
"""

from __future__ import annotations

import math

from numpy_vae.backend import Backend, get_backend


class Layer:
    """Base class: no parameters, identity bookkeeping.

    ``params`` and ``grads`` are dicts name -> array ("W", "b" for Linear).
    """

    def __init__(self, backend: Backend | str | None = None):
        self.backend = get_backend(backend)
        self.params: dict = {}
        self.grads: dict = {}

    def forward(self, x):  # pragma: no cover - every subclass overrides it
        raise NotImplementedError

    def backward(self, dy):  # pragma: no cover
        raise NotImplementedError

    def __call__(self, x):
        return self.forward(x)

    def adopt(self, params: dict, grads: dict) -> None:
        """From now on keep parameters and gradients in these arrays.

        ``params`` and ``grads`` map each of this layer's parameter names to
        an array of the same shape (views of a model's flat buffers); the
        parameter values are copied in.
        """
        for name, target in params.items():
            target[...] = self.params[name]
            self.params[name] = target
        self.grads.update(grads)

    def __repr__(self):
        return f"{type(self).__name__}()"


class Linear(Layer):
    """Fully connected layer: y = x W + b.

    Shapes: x (batch, in_features), W (in_features, out_features),
    b (out_features,), y (batch, out_features).

    Backward, for dy = dL/dy of shape (batch, out_features):
        dW = x^T dy           (in_features, out_features)
        db = sum_batch dy     (out_features,)
        dx = dy W^T           (batch, in_features)

    Initialisation (the same as PyTorch's ``nn.Linear``): W and b are drawn
    from Uniform(-k, k) with k = 1 / sqrt(in_features), which keeps the
    variance of y close to that of x for unit-variance inputs.

    ``input_grad=False`` skips dx (returns None): the first layer of a network
    has no use for the gradient with respect to the data, and skipping it
    saves one of the three matrix products.
    """

    def __init__(self, in_features: int, out_features: int, backend=None,
                 input_grad: bool = True):
        super().__init__(backend)
        if in_features < 1 or out_features < 1:
            raise ValueError(f"Linear needs positive sizes, got ({in_features}, {out_features})")
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.input_grad = input_grad
        bk = self.backend
        k = 1.0 / math.sqrt(in_features)
        self.params["W"] = k * (2 * bk.random((in_features, out_features)) - 1)
        self.params["b"] = k * (2 * bk.random((out_features,)) - 1)
        self.grads = {name: bk.xp.zeros_like(p) for name, p in self.params.items()}
        self._x = None

    def forward(self, x):
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise ValueError(f"Linear expects input of shape (batch, {self.in_features}), got {tuple(x.shape)}")
        self._x = x
        return self.backend.ops.add_bias(x @ self.params["W"], self.params["b"])

    def backward(self, dy):
        # dW = x^T dy, written straight into the gradient array (out=)
        self.backend.xp.matmul(self._x.T, dy, out=self.grads["W"])
        self.grads["b"][...] = self.backend.ops.bias_grad(dy)
        return dy @ self.params["W"].T if self.input_grad else None

    def __repr__(self):
        return f"Linear({self.in_features}, {self.out_features})"


class ReLU(Layer):
    """y = max(x, 0);   dx = dy * [x > 0]."""

    def forward(self, x):
        self._x = x
        return self.backend.ops.relu(x)

    def backward(self, dy):
        return self.backend.ops.relu_backward(dy, self._x)


class LeakyReLU(Layer):
    """y = x for x > 0, slope * x otherwise;   dx = dy or slope * dy."""

    def __init__(self, slope: float = 0.01, backend=None):
        super().__init__(backend)
        self.slope = float(slope)

    def forward(self, x):
        self._x = x
        return self.backend.ops.leaky_relu(x, self.slope)

    def backward(self, dy):
        return self.backend.ops.leaky_relu_backward(dy, self._x, self.slope)

    def __repr__(self):
        return f"LeakyReLU({self.slope})"


class Tanh(Layer):
    """y = tanh(x);   dx = dy * (1 - y^2)."""

    def forward(self, x):
        self._y = self.backend.ops.tanh(x)
        return self._y

    def backward(self, dy):
        return self.backend.ops.tanh_backward(dy, self._y)


class Sigmoid(Layer):
    """y = 1 / (1 + exp(-x));   dx = dy * y * (1 - y)."""

    def forward(self, x):
        self._y = self.backend.ops.sigmoid(x)
        return self._y

    def backward(self, dy):
        return self.backend.ops.sigmoid_backward(dy, self._y)


class Softplus(Layer):
    """y = log(1 + exp(x));   dx = dy * sigmoid(x)."""

    def forward(self, x):
        self._x = x
        return self.backend.ops.softplus(x)

    def backward(self, dy):
        return self.backend.ops.softplus_backward(dy, self._x)


class Clip(Layer):
    """y = min(max(x, low), high);   dx = dy where low <= x <= high, else 0.

    Used to keep log-variances in a range where exp() cannot overflow; the
    gradient is zero outside the range, like any clamp.
    """

    def __init__(self, low: float, high: float, backend=None):
        super().__init__(backend)
        if not low < high:
            raise ValueError(f"Clip needs low < high, got ({low}, {high})")
        self.low, self.high = float(low), float(high)

    def forward(self, x):
        xp = self.backend.xp
        self._inside = (x >= self.low) & (x <= self.high)
        # min(max(x, low), high): xp.clip computes the same, with more overhead per call
        return xp.minimum(xp.maximum(x, self.low), self.high)

    def backward(self, dy):
        return dy * self._inside

    def __repr__(self):
        return f"Clip({self.low}, {self.high})"


ACTIVATIONS = {"relu": ReLU, "leaky_relu": LeakyReLU, "tanh": Tanh,
               "sigmoid": Sigmoid, "softplus": Softplus}


def make_activation(name: str, backend=None) -> Layer:
    """The activation layer called ``name`` (one of ``ACTIVATIONS``)."""
    try:
        cls = ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; choose one of: {', '.join(ACTIVATIONS)}") from None
    return cls(backend=backend)


class Sequential(Layer):
    """Layers applied in order: forward left to right, backward right to left.

    ``params`` and ``grads`` are flattened as "{index}.{name}", where index
    counts the layers that have parameters (0 for the first Linear, 1 for the
    second, ...), so Linear, ReLU, Linear gives "0.W", "0.b", "1.W", "1.b".
    """

    def __init__(self, layers, backend=None):
        layers = list(layers)
        super().__init__(backend if backend is not None else
                         (layers[0].backend if layers else None))
        self.layers = layers
        self._param_layers = [layer for layer in layers if layer.params]
        self._collect()

    def _collect(self):
        self.params = {f"{i}.{name}": value
                       for i, layer in enumerate(self._param_layers)
                       for name, value in layer.params.items()}
        self.grads = {f"{i}.{name}": g
                      for i, layer in enumerate(self._param_layers)
                      for name, g in layer.grads.items()}

    def forward(self, x):
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, dy):
        for layer in reversed(self.layers):
            dy = layer.backward(dy)
        return dy

    def adopt(self, params: dict, grads: dict) -> None:
        """Layer.adopt for "{index}.{name}" keys: each layer gets its own."""
        for i, layer in enumerate(self._param_layers):
            layer.adopt({name: params[f"{i}.{name}"] for name in layer.params},
                        {name: grads[f"{i}.{name}"] for name in layer.params})
        self._collect()

    def __len__(self):
        return len(self.layers)

    def __getitem__(self, i):
        return self.layers[i]

    def __repr__(self):
        inner = ", ".join(repr(layer) for layer in self.layers)
        return f"Sequential({inner})"
