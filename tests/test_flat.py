"""Specification of numpy_vae/flat.py: every parameter in one flat buffer.

A model keeps its parameters (and its gradients) as views of one buffer, so
that an optimizer step is one kernel call.  The buffer is an optimization:
the numbers must be the same as with separate arrays.
"""

from __future__ import annotations

import numpy as np
import pytest

from numpy_vae import VAE, Adam, Autoencoder
from numpy_vae.flat import ALIGNMENT, pack
from numpy_vae.optim import SGD


def _arrays(dtype=np.float32):
    rng = np.random.default_rng(0)
    shapes = {"W1": (7, 5), "b1": (5,), "W2": (5, 3), "b2": (3,), "one": (1,)}
    return {name: rng.standard_normal(shape).astype(dtype) for name, shape in shapes.items()}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pack_copies_each_array_into_an_aligned_view_of_one_buffer(dtype):
    arrays = _arrays(dtype)
    flat, views = pack(arrays, np)
    assert list(views) == list(arrays)
    covered = np.zeros(flat.size, bool)
    for name, a in arrays.items():
        v = views[name]
        assert v.shape == a.shape and v.dtype == dtype
        np.testing.assert_array_equal(v, a)
        assert np.shares_memory(v, flat)
        assert v.ctypes.data % ALIGNMENT == 0
        start = (v.ctypes.data - flat.ctypes.data) // flat.itemsize
        covered[start:start + v.size] = True
    assert np.all(flat[~covered] == 0)        # the padding between arrays is zero
    assert flat.size - covered.sum() < len(arrays) * ALIGNMENT // flat.itemsize


def _offsets(flat, views):
    return [(v.ctypes.data - flat.ctypes.data) // flat.itemsize for v in views.values()]


def test_pack_without_copy_gives_zeros_of_the_same_layout():
    arrays = _arrays()
    flat, views = pack(arrays, np)
    zeros_flat, zeros = pack(arrays, np, copy=False)
    assert not zeros_flat.any()
    assert zeros_flat.size == flat.size
    assert _offsets(zeros_flat, zeros) == _offsets(flat, views)


def _aligned_views_of_one_buffer(arrays: dict) -> bool:
    first = next(iter(arrays.values()))
    return all(a.base is first.base and a.flags.c_contiguous and a.ctypes.data % ALIGNMENT == 0
               for a in arrays.values())


@pytest.mark.parametrize("cls", [VAE, Autoencoder])
def test_a_models_parameters_gradients_and_adam_state_are_aligned_views(cls):
    model = cls(input_dim=12, hidden_dims=(6,), latent_dim=2, dtype="float64", seed=1)
    assert _aligned_views_of_one_buffer(model.params)
    x = np.random.default_rng(2).random((4, 12))
    _, grads, _ = model.loss_and_grads(x)
    assert list(grads) == list(model.params)
    assert _aligned_views_of_one_buffer(grads)
    opt = Adam(model.params, lr=1e-3, backend=model.backend)
    assert _aligned_views_of_one_buffer(opt.m) and _aligned_views_of_one_buffer(opt.v)


def test_the_gradients_returned_are_overwritten_by_the_next_call():
    """What the README says of loss_and_grads: copy the gradients to keep them."""
    model = VAE(input_dim=12, hidden_dims=(6,), latent_dim=2, dtype="float64", seed=1)
    rng = np.random.default_rng(3)
    x1, x2, eps = rng.random((4, 12)), rng.random((4, 12)), rng.standard_normal((4, 2))
    _, first, _ = model.loss_and_grads(x1, eps)
    kept = {k: g.copy() for k, g in first.items()}
    _, second, _ = model.loss_and_grads(x2, eps)
    for name in first:
        np.testing.assert_array_equal(first[name], second[name])
    assert any(not np.array_equal(kept[n], second[n]) for n in kept)


def _train(model, opt, steps, rng_seed=4):
    rng = np.random.default_rng(rng_seed)
    for _ in range(steps):
        x = rng.random((8, model.input_dim))
        eps = rng.standard_normal((8, model.latent_dim))
        _, grads, _ = model.loss_and_grads(x, eps)
        opt.step(grads)


@pytest.mark.parametrize("make_opt", [
    lambda params, bk: Adam(params, lr=1e-2, backend=bk),
    lambda params, bk: Adam(params, lr=1e-2, clip_norm=0.5, backend=bk),
    lambda params, bk: SGD(params, lr=1e-2, momentum=0.9, backend=bk),
], ids=["adam", "adam-clipped", "sgd"])
def test_training_on_the_packed_buffers_gives_the_numbers_of_separate_arrays(make_opt):
    """The buffers only move memory around: the same arithmetic, bit for bit,
    as with each parameter, gradient and moment in an array of its own."""
    packed = VAE(input_dim=12, hidden_dims=(6,), latent_dim=2, dtype="float64", seed=5)
    opt = make_opt(packed.params, packed.backend)
    separate = VAE(input_dim=12, hidden_dims=(6,), latent_dim=2, dtype="float64", seed=5)
    rng = np.random.default_rng(4)
    params = {k: p.copy() for k, p in separate.params.items()}
    reference = make_opt(params, separate.backend)
    for slot in reference._slots().values():          # its state in arrays of their own too
        for k in slot:
            slot[k] = np.zeros_like(params[k])
    for _ in range(5):
        x, eps = rng.random((8, 12)), rng.standard_normal((8, 2))
        _, grads, _ = packed.loss_and_grads(x, eps)
        separate_grads = {k: g.copy() for k, g in grads.items()}  # arrays of their own
        opt.step(grads)
        reference.step(separate_grads)
    assert not _aligned_views_of_one_buffer(params)
    for name in packed.params:
        np.testing.assert_array_equal(packed.params[name], params[name])
