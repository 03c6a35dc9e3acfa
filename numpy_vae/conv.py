"""Convolution layers: Conv2D and ConvTranspose2D, forward and backward.

Images are NCHW: x (batch, channels, height, width).  Both layers reduce to
matrix products through ``im2col`` / ``col2im`` (numpy_vae/im2col.py):

Conv2D, with W reshaped to a matrix W2 (out_c, in_c * kh * kw):

    forward    y  = W2 @ im2col(x) + b                  (out_c, batch * Ho * Wo)
    backward   dW = dy @ im2col(x)^T                    (out_c, in_c * kh * kw)
               db = sum of dy over batch and pixels     (out_c,)
               dx = col2im(W2^T @ dy)                   (batch, in_c, H, W)

(dy written as the matrix (out_c, batch * Ho * Wo).)  These are Linear's
three rules, y = x W + b, dW = x^T dy, dx = dy W^T, applied to the patch
matrix, plus one step: col2im sends each patch's gradient back to the
pixels the patch was copied from.

ConvTranspose2D runs that same pair of maps the other way round.  Its
forward pass *is* Conv2D's input gradient, col2im(W2^T @ x), so its
backward pass is built from im2col, just as Conv2D's backward pass is
built from col2im.  With the same weights the two layers are adjoint:
<conv(x), y> = <x, conv_t(y)> (bias left out), which the tests check.  Where
a stride-2 Conv2D halves an image, a stride-2 ConvTranspose2D doubles it;
that is how a decoder grows 7x7 feature maps back into a 28x28 image.

Weight shapes follow PyTorch: Conv2D W (out_c, in_c, kh, kw),
ConvTranspose2D W (in_c, out_c, kh, kw).  So does the initialisation:
W and b ~ Uniform(-k, k), k = 1 / sqrt(fan_in), where PyTorch takes
fan_in = W.shape[1] * kh * kw for both layers (in_c * kh * kw for Conv2D,
out_c * kh * kw for ConvTranspose2D).
"""

from __future__ import annotations

import math

from numpy_vae.im2col import conv_output_size, im2col
from numpy_vae.layers import Layer


def _kernel_pair(kernel_size):
    """kernel_size as (kh, kw): an int k means a k x k kernel."""
    kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
    return int(kh), int(kw)


def _check_positive(**sizes):
    bad = {k: v for k, v in sizes.items() if v < 1}
    if bad:
        raise ValueError("convolution sizes must be positive, got "
                         + ", ".join(f"{k}={v}" for k, v in bad.items()))


class _Conv(Layer):
    """What both convolutions share: hyper-parameters, weights, input check."""

    def __init__(self, in_channels, out_channels, kernel_size, stride, padding, backend,
                 weight_shape, fan_in):
        super().__init__(backend)
        self.kh, self.kw = _kernel_pair(kernel_size)
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.stride, self.padding = int(stride), int(padding)
        _check_positive(in_channels=self.in_channels, out_channels=self.out_channels,
                        kernel_height=self.kh, kernel_width=self.kw, stride=self.stride)
        if self.padding < 0:
            raise ValueError(f"padding must be >= 0, got {padding}")
        bk = self.backend
        k = 1.0 / math.sqrt(fan_in)
        self.params["W"] = k * (2 * bk.random(weight_shape) - 1)
        self.params["b"] = k * (2 * bk.random((self.out_channels,)) - 1)
        self.grads = {name: bk.xp.zeros_like(p) for name, p in self.params.items()}

    def _check_input(self, x):
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"{type(self).__name__} expects input of shape "
                             f"(batch, {self.in_channels}, height, width), got {tuple(x.shape)}")

    @staticmethod
    def _channels_first(a):
        """(N, C, H, W) -> the matrix (C, N * H * W); free if ``a`` is stored
        channel-first, as every output of these layers is."""
        return a.transpose(1, 0, 2, 3).reshape(a.shape[1], -1)

    @staticmethod
    def _to_nchw(m, N, H, W):
        """The matrix (C, N * H * W) -> (N, C, H, W), a transposed view."""
        return m.reshape(-1, N, H, W).transpose(1, 0, 2, 3)


class Conv2D(_Conv):
    """2-D convolution (cross-correlation, as in every deep-learning library).

        y[n, o, oh, ow] = b[o] + sum over c, i, j of
                          W[o, c, i, j] * xpad[n, c, s * oh + i, s * ow + j]

    Shapes: x (batch, in_c, H, W), W (out_c, in_c, kh, kw), b (out_c,),
    y (batch, out_c, Ho, Wo) with Ho = floor((H + 2p - kh) / s) + 1 (Wo alike),
    s = ``stride``, p = ``padding`` (zeros on every side).

    Forward and backward as matrix products (module docstring):
        y = W2 @ im2col(x) + b;  dW = dy @ im2col(x)^T;  dx = col2im(W2^T @ dy).

    ``input_grad=False`` skips dx (backward returns None), like Linear's: the
    first layer of an encoder has no use for the gradient of the data.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride: int = 1,
                 padding: int = 0, backend=None, input_grad: bool = True):
        kh, kw = _kernel_pair(kernel_size)
        super().__init__(in_channels, out_channels, (kh, kw), stride, padding, backend,
                         weight_shape=(out_channels, in_channels, kh, kw),
                         fan_in=in_channels * kh * kw)
        self.input_grad = input_grad
        self._cols = None

    def output_shape(self, H: int, W: int) -> tuple[int, int]:
        """(Ho, Wo) for an H x W input."""
        return (conv_output_size(H, self.kh, self.stride, self.padding),
                conv_output_size(W, self.kw, self.stride, self.padding))

    def forward(self, x):
        self._check_input(x)
        xp = self.backend.xp
        N, _, H, W = x.shape
        Ho, Wo = self.output_shape(H, W)
        self._x_shape = x.shape
        self._cols = im2col(x, self.kh, self.kw, self.stride, self.padding, xp)
        W2 = self.params["W"].reshape(self.out_channels, -1)
        y = W2 @ self._cols                               # (out_c, N * Ho * Wo)
        y += self.params["b"][:, None]
        return self._to_nchw(y, N, Ho, Wo)

    def backward(self, dy):
        dy2 = self._channels_first(dy)                    # (out_c, N * Ho * Wo)
        W2 = self.params["W"].reshape(self.out_channels, -1)
        self.grads["W"][...] = (dy2 @ self._cols.T).reshape(self.params["W"].shape)
        self.grads["b"][...] = dy2.sum(axis=1)
        if not self.input_grad:
            return None
        dcols = W2.T @ dy2                                # (in_c * kh * kw, N * Ho * Wo)
        return self.backend.ops.col2im(dcols, self._x_shape, self.kh, self.kw,
                            self.stride, self.padding, self.backend.xp)

    def __repr__(self):
        return (f"Conv2D({self.in_channels}, {self.out_channels}, kernel=({self.kh}, {self.kw}), "
                f"stride={self.stride}, padding={self.padding})")


class ConvTranspose2D(_Conv):
    """Transposed convolution: the adjoint of Conv2D, used to upsample.

    Every input pixel stamps a weighted copy of the kernel onto the output,
    s pixels apart, and overlapping stamps add up:

        y[n, o, s * h + i - p, s * w + j - p] += W[c, o, i, j] * x[n, c, h, w]
        (summed over c, h, w, i, j), then + b[o]

    Shapes: x (batch, in_c, H, W), W (in_c, out_c, kh, kw), b (out_c,),
    y (batch, out_c, Ho, Wo) with

        Ho = (H - 1) s - 2p + kh + output_padding        (Wo alike)

    the inverse of Conv2D's size formula.  Conv2D maps several input sizes
    to the same output size (the floor), so ``output_padding`` (0 <= it < s)
    says which one to give back: it adds that many rows and columns at the
    bottom and right (rows the padding would otherwise cut away; beyond
    those, rows no input pixel reaches, holding just the bias).

    As matrix products, W2 = W reshaped to (in_c, out_c * kh * kw):
        forward   y  = col2im(W2^T @ x) + b        Conv2D's dx with the roles swapped
        backward  dW = x @ im2col(dy)^T            (in_c, out_c * kh * kw)
                  db = sum of dy over batch and pixels
                  dx = W2 @ im2col(dy)             a Conv2D forward pass on dy
    where x and dx are the matrices (in_c, batch * H * W).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride: int = 1,
                 padding: int = 0, output_padding: int = 0, backend=None,
                 input_grad: bool = True):
        kh, kw = _kernel_pair(kernel_size)
        super().__init__(in_channels, out_channels, (kh, kw), stride, padding, backend,
                         weight_shape=(in_channels, out_channels, kh, kw),
                         fan_in=out_channels * kh * kw)
        if not 0 <= output_padding < stride:
            raise ValueError(f"output_padding must satisfy 0 <= output_padding < stride "
                             f"({stride}), got {output_padding}")
        self.output_padding = int(output_padding)
        self.input_grad = input_grad
        self._x2 = None

    def output_shape(self, H: int, W: int) -> tuple[int, int]:
        """(Ho, Wo) for an H x W input."""
        s, p, op = self.stride, self.padding, self.output_padding
        return (H - 1) * s - 2 * p + self.kh + op, (W - 1) * s - 2 * p + self.kw + op

    def forward(self, x):
        self._check_input(x)
        N, _, H, W = x.shape
        Ho, Wo = self.output_shape(H, W)
        if Ho < 1 or Wo < 1:
            raise ValueError(f"{self!r} gives an empty output for a {H}x{W} input")
        self._x_shape = x.shape
        self._x2 = self._channels_first(x)                # (in_c, N * H * W)
        W2 = self.params["W"].reshape(self.in_channels, -1)
        cols = W2.T @ self._x2                            # (out_c * kh * kw, N * H * W)
        y = self.backend.ops.col2im(cols, (N, self.out_channels, Ho, Wo), self.kh, self.kw,
                         self.stride, self.padding, self.backend.xp)
        y += self.params["b"][None, :, None, None]
        return y

    def backward(self, dy):
        N, _, H, W = self._x_shape
        dcols = im2col(dy, self.kh, self.kw, self.stride, self.padding, self.backend.xp)
        W2 = self.params["W"].reshape(self.in_channels, -1)
        self.grads["W"][...] = (self._x2 @ dcols.T).reshape(self.params["W"].shape)
        self.grads["b"][...] = dy.sum(axis=(0, 2, 3))
        if not self.input_grad:
            return None
        dx2 = W2 @ dcols                                  # (in_c, N * H * W)
        return self._to_nchw(dx2, N, H, W)

    def __repr__(self):
        return (f"ConvTranspose2D({self.in_channels}, {self.out_channels}, kernel=({self.kh}, {self.kw}), "
                f"stride={self.stride}, padding={self.padding}, output_padding={self.output_padding})")
