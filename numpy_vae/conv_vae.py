"""A convolutional VAE: the MLP VAE with its encoder and decoder swapped for
convolution stacks.

For 28x28 images and channels (c1, c2) = (32, 64):

    encoder   x (batch, 784) -> image (batch, 1, 28, 28)
              Conv2D(1, c1, 4, stride 2, pad 1) + act    -> (batch, c1, 14, 14)
              Conv2D(c1, c2, 4, stride 2, pad 1) + act   -> (batch, c2, 7, 7)
              Flatten                                    -> (batch, c2 * 49)
    heads     mu, logvar = Linear(c2 * 49, latent) each
    decoder   Linear(latent, c2 * 49) + act, Reshape     -> (batch, c2, 7, 7)
              ConvTranspose2D(c2, c1, 4, 2, 1) + act      -> (batch, c1, 14, 14)
              ConvTranspose2D(c1, out_c, 4, 2, 1)         -> (batch, out_c, 28, 28)
              Flatten                                    -> (batch, out_c * 784)

out_c is 1, or 2 for the "gaussian_learned" likelihood (means, then
log-variances: the flattened [m | s] layout that likelihood expects).  Each
stride-2 convolution halves the side, rounding down; ``output_padding`` on
the matching transposed convolution adds the lost row back, so any square
image of side >= 4 works (28 -> 14 -> 7 -> 14 -> 28 needs none).

Everything between the encoder and the decoder is the VAE's, unchanged:
Linear heads, the logvar clamp, the reparameterization, the KL, the
likelihoods, and the training step itself (``loss_and_grads``, ``loss``,
``terms``, ``encode``, ``decode``, ``sample``, ``reconstruct`` are inherited
from ``numpy_vae.models.VAE``).  Inputs stay
flat (batch, input_dim), so the data pipeline and the trainer are shared;
the encoder's first layer reshapes them into images.

Parameter names (stable, used by checkpoints):
    encoder.0.W (c1, 1, 4, 4), encoder.0.b (c1,)       first Conv2D
    encoder.1.W (c2, c1, 4, 4), encoder.1.b (c2,)      second Conv2D
    mu.W (c2*s2*s2, latent), mu.b, logvar.W, logvar.b  the heads (s2 = 7 for 28x28)
    decoder.0.W (latent, c2*s2*s2), decoder.0.b        Linear
    decoder.1.W (c2, c1, 4, 4), decoder.1.b (c1,)      first ConvTranspose2D
    decoder.2.W (c1, out_c, 4, 4), decoder.2.b (out_c,) output ConvTranspose2D
"""

from __future__ import annotations

import math

from numpy_vae.conv import Conv2D, ConvTranspose2D
from numpy_vae.im2col import conv_output_size
from numpy_vae.layers import Linear, Sequential, make_activation
from numpy_vae.models import VAE
from numpy_vae.reshape import Flatten, Reshape

# Every convolution: 4x4 kernel, stride 2, padding 1 (halves the side).
KERNEL, STRIDE, PADDING = 4, 2, 1


def _image_side(input_dim: int) -> int:
    side = math.isqrt(int(input_dim))
    if side * side != input_dim or side < 4:
        raise ValueError(f"ConvVAE needs square images of side >= 4: input_dim must be "
                         f"side * side (784 for 28x28), got {input_dim}")
    return side


class ConvVAE(VAE):
    """A VAE with a convolutional encoder and a transposed-convolution decoder.

    Parameters
    ----------
    input_dim : int           D = side * side pixels per (flat) example, 784 for MNIST.
    latent_dim : int          Size of z.
    channels : (c1, c2)       Feature maps of the two convolutions (the decoder mirrors them).
    likelihood : str          "bernoulli", "gaussian" or "gaussian_learned".
    activation : str          "relu", "leaky_relu", "tanh", "sigmoid" or "softplus".
    backend : str or Backend  "numpy" (default, or $NUMPY_VAE_BACKEND), "numba", "cupy".
    dtype : str               "float32" or "float64".
    seed : int                Seeds the backend's generator: weights and eps.
    hidden_dims : ignored     Accepted so that code building either model with the
                              same keywords (the CLI) works; a ConvVAE has no MLP widths.
    """

    # the IWAE evaluation's rows per chunk (numpy_vae/evaluate.py): measured
    # 0.163 MB per row at the peak, so ~170 MB here, 1.3 GB at the MLP's 8192
    IWAE_MAX_ROWS = 1024

    def __init__(self, input_dim=784, latent_dim=20, channels=(32, 64), likelihood="bernoulli",
                 activation="relu", backend=None, dtype="float32", seed=0, hidden_dims=None):
        self._side = _image_side(input_dim)
        channels = tuple(int(c) for c in channels)
        if len(channels) != 2 or min(channels) < 1:
            raise ValueError(f"channels must be two positive numbers (c1, c2), got {channels}")
        self.channels = channels
        # The VAE's constructor sets up the backend, the likelihood, the
        # reparameterization and KL nodes and the logvar clamp, and calls
        # _build_networks (below) for the encoder, heads and decoder.
        super().__init__(input_dim=input_dim, hidden_dims=(), latent_dim=latent_dim,
                         likelihood=likelihood, activation=activation, backend=backend,
                         dtype=dtype, seed=seed)
        self.config = dict(model="conv", input_dim=self.input_dim, latent_dim=self.latent_dim,
                           channels=list(channels), likelihood=likelihood,
                           activation=activation, dtype=str(self.backend.dtype), seed=seed)

    def _build_networks(self, activation):
        bk, side = self.backend, self._side
        out_channels = self.likelihood.out_dim(self.input_dim) // self.input_dim
        c1, c2 = self.channels
        s1 = conv_output_size(side, KERNEL, STRIDE, PADDING)   # 28 -> 14
        s2 = conv_output_size(s1, KERNEL, STRIDE, PADDING)     # 14 -> 7
        features = c2 * s2 * s2

        def act():
            return make_activation(activation, bk)

        def up(c_in, c_out, side_in, side_out):
            # output_padding: the row (if any) the stride-2 convolution rounded away
            extra = side_out - ((side_in - 1) * STRIDE - 2 * PADDING + KERNEL)
            return ConvTranspose2D(c_in, c_out, KERNEL, STRIDE, PADDING, output_padding=extra, backend=bk)

        self.encoder = Sequential([
            Reshape((1, side, side), backend=bk),
            Conv2D(1, c1, KERNEL, STRIDE, PADDING, backend=bk, input_grad=False), act(),
            Conv2D(c1, c2, KERNEL, STRIDE, PADDING, backend=bk), act(),
            Flatten(backend=bk),
        ], bk)
        self.mu_head = Linear(features, self.latent_dim, bk)
        self.logvar_head = Linear(features, self.latent_dim, bk)
        self.decoder = Sequential([
            Linear(self.latent_dim, features, bk), act(),
            Reshape((c2, s2, s2), backend=bk),
            up(c2, c1, s2, s1), act(),
            up(c1, out_channels, s1, side),
            Flatten(backend=bk),
        ], bk)

    def __repr__(self):
        c = self.config
        return (f"ConvVAE({c['input_dim']}, channels={tuple(c['channels'])}, latent_dim={c['latent_dim']}, "
                f"likelihood={c['likelihood']!r}, activation={c['activation']!r}, "
                f"backend={self.backend.name!r}, dtype={c['dtype']!r})")


__all__ = ["ConvVAE"]
