"""Vector quantization with a straight-through gradient: the VQ-VAE's bottleneck.

van den Oord, Vinyals & Kavukcuoglu 2017, "Neural Discrete Representation
Learning".  The encoder's output is D slots of d numbers each, z_e of shape
(batch, D, d).  A codebook holds K vectors e_1..e_K of size d.  Each slot is
replaced by its nearest codebook vector:

    k[n, j]   = argmin_k ||z_e[n, j] - e_k||^2                 (batch, D) integers
    z_q[n, j] = e_{k[n, j]}                                    (batch, D, d)

The squared distances come from one matrix product,
||z - e||^2 = ||z||^2 - 2 z.e + ||e||^2, for all slots and codes at once.

The loss of one example (eq. 3 of the paper; sg = stop-gradient, the value
passes, the gradient does not):

    L = recon(decoder(z_q)) + ||sg[z_e] - e||^2 + beta_commit * ||z_e - sg[e]||^2
                              codebook term       commitment term

both terms summed over the D slots.  They have the same value,
sq = sum_j ||z_e[n, j] - z_q[n, j]||^2, and differ only in where their
gradient goes: the codebook term moves the codes towards the encoder
outputs, the commitment term keeps the encoder outputs near their codes.

The gradient.  z_q is piecewise constant in z_e (the argmin jumps), so the
true derivative of recon with respect to z_e is zero almost everywhere,
which would teach the encoder nothing.  The straight-through estimator
(Bengio et al. 2013) pretends quantization is the identity on the way back
and copies the decoder's gradient dz_q to z_e unchanged.  It is the exact
gradient of a surrogate, z_q = z_e + sg[z_q - z_e]: the same value, with the
identity's derivative.  So, with dsq_code and dsq_commit the weights of the
two terms (1/batch and beta_commit/batch in the model's mean):

    dz_e[n, j]  = dz_q[n, j] + 2 dsq_commit[n] (z_e[n, j] - z_q[n, j])
                  straight-through  commitment term
    de_k        = sum over (n, j) with k[n, j] = k of 2 dsq_code[n] (e_k - z_e[n, j])
                  codebook term only: the decoder's gradient reaches z_e, never the codes

The codebook sum is a matrix product with the one-hot code matrix,
onehot^T (2 w (z_q - z_e)), of shape (K, d).
"""

from __future__ import annotations

from numpy_vae.backend import Backend
from numpy_vae.layers import Layer


def nearest_codes(z, codebook, xp):
    """Index of the nearest codebook row for every row of z.

    z : (N, d), codebook : (K, d) -> (N,) integers in [0, K); ties go to the
    lower index.  Squared distances ||z||^2 - 2 z.e + ||e||^2, one matmul.
    """
    sq = (z * z).sum(axis=1)[:, None] - 2.0 * (z @ codebook.T) + (codebook * codebook).sum(axis=1)[None, :]
    return xp.argmin(sq, axis=1)


class VectorQuantize(Layer):
    """Nearest-codebook quantization, its two loss terms and the straight-through gradient.

    params["codebook"] : (K, d), initialised Uniform(-1/K, 1/K) (the usual
    choice in VQ-VAE code; it leaves many codes unused at first, see
    ``numpy_vae.vqvae`` for the remedy).

    forward(z_e) -> (z_q, sq)
        z_e : (batch, D, d)   encoder output
        z_q : (batch, D, d)   each slot's nearest code
        sq  : (batch,)        sum_j ||z_e[n, j] - z_q[n, j]||^2, the value of
                              both the codebook and the commitment term
        ``self.codes`` (batch, D) keeps the chosen indices.
    backward(dz_q, dsq_code, dsq_commit) -> dz_e
        dz_q : (batch, D, d), dsq_code, dsq_commit : (batch,) -> dz_e (batch, D, d);
        writes grads["codebook"] (K, d).  See the module docstring.
    """

    def __init__(self, n_codes: int, code_dim: int, backend: Backend | str | None = None):
        super().__init__(backend)
        if n_codes < 1 or code_dim < 1:
            raise ValueError(f"VectorQuantize needs positive sizes, got n_codes={n_codes}, code_dim={code_dim}")
        self.n_codes, self.code_dim = int(n_codes), int(code_dim)
        bk = self.backend
        self.params["codebook"] = (2 * bk.random((self.n_codes, self.code_dim)) - 1) / self.n_codes
        self.grads = {"codebook": bk.xp.zeros_like(self.params["codebook"])}
        self.codes = None

    def quantize(self, z_e):
        """(codes (batch, D), z_q (batch, D, d)) for z_e (batch, D, d); keeps nothing."""
        if z_e.ndim != 3 or z_e.shape[2] != self.code_dim:
            raise ValueError(f"expected z_e of shape (batch, slots, {self.code_dim}), got {tuple(z_e.shape)}")
        batch, slots, d = z_e.shape
        codebook = self.params["codebook"]
        codes = nearest_codes(z_e.reshape(batch * slots, d), codebook, self.backend.xp)
        return codes.reshape(batch, slots), codebook[codes].reshape(batch, slots, d)

    def forward(self, z_e):
        self.codes, z_q = self.quantize(z_e)
        self._z_e, self._z_q = z_e, z_q
        diff = z_e - z_q
        return z_q, (diff * diff).sum(axis=(1, 2))

    def backward(self, dz_q, dsq_code, dsq_commit):
        xp = self.backend.xp
        z_e, z_q = self._z_e, self._z_q
        batch, slots, d = z_e.shape
        dz_e = dz_q + 2.0 * dsq_commit[:, None, None] * (z_e - z_q)      # straight-through + commitment
        dcode_rows = (2.0 * dsq_code[:, None, None] * (z_q - z_e)).reshape(batch * slots, d)
        onehot = xp.zeros((batch * slots, self.n_codes), dtype=z_e.dtype)
        onehot[xp.arange(batch * slots), self.codes.reshape(-1)] = 1.0
        xp.matmul(onehot.T, dcode_rows, out=self.grads["codebook"])       # sum per code
        return dz_e

    def __repr__(self):
        return f"VectorQuantize(n_codes={self.n_codes}, code_dim={self.code_dim})"


__all__ = ["VectorQuantize", "nearest_codes"]
