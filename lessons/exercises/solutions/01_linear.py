"""Solution of exercise 01: the fully connected layer y = x W + b, forward and backward."""

import numpy as np


def linear_forward(x, W, b):
    """y = x W + b.   x (batch, n_in), W (n_in, n_out), b (n_out,) -> y (batch, n_out)."""
    return x @ W + b


def linear_backward(dy, x, W):
    """dy (batch, n_out) -> dx (batch, n_in), dW (n_in, n_out), db (n_out,)."""
    dx = dy @ W.T
    dW = x.T @ dy
    db = dy.sum(axis=0)
    return dx, dW, db
