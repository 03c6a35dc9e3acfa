"""numpy-vae: a Variational Autoencoder written from scratch in NumPy.

Public names (documented in README.md and used by the lessons):

    VAE, Autoencoder                      numpy_vae/models.py
    build_model                           numpy_vae/factory.py
    Adam, SGD, clip_by_global_norm        numpy_vae/optim.py
    get_backend, available_backends       numpy_vae/backend.py
    gradcheck                             numpy_vae/gradcheck.py (module)
"""

from numpy_vae import gradcheck
from numpy_vae.backend import Backend, BackendUnavailableError, available_backends, get_backend
from numpy_vae.factory import build_model
from numpy_vae.models import VAE, Autoencoder
from numpy_vae.optim import SGD, Adam, clip_by_global_norm

__version__ = "0.1.0"

__all__ = ["VAE", "Autoencoder", "build_model", "Adam", "SGD", "clip_by_global_norm",
           "Backend", "BackendUnavailableError", "get_backend", "available_backends",
           "gradcheck", "__version__"]
