"""Exercise 10 (lesson 12): Conv2D's backward pass through im2col.

Check your work:   numpy-vae exercise 10

im2col (numpy_vae/im2col.py) copies every patch of the padded input into a
column, so the convolution becomes one matrix product (conv2d_forward below
is given and works):

    cols = im2col(x)                 (C*kh*kw, N*Ho*Wo), columns ordered (n, oh, ow)
    y2   = W2 @ cols + b[:, None]    (O, N*Ho*Wo),  W2 = W reshaped to (O, C*kh*kw)
    y    = y2 reshaped and transposed to (N, O, Ho, Wo)

    x (N, C, H, Wd), W (O, C, kh, kw), b (O,), dy = dL/dy (N, O, Ho, Wo)

Task: write the backward pass, returning dx (N, C, H, Wd), dW (O, C, kh, kw)
and db (O,).

Hints:
- y2 = W2 @ cols + b is Linear's y = x W + b in other letters (exercise 01):
  the same three rules, once dy is the matrix dy2 (O, N*Ho*Wo) whose columns
  are ordered like cols'.  Look at how forward went from y2 to y, and undo it.
- The gradient with respect to cols must go back to the pixels it was copied
  from, adding where patches overlap: col2im does exactly that.
- The checker uses several examples and channels, strides 1 and 2, padding 0 and 1.
- The package's version: numpy_vae/conv.py, Conv2D.
"""

import numpy as np

from numpy_vae.im2col import col2im, conv_output_size, im2col


def conv2d_forward(x, W, b, stride=1, padding=0):
    """x (N, C, H, Wd), W (O, C, kh, kw), b (O,) -> y (N, O, Ho, Wo).  (Given.)"""
    N, C, H, Wd = x.shape
    O, _, kh, kw = W.shape
    Ho, Wo = conv_output_size(H, kh, stride, padding), conv_output_size(Wd, kw, stride, padding)
    cols = im2col(x, kh, kw, stride, padding)              # (C*kh*kw, N*Ho*Wo)
    y = W.reshape(O, -1) @ cols + b[:, None]               # (O, N*Ho*Wo)
    return y.reshape(O, N, Ho, Wo).transpose(1, 0, 2, 3)


def conv2d_backward(dy, x, W, stride=1, padding=0):
    """dy (N, O, Ho, Wo) -> (dx (N, C, H, Wd), dW (O, C, kh, kw), db (O,))."""
    raise NotImplementedError("return the tuple (dx, dW, db), using im2col and col2im")
