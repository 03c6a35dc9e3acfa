"""Specification of numpy_vae/flat.py: every parameter in one flat buffer.

A model keeps its parameters (and its gradients) as views of one buffer, so
that an optimizer step is one kernel call.  The buffer is an optimization:
the numbers must be the same as with separate arrays.
"""

from __future__ import annotations

import numpy as np
import pytest

from numpy_vae import VAE, Adam, Autoencoder
from numpy_vae.flat import ALIGNMENT, flat_buffer, pack
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


def test_pack_without_copy_gives_zeros_of_the_same_layout():
    arrays = _arrays()
    _, views = pack(arrays, np)
    flat, zeros = pack(arrays, np, copy=False)
    assert not flat.any()
    assert flat_buffer(zeros).size == flat_buffer(views).size


def test_flat_buffer_finds_the_buffer_of_packed_arrays_and_only_those():
    arrays = _arrays()
    flat, views = pack(arrays, np)
    found = flat_buffer(views)
    assert found is not None and found.size == flat.size and np.shares_memory(found, flat)

    names = list(views)
    assert flat_buffer({n: views[n] for n in names[1:3]}) is not None   # a run in order
    assert flat_buffer({n: views[n] for n in (names[0], names[2])}) is None  # a gap
    assert flat_buffer({n: views[n] for n in reversed(names)}) is None  # out of order
    assert flat_buffer(arrays) is None                                  # separate arrays
    replaced = dict(views, b1=views["b1"].copy())
    assert flat_buffer(replaced) is None                                # one array replaced
    assert flat_buffer({}) is None


@pytest.mark.parametrize("cls", [VAE, Autoencoder])
def test_a_models_parameters_and_gradients_each_live_in_one_buffer(cls):
    model = cls(input_dim=12, hidden_dims=(6,), latent_dim=2, dtype="float64", seed=1)
    assert flat_buffer(model.params) is not None
    x = np.random.default_rng(2).random((4, 12))
    _, grads, _ = model.loss_and_grads(x)
    assert list(grads) == list(model.params)
    assert flat_buffer(grads) is not None


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
def test_one_call_over_the_buffer_updates_exactly_as_one_call_per_parameter(make_opt):
    flat_model = VAE(input_dim=12, hidden_dims=(6,), latent_dim=2, dtype="float64", seed=5)
    split_model = VAE(input_dim=12, hidden_dims=(6,), latent_dim=2, dtype="float64", seed=5)
    # one Linear per model gets fresh gradient arrays: no flat buffer for that model's grads
    for layer in [split_model.mu_head]:
        layer.grads = {k: g.copy() for k, g in layer.grads.items()}
    flat_opt = make_opt(flat_model.params, flat_model.backend)
    split_opt = make_opt(split_model.params, split_model.backend)
    _train(flat_model, flat_opt, 5)
    _train(split_model, split_opt, 5)
    assert flat_opt._flat_grads is not None and split_opt._flat_grads is None  # both paths taken
    for name in flat_model.params:
        np.testing.assert_array_equal(flat_model.params[name], split_model.params[name])
    for key, value in flat_opt.state_dict().items():
        np.testing.assert_array_equal(value, split_opt.state_dict()[key])
