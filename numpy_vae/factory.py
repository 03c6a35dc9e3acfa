"""build_model: a model from its config dict, for every model kind the package has.

Checkpoints store ``model.config`` (a JSON-able dict whose "model" key names
the kind); ``build_model`` turns it back into a model.  This is the one
module that imports every model, so the models never import each other to
find one: a new model joins by adding its class to ``MODEL_KINDS``.
"""

from __future__ import annotations

from numpy_vae.conv_vae import ConvVAE
from numpy_vae.cvae import ConditionalVAE
from numpy_vae.models import VAE, Autoencoder
from numpy_vae.vqvae import VQVAE

MODEL_KINDS = {"vae": VAE, "autoencoder": Autoencoder, "conv": ConvVAE,
               "cvae": ConditionalVAE, "vqvae": VQVAE}


def build_model(config: dict, backend=None):
    """Rebuild a model from its ``config`` dict (as saved in checkpoints).

    config["model"] names the kind (default "vae"); the other keys are the
    class's arguments.  ``backend`` (a name or a Backend), if given, replaces
    the config's.
    """
    config = dict(config)
    kind = config.pop("model", "vae")
    if kind not in MODEL_KINDS:
        raise ValueError(f"unknown model kind {kind!r}; known: {', '.join(MODEL_KINDS)}")
    if backend is not None:
        config["backend"] = backend
    return MODEL_KINDS[kind](**config)


__all__ = ["build_model", "MODEL_KINDS"]
