"""Checkpoints back into objects: rebuild the model and the optimizer a checkpoint file holds.

The file format (what is written, how, and how it is read back safely) is
numpy_vae/checkpoint_format.py; its names are re-exported here, so
``from numpy_vae.checkpoint import save_checkpoint, load_model`` needs one import.

    model, checkpoint = load_model("runs/my-run")       # the model, its weights loaded
    optimizer = build_optimizer(checkpoint.optimizer, model.params, model.backend)
"""

from __future__ import annotations

import json

from numpy_vae.checkpoint_format import (CHECKPOINT_NAME, Checkpoint, CheckpointError,
                                         load_checkpoint, resolve_checkpoint_path, save_checkpoint)
from numpy_vae.factory import build_model
from numpy_vae.optim import SGD, Adam


def load_params(model, params: dict) -> None:
    """Copy ``params`` into ``model.params`` in place, after checking names and shapes.

    In place, because the layers hold references to these very arrays.
    Raises CheckpointError naming the first mismatch, e.g. "checkpoint has
    encoder.0.W of shape (784, 400), this model expects (784, 256)".
    """
    missing = [name for name in model.params if name not in params]
    extra = [name for name in params if name not in model.params]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"lacks {', '.join(missing)}")
        if extra:
            parts.append(f"has {', '.join(extra)}, which this model does not")
        raise CheckpointError(f"the checkpoint does not fit this model: it {' and '.join(parts)}")
    for name, target in model.params.items():
        if tuple(params[name].shape) != tuple(target.shape):
            raise CheckpointError(f"checkpoint has {name} of shape {tuple(params[name].shape)}, "
                                  f"this model expects {tuple(target.shape)}")
    for name, target in model.params.items():
        target[...] = model.backend.asarray(params[name], dtype=target.dtype)


def load_buffers(model, buffers: dict) -> None:
    """Copy saved ``buffers`` into ``model.buffers`` in place, checking names and shapes.

    A model without buffers takes a checkpoint without them (the VAEs)."""
    own = getattr(model, "buffers", {})
    if set(own) != set(buffers):
        raise CheckpointError(f"the checkpoint's buffers ({', '.join(sorted(buffers)) or 'none'}) "
                              f"do not fit this model's ({', '.join(sorted(own)) or 'none'})")
    for name, target in own.items():
        if tuple(buffers[name].shape) != tuple(target.shape):
            raise CheckpointError(f"checkpoint has buffer {name} of shape {tuple(buffers[name].shape)}, "
                                  f"this model expects {tuple(target.shape)}")
    for name, target in own.items():
        target[...] = model.backend.xp.asarray(buffers[name], dtype=target.dtype)


def load_model(path_or_run_dir, backend=None):
    """Rebuild the model a checkpoint was saved from; returns (model, checkpoint).

    backend: "numpy", "numba", "cupy" or None ($NUMPY_VAE_BACKEND, else numpy).
    """
    checkpoint = load_checkpoint(path_or_run_dir)
    try:
        model = build_model(checkpoint.config, backend=backend)
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{checkpoint.path}: cannot rebuild its model from the saved "
                              f"config {json.dumps(checkpoint.config)} ({err})") from None
    load_params(model, checkpoint.params)
    load_buffers(model, checkpoint.buffers)
    return model, checkpoint


def build_optimizer(settings: dict, params: dict, backend):
    """An optimizer from the settings ``save_checkpoint`` stored, with its state loaded."""
    name = settings["name"]
    if name == "adam":
        optimizer = Adam(params, lr=settings["lr"], betas=tuple(settings["betas"]),
                         eps=settings["eps"], clip_norm=settings.get("clip_norm"), backend=backend)
    elif name == "sgd":
        optimizer = SGD(params, lr=settings["lr"], momentum=settings["momentum"],
                        clip_norm=settings.get("clip_norm"), backend=backend)
    else:
        raise CheckpointError(f"unknown optimizer {name!r} in the checkpoint")
    if "state" in settings:
        try:
            optimizer.load_state_dict(dict(settings["state"], t=settings["t"]))
        except (KeyError, ValueError) as err:
            raise CheckpointError(f"the checkpoint's optimizer state does not fit this model: "
                                  f"{err.args[0]}") from None
    return optimizer


__all__ = ["Checkpoint", "CheckpointError", "CHECKPOINT_NAME", "save_checkpoint",
           "load_checkpoint", "load_params", "load_buffers", "load_model", "build_optimizer",
           "resolve_checkpoint_path"]
