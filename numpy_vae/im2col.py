"""im2col and col2im: a convolution rewritten as one matrix product.

A 2-D convolution slides a (C, kh, kw) kernel over the zero-padded input
and takes a dot product at every stop.  ``im2col`` copies every patch the
kernel sees into one column of a matrix, so that all those dot products
become a single matrix product that BLAS does fast:

    x      (N, C, H, W)                  the input, NCHW
    cols   (C * kh * kw, N * Ho * Wo)    one column per output pixel (n, oh, ow),
                                         one row per kernel entry (c, i, j)

    cols[(c, i, j), (n, oh, ow)] = xpad[n, c, s * oh + i, s * ow + j]

with xpad the input padded by p zeros on each side, s the stride and

    Ho = floor((H + 2p - kh) / s) + 1,   Wo = floor((W + 2p - kw) / s) + 1.

``col2im`` is the adjoint (the transpose) of ``im2col``: it sends every
entry of a column back to the input pixel it was copied from, and *adds*
where patches overlap (stride < kernel), then drops the padding:

    x[n, c, h, w] = sum of cols[(c, i, j), (n, oh, ow)]
                    over all (i, j, oh, ow) with s * oh + i - p = h, s * ow + j - p = w

Both loop over the kh * kw kernel offsets (i, j) only; each step moves a
whole strided slice of the image, for every example and channel at once.
Read the two loops side by side: the same slice, ``=`` in one and ``+=`` in
the other.  That is what makes col2im the transpose of im2col.

Why the columns are ordered (n, oh, ow) *after* the channel: the product
W (O, C*kh*kw) @ cols gives (O, N*Ho*Wo), the output with the channel
first.  Keeping images channel-first in memory, (C, N, H, W), makes most
reshapes between layers free; the layers hand out a transposed *view*
shaped (N, C, H, W).

The functions take the array module ``xp`` (numpy, or cupy for GPU arrays)
and use only xp.zeros, xp.empty, slicing and +=, so the same code serves
CuPy arrays.  ``col2im`` is also one of the backend's kernels
(``backend.ops.col2im``, listed in numpy_vae/ops.py), so the Numba backend
swaps in its twin ``numpy_vae.backends.numba_ops.col2im``.
"""

from __future__ import annotations

import numpy as np


def conv_output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """Output length of a convolution along one axis: floor((size + 2p - k) / s) + 1."""
    return (size + 2 * padding - kernel) // stride + 1


def im2col(x, kh: int, kw: int, stride: int, padding: int, xp=np):
    """Patches of ``x`` as columns.

    Parameters
    ----------
    x : (N, C, H, W)
    kh, kw : kernel height and width
    stride, padding : s and p, the same along both axes
    xp : the array module of ``x`` (numpy or cupy)

    Returns
    -------
    cols : (C * kh * kw, N * Ho * Wo), rows ordered (c, i, j), columns (n, oh, ow)
    """
    N, C, H, W = x.shape
    s, p = stride, padding
    Ho, Wo = conv_output_size(H, kh, s, p), conv_output_size(W, kw, s, p)
    if Ho < 1 or Wo < 1:
        raise ValueError(f"a {kh}x{kw} kernel does not fit a {H}x{W} input padded by {p}")
    # Pad and move the channel axis first, in one copy.
    xpad = xp.zeros((C, N, H + 2 * p, W + 2 * p), dtype=x.dtype)
    xpad[:, :, p:p + H, p:p + W] = x.transpose(1, 0, 2, 3)
    cols = xp.empty((C, kh, kw, N, Ho, Wo), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            # Kernel entry (i, j) sees the pixels i, i + s, ..., i + s (Ho - 1) down
            # and j, j + s, ... across: one strided slice of the padded image.
            cols[:, i, j] = xpad[:, :, i:i + s * Ho:s, j:j + s * Wo:s]
    return cols.reshape(C * kh * kw, N * Ho * Wo)


def col2im(cols, x_shape, kh: int, kw: int, stride: int, padding: int, xp=np):
    """Scatter-add columns back into an image: the adjoint of ``im2col``.

    Parameters
    ----------
    cols : (C * kh * kw, N * Ho * Wo)
    x_shape : (N, C, H, W), the shape of the image ``im2col`` was given
    kh, kw, stride, padding, xp : as in ``im2col``

    Returns
    -------
    x : (N, C, H, W), a transposed view of an array stored (C, N, H, W)
    """
    N, C, H, W = x_shape
    s, p = stride, padding
    Ho, Wo = conv_output_size(H, kh, s, p), conv_output_size(W, kw, s, p)
    cols = cols.reshape(C, kh, kw, N, Ho, Wo)
    xpad = xp.zeros((C, N, H + 2 * p, W + 2 * p), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            # += not =: when the stride is smaller than the kernel, patches
            # overlap and one pixel receives from several (i, j).
            xpad[:, :, i:i + s * Ho:s, j:j + s * Wo:s] += cols[:, i, j]
    return xpad[:, :, p:p + H, p:p + W].transpose(1, 0, 2, 3)
