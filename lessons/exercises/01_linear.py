"""Exercise 01 (lesson 01): the fully connected layer, forward and backward.

Check your work:   numpy-vae exercise 1

The layer computes y = x W + b for a batch of examples:

    x  (batch, n_in)     the inputs, one row per example
    W  (n_in, n_out)     the weights
    b  (n_out,)          the bias, added to every row
    y  (batch, n_out)

The backward pass receives dy = dL/dy, of y's shape, and returns the
gradients of the loss L with respect to x, W and b, each of the shape of
the array it belongs to:

    dx (batch, n_in),   dW (n_in, n_out),   db (n_out,)

Task: derive the three formulas and write them as matrix products and sums.

Hints:
- Write one element: y[n, j] = sum_i x[n, i] W[i, j] + b[j].  Which y's does
  x[n, i] touch, and which does W[i, j] touch?  Sum dy over exactly those.
- Let the shapes guide you: there is only one way to multiply dy and W (or
  x and dy) into an array of the shape you need.
- The package's version, once you are done: numpy_vae/layers.py, class Linear.
"""

import numpy as np


def linear_forward(x, W, b):
    """y = x W + b.   x (batch, n_in), W (n_in, n_out), b (n_out,) -> y (batch, n_out)."""
    raise NotImplementedError("return x W + b")


def linear_backward(dy, x, W):
    """dy (batch, n_out) -> (dx (batch, n_in), dW (n_in, n_out), db (n_out,))."""
    raise NotImplementedError("return the tuple (dx, dW, db) computed from dy, x and W")
