"""Flatten and Reshape: the glue between image layers and Linear layers.

A convolution works on images (batch, C, H, W), a Linear layer on vectors
(batch, features).  Changing the shape moves no number and mixes nothing,
so the backward pass only changes the gradient's shape back:

    forward   y  = x viewed as the new shape
    backward  dx = dy viewed as x's shape

The batch axis (axis 0) is never touched.  A dy of None (the next layer
skipped its input gradient, ``input_grad=False``) is passed on as None.
"""

from __future__ import annotations

from numpy_vae.layers import Layer


class Flatten(Layer):
    """(batch, d1, d2, ...) -> (batch, d1 * d2 * ...), in C order.

    For an image (batch, C, H, W) the features are channel 0's rows, then
    channel 1's, and so on: feature c * H * W + h * W + w.
    """

    def forward(self, x):
        self._in_shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dy):
        return None if dy is None else dy.reshape(self._in_shape)


class Reshape(Layer):
    """(batch, features) -> (batch, *shape), e.g. shape (C, H, W) turns a
    Linear layer's output into an image; the inverse of Flatten."""

    def __init__(self, shape, backend=None):
        super().__init__(backend)
        self.shape = tuple(int(d) for d in shape)

    def forward(self, x):
        self._in_shape = x.shape
        size = 1
        for d in self.shape:
            size *= d
        if x.size != x.shape[0] * size:
            raise ValueError(f"cannot reshape an input of shape {tuple(x.shape)} "
                             f"to (batch, {', '.join(map(str, self.shape))})")
        return x.reshape(x.shape[0], *self.shape)

    def backward(self, dy):
        return None if dy is None else dy.reshape(self._in_shape)

    def __repr__(self):
        return f"Reshape({self.shape})"
