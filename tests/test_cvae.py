"""Specification of the conditional VAE (numpy_vae/cvae.py).

Its whole training step agrees with finite differences; the label reaches
both networks as a one-hot vector and nothing else; bad labels fail with a
sentence; checkpoints bring it back.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from numpy_vae import gradcheck
from numpy_vae.checkpoint import load_model, save_checkpoint
from numpy_vae.cvae import ConditionalVAE
from numpy_vae.factory import build_model
from numpy_vae.models import VAE

INPUT, HIDDEN, LATENT, CLASSES, BATCH = 12, (9, 7), 3, 4, 6
BOUND = 1e-6
H = 1e-5
LABELS = np.array([0, 1, 2, 3, 1, 0])


def small_cvae(likelihood="bernoulli", activation="tanh", hidden=HIDDEN, seed=0, dtype="float64"):
    return ConditionalVAE(INPUT, hidden, LATENT, n_classes=CLASSES, likelihood=likelihood,
                          activation=activation, dtype=dtype, seed=seed)


def small_batch(likelihood, rng):
    x = rng.random((BATCH, INPUT))
    return (x < 0.5).astype(np.float64) if likelihood == "bernoulli" else x


def gradient_errors(model, x, y, eps, beta=1.0):
    """Max relative error per parameter array; the floor ``tiny`` as in tests/test_models.py."""
    def f():
        return float(model.loss_and_grads(x, y, eps=eps, beta=beta)[0])

    _, grads, _ = model.loss_and_grads(x, y, eps=eps, beta=beta)
    analytic = {name: np.array(g) for name, g in grads.items()}
    tiny = 10 * np.finfo(np.float64).eps * abs(f()) / (H * BOUND)
    return {name: gradcheck.relative_error(analytic[name], gradcheck.numerical_gradient(f, p, H), tiny)
            for name, p in model.params.items()}


@pytest.mark.parametrize("likelihood,activation,beta", [
    ("bernoulli", "tanh", 1.0), ("bernoulli", "softplus", 0.5),
    ("gaussian", "sigmoid", 2.0), ("gaussian_learned", "tanh", 1.0)])
def test_cvae_gradient_matches_finite_differences(likelihood, activation, beta, rng):
    model = small_cvae(likelihood, activation)
    errors = gradient_errors(model, small_batch(likelihood, rng), LABELS,
                             rng.standard_normal((BATCH, LATENT)), beta)
    assert list(errors) == list(model.params)
    assert max(errors.values()) < BOUND, gradcheck.format_table(errors)


@pytest.mark.parametrize("hidden", [(), (9,)], ids=["no-hidden-layer", "one-hidden-layer"])
def test_cvae_gradient_matches_finite_differences_for_other_depths(hidden, rng):
    model = small_cvae("gaussian", "softplus", hidden=hidden)
    errors = gradient_errors(model, small_batch("gaussian", rng), LABELS,
                             rng.standard_normal((BATCH, LATENT)))
    assert max(errors.values()) < BOUND, gradcheck.format_table(errors)


def test_the_label_enters_both_networks_as_extra_input_rows(rng):
    model = small_cvae()
    assert model.params["encoder.0.W"].shape == (INPUT + CLASSES, HIDDEN[0])
    assert model.params["decoder.0.W"].shape == (LATENT + CLASSES, HIDDEN[-1])
    assert list(model.params) == list(VAE(INPUT, HIDDEN, LATENT).params)  # the VAE's names


def test_a_label_absent_from_the_batch_gets_no_gradient(rng):
    """One-hot inputs: the weight row of class c only sees examples of class c."""
    model = small_cvae()
    y = np.array([0, 0, 1, 1, 2, 2])  # no 3
    _, grads, _ = model.loss_and_grads(small_batch("bernoulli", rng), y,
                                       eps=rng.standard_normal((BATCH, LATENT)))
    for name, first in (("encoder.0.W", INPUT), ("decoder.0.W", LATENT)):
        rows = np.abs(grads[name][first:]).sum(axis=1)
        assert rows[3] == 0.0, name
        assert np.all(rows[:3] > 0), name


def test_the_decoder_listens_to_the_label(rng):
    model = small_cvae()
    z = rng.standard_normal((1, LATENT))
    outputs = [model.decode(z, [c]) for c in range(CLASSES)]
    for a in range(CLASSES):
        for b in range(a + 1, CLASSES):
            assert np.abs(outputs[a] - outputs[b]).max() > 1e-3


def test_sample_takes_one_label_or_one_per_sample(rng):
    model = small_cvae()
    assert model.sample(5, 2).shape == (5, INPUT)
    assert model.sample(3, [0, 1, 3]).shape == (3, INPUT)
    with pytest.raises(ValueError, match="expected 3 labels"):
        model.sample(3, [0, 1])
    with pytest.raises(ValueError, match="at least 1"):
        model.sample(0, 1)


def test_same_z_same_label_same_image_whatever_the_batch(rng):
    model = small_cvae()
    z = rng.standard_normal((4, LATENT))
    y = np.array([3, 0, 2, 1])
    together = model.decode(z, y)
    alone = np.concatenate([model.decode(z[i:i + 1], y[i:i + 1]) for i in range(4)])
    np.testing.assert_allclose(together, alone, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("labels,message", [
    ([0, 1, 2, 3, 4, 0], r"labels must be in \[0, 4\), got \[4\]"),
    ([0, 1, 2, 3, -1, 0], r"labels must be in \[0, 4\), got \[-1\]"),
    ([0, 1, 2], r"expected 6 labels, shape \(6,\), got shape \(3,\)"),
    (np.zeros((6, 1), dtype=int), r"expected 6 labels, shape \(6,\), got shape \(6, 1\)"),
    ([0.0, 1.5, 2, 3, 1, 0], "whole numbers"),
    ([True] * 6, "labels must be integers, got dtype bool"),
    (["a"] * 6, "labels must be integers"),
])
def test_bad_labels_fail_with_a_sentence(labels, message, rng):
    model = small_cvae()
    with pytest.raises(ValueError, match=message):
        model.loss_and_grads(small_batch("bernoulli", rng), labels)


def test_whole_float_labels_are_accepted(rng):
    model = small_cvae()
    x, eps = small_batch("bernoulli", rng), rng.standard_normal((BATCH, LATENT))
    a = model.loss(x, LABELS.astype(float), eps=eps)
    b = model.loss(x, LABELS, eps=eps)
    assert float(a) == float(b)


def test_loss_without_gradients_is_the_training_loss(rng):
    model = small_cvae()
    x, eps = small_batch("bernoulli", rng), rng.standard_normal((BATCH, LATENT))
    a = float(model.loss_and_grads(x, LABELS, eps=eps, beta=0.3)[0])
    assert abs(float(model.loss(x, LABELS, eps=eps, beta=0.3)) - a) < 1e-12


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 12).flatmap(lambda c: st.tuples(
    st.just(c), st.lists(st.integers(0, c - 1), min_size=1, max_size=20))))
def test_one_hot_has_a_single_one_at_the_label(case):
    n_classes, labels = case
    model = ConditionalVAE(5, (), 2, n_classes=n_classes, dtype="float64")
    onehot = model.one_hot(np.array(labels), len(labels))
    assert onehot.shape == (len(labels), n_classes)
    assert np.all(onehot.sum(axis=1) == 1)
    assert np.all(np.isin(onehot, (0.0, 1.0)))
    assert list(onehot.argmax(axis=1)) == labels


def test_checkpoint_round_trip_rebuilds_the_cvae(tmp_path, rng):
    model = small_cvae(dtype="float32", seed=3)
    model.loss_and_grads(small_batch("bernoulli", rng), LABELS)
    save_checkpoint(tmp_path / "ck.npz", model)
    loaded, _ = load_model(tmp_path / "ck.npz")
    assert isinstance(loaded, ConditionalVAE) and loaded.n_classes == CLASSES
    z = rng.standard_normal((4, LATENT)).astype(np.float32)
    np.testing.assert_array_equal(loaded.decode(z, [0, 1, 2, 3]), model.decode(z, [0, 1, 2, 3]))
    assert isinstance(build_model(model.config), ConditionalVAE)


def test_too_few_classes_is_refused():
    with pytest.raises(ValueError, match="n_classes must be at least 2"):
        ConditionalVAE(12, (9,), 3, n_classes=1)
