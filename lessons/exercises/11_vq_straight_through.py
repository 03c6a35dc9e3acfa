"""Exercise 11 (lesson 15): the VQ-VAE's straight-through backward pass.

Check your work:   numpy-vae exercise 11

The encoder's output z_e (B, D, d) is D slots of d numbers per image; each
slot is replaced by its nearest row of the codebook e (K, d) (vq_forward
below is given and works):

    codes[n, j] = argmin_k ||z_e[n, j] - e_k||^2      (B, D) integers
    z_q[n, j]   = e[codes[n, j]]                      (B, D, d)
    sq[n]       = sum_j ||z_e[n, j] - z_q[n, j]||^2   (B,)

The loss uses z_q (through the decoder) and two terms with the value sq
(sg = stop gradient: the value passes, the gradient does not):

    codebook term    sum_n w_code[n]   * sum_j ||sg[z_e[n, j]] - e[codes[n, j]]||^2
    commitment term  sum_n w_commit[n] * sum_j ||z_e[n, j] - sg[z_q[n, j]]||^2

The argmin has no useful derivative, so the straight-through estimator
treats z_q as if it were z_e on the way back.

Task: given dz_q (B, D, d) from the decoder and the weights dsq_code and
dsq_commit (B,) (w_code and w_commit above), return dz_e (B, D, d) and
dcodebook (K, d).

Hints:
- dz_e: the decoder's gradient passes straight through, plus the gradient
  of the term whose stop-gradient is *not* on z_e.
- dcodebook: only the term whose stop-gradient is not on e reaches the
  codebook; the decoder's gradient never does.
- Several slots may choose the same code: its gradient is the sum over all
  of them.  NumPy's a[idx] += b adds only once per repeated index.
- The package's version: numpy_vae/quantize.py, VectorQuantize.
"""

import numpy as np


def vq_forward(z_e, codebook):
    """z_e (B, D, d), codebook (K, d) -> z_q (B, D, d), codes (B, D), sq (B,).  (Given.)"""
    B, D, d = z_e.shape
    flat = z_e.reshape(-1, d)
    dist = ((flat[:, None, :] - codebook[None, :, :]) ** 2).sum(axis=2)   # (B*D, K)
    codes = dist.argmin(axis=1).reshape(B, D)
    z_q = codebook[codes]
    sq = ((z_e - z_q) ** 2).sum(axis=(1, 2))
    return z_q, codes, sq


def vq_backward(dz_q, dsq_code, dsq_commit, z_e, codebook, codes):
    """-> (dz_e (B, D, d), dcodebook (K, d))."""
    raise NotImplementedError("return the tuple (dz_e, dcodebook)")
