"""Exercise 02 (lesson 01): tanh and ReLU, forward and backward.

Check your work:   numpy-vae exercise 2

Both act elementwise, so every array has the same shape (any shape):

    tanh:  y = tanh(x)          backward is given dy and the output y
    ReLU:  y = max(x, 0)        backward is given dy and the input x

Task: derive dx = dL/dx for each, from dy = dL/dy.

Hints:
- Elementwise means dx[i] = dy[i] * dy[i]/dx[i]: one local derivative per element.
- d tanh(x)/dx can be written with tanh(x) itself; that is why tanh's
  backward receives the output y instead of x (no second tanh needed).
- ReLU's derivative is 1 where x > 0 and 0 elsewhere (at exactly 0 we pick 0).
- The package's versions: numpy_vae/layers.py, classes Tanh and ReLU.
"""

import numpy as np


def tanh_forward(x):
    """y = tanh(x), any shape."""
    raise NotImplementedError("return tanh(x)")


def tanh_backward(dy, y):
    """dy, y (any shape, y = tanh(x)) -> dx of the same shape."""
    raise NotImplementedError("return dx, written with dy and the output y")


def relu_forward(x):
    """y = max(x, 0), any shape."""
    raise NotImplementedError("return max(x, 0), elementwise")


def relu_backward(dy, x):
    """dy, x (any shape) -> dx of the same shape."""
    raise NotImplementedError("return dx: dy where x > 0, 0 elsewhere")
