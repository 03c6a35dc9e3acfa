"""Solution of exercise 02: tanh and ReLU, forward and backward."""

import numpy as np


def tanh_forward(x):
    """y = tanh(x), any shape."""
    return np.tanh(x)


def tanh_backward(dy, y):
    """dx = dy * (1 - y^2), written with the output y that forward returned."""
    return dy * (1 - y * y)


def relu_forward(x):
    """y = max(x, 0), any shape."""
    return np.maximum(x, 0)


def relu_backward(dy, x):
    """dx = dy where x > 0, else 0."""
    return dy * (x > 0)
