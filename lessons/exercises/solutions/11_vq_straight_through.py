"""Solution of exercise 11: the VQ-VAE's straight-through backward and the codebook gradient."""

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
    """-> dz_e (B, D, d), dcodebook (K, d)."""
    d = z_e.shape[2]
    z_q = codebook[codes]
    dz_e = dz_q + 2 * dsq_commit[:, None, None] * (z_e - z_q)        # straight through + commitment
    rows = (2 * dsq_code[:, None, None] * (z_q - z_e)).reshape(-1, d)
    dcodebook = np.zeros_like(codebook)
    np.add.at(dcodebook, codes.reshape(-1), rows)                     # a code chosen twice gets both
    return dz_e, dcodebook
