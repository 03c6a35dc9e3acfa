"""Solution of exercise 10: Conv2D backward through im2col and col2im."""

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
    """dy (N, O, Ho, Wo) -> dx (N, C, H, Wd), dW (O, C, kh, kw), db (O,)."""
    O, _, kh, kw = W.shape
    cols = im2col(x, kh, kw, stride, padding)
    dy2 = dy.transpose(1, 0, 2, 3).reshape(O, -1)          # (O, N*Ho*Wo), channel first
    dW = (dy2 @ cols.T).reshape(W.shape)
    db = dy2.sum(axis=1)
    dx = col2im(W.reshape(O, -1).T @ dy2, x.shape, kh, kw, stride, padding)
    return dx, dW, db
