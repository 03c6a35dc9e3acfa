"""The checkpoint file format: writing and reading one ``.npz`` of arrays and JSON.

A checkpoint holds a trained model and everything needed to continue
training it.  It is one ``.npz`` file (a zip of ``.npy`` arrays) holding

    params/{name}       every parameter array, e.g. params/encoder.0.W (784, 400)
    optimizer/{slot}.{name}
                        the optimizer's per-parameter state, e.g. optimizer/m.encoder.0.W
    meta                a 0-d unicode array: one JSON string with the format
                        version, the model config, the optimizer's name, step
                        count and settings, the epoch, the states of the random
                        generators and the training options.

Only numeric arrays and one string: the file is read with
``np.load(..., allow_pickle=False)``, so loading a checkpoint never unpickles
anything (unpickling a file can run arbitrary code).  A file with object
arrays, a file that is not an ``.npz``, or a truncated one raises
``CheckpointError`` with a message that names the file.

Writing is atomic: the arrays go to a temporary file in the same folder,
which is flushed and fsync'ed, then renamed over the old checkpoint with
``os.replace``.  A crash or Ctrl-C while writing leaves the previous
checkpoint intact, never a half-written one.

Turning what a file holds back into a model and an optimizer is
numpy_vae/checkpoint.py's job.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

FORMAT = "numpy-vae-checkpoint"
FORMAT_VERSION = 1
CHECKPOINT_NAME = "checkpoint.npz"  # its name inside a run folder

_PARAMS = "params/"
_BUFFERS = "buffers/"  # state that is not a parameter (a VQ-VAE's code counts)
_OPTIMIZER = "optimizer/"
_META = "meta"


class CheckpointError(ValueError):
    """A checkpoint is missing, unreadable, or does not fit the model."""


@dataclass
class Checkpoint:
    """What ``load_checkpoint`` returns; all arrays are NumPy arrays on the host.

    config : dict          the model config (``model.config``), for build_model
    params : dict          name -> array, the keys and shapes of ``model.params``
    buffers : dict         name -> array, ``model.buffers`` (state that is not a
                           parameter, e.g. a VQ-VAE's code counts; empty for most models)
    optimizer : dict|None  {"name": "adam", "lr": ..., ..., "t": steps taken,
                            "state": {"m.encoder.0.W": array, ...}}
    epoch : int            epochs completed when it was written
    rng_states : dict      name -> generator state (JSON-able dicts)
    options : dict         training options (batch size, seed, ...)
    path : Path            the file it was read from
    """

    config: dict
    params: dict
    buffers: dict = field(default_factory=dict)
    optimizer: dict | None = None
    epoch: int = 0
    rng_states: dict = field(default_factory=dict)
    options: dict = field(default_factory=dict)
    path: Path | None = None


def resolve_checkpoint_path(path_or_run_dir) -> Path:
    """A run folder means the ``checkpoint.npz`` inside it; a file is itself."""
    path = Path(path_or_run_dir).expanduser()
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    return path


# --------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------

def save_checkpoint(path, model, optimizer=None, *, epoch: int = 0,
                    rng_states: dict | None = None, options: dict | None = None) -> Path:
    """Write ``model`` (and ``optimizer``) to ``path`` atomically; returns the path.

    rng_states: name -> JSON-able generator state, e.g.
        {"model": model.backend.get_rng_state(), "data": data_rng.bit_generator.state}
    options: JSON-able training options, stored as they are.
    """
    path = Path(path)
    to_numpy = model.backend.to_numpy
    arrays = {_PARAMS + name: to_numpy(p) for name, p in model.params.items()}
    arrays.update({_BUFFERS + name: to_numpy(b) for name, b in getattr(model, "buffers", {}).items()})
    optimizer_meta = None
    if optimizer is not None:
        state = optimizer.state_dict()
        optimizer_meta = dict(_optimizer_settings(optimizer), t=int(state.pop("t")))
        arrays.update({_OPTIMIZER + key: to_numpy(a) for key, a in state.items()})
    meta = {"format": FORMAT, "version": FORMAT_VERSION, "config": model.config,
            "optimizer": optimizer_meta, "epoch": int(epoch),
            "rng_states": rng_states or {}, "options": options or {}}
    arrays[_META] = np.array(json.dumps(meta))  # 0-d unicode array, no pickling
    _write_atomically(path, arrays)
    return path


def _optimizer_settings(optimizer) -> dict:
    """The name and hyperparameters that rebuild ``optimizer`` (see build_optimizer)."""
    name = type(optimizer).__name__.lower()
    settings = {"name": name, "lr": optimizer.lr, "clip_norm": optimizer.clip_norm}
    if name == "adam":
        settings.update(betas=[optimizer.beta1, optimizer.beta2], eps=optimizer.eps)
    elif name == "sgd":
        settings.update(momentum=optimizer.momentum)
    else:
        raise TypeError(f"cannot checkpoint an optimizer of type {type(optimizer).__name__}")
    return settings


def _write_atomically(path: Path, arrays: dict) -> None:
    """np.savez into a temporary file beside ``path``, fsync, then os.replace."""
    folder = path.parent
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())  # the bytes are on disk before the rename makes them visible
        os.replace(tmp_name, path)
    except BaseException:  # including KeyboardInterrupt: never leave the temp file behind
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        raise
    _fsync_folder(folder)


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable (POSIX); a no-op where folders can't be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# --------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------

def load_checkpoint(path_or_run_dir) -> Checkpoint:
    """Read a checkpoint file (or the one in a run folder); never unpickles."""
    path = resolve_checkpoint_path(path_or_run_dir)
    with open(path, "rb") as f:
        magic = f.read(4)
    if not magic:
        raise CheckpointError(f"{path}: the file is empty, not a checkpoint")
    if magic != b"PK\x03\x04":  # every .npz is a zip file, and zip files start so
        raise CheckpointError(f"{path}: not an .npz checkpoint (it starts with bytes "
                              f"{magic.hex(' ')}; a zip file starts with 50 4b 03 04)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}  # read everything now, inside the try
    except ValueError as err:
        if "pickle" in str(err):  # numpy's words for "this needs unpickling"
            raise CheckpointError(
                f"{path}: not a numpy-vae checkpoint: it holds object arrays, which are "
                f"never loaded because unpickling a file can run arbitrary code") from None
        raise CheckpointError(f"{path}: not a readable .npz checkpoint ({err})") from None
    except (OSError, EOFError, zipfile.BadZipFile, KeyError) as err:
        raise CheckpointError(f"{path}: not a readable .npz checkpoint "
                              f"({type(err).__name__}: {err}; truncated or corrupt file?)") from None

    meta = _read_meta(arrays, path)
    params = {k[len(_PARAMS):]: a for k, a in arrays.items() if k.startswith(_PARAMS)}
    buffers = {k[len(_BUFFERS):]: a for k, a in arrays.items() if k.startswith(_BUFFERS)}
    optimizer = meta.get("optimizer")
    if optimizer is not None:
        optimizer = dict(optimizer, state={k[len(_OPTIMIZER):]: a for k, a in arrays.items()
                                           if k.startswith(_OPTIMIZER)})
    for name, a in {**params, **buffers, **(optimizer or {}).get("state", {})}.items():
        if a.dtype.kind not in "fiu":
            raise CheckpointError(f"{path}: array {name!r} has type {a.dtype}, expected numbers")
    return Checkpoint(config=meta["config"], params=params, buffers=buffers, optimizer=optimizer,
                      epoch=int(meta.get("epoch", 0)), rng_states=meta.get("rng_states", {}),
                      options=meta.get("options", {}), path=path)


def _read_meta(arrays: dict, path: Path) -> dict:
    if _META not in arrays:
        raise CheckpointError(f"{path}: an .npz file without numpy-vae's 'meta' entry, "
                              f"not a numpy-vae checkpoint")
    meta_array = arrays[_META]
    if meta_array.dtype.kind != "U" or meta_array.shape != ():
        raise CheckpointError(f"{path}: its 'meta' entry is not a JSON string")
    try:
        meta = json.loads(str(meta_array[()]))
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{path}: its 'meta' entry is not valid JSON ({err})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a numpy-vae checkpoint (no format marker)")
    if meta.get("version") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: checkpoint format version {meta.get('version')}, "
                              f"this numpy-vae reads version {FORMAT_VERSION}")
    if not isinstance(meta.get("config"), dict):
        raise CheckpointError(f"{path}: the checkpoint has no model config")
    return meta


__all__ = ["Checkpoint", "CheckpointError", "CHECKPOINT_NAME", "FORMAT", "FORMAT_VERSION",
           "save_checkpoint", "load_checkpoint", "resolve_checkpoint_path"]
